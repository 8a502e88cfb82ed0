/// The shape of a causal grouped-query attention over a packed batch.
public struct AttentionLayout: Sendable, Equatable {
    /// Sequences in the batch.
    public var batch: Int
    /// Tokens per sequence; token `t` of sequence `b` is row `b * length + t`.
    public var length: Int
    /// Query heads.
    public var heads: Int
    /// Key/value heads; query head `h` reads key/value head `h / (heads / kvHeads)`.
    public var kvHeads: Int
    /// Width of one head.
    public var headDim: Int
    /// Factor on `q · k` (default `1 / sqrt(headDim)`).
    public var scale: Double

    public init(batch: Int, length: Int, heads: Int, kvHeads: Int, headDim: Int, scale: Double? = nil) {
        self.batch = batch
        self.length = length
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.scale = scale ?? 1 / Double(headDim).squareRoot()
    }
}

extension Tape {
    /// Query rows per block: the score scratch is `queryBlock × length` per thread.
    static var attentionQueryBlock: Int { 64 }

    /// Causal grouped-query softmax attention, `softmax(q kᵀ · scale + causal mask) v` per sequence and head.
    ///
    /// Memory-efficient: scores are computed a block of 64 query rows at a time with GEMM and never kept; forward
    /// saves one log-sum-exp per (sequence, head, query), and backward recomputes the probabilities from it
    /// (as FlashAttention does).
    ///
    /// - Parameters:
    ///   - query: `[batch * length, heads * headDim]`.
    ///   - key: `[batch * length, kvHeads * headDim]`.
    ///   - value: `[batch * length, kvHeads * headDim]`.
    /// - Returns: `[batch * length, heads * headDim]`.
    @_specialize(exported:true,where Scalar == Float)
    @_specialize(exported:true,where Scalar == Double)
    public func causalAttention(query: Variable, key: Variable, value: Variable, layout: AttentionLayout) -> Variable {
        let tokens = layout.batch * layout.length
        let queryWidth = layout.heads * layout.headDim
        let kvWidth = layout.kvHeads * layout.headDim
        precondition(layout.kvHeads > 0 && layout.heads % layout.kvHeads == 0, "attention: heads % kvHeads != 0")
        precondition(shape(of: query) == (tokens, queryWidth), "attention: query shape")
        precondition(shape(of: key) == (tokens, kvWidth) && shape(of: value) == (tokens, kvWidth), "attention: k/v")
        let output = makeNode(
            rows: tokens, columns: queryWidth,
            requiresGradient: requiresGradient(query) || requiresGradient(key) || requiresGradient(value))
        let logSumExp = allocate(layout.batch * layout.heads * layout.length)
        let block = Self.attentionQueryBlock
        let length = layout.length
        let scratch = allocate(pool.threadCount * block * length)
        let q = nodes[query.index].value
        let k = nodes[key.index].value
        let v = nodes[value.index].value
        let o = nodes[output.index].value
        let d = layout.headDim
        let group = layout.heads / layout.kvHeads
        let scale = Scalar(layout.scale)
        pool.parallelFor(layout.batch * layout.heads) { task, thread in
            let b = task / layout.heads
            let h = task % layout.heads
            let qh = q + b * length * queryWidth + h * d
            let kh = k + b * length * kvWidth + (h / group) * d
            let vh = v + b * length * kvWidth + (h / group) * d
            let oh = o + b * length * queryWidth + h * d
            let lse = logSumExp + task * length
            let scores = scratch + thread * block * length
            for i0 in stride(from: 0, to: length, by: block) {
                let rows = min(block, length - i0)
                let n = i0 + rows
                Scalar.gemm(
                    transposeA: false, transposeB: true, m: rows, n: n, k: d, alpha: scale, a: qh + i0 * queryWidth,
                    lda: queryWidth, b: kh, ldb: kvWidth, beta: 0, c: scores, ldc: n)
                for r in 0..<rows {
                    let i = i0 + r
                    let row = scores + r * n
                    let maximum = elementMax(row, i + 1)
                    let sum = Scalar.exponentiateShifted(row, count: i + 1, subtracting: maximum)
                    let inverse = 1 / sum
                    for j in 0...i { row[j] *= inverse }
                    for j in (i + 1)..<max(n, i + 1) { row[j] = 0 }
                    lse[i] = maximum + Scalar.logarithm(sum)
                }
                Scalar.gemm(
                    transposeA: false, transposeB: false, m: rows, n: d, k: n, alpha: 1, a: scores, lda: n, b: vh,
                    ldb: kvWidth, beta: 0, c: oh + i0 * queryWidth, ldc: queryWidth)
            }
        }
        if nodes[output.index].requiresGradient {
            record(
                .attention(
                    output: output, query: query, key: key, value: value, logSumExp: logSumExp, layout: layout),
                output: output)
        }
        return output
    }

