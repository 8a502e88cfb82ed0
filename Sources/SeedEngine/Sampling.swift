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

    /// Whether the penalties change any logit (repetition, presence or frequency penalty over a non-empty window).
    public var appliesPenalties: Bool {
        penaltyWindow != 0 && (repetitionPenalty != 1 || presencePenalty != 0 || frequencyPenalty != 0)
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

    /// A uniform double in [0, 1) (53 random bits).
    public mutating func nextUnitDouble() -> Double {
        Double(next() >> 11) * 0x1p-53
    }
}

/// Picks tokens from logits according to ``SamplingParameters``; keeps its buffers between calls, so sampling a
/// token allocates nothing once the sampler has seen the vocabulary size.
///
/// The candidates a draw may pick follow llama.cpp's chain (penalties, top-k, top-p, min-p, temperature), with
/// `m` the largest logit and `e(i) = expf(logit(i) - m)`:
/// - top-k keeps the `topK` highest logits (ties: lower id first); without it every id is a candidate;
/// - top-p keeps the shortest prefix of the candidates in that order whose `e` adds up (in `Double`, in that order)
///   to at least `topP` times the candidates' total (summed in `Double` in id order), or all of them;
/// - min-p keeps the candidates with `e(i) >= minP` (the most likely one always stays);
/// - the draw picks among what is left with weights `expf((logit(i) - m) / temperature)` from a 53-bit uniform.
///
/// Cost: O(vocabulary) plus sorting only the few candidates near the top. Without truncation (no top-k, top-p 1,
/// min-p 0, OpenAI's defaults) the draw comes straight from the tempered softmax in id order; top-k with a small `k`
/// keeps a sorted list of the best `k`; larger `k` selects its threshold in linear time; top-p finds the bucket of
/// `e` values where the mass crosses its target and sorts only the candidates down to that bucket.
public struct Sampler: Sendable {
    public let parameters: SamplingParameters
    private var generator: SeededGenerator
    private var counts: [Int: Int] = [:]
    /// Candidates after top-k, in id order (unused when every id is a candidate).
    private var candidateIDs: [Int32] = []
    /// What the draw chooses from, and each one's `e` (or weight, once tempered).
    private var keptIDs: [Int32] = []
    private var keptWeights: [Float] = []
    /// Sort keys (``sortKey(_:_:)``) for top-k selection and the top-p prefix.
    private var keys: [UInt64] = []
    /// Mass of `e` per bucket of ``bucket(_:)``, for the top-p crossing.
    private var bucketMass: [Double] = []
    /// Tempered weights of every id, for draws without truncation.
    private var allWeights: [Float] = []

