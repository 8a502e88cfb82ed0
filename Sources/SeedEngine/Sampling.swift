#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// How the next token is chosen from the logits.
///
/// The order of the steps follows llama.cpp's default sampler chain: penalties, top-k, top-p, min-p, temperature,
/// then a draw from the remaining distribution. A temperature of 0 means greedy (argmax, ties to the lowest id).
public struct SamplingParameters: Sendable, Equatable, Codable {
    /// Softmax temperature; 0 picks the most likely token.
    public var temperature: Float = 0.8
    /// Keep only the `topK` most likely tokens (0 = no limit).
    public var topK: Int = 40
    /// Keep the smallest set of tokens whose probability adds up to at least `topP` (1 = no limit).
    public var topP: Float = 0.95
    /// Drop tokens less likely than `minP` times the most likely one (0 = off).
    public var minP: Float = 0.05
    /// Divide positive (multiply negative) logits of recently seen tokens by this (1 = off).
    public var repetitionPenalty: Float = 1.0
    /// How many recent tokens the repetition, presence and frequency penalties look at (-1 = all, 0 = none).
    public var penaltyWindow: Int = 64
    /// Subtract this from the logit of every token already present (OpenAI's `presence_penalty`).
    public var presencePenalty: Float = 0
    /// Subtract this times its count from the logit of every token already present (OpenAI's `frequency_penalty`).
    public var frequencyPenalty: Float = 0
    /// Seed of the random generator; the same seed, prompt and parameters give the same text.
    public var seed: UInt64 = 0

    public init() {}

    /// Greedy decoding.
    public static var greedy: SamplingParameters {
        var p = SamplingParameters()
        p.temperature = 0
        return p
    }

    /// Rejects values outside their meaningful range, naming the parameter.
    public func validate() throws(EngineError) {
        func fail(_ name: String, _ message: String) -> EngineError {
            .invalidParameter(name: name, message: message)
        }
        guard temperature.isFinite, temperature >= 0, temperature <= 100 else {
            throw fail("temperature", "must be between 0 and 100, got \(temperature)")
        }
        guard topK >= 0 else { throw fail("top_k", "must be >= 0, got \(topK)") }
        guard topP.isFinite, topP > 0, topP <= 1 else { throw fail("top_p", "must be in (0, 1], got \(topP)") }
        guard minP.isFinite, minP >= 0, minP <= 1 else { throw fail("min_p", "must be in [0, 1], got \(minP)") }
        guard repetitionPenalty.isFinite, repetitionPenalty > 0, repetitionPenalty <= 100 else {
            throw fail("repeat_penalty", "must be in (0, 100], got \(repetitionPenalty)")
        }
        guard penaltyWindow >= -1 else { throw fail("repeat_last_n", "must be >= -1, got \(penaltyWindow)") }
        guard presencePenalty.isFinite, abs(presencePenalty) <= 2 else {
            throw fail("presence_penalty", "must be between -2 and 2, got \(presencePenalty)")
        }
        guard frequencyPenalty.isFinite, abs(frequencyPenalty) <= 2 else {
            throw fail("frequency_penalty", "must be between -2 and 2, got \(frequencyPenalty)")
        }
    }
}

/// xoshiro256** seeded through SplitMix64: small, fast and reproducible on every platform.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var x = seed
        func splitMix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (splitMix(), splitMix(), splitMix(), splitMix())
    }

    public mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = s.3 << 45 | s.3 >> 19
        return result
    }

    /// A uniform float in [0, 1).
    public mutating func nextUnitFloat() -> Float {
        Float(next() >> 40) * (1.0 / Float(1 << 24))
    }
}

/// Picks tokens from logits according to ``SamplingParameters``; keeps its buffers between calls, so sampling a
/// token allocates nothing once the sampler has seen the vocabulary size.
public struct Sampler: Sendable {
    public let parameters: SamplingParameters
    private var generator: SeededGenerator
    private var candidates: [Int] = []
    private var probabilities: [Float] = []
    private var counts: [Int: Int] = [:]

    public init(parameters: SamplingParameters) {
        self.parameters = parameters
        generator = SeededGenerator(seed: parameters.seed)
    }

