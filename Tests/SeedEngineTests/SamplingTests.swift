import Foundation
import SeedEngine
import Testing

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
