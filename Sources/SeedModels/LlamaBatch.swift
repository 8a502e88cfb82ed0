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
/// All tokens of all segments go through each weight matrix together (one pass over the weights for the whole
/// batch); attention runs per token against its own sequence's blocks. Scratch memory is allocated once; a forward
/// pass allocates nothing. Not thread-safe: one forward pass at a time.
///
/// Numerics follow ``LlamaSession``: a one-token segment (a generation step) is computed like the session's
/// one-token step and a longer segment (a prompt chunk) like a prompt batch. With the model's default int8
/// activations, the one-token segments' rows go through the integer kernels together (each weight row read once,
/// every token's result exactly what it would be alone), so a sequence decoding in a batch produces the same logits
/// as decoding alone; prompt rows go through the float32 kernels. With float32 activations every row is float32.
public final class LlamaBatchRunner {
    public let model: LlamaModel
    public let cache: PagedKVCache
    /// The most tokens (summed over segments) in one forward pass.
    public let maxTokens: Int
    /// The most segments that ask for logits in one forward pass.
    public let maxLogitRows: Int
    /// The longest sequence (positions) attention supports.
    public let maxPositions: Int
    /// Whether one-token segments take the multi-token integer kernels when the model uses int8 activations
    /// (default). `false` sends them through the float32 kernels with the prompt rows, unless a pass holds a lone
    /// token (the behaviour before the integer batch kernels; for benchmarks and comparisons).
    public var integerDecodeRows = true

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
    /// Logits in computation order (decode rows first) when a pass mixes decode and prompt logits.
    private let reorderedLogits: UnsafeMutablePointer<Float>
    /// For each logit row in computation order, its row in `logitRows` (segment order).
    private let logitOrder: UnsafeMutablePointer<Int>
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
        reorderedLogits = .allocate(capacity: self.maxLogitRows * c.vocabularySize)
        logitOrder = .allocate(capacity: self.maxLogitRows)
        lastRows = .allocate(capacity: self.maxLogitRows * c.hiddenSize)
        positions = .allocate(capacity: b)
        rows = .allocate(capacity: b)
        rotary = RotaryTable(rotaryDim: c.headDim, base: c.ropeBase, capacity: b)
        attentionScratch = AttentionScratch(threads: model.pool.threadCount, capacity: self.maxPositions)
    }

    deinit {
        for p in [
            hidden, normed, queries, newKeys, newValues, attention, projected, gate, up, logitRows, reorderedLogits,
            lastRows,
        ] {
            p.deallocate()
        }
        logitOrder.deallocate()
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

        // Rows of one-token segments (generation steps) come first, in segment order, then the prompt chunks' rows:
        // with int8 activations the first `int8Rows` rows take the integer kernels together.
        let int8Mode = model.multiplier.singleTokenActivations == .int8
        var decodeRows = 0
        for segment in segments where segment.tokens.count == 1 { decodeRows += 1 }
        let int8Rows = int8Mode && integerDecodeRows ? decodeRows : 0
        let h = c.hiddenSize
        var nextDecodeRow = 0
        var nextPromptRow = decodeRows
        var decodeLogits = 0
        for segment in segments where !segment.tokens.isEmpty {
            let isDecode = segment.tokens.count == 1
            var t = isDecode ? nextDecodeRow : nextPromptRow
            for (i, id) in segment.tokens.enumerated() {
                dequantizeRows(model.tokenEmbedding, from: id, count: 1, into: hidden + t * h)
                let position = segment.startPosition + i
                positions[t] = Int32(position)
                rows[t] = PagedAttentionRow(position: Int32(position), blockTable: segment.blockTable)
                t += 1
            }
            if isDecode { nextDecodeRow = t } else { nextPromptRow = t }
            if isDecode && segment.wantsLogits { decodeLogits += 1 }
        }
        runLayers(tokens: total, int8Rows: int8Rows)
        guard logitCount > 0 else { return UnsafeBufferPointer(start: logitRows, count: 0) }

        // The last hidden row of each segment that asks for logits, decode segments first (computation order);
        // `logitOrder` maps each back to its place in segment order.
        nextDecodeRow = 0
        nextPromptRow = decodeRows
        var decodeSlot = 0
        var promptSlot = decodeLogits
        var outputRow = 0
        var lastPromptLength = 0
        for segment in segments where !segment.tokens.isEmpty {
            let isDecode = segment.tokens.count == 1
            let firstRow = isDecode ? nextDecodeRow : nextPromptRow
            if isDecode { nextDecodeRow += 1 } else { nextPromptRow += segment.tokens.count }
            guard segment.wantsLogits else { continue }
            let slot: Int
            if isDecode {
                slot = decodeSlot
                decodeSlot += 1
            } else {
                slot = promptSlot
                promptSlot += 1
                lastPromptLength = segment.tokens.count
            }
            (lastRows + slot * h).update(from: hidden + (firstRow + segment.tokens.count - 1) * h, count: h)
            logitOrder[slot] = outputRow
            outputRow += 1
        }
        model.outputNorm.withUnsafeBufferPointer { w in
            rmsNorm(lastRows, weight: w.baseAddress!, rows: logitCount, dim: h, eps: c.rmsNormEpsilon, into: normed)
        }
        let vocabulary = c.vocabularySize
        let mixed = decodeLogits > 0 && decodeLogits < logitCount
        let target = mixed ? reorderedLogits : logitRows
        if int8Mode && integerDecodeRows {
            // As in `LlamaSession`: generation steps use int8 activations, logits that end a prompt chunk float32.
            if decodeLogits > 0 {
                model.multiplier.multiply(
                    model.outputHead, normed, tokens: decodeLogits, into: target, activations: .int8)
            }
            if logitCount > decodeLogits {
                model.multiplier.multiply(
                    model.outputHead, normed + decodeLogits * h, tokens: logitCount - decodeLogits,
                    into: target + decodeLogits * vocabulary, activations: .float32)
            }
        } else {
            let precision: ActivationPrecision? = logitCount == 1 && lastPromptLength > 1 ? .float32 : nil
            model.multiplier.multiply(
                model.outputHead, normed, tokens: logitCount, into: target, activations: precision)
        }
        if mixed {
            for slot in 0..<logitCount {
                (logitRows + logitOrder[slot] * vocabulary).update(
                    from: reorderedLogits + slot * vocabulary, count: vocabulary)
            }
        }
        return UnsafeBufferPointer(start: logitRows, count: logitCount * vocabulary)
    }

    /// `x · wᵀ` for each product: rows `0 ..< int8Rows` of `x` through the integer kernels (one-token segments),
    /// the remaining rows through the float32 kernels, as the session computes generation steps and prompts.
    private func multiply(
        _ x: UnsafePointer<Float>, tokens n: Int, int8Rows d: Int, _ a: MatrixProduct, _ b: MatrixProduct? = nil,
        _ c: MatrixProduct? = nil
    ) {
        let mm = model.multiplier
        if d > 0 {
            if let b {
                mm.multiply(x, tokens: d, a, b, c, activations: .int8)
            } else {
                mm.multiply(a.weights, x, tokens: d, into: a.output, yStride: a.outputStride, activations: .int8)
            }
        }
        guard n > d else { return }
        let rest = x + d * a.weights.columns
        // Without int8 rows this is exactly the multiplier's default (one token: its single-token precision).
        let precision: ActivationPrecision? = d > 0 ? .float32 : nil
        func floatRows(_ product: MatrixProduct?) {
            guard let product else { return }
            let stride = product.outputStride ?? product.weights.rows
            mm.multiply(
                product.weights, rest, tokens: n - d, into: product.output + d * stride, yStride: stride,
                activations: precision)
        }
        floatRows(a)
        floatRows(b)
        floatRows(c)
    }

    private func runLayers(tokens n: Int, int8Rows d: Int) {
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
            multiply(
                normed, tokens: n, int8Rows: d, MatrixProduct(layer.query, into: queries),
                MatrixProduct(layer.key, into: newKeys), MatrixProduct(layer.value, into: newValues))
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
            multiply(attention, tokens: n, int8Rows: d, MatrixProduct(layer.attentionOutput, into: projected))
            addInPlace(hidden, projected, count: n * h)

            layer.feedForwardNorm.withUnsafeBufferPointer { w in
                rmsNorm(hidden, weight: w.baseAddress!, rows: n, dim: h, eps: c.rmsNormEpsilon, into: normed)
            }
            multiply(
                normed, tokens: n, int8Rows: d, MatrixProduct(layer.gate, into: gate), MatrixProduct(layer.up, into: up)
            )
            siluMultiply(gate: gate, up: up, count: n * c.intermediateSize)
            multiply(gate, tokens: n, int8Rows: d, MatrixProduct(layer.down, into: projected))
            addInPlace(hidden, projected, count: n * h)
        }
    }
}
