#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

// Sixteen-lane helpers for kernels: `exp` and the complementary error function (fused multiply-adds and integer bit
// tricks only, so they stay in AVX-512 registers instead of calling libm once per lane), reductions and blends.

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

/// `e^x` lane by lane, within about 2 ulp for `x` in `-87.3 ... 88.3`; smaller inputs give the smallest normal
/// float (about 1.2e-38) rather than 0, larger ones `e^88.3`.
///
/// `e^x = 2^n · e^r` with `n = round(x / ln 2)` and `|r| ≤ ln 2 / 2`; `e^r` is its Taylor polynomial of degree 7
/// (truncation error below 6e-9 relative), and `2^n` is built directly in the exponent bits.
@inline(__always)
@usableFromInline
func exp16(_ x: SIMD16<Float>) -> SIMD16<Float> {
    let v = clamp16(x, -87.336_5, 88.376_2)
    // Adding 1.5 · 2^23 rounds v / ln 2 to the nearest integer n and leaves n in the low mantissa bits.
    let shifter = SIMD16<Float>(repeating: 12_582_912)
    let shifted = shifter.addingProduct(v, SIMD16(repeating: 1.442_695_04))
    let n = shifted - shifter
    // r = v - n · ln 2, with ln 2 split in two so that n · ln2High is exact.
    var r = v.addingProduct(n, SIMD16(repeating: -0.693_145_752))
    r = r.addingProduct(n, SIMD16(repeating: -1.428_606_77e-6))
    var p = SIMD16<Float>(repeating: 1.0 / 5040)
    p = SIMD16(repeating: 1.0 / 720).addingProduct(p, r)
    p = SIMD16(repeating: 1.0 / 120).addingProduct(p, r)
    p = SIMD16(repeating: 1.0 / 24).addingProduct(p, r)
    p = SIMD16(repeating: 1.0 / 6).addingProduct(p, r)
    p = SIMD16(repeating: 0.5).addingProduct(p, r)
    p = SIMD16(repeating: 1).addingProduct(p, r)
    p = SIMD16(repeating: 1).addingProduct(p, r)
    // The bits of `shifted` are 0x4B400000 + n; 2^n has exponent field n + 127.
    let bits = unsafeBitCast(shifted, to: SIMD16<UInt32>.self)
    let scale = unsafeBitCast((bits &- 0x4B3F_FF81) &<< 23, to: SIMD16<Float>.self)
    return p * scale
}

/// `1 + erf(x)` lane by lane, from the complementary error function `erfc(|x|)` with relative error below 1.2e-7
/// everywhere (the Chebyshev fit `erfc(z) ≈ t · exp(-z² + P(t))`, `t = 1 / (1 + z/2)`, of Press et al.,
/// *Numerical Recipes*, §6.2), plus ``exp16(_:)``'s error.
///
/// For `x < 0` the value is `erfc(|x|)` itself, so it keeps its relative accuracy where `1 + erf(x)` is tiny; for
/// `x ≥ 0` it is `2 - erfc(x)`.
@inline(__always)
@usableFromInline
func onePlusErf16(_ x: SIMD16<Float>) -> SIMD16<Float> {
    // |x| by clearing the sign bits.
    let z = unsafeBitCast(unsafeBitCast(x, to: SIMD16<UInt32>.self) & 0x7FFF_FFFF, to: SIMD16<Float>.self)
    let t = 1 / SIMD16<Float>(repeating: 1).addingProduct(z, SIMD16(repeating: 0.5))
    var p = SIMD16<Float>(repeating: 0.170_872_77)
    p = SIMD16(repeating: -0.822_152_23).addingProduct(p, t)
    p = SIMD16(repeating: 1.488_515_87).addingProduct(p, t)
    p = SIMD16(repeating: -1.135_203_98).addingProduct(p, t)
    p = SIMD16(repeating: 0.278_868_07).addingProduct(p, t)
    p = SIMD16(repeating: -0.186_288_06).addingProduct(p, t)
    p = SIMD16(repeating: 0.096_784_18).addingProduct(p, t)
    p = SIMD16(repeating: 0.374_091_96).addingProduct(p, t)
    p = SIMD16(repeating: 1.000_023_68).addingProduct(p, t)
    p = SIMD16(repeating: -1.265_512_23).addingProduct(p, t)
    let erfcAbs = t * exp16(p - z * z)
    return (SIMD16(repeating: 2) - erfcAbs).replacing(with: erfcAbs, where: x .< 0)
}

/// The lane-wise maximum. Spelled as a compare and blend: the standard library's `pointwiseMax`, `clamped` and
/// `max()` handle NaN lane by lane and do not vectorise (they showed up as scalar loops in the GELU and softmax
/// kernels). A NaN in `b` is not propagated.
@inline(__always)
@usableFromInline
func max16(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> {
    a.replacing(with: b, where: b .> a)
}

/// `x` limited to `low ... high` lane by lane (see ``max16(_:_:)``); NaN lanes stay NaN.
@inline(__always)
@usableFromInline
func clamp16(_ x: SIMD16<Float>, _ low: Float, _ high: Float) -> SIMD16<Float> {
    let l = SIMD16<Float>(repeating: low)
    let h = SIMD16<Float>(repeating: high)
    return x.replacing(with: l, where: x .< l).replacing(with: h, where: x .> h)
}

/// The largest lane (NaN lanes are skipped unless every lane is NaN).
@inline(__always)
@usableFromInline
func horizontalMax(_ v: SIMD16<Float>) -> Float {
    let a = max16(v.lowHalf, v.highHalf)
    let b = a.lowHalf.replacing(with: a.highHalf, where: a.highHalf .> a.lowHalf)
    let c = b.lowHalf.replacing(with: b.highHalf, where: b.highHalf .> b.lowHalf)
    return c[0] > c[1] || c[1].isNaN ? c[0] : c[1]
}

@inline(__always)
private func max16(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
    a.replacing(with: b, where: b .> a)
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
