import Foundation

/// `manifest.json` of a prepared token dataset: what was tokenised, with which tokenizer, and where the shards are.
///
/// A dataset directory holds `manifest.json` plus `train-NNNNN.bin` and `validation-NNNNN.bin` shards: flat arrays of
/// little-endian token ids (`uint16` when the vocabulary has at most 65536 tokens, else `uint32`), documents in input
/// order, each document followed by the end-of-text token. Keys are snake_case. The manifest has no timestamp, so
/// preparing the same inputs twice gives byte-identical directories.
public struct DataManifest: Codable, Sendable, Equatable {
    /// Always ``formatName``.
    public var format: String
    /// ``currentVersion`` for manifests this code writes.
    public var version: Int
    /// The tokenizer that produced the ids.
    public var tokenizer: TokenizerIdentity
    /// Element type of the shards.
    public var dtype: TokenDType
    /// The options that shaped the dataset.
    public var options: Options
    /// The inputs, in the order their documents appear in the shards.
    public var sources: [Source]
    /// The training split.
    public var train: Split
    /// The validation split (possibly without shards).
    public var validation: Split
    /// Tokens in both splits.
    public var totalTokens: Int

    public static let formatName = "seed-token-shards"
    public static let currentVersion = 1
    /// Name of the manifest file inside a dataset directory.
    public static let fileName = "manifest.json"

    /// Who made the token ids: enough to tell two tokenizers apart.
    public struct TokenizerIdentity: Codable, Sendable, Equatable {
        /// A human-readable name (the model's `general.name`, or the tokenizer file's directory).
        public var name: String
        /// `gguf` (byte-level BPE read from a GGUF file) or `tokenizer.json`.
        public var kind: String
        /// Number of token ids (`0..<vocab_size`).
        public var vocabSize: Int
        /// sha256 over the vocabulary: for each id in order, its token text's UTF-8 byte count as a little-endian
        /// `uint32`, then those bytes.
        public var vocabularySha256: String
        /// The token written after every document.
        public var endOfTextId: Int
        /// That token's text.
        public var endOfText: String

        public init(
            name: String, kind: String, vocabSize: Int, vocabularySha256: String, endOfTextId: Int, endOfText: String
        ) {
            self.name = name
            self.kind = kind
            self.vocabSize = vocabSize
            self.vocabularySha256 = vocabularySha256
            self.endOfTextId = endOfTextId
            self.endOfText = endOfText
        }

        enum CodingKeys: String, CodingKey {
            case name, kind
            case vocabSize = "vocab_size"
            case vocabularySha256 = "vocabulary_sha256"
            case endOfTextId = "end_of_text_id"
            case endOfText = "end_of_text"
        }
    }

    /// Options recorded so a rerun can tell whether the output already holds this dataset.
    public struct Options: Codable, Sendable, Equatable {
        /// Fraction of documents (by seeded hash) in the validation split.
        public var validationFraction: Double
        /// Seed of the split hash.
        public var splitSeed: UInt64
        /// Maximum tokens per shard.
        public var shardTokens: Int
        /// JSONL field holding the text.
        public var jsonlField: String

        enum CodingKeys: String, CodingKey {
            case validationFraction = "validation_fraction"
            case splitSeed = "split_seed"
            case shardTokens = "shard_tokens"
            case jsonlField = "jsonl_field"
        }
    }

    /// One input file.
    public struct Source: Codable, Sendable, Equatable {
        /// The path as given (or found in a given directory).
        public var path: String
        /// How it was split into documents: `text`, `fortunes` or `jsonl`.
        public var format: String
        public var bytes: Int
        public var sha256: String
        /// Documents taken from it (empty ones are skipped).
        public var documents: Int
    }

    /// One split's shards.
    public struct Split: Codable, Sendable, Equatable {
        public var documents: Int
        public var tokens: Int
        /// The largest token id in the split (-1 when empty), checked against the model's vocabulary.
        public var maxTokenId: Int
        public var shards: [Shard]

        enum CodingKeys: String, CodingKey {
            case documents, tokens, shards
            case maxTokenId = "max_token_id"
        }
    }

    /// One shard file.
    public struct Shard: Codable, Sendable, Equatable {
        /// File name inside the dataset directory.
        public var file: String
        public var tokens: Int
        /// sha256 of the file, lowercase hex.
        public var sha256: String
    }

    enum CodingKeys: String, CodingKey {
        case format, version, tokenizer, dtype, options, sources, train, validation
        case totalTokens = "total_tokens"
    }

    /// The split named `train` or `validation`.
    public func split(_ name: DataSplit) -> Split {
        name == .train ? train : validation
    }

