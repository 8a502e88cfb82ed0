extension Tape {
    /// Logit elements per chunk of the fused cross-entropy (rows per chunk = this / vocabulary, at least 1).
    static var crossEntropyChunkElements: Int { 1 << 23 }

    /// Output projection fused with softmax cross-entropy: `Σ_t CE(hidden[t] Wᵀ, targets[t]) / normalizer`.
    ///
    /// The `[tokens, vocabulary]` logits are never held at once: tokens are processed in chunks of about
    /// 2²³ / vocabulary rows. When the tape records, each chunk's logits are turned into their gradient
    /// `(softmax - onehot) / normalizer` in place and multiplied out at once into `d hidden` and `d W` (as Liger's
    /// fused linear cross-entropy does), so backward only scales those by the incoming gradient.
    ///
    /// - Parameters:
    ///   - hidden: `[tokens, width]`, the final normalised hidden states.
    ///   - weight: `[vocabulary, width]`, the output head (or the tied embedding).
    ///   - targets: one class id per token in `0..<vocabulary`, or negative to ignore that token.
    ///   - normalizer: the divisor of the summed losses; default the number of non-ignored targets. Pass the total
    ///     over all micro-batches of an accumulated step so the summed gradients are the mean over all of them.
    ///   - chunkRows: tokens per chunk (default about 2²³ / vocabulary, at least 1).
    /// - Returns: `[1, 1]`, the loss.
    @_specialize(exported:true,where Scalar == Float)
    @_specialize(exported:true,where Scalar == Double)
    public func linearCrossEntropy(
        _ hidden: Variable, weight: Variable, targets: UnsafeBufferPointer<Int32>, normalizer: Double? = nil,
        chunkRows: Int? = nil
    ) -> Variable {
        let (tokens, width) = shape(of: hidden)
        let (vocabulary, weightWidth) = shape(of: weight)
        precondition(
            width == weightWidth, "linearCrossEntropy: hidden width \(width), weight [\(vocabulary), \(weightWidth)]")
        precondition(targets.count == tokens, "linearCrossEntropy: \(targets.count) targets for \(tokens) tokens")
        for target in targets { precondition(Int(target) < vocabulary, "linearCrossEntropy: target \(target)") }
        let output = makeNode(
            rows: 1, columns: 1, requiresGradient: requiresGradient(hidden) || requiresGradient(weight))
        let recording = nodes[output.index].requiresGradient
        let validCount = targets.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) }
        let divisor = normalizer ?? Double(validCount)
        let inverseCount = divisor > 0 ? Scalar(1 / divisor) : 0
        let chunkRows = max(1, min(tokens, chunkRows ?? Self.crossEntropyChunkElements / max(vocabulary, 1)))
        let logits = allocate(chunkRows * vocabulary)
        let hiddenGradient = recording ? allocate(tokens * width) : logits
        let weightGradient = recording ? allocate(vocabulary * width) : logits
        let x = nodes[hidden.index].value
        let w = nodes[weight.index].value
        rowLosses.removeAll(keepingCapacity: true)
        rowLosses.append(contentsOf: repeatElement(0, count: tokens))
        rowLosses.withUnsafeMutableBufferPointer { losses in
            for start in stride(from: 0, to: tokens, by: chunkRows) {
                let rows = min(chunkRows, tokens - start)
                modelProduct(
                    .headLogits, transposeA: false, transposeB: true, m: rows, n: vocabulary, k: width,
                    a: x + start * width, lda: width, b: w, ldb: width, beta: 0, c: logits, ldc: vocabulary,
                    sameB: start > 0)
                parallelChunks(rows, grain: 1) { range in
                    for r in range {
                        let row = logits + r * vocabulary
                        let target = Int(targets[start + r])
                        guard target >= 0 else {
                            losses[start + r] = 0
                            if recording { row.update(repeating: 0, count: vocabulary) }
                            continue
                        }
                        let maximum = elementMax(row, vocabulary)
                        let targetLogit = row[target]
                        let sum = Scalar.exponentiateShifted(row, count: vocabulary, subtracting: maximum)
                        losses[start + r] = Double(maximum + Scalar.logarithm(sum) - targetLogit)
                        if recording {
                            let factor = inverseCount / sum
                            for j in 0..<vocabulary { row[j] *= factor }
                            row[target] -= inverseCount
                        }
                    }
                }
                if recording {
                    modelProduct(
                        .headInputGradient, transposeA: false, transposeB: false, m: rows, n: width, k: vocabulary,
                        a: logits, lda: vocabulary, b: w, ldb: width, beta: 0, c: hiddenGradient + start * width,
                        ldc: width, sameB: start > 0)
                    modelProduct(
                        .headWeightGradient, transposeA: true, transposeB: false, m: vocabulary, n: width, k: rows,
                        a: logits,
                        lda: vocabulary, b: x + start * width, ldb: width, beta: start == 0 ? 0 : 1,
                        c: weightGradient, ldc: width)
                }
            }
        }
        var total = 0.0
        for loss in rowLosses { total += loss }
        nodes[output.index].value[0] = divisor > 0 ? Scalar(total / divisor) : 0
        if recording {
            record(
                .crossEntropy(
                    output: output, hidden: hidden, weight: weight, hiddenGradient: hiddenGradient,
                    weightGradient: weightGradient),
                output: output)
        }
        return output
    }

    func crossEntropyBackward(
        output: Variable, hidden: Variable, weight: Variable, hiddenGradient: UnsafeMutablePointer<Scalar>,
        weightGradient: UnsafeMutablePointer<Scalar>
    ) {
        guard let upstream = outputGradient(output)?[0] else { return }
        if let target = gradientTarget(hidden) {
            write(target, from: hiddenGradient, count: nodes[hidden.index].count, scale: upstream)
        }
        if let target = gradientTarget(weight) {
            write(target, from: weightGradient, count: nodes[weight.index].count, scale: upstream)
        }
    }
}
