import Foundation
import SeedFormats
import SeedKernels
import SeedTensor
import Synchronization

/// Hyperparameters of a BERT encoder, read from a Hugging Face `config.json` (`BertConfig` key names).
public struct BERTConfiguration: Codable, Sendable, Equatable {
    /// Must be `"bert"`.
    public var modelType: String
    public var vocabularySize: Int
    public var hiddenSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var intermediateSize: Int
    /// `"gelu"` (exact, erf form) or `"gelu_new"` / `"gelu_pytorch_tanh"` (tanh approximation).
    public var hiddenActivation: String
    /// Number of learned absolute positions: the longest sequence the model can encode.
    public var maxPositionEmbeddings: Int
    /// Number of token types (segments); usually 2.
    public var typeVocabularySize: Int
    public var layerNormEpsilon: Float
    /// Only `"absolute"` is supported.
    public var positionEmbeddingType: String

    enum CodingKeys: String, CodingKey {
        case modelType = "model_type"
        case vocabularySize = "vocab_size"
        case hiddenSize = "hidden_size"
        case layerCount = "num_hidden_layers"
        case headCount = "num_attention_heads"
        case intermediateSize = "intermediate_size"
        case hiddenActivation = "hidden_act"
        case maxPositionEmbeddings = "max_position_embeddings"
        case typeVocabularySize = "type_vocab_size"
        case layerNormEpsilon = "layer_norm_eps"
        case positionEmbeddingType = "position_embedding_type"
    }

    public init(
        vocabularySize: Int, hiddenSize: Int, layerCount: Int, headCount: Int, intermediateSize: Int,
        hiddenActivation: String = "gelu", maxPositionEmbeddings: Int = 512, typeVocabularySize: Int = 2,
        layerNormEpsilon: Float = 1e-12
    ) {
        modelType = "bert"
        self.vocabularySize = vocabularySize
        self.hiddenSize = hiddenSize
        self.layerCount = layerCount
        self.headCount = headCount
        self.intermediateSize = intermediateSize
        self.hiddenActivation = hiddenActivation
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.typeVocabularySize = typeVocabularySize
        self.layerNormEpsilon = layerNormEpsilon
        positionEmbeddingType = "absolute"
    }

    /// Decodes a `config.json`; the keys `BertConfig` has defaults for may be absent.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        modelType = try c.decode(String.self, forKey: .modelType)
        vocabularySize = try c.decode(Int.self, forKey: .vocabularySize)
        hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
        layerCount = try c.decode(Int.self, forKey: .layerCount)
        headCount = try c.decode(Int.self, forKey: .headCount)
        intermediateSize = try c.decode(Int.self, forKey: .intermediateSize)
        hiddenActivation = try c.decodeIfPresent(String.self, forKey: .hiddenActivation) ?? "gelu"
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? 512
        typeVocabularySize = try c.decodeIfPresent(Int.self, forKey: .typeVocabularySize) ?? 2
        layerNormEpsilon = try c.decodeIfPresent(Float.self, forKey: .layerNormEpsilon) ?? 1e-12
        positionEmbeddingType = try c.decodeIfPresent(String.self, forKey: .positionEmbeddingType) ?? "absolute"
    }

    /// Reads and validates `config.json` at `path`.
    public init(path: String) throws(ModelError) {
        guard let data = FileManager.default.contents(atPath: path) else { throw .missingFile(path: path) }
        do {
            self = try JSONDecoder().decode(BERTConfiguration.self, from: data)
        } catch let error as DecodingError {
            throw .invalidConfiguration(path: path, key: "", reason: describe(error))
        } catch {
            throw .invalidConfiguration(path: path, key: "", reason: "\(error)")
        }
        try validate(path: path)
    }

    /// Width of one attention head.
    public var headDim: Int { hiddenSize / max(headCount, 1) }

    /// The GELU variant `hiddenActivation` names, or `nil` if it names something else.
    public var gelu: GELUKind? {
        switch hiddenActivation {
        case "gelu", "gelu_python": .exact
        case "gelu_new", "gelu_pytorch_tanh": .tanh
        default: nil
        }
    }

    /// Checks that the numbers describe a model the kernels can run; `path` only labels the errors.
    public func validate(path: String = "config.json") throws(ModelError) {
        func check(_ ok: Bool, _ key: String, _ reason: @autoclosure () -> String) throws(ModelError) {
            if !ok { throw .invalidConfiguration(path: path, key: key, reason: reason()) }
        }
        try check(modelType == "bert", "model_type", "is '\(modelType)', but only 'bert' is supported")
        try check(vocabularySize > 0 && vocabularySize <= 1 << 24, "vocab_size", "\(vocabularySize) is out of range")
        try check(hiddenSize > 0 && hiddenSize <= 65_536, "hidden_size", "\(hiddenSize) is out of range")
        try check(layerCount > 0 && layerCount <= 1024, "num_hidden_layers", "\(layerCount) is out of range")
        try check(headCount > 0 && headCount <= 1024, "num_attention_heads", "\(headCount) is out of range")
        try check(
            hiddenSize % headCount == 0, "num_attention_heads",
            "\(headCount) does not divide hidden_size \(hiddenSize)")
        try check(
            intermediateSize > 0 && intermediateSize <= 262_144, "intermediate_size",
            "\(intermediateSize) is out of range")
        try check(
            gelu != nil, "hidden_act",
            "'\(hiddenActivation)' is not supported (supported: gelu, gelu_python, gelu_new, gelu_pytorch_tanh)")
        try check(
            maxPositionEmbeddings > 0 && maxPositionEmbeddings <= 1 << 20, "max_position_embeddings",
            "\(maxPositionEmbeddings) is out of range")
        try check(
            typeVocabularySize > 0 && typeVocabularySize <= 1024, "type_vocab_size",
            "\(typeVocabularySize) is out of range")
        try check(
            layerNormEpsilon > 0 && layerNormEpsilon < 1, "layer_norm_eps", "\(layerNormEpsilon) is out of range")
        try check(
            positionEmbeddingType == "absolute", "position_embedding_type",
            "'\(positionEmbeddingType)' is not supported (only 'absolute')")
    }
}

