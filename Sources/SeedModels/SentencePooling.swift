import Foundation

/// How sentence-transformers' `Pooling` module turns token states into one vector (`1_Pooling/config.json`).
///
/// When several modes are on, their vectors are concatenated in sentence-transformers' order: CLS, max, mean,
/// mean-sqrt-len.
public struct SentencePooling: Codable, Sendable, Equatable {
    public var dimension: Int
    /// The first token's state.
    public var clsToken: Bool
    /// The mean over the sequence's tokens (all of them, including `[CLS]` and `[SEP]`).
    public var meanTokens: Bool
    /// The per-channel maximum over the tokens.
    public var maxTokens: Bool
    /// The sum over the tokens divided by `sqrt(tokens)`.
    public var meanSqrtLengthTokens: Bool
    /// Position-weighted mean (not supported; must be false).
    public var weightedMeanTokens: Bool
    /// The last token's state (not supported; must be false).
    public var lastToken: Bool

    enum CodingKeys: String, CodingKey {
        case dimension = "word_embedding_dimension"
        case clsToken = "pooling_mode_cls_token"
        case meanTokens = "pooling_mode_mean_tokens"
        case maxTokens = "pooling_mode_max_tokens"
        case meanSqrtLengthTokens = "pooling_mode_mean_sqrt_len_tokens"
        case weightedMeanTokens = "pooling_mode_weightedmean_tokens"
        case lastToken = "pooling_mode_lasttoken"
    }

    /// Mean pooling over `dimension`-wide token states.
    public init(dimension: Int) {
        self.dimension = dimension
        clsToken = false
        meanTokens = true
        maxTokens = false
        meanSqrtLengthTokens = false
        weightedMeanTokens = false
        lastToken = false
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        dimension = try c.decode(Int.self, forKey: .dimension)
        clsToken = try c.decodeIfPresent(Bool.self, forKey: .clsToken) ?? false
        meanTokens = try c.decodeIfPresent(Bool.self, forKey: .meanTokens) ?? false
        maxTokens = try c.decodeIfPresent(Bool.self, forKey: .maxTokens) ?? false
        meanSqrtLengthTokens = try c.decodeIfPresent(Bool.self, forKey: .meanSqrtLengthTokens) ?? false
        weightedMeanTokens = try c.decodeIfPresent(Bool.self, forKey: .weightedMeanTokens) ?? false
        lastToken = try c.decodeIfPresent(Bool.self, forKey: .lastToken) ?? false
    }

    /// Reads and checks `1_Pooling/config.json` at `path`.
    public init(path: String) throws(ModelError) {
        guard let data = FileManager.default.contents(atPath: path) else { throw .missingFile(path: path) }
        do {
            self = try JSONDecoder().decode(SentencePooling.self, from: data)
        } catch let error as DecodingError {
            throw .invalidConfiguration(path: path, key: "", reason: describe(error))
        } catch {
            throw .invalidConfiguration(path: path, key: "", reason: "\(error)")
        }
        if weightedMeanTokens {
            throw .invalidConfiguration(path: path, key: "pooling_mode_weightedmean_tokens", reason: "is not supported")
        }
        if lastToken {
            throw .invalidConfiguration(path: path, key: "pooling_mode_lasttoken", reason: "is not supported")
        }
        if modeCount == 0 {
            throw .invalidConfiguration(path: path, key: "pooling_mode_mean_tokens", reason: "no pooling mode is on")
        }
    }

    private var modeCount: Int { [clsToken, maxTokens, meanTokens, meanSqrtLengthTokens].filter { $0 }.count }

    /// Width of the pooled vector: `dimension` times the number of modes that are on.
    public var outputDimension: Int { dimension * modeCount }

    /// Pools the token states of one sequence.
    ///
    /// - Parameter states: `[tokens * dimension]` (at least one token).
    /// - Returns: `[outputDimension]`.
    public func pool(_ states: [Float]) -> [Float] {
        states.withUnsafeBufferPointer { pool($0) }
    }

    /// Pools the token states of one sequence, read in place.
    ///
    /// - Parameter states: `[tokens * dimension]` (at least one token).
    /// - Returns: `[outputDimension]`.
    public func pool(_ states: UnsafeBufferPointer<Float>) -> [Float] {
        let d = dimension
        let tokens = d > 0 ? states.count / d : 0
        guard tokens > 0 else { return [Float](repeating: 0, count: outputDimension) }
        var out: [Float] = []
        out.reserveCapacity(outputDimension)
        if clsToken { out += states[0..<d] }
        if maxTokens {
            var m = Array(states[0..<d])
            for t in 1..<tokens {
                for i in 0..<d { m[i] = max(m[i], states[t * d + i]) }
            }
            out += m
        }
        if meanTokens || meanSqrtLengthTokens {
            // Sum in Double so long sequences lose nothing to rounding.
            var sum = [Double](repeating: 0, count: d)
            for t in 0..<tokens {
                for i in 0..<d { sum[i] += Double(states[t * d + i]) }
            }
            if meanTokens { out += sum.map { Float($0 / Double(tokens)) } }
            if meanSqrtLengthTokens { out += sum.map { Float($0 / Double(tokens).squareRoot()) } }
        }
        return out
    }
}