    /// Reads and checks `directory/manifest.json`.
    ///
    /// - Throws: ``DataError/badManifest(path:reason:)`` if it is missing, not JSON of this shape, of another format
    ///   or version, or inconsistent (totals that do not add up, shard files outside the directory).
    public static func read(directory: String) throws(DataError) -> DataManifest {
        let path = directory + "/" + fileName
        guard DataFileSystem.kind(of: directory) == .directory else {
            throw .badManifest(path: path, reason: "dataset directory \(directory) does not exist")
        }
        let bytes: [UInt8]
        do {
            bytes = try DataFileSystem.readFile(path)
        } catch {
            throw .badManifest(path: path, reason: error.reason + " (is this a dataset from `seed data prepare`?)")
        }
        let manifest: DataManifest
        do {
            manifest = try JSONDecoder().decode(DataManifest.self, from: Data(bytes))
        } catch {
            throw .badManifest(path: path, reason: describeDecodingError(error))
        }
        try manifest.check(path: path)
        return manifest
    }

    func check(path: String) throws(DataError) {
        guard format == Self.formatName else {
            throw .badManifest(path: path, reason: "format is '\(format)', expected '\(Self.formatName)'")
        }
        guard version == Self.currentVersion else {
            throw .badManifest(
                path: path, reason: "version \(version) is not supported (this build reads \(Self.currentVersion))")
        }
        guard tokenizer.vocabSize > 0, (0..<tokenizer.vocabSize).contains(tokenizer.endOfTextId) else {
            throw .badManifest(path: path, reason: "tokenizer vocab_size/end_of_text_id are out of range")
        }
        guard dtype == TokenDType.fitting(vocabularySize: tokenizer.vocabSize) else {
            throw .badManifest(path: path, reason: "dtype \(dtype.rawValue) does not fit vocab_size")
        }
        for (name, split) in [("train", train), ("validation", validation)] {
            guard split.shards.reduce(0, { $0 + $1.tokens }) == split.tokens else {
                throw .badManifest(path: path, reason: "\(name) shard token counts do not add up to \(split.tokens)")
            }
            guard split.maxTokenId < tokenizer.vocabSize else {
                throw .badManifest(path: path, reason: "\(name) max_token_id is outside the vocabulary")
            }
            for shard in split.shards
            where shard.file.isEmpty || shard.file.contains("/") || shard.file.hasPrefix(".") || shard.tokens < 0 {
                throw .badManifest(path: path, reason: "invalid shard entry '\(shard.file)'")
            }
        }
        guard train.tokens + validation.tokens == totalTokens else {
            throw .badManifest(path: path, reason: "total_tokens is not the sum of the splits")
        }
    }

    /// The manifest as written to disk: pretty-printed, keys sorted, trailing newline.
    func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // Encoding plain value types cannot fail.
        let data = (try? encoder.encode(self)) ?? Data()
        return Array(data) + [UInt8(ascii: "\n")]
    }
}

/// A dataset split.
public enum DataSplit: String, Sendable, CaseIterable, Codable {
    case train
    case validation
}

/// Element type of token shards.
public enum TokenDType: String, Codable, Sendable {
    case uint16
    case uint32

    /// Bytes per token.
    public var byteSize: Int { self == .uint16 ? 2 : 4 }

    /// `uint16` when every id of a `vocabularySize`-token vocabulary fits in 16 bits, else `uint32`.
    public static func fitting(vocabularySize: Int) -> TokenDType {
        vocabularySize <= 65536 ? .uint16 : .uint32
    }
}

/// A `DecodingError` as one line naming the JSON path.
func describeDecodingError(_ error: any Error) -> String {
    func path(_ codingPath: [any CodingKey]) -> String {
        let joined = codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        return joined.isEmpty ? "the top level" : "'\(joined.replacingOccurrences(of: ".[", with: "["))'"
    }
    guard let error = error as? DecodingError else { return "\(error)" }
    switch error {
    case .keyNotFound(let key, let context):
        return "missing key \(path(context.codingPath + [key]))"
    case .typeMismatch(let type, let context):
        return "wrong type at \(path(context.codingPath)): expected \(type)"
    case .valueNotFound(let type, let context):
        return "missing value at \(path(context.codingPath)): expected \(type)"
    case .dataCorrupted(let context):
        let underlying = (context.underlyingError as NSError?)?.localizedDescription ?? context.debugDescription
        return context.codingPath.isEmpty
            ? "not valid JSON (\(underlying))" : "\(path(context.codingPath)): \(underlying)"
    @unknown default:
        return "\(error)"
    }
}
