import SeedTensor

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where one query row of a batch sits in a paged key/value cache.
///
/// The cache of one layer is `[blocks, blockSize, kvHeads * headDim]`; a sequence owns a table of block indices,
/// and its position `p` lives in block `blockTable[p / blockSize]` at offset `p % blockSize`.
public struct PagedAttentionRow {
    /// The query's own position; it attends to positions `0 ... position` of its sequence.
    public var position: Int32
    /// The sequence's block table (valid for the duration of the call).
    public var blockTable: UnsafePointer<Int32>

    public init(position: Int32, blockTable: UnsafePointer<Int32>) {
        self.position = position
        self.blockTable = blockTable
    }
}

/// Causal grouped-query attention for a batch of query rows from any number of sequences, reading keys and values
/// from a paged cache. Each row's own key/value must already be in the cache.
///
/// - Parameters:
///   - q: queries `[rows, heads, headDim]`, row `qStride` floats apart.
///   - rows: `[rows]` position and block table of each query row.
///   - keys: one layer's key blocks `[blocks, blockSize, kvHeads * headDim]`.
///   - values: one layer's value blocks, same layout.
///   - out: `[rows, heads, headDim]`, rows `outStride` floats apart.
///   - scratch: scores for the longest attended span, per pool thread.
public func pagedCausalAttention(
    q: UnsafePointer<Float>, qStride: Int, rows: UnsafePointer<PagedAttentionRow>, rowCount: Int,
    keys: UnsafePointer<Float>, values: UnsafePointer<Float>, blockSize: Int, shape: AttentionShape,
    out: UnsafeMutablePointer<Float>, outStride: Int, scratch: AttentionScratch, pool: WorkerPool
) {
    let group = shape.heads / shape.kvHeads
    let hd = shape.headDim
    let kvDim = shape.kvHeads * hd
    precondition(pool.threadCount <= scratch.threads)
    pool.parallelFor(rowCount * shape.heads) { task, thread in
        let r = task / shape.heads
        let h = task % shape.heads
        let row = rows[r]
        let count = Int(row.position) + 1
        precondition(count <= scratch.capacity, "attention span exceeds scratch capacity")
        let kvOffset = (h / group) * hd
        let query = q + r * qStride + h * hd
        let o = out + r * outStride + h * hd
        let s = scratch.scores + thread * scratch.capacity
        // Scores, block by block.
        var maxScore = -Float.infinity
        var j = 0
        var b = 0
        while j < count {
            let block = Int(row.blockTable[b])
            let base = block * blockSize * kvDim + kvOffset
            let n = min(blockSize, count - j)
            for i in 0..<n {
                let score = dot(query, keys + base + i * kvDim, hd) * shape.scale
                s[j + i] = score
                maxScore = max(maxScore, score)
            }
            j += n
            b += 1
        }
        var sum: Float = 0
        for i in 0..<count {
            let e = expf(s[i] - maxScore)
            s[i] = e
            sum += e
        }
        o.update(repeating: 0, count: hd)
        j = 0
        b = 0
        while j < count {
            let block = Int(row.blockTable[b])
            let base = block * blockSize * kvDim + kvOffset
            let n = min(blockSize, count - j)
            for i in 0..<n {
                axpy(s[j + i], values + base + i * kvDim, o, hd)
            }
            j += n
            b += 1
        }
        let inv = 1 / sum
        for i in 0..<hd { o[i] *= inv }
    }
}
