import SeedFormats
import SeedKernels
import SeedTensor

/// Hyperparameters of a Llama-family decoder (names follow Hugging Face's `LlamaConfig`).
public struct LlamaConfiguration: Codable, Sendable, Equatable {
    public var vocabularySize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var kvHeadCount: Int
    public var headDim: Int
    public var ropeBase: Float
    public var rmsNormEpsilon: Float
    public var contextLength: Int
    /// True when the output head shares the token-embedding matrix.
    public var tiedEmbeddings: Bool
    /// True for GGUF's RoPE on adjacent pairs `(2i, 2i+1)`; false for Hugging Face's rotate-half `(i, i+d/2)`.
    public var ropeInterleaved: Bool

    enum CodingKeys: String, CodingKey {
        case vocabularySize = "vocab_size"
        case hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size"
        case layerCount = "num_hidden_layers"
        case headCount = "num_attention_heads"
        case kvHeadCount = "num_key_value_heads"
        case headDim = "head_dim"
        case ropeBase = "rope_theta"
        case rmsNormEpsilon = "rms_norm_eps"
        case contextLength = "max_position_embeddings"
        case tiedEmbeddings = "tie_word_embeddings"
        case ropeInterleaved = "rope_interleaved"
    }

    public init(
        vocabularySize: Int, hiddenSize: Int, intermediateSize: Int, layerCount: Int, headCount: Int,
        kvHeadCount: Int, headDim: Int? = nil, ropeBase: Float = 10_000, rmsNormEpsilon: Float = 1e-5,
        contextLength: Int = 2048, tiedEmbeddings: Bool = true, ropeInterleaved: Bool = false
    ) {
        self.vocabularySize = vocabularySize
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.layerCount = layerCount
        self.headCount = headCount
        self.kvHeadCount = kvHeadCount
        self.headDim = headDim ?? hiddenSize / headCount
        self.ropeBase = ropeBase
        self.rmsNormEpsilon = rmsNormEpsilon
        self.contextLength = contextLength
        self.tiedEmbeddings = tiedEmbeddings
        self.ropeInterleaved = ropeInterleaved
    }

    /// Width of the key/value projections.
    public var kvDim: Int { kvHeadCount * headDim }
    /// Width of the query projection.
    public var queryDim: Int { headCount * headDim }

    /// Checks that the numbers describe a model the kernels can run.
    public func validate() throws(ModelError) {
        func check(_ ok: Bool, _ key: String, _ reason: String) throws(ModelError) {
            if !ok { throw .invalidMetadata(key: key, reason: reason) }
        }
        let limit = 1 << 24
        try check(vocabularySize > 0 && vocabularySize <= limit, "vocab_size", "\(vocabularySize) out of range")
        try check(hiddenSize > 0 && hiddenSize <= 65_536, "hidden_size", "\(hiddenSize) out of range")
        try check(intermediateSize > 0 && intermediateSize <= 262_144, "intermediate_size", "out of range")
        try check(layerCount > 0 && layerCount <= 1024, "num_hidden_layers", "\(layerCount) out of range")
        try check(headCount > 0 && headCount <= 1024, "num_attention_heads", "\(headCount) out of range")
        try check(
            kvHeadCount > 0 && headCount % kvHeadCount == 0, "num_key_value_heads",
            "\(kvHeadCount) does not divide \(headCount) query heads")
        try check(headDim > 0 && headDim % 2 == 0 && headDim <= 1024, "head_dim", "\(headDim) must be even")
        try check(contextLength > 0 && contextLength <= 1 << 22, "max_position_embeddings", "out of range")
        try check(ropeBase > 0 && ropeBase.isFinite, "rope_theta", "\(ropeBase) must be positive")
        try check(rmsNormEpsilon > 0 && rmsNormEpsilon < 1, "rms_norm_eps", "\(rmsNormEpsilon) out of range")
    }
}

