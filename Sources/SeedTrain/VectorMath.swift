/// Small SIMD helpers shared by the ops (16 lanes; each generic helper specialises for `Float` and `Double`).

/// `Σ a[i] * b[i]` over `n` elements.
@inline(__always)
func dotProduct<S: TrainScalar>(_ a: UnsafePointer<S>, _ b: UnsafePointer<S>, _ n: Int) -> S {
    let ar = UnsafeRawPointer(a)
    let br = UnsafeRawPointer(b)
    let stride = MemoryLayout<S>.stride
    var acc0 = SIMD16<S>()
    var acc1 = SIMD16<S>()
    var i = 0
    while i + 32 <= n {
        acc0 = acc0.addingProduct(
            ar.loadUnaligned(fromByteOffset: i * stride, as: SIMD16<S>.self),
            br.loadUnaligned(fromByteOffset: i * stride, as: SIMD16<S>.self))
        acc1 = acc1.addingProduct(
            ar.loadUnaligned(fromByteOffset: (i + 16) * stride, as: SIMD16<S>.self),
            br.loadUnaligned(fromByteOffset: (i + 16) * stride, as: SIMD16<S>.self))
        i += 32
    }
    while i + 16 <= n {
        acc0 = acc0.addingProduct(
            ar.loadUnaligned(fromByteOffset: i * stride, as: SIMD16<S>.self),
            br.loadUnaligned(fromByteOffset: i * stride, as: SIMD16<S>.self))
        i += 16
    }
    var sum = (acc0 + acc1).sum()
    while i < n {
        sum += a[i] * b[i]
        i += 1
    }
    return sum
}

/// `Σ a[i]` over `n` elements.
@inline(__always)
func elementSum<S: TrainScalar>(_ a: UnsafePointer<S>, _ n: Int) -> S {
    let ar = UnsafeRawPointer(a)
    let stride = MemoryLayout<S>.stride
    var acc = SIMD16<S>()
    var i = 0
    while i + 16 <= n {
        acc += ar.loadUnaligned(fromByteOffset: i * stride, as: SIMD16<S>.self)
        i += 16
    }
    var sum = acc.sum()
    while i < n {
        sum += a[i]
        i += 1
    }
    return sum
}

/// The largest of `n >= 1` elements.
@inline(__always)
func elementMax<S: TrainScalar>(_ a: UnsafePointer<S>, _ n: Int) -> S {
    let ar = UnsafeRawPointer(a)
    let stride = MemoryLayout<S>.stride
    var i = 0
    var result = -S.infinity
    if n >= 16 {
        var acc = SIMD16<S>(repeating: -S.infinity)
        while i + 16 <= n {
            acc = pointwiseMax(acc, ar.loadUnaligned(fromByteOffset: i * stride, as: SIMD16<S>.self))
            i += 16
        }
        result = acc.max()
    }
    while i < n {
        result = Swift.max(result, a[i])
        i += 1
    }
    return result
}
