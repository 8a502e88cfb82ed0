import SeedTensor
import Testing

@testable import SeedTrain

/// Central finite differences in float64 against every op's backward.
///
/// Each check draws random leaves, runs the op, back-propagates a random seed `R` (so the probed loss is
/// `L = Σ R ⊙ op(leaves)`), and compares every element of every leaf gradient with `(L(x + h) - L(x - h)) / 2h`,
/// `h = 1e-5` (every element of small leaves, 150 random ones of larger leaves). The truncation error is ~h² ≈ 1e-10 and the rounding error ~1e-16 · |L| / h ≈ 1e-10, so a
/// tolerance of 1e-7 (relative to max(1, |g|)) is safe while a wrong derivative shows up at 1e-2 or worse.
@Suite("Gradient checks (float64 finite differences)")
struct AutogradGradientCheckTests {
    static let step = 1e-5
    static let tolerance = 1e-7

    /// Returns the worst error over all leaf elements.
    static func check(
        leaves shapes: [(rows: Int, columns: Int)], seed: UInt64 = 1, scale: Double = 1,
        threads: Int = 2, _ build: (Tape<Double>, [Variable]) -> Variable
    ) -> Double {
        var sampler = NormalSampler(seed: seed)
        var values = shapes.map { shape in (0..<(shape.rows * shape.columns)).map { _ in scale * sampler.next() } }
        let tape = Tape<Double>(pool: WorkerPool(threads: threads))

        func evaluate(recording: Bool) -> (output: Variable, leaves: [Variable]) {
            tape.reset()
            tape.isRecording = recording
            let leaves = zip(values, shapes).map { leaf, shape in
                tape.constant(leaf, rows: shape.rows, columns: shape.columns, requiresGradient: true)
            }
            return (build(tape, leaves), leaves)
        }

        let (output, leaves) = evaluate(recording: true)
        let outputCount = tape.value(of: output).count
        let seedValues = (0..<outputCount).map { _ in sampler.next() }
        tape.backward(from: output, seed: seedValues)
        let analytic = leaves.map { leaf in tape.gradient(of: leaf).map { Array($0) } ?? [] }

        func probe() -> Double {
            let (output, _) = evaluate(recording: false)
            return zip(tape.value(of: output), seedValues).reduce(0) { $0 + $1.0 * $1.1 }
        }
        var worst = 0.0
        for leaf in values.indices {
            #expect(analytic[leaf].count == values[leaf].count, "leaf \(leaf) got no gradient")
            guard analytic[leaf].count == values[leaf].count else { continue }
            let count = values[leaf].count
            let probes =
                count <= 150 ? Array(0..<count) : (0..<150).map { _ in Int(sampler.next().magnitude * 1e6) % count }
            for i in probes {
                let original = values[leaf][i]
                values[leaf][i] = original + step
                let plus = probe()
                values[leaf][i] = original - step
                let minus = probe()
                values[leaf][i] = original
                let numeric = (plus - minus) / (2 * step)
                worst = max(worst, abs(numeric - analytic[leaf][i]) / max(1, abs(numeric)))
            }
        }
        return worst
    }

    @Test("embedding lookup (repeated ids accumulate)")
    func embedding() {
        let ids: [Int32] = [3, 0, 3, 5, 1, 3]
        let error = Self.check(leaves: [(7, 5)]) { tape, leaves in
            ids.withUnsafeBufferPointer { tape.embedding(leaves[0], tokens: $0) }
        }
        #expect(error < Self.tolerance, "max error \(error)")
    }

    @Test("linear with bias: input, weight and bias")
    func linear() {
        let error = Self.check(leaves: [(6, 5), (4, 5), (1, 4)]) { tape, leaves in
            tape.linear(leaves[0], weight: leaves[1], bias: leaves[2])
        }
        #expect(error < Self.tolerance, "max error \(error)")
    }

    @Test("linear large enough to split the GEMM over threads")
    func linearSplit() {
        // 70 x 80 x 60: above the single-call threshold, so forward and both backward GEMMs are split.
        let error = Self.check(leaves: [(70, 60), (80, 60)], scale: 0.1) { tape, leaves in
            tape.linear(leaves[0], weight: leaves[1])
        }
        #expect(error < Self.tolerance, "max error \(error)")
    }

    @Test("residual add, including a variable added to itself")
    func add() {
        let error = Self.check(leaves: [(3, 4), (3, 4)]) { tape, leaves in
            tape.add(tape.add(leaves[0], leaves[1]), leaves[0])
        }
        #expect(error < Self.tolerance, "max error \(error)")
    }

    @Test("RMSNorm: input and weight")
    func rmsNorm() {
        let error = Self.check(leaves: [(5, 19), (1, 19)]) { tape, leaves in
            tape.rmsNorm(leaves[0], weight: leaves[1], epsilon: 1e-5)
        }
        #expect(error < Self.tolerance, "max error \(error)")
    }