/// A short description of a JSON decoding failure: what went wrong and at which key.
func describe(_ error: DecodingError) -> String {
    func path(_ keys: [any CodingKey]) -> String {
        keys.isEmpty
            ? "the top level"
            : "'"
                + keys.map { $0.intValue.map(String.init) ?? $0.stringValue }
                .joined(separator: ".") + "'"
    }
    switch error {
    case .keyNotFound(let key, let context): return "missing key '\(key.stringValue)' in \(path(context.codingPath))"
    case .typeMismatch(let type, let context): return "\(path(context.codingPath)) is not a \(type)"
    case .valueNotFound(let type, let context): return "\(path(context.codingPath)) is null, expected \(type)"
    case .dataCorrupted(let context):
        let underlying = context.underlyingError.map { " (\($0.localizedDescription))" } ?? ""
        return "\(context.debugDescription)\(underlying) at \(path(context.codingPath))"
    @unknown default: return "\(error)"
    }
}

/// Float32 buffers the model owns: tensors converted from F16/BF16, F32 data the file does not align, and the
/// stacked query/key/value biases.
final class BERTWeightStorage: @unchecked Sendable {
    // @unchecked Sendable: written only while loading, read-only afterwards.
    private var buffers: [UnsafeMutableBufferPointer<Float>] = []

    func allocate(_ count: Int) -> UnsafeMutableBufferPointer<Float> {
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
        buffers.append(buffer)
        return buffer
    }

    /// Bytes held (what converting or copying cost; memory-mapped F32 tensors are not counted).
    var byteCount: Int { buffers.reduce(0) { $0 + $1.count * MemoryLayout<Float>.stride } }

    deinit {
        for buffer in buffers { buffer.deallocate() }
    }
}

/// The weights of one encoder layer (float32, row-major `[out, in]` like PyTorch's `Linear`).
struct BERTLayer: @unchecked Sendable {
    // @unchecked Sendable: pointers into the model's read-only weights (mapped file or owned storage).
    let query: WeightMatrix
    let key: WeightMatrix
    let value: WeightMatrix
    /// Query, key and value biases stacked: `[3 * hidden]`.
    let qkvBias: UnsafePointer<Float>
    let attentionOutput: WeightMatrix
    let attentionOutputBias: UnsafePointer<Float>
    let attentionNormWeight: UnsafePointer<Float>
    let attentionNormBias: UnsafePointer<Float>
    let intermediate: WeightMatrix
    let intermediateBias: UnsafePointer<Float>
    let output: WeightMatrix
    let outputBias: UnsafePointer<Float>
    let outputNormWeight: UnsafePointer<Float>
    let outputNormBias: UnsafePointer<Float>
}

