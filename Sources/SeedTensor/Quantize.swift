// Reference encoders for the simple ggml formats, following the rounding of ggml's `quantize_row_*_ref` functions
// so that files written here decode the same everywhere. Non-finite inputs never trap: NaN quantizes to the
// format's zero point and infinities saturate.

/// Encodes `count` floats from `src` as type `type` into `dst`.
///
/// `dst` must have room for `try type.byteCount(elements: count)` bytes; no alignment is required.
/// Supported types are listed by ``GGMLType/isQuantizationSupported``: `f32`, `f16`, `bf16`, `f64`, `q8_0`, `q4_0`,
/// `q4_1`, `q5_0` and `q5_1`. Half and bfloat16 conversions round to nearest, ties to even.
///
/// - Throws: ``QuantizationError/unsupportedType(_:operation:)`` for other types,
///   ``QuantizationError/countNotMultipleOfBlockSize(type:count:)`` when `count` does not fill whole blocks.
public func quantize(
    _ type: GGMLType, from src: UnsafePointer<Float>, count: Int, into dst: UnsafeMutableRawPointer
) throws(QuantizationError) {
    guard type.isQuantizationSupported else { throw .unsupportedType(type, operation: .quantize) }
    _ = try type.byteCount(elements: count)
    let blocks = count / type.blockSize
    let stride = type.typeSize
    let width = type.blockSize
    switch type {
    case .f32:
        dst.copyMemory(from: src, byteCount: count * 4)
    case .f16:
        for i in 0..<count { dst.storeBytes(of: Float16(src[i]).bitPattern, toByteOffset: 2 * i, as: UInt16.self) }
    case .bf16:
        for i in 0..<count { dst.storeBytes(of: floatToBF16(src[i]), toByteOffset: 2 * i, as: UInt16.self) }
    case .f64:
        for i in 0..<count { dst.storeBytes(of: Double(src[i]), toByteOffset: 8 * i, as: Double.self) }
    case .q8_0:
        for b in 0..<blocks { encodeQ8_0(src + b * width, dst + b * stride) }
    case .q4_0:
        for b in 0..<blocks { encodeQ4_0(src + b * width, dst + b * stride) }
    case .q4_1:
        for b in 0..<blocks { encodeQ4_1(src + b * width, dst + b * stride) }
    case .q5_0:
        for b in 0..<blocks { encodeQ5_0(src + b * width, dst + b * stride) }
    case .q5_1:
        for b in 0..<blocks { encodeQ5_1(src + b * width, dst + b * stride) }
    default:
        throw .unsupportedType(type, operation: .quantize)
    }
}

/// Encodes `values` as type `type` into a new byte array of `try type.byteCount(elements: values.count)` bytes.
///
/// - Throws: the errors of ``quantize(_:from:count:into:)``.
public func quantize(_ type: GGMLType, _ values: [Float]) throws(QuantizationError) -> [UInt8] {
    guard type.isQuantizationSupported else { throw .unsupportedType(type, operation: .quantize) }
    let size = try type.byteCount(elements: values.count)
    var bytes = [UInt8](repeating: 0, count: size)
    var failure: QuantizationError?
    values.withUnsafeBufferPointer { source in
        bytes.withUnsafeMutableBytes { destination in
            guard let src = source.baseAddress, let dst = destination.baseAddress else { return }
            do throws(QuantizationError) {
                try quantize(type, from: src, count: values.count, into: dst)
            } catch {
                failure = error
            }
        }
    }
    if let failure { throw failure }
    return bytes
}

/// Converts a float to bfloat16 bits, rounding to nearest with ties to even; NaN stays a (quiet) NaN.
@inline(__always)
public func floatToBF16(_ value: Float) -> UInt16 {
    let bits = value.bitPattern
    if value.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040 }
    let roundingBias: UInt32 = 0x7FFF + ((bits >> 16) & 1)
    return UInt16(truncatingIfNeeded: (bits &+ roundingBias) >> 16)
}

// MARK: - Helpers

/// Truncates `value` toward zero like a C float-to-int cast, clamped to `lower...upper`; NaN gives `nan`.
@inline(__always)
func truncatedClamped(_ value: Float, _ lower: Int, _ upper: Int, nan: Int) -> Int {
    if value.isNaN { return nan }
    if value <= Float(lower) { return lower }
    if value >= Float(upper) { return upper }
    return Int(value)
}

@inline(__always)
func storeHalf(_ value: Float, _ p: UnsafeMutableRawPointer, _ offset: Int) {
    p.storeBytes(of: Float16(value).bitPattern, toByteOffset: offset, as: UInt16.self)
}

/// The element of largest magnitude, with its sign (the first one on ties); 0 when all are 0 or NaN.
@inline(__always)
func signedAbsMax(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var amax: Float = 0
    var signed: Float = 0
    for j in 0..<n where amax < abs(x[j]) {
        amax = abs(x[j])
        signed = x[j]
    }
    return signed
}

