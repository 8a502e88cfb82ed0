// Reference decoders for the ggml block formats. Every block layout below is described in the doc comment of its
// decoder, byte offsets relative to the block start; multi-byte fields are little-endian and may be unaligned.
// The code favours clarity over speed, but works block by block on raw pointers without allocating, so decoding a
// whole model takes well under a second.

/// Decodes `count` consecutive elements of type `type` from `src` into `count` floats at `dst`.
///
/// `src` must hold `try type.byteCount(elements: count)` readable bytes and `dst` room for `count` floats; neither
/// needs any particular alignment. Integer types (`i8` … `i64`) are converted to the nearest `Float`.
///
/// - Throws: ``QuantizationError/unsupportedType(_:operation:)`` for types that cannot be decoded (see
///   ``GGMLType/isSupported``), ``QuantizationError/countNotMultipleOfBlockSize(type:count:)`` when `count` does
///   not fill whole blocks, ``QuantizationError/negativeCount(_:)`` for a negative count.
public func dequantize(
    _ type: GGMLType, from src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>
) throws(QuantizationError) {
    guard type.isSupported else { throw .unsupportedType(type, operation: .dequantize) }
    _ = try type.byteCount(elements: count)
    let blocks = count / type.blockSize
    let stride = type.typeSize
    let width = type.blockSize
    switch type {
    case .f32:
        UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: count * 4)
    case .f16:
        for i in 0..<count { dst[i] = loadHalf(src, 2 * i) }
    case .bf16:
        for i in 0..<count { dst[i] = bf16ToFloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
    case .f64:
        for i in 0..<count { dst[i] = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)) }
    case .i8:
        for i in 0..<count { dst[i] = Float(src.load(fromByteOffset: i, as: Int8.self)) }
    case .i16:
        for i in 0..<count { dst[i] = Float(src.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self)) }
    case .i32:
        for i in 0..<count { dst[i] = Float(src.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)) }
    case .i64:
        for i in 0..<count { dst[i] = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)) }
    case .q4_0:
        for b in 0..<blocks { decodeQ4_0(src + b * stride, dst + b * width) }
    case .q4_1:
        for b in 0..<blocks { decodeQ4_1(src + b * stride, dst + b * width) }
    case .q5_0:
        for b in 0..<blocks { decodeQ5_0(src + b * stride, dst + b * width) }
    case .q5_1:
        for b in 0..<blocks { decodeQ5_1(src + b * stride, dst + b * width) }
    case .q8_0:
        for b in 0..<blocks { decodeQ8_0(src + b * stride, dst + b * width) }
    case .q8_1:
        for b in 0..<blocks { decodeQ8_1(src + b * stride, dst + b * width) }
    case .q2_K:
        for b in 0..<blocks { decodeQ2_K(src + b * stride, dst + b * width) }
    case .q3_K:
        for b in 0..<blocks { decodeQ3_K(src + b * stride, dst + b * width) }
    case .q4_K:
        for b in 0..<blocks { decodeQ4_K(src + b * stride, dst + b * width) }
    case .q5_K:
        for b in 0..<blocks { decodeQ5_K(src + b * stride, dst + b * width) }
    case .q6_K:
        for b in 0..<blocks { decodeQ6_K(src + b * stride, dst + b * width) }
    case .q8_K:
        for b in 0..<blocks { decodeQ8_K(src + b * stride, dst + b * width) }
    case .iq2_xxs, .iq2_xs, .iq3_xxs, .iq1_s, .iq4_nl, .iq3_s, .iq2_s, .iq4_xs, .iq1_m,
        .tq1_0, .tq2_0, .mxfp4, .nvfp4, .q1_0:
        throw .unsupportedType(type, operation: .dequantize)
    }
}

/// Decodes `count` elements of type `type` from the start of `bytes` into a new array.
///
/// - Throws: the errors of ``dequantize(_:from:count:into:)``, and
///   ``QuantizationError/bufferTooSmall(type:needed:available:)`` when `bytes` is shorter than `count` elements need.
public func dequantize(
    _ type: GGMLType, bytes: UnsafeRawBufferPointer, count: Int
) throws(QuantizationError) -> [Float] {
    let needed = try type.byteCount(elements: count)
    guard type.isSupported else { throw .unsupportedType(type, operation: .dequantize) }
    guard bytes.count >= needed else { throw .bufferTooSmall(type: type, needed: needed, available: bytes.count) }
    guard count > 0, let base = bytes.baseAddress else { return [] }
    var failure: QuantizationError?
    let result = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
        do throws(QuantizationError) {
            try dequantize(type, from: base, count: count, into: buffer.baseAddress!)
            initialized = count
        } catch {
            failure = error
            initialized = 0
        }
    }
    if let failure { throw failure }
    return result
}

