#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Layer normalisation of each row: `y = (x - mean(x)) / sqrt(var(x) + eps) * weight + bias`.
///
/// The variance is the biased (population) variance, as in PyTorch's `nn.LayerNorm`; mean and variance are computed in
/// two passes for accuracy.
///
/// - Parameters:
///   - x: input `[rows, dim]`.
///   - weight: per-channel gain `[dim]`.
///   - bias: per-channel offset `[dim]`.
///   - y: output `[rows, dim]` (may alias `x`).
public func layerNorm(
    _ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, rows: Int, dim: Int,
    eps: Float, into y: UnsafeMutablePointer<Float>
) {
    guard dim > 0 else { return }
    for r in 0..<rows {
        let xr = x + r * dim
        let yr = y + r * dim
        var acc = SIMD16<Float>()
        var i = 0
        while i + 16 <= dim {
            acc += UnsafeRawPointer(xr + i).loadUnaligned(as: SIMD16<Float>.self)
            i += 16
        }
        var sum = horizontalSum(acc)
        while i < dim {
            sum += xr[i]
            i += 1
        }
        let mean = sum / Float(dim)
        let meanVector = SIMD16<Float>(repeating: mean)
        acc = SIMD16<Float>()
        i = 0
        while i + 16 <= dim {
            let d = UnsafeRawPointer(xr + i).loadUnaligned(as: SIMD16<Float>.self) - meanVector
            acc = acc.addingProduct(d, d)
            i += 16
        }
        var squares = horizontalSum(acc)
        while i < dim {
            let d = xr[i] - mean
            squares += d * d
            i += 1
        }
        let scale = 1 / (squares / Float(dim) + eps).squareRoot()
        for j in 0..<dim { yr[j] = (xr[j] - mean) * scale * weight[j] + bias[j] }
    }
}

/// `x[r, c] += bias[c]` for every row of `x: [rows, dim]`.
public func addBias(_ x: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>, rows: Int, dim: Int) {
    for r in 0..<rows { addInPlace(x + r * dim, bias, count: dim) }
}

/// The GELU variants used by BERT-family models.
public enum GELUKind: Sendable, Equatable {
    /// The exact form `x/2 · (1 + erf(x / √2))` (PyTorch's default, Hugging Face's `gelu`).
    case exact
    /// The tanh approximation `x/2 · (1 + tanh(√(2/π) · (x + 0.044715 x³)))` (Hugging Face's `gelu_new`).
    case tanh
}

/// Applies GELU in place to `x[0..<count]`, sixteen lanes at a time (see ``onePlusErf16(_:)`` and ``exp16(_:)``;
/// both forms agree with PyTorch's to about 1 ulp of the result).
public func gelu(_ x: UnsafeMutablePointer<Float>, count: Int, kind: GELUKind) {
    let raw = UnsafeMutableRawPointer(x)
    var i = 0
    switch kind {
    case .exact:
        let invSqrt2: Float = 0.707_106_781_186_547_524
        while i + 16 <= count {
            let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            let y = 0.5 * v * onePlusErf16(v * invSqrt2)
            raw.storeBytes(of: y, toByteOffset: i * 4, as: SIMD16<Float>.self)
            i += 16
        }
        while i < count {
            let v = x[i]
            x[i] = 0.5 * v * (1 + erff(v * invSqrt2))
            i += 1
        }
    case .tanh:
        // x/2 · (1 + tanh(z)) = x / (1 + e^(-2z)), z = √(2/π) · (x + 0.044715 x³).
        let c: Float = 0.797_884_560_802_865_355  // √(2/π)
        while i + 16 <= count {
            let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            let z = c * v.addingProduct(0.044715 * v * v, v)
            let y = v / (1 + exp16(-2 * z))
            raw.storeBytes(of: y, toByteOffset: i * 4, as: SIMD16<Float>.self)
            i += 16
        }
        while i < count {
            let v = x[i]
            x[i] = 0.5 * v * (1 + tanhf(c * (v + 0.044715 * v * v * v)))
            i += 1
        }
    }
}