/// Activation buffers reused from one forward pass to the next, grown when a batch needs more.
final class BERTWorkspace {
    private(set) var tokenCapacity = 0
    private(set) var scoreCapacity = 0
    /// `[tokens, hidden]`: the hidden states, updated in place layer by layer.
    private(set) var hidden = UnsafeMutablePointer<Float>.allocate(capacity: 0)
    /// `[tokens, 3 * hidden]`: queries, keys and values side by side.
    private(set) var qkv = UnsafeMutablePointer<Float>.allocate(capacity: 0)
    /// `[tokens, hidden]`: attention output before its projection.
    private(set) var context = UnsafeMutablePointer<Float>.allocate(capacity: 0)
    /// `[tokens, hidden]`: a projection before the residual and LayerNorm.
    private(set) var projected = UnsafeMutablePointer<Float>.allocate(capacity: 0)
    /// `[tokens, intermediate]`: the feed-forward activations.
    private(set) var intermediate = UnsafeMutablePointer<Float>.allocate(capacity: 0)
    private(set) var scratch = AttentionScratch(threads: 1, capacity: 0)

    /// Makes room for `tokens` tokens whose longest sequence is `longest`.
    func reserve(tokens: Int, longest: Int, hidden h: Int, intermediate inter: Int, threads: Int) {
        if tokens > tokenCapacity {
            // Grow by at least half again so that slowly growing batches do not reallocate every time.
            let capacity = max(tokens, tokenCapacity + tokenCapacity / 2)
            release()
            hidden = .allocate(capacity: capacity * h)
            qkv = .allocate(capacity: capacity * 3 * h)
            context = .allocate(capacity: capacity * h)
            projected = .allocate(capacity: capacity * h)
            intermediate = .allocate(capacity: capacity * inter)
            tokenCapacity = capacity
        }
        if longest * longest > scoreCapacity || scratch.threads < threads {
            scoreCapacity = max(longest * longest, scoreCapacity)
            scratch = AttentionScratch(threads: threads, capacity: scoreCapacity)
        }
    }

    private func release() {
        for buffer in [hidden, qkv, context, projected, intermediate] { buffer.deallocate() }
    }

    deinit { release() }
}

/// A BERT encoder (e.g. all-MiniLM-L6-v2) loaded from a Hugging Face directory with `config.json` and
/// `model.safetensors`.
///
/// F32 weights are used in place from the memory-mapped file (no copy); F16 and BF16 tensors, and F32 data the file
/// does not align to 4 bytes, are converted to owned float32 buffers at load. Tensor names may carry the `bert.`
/// prefix (`BertForMaskedLM` checkpoints) or not (`BertModel`). ``encode(ids:typeIDs:)`` may be called from several
/// threads; calls run one at a time.
public final class BERTModel: @unchecked Sendable {
    // @unchecked Sendable: weights are immutable after init; the multiplier's scratch and the workspace are guarded
    // by `lock`.

    public let configuration: BERTConfiguration
    /// Runs the matrix products.
    public let multiplier: MatrixMultiplier
    /// The worker pool the model computes on.
    public var pool: WorkerPool { multiplier.pool }
    /// Bytes of weights the model converted or copied into its own memory (0 for an aligned F32 file apart from the
    /// stacked attention biases).
    public var ownedWeightBytes: Int { storage.byteCount }

    private let file: SafetensorsFile
    private let storage: BERTWeightStorage
    private let wordEmbeddings: UnsafePointer<Float>
    private let positionEmbeddings: UnsafePointer<Float>
    private let typeEmbeddings: UnsafePointer<Float>
    private let embeddingNormWeight: UnsafePointer<Float>
    private let embeddingNormBias: UnsafePointer<Float>
    private let layers: [BERTLayer]
    private let geluKind: GELUKind
    private let lock = Mutex(())
    private let workspace = BERTWorkspace()

    /// Loads `directory/config.json` and `directory/model.safetensors`, computing on `threads` threads (default: all
    /// online CPUs).
    public init(directory: String, threads: Int? = nil) throws(ModelError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw .missingFile(path: directory)
        }
        let configuration = try BERTConfiguration(path: directory + "/config.json")
        self.configuration = configuration
        geluKind = configuration.gelu ?? .exact