/// Sentence embeddings in the sentence-transformers pipeline: BERT → ``SentencePooling`` → L2 normalisation.
///
/// Takes token ids (the tokenizer is separate); for all-MiniLM-L6-v2 they are `[CLS] ... [SEP]` with at most
/// ``maxSequenceLength`` ids.
public final class SentenceEmbedder: Sendable {
    /// The encoder.
    public let model: BERTModel
    /// The pooling read from `1_Pooling/config.json`.
    public let pooling: SentencePooling
    /// Longest accepted id sequence: `max_seq_length` from `sentence_bert_config.json` (else the model's
    /// `max_position_embeddings`).
    public let maxSequenceLength: Int

    /// Width of the embeddings.
    public var dimension: Int { pooling.outputDimension }

    /// Loads a sentence-transformers directory: the BERT files, `1_Pooling/config.json` and (optional)
    /// `sentence_bert_config.json`.
    public init(directory: String, threads: Int? = nil) throws(ModelError) {
        let model = try BERTModel(directory: directory, threads: threads)
        let poolingPath = directory + "/1_Pooling/config.json"
        let pooling = try SentencePooling(path: poolingPath)
        guard pooling.dimension == model.configuration.hiddenSize else {
            throw .invalidConfiguration(
                path: poolingPath, key: "word_embedding_dimension",
                reason: "is \(pooling.dimension) but the model's hidden_size is \(model.configuration.hiddenSize)")
        }
        let maxPositions = model.configuration.maxPositionEmbeddings
        var maxLength = maxPositions
        let sbertPath = directory + "/sentence_bert_config.json"
        if let data = FileManager.default.contents(atPath: sbertPath) {
            struct SBERTConfig: Decodable {
                var maxSeqLength: Int?
                enum CodingKeys: String, CodingKey { case maxSeqLength = "max_seq_length" }
            }
            let config: SBERTConfig
            do {
                config = try JSONDecoder().decode(SBERTConfig.self, from: data)
            } catch let error as DecodingError {
                throw .invalidConfiguration(path: sbertPath, key: "", reason: describe(error))
            } catch {
                throw .invalidConfiguration(path: sbertPath, key: "", reason: "\(error)")
            }
            if let length = config.maxSeqLength {
                guard length > 0 && length <= maxPositions else {
                    throw .invalidConfiguration(
                        path: sbertPath, key: "max_seq_length",
                        reason: "\(length) is outside 1...\(maxPositions) (max_position_embeddings)")
                }
                maxLength = length
            }
        }
        self.model = model
        self.pooling = pooling
        self.maxSequenceLength = maxLength
    }

    /// Pooled vectors before normalisation.
    ///
    /// - Parameter ids: token ids `[batch][seq_b]`, each sequence 1 ... ``maxSequenceLength`` long.
    /// - Returns: `[batch][dimension]`.
    public func pooledEmbeddings(ids: [[Int]]) throws(ModelError) -> [[Float]] {
        for sequence in ids where sequence.count > maxSequenceLength {
            throw .contextOverflow(needed: sequence.count, capacity: maxSequenceLength)
        }
        let d = model.configuration.hiddenSize
        let pooling = self.pooling
        return try model.withHiddenStates(ids: ids) { states, sequences in
            sequences.map { rows in
                pooling.pool(UnsafeBufferPointer(rebasing: states[rows.lowerBound * d..<rows.upperBound * d]))
            }
        }
    }

    /// Unit-length sentence embeddings (sentence-transformers' `Normalize`; an all-zero vector stays zero).
    ///
    /// - Parameter ids: token ids `[batch][seq_b]`, each sequence 1 ... ``maxSequenceLength`` long.
    /// - Returns: `[batch][dimension]`.
    public func embed(ids: [[Int]]) throws(ModelError) -> [[Float]] {
        var vectors = try pooledEmbeddings(ids: ids)
        for b in vectors.indices {
            let norm = vectors[b].reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
            let scale = 1 / max(norm, 1e-12)
            for i in vectors[b].indices { vectors[b][i] *= scale }
        }
        return vectors
    }
}
