import Foundation
import SeedTensor
import Testing

@testable import SeedKernels

/// The vectorised exponential and the kernels built on it (softmax, SwiGLU, attention) against double-precision
/// references.
@Suite struct ElementwiseTests {
    @Test func exp16MatchesLibmWithinTwoUlp() {
        var worst: Float = 0
        var x = Float(-87.3)
        while x <= 88 {
            let lanes = SIMD16<Float>((0..<16).map { x + Float($0) * 0.0061 })
            let e = exp16(lanes)
            for i in 0..<16 {
                let expected = Foundation.exp(Double(lanes[i]))
                worst = max(worst, Float(abs(Double(e[i]) - expected) / Double(Float(expected).ulp)))
            }
            x += 0.0977
        }
        #expect(worst <= 2, "worst error \(worst) ulp")
        // Far below the range: the smallest normal float, never NaN or a denormal; far above: finite.
        let extremes = exp16(SIMD16<Float>(repeating: -1000))
        #expect(extremes[0] > 0 && extremes[0] < 1.2e-38)
        #expect(exp16(SIMD16<Float>(repeating: 0))[3] == 1)
        #expect(exp16(SIMD16<Float>(repeating: 500))[0].isFinite)
    }

    @Test func siluMultiplyMatchesNaive() {
        var rng = SplitMix(state: 3)
        for count in [1, 16, 37, 1536] {
            let gate = (0..<count).map { _ in (rng.nextFloat() * 2 - 1) * 40 }
            let up = (0..<count).map { _ in rng.nextFloat() * 2 - 1 }
            var out = gate
            up.withUnsafeBufferPointer { siluMultiply(gate: &out, up: $0.baseAddress!, count: count) }
            for i in 0..<count {
                let g = Double(gate[i])
                let expected = g / (1 + Foundation.exp(-g)) * Double(up[i])
                #expect(abs(Double(out[i]) - expected) <= 1e-6 * abs(expected) + 1e-30, "count \(count) i \(i)")
            }
        }
    }

    @Test func softmaxMatchesNaive() {
        var rng = SplitMix(state: 4)
        for count in [1, 15, 16, 17, 40, 100] {
            let x = (0..<count).map { _ in (rng.nextFloat() * 2 - 1) * 30 }
            var y = x
            softmaxInPlace(&y, count: count)
            let m = Double(x.max()!)
            let total = x.reduce(0.0) { $0 + Foundation.exp(Double($1) - m) }
            for i in 0..<count {
                let expected = Foundation.exp(Double(x[i]) - m) / total
                #expect(abs(Double(y[i]) - expected) <= 1e-6 * expected + 1e-12, "count \(count) i \(i)")
            }
        }
    }

    @Test(arguments: [16, 20, 64, 80, 128])
    func causalAttentionMatchesNaive(headDim: Int) {
        var rng = SplitMix(state: UInt64(headDim))
        let shape = AttentionShape(heads: 6, kvHeads: 2, headDim: headDim)
        let pool = WorkerPool(threads: 2)
        let kvDim = shape.kvHeads * headDim
        let qDim = shape.heads * headDim
        for (start, tokens) in [(0, 1), (0, 5), (37, 1), (12, 3)] {
            let positions = start + tokens
            let keys = (0..<(positions * kvDim)).map { _ in rng.nextFloat() * 2 - 1 }
            let values = (0..<(positions * kvDim)).map { _ in rng.nextFloat() * 2 - 1 }
            let q = (0..<(tokens * qDim)).map { _ in (rng.nextFloat() * 2 - 1) * 3 }
            var out = [Float](repeating: .nan, count: tokens * qDim)
            let scratch = AttentionScratch(threads: 2, capacity: positions)
            causalAttention(
                q: q, qStride: qDim, keys: keys, values: values, kvStride: kvDim, tokens: tokens, start: start,
                shape: shape, out: &out, outStride: qDim, scratch: scratch, pool: pool)
            for t in 0..<tokens {
                for h in 0..<shape.heads {
                    let kvh = h / (shape.heads / shape.kvHeads)
                    let visible = start + t + 1
                    var scores = (0..<visible).map { j -> Double in
                        var s = 0.0
                        for d in 0..<headDim {
                            s += Double(q[t * qDim + h * headDim + d]) * Double(keys[j * kvDim + kvh * headDim + d])
                        }
                        return s * Double(shape.scale)
                    }
                    let m = scores.max()!
                    scores = scores.map { Foundation.exp($0 - m) }
                    let total = scores.reduce(0, +)
                    for d in 0..<headDim {
                        var expected = 0.0
                        for j in 0..<visible { expected += scores[j] * Double(values[j * kvDim + kvh * headDim + d]) }
                        expected /= total
                        let got = Double(out[t * qDim + h * headDim + d])
                        #expect(abs(got - expected) <= 1e-5, "hd \(headDim) start \(start) t \(t) h \(h) d \(d)")
                    }
                }
            }
        }
    }
}
