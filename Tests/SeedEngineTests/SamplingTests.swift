import Foundation
import Testing

@testable import SeedEngine

/// Logits whose softmax is known: `log(p)` for the given probabilities.
func logits(_ probabilities: [Float]) -> [Float] { probabilities.map { logf($0) } }

func draw(_ parameters: SamplingParameters, _ values: [Float], history: [Int] = [], count: Int) -> [Int: Int] {
    var sampler = Sampler(parameters: parameters)
    var histogram: [Int: Int] = [:]
    for _ in 0..<count {
        var copy = values
        let id = copy.withUnsafeMutableBufferPointer { sampler.sample($0, history: history) }
        histogram[id, default: 0] += 1
    }
    return histogram
}

@Suite struct SamplingTests {
    @Test func greedyPicksTheArgmaxAndBreaksTiesTowardTheLowestID() {
        let values: [Float] = [0.5, 2, -1, 2, 1.9]
        #expect(draw(.greedy, values, count: 3) == [1: 3])
    }

    @Test func temperatureSamplingFollowsTheSoftmax() {
        var p = SamplingParameters()
        p.temperature = 1
        p.topK = 0
        p.topP = 1
        p.minP = 0
        p.seed = 1234
        let probabilities: [Float] = [0.5, 0.3, 0.15, 0.05]
        let n = 20_000
        let histogram = draw(p, logits(probabilities), count: n)
        for (id, expected) in probabilities.enumerated() {
            let observed = Float(histogram[id, default: 0]) / Float(n)
            // Four standard deviations of a binomial proportion: fails by chance about once in 16,000 runs.
            let sigma = (expected * (1 - expected) / Float(n)).squareRoot()
            #expect(abs(observed - expected) < 4 * sigma + 1e-4, "token \(id): \(observed) vs \(expected)")
        }
    }

    @Test func lowTemperatureSharpensAndHighTemperatureFlattens() {
        var p = SamplingParameters()
        p.topK = 0
        p.topP = 1
        p.minP = 0
        p.temperature = 0.25
        let values = logits([0.6, 0.4])
        let sharp = draw(p, values, count: 4000)[0, default: 0]
        p.temperature = 4
        let flat = draw(p, values, count: 4000)[0, default: 0]
        // At T=0.25 token 0 has probability 0.6^4/(0.6^4+0.4^4) = 0.835; at T=4, 0.525.
        #expect(abs(Float(sharp) / 4000 - 0.835) < 0.03)
        #expect(abs(Float(flat) / 4000 - 0.525) < 0.03)
    }

    @Test func topKTopPAndMinPRestrictTheCandidates() {
        var p = SamplingParameters()
        p.temperature = 1
        p.minP = 0
        p.topP = 1
        let values = logits([0.4, 0.3, 0.2, 0.1])
        p.topK = 2
        #expect(Set(draw(p, values, count: 2000).keys) == [0, 1])
        p.topK = 0
        p.topP = 0.65  // 0.4 + 0.3 >= 0.65: the nucleus is {0, 1}
        #expect(Set(draw(p, values, count: 2000).keys) == [0, 1])
        p.topP = 1
        p.minP = 0.6  // keep tokens with p >= 0.6 * 0.4 = 0.24
        #expect(Set(draw(p, values, count: 2000).keys) == [0, 1])
        p.minP = 0
        p.topK = 1
        p.temperature = 5
        #expect(draw(p, values, count: 50) == [0: 50])
    }

    @Test func theSameSeedGivesTheSameSequence() {
        var p = SamplingParameters()
        p.seed = 99
        p.topK = 0
        let values = logits([0.25, 0.25, 0.25, 0.25])
        func sequence(_ p: SamplingParameters) -> [Int] {
            var sampler = Sampler(parameters: p)
            return (0..<64).map { _ in
                var copy = values
                return copy.withUnsafeMutableBufferPointer { sampler.sample($0, history: []) }
            }
        }
        #expect(sequence(p) == sequence(p))
        var other = p
        other.seed = 100
        #expect(sequence(p) != sequence(other))
    }

