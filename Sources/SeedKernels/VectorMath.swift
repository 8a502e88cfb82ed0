#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The sum of the 16 lanes, added pairwise by halving (four shuffle-and-add steps). The standard library's `sum()`
/// adds the lanes one after another (16 dependent scalar additions, about 50 cycles), which dominated the attention
/// scores and every per-row reduction.
@inline(__always)
@usableFromInline
func horizontalSum(_ v: SIMD16<Float>) -> Float {
    let eight = v.lowHalf + v.highHalf
    let four = eight.lowHalf + eight.highHalf
    let two = four.lowHalf + four.highHalf
    return two[0] + two[1]
}

/// `e^x` on 16 lanes without calling libm: `x = n·ln 2 + r` with `|r| ≤ ln 2 / 2`, a degree-7 Taylor polynomial for
/// `e^r` (truncation error below 1e-8 relative), and `2^n` built in the exponent bits. Relative error about 2e-7
/// (a few ulp) for `x` in [-87.3, 88]; smaller inputs give at least `e^-87.3` (about 1.2e-38), larger ones `e^88`.
@inline(__always)
@usableFromInline
func exp16(_ x: SIMD16<Float>) -> SIMD16<Float> {
    let low = SIMD16<Float>(repeating: -87.3)
    let high = SIMD16<Float>(repeating: 88)
    var v = x.replacing(with: low, where: x .< low)
    v = v.replacing(with: high, where: v .> high)
    // Round v·log2(e) to the nearest integer n: adding 1.5·2^23 leaves n in the low mantissa bits.
    let magic = SIMD16<Float>(repeating: 12_582_912)
    let shifted = magic.addingProduct(v, SIMD16(repeating: 1.442_695_04))
    let n = shifted - magic
    // r = v - n·ln 2, with ln 2 split in two so that n·ln2High is exact.
    var r = v.addingProduct(n, SIMD16(repeating: -0.693_359_375))
    r = r.addingProduct(n, SIMD16(repeating: 2.121_944_4e-4))
    var p = SIMD16<Float>(repeating: 1 / 5040)
    p = SIMD16(repeating: 1 / 720).addingProduct(p, r)
    p = SIMD16(repeating: 1 / 120).addingProduct(p, r)
    p = SIMD16(repeating: 1 / 24).addingProduct(p, r)
    p = SIMD16(repeating: 1 / 6).addingProduct(p, r)
    p = SIMD16(repeating: 0.5).addingProduct(p, r)
    p = SIMD16(repeating: 1).addingProduct(p, r)
    p = SIMD16(repeating: 1).addingProduct(p, r)
    // 2^n: the bits of `shifted` are 0x4B40_0000 + n; move n + 127 into the exponent field.
    let bits = unsafeBitCast(shifted, to: SIMD16<UInt32>.self) &- 0x4B40_0000 &+ 127
    return p * unsafeBitCast(bits &<< 23, to: SIMD16<Float>.self)
}

/// Replaces `x[0 ..< count]` by `e^(x[i] - shift)` and returns their sum.
@inline(__always)
@usableFromInline
func exponentiateInPlace(_ x: UnsafeMutablePointer<Float>, count: Int, shift: Float) -> Float {
    let raw = UnsafeMutableRawPointer(x)
    let s = SIMD16<Float>(repeating: shift)
    var sums = SIMD16<Float>()
    var i = 0
    while i + 16 <= count {
        let e = exp16(raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) - s)
        raw.storeBytes(of: e, toByteOffset: i * 4, as: SIMD16<Float>.self)
        sums += e
        i += 16
    }
    var sum = horizontalSum(sums)
    while i < count {
        let e = expf(x[i] - shift)
        x[i] = e
        sum += e
        i += 1
    }
    return sum
}