/// The weights of one decoder layer.
struct LlamaLayer: @unchecked Sendable {
    // @unchecked Sendable: immutable views of read-only weight memory.
    let attentionNorm: [Float]
    let query: WeightMatrix
    let key: WeightMatrix
    let value: WeightMatrix
    let attentionOutput: WeightMatrix
    let feedForwardNorm: [Float]
    let gate: WeightMatrix
    let up: WeightMatrix
    let down: WeightMatrix
}

/// A Llama-family decoder (Llama 2/3, SmolLM, Mistral-style GQA) running from memory-mapped weights.
///
/// The model is immutable after loading; per-sequence state lives in a ``LlamaSession``. Sessions of one model
/// share its ``MatrixMultiplier``, so run one forward pass at a time per model (the engine's scheduler does).
public final class LlamaModel: @unchecked Sendable {
    // @unchecked Sendable: all stored properties are immutable after init; the multiplier's scratch is guarded by
    // the one-forward-at-a-time rule above.

    public let configuration: LlamaConfiguration
    /// The file the weights are mapped from (kept alive as long as the model).
    public let file: GGUFFile
    let tokenEmbedding: WeightMatrix
    let outputHead: WeightMatrix
    let outputNorm: [Float]
    let layers: [LlamaLayer]
    /// Runs the matrix products.
    public let multiplier: MatrixMultiplier

    /// The worker pool the model computes on.
    public var pool: WorkerPool { multiplier.pool }

    /// Loads a GGUF file whose `general.architecture` is `llama`.
    ///
    /// - Parameters:
    ///   - threads: compute threads (default: all online CPUs).
    ///   - activations: how generation steps (one token) feed activations to Q4_0/Q4_1/Q8_0 matrix products:
    ///     `.int8` (default, llama.cpp's scheme, fastest) or `.float32` (exact). Prompt batches always use float32.
    public convenience init(
        path: String, threads: Int? = nil, activations: ActivationPrecision = .int8
    ) throws(ModelError) {
        let file: GGUFFile
        do {
            file = try GGUFFile(path: path)
        } catch {
            throw .file("\(error)")
        }
        try self.init(gguf: file, threads: threads, activations: activations)
    }

    /// Builds the model over an opened GGUF file (parameters as in ``init(path:threads:activations:)``).
    public init(gguf: GGUFFile, threads: Int? = nil, activations: ActivationPrecision = .int8) throws(ModelError) {
        let architecture = gguf.metadata["general.architecture"]?.string ?? ""
        guard architecture == "llama" else {
            throw .unsupportedArchitecture(architecture.isEmpty ? "(none)" : architecture)
        }
        let configuration = try LlamaConfiguration(gguf: gguf)
        try configuration.validate()
        self.configuration = configuration
        self.file = gguf

        let c = configuration
        func matrix(_ name: String, rows: Int, columns: Int) throws(ModelError) -> WeightMatrix {
            guard let info = gguf.tensor(named: name) else { throw .missingTensor(name) }
            guard info.dimensions == [columns, rows] else {
                throw .tensorShape(name: name, expected: [columns, rows], actual: info.dimensions)
            }
            do {
                return try WeightMatrix(type: info.type, rows: rows, columns: columns, data: gguf.rawPointer(for: info))
            } catch {
                throw .unsupportedTensorType(name: name, type: info.type.name)
            }
        }
        func vector(_ name: String, count: Int) throws(ModelError) -> [Float] {
            guard let info = gguf.tensor(named: name) else { throw .missingTensor(name) }
            guard info.elementCount == count, info.dimensions.count == 1 else {
                throw .tensorShape(name: name, expected: [count], actual: info.dimensions)
            }
            do {
                return try gguf.dequantizedTensor(named: name)
            } catch {
                throw .unsupportedTensorType(name: name, type: info.type.name)
            }
        }

        tokenEmbedding = try matrix("token_embd.weight", rows: c.vocabularySize, columns: c.hiddenSize)
        if gguf.tensor(named: "output.weight") != nil {
            outputHead = try matrix("output.weight", rows: c.vocabularySize, columns: c.hiddenSize)
        } else {
            outputHead = tokenEmbedding
        }
        outputNorm = try vector("output_norm.weight", count: c.hiddenSize)
        var layers: [LlamaLayer] = []
        for i in 0..<c.layerCount {
            let p = "blk.\(i)."
            layers.append(
                LlamaLayer(
                    attentionNorm: try vector(p + "attn_norm.weight", count: c.hiddenSize),
                    query: try matrix(p + "attn_q.weight", rows: c.queryDim, columns: c.hiddenSize),
                    key: try matrix(p + "attn_k.weight", rows: c.kvDim, columns: c.hiddenSize),
                    value: try matrix(p + "attn_v.weight", rows: c.kvDim, columns: c.hiddenSize),
                    attentionOutput: try matrix(p + "attn_output.weight", rows: c.hiddenSize, columns: c.queryDim),
                    feedForwardNorm: try vector(p + "ffn_norm.weight", count: c.hiddenSize),
                    gate: try matrix(p + "ffn_gate.weight", rows: c.intermediateSize, columns: c.hiddenSize),
                    up: try matrix(p + "ffn_up.weight", rows: c.intermediateSize, columns: c.hiddenSize),
                    down: try matrix(p + "ffn_down.weight", rows: c.hiddenSize, columns: c.intermediateSize)))
        }
        self.layers = layers
        let threadCount = threads ?? WorkerPool.onlineCPUCount
        multiplier = MatrixMultiplier(pool: WorkerPool(threads: threadCount))
        multiplier.singleTokenActivations = activations
    }