// MARK: - Scalar helpers

/// Reads the IEEE half-precision value at `p + offset` (any alignment) as a float; shared with the kernels.
@inlinable @inline(__always)
public func loadHalf(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
    Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
}

@inline(__always)
func byte(_ p: UnsafeRawPointer, _ offset: Int) -> UInt8 {
    p.load(fromByteOffset: offset, as: UInt8.self)
}

@inline(__always)
func signedByte(_ p: UnsafeRawPointer, _ offset: Int) -> Int8 {
    p.load(fromByteOffset: offset, as: Int8.self)
}

/// Converts bfloat16 bits (the upper half of an IEEE binary32) to `Float`.
@inline(__always)
public func bf16ToFloat(_ bits: UInt16) -> Float {
    Float(bitPattern: UInt32(bits) << 16)
}

// MARK: - 32-element blocks

/// Q4_0, 18 bytes: `d: f16 @0, qs: u8[16] @2`. Element j < 16 is `d * ((qs[j] & 15) - 8)`, element j + 16 is
/// `d * ((qs[j] >> 4) - 8)`.
@inline(__always)
func decodeQ4_0(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = loadHalf(p, 0)
    for j in 0..<16 {
        let q = byte(p, 2 + j)
        y[j] = Float(Int(q & 0x0F) - 8) * d
        y[j + 16] = Float(Int(q >> 4) - 8) * d
    }
}

/// Q4_1, 20 bytes: `d: f16 @0, m: f16 @2, qs: u8[16] @4`. Element j < 16 is `d * (qs[j] & 15) + m`, element j + 16
/// is `d * (qs[j] >> 4) + m`.
@inline(__always)
func decodeQ4_1(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = loadHalf(p, 0)
    let m = loadHalf(p, 2)
    for j in 0..<16 {
        let q = byte(p, 4 + j)
        y[j] = Float(q & 0x0F) * d + m
        y[j + 16] = Float(q >> 4) * d + m
    }
}

/// Q5_0, 22 bytes: `d: f16 @0, qh: u32 @2, qs: u8[16] @6`. The fifth bit of element j is bit j of `qh`; element
/// j < 16 is `d * ((qs[j] & 15 | bit j << 4) - 16)`, element j + 16 is `d * ((qs[j] >> 4 | bit (j + 16) << 4) - 16)`.
@inline(__always)
func decodeQ5_0(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = loadHalf(p, 0)
    let qh = p.loadUnaligned(fromByteOffset: 2, as: UInt32.self)
    for j in 0..<16 {
        let q = byte(p, 6 + j)
        let low = Int(q & 0x0F) | Int((qh >> UInt32(j)) & 1) << 4
        let high = Int(q >> 4) | Int((qh >> UInt32(j + 16)) & 1) << 4
        y[j] = Float(low - 16) * d
        y[j + 16] = Float(high - 16) * d
    }
}

/// Q5_1, 24 bytes: `d: f16 @0, m: f16 @2, qh: u32 @4, qs: u8[16] @8`; like Q5_0 without the offset of 16, plus `m`.
@inline(__always)
func decodeQ5_1(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = loadHalf(p, 0)
    let m = loadHalf(p, 2)
    let qh = p.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
    for j in 0..<16 {
        let q = byte(p, 8 + j)
        let low = Int(q & 0x0F) | Int((qh >> UInt32(j)) & 1) << 4
        let high = Int(q >> 4) | Int((qh >> UInt32(j + 16)) & 1) << 4
        y[j] = Float(low) * d + m
        y[j + 16] = Float(high) * d + m
    }
}

/// Q8_0, 34 bytes: `d: f16 @0, qs: i8[32] @2`. Element j is `d * qs[j]`.
@inline(__always)
func decodeQ8_0(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = loadHalf(p, 0)
    for j in 0..<32 { y[j] = Float(signedByte(p, 2 + j)) * d }
}

/// Q8_1, 36 bytes: `d: f16 @0, s: f16 @2 (d * sum(qs), unused here), qs: i8[32] @4`. Element j is `d * qs[j]`.
@inline(__always)
func decodeQ8_1(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = loadHalf(p, 0)
    for j in 0..<32 { y[j] = Float(signedByte(p, 4 + j)) * d }
}

// MARK: - 256-element super-blocks (k-quants)

