import CBLAS
import SeedTensor

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Bidirectional (encoder) multi-head attention over a batch of sequences packed one after another.
///
/// Sequence `s` occupies token rows `sequences[s]` of `q`, `keys`, `values` and `out`; each of its tokens attends to
/// every token of the same sequence and to nothing else, which is exactly an attention mask that hides padding (no
/// padding is stored or computed). Key/value heads are shared by groups of query heads as in ``AttentionShape``.
///
/// Each (sequence, head) pair is one task on the pool: the scores `scale · Q Kᵀ` (`[len, len]`) and the output
/// `softmax(scores) · V` are two OpenBLAS sgemm calls, with a vectorised softmax between them.
///
/// - Parameters:
///   - q: queries `[tokens, heads, headDim]`, token rows `qStride` floats apart.
///   - keys: keys `[tokens, kvHeads, headDim]`, token rows `kvStride` floats apart.
///   - values: values, same layout as `keys`.
///   - sequences: ascending, non-overlapping token ranges, one per sequence; tokens outside every range are left
///     untouched in `out`.
///   - out: output `[tokens, heads, headDim]`, token rows `outStride` floats apart.
///   - scratch: a row per pool thread, each with `capacity` at least the square of the longest sequence.
public func bidirectionalAttention(
    q: UnsafePointer<Float>, qStride: Int, keys: UnsafePointer<Float>, values: UnsafePointer<Float>, kvStride: Int,
    sequences: [Range<Int>], shape: AttentionShape, out: UnsafeMutablePointer<Float>, outStride: Int,
    scratch: AttentionScratch, pool: WorkerPool
) {
    guard !sequences.isEmpty, shape.heads > 0, shape.kvHeads > 0 else { return }
    let group = shape.heads / shape.kvHeads
    let hd = shape.headDim
    precondition(
        sequences.allSatisfy { $0.count * $0.count <= scratch.capacity } && pool.threadCount <= scratch.threads)
    pool.parallelFor(sequences.count * shape.heads) { task, thread in
        let range = sequences[task / shape.heads]
        let h = task % shape.heads
        let n = range.count
        guard n > 0 else { return }
        let kvh = h / group
        let qh = q + range.lowerBound * qStride + h * hd
        let kh = keys + range.lowerBound * kvStride + kvh * hd
        let vh = values + range.lowerBound * kvStride + kvh * hd
        let oh = out + range.lowerBound * outStride + h * hd
        if n == 1 {
            // One token attends only to itself with weight 1.
            oh.update(from: vh, count: hd)
            return
        }
        let scores = scratch.scores + thread * scratch.capacity
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(n), Int32(hd), shape.scale, qh, Int32(qStride),
            kh, Int32(kvStride), 0, scores, Int32(n))
        for row in 0..<n { softmaxInPlace(scores + row * n, count: n) }
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(hd), Int32(n), 1, scores, Int32(n), vh,
            Int32(kvStride), 0, oh, Int32(outStride))
    }
}