    /// Creates the per-sequence state for up to `contextLength` positions (default: the model's context).
    public func makeSession(contextLength: Int? = nil, batchCapacity: Int = 512) -> LlamaSession {
        LlamaSession(
            model: self,
            capacity: min(
                contextLength ?? configuration.contextLength,
                configuration.contextLength),
            batchCapacity: batchCapacity)
    }
}

extension LlamaConfiguration {
    /// Reads the `llama.*` hyperparameters from GGUF metadata.
    public init(gguf: GGUFFile) throws(ModelError) {
        let m = gguf.metadata
        func int(_ key: String) throws(ModelError) -> Int {
            guard let v = m["llama." + key]?.int else { throw .missingMetadata("llama." + key) }
            return v
        }
        let hidden = try int("embedding_length")
        let heads = try int("attention.head_count")
        let kvHeads = m["llama.attention.head_count_kv"]?.int ?? heads
        let vocabulary: Int
        if let n = m["llama.vocab_size"]?.int {
            vocabulary = n
        } else if let tokens = m["tokenizer.ggml.tokens"]?.array?.count {
            vocabulary = tokens
        } else if let embedding = gguf.tensor(named: "token_embd.weight"), embedding.dimensions.count == 2 {
            vocabulary = embedding.dimensions[1]
        } else {
            throw .missingMetadata("llama.vocab_size")
        }
        guard heads > 0 else { throw .invalidMetadata(key: "llama.attention.head_count", reason: "must be > 0") }
        let headDim = m["llama.attention.key_length"]?.int ?? (hidden / heads)
        self.init(
            vocabularySize: vocabulary, hiddenSize: hidden, intermediateSize: try int("feed_forward_length"),
            layerCount: try int("block_count"), headCount: heads, kvHeadCount: kvHeads, headDim: headDim,
            ropeBase: Float(m["llama.rope.freq_base"]?.float ?? 10_000),
            rmsNormEpsilon: Float(m["llama.attention.layer_norm_rms_epsilon"]?.float ?? 1e-5),
            contextLength: try int("context_length"), tiedEmbeddings: gguf.tensor(named: "output.weight") == nil,
            ropeInterleaved: true)
    }
}