    /// Up to this `topK` the best `k` are kept in a sorted list while scanning; above it the threshold is selected.
    static let smallTopK = 64
    /// Buckets of `e` in `(0, 1]`: eight per power of two down to the smallest floats, then one for zero.
    static let bucketCount = 1024

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
        applyPenalties(logits, history: history)
        guard parameters.temperature > 0, let maxLogit = truncate(UnsafeBufferPointer(logits)) else {
            return Sampler.argmax(UnsafeBufferPointer(logits))
        }
        if keptIDs.isEmpty {
            return drawFromAll(UnsafeBufferPointer(logits), maxLogit: maxLogit)
        }
        return drawFromKept(UnsafeBufferPointer(logits), maxLogit: maxLogit)
    }

    /// The ids a draw could pick after penalties, top-k, top-p and min-p, in increasing id order (one id, the
    /// argmax, at temperature 0); for inspection and tests. Applies the penalties to `logits` like ``sample(_:history:)``
    /// and leaves the random generator untouched.
    public mutating func candidates(_ logits: UnsafeMutableBufferPointer<Float>, history: [Int]) -> [Int] {
        applyPenalties(logits, history: history)
        guard parameters.temperature > 0, truncate(UnsafeBufferPointer(logits)) != nil else {
            return [Sampler.argmax(UnsafeBufferPointer(logits))]
        }
        if keptIDs.isEmpty { return Array(0..<logits.count) }
        return keptIDs.map { Int($0) }.sorted()
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

    /// The ids of the `k` largest values, largest first (ties: lower id first), using `keys` as scratch.
    static func topIDs(_ k: Int, of values: UnsafeBufferPointer<Float>, keys: inout [UInt64]) -> [Int] {
        let k = min(k, values.count)
        guard k > 0 else { return [] }
        selectSmallest(k, of: values, into: &keys)
        return keys.map { Int(UInt32(truncatingIfNeeded: $0)) }
    }

    // MARK: Keys

    /// A key whose increasing order is decreasing logit, then increasing id (+0 and -0 are the same logit).
    @inline(__always)
    static func sortKey(_ logit: Float, _ id: Int) -> UInt64 {
        let bits = (logit + 0).bitPattern
        // Increasing float order as unsigned integers: flip all bits of negatives, the sign bit of the others.
        let increasing = bits & 0x8000_0000 != 0 ? ~bits : bits | 0x8000_0000
        return UInt64(~increasing) << 32 | UInt64(UInt32(truncatingIfNeeded: id))
    }

    @inline(__always)
    static func id(ofKey key: UInt64) -> Int { Int(UInt32(truncatingIfNeeded: key)) }

    /// The bucket of `e` in `[0, 1]`: larger `e`, lower (or equal) bucket; eight buckets per power of two.
    @inline(__always)
    static func bucket(_ e: Float) -> Int {
        guard e > 0 else { return bucketCount - 1 }
        let below = (Float(1).bitPattern &- min(e, 1).bitPattern) >> 20
        return min(Int(below), bucketCount - 2)
    }

    /// Fills `keys` with the keys of the `k` best values, in increasing key order: a sorted list of the best so far
    /// (most values are rejected by one comparison).
    private static func selectSmallest(_ k: Int, of values: UnsafeBufferPointer<Float>, into keys: inout [UInt64]) {
        keys.removeAll(keepingCapacity: true)
        for id in 0..<values.count {
            let key = sortKey(values[id], id)
            if keys.count == k {
                if key >= keys[k - 1] { continue }
                keys.removeLast()
            }
            var lo = 0
            var hi = keys.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if keys[mid] < key { lo = mid + 1 } else { hi = mid }
            }
            keys.insert(key, at: lo)
        }
    }

    /// The `rank`-th smallest of `a` (0-based), reordering `a` (quickselect, median-of-three pivots; after too many
    /// rounds it sorts what is left, so the worst case stays O(n log n)). The elements must be distinct.
    static func select(_ a: UnsafeMutableBufferPointer<UInt64>, rank: Int) -> UInt64 {
        var lo = 0
        var hi = a.count - 1
        var rounds = 0
        while lo < hi {
            rounds += 1
            if rounds > 64 {
                var rest = UnsafeMutableBufferPointer(rebasing: a[lo...hi])
                rest.sort()
                return a[rank]
            }
            let mid = lo + (hi - lo) / 2
            if a[mid] < a[lo] { a.swapAt(mid, lo) }
            if a[hi] < a[lo] { a.swapAt(hi, lo) }
            if a[hi] < a[mid] { a.swapAt(hi, mid) }
            let pivot = a[mid]
            var i = lo
            var j = hi
            while i <= j {
                while a[i] < pivot { i += 1 }
                while a[j] > pivot { j -= 1 }
                if i <= j {
                    a.swapAt(i, j)
                    i += 1
                    j -= 1
                }
            }
            // Now a[lo ... j] <= pivot <= a[i ... hi], and anything between equals the pivot.
            if rank <= j {
                hi = j
            } else if rank >= i {
                lo = i
            } else {
                return a[rank]
            }
        }
        return a[rank]
    }

    // MARK: Truncation

    /// Applies top-k, top-p and min-p. Leaves `keptIDs` empty when every id stays (nothing truncates), else fills
    /// `keptIDs` and `keptWeights` (`e` of each). Returns the largest logit, or nil when it is not finite (then the
    /// caller takes the argmax).
    private mutating func truncate(_ logits: UnsafeBufferPointer<Float>) -> Float? {
        let p = parameters
        let n = logits.count
        keptIDs.removeAll(keepingCapacity: true)
        keptWeights.removeAll(keepingCapacity: true)
        guard n > 0 else { return nil }
        let k = p.topK > 0 && p.topK < n ? p.topK : n
        let everyID = k == n
        let maxLogit: Float
        if everyID {
            maxLogit = logits[Sampler.argmax(logits)]
        } else {
            maxLogit = selectTopK(k, logits)
        }
        guard maxLogit.isFinite else { return nil }
        let truncatesMass = p.topP < 1
        if everyID && !truncatesMass && p.minP <= 0 { return maxLogit }

        // The candidates' `e`, their total in id order, and the min-p survivors (a prefix of the candidates in
        // logit order, since `e` grows with the logit).
        var total: Double = 0
        func consider(_ id: Int) {
            let e = expf(logits[id] - maxLogit)
            total += Double(e)
            if e >= p.minP {
                keptIDs.append(Int32(truncatingIfNeeded: id))
                keptWeights.append(e)
            }
        }
        if everyID {
            if !truncatesMass {
                // Min-p alone: ids far below the threshold need no exponential.
                let floor = logf(p.minP) - 1
                for id in 0..<n where logits[id] - maxLogit >= floor { consider(id) }
                return maxLogit
            }
            for id in 0..<n { consider(id) }
        } else {
            for id in candidateIDs { consider(Int(id)) }
        }
        guard truncatesMass else { return maxLogit }
        cutTopP(logits, maxLogit: maxLogit, target: Double(p.topP) * total)
        return maxLogit
    }

    /// Fills `candidateIDs` with the top-`k` ids in id order; returns the largest logit.
    private mutating func selectTopK(_ k: Int, _ logits: UnsafeBufferPointer<Float>) -> Float {
        candidateIDs.removeAll(keepingCapacity: true)
        if k <= Sampler.smallTopK {
            Sampler.selectSmallest(k, of: logits, into: &keys)
            for key in keys { candidateIDs.append(Int32(truncatingIfNeeded: Sampler.id(ofKey: key))) }
            candidateIDs.sort()
            return logits[Sampler.id(ofKey: keys[0])]
        }
        keys.removeAll(keepingCapacity: true)
        for id in 0..<logits.count { keys.append(Sampler.sortKey(logits[id], id)) }
        let threshold = keys.withUnsafeMutableBufferPointer { Sampler.select($0, rank: k - 1) }
        var best = 0
        for id in 0..<logits.count where Sampler.sortKey(logits[id], id) <= threshold {
            candidateIDs.append(Int32(truncatingIfNeeded: id))
            if logits[id] > logits[best] || candidateIDs.count == 1 { best = id }
        }
        return logits[best]
    }

    /// Top-p over the min-p survivors in `keptIDs`/`keptWeights` (id order): keeps the shortest prefix in logit
    /// order whose `e` adds up to `target`, in that order. Sorts only the survivors down to the bucket where the
    /// mass crosses the target.
    private mutating func cutTopP(_ logits: UnsafeBufferPointer<Float>, maxLogit: Float, target: Double) {
        var survivorMass: Double = 0
        for e in keptWeights { survivorMass += Double(e) }
        // The sums below differ from each other only by rounding (a relative 1e-11 at most over a vocabulary in
        // Double); a margin far above that decides safely when the survivors cannot reach the target.
        let margin = 1 - 1e-9
        if survivorMass < target * margin { return }

        if bucketMass.count != Sampler.bucketCount {
            bucketMass = [Double](repeating: 0, count: Sampler.bucketCount)
        } else {
            for i in bucketMass.indices { bucketMass[i] = 0 }
        }
        for e in keptWeights { bucketMass[Sampler.bucket(e)] += Double(e) }
        var last = 0
        var running: Double = 0
        while last < Sampler.bucketCount - 1 {
            running += bucketMass[last]
            if running >= target * margin { break }
            last += 1
        }
        while true {
            // Every survivor at least as likely as the bucket `last` (a prefix in logit order), sorted.
            keys.removeAll(keepingCapacity: true)
            for (i, id) in keptIDs.enumerated() where Sampler.bucket(keptWeights[i]) <= last {
                keys.append(Sampler.sortKey(logits[Int(id)], Int(id)))
            }
            keys.sort()
            var cumulative: Double = 0
            var count = keys.count
            for (i, key) in keys.enumerated() {
                cumulative += Double(expf(logits[Sampler.id(ofKey: key)] - maxLogit))
                if cumulative >= target {
                    count = i + 1
                    break
                }
            }
            let complete = count < keys.count || cumulative >= target || last >= Sampler.bucketCount - 1
            if complete || keys.count == keptIDs.count {
                keptIDs.removeAll(keepingCapacity: true)
                keptWeights.removeAll(keepingCapacity: true)
                for key in keys[0..<count] {
                    let id = Sampler.id(ofKey: key)
                    keptIDs.append(Int32(truncatingIfNeeded: id))
                    keptWeights.append(expf(logits[id] - maxLogit))
                }
                return
            }
            // Rounding left the prefix just short of the target: take the next bucket too.
            last += 1
        }
    }

    // MARK: Draws

    /// A draw over every id from the tempered softmax, in id order.
    private mutating func drawFromAll(_ logits: UnsafeBufferPointer<Float>, maxLogit: Float) -> Int {
        let n = logits.count
        let temperature = parameters.temperature
        if allWeights.count < n { allWeights = [Float](repeating: 0, count: n) }
        var total: Double = 0
        allWeights.withUnsafeMutableBufferPointer { w in
            if temperature == 1 {
                for i in 0..<n {
                    w[i] = expf(logits[i] - maxLogit)
                    total += Double(w[i])
                }
            } else {
                for i in 0..<n {
                    w[i] = expf((logits[i] - maxLogit) / temperature)
                    total += Double(w[i])
                }
            }
        }
        let target = generator.nextUnitDouble() * total
        var cumulative: Double = 0
        for i in 0..<n {
            cumulative += Double(allWeights[i])
            if target < cumulative { return i }
        }
        return Sampler.argmax(logits)
    }

    /// A draw over `keptIDs` from the tempered softmax, in their order.
    private mutating func drawFromKept(_ logits: UnsafeBufferPointer<Float>, maxLogit: Float) -> Int {
        let temperature = parameters.temperature
        var total: Double = 0
        var best = 0
        for i in keptIDs.indices {
            if temperature != 1 {
                keptWeights[i] = expf((logits[Int(keptIDs[i])] - maxLogit) / temperature)
            }
            total += Double(keptWeights[i])
            if keptWeights[i] > keptWeights[best] { best = i }
        }
        let target = generator.nextUnitDouble() * total
        var cumulative: Double = 0
        for i in keptIDs.indices {
            cumulative += Double(keptWeights[i])
            if target < cumulative { return Int(keptIDs[i]) }
        }
        return Int(keptIDs[best])
    }

    private mutating func applyPenalties(_ logits: UnsafeMutableBufferPointer<Float>, history: [Int]) {
        let p = parameters
        guard p.appliesPenalties, !history.isEmpty else { return }
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
}
