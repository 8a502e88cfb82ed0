import CBLAS
import SeedFormats

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The element type of training tensors: `Float` for training, `Double` for gradient checks.
///
/// Every op in ``Tape`` is generic over this protocol. The requirements are the few places where the two types need
/// different code: BLAS GEMM (`cblas_sgemm` / `cblas_dgemm`), scalar transcendental functions, and two bulk kernels
/// that `Float` vectorises with its own SIMD exponential (``exponentiateShifted(_:count:subtracting:)`` and
/// ``sigmoid(_:into:count:)``); `Double` runs them with libm, one element at a time.
public protocol TrainScalar: BinaryFloatingPoint, SIMDScalar, Codable, Sendable, CustomStringConvertible {
    /// The safetensors element type of this scalar (`F32` or `F64`).
    static var safetensorsDType: SafetensorsDType { get }

    /// Row-major GEMM on one thread: `C = alpha * op(A) * op(B) + beta * C`.
    ///
    /// - Parameters:
    ///   - a: `op(A)` is `[m, k]`; `A` is `[k, m]` when `transposeA`; rows `lda` elements apart.
    ///   - b: `op(B)` is `[k, n]`; `B` is `[n, k]` when `transposeB`; rows `ldb` elements apart.
    ///   - c: `[m, n]`, rows `ldc` elements apart.
    static func gemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Self, a: UnsafePointer<Self>, lda: Int,
        b: UnsafePointer<Self>, ldb: Int, beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)

    /// `e^x`.
    static func exponential(_ x: Self) -> Self
    /// Natural logarithm.
    static func logarithm(_ x: Self) -> Self
    /// The Gauss error function.
    static func errorFunction(_ x: Self) -> Self

    /// Replaces `x[i]` by `exp(x[i] - shift)` for `i` in `0..<count` and returns the sum of the new values.
    static func exponentiateShifted(_ x: UnsafeMutablePointer<Self>, count: Int, subtracting shift: Self) -> Self

    /// `out[i] = 1 / (1 + exp(-x[i]))` for `i` in `0..<count` (`out` may equal `x`).
    static func sigmoid(_ x: UnsafePointer<Self>, into out: UnsafeMutablePointer<Self>, count: Int)
}

extension Float: TrainScalar {
    public static var safetensorsDType: SafetensorsDType { .f32 }

    @inline(__always)
    public static func gemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        cblas_sgemm(
            CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    @inline(__always) public static func exponential(_ x: Float) -> Float { expf(x) }
    @inline(__always) public static func logarithm(_ x: Float) -> Float { logf(x) }
    @inline(__always) public static func errorFunction(_ x: Float) -> Float { erff(x) }

    public static func exponentiateShifted(_ x: UnsafeMutablePointer<Float>, count: Int, subtracting shift: Float)
        -> Float
    {
        let raw = UnsafeMutableRawPointer(x)
        let shiftVector = SIMD16<Float>(repeating: shift)
        var sum = SIMD16<Float>()
        var i = 0
        while i + 16 <= count {
            let e = vectorExp(raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) - shiftVector)
            raw.storeBytes(of: e, toByteOffset: i * 4, as: SIMD16<Float>.self)
            sum += e
            i += 16
        }
        var total = sum.sum()
        while i < count {
            let e = expf(x[i] - shift)
            x[i] = e
            total += e
            i += 1
        }
        return total
    }

    public static func sigmoid(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count: Int) {
        let input = UnsafeRawPointer(x)
        let output = UnsafeMutableRawPointer(out)
        let one = SIMD16<Float>(repeating: 1)
        var i = 0
        while i + 16 <= count {
            let v = input.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            output.storeBytes(of: one / (one + vectorExp(-v)), toByteOffset: i * 4, as: SIMD16<Float>.self)
            i += 16
        }
        while i < count {
            out[i] = 1 / (1 + expf(-x[i]))
            i += 1
        }
    }
}

extension Double: TrainScalar {
    public static var safetensorsDType: SafetensorsDType { .f64 }

    @inline(__always)
    public static func gemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Double, a: UnsafePointer<Double>,
        lda: Int, b: UnsafePointer<Double>, ldb: Int, beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        cblas_dgemm(
            CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    @inline(__always) public static func exponential(_ x: Double) -> Double { exp(x) }
    @inline(__always) public static func logarithm(_ x: Double) -> Double { log(x) }
    @inline(__always) public static func errorFunction(_ x: Double) -> Double { erf(x) }

    public static func exponentiateShifted(_ x: UnsafeMutablePointer<Double>, count: Int, subtracting shift: Double)
        -> Double
    {
        var total = 0.0
        for i in 0..<count {
            let e = exp(x[i] - shift)
            x[i] = e
            total += e
        }
        return total
    }

    public static func sigmoid(_ x: UnsafePointer<Double>, into out: UnsafeMutablePointer<Double>, count: Int) {
        for i in 0..<count { out[i] = 1 / (1 + exp(-x[i])) }
    }
}

/// `e^x` on 16 lanes: Cody-Waite range reduction and a degree-6 polynomial (Cephes `expf`), within 2 ulp.
///
/// Inputs below -87.3 give 0 (so a masked `-inf` score contributes nothing); inputs above 88 are clamped to
/// `e^88` (about 1.65e38), which only the sigmoid of very negative inputs ever sees.
@inline(__always)
func vectorExp(_ x: SIMD16<Float>) -> SIMD16<Float> {
    let lowest: Float = -87.33654
    let v = pointwiseMax(pointwiseMin(x, SIMD16(repeating: 88)), SIMD16(repeating: lowest))
    // n = round(v / ln 2) by the 1.5 * 2^23 trick: the sum's low mantissa bits hold n as an integer.
    let magic = SIMD16<Float>(repeating: 12_582_912)
    let shifted = magic.addingProduct(v, SIMD16(repeating: 1.442_695_04))
    let n = shifted - magic
    var r = v.addingProduct(n, SIMD16(repeating: -0.693_359_375))
    r = r.addingProduct(n, SIMD16(repeating: 2.121_944_4e-4))
    var p = SIMD16<Float>(repeating: 1.987_569_15e-4)
    p = SIMD16(repeating: 1.398_199_95e-3).addingProduct(p, r)
    p = SIMD16(repeating: 8.333_451_9e-3).addingProduct(p, r)
    p = SIMD16(repeating: 4.166_579_6e-2).addingProduct(p, r)
    p = SIMD16(repeating: 1.666_666_55e-1).addingProduct(p, r)
    p = SIMD16(repeating: 5.000_000_1e-1).addingProduct(p, r)
    let y = (r + 1).addingProduct(p, r * r)
    let exponent = unsafeBitCast(shifted, to: SIMD16<Int32>.self) &- unsafeBitCast(magic, to: SIMD16<Int32>.self)
    let scale = unsafeBitCast((exponent &+ 127) &<< 23, to: SIMD16<Float>.self)
    var result = y * scale
    result.replace(with: 0, where: x .< lowest)
    return result
}
