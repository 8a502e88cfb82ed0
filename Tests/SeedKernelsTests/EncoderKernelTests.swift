import Foundation
import SeedTensor
import Testing

@testable import SeedKernels

/// The encoder's vectorised kernels against naive double-precision references.
@Suite struct EncoderKernelTests {
    static let pool = WorkerPool(threads: 2)

    @Test(arguments: [GELUKind.exact, .tanh])
    func geluMatchesDoublePrecisionOnVectorsAndTail(kind: GELUKind) {
        // 1001 values from -8 to 8: 62 full vectors and a 9-value scalar tail.
        let inputs: [Float] = (0...1000).map { -8 + Float($0) * 0.016 }
        var outputs = inputs
        gelu(&outputs, count: outputs.count, kind: kind)
        for (x, y) in zip(inputs, outputs) {
            let v = Double(x)
            // Far in the negative tail the result is e^(-x²/2)-small and its exponent is computed in float, which
            // costs a relative error of about x² · 1e-7 on top of the 4 ulps.
            let expected = expected0(kind, v)
            let tolerance = Double(Float(expected).ulp) * 4 + abs(expected) * v * v * 1e-7
            #expect(abs(Double(y) - expected) <= max(1e-30, tolerance), "gelu(\(x)) = \(y), expected \(expected)")
        }
    }

    /// GELU in Double, written without cancellation in the negative tail: `1 + erf(a) = erfc(-a)` and
    /// `(1 + tanh(z)) / 2 = 1 / (1 + e^(-2z))`.
    private func expected0(_ kind: GELUKind, _ v: Double) -> Double {
        kind == .exact
            ? 0.5 * v * erfc(-v / 2.0.squareRoot())
            : v / (1 + exp(-2 * (2 / Double.pi).squareRoot() * (v + 0.044715 * v * v * v)))
    }

    /// Naive attention: every token of a sequence against every token of the same sequence, in Double.
    func naiveAttention(
        q: [Float], k: [Float], v: [Float], sequences: [Range<Int>], heads: Int, kvHeads: Int, headDim: Int
    ) -> [Double] {
        let tokens = sequences.last!.upperBound
        let stride = heads * headDim
        let kvStride = kvHeads * headDim
        var out = [Double](repeating: 0, count: tokens * stride)
        let scale = 1 / Double(headDim).squareRoot()
        for range in sequences {
            for t in range {
                for h in 0..<heads {
                    let kvh = h / (heads / kvHeads)
                    var scores = range.map { j in
                        (0..<headDim).reduce(0.0) {
                            $0 + Double(q[t * stride + h * headDim + $1]) * Double(k[j * kvStride + kvh * headDim + $1])
                        } * scale
                    }
                    let m = scores.max()!
                    scores = scores.map { exp($0 - m) }
                    let total = scores.reduce(0, +)
                    for (index, j) in range.enumerated() {
                        for d in 0..<headDim {
                            out[t * stride + h * headDim + d] +=
                                scores[index] / total * Double(v[j * kvStride + kvh * headDim + d])
                        }
                    }
                }
            }
        }
        return out
    }

    @Test(arguments: [(4, 4), (4, 2)])
    func bidirectionalAttentionMatchesNaive(heads: Int, kvHeads: Int) {
        let headDim = 8
        // Lengths 5, 1, 20 and 3, packed; the scores matrix of the 20-token sequence exercises the vector softmax.
        let sequences = [0..<5, 5..<6, 6..<26, 26..<29]
        let tokens = 29
        var rng = SplitMix(state: 42)
        let q = (0..<(tokens * heads * headDim)).map { _ in rng.nextFloat() * 2 - 1 }
        let k = (0..<(tokens * kvHeads * headDim)).map { _ in rng.nextFloat() * 2 - 1 }
        let v = (0..<(tokens * kvHeads * headDim)).map { _ in rng.nextFloat() * 2 - 1 }
        let shape = AttentionShape(heads: heads, kvHeads: kvHeads, headDim: headDim)
        let scratch = AttentionScratch(threads: Self.pool.threadCount, capacity: 20 * 20)
        var out = [Float](repeating: .nan, count: tokens * heads * headDim)
        bidirectionalAttention(
            q: q, qStride: heads * headDim, keys: k, values: v, kvStride: kvHeads * headDim, sequences: sequences,
            shape: shape, out: &out, outStride: heads * headDim, scratch: scratch, pool: Self.pool)
        let expected = naiveAttention(
            q: q, k: k, v: v, sequences: sequences, heads: heads, kvHeads: kvHeads, headDim: headDim)
        for (a, b) in zip(out, expected) { #expect(abs(Double(a) - b) < 1e-5) }
    }
}
