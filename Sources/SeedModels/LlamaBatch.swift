import SeedKernels
import SeedTensor

/// Key/value memory shared by many sequences, in fixed-size blocks (the paged KV cache's storage).
///
/// Layout per layer: `[blocks, blockSize, kvDim]` for keys and the same for values. Which block belongs to which
/// sequence is the engine's business (block tables); this type only owns the memory. Pages are committed by the
/// OS on first touch, so a large, mostly unused cache costs little resident memory.
public final class PagedKVCache: @unchecked Sendable {
    // @unchecked Sendable: the memory is written only inside a forward pass, and the engine runs one at a time.

    /// Positions per block.
    public let blockSize: Int
    /// Blocks in the cache.
    public let blockCount: Int
    /// Layers of the model the cache serves.
    public let layerCount: Int
    /// Floats per position per layer (`kvHeads * headDim`).
    public let kvDim: Int
    let keys: UnsafeMutablePointer<Float>
    let values: UnsafeMutablePointer<Float>

    /// Allocates `blockCount` blocks of `blockSize` positions for a model of this shape.
    public init(configuration: LlamaConfiguration, blockSize: Int, blockCount: Int) {
        self.blockSize = max(1, blockSize)
        self.blockCount = max(1, blockCount)
        layerCount = configuration.layerCount
        kvDim = configuration.kvDim
        let total = layerCount * self.blockCount * self.blockSize * kvDim
        keys = .allocate(capacity: total)
        values = .allocate(capacity: total)
    }

    deinit {
        keys.deallocate()
        values.deallocate()
    }

    /// Bytes of key/value memory per position (all layers).
    public var bytesPerPosition: Int { 2 * layerCount * kvDim * MemoryLayout<Float>.size }

    var layerStride: Int { blockCount * blockSize * kvDim }

    /// Copies the keys and values of `count` positions from block `source` to block `destination` (all layers).
    public func copyBlock(from source: Int, to destination: Int, count: Int) {
        let n = min(count, blockSize) * kvDim
        for layer in 0..<layerCount {
            let s = layer * layerStride + source * blockSize * kvDim
            let d = layer * layerStride + destination * blockSize * kvDim
            (keys + d).update(from: keys + s, count: n)
            (values + d).update(from: values + s, count: n)
        }
    }
}

/// One sequence's part of a batched forward pass: new tokens continuing a sequence whose earlier positions are
/// already in the paged cache.
public struct BatchSegment {
    /// The new tokens.
    public var tokens: ArraySlice<Int>
    /// Position of the first new token (the number of positions already cached for this sequence).
    public var startPosition: Int
    /// The sequence's block table; it must cover positions `0 ..< startPosition + tokens.count`.
    public var blockTable: UnsafePointer<Int32>
    /// Whether to return logits for the segment's last token.
    public var wantsLogits: Bool

    public init(tokens: ArraySlice<Int>, startPosition: Int, blockTable: UnsafePointer<Int32>, wantsLogits: Bool) {
        self.tokens = tokens
        self.startPosition = startPosition
        self.blockTable = blockTable
        self.wantsLogits = wantsLogits
    }
}

/// Runs batched forward passes of a ``LlamaModel`` over several sequences at once, against a ``PagedKVCache``.
///
/// All tokens of all segments go through each weight matrix in one product (one pass over the weights for the whole
/// batch); attention runs per token against its own sequence's blocks. Scratch memory is allocated once; a forward
/// pass allocates nothing. Not thread-safe: one forward pass at a time.
public final class LlamaBatchRunner {
    public let model: LlamaModel
    public let cache: PagedKVCache
    /// The most tokens (summed over segments) in one forward pass.
    public let maxTokens: Int
    /// The most segments that ask for logits in one forward pass.
    public let maxLogitRows: Int
    /// The longest sequence (positions) attention supports.
    public let maxPositions: Int