/// Q2_K, 84 bytes: `scales: u8[16] @0, qs: u8[64] @16, d: f16 @80, dmin: f16 @82`.
///
/// Sixteen groups of 16 elements; group g has scale `scales[g] & 15` and min `scales[g] >> 4`. Element
/// `128 * h + 32 * s + 16 * t + l` (h < 2 halves, s < 4 bit-pair shifts, t < 2, l < 16) is in group `8h + 2s + t`
/// and its 2-bit quant is `(qs[32h + 16t + l] >> 2s) & 3`; its value is `d * scale * q - dmin * min`.
@inline(__always)
func decodeQ2_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = loadHalf(p, 80)
    let dmin = loadHalf(p, 82)
    var out = 0
    var group = 0
    for half in 0..<2 {
        let qs = 16 + 32 * half
        for shift in stride(from: 0, to: 8, by: 2) {
            for part in 0..<2 {
                let sc = byte(p, group)
                let dl = d * Float(sc & 0x0F)
                let ml = dmin * Float(sc >> 4)
                for l in 0..<16 {
                    let q = (byte(p, qs + 16 * part + l) >> UInt8(shift)) & 3
                    y[out + l] = dl * Float(q) - ml
                }
                out += 16
                group += 1
            }
        }
    }
}

/// Q3_K, 110 bytes: `hmask: u8[32] @0, qs: u8[64] @32, scales: u8[12] @96, d: f16 @108`.
///
/// Sixteen groups of 16 elements with signed 6-bit scales (see ``q3KScale(_:_:)``). Element
/// `128 * h + 32 * s + 16 * t + l` is in group `8h + 2s + t`; its low two bits are `(qs[32h + 16t + l] >> 2s) & 3`
/// and its value is `d * scale * (low - (hmask[16t + l] bit (4h + s) set ? 0 : 4))`.
@inline(__always)
func decodeQ3_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = loadHalf(p, 108)
    var out = 0
    var group = 0
    var maskBit: UInt8 = 1
    for half in 0..<2 {
        let qs = 32 + 32 * half
        for shift in stride(from: 0, to: 8, by: 2) {
            for part in 0..<2 {
                let dl = d * Float(q3KScale(p + 96, group))
                for l in 0..<16 {
                    let low = Int((byte(p, qs + 16 * part + l) >> UInt8(shift)) & 3)
                    let high = byte(p, 16 * part + l) & maskBit != 0 ? 0 : 4
                    y[out + l] = dl * Float(low - high)
                }
                out += 16
                group += 1
            }
            maskBit <<= 1
        }
    }
}

/// The signed scale of group `g` (< 16) of a Q3_K block, from its 12 packed scale bytes: the low four bits are the
/// low or high nibble of byte `g % 8` (low for g < 8), the top two bits are bits `2 * (g / 4)` of byte `8 + g % 4`,
/// and the 6-bit value is offset by 32.
@inline(__always)
func q3KScale(_ scales: UnsafeRawPointer, _ g: Int) -> Int {
    let nibbleByte = byte(scales, g % 8)
    let low = g < 8 ? nibbleByte & 0x0F : nibbleByte >> 4
    let high = (byte(scales, 8 + g % 4) >> UInt8(2 * (g / 4))) & 3
    return Int(low | high << 4) - 32
}

/// The 6-bit scale and min of sub-block `j` (< 8) of a Q4_K or Q5_K block, from its 12 packed bytes `q`.
///
/// For j < 4 they are the low six bits of `q[j]` and `q[j + 4]`. For j ≥ 4 the low four bits come from the low
/// (scale) and high (min) nibble of `q[j + 4]`, and the top two bits from the top bits of `q[j - 4]` (scale) and
/// `q[j]` (min).
@inline(__always)
func kScaleMin(_ q: UnsafeRawPointer, _ j: Int) -> (scale: UInt8, min: UInt8) {
    if j < 4 {
        return (byte(q, j) & 63, byte(q, j + 4) & 63)
    }
    let scale = (byte(q, j + 4) & 0x0F) | (byte(q, j - 4) >> 6) << 4
    let min = (byte(q, j + 4) >> 4) | (byte(q, j) >> 6) << 4
    return (scale, min)
}

