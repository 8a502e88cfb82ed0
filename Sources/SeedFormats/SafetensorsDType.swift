/// An element type of a safetensors tensor, spelled as in the file's `dtype` field.
///
/// All types are stored little-endian. `F8_E4M3` is the "fn" variant (no infinities, NaN is `S.1111.111`),
/// `F8_E5M2` is the top byte of an IEEE binary16.
public enum SafetensorsDType: String, Sendable, CaseIterable {
    case bool = "BOOL"
    case u8 = "U8"
    case i8 = "I8"
    case f8E5M2 = "F8_E5M2"
    case f8E4M3 = "F8_E4M3"
    case i16 = "I16"
    case u16 = "U16"
    case f16 = "F16"
    case bf16 = "BF16"
    case i32 = "I32"
    case u32 = "U32"
    case f32 = "F32"
    case f64 = "F64"
    case i64 = "I64"
    case u64 = "U64"

    /// Bytes per element: 1, 2, 4 or 8.
    public var byteSize: Int {
        switch self {
        case .bool, .u8, .i8, .f8E5M2, .f8E4M3: 1
        case .i16, .u16, .f16, .bf16: 2
        case .i32, .u32, .f32: 4
        case .f64, .i64, .u64: 8
        }
    }

    /// Whether the type is a floating-point type (F8_E5M2, F8_E4M3, F16, BF16, F32, F64).
    public var isFloatingPoint: Bool {
        switch self {
        case .f8E5M2, .f8E4M3, .f16, .bf16, .f32, .f64: true
        default: false
        }
    }

    /// Element `index` of `count`-element data at `base` (unaligned, little-endian) as a `Double`.
    ///
    /// Exact for every type except I64/U64 beyond 2^53 (rounded to nearest). BOOL is any non-zero byte → 1.
    @inline(__always)
    func loadDouble(_ base: UnsafeRawPointer, _ index: Int) -> Double {
        switch self {
        case .bool: return base.load(fromByteOffset: index, as: UInt8.self) == 0 ? 0 : 1
        case .u8: return Double(base.load(fromByteOffset: index, as: UInt8.self))
        case .i8: return Double(base.load(fromByteOffset: index, as: Int8.self))
        case .f8E5M2: return Double(Float16(bitPattern: UInt16(base.load(fromByteOffset: index, as: UInt8.self)) << 8))
        case .f8E4M3: return Double(f8E4M3ToFloat(base.load(fromByteOffset: index, as: UInt8.self)))
        case .i16: return Double(Int16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * index, as: Int16.self)))
        case .u16: return Double(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * index, as: UInt16.self)))
        case .f16:
            let bits = UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * index, as: UInt16.self))
            return Double(Float16(bitPattern: bits))
        case .bf16:
            let bits = UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * index, as: UInt16.self))
            return Double(Float(bitPattern: UInt32(bits) << 16))
        case .i32: return Double(Int32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * index, as: Int32.self)))
        case .u32: return Double(UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * index, as: UInt32.self)))
        case .f32:
            let bits = UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * index, as: UInt32.self))
            return Double(Float(bitPattern: bits))
        case .f64:
            let bits = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * index, as: UInt64.self))
            return Double(bitPattern: bits)
        case .i64: return Double(Int64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * index, as: Int64.self)))
        case .u64: return Double(UInt64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * index, as: UInt64.self)))
        }
    }

    /// Element `index` as a `Float`: exact for 8/16-bit floats and F32, rounded to nearest for the rest.
    @inline(__always)
    func loadFloat(_ base: UnsafeRawPointer, _ index: Int) -> Float {
        switch self {
        case .f32:
            let bits = UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * index, as: UInt32.self))
            return Float(bitPattern: bits)
        case .f16:
            let bits = UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * index, as: UInt16.self))
            return Float(Float16(bitPattern: bits))
        case .bf16:
            let bits = UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * index, as: UInt16.self))
            return Float(bitPattern: UInt32(bits) << 16)
        case .i64:
            return Float(Int64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * index, as: Int64.self)))
        case .u64:
            return Float(UInt64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * index, as: UInt64.self)))
        default:
            // Every other type converts to Double exactly; one rounding to Float is then correct.
            return Float(loadDouble(base, index))
        }
    }
}

/// Decodes an OCP FP8 E4M3 ("fn": bias 7, no infinities, `S.1111.111` is NaN) byte.
func f8E4M3ToFloat(_ byte: UInt8) -> Float {
    let sign: Float = byte & 0x80 != 0 ? -1 : 1
    let exponent = Int((byte >> 3) & 0x0F)
    let mantissa = Float(byte & 0x07)
    if exponent == 15 && byte & 0x07 == 7 { return .nan }
    if exponent == 0 { return sign * mantissa / 8 * 0x1p-6 }
    return sign * (1 + mantissa / 8) * Float(sign: .plus, exponent: exponent - 7, significand: 1)
}