    /// Chooses the next token.
    ///
    /// - Parameters:
    ///   - logits: `[vocab]` raw logits (modified in place when penalties apply).
    ///   - history: the tokens so far (prompt and generated), for the penalties.
    public mutating func sample(_ logits: UnsafeMutableBufferPointer<Float>, history: [Int]) -> Int {
        let p = parameters
        applyPenalties(logits, history: history)
        if p.temperature == 0 { return Sampler.argmax(UnsafeBufferPointer(logits)) }

        // Top-k (or all tokens), sorted by logit descending, ties by lower id.
        let n = logits.count
        let k = p.topK > 0 ? min(p.topK, n) : n
        selectTop(k, logits)

        // Softmax over the candidates at temperature 1, as llama.cpp's top-p and min-p see them.
        let maxLogit = logits[candidates[0]]
        probabilities.removeAll(keepingCapacity: true)
        var sum: Float = 0
        for id in candidates {
            let e = expf(logits[id] - maxLogit)
            probabilities.append(e)
            sum += e
        }
        var keep = candidates.count
        if p.topP < 1 {
            var cumulative: Float = 0
            for i in 0..<keep {
                cumulative += probabilities[i] / sum
                if cumulative >= p.topP {
                    keep = i + 1
                    break
                }
            }
        }
        if p.minP > 0 {
            let threshold = p.minP * probabilities[0]
            var i = 1
            while i < keep && probabilities[i] >= threshold { i += 1 }
            keep = i
        }

        // Temperature, then draw.
        var total: Float = 0
        for i in 0..<keep {
            let v = expf((logits[candidates[i]] - maxLogit) / p.temperature)
            probabilities[i] = v
            total += v
        }
        let target = generator.nextUnitFloat() * total
        var cumulative: Float = 0
        for i in 0..<keep {
            cumulative += probabilities[i]
            if target < cumulative { return candidates[i] }
        }
        return candidates[keep - 1]
    }

    /// The index of the largest value; ties go to the lowest index.
    public static func argmax(_ logits: UnsafeBufferPointer<Float>) -> Int {
        var best = 0
        var bestValue = -Float.infinity
        for i in 0..<logits.count where logits[i] > bestValue {
            bestValue = logits[i]
            best = i
        }
        return best
    }

    private mutating func applyPenalties(_ logits: UnsafeMutableBufferPointer<Float>, history: [Int]) {
        let p = parameters
        let active = p.repetitionPenalty != 1 || p.presencePenalty != 0 || p.frequencyPenalty != 0
        guard active, p.penaltyWindow != 0, !history.isEmpty else { return }
        let window = p.penaltyWindow < 0 ? history.count : min(p.penaltyWindow, history.count)
        counts.removeAll(keepingCapacity: true)
        for id in history[(history.count - window)...] where id >= 0 && id < logits.count {
            counts[id, default: 0] += 1
        }
        for (id, count) in counts {
            var l = logits[id]
            if p.repetitionPenalty != 1 {
                l = l > 0 ? l / p.repetitionPenalty : l * p.repetitionPenalty
            }
            l -= Float(count) * p.frequencyPenalty + p.presencePenalty
            logits[id] = l
        }
    }

    /// Fills `candidates` with the `k` highest-logit ids, sorted descending (ties: lower id first).
    private mutating func selectTop(_ k: Int, _ logits: UnsafeMutableBufferPointer<Float>) {
        candidates.removeAll(keepingCapacity: true)
        func before(_ a: Int, _ b: Int) -> Bool {
            logits[a] > logits[b] || (logits[a] == logits[b] && a < b)
        }
        if k >= logits.count / 2 {
            candidates.append(contentsOf: 0..<logits.count)
            candidates.sort(by: before)
            candidates.removeLast(candidates.count - k)
            return
        }
        // Keep a sorted array of the best k seen so far; most tokens are rejected by one comparison.
        for id in 0..<logits.count {
            if candidates.count == k {
                if !before(id, candidates[k - 1]) { continue }
                candidates.removeLast()
            }
            var lo = 0
            var hi = candidates.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if before(candidates[mid], id) { lo = mid + 1 } else { hi = mid }
            }
            candidates.insert(id, at: lo)
        }
    }
}