    @Test func repetitionPresenceAndFrequencyPenalties() {
        var p = SamplingParameters.greedy
        p.repetitionPenalty = 2
        // Token 0 (logit 3) was seen: 3 / 2 = 1.5 < 2, so token 1 wins.
        #expect(draw(p, [3, 2, -1], history: [0], count: 1) == [1: 1])
        // A negative logit is multiplied: token 2 at -1 becomes -2, still below token 1.
        p.repetitionPenalty = 1
        p.frequencyPenalty = 0.6
        // Token 0 seen twice: 3 - 2 * 0.6 = 1.8 < 2.
        #expect(draw(p, [3, 2, -1], history: [0, 0], count: 1) == [1: 1])
        p.frequencyPenalty = 0
        p.presencePenalty = 1.5
        #expect(draw(p, [3, 2, -1], history: [0, 0, 0], count: 1) == [1: 1])
        // Outside the window the penalty does not apply.
        p.penaltyWindow = 1
        #expect(draw(p, [3, 2, -1], history: [0, 2], count: 1) == [0: 1])
    }

    static func invalid() -> [(String, SamplingParameters)] {
        var cases: [(String, SamplingParameters)] = []
        func add(_ name: String, _ change: (inout SamplingParameters) -> Void) {
            var p = SamplingParameters()
            change(&p)
            cases.append((name, p))
        }
        add("temperature") { $0.temperature = -0.1 }
        add("temperature") { $0.temperature = .nan }
        add("top_k") { $0.topK = -1 }
        add("top_p") { $0.topP = 0 }
        add("top_p") { $0.topP = 1.01 }
        add("min_p") { $0.minP = -0.5 }
        add("repeat_penalty") { $0.repetitionPenalty = 0 }
        add("repeat_last_n") { $0.penaltyWindow = -2 }
        add("presence_penalty") { $0.presencePenalty = 3 }
        add("frequency_penalty") { $0.frequencyPenalty = .infinity }
        return cases
    }

    @Test func invalidValuesAreRejectedByName() {
        for (name, p) in Self.invalid() {
            #expect {
                try p.validate()
            } throws: { error in
                guard case EngineError.invalidParameter(let reported, _) = error else { return false }
                return reported == name
            }
        }
        #expect(throws: Never.self) { try SamplingParameters().validate() }
    }
}

/// The candidate set of ``Sampler`` computed the slow, obvious way: every id sorted by logit (ties: lower id first),
/// then top-k, top-p and min-p as prefixes of that order, with the sums the sampler documents (the total in `Double`
/// in id order, the top-p prefix in `Double` in logit order). Ids in increasing order.
func referenceCandidates(_ p: SamplingParameters, _ logits: [Float]) -> [Int] {
    let n = logits.count
    if p.temperature == 0 { return [Sampler.argmax(logits.withUnsafeBufferPointer { $0 })] }
    var order = Array(0..<n).sorted { a, b in logits[a] > logits[b] || (logits[a] == logits[b] && a < b) }
    if p.topK > 0 { order = Array(order.prefix(p.topK)) }
    let m = logits[order[0]]
    if !m.isFinite { return [order[0]] }
    let e = order.map { expf(logits[$0] - m) }
    var keep = order.count
    if p.topP < 1 {
        var total: Double = 0
        for id in order.sorted() { total += Double(expf(logits[id] - m)) }
        let target = Double(p.topP) * total
        var cumulative: Double = 0
        for i in 0..<keep {
            cumulative += Double(e[i])
            if cumulative >= target {
                keep = i + 1
                break
            }
        }
    }
    if p.minP > 0 {
        var i = 1
        while i < keep && e[i] >= p.minP { i += 1 }
        keep = i
    }
    return order.prefix(keep).sorted()
}

/// Random logits: normal with the given spread, rounded to `step` when it is positive (to make ties), with a share
/// of `-inf` entries.
func randomLogits(_ n: Int, spread: Float, step: Float, negativeInfinityShare: Double, seed: UInt64) -> [Float] {
    var g = SeededGenerator(seed: seed)
    return (0..<n).map { _ in
        if g.nextUnitDouble() < negativeInfinityShare { return -Float.infinity }
        // Box-Muller.
        let u1 = 1 - g.nextUnitDouble()
        let u2 = g.nextUnitDouble()
        var v = spread * Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
        if step > 0 { v = (v / step).rounded() * step }
        return v
    }
}