    private let hidden: UnsafeMutablePointer<Float>
    private let normed: UnsafeMutablePointer<Float>
    private let queries: UnsafeMutablePointer<Float>
    private let newKeys: UnsafeMutablePointer<Float>
    private let newValues: UnsafeMutablePointer<Float>
    private let attention: UnsafeMutablePointer<Float>
    private let projected: UnsafeMutablePointer<Float>
    private let gate: UnsafeMutablePointer<Float>
    private let up: UnsafeMutablePointer<Float>
    private let logitRows: UnsafeMutablePointer<Float>
    private let lastRows: UnsafeMutablePointer<Float>
    private let positions: UnsafeMutablePointer<Int32>
    private let rows: UnsafeMutablePointer<PagedAttentionRow>
    private var rotary: RotaryTable
    private let attentionScratch: AttentionScratch

    /// - Parameters:
    ///   - maxTokens: the most tokens per forward pass (decode tokens plus prefill chunks).
    ///   - maxLogitRows: the most segments asking for logits per pass.
    ///   - maxPositions: the longest sequence.
    public init(model: LlamaModel, cache: PagedKVCache, maxTokens: Int, maxLogitRows: Int, maxPositions: Int) {
        let c = model.configuration
        self.model = model
        self.cache = cache
        self.maxTokens = max(1, maxTokens)
        self.maxLogitRows = max(1, maxLogitRows)
        self.maxPositions = max(1, min(maxPositions, c.contextLength))
        let b = self.maxTokens
        hidden = .allocate(capacity: b * c.hiddenSize)
        normed = .allocate(capacity: b * c.hiddenSize)
        queries = .allocate(capacity: b * c.queryDim)
        newKeys = .allocate(capacity: b * c.kvDim)
        newValues = .allocate(capacity: b * c.kvDim)
        attention = .allocate(capacity: b * c.queryDim)
        projected = .allocate(capacity: b * c.hiddenSize)
        gate = .allocate(capacity: b * c.intermediateSize)
        up = .allocate(capacity: b * c.intermediateSize)
        logitRows = .allocate(capacity: self.maxLogitRows * c.vocabularySize)
        lastRows = .allocate(capacity: self.maxLogitRows * c.hiddenSize)
        positions = .allocate(capacity: b)
        rows = .allocate(capacity: b)
        rotary = RotaryTable(rotaryDim: c.headDim, base: c.ropeBase, capacity: b)
        attentionScratch = AttentionScratch(threads: model.pool.threadCount, capacity: self.maxPositions)
    }

    deinit {
        for p in [hidden, normed, queries, newKeys, newValues, attention, projected, gate, up, logitRows, lastRows] {
            p.deallocate()
        }
        positions.deallocate()
        rows.deallocate()
    }

    /// Runs one forward pass over `segments`, writing their keys and values into the cache.
    ///
    /// - Returns: logits `[k, vocab]`, one row per segment with `wantsLogits`, in segment order; a view of
    ///   runner-owned memory valid until the next call.
    public func forward(_ segments: [BatchSegment]) throws(ModelError) -> UnsafeBufferPointer<Float> {
        let c = model.configuration
        var total = 0
        var logitCount = 0
        for segment in segments {
            total += segment.tokens.count
            if segment.wantsLogits && !segment.tokens.isEmpty { logitCount += 1 }
            guard segment.startPosition >= 0, segment.startPosition + segment.tokens.count <= maxPositions else {
                throw .contextOverflow(needed: segment.startPosition + segment.tokens.count, capacity: maxPositions)
            }
            for id in segment.tokens where id < 0 || id >= c.vocabularySize {
                throw .tokenOutOfRange(id: id, vocabularySize: c.vocabularySize)
            }
        }
        guard total <= maxTokens else {
            throw .invalidInput("a batch of \(total) tokens exceeds the runner's \(maxTokens)")
        }
        guard logitCount <= maxLogitRows else {
            throw .invalidInput("\(logitCount) sequences ask for logits; the runner holds \(maxLogitRows)")
        }
        guard total > 0 else { return UnsafeBufferPointer(start: logitRows, count: 0) }

        let h = c.hiddenSize
        var t = 0
        for segment in segments {
            for (i, id) in segment.tokens.enumerated() {
                dequantizeRows(model.tokenEmbedding, from: id, count: 1, into: hidden + t * h)
                let position = segment.startPosition + i
                positions[t] = Int32(position)
                rows[t] = PagedAttentionRow(position: Int32(position), blockTable: segment.blockTable)
                t += 1
            }
        }
        runLayers(tokens: total)

        // Logits for the last token of each segment that asks for them.
        var row = 0
        t = 0
        var lastLogitSegmentLength = 0
        for segment in segments {
            if segment.wantsLogits && !segment.tokens.isEmpty { lastLogitSegmentLength = segment.tokens.count }
            t += segment.tokens.count
            if segment.wantsLogits && !segment.tokens.isEmpty {
                (lastRows + row * h).update(from: hidden + (t - 1) * h, count: h)
                row += 1
            }
        }
        if logitCount > 0 {
            model.outputNorm.withUnsafeBufferPointer { w in
                rmsNorm(lastRows, weight: w.baseAddress!, rows: logitCount, dim: h, eps: c.rmsNormEpsilon, into: normed)
            }
            // As in `LlamaSession`: logits that end a prompt chunk stay float32; only a lone generation step uses the
            // multiplier's single-token precision (int8 activations by default).
            let precision: ActivationPrecision? = logitCount == 1 && lastLogitSegmentLength > 1 ? .float32 : nil
            model.multiplier.multiply(
                model.outputHead, normed, tokens: logitCount, into: logitRows, activations: precision)
        }
        return UnsafeBufferPointer(start: logitRows, count: logitCount * c.vocabularySize)
    }