        let weightsPath = directory + "/model.safetensors"
        guard FileManager.default.fileExists(atPath: weightsPath) else { throw .missingFile(path: weightsPath) }
        let file: SafetensorsFile
        do {
            file = try SafetensorsFile(path: weightsPath)
        } catch {
            // The safetensors error names the file itself.
            throw .file(error.description)
        }
        self.file = file
        let storage = BERTWeightStorage()
        self.storage = storage
        let c = configuration
        let h = c.hiddenSize

        /// Tensor `name` (with or without the `bert.` prefix) of shape `shape` as float32: the mapped data itself when
        /// it is aligned F32, else a converted copy.
        func tensor(_ name: String, _ shape: [Int]) throws(ModelError) -> UnsafePointer<Float> {
            guard let info = file.tensor(named: name) ?? file.tensor(named: "bert." + name) else {
                throw .missingTensor(name)
            }
            guard info.shape == shape else { throw .tensorShape(name: info.name, expected: shape, actual: info.shape) }
            switch info.dtype {
            case .f32, .f16, .bf16: break
            default: throw .unsupportedTensorType(name: info.name, type: info.dtype.rawValue)
            }
            do {
                let mapped = try file.rawPointer(for: info.name)
                if info.dtype == .f32, let base = mapped.baseAddress,
                    Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0
                {
                    return base.assumingMemoryBound(to: Float.self)
                }
                let values = try file.floats(named: info.name)
                let buffer = storage.allocate(values.count)
                _ = buffer.initialize(from: values)
                return UnsafePointer(buffer.baseAddress!)
            } catch {
                throw .file("cannot read tensor '\(info.name)' from \(weightsPath): \(error)")
            }
        }
        func matrix(_ name: String, rows: Int, columns: Int) throws(ModelError) -> WeightMatrix {
            try weightMatrix(tensor(name, [rows, columns]), rows: rows, columns: columns, name: name)
        }

        wordEmbeddings = try tensor("embeddings.word_embeddings.weight", [c.vocabularySize, h])
        positionEmbeddings = try tensor("embeddings.position_embeddings.weight", [c.maxPositionEmbeddings, h])
        typeEmbeddings = try tensor("embeddings.token_type_embeddings.weight", [c.typeVocabularySize, h])
        embeddingNormWeight = try tensor("embeddings.LayerNorm.weight", [h])
        embeddingNormBias = try tensor("embeddings.LayerNorm.bias", [h])