/// The upper `1e-6` tail of the chi-square distribution with `df` degrees of freedom (Wilson-Hilferty: the cube root
/// of chi-square / df is nearly normal; z = 4.753 leaves 1e-6 above).
func chiSquareCritical(degreesOfFreedom df: Int) -> Double {
    let d = Double(df)
    let a = 2 / (9 * d)
    return d * pow(1 - a + 4.753 * a.squareRoot(), 3)
}

@Suite struct SamplerTruncationTests {
    static func candidates(_ p: SamplingParameters, _ logits: [Float]) -> [Int] {
        var sampler = Sampler(parameters: p)
        var copy = logits
        return copy.withUnsafeMutableBufferPointer { sampler.candidates($0, history: []) }
    }

    @Test func keptCandidatesEqualAFullSortReference() {
        var checked = 0
        let shapes: [(n: Int, spread: Float, step: Float, infinities: Double)] = [
            (1, 1, 0, 0), (2, 1, 1, 0), (7, 2, 0.5, 0.2), (300, 1, 0, 0), (300, 3, 0.25, 0.1), (2000, 0.3, 0, 0),
            (2000, 4, 0.5, 0.05), (2000, 10, 0, 0.3),
        ]
        let topKs = [0, 1, 5, 40, 64, 65, 150, 1999, 2000, 5000]
        let topPs: [Float] = [1, 0.999_999, 0.95, 0.9, 0.5, 0.1, 1e-6]
        let minPs: [Float] = [0, 0.001, 0.05, 0.3, 1]
        for (index, shape) in shapes.enumerated() {
            let logits = randomLogits(
                shape.n, spread: shape.spread, step: shape.step, negativeInfinityShare: shape.infinities,
                seed: UInt64(index + 1))
            for topK in topKs {
                for topP in topPs {
                    for minP in minPs {
                        var p = SamplingParameters()
                        p.temperature = 0.7
                        p.topK = topK
                        p.topP = topP
                        p.minP = minP
                        let expected = referenceCandidates(p, logits)
                        let got = Self.candidates(p, logits)
                        #expect(
                            got == expected, "n \(shape.n) shape \(index) top_k \(topK) top_p \(topP) min_p \(minP)")
                        checked += 1
                    }
                }
            }
        }
        #expect(checked == 8 * 10 * 7 * 5)
    }

    @Test func aFullVocabularyMatchesTheReferenceToo() {
        // The server's vocabulary size, with a peaked and a flat distribution.
        for (seed, spread) in [(UInt64(11), Float(3)), (12, 0.2)] {
            let logits = randomLogits(49_152, spread: spread, step: 0, negativeInfinityShare: 0.01, seed: seed)
            for (topK, topP, minP) in [(0, Float(0.95), Float(0)), (0, 0.5, 0.01), (0, 1, 0.05), (1000, 0.9, 0)] {
                var p = SamplingParameters()
                p.temperature = 1
                p.topK = topK
                p.topP = topP
                p.minP = minP
                #expect(
                    Self.candidates(p, logits) == referenceCandidates(p, logits), "\(spread) \(topK) \(topP) \(minP)")
            }
        }
    }

    @Test func hardCasesTiesInfinitiesAndEdgeValues() {
        var p = SamplingParameters()
        p.temperature = 1
        p.topK = 0
        p.topP = 1
        p.minP = 0
        // Ties: top-k 2 of four equal logits keeps the two lowest ids.
        p.topK = 2
        #expect(Self.candidates(p, [1, 1, 1, 1]) == [0, 1])
        // +0 and -0 are the same logit: the lower id wins the tie.
        p.topK = 1
        #expect(Self.candidates(p, [-1, -0.0, 0, -2]) == [1])
        // -inf logits never stay unless nothing else does; an all -inf row falls back to the argmax (id 0).
        p.topK = 0
        p.minP = 1e-30
        #expect(Self.candidates(p, [-.infinity, 0, -.infinity, -1]) == [1, 3])
        #expect(Self.candidates(p, [-.infinity, -.infinity]) == [0])
        // +inf dominates: the first +inf alone.
        #expect(Self.candidates(p, [0, .infinity, .infinity]) == [1])
        // Min-p 1 keeps exactly the maximal logits.
        p.minP = 1
        #expect(Self.candidates(p, [2, 5, 5, 1]) == [1, 2])
        // Top-p: tiny keeps one; just below 1 keeps what is needed to come that close.
        p.minP = 0
        p.topP = 1e-6
        #expect(Self.candidates(p, [2, 5, 5, 1]) == [1])
        p.topP = 0.5
        #expect(Self.candidates(p, logits([0.4, 0.3, 0.2, 0.1])) == [0, 1])
        p.topP = 0.999_999
        #expect(Self.candidates(p, [0, -10, -100, -.infinity]) == [0, 1])  // e^-10 is 4.5e-5 of the mass
        // Top-p 1 with nothing else keeps every id, -inf ones included (they have no weight in the draw).
        p.topP = 1
        #expect(Self.candidates(p, [0, -.infinity, 3]) == [0, 1, 2])
        // Greedy: the argmax alone.
        #expect(Self.candidates(.greedy, [0, 3, 3]) == [1])
    }

    @Test func quickselectFindsEveryRank() {
        var g = SeededGenerator(seed: 5)
        for n in [1, 2, 3, 10, 1000] {
            let values = (0..<n).map { i in (g.next() >> 20) << 20 | UInt64(i) }  // distinct
            let sorted = values.sorted()
            for rank in Set([0, n / 3, n / 2, n - 1]) {
                var copy = values
                let got = copy.withUnsafeMutableBufferPointer { Sampler.select($0, rank: rank) }
                #expect(got == sorted[rank], "n \(n) rank \(rank)")
            }
        }
        // Already sorted and reversed inputs.
        var ascending = (0..<500).map { UInt64($0) }
        #expect(ascending.withUnsafeMutableBufferPointer { Sampler.select($0, rank: 123) } == 123)
        var descending = (0..<500).reversed().map { UInt64($0) }
        #expect(descending.withUnsafeMutableBufferPointer { Sampler.select($0, rank: 400) } == 400)
    }

    @Test func sortKeysOrderByLogitThenID() {
        let logits: [Float] = [-.infinity, -3, -0.0, 0, 1e-30, 2, .infinity, 2]
        let ids = Array(logits.indices).sorted { Sampler.sortKey(logits[$0], $0) < Sampler.sortKey(logits[$1], $1) }
        #expect(ids == [6, 5, 7, 4, 2, 3, 1, 0])
    }

    @Test func topIDsForLogprobs() {
        let logits = randomLogits(5000, spread: 2, step: 0.5, negativeInfinityShare: 0, seed: 3)
        var keys: [UInt64] = []
        let got = logits.withUnsafeBufferPointer { Sampler.topIDs(20, of: $0, keys: &keys) }
        let expected = Array(
            Array(0..<5000).sorted { a, b in logits[a] > logits[b] || (logits[a] == logits[b] && a < b) }.prefix(20))
        #expect(got == expected)
    }
}

