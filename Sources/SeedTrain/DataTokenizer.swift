import Crypto
import Foundation
import SeedFormats
import SeedTokenizers

/// A tokenizer that turns documents into ids for training data, with the identity recorded in the manifest.
///
/// Documents are encoded as plain text: no BOS/EOS or post-processor tokens are added, and special-token text inside
/// a document (such as a literal `<|endoftext|>`) is encoded as ordinary text, so only the preparer places the
/// end-of-text token between documents.
public struct DatasetTokenizer: Sendable {
    /// Who made the ids (recorded in the manifest).
    public let identity: DataManifest.TokenizerIdentity
    private let encodeText: @Sendable (String) -> [Int]

    /// Number of token ids.
    public var vocabularySize: Int { identity.vocabSize }
    /// The id written after each document.
    public var endOfTextID: Int { identity.endOfTextId }

    /// Token texts tried, in order, as the end-of-text token when none is named.
    public static let endOfTextCandidates = [
        "<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>", "<|eot_id|>", "[SEP]",
    ]

    /// Encodes one document.
    public func encode(_ text: String) -> [Int] { encodeText(text) }

    /// A tokenizer from its identity and an encoding function (for custom tokenizers and tests). `encode` must
    /// return ids in `0..<identity.vocabSize` and be safe to call from several threads at once.
    public init(identity: DataManifest.TokenizerIdentity, encode: @escaping @Sendable (String) -> [Int]) {
        self.identity = identity
        self.encodeText = encode
    }

    /// Wraps a GGUF byte-level BPE tokenizer.
    ///
    /// - Parameters:
    ///   - name: recorded in the manifest (e.g. the model's `general.name`).
    ///   - endOfText: the text of the token to put between documents; nil picks the first of
    ///     ``endOfTextCandidates`` in the vocabulary, else the model's EOS token.
    /// - Throws: ``DataError/tokenizer(reason:)`` if the end-of-text token is not in the vocabulary.
    public init(bpe tokenizer: BPETokenizer, name: String, endOfText: String? = nil) throws(DataError) {
        let size = tokenizer.vocabularySize
        let texts = (0..<size).map { tokenizer.tokenString(for: $0) ?? "" }
        let id = try Self.pickEndOfText(
            endOfText, lookup: tokenizer.tokenID(for:), fallback: tokenizer.eosTokenID, vocabulary: name)
        identity = DataManifest.TokenizerIdentity(
            name: name, kind: "gguf", vocabSize: size, vocabularySha256: Self.vocabularyHash(texts),
            endOfTextId: id, endOfText: texts[id])
        encodeText = { tokenizer.encode($0, addSpecial: false, parseSpecial: false) }
    }

    /// Wraps a `tokenizer.json` tokenizer (no post-processor tokens, no truncation).
    ///
    /// - Throws: ``DataError/tokenizer(reason:)`` if the end-of-text token is not in the vocabulary.
    public init(huggingFace tokenizer: HFTokenizer, name: String, endOfText: String? = nil) throws(DataError) {
        let size = tokenizer.vocabularySize
        let texts = (0..<size).map { tokenizer.token(for: $0) ?? "" }
        let id = try Self.pickEndOfText(endOfText, lookup: tokenizer.tokenID(for:), fallback: nil, vocabulary: name)
        identity = DataManifest.TokenizerIdentity(
            name: name, kind: "tokenizer.json", vocabSize: size, vocabularySha256: Self.vocabularyHash(texts),
            endOfTextId: id, endOfText: texts[id])
        encodeText = { tokenizer.encode($0, addSpecialTokens: false, maxLength: Int.max).ids }
    }

    /// Loads the tokenizer of a GGUF model file, a `tokenizer.json` file, or a directory holding `tokenizer.json`.
    ///
    /// - Throws: ``DataError/tokenizer(reason:)`` for a missing path, an unreadable or unsupported file, or a
    ///   vocabulary without an end-of-text token.
    public static func load(path: String, endOfText: String? = nil) throws(DataError) -> DatasetTokenizer {
        switch DataFileSystem.kind(of: path) {
        case .missing:
            throw .tokenizer(reason: "\(path) does not exist (give a GGUF model, a tokenizer.json, or its directory)")
        case .directory:
            let json = path + "/tokenizer.json"
            guard DataFileSystem.kind(of: json) == .file else {
                throw .tokenizer(reason: "directory \(path) holds no tokenizer.json")
            }
            return try loadTokenizerJSON(json, name: DataFileSystem.baseName(of: path), endOfText: endOfText)
        case .other:
            throw .tokenizer(reason: "\(path) is not a regular file")
        case .file:
            break
        }
        if path.hasSuffix(".json") {
            let parent = DataFileSystem.baseName(of: DataFileSystem.parent(of: path))
            return try loadTokenizerJSON(path, name: parent, endOfText: endOfText)
        }
        let file: GGUFFile
        do {
            file = try GGUFFile(path: path)
        } catch {
            throw .tokenizer(reason: "\(path) is neither a GGUF model nor a tokenizer.json: \(error)")
        }
        let tokenizer: BPETokenizer
        do {
            tokenizer = try BPETokenizer(gguf: file)
        } catch {
            throw .tokenizer(reason: "cannot read the tokenizer of \(path): \(error)")
        }
        let name = file.modelName ?? DataFileSystem.baseName(of: path)
        return try DatasetTokenizer(bpe: tokenizer, name: name, endOfText: endOfText)
    }

    private static func loadTokenizerJSON(_ path: String, name: String, endOfText: String?) throws(DataError)
        -> DatasetTokenizer
    {
        let tokenizer: HFTokenizer
        do {
            tokenizer = try HFTokenizer(file: path)
        } catch {
            throw .tokenizer(reason: "cannot read \(path): \(error)")
        }
        return try DatasetTokenizer(huggingFace: tokenizer, name: name, endOfText: endOfText)
    }

    private static func pickEndOfText(
        _ requested: String?, lookup: (String) -> Int?, fallback: Int?, vocabulary: String
    ) throws(DataError) -> Int {
        if let requested {
            guard let id = lookup(requested) else {
                throw .tokenizer(reason: "end-of-text token '\(requested)' is not in the vocabulary of \(vocabulary)")
            }
            return id
        }
        for candidate in endOfTextCandidates {
            if let id = lookup(candidate) { return id }
        }
        if let fallback { return fallback }
        throw .tokenizer(
            reason: "the vocabulary of \(vocabulary) has none of "
                + endOfTextCandidates.joined(separator: ", ") + "; name one with --eot-token")
    }

    /// sha256 over the vocabulary: per id, the UTF-8 length as little-endian `uint32`, then the bytes.
    static func vocabularyHash(_ texts: [String]) -> String {
        var hasher = SHA256()
        for text in texts {
            let bytes = Array(text.utf8)
            withUnsafeBytes(of: UInt32(truncatingIfNeeded: bytes.count).littleEndian) {
                hasher.update(bufferPointer: $0)
            }
            bytes.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        }
        return DataFileSystem.hexString(hasher.finalize())
    }
}