/// Smallest and largest element (NaNs ignored); `(0, 0)` if there are none.
@inline(__always)
func minMax(_ x: UnsafePointer<Float>, _ n: Int) -> (min: Float, max: Float) {
    var low = Float.greatestFiniteMagnitude
    var high = -Float.greatestFiniteMagnitude
    for j in 0..<n {
        if x[j] < low { low = x[j] }
        if x[j] > high { high = x[j] }
    }
    return low > high ? (0, 0) : (low, high)
}

// MARK: - Block encoders

/// Q8_0: `d = max|x| / 127`, `q = round(x / d)` (ties away from zero).
@inline(__always)
func encodeQ8_0(_ x: UnsafePointer<Float>, _ p: UnsafeMutableRawPointer) {
    var amax: Float = 0
    for j in 0..<32 where abs(x[j]) > amax { amax = abs(x[j]) }
    let d = amax / 127
    let id: Float = d != 0 ? 1 / d : 0
    storeHalf(d, p, 0)
    for j in 0..<32 {
        let q = truncatedClamped((x[j] * id).rounded(), -127, 127, nan: 0)
        p.storeBytes(of: Int8(q), toByteOffset: 2 + j, as: Int8.self)
    }
}

/// Q4_0: `d = -m / 8` where m is the element of largest magnitude (so m itself maps to quant 0),
/// `q = min(15, trunc(x / d + 8.5))`.
@inline(__always)
func encodeQ4_0(_ x: UnsafePointer<Float>, _ p: UnsafeMutableRawPointer) {
    let d = signedAbsMax(x, 32) / -8
    let id: Float = d != 0 ? 1 / d : 0
    storeHalf(d, p, 0)
    for j in 0..<16 {
        let low = truncatedClamped(x[j] * id + 8.5, 0, 15, nan: 8)
        let high = truncatedClamped(x[j + 16] * id + 8.5, 0, 15, nan: 8)
        p.storeBytes(of: UInt8(low | high << 4), toByteOffset: 2 + j, as: UInt8.self)
    }
}

/// Q4_1: `d = (max - min) / 15`, `m = min`, `q = min(15, trunc((x - min) / d + 0.5))`.
@inline(__always)
func encodeQ4_1(_ x: UnsafePointer<Float>, _ p: UnsafeMutableRawPointer) {
    let (low, high) = minMax(x, 32)
    let d = (high - low) / 15
    let id: Float = d != 0 ? 1 / d : 0
    storeHalf(d, p, 0)
    storeHalf(low, p, 2)
    for j in 0..<16 {
        let a = truncatedClamped((x[j] - low) * id + 0.5, 0, 15, nan: 0)
        let b = truncatedClamped((x[j + 16] - low) * id + 0.5, 0, 15, nan: 0)
        p.storeBytes(of: UInt8(a | b << 4), toByteOffset: 4 + j, as: UInt8.self)
    }
}

/// Q5_0: `d = -m / 16` (m as in Q4_0), `q = min(31, trunc(x / d + 16.5))`, bit 4 of element j goes to bit j of `qh`.
@inline(__always)
func encodeQ5_0(_ x: UnsafePointer<Float>, _ p: UnsafeMutableRawPointer) {
    let d = signedAbsMax(x, 32) / -16
    let id: Float = d != 0 ? 1 / d : 0
    storeHalf(d, p, 0)
    var qh: UInt32 = 0
    for j in 0..<16 {
        let low = truncatedClamped(x[j] * id + 16.5, 0, 31, nan: 16)
        let high = truncatedClamped(x[j + 16] * id + 16.5, 0, 31, nan: 16)
        p.storeBytes(of: UInt8((low & 0x0F) | (high & 0x0F) << 4), toByteOffset: 6 + j, as: UInt8.self)
        qh |= UInt32(low >> 4) << UInt32(j) | UInt32(high >> 4) << UInt32(j + 16)
    }
    p.storeBytes(of: qh, toByteOffset: 2, as: UInt32.self)
}

/// Q5_1: `d = (max - min) / 31`, `m = min`, `q = trunc((x - min) / d + 0.5)`, high bits as in Q5_0.
@inline(__always)
func encodeQ5_1(_ x: UnsafePointer<Float>, _ p: UnsafeMutableRawPointer) {
    let (low, high) = minMax(x, 32)
    let d = (high - low) / 31
    let id: Float = d != 0 ? 1 / d : 0
    storeHalf(d, p, 0)
    storeHalf(low, p, 2)
    var qh: UInt32 = 0
    for j in 0..<16 {
        let a = truncatedClamped((x[j] - low) * id + 0.5, 0, 31, nan: 0)
        let b = truncatedClamped((x[j + 16] - low) * id + 0.5, 0, 31, nan: 0)
        p.storeBytes(of: UInt8((a & 0x0F) | (b & 0x0F) << 4), toByteOffset: 8 + j, as: UInt8.self)
        qh |= UInt32(a >> 4) << UInt32(j) | UInt32(b >> 4) << UInt32(j + 16)
    }
    p.storeBytes(of: qh, toByteOffset: 4, as: UInt32.self)
}
