extension Tape {
    /// RMS normalisation (Llama `RMSNorm`): `y = x / sqrt(mean(x²) + ε) * w`, per row.
    ///
    /// - Parameters:
    ///   - input: `[tokens, width]`.
    ///   - weight: `[1, width]`.
    /// - Returns: `[tokens, width]`. Saves `1 / rms` per row.
    @_specialize(exported:true,where Scalar == Float)
    @_specialize(exported:true,where Scalar == Double)
    public func rmsNorm(_ input: Variable, weight: Variable, epsilon: Scalar) -> Variable {
        let (tokens, width) = shape(of: input)
        precondition(nodes[weight.index].count == width, "rmsNorm: weight has \(nodes[weight.index].count) values")
        let output = makeNode(
            rows: tokens, columns: width, requiresGradient: requiresGradient(input) || requiresGradient(weight))
        let recording = nodes[output.index].requiresGradient
        let inverseRMS = allocate(tokens)
        let x = nodes[input.index].value
        let w = nodes[weight.index].value
        let y = nodes[output.index].value
        let n = Scalar(width)
        parallelChunks(tokens, grain: 8) { range in
            for t in range {
                let row = x + t * width
                let r = 1 / (dotProduct(row, row, width) / n + epsilon).squareRoot()
                inverseRMS[t] = r
                let out = y + t * width
                for c in 0..<width { out[c] = row[c] * r * w[c] }
            }
        }
        if recording {
            record(.rmsNorm(output: output, input: input, weight: weight, inverseRMS: inverseRMS), output: output)
        }
        return output
    }

    func rmsNormBackward(output: Variable, input: Variable, weight: Variable, inverseRMS: UnsafeMutablePointer<Scalar>)
    {
        guard let dy = outputGradient(output) else { return }
        let (tokens, width) = shape(of: input)
        let x = nodes[input.index].value
        let w = nodes[weight.index].value
        let n = Scalar(width)
        if let target = gradientTarget(input) {
            let dx = target.pointer
            parallelChunks(tokens, grain: 8) { range in
                for t in range {
                    let xr = x + t * width
                    let g = dy + t * width
                    let out = dx + t * width
                    let r = inverseRMS[t]
                    // dx = r (dy w - x̂ mean(dy w x̂)), x̂ = x r
                    var dot: Scalar = 0
                    for c in 0..<width { dot += g[c] * w[c] * xr[c] }
                    let coefficient = dot * r * r / n
                    if target.accumulate {
                        for c in 0..<width { out[c] += r * (g[c] * w[c] - xr[c] * coefficient) }
                    } else {
                        for c in 0..<width { out[c] = r * (g[c] * w[c] - xr[c] * coefficient) }
                    }
                }
            }
        }
        if let target = gradientTarget(weight) {
            let block = Self.reductionColumnBlock
            let dw = target.pointer
            pool.parallelFor((width + block - 1) / block) { b in
                let c0 = b * block
                let c1 = min(width, c0 + block)
                if !target.accumulate { for c in c0..<c1 { dw[c] = 0 } }
                for t in 0..<tokens {
                    let r = inverseRMS[t]
                    let xr = x + t * width
                    let g = dy + t * width
                    for c in c0..<c1 { dw[c] += g[c] * xr[c] * r }
                }
            }
        }
    }

    /// Layer normalisation (`nn.LayerNorm`): `y = (x - mean(x)) / sqrt(var(x) + ε) * w + b`, per row (biased
    /// variance, as PyTorch).
    ///
    /// - Parameters:
    ///   - input: `[tokens, width]`.
    ///   - weight: `[1, width]`.
    ///   - bias: `[1, width]`.
    /// - Returns: `[tokens, width]`. Saves the mean and `1 / std` per row.
    @_specialize(exported:true,where Scalar == Float)
    @_specialize(exported:true,where Scalar == Double)
    public func layerNorm(_ input: Variable, weight: Variable, bias: Variable, epsilon: Scalar) -> Variable {
        let (tokens, width) = shape(of: input)
        precondition(nodes[weight.index].count == width && nodes[bias.index].count == width, "layerNorm: sizes")
        let output = makeNode(
            rows: tokens, columns: width,
            requiresGradient: requiresGradient(input) || requiresGradient(weight) || requiresGradient(bias))
        let recording = nodes[output.index].requiresGradient
        let means = allocate(tokens)
        let inverseStd = allocate(tokens)
        let x = nodes[input.index].value
        let w = nodes[weight.index].value
        let b = nodes[bias.index].value
        let y = nodes[output.index].value
        let n = Scalar(width)
        parallelChunks(tokens, grain: 8) { range in
            for t in range {
                let row = x + t * width
                let mean = elementSum(row, width) / n
                var variance: Scalar = 0
                for c in 0..<width { variance += (row[c] - mean) * (row[c] - mean) }
                let r = 1 / (variance / n + epsilon).squareRoot()
                means[t] = mean
                inverseStd[t] = r
                let out = y + t * width
                for c in 0..<width { out[c] = (row[c] - mean) * r * w[c] + b[c] }
            }
        }
        if recording {
            record(
                .layerNorm(
                    output: output, input: input, weight: weight, bias: bias, mean: means, inverseStd: inverseStd),
                output: output)
        }
        return output
    }

    func layerNormBackward(
        output: Variable, input: Variable, weight: Variable, bias: Variable, mean: UnsafeMutablePointer<Scalar>,
        inverseStd: UnsafeMutablePointer<Scalar>
    ) {
        guard let dy = outputGradient(output) else { return }
        let (tokens, width) = shape(of: input)
        let x = nodes[input.index].value
        let w = nodes[weight.index].value
        let n = Scalar(width)
        if let target = gradientTarget(input) {
            let dx = target.pointer
            parallelChunks(tokens, grain: 8) { range in
                for t in range {
                    let xr = x + t * width
                    let g = dy + t * width
                    let out = dx + t * width
                    let mu = mean[t]
                    let r = inverseStd[t]
                    // dx = r (ĝ - mean(ĝ) - x̂ mean(ĝ x̂)), ĝ = dy w, x̂ = (x - mu) r
                    var sumG: Scalar = 0
                    var sumGX: Scalar = 0
                    for c in 0..<width {
                        let gw = g[c] * w[c]
                        sumG += gw
                        sumGX += gw * (xr[c] - mu) * r
                    }
                    let meanG = sumG / n
                    let meanGX = sumGX / n
                    for c in 0..<width {
                        let value = r * (g[c] * w[c] - meanG - (xr[c] - mu) * r * meanGX)
                        out[c] = target.accumulate ? out[c] + value : value
                    }
                }
            }
        }
        let block = Self.reductionColumnBlock
        if let target = gradientTarget(weight) {
            let dw = target.pointer
            pool.parallelFor((width + block - 1) / block) { b in
                let c0 = b * block
                let c1 = min(width, c0 + block)
                if !target.accumulate { for c in c0..<c1 { dw[c] = 0 } }
                for t in 0..<tokens {
                    let mu = mean[t]
                    let r = inverseStd[t]
                    let xr = x + t * width
                    let g = dy + t * width
                    for c in c0..<c1 { dw[c] += g[c] * (xr[c] - mu) * r }
                }
            }
        }
        if let target = gradientTarget(bias) {
            sumRows(dy, rows: tokens, columns: width, into: target)
        }
    }
}
