extension Tape {
    /// Columns per task in the column-partitioned reductions (weight gradients of embeddings, norms and biases):
    /// each task sums its columns over all rows in row order, so the result does not depend on the threads.
    static var reductionColumnBlock: Int { 64 }

    /// Embedding lookup: row `i` of the result is row `tokens[i]` of `table`.
    ///
    /// - Parameters:
    ///   - table: `[vocabulary, width]`.
    ///   - tokens: ids in `0..<vocabulary` (checked with a precondition: validate untrusted input before).
    /// - Returns: `[tokens.count, width]`.
    @_specialize(exported:true,where Scalar == Float)
    @_specialize(exported:true,where Scalar == Double)
    public func embedding(_ table: Variable, tokens: UnsafeBufferPointer<Int32>) -> Variable {
        let (vocabulary, width) = shape(of: table)
        for token in tokens { precondition(token >= 0 && Int(token) < vocabulary, "token \(token) out of range") }
        let output = makeNode(rows: tokens.count, columns: width, requiresGradient: requiresGradient(table))
        let source = nodes[table.index].value
        let destination = nodes[output.index].value
        parallelChunks(tokens.count, grain: 64) { range in
            for t in range {
                (destination + t * width).update(from: source + Int(tokens[t]) * width, count: width)
            }
        }
        if nodes[output.index].requiresGradient {
            record(.embedding(output: output, table: table, tokens: storeIntegers(tokens)), output: output)
        }
        return output
    }

    func embeddingBackward(output: Variable, table: Variable, tokens: Range<Int>) {
        guard let dy = outputGradient(output), let target = gradientTarget(table) else { return }
        let width = nodes[table.index].columns
        if !target.accumulate { target.pointer.update(repeating: 0, count: nodes[table.index].count) }
        let block = Self.reductionColumnBlock
        let dTable = target.pointer
        integers.withUnsafeBufferPointer { all in
            let ids = UnsafeBufferPointer(rebasing: all[tokens])
            pool.parallelFor((width + block - 1) / block) { b in
                let c0 = b * block
                let c1 = min(width, c0 + block)
                for (t, id) in ids.enumerated() {
                    let row = dTable + Int(id) * width
                    let g = dy + t * width
                    for c in c0..<c1 { row[c] += g[c] }
                }
            }
        }
    }

    /// Affine map `y = x Wᵀ + b` (PyTorch `nn.Linear`).
    ///
    /// - Parameters:
    ///   - input: `[tokens, in]`.
    ///   - weight: `[out, in]`.
    ///   - bias: `[1, out]`, optional.
    /// - Returns: `[tokens, out]`.
    @_specialize(exported:true,where Scalar == Float)
    @_specialize(exported:true,where Scalar == Double)
    public func linear(_ input: Variable, weight: Variable, bias: Variable? = nil) -> Variable {
        let (tokens, inWidth) = shape(of: input)
        let (outWidth, weightIn) = shape(of: weight)
        precondition(inWidth == weightIn, "linear: input has \(inWidth) columns, weight [\(outWidth), \(weightIn)]")
        if let bias { precondition(nodes[bias.index].count == outWidth, "linear: bias size") }
        let needsGradient =
            requiresGradient(input) || requiresGradient(weight) || bias.map { requiresGradient($0) } ?? false
        let output = makeNode(rows: tokens, columns: outWidth, requiresGradient: needsGradient)
        let y = nodes[output.index].value
        modelProduct(
            .linear, transposeA: false, transposeB: true, m: tokens, n: outWidth, k: inWidth,
            a: nodes[input.index].value,
            lda: inWidth, b: nodes[weight.index].value, ldb: inWidth, beta: 0, c: y, ldc: outWidth)
        if let bias {
            let b = nodes[bias.index].value
            parallelChunks(tokens, grain: 16) { range in
                for t in range {
                    let row = y + t * outWidth
                    for c in 0..<outWidth { row[c] += b[c] }
                }
            }
        }
        record(.linear(output: output, input: input, weight: weight, bias: bias), output: output)
        return output
    }

    func linearBackward(output: Variable, input: Variable, weight: Variable, bias: Variable?) {
        guard let dy = outputGradient(output) else { return }
        let (tokens, inWidth) = shape(of: input)
        let outWidth = nodes[weight.index].rows
        if let target = gradientTarget(input) {
            // dx = dy W: [tokens, out] x [out, in]
            modelProduct(
                .linear, transposeA: false, transposeB: false, m: tokens, n: inWidth, k: outWidth, a: dy, lda: outWidth,
                b: nodes[weight.index].value, ldb: inWidth, beta: target.accumulate ? 1 : 0, c: target.pointer,
                ldc: inWidth)
        }
        if let target = gradientTarget(weight) {
            // dW = dyᵀ x: [out, tokens] x [tokens, in]
            modelProduct(
                .linear, transposeA: true, transposeB: false, m: outWidth, n: inWidth, k: tokens, a: dy, lda: outWidth,
                b: nodes[input.index].value, ldb: inWidth, beta: target.accumulate ? 1 : 0, c: target.pointer,
                ldc: inWidth)
        }
        if let bias, let target = gradientTarget(bias) {
            sumRows(dy, rows: tokens, columns: outWidth, into: target)
        }
    }

    /// `target (+)= Σ_rows source` for a `[rows, columns]` matrix, partitioned by column blocks.
    func sumRows(_ source: UnsafePointer<Scalar>, rows: Int, columns: Int, into target: GradientTarget) {
        let block = Self.reductionColumnBlock
        let destination = target.pointer
        pool.parallelFor((columns + block - 1) / block) { b in
            let c0 = b * block
            let c1 = min(columns, c0 + block)
            if !target.accumulate { for c in c0..<c1 { destination[c] = 0 } }
            for t in 0..<rows {
                let row = source + t * columns
                for c in c0..<c1 { destination[c] += row[c] }
            }
        }
    }

    /// Elementwise sum of two variables of the same shape (the residual connection).
    @_specialize(exported:true,where Scalar == Float)
    @_specialize(exported:true,where Scalar == Double)
    public func add(_ a: Variable, _ b: Variable) -> Variable {
        let (rows, columns) = shape(of: a)
        precondition(shape(of: b) == (rows, columns), "add: shapes differ")
        let output = makeNode(
            rows: rows, columns: columns, requiresGradient: requiresGradient(a) || requiresGradient(b))
        let x = nodes[a.index].value
        let y = nodes[b.index].value
        let z = nodes[output.index].value
        parallelChunks(rows * columns, grain: 1 << 15) { range in
            for i in range { z[i] = x[i] + y[i] }
        }
        record(.add(output: output, a: a, b: b), output: output)
        return output
    }

    func addBackward(output: Variable, a: Variable, b: Variable) {
        guard let dz = outputGradient(output) else { return }
        let count = nodes[output.index].count
        if let target = gradientTarget(a) { write(target, from: dz, count: count) }
        if let target = gradientTarget(b) { write(target, from: dz, count: count) }
    }
}
