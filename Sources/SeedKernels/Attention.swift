import SeedTensor

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Shapes of one grouped-query attention layer.
public struct AttentionShape: Sendable, Equatable {
    /// Query heads.
    public var heads: Int
    /// Key/value heads; query head `h` reads key/value head `h / (heads / kvHeads)`.
    public var kvHeads: Int
    /// Width of one head.
    public var headDim: Int
    /// Factor applied to `q · k` (usually `1 / sqrt(headDim)`).
    public var scale: Float

    public init(heads: Int, kvHeads: Int, headDim: Int, scale: Float? = nil) {
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.scale = scale ?? 1 / Float(headDim).squareRoot()
    }
}

/// Per-thread scratch for attention scores.
public final class AttentionScratch: @unchecked Sendable {
    // @unchecked Sendable: each pool thread touches only its own row.
    let scores: UnsafeMutablePointer<Float>
    /// Score floats per thread.
    public let capacity: Int
    /// Number of per-thread rows.
    public let threads: Int

    /// Scratch for `threads` threads and up to `capacity` attended positions.
    public init(threads: Int, capacity: Int) {
        self.threads = threads
        self.capacity = capacity
        scores = .allocate(capacity: threads * capacity)
    }

    deinit { scores.deallocate() }
}

/// Causal grouped-query attention of `tokens` new queries against a key/value cache.
///
/// Token `t` sits at position `start + t` and attends to cache positions `0 ... start + t`, which must already hold
/// its own key and value.
///
/// - Parameters:
///   - q: queries `[tokens, heads, headDim]`, token rows `qStride` floats apart.
///   - keys: key cache `[positions, kvHeads, headDim]`, position rows `kvStride` floats apart.
///   - values: value cache, same layout as `keys`.
///   - out: output `[tokens, heads, headDim]`, token rows `outStride` floats apart.
public func causalAttention(
    q: UnsafePointer<Float>, qStride: Int, keys: UnsafePointer<Float>, values: UnsafePointer<Float>, kvStride: Int,
    tokens: Int, start: Int, shape: AttentionShape, out: UnsafeMutablePointer<Float>, outStride: Int,
    scratch: AttentionScratch, pool: WorkerPool
) {
    let group = shape.heads / shape.kvHeads
    let hd = shape.headDim
    precondition(start + tokens <= scratch.capacity && pool.threadCount <= scratch.threads)
    pool.parallelFor(tokens * shape.heads) { task, thread in
        let t = task / shape.heads
        let h = task % shape.heads
        let kvh = h / group
        let qv = q + t * qStride + h * hd
        let o = out + t * outStride + h * hd
        attendOneHead(
            query: qv, keys: keys + kvh * hd, values: values + kvh * hd, kvStride: kvStride, count: start + t + 1,
            headDim: hd, scale: shape.scale, scores: scratch.scores + thread * scratch.capacity, out: o)
    }
}

/// Softmax attention of one query head over `count` consecutive key/value rows (`kvStride` floats apart):
/// `out = Σ_j softmax(q·k_j · scale) v_j`. `scores` is scratch for `count` floats.
///
/// Three passes: the scores (one dot product per row), their exponentials (16 at a time, ``exp16(_:)``), then the
/// weighted sum of the value rows, accumulated in registers 64 (or 16) dimensions at a time so that `out` is
/// written once instead of once per row.
@inline(__always)
func attendOneHead(
    query: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>, kvStride: Int,
    count n: Int, headDim hd: Int, scale: Float, scores s: UnsafeMutablePointer<Float>,
    out o: UnsafeMutablePointer<Float>
) {
    var maxScore = -Float.infinity
    for j in 0..<n {
        let score = dot(query, keys + j * kvStride, hd) * scale
        s[j] = score
        maxScore = max(maxScore, score)
    }
    let inverse = 1 / exponentiateInPlace(s, count: n, shift: maxScore)
    let vr = UnsafeRawPointer(values)
    let or = UnsafeMutableRawPointer(o)
    let rowBytes = kvStride * 4
    var c = 0
    while c + 64 <= hd {
        var a0 = SIMD16<Float>()
        var a1 = SIMD16<Float>()
        var a2 = SIMD16<Float>()
        var a3 = SIMD16<Float>()
        var at = c * 4
        for j in 0..<n {
            let w = SIMD16<Float>(repeating: s[j])
            a0 = a0.addingProduct(w, vr.loadUnaligned(fromByteOffset: at, as: SIMD16<Float>.self))
            a1 = a1.addingProduct(w, vr.loadUnaligned(fromByteOffset: at + 64, as: SIMD16<Float>.self))
            a2 = a2.addingProduct(w, vr.loadUnaligned(fromByteOffset: at + 128, as: SIMD16<Float>.self))
            a3 = a3.addingProduct(w, vr.loadUnaligned(fromByteOffset: at + 192, as: SIMD16<Float>.self))
            at += rowBytes
        }
        or.storeBytes(of: a0 * inverse, toByteOffset: c * 4, as: SIMD16<Float>.self)
        or.storeBytes(of: a1 * inverse, toByteOffset: c * 4 + 64, as: SIMD16<Float>.self)
        or.storeBytes(of: a2 * inverse, toByteOffset: c * 4 + 128, as: SIMD16<Float>.self)
        or.storeBytes(of: a3 * inverse, toByteOffset: c * 4 + 192, as: SIMD16<Float>.self)
        c += 64
    }
    while c + 16 <= hd {
        var a = SIMD16<Float>()
        for j in 0..<n {
            a = a.addingProduct(
                SIMD16<Float>(repeating: s[j]),
                vr.loadUnaligned(fromByteOffset: j * rowBytes + c * 4, as: SIMD16<Float>.self))
        }
        or.storeBytes(of: a * inverse, toByteOffset: c * 4, as: SIMD16<Float>.self)
        c += 16
    }
    while c < hd {
        var a: Float = 0
        for j in 0..<n { a += s[j] * values[j * kvStride + c] }
        o[c] = a * inverse
        c += 1
    }
}

/// `Σ a[i] b[i]` over `n` floats; four independent accumulators while 64 elements remain.
@inline(__always)
func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var a0 = SIMD16<Float>()
    var a1 = SIMD16<Float>()
    var a2 = SIMD16<Float>()
    var a3 = SIMD16<Float>()
    var i = 0
    let ar = UnsafeRawPointer(a)
    let br = UnsafeRawPointer(b)
    while i + 64 <= n {
        let o = i * 4
        a0 = a0.addingProduct(
            ar.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self),
            br.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self))
        a1 = a1.addingProduct(
            ar.loadUnaligned(fromByteOffset: o + 64, as: SIMD16<Float>.self),
            br.loadUnaligned(fromByteOffset: o + 64, as: SIMD16<Float>.self))
        a2 = a2.addingProduct(
            ar.loadUnaligned(fromByteOffset: o + 128, as: SIMD16<Float>.self),
            br.loadUnaligned(fromByteOffset: o + 128, as: SIMD16<Float>.self))
        a3 = a3.addingProduct(
            ar.loadUnaligned(fromByteOffset: o + 192, as: SIMD16<Float>.self),
            br.loadUnaligned(fromByteOffset: o + 192, as: SIMD16<Float>.self))
        i += 64
    }
    while i + 16 <= n {
        a0 = a0.addingProduct(
            ar.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self),
            br.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self))
        i += 16
    }
    var sum = horizontalSum((a0 + a1) + (a2 + a3))
    while i < n {
        sum += a[i] * b[i]
        i += 1
    }
    return sum
}