    @Test("LayerNorm: input, weight and bias")
    func layerNorm() {
        let error = Self.check(leaves: [(5, 19), (1, 19), (1, 19)]) { tape, leaves in
            tape.layerNorm(leaves[0], weight: leaves[1], bias: leaves[2], epsilon: 1e-5)
        }
        #expect(error < Self.tolerance, "max error \(error)")
    }

    @Test("SwiGLU: gate and up")
    func swiGLU() {
        let error = Self.check(leaves: [(4, 21), (4, 21)], scale: 2) { tape, leaves in
            tape.swiGLU(gate: leaves[0], up: leaves[1])
        }
        #expect(error < Self.tolerance, "max error \(error)")
    }

    @Test("GELU, exact and tanh approximation", arguments: [GELUApproximation.none, .tanh])
    func gelu(approximation: GELUApproximation) {
        let error = Self.check(leaves: [(4, 21)], scale: 2) { tape, leaves in
            tape.gelu(leaves[0], approximation: approximation)
        }
        #expect(error < Self.tolerance, "max error \(error)")
    }

    @Test("RoPE, rotate-half and interleaved", arguments: [false, true])
    func rotary(interleaved: Bool) {
        let table = RotaryEmbedding<Double>(headDim: 8, base: 10_000, maximumPositions: 32, interleaved: interleaved)
        let positions: [Int32] = [0, 1, 2, 7, 0, 31]
        let error = Self.check(leaves: [(6, 24)]) { tape, leaves in
            positions.withUnsafeBufferPointer { tape.rotary(leaves[0], table: table, positions: $0, heads: 3) }
        }
        #expect(error < Self.tolerance, "max error \(error)")
    }

    @Test(
        "causal attention: MHA, GQA and MQA over two query blocks",
        arguments: [(heads: 2, kvHeads: 2), (heads: 4, kvHeads: 2), (heads: 3, kvHeads: 1)])
    func attention(heads: Int, kvHeads: Int) {
        // length 67 > the 64-row query block, so backward recomputes over two blocks.
        let layout = AttentionLayout(batch: 2, length: 67, heads: heads, kvHeads: kvHeads, headDim: 4)
        let tokens = layout.batch * layout.length
        let error = Self.check(leaves: [(tokens, heads * 4), (tokens, kvHeads * 4), (tokens, kvHeads * 4)]) {
            tape, leaves in
            tape.causalAttention(query: leaves[0], key: leaves[1], value: leaves[2], layout: layout)
        }
        #expect(error < Self.tolerance, "max error \(error)")
    }

    @Test("fused output projection + cross-entropy, chunked, with ignored targets", arguments: [1, 3, 100])
    func crossEntropy(chunkRows: Int) {
        let targets: [Int32] = [2, -1, 0, 10, 10, 5, -100]
        let error = Self.check(leaves: [(7, 6), (11, 6)]) { tape, leaves in
            targets.withUnsafeBufferPointer {
                tape.linearCrossEntropy(leaves[0], weight: leaves[1], targets: $0, chunkRows: chunkRows)
            }
        }
        #expect(error < Self.tolerance, "max error \(error)")
    }

    @Test("cross-entropy with an explicit normalizer scales loss and gradients")
    func crossEntropyNormalizer() {
        let targets: [Int32] = [1, 2, 0]
        let error = Self.check(leaves: [(3, 4), (5, 4)]) { tape, leaves in
            targets.withUnsafeBufferPointer {
                tape.linearCrossEntropy(leaves[0], weight: leaves[1], targets: $0, normalizer: 7)
            }
        }
        #expect(error < Self.tolerance, "max error \(error)")
    }

    @Test("a small transformer block composed from the ops, on one thread")
    func composedBlock() {
        let table = RotaryEmbedding<Double>(headDim: 4, base: 10_000, maximumPositions: 8, interleaved: false)
        let positions: [Int32] = [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]
        let layout = AttentionLayout(batch: 2, length: 5, heads: 2, kvHeads: 1, headDim: 4)
        let error = Self.check(leaves: [(10, 8), (1, 8), (8, 8), (4, 8), (4, 8), (8, 8)], threads: 1) {
            tape, leaves in
            positions.withUnsafeBufferPointer { positions in
                let h = tape.rmsNorm(leaves[0], weight: leaves[1], epsilon: 1e-6)
                let q = tape.rotary(tape.linear(h, weight: leaves[2]), table: table, positions: positions, heads: 2)
                let k = tape.rotary(tape.linear(h, weight: leaves[3]), table: table, positions: positions, heads: 1)
                let v = tape.linear(h, weight: leaves[4])
                let a = tape.causalAttention(query: q, key: k, value: v, layout: layout)
                return tape.add(leaves[0], tape.linear(a, weight: leaves[5]))
            }
        }
        #expect(error < Self.tolerance, "max error \(error)")
    }
}
