#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Rotary position embedding tables: `cos` and `sin` of `position * base^(-2i/headDim)` for `i < headDim / 2`.
///
/// Angles are computed in `Double` and rounded once to `Scalar`. Two pairings of dimensions exist:
/// Hugging Face's rotate-half (`(i, i + headDim/2)`, `interleaved == false`) and GGUF/Meta's adjacent pairs
/// (`(2i, 2i+1)`, `interleaved == true`); the same weights give different models under the two, so the flag must
/// match the checkpoint (``LlamaConfiguration/ropeInterleaved``).
public final class RotaryEmbedding<Scalar: TrainScalar>: @unchecked Sendable {
    // @unchecked Sendable: immutable after init.

    /// Width of one attention head (even).
    public let headDim: Int
    /// The frequency base (`rope_theta`).
    public let base: Double
    /// Positions `0..<maximumPositions` have table rows.
    public let maximumPositions: Int
    /// Adjacent-pair (GGUF) rather than rotate-half (Hugging Face) pairing.
    public let interleaved: Bool
    let cosines: [Scalar]
    let sines: [Scalar]

    /// Tables for positions `0..<maximumPositions`.
    public init(headDim: Int, base: Double, maximumPositions: Int, interleaved: Bool) {
        precondition(headDim > 0 && headDim % 2 == 0, "RoPE head width must be even")
        self.headDim = headDim
        self.base = base
        self.maximumPositions = maximumPositions
        self.interleaved = interleaved
        let half = headDim / 2
        var cosines = [Scalar](repeating: 0, count: maximumPositions * half)
        var sines = [Scalar](repeating: 0, count: maximumPositions * half)
        for i in 0..<half {
            let inverseFrequency = 1 / pow(base, Double(2 * i) / Double(headDim))
            for p in 0..<maximumPositions {
                let angle = Double(p) * inverseFrequency
                cosines[p * half + i] = Scalar(cos(angle))
                sines[p * half + i] = Scalar(sin(angle))
            }
        }
        self.cosines = cosines
        self.sines = sines
    }

    /// Rotates every head of `[tokens, heads * headDim]` rows by its token's angle (`inverse` rotates back, which
    /// is also the transpose, so backward uses it).
    func rotate(
        _ x: UnsafePointer<Scalar>, into y: UnsafeMutablePointer<Scalar>, tokens: Range<Int>, heads: Int,
        positions: UnsafeBufferPointer<Int32>, inverse: Bool, accumulate: Bool
    ) {
        let half = headDim / 2
        let width = heads * headDim
        let sign: Scalar = inverse ? -1 : 1
        cosines.withUnsafeBufferPointer { cosTable in
            sines.withUnsafeBufferPointer { sinTable in
                for t in tokens {
                    let c = cosTable.baseAddress! + Int(positions[t]) * half
                    let s = sinTable.baseAddress! + Int(positions[t]) * half
                    for h in 0..<heads {
                        let source = x + t * width + h * headDim
                        let destination = y + t * width + h * headDim
                        for i in 0..<half {
                            let (first, second) = interleaved ? (2 * i, 2 * i + 1) : (i, i + half)
                            let a = source[first]
                            let b = source[second]
                            let sine = sign * s[i]
                            let rotatedFirst = a * c[i] - b * sine
                            let rotatedSecond = a * sine + b * c[i]
                            if accumulate {
                                destination[first] += rotatedFirst
                                destination[second] += rotatedSecond
                            } else {
                                destination[first] = rotatedFirst
                                destination[second] = rotatedSecond
                            }
                        }
                    }
                }
            }
        }
    }
}

extension Tape {
    /// Rotary position embedding of queries or keys.
    ///
    /// - Parameters:
    ///   - input: `[tokens, heads * table.headDim]`.
    ///   - positions: one position per token, each in `0..<table.maximumPositions`.
    /// - Returns: `[tokens, heads * table.headDim]`, each head rotated by its token's angles.
    @_specialize(exported:true,where Scalar == Float)
    @_specialize(exported:true,where Scalar == Double)
    public func rotary(
        _ input: Variable, table: RotaryEmbedding<Scalar>, positions: UnsafeBufferPointer<Int32>, heads: Int
    ) -> Variable {
        let (tokens, width) = shape(of: input)
        precondition(width == heads * table.headDim, "rotary: \(width) columns for \(heads) heads")
        precondition(positions.count == tokens, "rotary: \(positions.count) positions for \(tokens) tokens")
        for p in positions { precondition(p >= 0 && Int(p) < table.maximumPositions, "rotary: position \(p)") }
        let output = makeNode(rows: tokens, columns: width, requiresGradient: requiresGradient(input))
        let x = nodes[input.index].value
        let y = nodes[output.index].value
        parallelChunks(tokens, grain: 16) { range in
            table.rotate(
                x, into: y, tokens: range, heads: heads, positions: positions, inverse: false, accumulate: false)
        }
        if nodes[output.index].requiresGradient {
            record(
                .rotary(output: output, input: input, table: table, positions: storeIntegers(positions)),
                output: output)
        }
        return output
    }

    func rotaryBackward(output: Variable, input: Variable, table: RotaryEmbedding<Scalar>, positions: Range<Int>) {
        guard let dy = outputGradient(output), let target = gradientTarget(input) else { return }
        let (tokens, width) = shape(of: input)
        let heads = width / table.headDim
        integers.withUnsafeBufferPointer { all in
            let ids = UnsafeBufferPointer(rebasing: all[positions])
            parallelChunks(tokens, grain: 16) { range in
                table.rotate(
                    dy, into: target.pointer, tokens: range, heads: heads, positions: ids, inverse: true,
                    accumulate: target.accumulate)
            }
        }
    }
}