@Suite struct SamplerDrawTests {
    /// Draws `count` tokens and checks the histogram against the tempered softmax over the reference candidates with
    /// a chi-square test at the 1e-6 level (a fixed seed, so the outcome is the same every run); ids outside the
    /// candidates must never come up.
    func checkDistribution(_ p: SamplingParameters, _ values: [Float], count: Int) {
        let kept = referenceCandidates(p, values)
        let m = kept.map { values[$0] }.max()!
        let weights = kept.map { Double(expf((values[$0] - m) / p.temperature)) }
        let total = weights.reduce(0, +)
        let histogram = draw(p, values, count: count)
        let outside = histogram.keys.filter { !kept.contains($0) }
        #expect(outside.isEmpty, "drawn outside the candidates: \(outside)")
        var chiSquare: Double = 0
        var cells = 0
        var pooledExpected: Double = 0
        var pooledObserved: Double = 0
        for (id, w) in zip(kept, weights) {
            let expected = w / total * Double(count)
            let observed = Double(histogram[id, default: 0])
            if expected < 5 {
                // Rare ids pooled into one cell so every cell expects at least 5.
                pooledExpected += expected
                pooledObserved += observed
                continue
            }
            chiSquare += (observed - expected) * (observed - expected) / expected
            cells += 1
        }
        if pooledExpected >= 5 {
            chiSquare += (pooledObserved - pooledExpected) * (pooledObserved - pooledExpected) / pooledExpected
            cells += 1
        }
        #expect(cells >= 2)
        #expect(chiSquare < chiSquareCritical(degreesOfFreedom: cells - 1), "chi-square \(chiSquare), \(cells) cells")
    }

