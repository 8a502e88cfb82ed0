import SeedTensor

/// Decodes 32 consecutive weights of one storage format into two 16-lane float vectors.
///
/// Each conforming type describes one GGML block layout with exactly 32 elements per block (or, for plain float
/// formats, a run of 32 elements), so the matrix kernels can be written once and specialised per format.
@usableFromInline
protocol Block32Decoder {
    /// Bytes occupied by 32 elements.
    static var bytesPer32: Int { get }
    /// Weights 0..<16 and 16..<32 of the run starting at `p`.
    static func decode(_ p: UnsafeRawPointer) -> (SIMD16<Float>, SIMD16<Float>)
}

@inline(__always)
@usableFromInline
func loadHalf(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
    Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
}

/// Q4_0: `{ f16 d; u8 qs[16] }`; element j is `d * ((qs[j] & 15) - 8)`, element j + 16 is `d * ((qs[j] >> 4) - 8)`.
@usableFromInline
enum Q4_0Decoder: Block32Decoder {
    @usableFromInline static var bytesPer32: Int { 18 }
    @inline(__always) @usableFromInline
    static func decode(_ p: UnsafeRawPointer) -> (SIMD16<Float>, SIMD16<Float>) {
        let d = loadHalf(p, 0)
        let q = p.loadUnaligned(fromByteOffset: 2, as: SIMD16<UInt8>.self)
        let lo = SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: q & 0x0F) &- 8)
        let hi = SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: q &>> 4) &- 8)
        return (lo * d, hi * d)
    }
}

/// Q4_1: `{ f16 d; f16 m; u8 qs[16] }`; element j is `d * (qs[j] & 15) + m`, element j + 16 is `d * (qs[j] >> 4) + m`.
@usableFromInline
enum Q4_1Decoder: Block32Decoder {
    @usableFromInline static var bytesPer32: Int { 20 }
    @inline(__always) @usableFromInline
    static func decode(_ p: UnsafeRawPointer) -> (SIMD16<Float>, SIMD16<Float>) {
        let d = SIMD16<Float>(repeating: loadHalf(p, 0))
        let m = SIMD16<Float>(repeating: loadHalf(p, 2))
        let q = p.loadUnaligned(fromByteOffset: 4, as: SIMD16<UInt8>.self)
        let lo = SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: q & 0x0F))
        let hi = SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: q &>> 4))
        return (m.addingProduct(lo, d), m.addingProduct(hi, d))
    }
}

/// Q8_0: `{ f16 d; i8 qs[32] }`; element j is `d * qs[j]`.
@usableFromInline
enum Q8_0Decoder: Block32Decoder {
    @usableFromInline static var bytesPer32: Int { 34 }
    @inline(__always) @usableFromInline
    static func decode(_ p: UnsafeRawPointer) -> (SIMD16<Float>, SIMD16<Float>) {
        let d = loadHalf(p, 0)
        let q0 = p.loadUnaligned(fromByteOffset: 2, as: SIMD16<Int8>.self)
        let q1 = p.loadUnaligned(fromByteOffset: 18, as: SIMD16<Int8>.self)
        return (SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: q0)) * d,
                SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: q1)) * d)
    }
}

/// F32: 32 plain floats.
@usableFromInline
enum F32Decoder: Block32Decoder {
    @usableFromInline static var bytesPer32: Int { 128 }
    @inline(__always) @usableFromInline
    static func decode(_ p: UnsafeRawPointer) -> (SIMD16<Float>, SIMD16<Float>) {
        (p.loadUnaligned(as: SIMD16<Float>.self), p.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self))
    }
}

/// F16: 32 IEEE half floats.
@usableFromInline
enum F16Decoder: Block32Decoder {
    @usableFromInline static var bytesPer32: Int { 64 }
    @inline(__always) @usableFromInline
    static func decode(_ p: UnsafeRawPointer) -> (SIMD16<Float>, SIMD16<Float>) {
        let a = p.loadUnaligned(as: SIMD16<UInt16>.self)
        let b = p.loadUnaligned(fromByteOffset: 32, as: SIMD16<UInt16>.self)
        return (SIMD16<Float>(unsafeBitCast(a, to: SIMD16<Float16>.self)),
                SIMD16<Float>(unsafeBitCast(b, to: SIMD16<Float16>.self)))
    }
}

/// BF16: 32 bfloat16 values (the high half of a float32).
@usableFromInline
enum BF16Decoder: Block32Decoder {
    @usableFromInline static var bytesPer32: Int { 64 }
    @inline(__always) @usableFromInline
    static func decode(_ p: UnsafeRawPointer) -> (SIMD16<Float>, SIMD16<Float>) {
        let a = SIMD16<UInt32>(truncatingIfNeeded: p.loadUnaligned(as: SIMD16<UInt16>.self)) &<< 16
        let b = SIMD16<UInt32>(truncatingIfNeeded: p.loadUnaligned(fromByteOffset: 32, as: SIMD16<UInt16>.self)) &<< 16
        return (unsafeBitCast(a, to: SIMD16<Float>.self), unsafeBitCast(b, to: SIMD16<Float>.self))
    }
}
