extension Tape {
    /// What backward needs from one recorded op: its variables and the statistics its forward saved.
    enum Operation {
        case embedding(output: Variable, table: Variable, tokens: Range<Int>)
        case linear(output: Variable, input: Variable, weight: Variable, bias: Variable?)
        case add(output: Variable, a: Variable, b: Variable)
        case rmsNorm(output: Variable, input: Variable, weight: Variable, inverseRMS: UnsafeMutablePointer<Scalar>)
        case layerNorm(
            output: Variable, input: Variable, weight: Variable, bias: Variable,
            mean: UnsafeMutablePointer<Scalar>, inverseStd: UnsafeMutablePointer<Scalar>)
        case swiGLU(output: Variable, gate: Variable, up: Variable)
        case gelu(output: Variable, input: Variable, approximation: GELUApproximation)
        case rotary(output: Variable, input: Variable, table: RotaryEmbedding<Scalar>, positions: Range<Int>)
        case attention(
            output: Variable, query: Variable, key: Variable, value: Variable,
            logSumExp: UnsafeMutablePointer<Scalar>, layout: AttentionLayout)
        case crossEntropy(
            output: Variable, hidden: Variable, weight: Variable, hiddenGradient: UnsafeMutablePointer<Scalar>,
            weightGradient: UnsafeMutablePointer<Scalar>)
    }

    func runBackward(_ operation: Operation) {
        switch operation {
        case .embedding(let output, let table, let tokens):
            embeddingBackward(output: output, table: table, tokens: tokens)
        case .linear(let output, let input, let weight, let bias):
            linearBackward(output: output, input: input, weight: weight, bias: bias)
        case .add(let output, let a, let b):
            addBackward(output: output, a: a, b: b)
        case .rmsNorm(let output, let input, let weight, let inverseRMS):
            rmsNormBackward(output: output, input: input, weight: weight, inverseRMS: inverseRMS)
        case .layerNorm(let output, let input, let weight, let bias, let mean, let inverseStd):
            layerNormBackward(
                output: output, input: input, weight: weight, bias: bias, mean: mean, inverseStd: inverseStd)
        case .swiGLU(let output, let gate, let up):
            swiGLUBackward(output: output, gate: gate, up: up)
        case .gelu(let output, let input, let approximation):
            geluBackward(output: output, input: input, approximation: approximation)
        case .rotary(let output, let input, let table, let positions):
            rotaryBackward(output: output, input: input, table: table, positions: positions)
        case .attention(let output, let query, let key, let value, let logSumExp, let layout):
            attentionBackward(
                output: output, query: query, key: key, value: value, logSumExp: logSumExp, layout: layout)
        case .crossEntropy(let output, let hidden, let weight, let hiddenGradient, let weightGradient):
            crossEntropyBackward(
                output: output, hidden: hidden, weight: weight, hiddenGradient: hiddenGradient,
                weightGradient: weightGradient)
        }
    }
}
