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
    var sum: Float = 0
    for j in 0..<n {
        let e = expf(s[j] - maxScore)
        s[j] = e
        sum += e
    }
    o.update(repeating: 0, count: hd)
    for j in 0..<n {
        axpy(s[j], values + j * kvStride, o, hd)
    }
    let inv = 1 / sum
    for i in 0..<hd { o[i] *= inv }
}

@inline(__always)
func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD16<Float>()
    var i = 0
    let ar = UnsafeRawPointer(a)
    let br = UnsafeRawPointer(b)
    while i + 16 <= n {
        acc = acc.addingProduct(
            ar.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self),
            br.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self))
        i += 16
    }
    var sum = acc.sum()
    while i < n {
        sum += a[i] * b[i]
        i += 1
    }
    return sum
}

@inline(__always)
func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    var i = 0
    let xr = UnsafeRawPointer(x)
    let yr = UnsafeMutableRawPointer(y)
    let a = SIMD16<Float>(repeating: alpha)
    while i + 16 <= n {
        let v = yr.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            .addingProduct(a, xr.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self))
        yr.storeBytes(of: v, toByteOffset: i * 4, as: SIMD16<Float>.self)
        i += 16
    }
    while i < n {
        y[i] += alpha * x[i]
        i += 1
    }
}
