import SeedKernels
import SeedTensor

/// Which positions of a forward pass produce logits.
public enum LogitsSelection: Sendable {
    /// Only the last token (generation).
    case last
    /// Every token (perplexity, scoring).
    case all
}

/// The state of one sequence running through a ``LlamaModel``: its key/value cache and scratch buffers.
///
/// Buffers are allocated once, when the session is created; a forward pass allocates nothing (except the
/// all-positions logits buffer, which grows on first use). Not thread-safe: one caller at a time.
public final class LlamaSession {
    /// The model this session runs.
    public let model: LlamaModel
    /// The most positions the cache holds.
    public let capacity: Int
    /// The most tokens processed in one batched step; longer inputs are split into chunks of this size.
    public let batchCapacity: Int
    /// Number of positions filled in the cache (the next token goes here).
    public private(set) var position = 0

    private let keys: UnsafeMutablePointer<Float>
    private let values: UnsafeMutablePointer<Float>
    private let hidden: UnsafeMutablePointer<Float>
    private let normed: UnsafeMutablePointer<Float>
    private let queries: UnsafeMutablePointer<Float>
    private let attention: UnsafeMutablePointer<Float>
    private let projected: UnsafeMutablePointer<Float>
    private let gate: UnsafeMutablePointer<Float>
    private let up: UnsafeMutablePointer<Float>
    private let lastLogits: UnsafeMutablePointer<Float>
    private var allLogits: UnsafeMutablePointer<Float>?
    private var allLogitsCapacity = 0
    private var rotary: RotaryTable
    private let attentionScratch: AttentionScratch

    init(model: LlamaModel, capacity: Int, batchCapacity: Int) {
        let c = model.configuration
        self.model = model
        self.capacity = max(1, capacity)
        self.batchCapacity = max(1, min(batchCapacity, self.capacity))
        let b = self.batchCapacity
        let cacheCount = c.layerCount * self.capacity * c.kvDim
        keys = .allocate(capacity: cacheCount)
        values = .allocate(capacity: cacheCount)
        hidden = .allocate(capacity: b * c.hiddenSize)
        normed = .allocate(capacity: b * c.hiddenSize)
        queries = .allocate(capacity: b * c.queryDim)
        attention = .allocate(capacity: b * c.queryDim)
        projected = .allocate(capacity: b * c.hiddenSize)
        gate = .allocate(capacity: b * c.intermediateSize)
        up = .allocate(capacity: b * c.intermediateSize)
        lastLogits = .allocate(capacity: c.vocabularySize)
        rotary = RotaryTable(rotaryDim: c.headDim, base: c.ropeBase, capacity: b)
        attentionScratch = AttentionScratch(threads: model.pool.threadCount, capacity: self.capacity)
    }

    deinit {
        for p in [keys, values, hidden, normed, queries, attention, projected, gate, up, lastLogits] {
            p.deallocate()
        }
        allLogits?.deallocate()
    }

    /// Forgets every cached position.
    public func reset() { position = 0 }

    /// Drops cached positions from `newPosition` on, so the sequence can continue from there.
    public func truncate(to newPosition: Int) {
        position = max(0, min(position, newPosition))
    }

    /// Appends `tokens` to the sequence and returns logits.
    ///
    /// - Parameters:
    ///   - tokens: token ids; processed in batches of up to ``batchCapacity``.
    ///   - selection: `.last` returns `[vocab]` for the final token; `.all` returns `[tokens.count, vocab]`.
    /// - Returns: a view of session-owned memory, valid until the next call.
    @discardableResult
    public func forward(_ tokens: [Int], logits selection: LogitsSelection = .last) throws(ModelError)
        -> UnsafeBufferPointer<Float>
    {
        let c = model.configuration
        guard !tokens.isEmpty else { return UnsafeBufferPointer(start: lastLogits, count: 0) }
        guard position + tokens.count <= capacity else {
            throw .contextOverflow(needed: position + tokens.count, capacity: capacity)
        }
        for id in tokens where id < 0 || id >= c.vocabularySize {
            throw .tokenOutOfRange(id: id, vocabularySize: c.vocabularySize)
        }
        if selection == .all {
            let needed = tokens.count * c.vocabularySize
            if needed > allLogitsCapacity {
                allLogits?.deallocate()
                allLogits = .allocate(capacity: needed)
                allLogitsCapacity = needed
            }
        }
        var done = 0
        while done < tokens.count {
            let n = min(batchCapacity, tokens.count - done)
            let chunk = tokens[done..<done + n]
            let isFinal = done + n == tokens.count
            let output: OutputRows
            switch selection {
            case .all: output = .all(allLogits! + done * c.vocabularySize)
            case .last: output = isFinal ? .last(lastLogits) : .none
            }
            runBatch(chunk, output: output)
            done += n
        }
        switch selection {
        case .last: return UnsafeBufferPointer(start: lastLogits, count: c.vocabularySize)
        case .all: return UnsafeBufferPointer(start: allLogits, count: tokens.count * c.vocabularySize)
        }
    }

