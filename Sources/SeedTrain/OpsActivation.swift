/// Which GELU: exact (`erf`, PyTorch's default) or the tanh approximation (GPT-2's `gelu_new`,
/// `approximate="tanh"`).
public enum GELUApproximation: Sendable, Equatable {
    /// `0.5 x (1 + erf(x / √2))`.
    case none
    /// `0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))`.
    case tanh
}

extension Tape {
    /// Runs `body(rows, scratch)` over row chunks of a `[rows, width]` matrix, giving each chunk a scratch row of
    /// `width` elements private to its thread.
    func forEachRowChunk(
        rows: Int, width: Int, _ body: (_ rows: Range<Int>, _ scratch: UnsafeMutablePointer<Scalar>) -> Void
    ) {
        let threads = pool.threadCount
        let scratch = allocate(threads * width)
        let grain = max(1, (1 << 14) / max(width, 1))
        let chunks = min((rows + grain - 1) / grain, threads * 4)
        let chunkRows = (rows + max(chunks, 1) - 1) / max(chunks, 1)
        pool.parallelFor(max(chunks, 1)) { chunk, thread in
            let start = chunk * chunkRows
            let end = min(rows, start + chunkRows)
            if start < end { body(start..<end, scratch + thread * width) }
        }
    }

    /// The SwiGLU gate of Llama's MLP: `silu(gate) * up` elementwise, `silu(g) = g σ(g)`.
    ///
    /// - Parameters:
    ///   - gate: `[tokens, intermediate]`.
    ///   - up: `[tokens, intermediate]`.
    /// - Returns: `[tokens, intermediate]`; backward recomputes `σ(gate)`.
    @_specialize(exported:true,where Scalar == Float)
    @_specialize(exported:true,where Scalar == Double)
    public func swiGLU(gate: Variable, up: Variable) -> Variable {
        let (rows, width) = shape(of: gate)
        precondition(shape(of: up) == (rows, width), "swiGLU: gate and up shapes differ")
        let output = makeNode(
            rows: rows, columns: width, requiresGradient: requiresGradient(gate) || requiresGradient(up))
        let g = nodes[gate.index].value
        let u = nodes[up.index].value
        let y = nodes[output.index].value
        parallelChunks(rows, grain: max(1, (1 << 14) / width)) { range in
            for t in range {
                let offset = t * width
                Scalar.sigmoid(g + offset, into: y + offset, count: width)
                for c in offset..<(offset + width) { y[c] = g[c] * y[c] * u[c] }
            }
        }
        record(.swiGLU(output: output, gate: gate, up: up), output: output)
        return output
    }

    func swiGLUBackward(output: Variable, gate: Variable, up: Variable) {
        guard let dy = outputGradient(output) else { return }
        let (rows, width) = shape(of: gate)
        let g = nodes[gate.index].value
        let u = nodes[up.index].value
        let gateTarget = gradientTarget(gate)
        let upTarget = gradientTarget(up)
        forEachRowChunk(rows: rows, width: width) { range, s in
            for t in range {
                let offset = t * width
                Scalar.sigmoid(g + offset, into: s, count: width)
                if let gateTarget {
                    let dg = gateTarget.pointer + offset
                    for c in 0..<width {
                        let x = g[offset + c]
                        // d silu(x) / dx = σ(x) (1 + x (1 - σ(x)))
                        let value = dy[offset + c] * u[offset + c] * s[c] * (1 + x * (1 - s[c]))
                        dg[c] = gateTarget.accumulate ? dg[c] + value : value
                    }
                }
                if let upTarget {
                    let du = upTarget.pointer + offset
                    for c in 0..<width {
                        let value = dy[offset + c] * g[offset + c] * s[c]
                        du[c] = upTarget.accumulate ? du[c] + value : value
                    }
                }
            }
        }
    }

    /// GELU, elementwise.
    ///
    /// - Parameter input: any shape; the result has the same shape.
    @_specialize(exported:true,where Scalar == Float)
    @_specialize(exported:true,where Scalar == Double)
    public func gelu(_ input: Variable, approximation: GELUApproximation = .tanh) -> Variable {
        let (rows, width) = shape(of: input)
        let output = makeNode(rows: rows, columns: width, requiresGradient: requiresGradient(input))
        let x = nodes[input.index].value
        let y = nodes[output.index].value
        parallelChunks(rows, grain: max(1, (1 << 14) / width)) { range in
            for t in range {
                let offset = t * width
                switch approximation {
                case .tanh:
                    // 0.5 (1 + tanh(u)) = σ(2u)
                    for c in offset..<(offset + width) { y[c] = 2 * Self.geluTanhArgument(x[c]) }
                    Scalar.sigmoid(y + offset, into: y + offset, count: width)
                    for c in offset..<(offset + width) { y[c] *= x[c] }
                case .none:
                    for c in offset..<(offset + width) {
                        y[c] = x[c] * (1 + Scalar.errorFunction(x[c] * Self.inverseSquareRootOfTwo)) / 2
                    }
                }
            }
        }
        record(.gelu(output: output, input: input, approximation: approximation), output: output)
        return output
    }

    static var inverseSquareRootOfTwo: Scalar { Scalar(0.707_106_781_186_547_524_4) }
    static var squareRootOfTwoOverPi: Scalar { Scalar(0.797_884_560_802_865_355_9) }

    @inline(__always)
    static func geluTanhArgument(_ x: Scalar) -> Scalar {
        squareRootOfTwoOverPi * (x + Scalar(0.044715) * x * x * x)
    }

    func geluBackward(output: Variable, input: Variable, approximation: GELUApproximation) {
        guard let dy = outputGradient(output), let target = gradientTarget(input) else { return }
        let (rows, width) = shape(of: input)
        let x = nodes[input.index].value
        let dx = target.pointer
        forEachRowChunk(rows: rows, width: width) { range, s in
            for t in range {
                let offset = t * width
                switch approximation {
                case .tanh:
                    for c in 0..<width { s[c] = 2 * Self.geluTanhArgument(x[offset + c]) }
                    Scalar.sigmoid(s, into: s, count: width)
                    for c in 0..<width {
                        let v = x[offset + c]
                        let du = Self.squareRootOfTwoOverPi * (1 + 3 * Scalar(0.044715) * v * v)
                        let derivative = s[c] + v * s[c] * (1 - s[c]) * 2 * du
                        let value = dy[offset + c] * derivative
                        dx[offset + c] = target.accumulate ? dx[offset + c] + value : value
                    }
                case .none:
                    for c in 0..<width {
                        let v = x[offset + c]
                        let cdf = (1 + Scalar.errorFunction(v * Self.inverseSquareRootOfTwo)) / 2
                        let pdf = Scalar.exponential(-v * v / 2) * Scalar(0.398_942_280_401_432_677_9)
                        let value = dy[offset + c] * (cdf + v * pdf)
                        dx[offset + c] = target.accumulate ? dx[offset + c] + value : value
                    }
                }
            }
        }
    }
}
