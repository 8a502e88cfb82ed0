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
        // The same arithmetic, in the same order, as `attendOneHead` (contiguous cache): a sequence gives the same
        // result whether its cache is paged or not.
        let inverse = 1 / exponentiateInPlace(s, count: count, shift: maxScore)
        let blocksUsed = b
        var c = 0
        while c + 64 <= hd {
            var a0 = SIMD16<Float>()
            var a1 = SIMD16<Float>()
            var a2 = SIMD16<Float>()
            var a3 = SIMD16<Float>()
            var j = 0
            for block in 0..<blocksUsed {
                let base = UnsafeRawPointer(values + Int(row.blockTable[block]) * blockSize * kvDim + kvOffset + c)
                let n = min(blockSize, count - j)
                for i in 0..<n {
                    let w = SIMD16<Float>(repeating: s[j + i])
                    let at = i * kvDim * 4
                    a0 = a0.addingProduct(w, base.loadUnaligned(fromByteOffset: at, as: SIMD16<Float>.self))
                    a1 = a1.addingProduct(w, base.loadUnaligned(fromByteOffset: at + 64, as: SIMD16<Float>.self))
                    a2 = a2.addingProduct(w, base.loadUnaligned(fromByteOffset: at + 128, as: SIMD16<Float>.self))
                    a3 = a3.addingProduct(w, base.loadUnaligned(fromByteOffset: at + 192, as: SIMD16<Float>.self))
                }
                j += n
            }
            let or = UnsafeMutableRawPointer(o + c)
            or.storeBytes(of: a0 * inverse, toByteOffset: 0, as: SIMD16<Float>.self)
            or.storeBytes(of: a1 * inverse, toByteOffset: 64, as: SIMD16<Float>.self)
            or.storeBytes(of: a2 * inverse, toByteOffset: 128, as: SIMD16<Float>.self)
            or.storeBytes(of: a3 * inverse, toByteOffset: 192, as: SIMD16<Float>.self)
            c += 64
        }
        while c + 16 <= hd {
            var a = SIMD16<Float>()
            var j = 0
            for block in 0..<blocksUsed {
                let base = UnsafeRawPointer(values + Int(row.blockTable[block]) * blockSize * kvDim + kvOffset + c)
                let n = min(blockSize, count - j)
                for i in 0..<n {
                    a = a.addingProduct(
                        SIMD16<Float>(repeating: s[j + i]),
                        base.loadUnaligned(fromByteOffset: i * kvDim * 4, as: SIMD16<Float>.self))
                }
                j += n
            }
            UnsafeMutableRawPointer(o + c).storeBytes(of: a * inverse, toByteOffset: 0, as: SIMD16<Float>.self)
            c += 16
        }
        while c < hd {
            var a: Float = 0
            for j in 0..<count {
                let block = Int(row.blockTable[j / blockSize])
                a += s[j] * values[(block * blockSize + j % blockSize) * kvDim + kvOffset + c]
            }
            o[c] = a * inverse
            c += 1
        }
    }
}