    @Test func drawsFollowTheTemperedSoftmaxOverTheKeptCandidates() {
        let values = randomLogits(400, spread: 1.5, step: 0, negativeInfinityShare: 0.05, seed: 21)
        var settings: [(Float, Int, Float, Float)] = []
        settings.append((1, 0, 1, 0))  // no truncation: straight from the softmax
        settings.append((0.7, 0, 1, 0))
        settings.append((1.3, 0, 0.9, 0))  // top-p
        settings.append((1, 0, 1, 0.1))  // min-p
        settings.append((0.8, 10, 1, 0))  // small top-k
        settings.append((1, 120, 0.8, 0.02))  // large top-k, top-p, min-p
        for (temperature, topK, topP, minP) in settings {
            var p = SamplingParameters()
            p.temperature = temperature
            p.topK = topK
            p.topP = topP
            p.minP = minP
            p.seed = 77
            checkDistribution(p, values, count: 30_000)
        }
    }

    @Test func everyPathIsDeterministicPerSeed() {
        let values = randomLogits(3000, spread: 1, step: 0, negativeInfinityShare: 0, seed: 8)
        for (topK, topP, minP) in [(0, Float(1), Float(0)), (20, 1, 0), (500, 1, 0), (0, 0.9, 0), (0, 1, 0.05)] {
            var p = SamplingParameters()
            p.temperature = 1
            p.topK = topK
            p.topP = topP
            p.minP = minP
            func sequence(seed: UInt64) -> [Int] {
                p.seed = seed
                var sampler = Sampler(parameters: p)
                return (0..<200).map { _ in
                    var copy = values
                    return copy.withUnsafeMutableBufferPointer { sampler.sample($0, history: []) }
                }
            }
            #expect(sequence(seed: 4) == sequence(seed: 4))
            #expect(sequence(seed: 4) != sequence(seed: 5))
        }
    }
}

@Suite struct StopStringFilterTests {
    @Test func holdsBackAPossibleStartAndCutsAtTheStop() {
        var f = StopStringFilter(stops: ["<|end|>"])
        #expect(f.push("Hello <|") == "Hello ")
        #expect(f.push("en") == "")
        #expect(f.push("d|> ignored") == "")
        #expect(f.stopped)
        #expect(f.matchedStop == "<|end|>")
        #expect(f.push("more") == "")
    }

    @Test func releasesHeldTextWhenItTurnsOutNotToBeAStop() {
        var f = StopStringFilter(stops: ["STOP"])
        #expect(f.push("ST") == "")
        #expect(f.push("AR") == "STAR")
        #expect(f.push("S") == "")
        #expect(f.flush() == "S")
        #expect(!f.stopped)
    }

    @Test func earliestOfSeveralStopsWinsAndMultibyteTextSurvives() {
        var f = StopStringFilter(stops: ["éa", "\n\n", ""])
        #expect(f.push("café au lait\n\nsecond") == "café au lait")
        var g = StopStringFilter(stops: ["b", "ab"])
        #expect(g.push("xxab") == "xx")
        #expect(g.matchedStop == "ab")
    }

    @Test func noStopsPassesEverythingThrough() {
        var f = StopStringFilter(stops: [])
        #expect(f.push("anything 🌊") == "anything 🌊")
        #expect(f.flush() == "")
    }
}
