#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Root-mean-square normalisation of each row: `y = x / sqrt(mean(x²) + eps) * weight`.
///
/// - Parameters:
///   - x: input `[rows, dim]`.
///   - weight: per-channel gain `[dim]`.
///   - y: output `[rows, dim]` (may alias `x`).
public func rmsNorm(
    _ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, rows: Int, dim: Int, eps: Float,
    into y: UnsafeMutablePointer<Float>
) {
    for r in 0..<rows {
        let xr = x + r * dim
        let yr = y + r * dim
        var sum: Float = 0
        var i = 0
        var acc = SIMD16<Float>()
        while i + 16 <= dim {
            let v = UnsafeRawPointer(xr + i).loadUnaligned(as: SIMD16<Float>.self)
            acc = acc.addingProduct(v, v)
            i += 16
        }
        sum = horizontalSum(acc)
        while i < dim {
            sum += xr[i] * xr[i]
            i += 1
        }
        let scale = 1 / (sum / Float(dim) + eps).squareRoot()
        for j in 0..<dim { yr[j] = xr[j] * scale * weight[j] }
    }
}

/// `x[i] += y[i]` for `count` elements.
public func addInPlace(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count: Int) {
    var i = 0
    let xr = UnsafeMutableRawPointer(x)
    let yr = UnsafeRawPointer(y)
    while i + 16 <= count {
        let s =
            xr.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            + yr.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
        xr.storeBytes(of: s, toByteOffset: i * 4, as: SIMD16<Float>.self)
        i += 16
    }
    while i < count {
        x[i] += y[i]
        i += 1
    }
}

/// SwiGLU gate: `gate[i] = silu(gate[i]) * up[i]` where `silu(v) = v / (1 + e^-v)`.
public func siluMultiply(gate: UnsafeMutablePointer<Float>, up: UnsafePointer<Float>, count: Int) {
    let g = UnsafeMutableRawPointer(gate)
    let u = UnsafeRawPointer(up)
    var i = 0
    while i + 16 <= count {
        let v = g.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
        let silu = v / (exp16(-v) + 1)
        g.storeBytes(
            of: silu * u.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self), toByteOffset: i * 4,
            as: SIMD16<Float>.self)
        i += 16
    }
    while i < count {
        let v = gate[i]
        gate[i] = v / (1 + expf(-v)) * up[i]
        i += 1
    }
}

/// Numerically stable softmax of `x[0..<count]` in place; returns nothing, `x` sums to 1 afterwards.
///
/// Three passes sixteen lanes at a time: the maximum (``horizontalMax(_:)``), the shifted exponentials and their sum
/// (``exponentiateInPlace(_:count:shift:)``), the scaling.
public func softmaxInPlace(_ x: UnsafeMutablePointer<Float>, count: Int) {
    guard count > 0 else { return }
    let raw = UnsafeMutableRawPointer(x)
    var i = 0
    var maxVector = SIMD16<Float>(repeating: -.infinity)
    while i + 16 <= count {
        maxVector = max16(maxVector, raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self))
        i += 16
    }
    var maxValue = horizontalMax(maxVector)
    while i < count {
        maxValue = max(maxValue, x[i])
        i += 1
    }
    let inverse = 1 / exponentiateInPlace(x, count: count, shift: maxValue)
    i = 0
    while i + 16 <= count {
        let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) * inverse
        raw.storeBytes(of: v, toByteOffset: i * 4, as: SIMD16<Float>.self)
        i += 16
    }
    while i < count {
        x[i] *= inverse
        i += 1
    }
}

/// Rotary position embedding tables for a batch of positions.
///
/// Holds `cos`/`sin` of `position * base^(-2i/rotaryDim)` for `i` in `0..<rotaryDim/2`, for each token of a batch.
public struct RotaryTable: ~Copyable {
    public let rotaryDim: Int
    public let base: Float
    public let capacity: Int
    public private(set) var cos: UnsafeMutablePointer<Float>
    public private(set) var sin: UnsafeMutablePointer<Float>
    private let inverseFrequencies: [Float]

    /// Tables for up to `capacity` tokens per batch.
    public init(rotaryDim: Int, base: Float, capacity: Int) {
        self.rotaryDim = rotaryDim
        self.base = base
        self.capacity = capacity
        let half = rotaryDim / 2
        cos = .allocate(capacity: capacity * half)
        sin = .allocate(capacity: capacity * half)
        inverseFrequencies = (0..<half).map { i in powf(base, -Float(2 * i) / Float(rotaryDim)) }
    }

    deinit {
        cos.deallocate()
        sin.deallocate()
    }

    /// Fills rows `0..<count` for positions `start ..< start + count`.
    public mutating func fill(start: Int, count: Int) {
        let half = rotaryDim / 2
        for t in 0..<count {
            let p = Float(start + t)
            for i in 0..<half {
                let angle = p * inverseFrequencies[i]
                cos[t * half + i] = cosf(angle)
                sin[t * half + i] = sinf(angle)
            }
        }
    }

    /// Fills rows `0..<count` for the positions `positions[0..<count]` (tokens of several sequences in one batch).
    public mutating func fill(positions: UnsafePointer<Int32>, count: Int) {
        let half = rotaryDim / 2
        for t in 0..<count {
            let p = Float(positions[t])
            for i in 0..<half {
                let angle = p * inverseFrequencies[i]
                cos[t * half + i] = cosf(angle)
                sin[t * half + i] = sinf(angle)
            }
        }
    }

    /// Rotates adjacent pairs `(2i, 2i+1)` of each head (GGML's "normal" RoPE, used by GGUF Llama models).
    ///
    /// - Parameters:
    ///   - x: `[tokens, heads, headDim]`, token rows `rowStride` floats apart.
    public func applyInterleaved(
        _ x: UnsafeMutablePointer<Float>, tokens: Int, heads: Int, headDim: Int, rowStride: Int
    ) {
        let half = rotaryDim / 2
        for t in 0..<tokens {
            let c = cos + t * half
            let s = sin + t * half
            for h in 0..<heads {
                let v = x + t * rowStride + h * headDim
                for i in 0..<half {
                    let a = v[2 * i]
                    let b = v[2 * i + 1]
                    v[2 * i] = a * c[i] - b * s[i]
                    v[2 * i + 1] = a * s[i] + b * c[i]
                }
            }
        }
    }

    /// Rotates pairs `(i, i + rotaryDim/2)` of each head (the "NeoX"/Hugging Face rotate-half convention).
    public func applyHalves(
        _ x: UnsafeMutablePointer<Float>, tokens: Int, heads: Int, headDim: Int, rowStride: Int
    ) {
        let half = rotaryDim / 2
        for t in 0..<tokens {
            let c = cos + t * half
            let s = sin + t * half
            for h in 0..<heads {
                let v = x + t * rowStride + h * headDim
                for i in 0..<half {
                    let a = v[i]
                    let b = v[i + half]
                    v[i] = a * c[i] - b * s[i]
                    v[i + half] = a * s[i] + b * c[i]
                }
            }
        }
    }
}