    func attentionBackward(
        output: Variable, query: Variable, key: Variable, value: Variable, logSumExp: UnsafeMutablePointer<Scalar>,
        layout: AttentionLayout
    ) {
        guard let dO = outputGradient(output) else { return }
        let length = layout.length
        let d = layout.headDim
        let queryWidth = layout.heads * d
        let kvWidth = layout.kvHeads * d
        let group = layout.heads / layout.kvHeads
        let scale = Scalar(layout.scale)
        let block = Self.attentionQueryBlock
        let q = nodes[query.index].value
        let k = nodes[key.index].value
        let v = nodes[value.index].value
        let o = nodes[output.index].value
        let queryTarget = gradientTarget(query)
        let needKV = requiresGradient(key) || requiresGradient(value)
        // Per (sequence, query head) partial dK and dV, summed over each group afterwards in a fixed order.
        let partialCount = layout.batch * layout.heads * length * d
        let partialKeys = needKV ? allocate(partialCount) : allocate(0)
        let partialValues = needKV ? allocate(partialCount) : allocate(0)
        let perThread = 2 * block * length + length
        let scratch = allocate(pool.threadCount * perThread)
        pool.parallelFor(layout.batch * layout.heads) { task, thread in
            let b = task / layout.heads
            let h = task % layout.heads
            let rowOffset = b * length * queryWidth + h * d
            let qh = q + rowOffset
            let oh = o + rowOffset
            let dOh = dO + rowOffset
            let kh = k + b * length * kvWidth + (h / group) * d
            let vh = v + b * length * kvWidth + (h / group) * d
            let lse = logSumExp + task * length
            let probabilities = scratch + thread * perThread
            let dScores = probabilities + block * length
            let delta = dScores + block * length
            let dKh = partialKeys + task * length * d
            let dVh = partialValues + task * length * d
            if needKV {
                dKh.update(repeating: 0, count: length * d)
                dVh.update(repeating: 0, count: length * d)
            }
            for i in 0..<length {
                delta[i] = dotProduct(dOh + i * queryWidth, oh + i * queryWidth, d)
            }
            for i0 in stride(from: 0, to: length, by: block) {
                let rows = min(block, length - i0)
                let n = i0 + rows
                Scalar.gemm(
                    transposeA: false, transposeB: true, m: rows, n: n, k: d, alpha: scale, a: qh + i0 * queryWidth,
                    lda: queryWidth, b: kh, ldb: kvWidth, beta: 0, c: probabilities, ldc: n)
                for r in 0..<rows {
                    let i = i0 + r
                    let row = probabilities + r * n
                    _ = Scalar.exponentiateShifted(row, count: i + 1, subtracting: lse[i])
                    for j in (i + 1)..<max(n, i + 1) { row[j] = 0 }
                }
                if needKV {
                    // dV += Pᵀ dO
                    Scalar.gemm(
                        transposeA: true, transposeB: false, m: n, n: d, k: rows, alpha: 1, a: probabilities, lda: n,
                        b: dOh + i0 * queryWidth, ldb: queryWidth, beta: 1, c: dVh, ldc: d)
                }
                // dP = dO Vᵀ, then dS = P (dP - Δ) · scale
                Scalar.gemm(
                    transposeA: false, transposeB: true, m: rows, n: n, k: d, alpha: 1, a: dOh + i0 * queryWidth,
                    lda: queryWidth, b: vh, ldb: kvWidth, beta: 0, c: dScores, ldc: n)
                for r in 0..<rows {
                    let i = i0 + r
                    let p = probabilities + r * n
                    let ds = dScores + r * n
                    let di = delta[i]
                    for j in 0..<n { ds[j] = p[j] * (ds[j] - di) * scale }
                }
                if let queryTarget {
                    // dQ = dS K
                    Scalar.gemm(
                        transposeA: false, transposeB: false, m: rows, n: d, k: n, alpha: 1, a: dScores, lda: n,
                        b: kh, ldb: kvWidth, beta: queryTarget.accumulate ? 1 : 0,
                        c: queryTarget.pointer + rowOffset + i0 * queryWidth, ldc: queryWidth)
                }
                if needKV {
                    // dK += dSᵀ Q
                    Scalar.gemm(
                        transposeA: true, transposeB: false, m: n, n: d, k: rows, alpha: 1, a: dScores, lda: n,
                        b: qh + i0 * queryWidth, ldb: queryWidth, beta: 1, c: dKh, ldc: d)
                }
            }
        }
        guard needKV else { return }
        let keyTarget = gradientTarget(key)
        let valueTarget = gradientTarget(value)
        pool.parallelFor(layout.batch * layout.kvHeads) { task in
            let b = task / layout.kvHeads
            let g = task % layout.kvHeads
            func reduce(_ target: GradientTarget?, _ partial: UnsafeMutablePointer<Scalar>) {
                guard let target else { return }
                for j in 0..<length {
                    let destination = target.pointer + (b * length + j) * kvWidth + g * d
                    for member in 0..<group {
                        let source = partial + ((b * layout.heads + g * group + member) * length + j) * d
                        if member == 0 && !target.accumulate {
                            destination.update(from: source, count: d)
                        } else {
                            for c in 0..<d { destination[c] += source[c] }
                        }
                    }
                }
            }
            reduce(keyTarget, partialKeys)
            reduce(valueTarget, partialValues)
        }
    }
}
