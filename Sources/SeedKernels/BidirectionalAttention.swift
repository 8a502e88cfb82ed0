import SeedTensor

/// Bidirectional (encoder) multi-head attention over a batch of sequences packed one after another.
///
/// Sequence `s` occupies token rows `sequences[s]` of `q`, `keys`, `values` and `out`; each of its tokens attends to
/// every token of the same sequence and to nothing else, which is exactly an attention mask that hides padding (no
/// padding is stored at all). Key/value heads are shared by groups of query heads as in ``AttentionShape``.
///
/// - Parameters:
///   - q: queries `[tokens, heads, headDim]`, token rows `qStride` floats apart.
///   - keys: keys `[tokens, kvHeads, headDim]`, token rows `kvStride` floats apart.
///   - values: values, same layout as `keys`.
///   - sequences: ascending, non-overlapping token ranges, one per sequence; tokens outside every range are left
///     untouched in `out`.
///   - out: output `[tokens, heads, headDim]`, token rows `outStride` floats apart.
///   - scratch: needs `capacity` at least the longest sequence and a row per pool thread.
public func bidirectionalAttention(
    q: UnsafePointer<Float>, qStride: Int, keys: UnsafePointer<Float>, values: UnsafePointer<Float>, kvStride: Int,
    sequences: [Range<Int>], shape: AttentionShape, out: UnsafeMutablePointer<Float>, outStride: Int,
    scratch: AttentionScratch, pool: WorkerPool
) {
    guard let last = sequences.last, shape.heads > 0, shape.kvHeads > 0 else { return }
    let group = shape.heads / shape.kvHeads
    let hd = shape.headDim
    precondition(sequences.allSatisfy { $0.count <= scratch.capacity } && pool.threadCount <= scratch.threads)
    let tokens = last.upperBound
    pool.parallelFor(tokens * shape.heads) { task, thread in
        let t = task / shape.heads
        let h = task % shape.heads
        // Binary search for the sequence holding token t.
        var lo = 0
        var hi = sequences.count - 1
        while lo < hi {
            let mid = (lo + hi) / 2
            if sequences[mid].upperBound <= t { lo = mid + 1 } else { hi = mid }
        }
        let range = sequences[lo]
        guard range.contains(t) else { return }
        let kvh = h / group
        let qv = q + t * qStride + h * hd
        let o = out + t * outStride + h * hd
        attendOneHead(
            query: qv, keys: keys + range.lowerBound * kvStride + kvh * hd,
            values: values + range.lowerBound * kvStride + kvh * hd, kvStride: kvStride, count: range.count,
            headDim: hd, scale: shape.scale, scores: scratch.scores + thread * scratch.capacity, out: o)
    }
}
