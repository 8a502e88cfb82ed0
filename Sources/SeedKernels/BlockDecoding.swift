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

/// Widens 16 bytes to floats. Spelled lane by lane because the standard library's generic SIMD conversions are
/// not inlined into kernels (they showed up as out-of-line calls costing ~20% of decode time); LLVM turns this
/// into `vpmovzxbd` + `vcvtdq2ps`.
@inline(__always)
@usableFromInline
func widen(_ q: SIMD16<UInt8>) -> SIMD16<Float> {
    SIMD16<Float>(
        Float(q[0]), Float(q[1]), Float(q[2]), Float(q[3]), Float(q[4]), Float(q[5]), Float(q[6]), Float(q[7]),
        Float(q[8]), Float(q[9]), Float(q[10]), Float(q[11]), Float(q[12]), Float(q[13]), Float(q[14]), Float(q[15]))
}

/// Widens 16 signed bytes to floats (see ``widen(_:)-(SIMD16<UInt8>)``).
@inline(__always)
@usableFromInline
func widen(_ q: SIMD16<Int8>) -> SIMD16<Float> {
    SIMD16<Float>(
        Float(q[0]), Float(q[1]), Float(q[2]), Float(q[3]), Float(q[4]), Float(q[5]), Float(q[6]), Float(q[7]),
        Float(q[8]), Float(q[9]), Float(q[10]), Float(q[11]), Float(q[12]), Float(q[13]), Float(q[14]), Float(q[15]))
}

/// Q4_0: `{ f16 d; u8 qs[16] }`; element j is `d * ((qs[j] & 15) - 8)`, element j + 16 is `d * ((qs[j] >> 4) - 8)`.
@usableFromInline
enum Q4_0Decoder: Block32Decoder {
    @usableFromInline static var bytesPer32: Int { 18 }
    @inline(__always) @usableFromInline
    static func decode(_ p: UnsafeRawPointer) -> (SIMD16<Float>, SIMD16<Float>) {
        let d = loadHalf(p, 0)
        let q = p.loadUnaligned(fromByteOffset: 2, as: SIMD16<UInt8>.self)
        let eight = SIMD16<Float>(repeating: 8)
        return ((widen(q & 0x0F) - eight) * d, (widen(q &>> 4) - eight) * d)
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
        return (m.addingProduct(widen(q & 0x0F), d), m.addingProduct(widen(q &>> 4), d))
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
        return (widen(q0) * d, widen(q1) * d)
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
        return (
            SIMD16<Float>(unsafeBitCast(a, to: SIMD16<Float16>.self)),
            SIMD16<Float>(unsafeBitCast(b, to: SIMD16<Float16>.self))
        )
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
