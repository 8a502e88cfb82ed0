import Foundation
import Testing

@testable import SeedKernels

@Suite struct RotaryTests {
    @Test func interleavedPairsMatchTheFormulaAndRotateHalfIsItsPermutation() {
        let headDim = 16
        let heads = 2
        let tokens = 3
        let start = 5
        let base: Float = 10_000
        var table = RotaryTable(rotaryDim: headDim, base: base, capacity: tokens)
        table.fill(start: start, count: tokens)
        var rng = SplitMix(state: 3)
        let input = (0..<(tokens * heads * headDim)).map { _ in rng.nextFloat() * 2 - 1 }

        var interleaved = input
        table.applyInterleaved(&interleaved, tokens: tokens, heads: heads, headDim: headDim, rowStride: heads * headDim)
        // Rotate-half on the de-interleaved layout (pair i = elements i and i + d/2) must give the same rotation.
        let half = headDim / 2
        func permute(_ v: [Float]) -> [Float] {
            var out = v
            for row in 0..<(tokens * heads) {
                for i in 0..<half {
                    out[row * headDim + i] = v[row * headDim + 2 * i]
                    out[row * headDim + i + half] = v[row * headDim + 2 * i + 1]
                }
            }
            return out
        }
        var halves = permute(input)
        table.applyHalves(&halves, tokens: tokens, heads: heads, headDim: headDim, rowStride: heads * headDim)
        let expectedHalves = permute(interleaved)
        for i in halves.indices { #expect(abs(halves[i] - expectedHalves[i]) < 1e-6) }

        for t in 0..<tokens {
            for h in 0..<heads {
                for i in 0..<half {
                    let angle = Double(start + t) * pow(Double(base), -Double(2 * i) / Double(headDim))
                    let k = (t * heads + h) * headDim + 2 * i
                    let a = Double(input[k])
                    let b = Double(input[k + 1])
                    #expect(abs(Double(interleaved[k]) - (a * cos(angle) - b * sin(angle))) < 1e-4)
                    #expect(abs(Double(interleaved[k + 1]) - (a * sin(angle) + b * cos(angle))) < 1e-4)
                }
            }
        }
    }
}