    private func runLayers(tokens n: Int) {
        let c = model.configuration
        let mm = model.multiplier
        let h = c.hiddenSize
        let kvDim = c.kvDim
        let blockSize = cache.blockSize
        rotary.fill(positions: positions, count: n)
        let shape = AttentionShape(heads: c.headCount, kvHeads: c.kvHeadCount, headDim: c.headDim)
        for (index, layer) in model.layers.enumerated() {
            let layerKeys = cache.keys + index * cache.layerStride
            let layerValues = cache.values + index * cache.layerStride

            layer.attentionNorm.withUnsafeBufferPointer { w in
                rmsNorm(hidden, weight: w.baseAddress!, rows: n, dim: h, eps: c.rmsNormEpsilon, into: normed)
            }
            mm.multiply(layer.query, normed, tokens: n, into: queries)
            mm.multiply(layer.key, normed, tokens: n, into: newKeys)
            mm.multiply(layer.value, normed, tokens: n, into: newValues)
            if c.ropeInterleaved {
                rotary.applyInterleaved(
                    queries, tokens: n, heads: c.headCount, headDim: c.headDim, rowStride: c.queryDim)
                rotary.applyInterleaved(newKeys, tokens: n, heads: c.kvHeadCount, headDim: c.headDim, rowStride: kvDim)
            } else {
                rotary.applyHalves(queries, tokens: n, heads: c.headCount, headDim: c.headDim, rowStride: c.queryDim)
                rotary.applyHalves(newKeys, tokens: n, heads: c.kvHeadCount, headDim: c.headDim, rowStride: kvDim)
            }
            for t in 0..<n {
                let p = Int(rows[t].position)
                let slot = (Int(rows[t].blockTable[p / blockSize]) * blockSize + p % blockSize) * kvDim
                (layerKeys + slot).update(from: newKeys + t * kvDim, count: kvDim)
                (layerValues + slot).update(from: newValues + t * kvDim, count: kvDim)
            }
            pagedCausalAttention(
                q: queries, qStride: c.queryDim, rows: rows, rowCount: n, keys: layerKeys, values: layerValues,
                blockSize: blockSize, shape: shape, out: attention, outStride: c.queryDim, scratch: attentionScratch,
                pool: mm.pool)
            mm.multiply(layer.attentionOutput, attention, tokens: n, into: projected)
            addInPlace(hidden, projected, count: n * h)

            layer.feedForwardNorm.withUnsafeBufferPointer { w in
                rmsNorm(hidden, weight: w.baseAddress!, rows: n, dim: h, eps: c.rmsNormEpsilon, into: normed)
            }
            mm.multiply(layer.gate, normed, tokens: n, into: gate)
            mm.multiply(layer.up, normed, tokens: n, into: up)
            siluMultiply(gate: gate, up: up, count: n * c.intermediateSize)
            mm.multiply(layer.down, gate, tokens: n, into: projected)
            addInPlace(hidden, projected, count: n * h)
        }
    }
}