        var layers: [BERTLayer] = []
        for i in 0..<c.layerCount {
            let p = "encoder.layer.\(i)."
            let qkvBias = storage.allocate(3 * h).baseAddress!
            for (j, part) in ["query", "key", "value"].enumerated() {
                (qkvBias + j * h).update(from: try tensor(p + "attention.self.\(part).bias", [h]), count: h)
            }
            layers.append(
                BERTLayer(
                    query: try matrix(p + "attention.self.query.weight", rows: h, columns: h),
                    key: try matrix(p + "attention.self.key.weight", rows: h, columns: h),
                    value: try matrix(p + "attention.self.value.weight", rows: h, columns: h),
                    qkvBias: qkvBias,
                    attentionOutput: try matrix(p + "attention.output.dense.weight", rows: h, columns: h),
                    attentionOutputBias: try tensor(p + "attention.output.dense.bias", [h]),
                    attentionNormWeight: try tensor(p + "attention.output.LayerNorm.weight", [h]),
                    attentionNormBias: try tensor(p + "attention.output.LayerNorm.bias", [h]),
                    intermediate: try matrix(p + "intermediate.dense.weight", rows: c.intermediateSize, columns: h),
                    intermediateBias: try tensor(p + "intermediate.dense.bias", [c.intermediateSize]),
                    output: try matrix(p + "output.dense.weight", rows: h, columns: c.intermediateSize),
                    outputBias: try tensor(p + "output.dense.bias", [h]),
                    outputNormWeight: try tensor(p + "output.LayerNorm.weight", [h]),
                    outputNormBias: try tensor(p + "output.LayerNorm.bias", [h])))
        }
        self.layers = layers
        multiplier = MatrixMultiplier(pool: WorkerPool(threads: max(1, threads ?? WorkerPool.onlineCPUCount)))
    }

    /// Checks a batch without running it: every sequence non-empty, no longer than `max_position_embeddings`, ids in
    /// the vocabulary, and `typeIDs` (if given) of the same shape with values below `type_vocab_size`.
    public func validate(ids: [[Int]], typeIDs: [[Int]]? = nil) throws(ModelError) {
        let c = configuration
        if let typeIDs, typeIDs.count != ids.count {
            throw .invalidInput("\(typeIDs.count) token-type sequences for \(ids.count) sequences")
        }
        for (b, sequence) in ids.enumerated() {
            guard !sequence.isEmpty else { throw .invalidInput("sequence \(b) is empty") }
            guard sequence.count <= c.maxPositionEmbeddings else {
                throw .contextOverflow(needed: sequence.count, capacity: c.maxPositionEmbeddings)
            }
            for id in sequence where id < 0 || id >= c.vocabularySize {
                throw .tokenOutOfRange(id: id, vocabularySize: c.vocabularySize)
            }
            if let types = typeIDs?[b] {
                guard types.count == sequence.count else {
                    throw .invalidInput("sequence \(b) has \(sequence.count) ids but \(types.count) token types")
                }
                for t in types where t < 0 || t >= c.typeVocabularySize {
                    throw .invalidInput("token type \(t) in sequence \(b) is outside 0..<\(c.typeVocabularySize)")
                }
            }
        }
    }

    /// Runs the encoder on a batch of sequences of any lengths and returns the last hidden states.
    ///
    /// Sequences never see each other: each token attends only to the tokens of its own sequence, exactly as with
    /// padding and an attention mask (the batch is packed, so there is no padding to compute).
    ///
    /// - Parameters:
    ///   - ids: token ids `[batch][seq_b]`, each sequence non-empty and at most `max_position_embeddings` long.
    ///   - typeIDs: token types (segment ids) `[batch][seq_b]`; all 0 when `nil`.
    /// - Returns: hidden states `[batch][seq_b * hidden]` (row `t` of sequence `b` starts at `t * hidden`).
    public func encode(ids: [[Int]], typeIDs: [[Int]]? = nil) throws(ModelError) -> [[Float]] {
        let h = configuration.hiddenSize
        return try withHiddenStates(ids: ids, typeIDs: typeIDs) { states, sequences in
            sequences.map { Array(states[$0.lowerBound * h..<$0.upperBound * h]) }
        }
    }

    /// Runs the encoder and lends `body` the last hidden states of the packed batch, without copying them.
    ///
    /// - Parameters:
    ///   - ids: token ids `[batch][seq_b]`, as for ``encode(ids:typeIDs:)``.
    ///   - typeIDs: token types `[batch][seq_b]`; all 0 when `nil`.
    ///   - body: receives the states `[tokens, hidden]` (all sequences one after another) and the token rows of each
    ///     sequence; the buffer is valid only during the call and must not escape it.
    public func withHiddenStates<Result>(
        ids: [[Int]], typeIDs: [[Int]]? = nil,
        _ body: (_ states: UnsafeBufferPointer<Float>, _ sequences: [Range<Int>]) -> Result
    ) throws(ModelError) -> Result {
        try validate(ids: ids, typeIDs: typeIDs)
        var sequences: [Range<Int>] = []
        sequences.reserveCapacity(ids.count)
        var tokens = 0
        for sequence in ids {
            sequences.append(tokens..<tokens + sequence.count)
            tokens += sequence.count
        }
        return lock.withLock { _ in
            guard tokens > 0 else { return body(UnsafeBufferPointer(start: nil, count: 0), sequences) }
            let states = forward(ids: ids, typeIDs: typeIDs, sequences: sequences, tokens: tokens)
            return body(UnsafeBufferPointer(start: states, count: tokens * configuration.hiddenSize), sequences)
        }
    }

    /// The forward pass over validated input (with `lock` held); returns hidden states `[tokens, hidden]` of the
    /// packed batch, in the workspace.
    private func forward(ids: [[Int]], typeIDs: [[Int]]?, sequences: [Range<Int>], tokens: Int) -> UnsafePointer<Float>
    {
        let c = configuration
        let h = c.hiddenSize
        let inter = c.intermediateSize
        let pool = self.pool
        let longest = sequences.map(\.count).max() ?? 0
        workspace.reserve(tokens: tokens, longest: longest, hidden: h, intermediate: inter, threads: pool.threadCount)
        let shape = AttentionShape(heads: c.headCount, kvHeads: c.headCount, headDim: c.headDim)
        let eps = c.layerNormEpsilon
        let rowChunk = 8
        let x = workspace.hidden
        let qkv = workspace.qkv
        let context = workspace.context
        let projected = workspace.projected
        let intermediate = workspace.intermediate
        let scratch = workspace.scratch
        let geluKind = self.geluKind

        // Embeddings: word + position + token type, then LayerNorm.
        var t = 0
        for (b, sequence) in ids.enumerated() {
            for (position, id) in sequence.enumerated() {
                let row = x + t * h
                let type = typeIDs?[b][position] ?? 0
                row.update(from: wordEmbeddings + id * h, count: h)
                addInPlace(row, positionEmbeddings + position * h, count: h)
                addInPlace(row, typeEmbeddings + type * h, count: h)
                t += 1
            }
        }
        let normWeight = embeddingNormWeight
        let normBias = embeddingNormBias
        pool.parallelRanges(tokens, minimumChunk: rowChunk) { rows in
            layerNorm(
                x + rows.lowerBound * h, weight: normWeight, bias: normBias, rows: rows.count, dim: h, eps: eps,
                into: x + rows.lowerBound * h)
        }

        for layer in layers {
            // Self-attention: Q, K and V side by side in `qkv`, straight from the (mapped) weights.
            multiplier.multiply(layer.query, x, tokens: tokens, into: qkv, yStride: 3 * h)
            multiplier.multiply(layer.key, x, tokens: tokens, into: qkv + h, yStride: 3 * h)
            multiplier.multiply(layer.value, x, tokens: tokens, into: qkv + 2 * h, yStride: 3 * h)
            pool.parallelRanges(tokens, minimumChunk: rowChunk) { rows in
                addBias(qkv + rows.lowerBound * 3 * h, layer.qkvBias, rows: rows.count, dim: 3 * h)
            }
            bidirectionalAttention(
                q: qkv, qStride: 3 * h, keys: qkv + h, values: qkv + 2 * h, kvStride: 3 * h,
                sequences: sequences, shape: shape, out: context, outStride: h, scratch: scratch, pool: pool)
            multiplier.multiply(layer.attentionOutput, context, tokens: tokens, into: projected)
            pool.parallelRanges(tokens, minimumChunk: rowChunk) { rows in
                for r in rows {
                    let y = projected + r * h
                    addInPlace(y, layer.attentionOutputBias, count: h)
                    addInPlace(y, x + r * h, count: h)
                    layerNorm(
                        y, weight: layer.attentionNormWeight, bias: layer.attentionNormBias, rows: 1, dim: h,
                        eps: eps, into: x + r * h)
                }
            }
            // Feed-forward.
            multiplier.multiply(layer.intermediate, x, tokens: tokens, into: intermediate)
            pool.parallelRanges(tokens, minimumChunk: rowChunk) { rows in
                for r in rows {
                    let y = intermediate + r * inter
                    addInPlace(y, layer.intermediateBias, count: inter)
                    gelu(y, count: inter, kind: geluKind)
                }
            }
            multiplier.multiply(layer.output, intermediate, tokens: tokens, into: projected)
            pool.parallelRanges(tokens, minimumChunk: rowChunk) { rows in
                for r in rows {
                    let y = projected + r * h
                    addInPlace(y, layer.outputBias, count: h)
                    addInPlace(y, x + r * h, count: h)
                    layerNorm(
                        y, weight: layer.outputNormWeight, bias: layer.outputNormBias, rows: 1, dim: h, eps: eps,
                        into: x + r * h)
                }
            }
        }
        return UnsafePointer(x)
    }
}

private func weightMatrix(
    _ data: UnsafePointer<Float>, rows: Int, columns: Int, name: String
) throws(ModelError) -> WeightMatrix {
    do {
        return try WeightMatrix(type: .f32, rows: rows, columns: columns, data: UnsafeRawPointer(data))
    } catch {
        // Unreachable after validation (positive shapes, F32); reported rather than trapped.
        throw .invalidMetadata(key: name, reason: "cannot be used as a [\(rows), \(columns)] matrix: \(error)")
    }
}