    private enum OutputRows {
        case none
        case last(UnsafeMutablePointer<Float>)
        case all(UnsafeMutablePointer<Float>)
    }

    private func runBatch(_ tokens: ArraySlice<Int>, output: OutputRows) {
        let c = model.configuration
        let mm = model.multiplier
        let n = tokens.count
        let h = c.hiddenSize
        let start = position
        for (t, id) in tokens.enumerated() {
            dequantizeRows(model.tokenEmbedding, from: id, count: 1, into: hidden + t * h)
        }
        rotary.fill(start: start, count: n)
        let shape = AttentionShape(heads: c.headCount, kvHeads: c.kvHeadCount, headDim: c.headDim)
        let layerStride = capacity * c.kvDim
        for (index, layer) in model.layers.enumerated() {
            let layerKeys = keys + index * layerStride
            let layerValues = values + index * layerStride
            let newKeys = layerKeys + start * c.kvDim
            let newValues = layerValues + start * c.kvDim

            layer.attentionNorm.withUnsafeBufferPointer { w in
                rmsNorm(hidden, weight: w.baseAddress!, rows: n, dim: h, eps: c.rmsNormEpsilon, into: normed)
            }
            mm.multiply(
                normed, tokens: n, MatrixProduct(layer.query, into: queries),
                MatrixProduct(layer.key, into: newKeys, outputStride: c.kvDim),
                MatrixProduct(layer.value, into: newValues, outputStride: c.kvDim))
            if c.ropeInterleaved {
                rotary.applyInterleaved(
                    queries, tokens: n, heads: c.headCount, headDim: c.headDim,
                    rowStride: c.queryDim)
                rotary.applyInterleaved(
                    newKeys, tokens: n, heads: c.kvHeadCount, headDim: c.headDim,
                    rowStride: c.kvDim)
            } else {
                rotary.applyHalves(queries, tokens: n, heads: c.headCount, headDim: c.headDim, rowStride: c.queryDim)
                rotary.applyHalves(newKeys, tokens: n, heads: c.kvHeadCount, headDim: c.headDim, rowStride: c.kvDim)
            }
            causalAttention(
                q: queries, qStride: c.queryDim, keys: layerKeys, values: layerValues, kvStride: c.kvDim,
                tokens: n, start: start, shape: shape, out: attention, outStride: c.queryDim,
                scratch: attentionScratch, pool: mm.pool)
            mm.multiply(layer.attentionOutput, attention, tokens: n, into: projected)
            addInPlace(hidden, projected, count: n * h)

            layer.feedForwardNorm.withUnsafeBufferPointer { w in
                rmsNorm(hidden, weight: w.baseAddress!, rows: n, dim: h, eps: c.rmsNormEpsilon, into: normed)
            }
            mm.multiply(normed, tokens: n, MatrixProduct(layer.gate, into: gate), MatrixProduct(layer.up, into: up))
            siluMultiply(gate: gate, up: up, count: n * c.intermediateSize)
            mm.multiply(layer.down, gate, tokens: n, into: projected)
            addInPlace(hidden, projected, count: n * h)
        }
        position += n

        switch output {
        case .none:
            break
        case .last(let logits):
            model.outputNorm.withUnsafeBufferPointer { w in
                rmsNorm(
                    hidden + (n - 1) * h, weight: w.baseAddress!, rows: 1, dim: h, eps: c.rmsNormEpsilon,
                    into: normed)
            }
            // The logits that end a prompt batch stay float32 like the rest of the batch; only generation steps
            // (one token) use the multiplier's single-token precision.
            mm.multiply(model.outputHead, normed, tokens: 1, into: logits, activations: n > 1 ? .float32 : nil)
        case .all(let logits):
            model.outputNorm.withUnsafeBufferPointer { w in
                rmsNorm(hidden, weight: w.baseAddress!, rows: n, dim: h, eps: c.rmsNormEpsilon, into: normed)
            }
            mm.multiply(model.outputHead, normed, tokens: n, into: logits)
        }
    }
}