/// Q4_K, 144 bytes: `d: f16 @0, dmin: f16 @2, scales: u8[12] @4, qs: u8[128] @16`.
///
/// Eight sub-blocks of 32 elements with 6-bit scales and mins (``kScaleMin(_:_:)``). Sub-blocks 2c and 2c + 1 share
/// the 32 bytes `qs[32c ..< 32c + 32]`: low nibbles for 2c, high nibbles for 2c + 1. Element value is
/// `d * scale * q - dmin * min`.
@inline(__always)
func decodeQ4_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = loadHalf(p, 0)
    let dmin = loadHalf(p, 2)
    let scales = p + 4
    for chunk in 0..<4 {
        let (sc1, m1) = kScaleMin(scales, 2 * chunk)
        let (sc2, m2) = kScaleMin(scales, 2 * chunk + 1)
        let d1 = d * Float(sc1)
        let min1 = dmin * Float(m1)
        let d2 = d * Float(sc2)
        let min2 = dmin * Float(m2)
        let qs = 16 + 32 * chunk
        let out = y + 64 * chunk
        for l in 0..<32 {
            let q = byte(p, qs + l)
            out[l] = d1 * Float(q & 0x0F) - min1
            out[l + 32] = d2 * Float(q >> 4) - min2
        }
    }
}

/// Q5_K, 176 bytes: `d: f16 @0, dmin: f16 @2, scales: u8[12] @4, qh: u8[32] @16, qs: u8[128] @48`.
///
/// As Q4_K, with a fifth bit per element: element `32 * s + l` (sub-block s) takes bit s of `qh[l]` as its bit 4.
@inline(__always)
func decodeQ5_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = loadHalf(p, 0)
    let dmin = loadHalf(p, 2)
    let scales = p + 4
    for chunk in 0..<4 {
        let (sc1, m1) = kScaleMin(scales, 2 * chunk)
        let (sc2, m2) = kScaleMin(scales, 2 * chunk + 1)
        let d1 = d * Float(sc1)
        let min1 = dmin * Float(m1)
        let d2 = d * Float(sc2)
        let min2 = dmin * Float(m2)
        let bit1 = UInt8(1) << UInt8(2 * chunk)
        let bit2 = UInt8(2) << UInt8(2 * chunk)
        let qs = 48 + 32 * chunk
        let out = y + 64 * chunk
        for l in 0..<32 {
            let q = byte(p, qs + l)
            let h = byte(p, 16 + l)
            let q1 = (q & 0x0F) | (h & bit1 != 0 ? 16 : 0)
            let q2 = (q >> 4) | (h & bit2 != 0 ? 16 : 0)
            out[l] = d1 * Float(q1) - min1
            out[l + 32] = d2 * Float(q2) - min2
        }
    }
}

/// Q6_K, 210 bytes: `ql: u8[128] @0, qh: u8[64] @128, scales: i8[16] @192, d: f16 @208`.
///
/// Each half h < 2 of 128 elements uses `ql[64h ..< 64h + 64]`, `qh[32h ..< 32h + 32]` and scales `8h ..< 8h + 8`.
/// Within a half, element `32 * k + l` (k < 4, l < 32) has low nibble from `ql[64h + l + 32 * (k % 2)]` (low nibble
/// for k < 2, high for k ≥ 2), top two bits `(qh[32h + l] >> 2k) & 3`, scale `scales[8h + 2k + l / 16]`, and value
/// `d * scale * (q - 32)`.
@inline(__always)
func decodeQ6_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = loadHalf(p, 208)
    for half in 0..<2 {
        let ql = 64 * half
        let qh = 128 + 32 * half
        let sc = 192 + 8 * half
        let out = y + 128 * half
        for l in 0..<32 {
            let group = l / 16
            let h = byte(p, qh + l)
            let a = byte(p, ql + l)
            let b = byte(p, ql + l + 32)
            let q1 = Int((a & 0x0F) | (h & 3) << 4) - 32
            let q2 = Int((b & 0x0F) | ((h >> 2) & 3) << 4) - 32
            let q3 = Int((a >> 4) | ((h >> 4) & 3) << 4) - 32
            let q4 = Int((b >> 4) | ((h >> 6) & 3) << 4) - 32
            out[l] = d * Float(signedByte(p, sc + group)) * Float(q1)
            out[l + 32] = d * Float(signedByte(p, sc + group + 2)) * Float(q2)
            out[l + 64] = d * Float(signedByte(p, sc + group + 4)) * Float(q3)
            out[l + 96] = d * Float(signedByte(p, sc + group + 6)) * Float(q4)
        }
    }
}

/// Q8_K, 292 bytes: `d: f32 @0, qs: i8[256] @4, bsums: i16[16] @260 (unused here)`. Element j is `d * qs[j]`.
@inline(__always)
func decodeQ8_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = p.loadUnaligned(fromByteOffset: 0, as: Float.self)
    for j in 0..<256 { y[j] = Float(signedByte(p, 4 + j)) * d }
}
