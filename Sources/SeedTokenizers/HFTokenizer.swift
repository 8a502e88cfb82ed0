import Foundation

/// A tokenizer loaded from a Hugging Face `tokenizer.json` (the `tokenizers` library's serialization).
///
/// Encoding follows the `tokenizers` pipeline: added tokens are cut out of the raw text (non-normalized ones
/// first, then normalized ones from the normalized text), each remaining stretch is normalized, pre-tokenized into
/// words and encoded by the model, the result is truncated and the post-processor adds special tokens.
///
/// Supported components:
/// - normalizers: `BertNormalizer`, `Lowercase`, `NFC`, `NFD`, `NFKC`, `NFKD`, `StripAccents`, `Replace`
///   (string pattern), `Prepend`, `Strip`, `Sequence`;
/// - pre-tokenizers: `BertPreTokenizer`, `Whitespace`, `WhitespaceSplit`, `Punctuation`, `Digits`, `ByteLevel`,
///   `Metaspace`, `Split` (a string pattern, or one of the GPT-2, Llama 3 and Qwen 2 regular expressions listed in
///   ``PreTokenizer/knownExpressions``), `Sequence`;
/// - models: `WordPiece`, `BPE` (byte-level, or scalar-level with byte fallback), `WordLevel`;
/// - post-processors: `TemplateProcessing`, `BertProcessing`, `RobertaProcessing`, `ByteLevel`, `Sequence`;
/// - decoders: `WordPiece`, `ByteLevel`, `Metaspace`, `Replace`, `ByteFallback`, `Fuse`, `Strip`, `Sequence`.
///
/// Anything else is rejected with ``TokenizerError/unsupportedComponent(kind:type:)``. The file's `padding` block
/// is not applied; it is exposed as ``filePaddingLength`` for callers that want it. The tokenizer is immutable and
/// can be shared across threads.
public final class HFTokenizer: Sendable {
    /// The result of encoding one text.
    public struct Encoding: Sendable, Equatable {
        /// Token ids, special tokens included.
        public var ids: [Int]
        /// The token string of each id (`##` marks WordPiece continuations; byte-level BPE tokens are in
        /// byte-level form).
        public var tokens: [String]
        /// 1 for every token (no padding is applied by ``HFTokenizer/encode(_:addSpecialTokens:maxLength:)``).
        public var attentionMask: [Int]
        /// The segment (type) id of each token.
        public var typeIDs: [Int]
        /// The length, special tokens included, before truncation.
        public var untruncatedLength: Int

        /// Whether truncation dropped tokens.
        public var truncated: Bool { untruncatedLength > ids.count }

        /// Creates an encoding from its parts.
        public init(ids: [Int], tokens: [String], attentionMask: [Int], typeIDs: [Int], untruncatedLength: Int) {
            self.ids = ids
            self.tokens = tokens
            self.attentionMask = attentionMask
            self.typeIDs = typeIDs
            self.untruncatedLength = untruncatedLength
        }
    }

    /// One more than the largest id of the model vocabulary and the added tokens.
    public let vocabularySize: Int
    /// The padding token id: the file's `padding.pad_id`, else the id of `[PAD]`, `<pad>` or `<|padding|>`.
    public let padTokenID: Int?
    /// The file's `truncation.max_length`, if it has a truncation block. Used by `encode` when `maxLength` is nil.
    public let fileTruncation: Int?
    /// The file's fixed padding length (`padding.strategy.Fixed`), if any. Never applied by `encode`.
    public let filePaddingLength: Int?

    let normalizer: HFNormalizer?
    let preTokenizer: HFPreTokenizer?
    let model: HFModel
    let postProcessor: HFPostProcessor?
    let decoder: HFDecoder?
    /// Added tokens matched in raw text / in normalized text.
    let rawMatcher: HFAddedTokenMatcher
    let normalizedMatcher: HFAddedTokenMatcher
    /// Token text by id (`nil` for ids no token uses).
    let idToToken: [String?]
    let tokenIndex: HFVocabularyIndex
    /// Ids of added tokens marked `special` (skipped by `decode(_:skipSpecialTokens: true)`).
    let specialIDs: Set<Int>
    let truncateLeft: Bool

    /// Loads a `tokenizer.json` file.
    /// - Throws: ``TokenizerError/unreadableFile(path:)`` if the file cannot be read, or any error of
    ///   ``init(json:)``.
    public convenience init(file path: String) throws(TokenizerError) {
        guard let data = FileManager.default.contents(atPath: path) else { throw .unreadableFile(path: path) }
        try self.init(json: data)
    }

    /// Parses the contents of a `tokenizer.json`.
    /// - Throws: ``TokenizerError/invalidTokenizerJSON(_:)`` for malformed JSON or missing/ill-typed fields,
    ///   ``TokenizerError/unsupportedComponent(kind:type:)`` for component types this module does not implement,
    ///   ``TokenizerError/missingUnknownToken(_:)`` when the model's unknown token is not in its vocabulary,
    ///   ``TokenizerError/malformedMerge(rank:rule:)`` for a bad BPE merge.
    public init(json data: Data) throws(TokenizerError) {
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: data, options: [])
        } catch {
            throw .invalidTokenizerJSON("not valid JSON (\(error.localizedDescription))")
        }
        let root = try HFJSONObject(parsed, path: "tokenizer")
        guard root.has("model") else { throw .invalidTokenizerJSON("tokenizer.model is missing") }

        let normalizer = try root.optionalObject("normalizer").map { json throws(TokenizerError) in
            try HFNormalizer(json: json)
        }
        let preTokenizer = try root.optionalObject("pre_tokenizer").map { json throws(TokenizerError) in
            try HFPreTokenizer(json: json)
        }
        let decoder = try root.optionalObject("decoder").map { json throws(TokenizerError) in
            try HFDecoder(json: json)
        }
        let byteLevel =
            preTokenizer?.isByteLevel == true || decoder == .byteLevel
            || { if case .sequence(let steps) = decoder { return steps.contains(.byteLevel) } else { return false } }()
        let (model, vocabulary) = try HFModel.parse(try root.object("model"), byteLevel: byteLevel)

        var addedTokens: [HFAddedToken] = []
        if root.has("added_tokens") {
            for json in try root.objects("added_tokens") { addedTokens.append(try HFAddedToken(json: json)) }
        }

        var maxID = vocabulary.values.max() ?? -1
        for token in addedTokens { maxID = max(maxID, token.id) }
        var idToToken = [String?](repeating: nil, count: maxID + 1)
        var allTokens = vocabulary
        for (token, id) in vocabulary { idToToken[id] = token }
        for token in addedTokens {
            idToToken[token.id] = token.content
            allTokens[token.content] = token.id
        }
        let tokenIndex = HFVocabularyIndex(allTokens)

        let postProcessor = try root.optionalObject("post_processor").map { json throws(TokenizerError) in
            try HFPostProcessor(json: json) { tokenIndex[$0] }
        }

        var fileTruncation: Int? = nil
        var truncateLeft = false
        if let truncation = try root.optionalObject("truncation") {
            fileTruncation = try truncation.int("max_length")
            truncateLeft = try truncation.optionalString("direction") == "Left"
        }
        var filePaddingLength: Int? = nil
        var padTokenID: Int? = nil
        if let padding = try root.optionalObject("padding") {
            padTokenID = try padding.optionalInt("pad_id")
            if let strategy = padding.values["strategy"] as? [String: Any] {
                filePaddingLength = HFJSONObject.integer(strategy["Fixed"])
            }
        }
        if padTokenID == nil {
            padTokenID = ["[PAD]", "<pad>", "<|padding|>"].lazy.compactMap { tokenIndex[$0] }.first
        }

        self.normalizer = normalizer
        self.preTokenizer = preTokenizer
        self.model = model
        self.postProcessor = postProcessor
        self.decoder = decoder
        self.rawMatcher = HFAddedTokenMatcher(tokens: addedTokens.filter { !$0.normalized })
        self.normalizedMatcher = HFAddedTokenMatcher(tokens: addedTokens.filter(\.normalized)) { content in
            normalizer?.apply(content) ?? content
        }
        self.idToToken = idToToken
        self.tokenIndex = tokenIndex
        self.specialIDs = Set(addedTokens.filter(\.special).map(\.id))
        self.vocabularySize = maxID + 1
        self.padTokenID = padTokenID
        self.fileTruncation = fileTruncation
        self.filePaddingLength = filePaddingLength
        self.truncateLeft = truncateLeft
    }

    // MARK: - Vocabulary

    /// The id of the token spelled exactly `token` (model vocabulary or added tokens), or `nil`.
    public func tokenID(for token: String) -> Int? {
        tokenIndex[token]
    }

    /// The text of token `id`, or `nil` if no token has that id.
    public func token(for id: Int) -> String? {
        guard id >= 0 && id < idToToken.count else { return nil }
        return idToToken[id]
    }

    // MARK: - Encoding

    /// Encodes one text.
    ///
    /// - Parameters:
    ///   - addSpecialTokens: Let the post-processor add its special tokens (e.g. `[CLS]` ... `[SEP]`).
    ///   - maxLength: Maximum number of ids, special tokens included; overrides the file's truncation (nil = use the
    ///     file's truncation block, if any). The text's tokens are cut so that the total fits. Padding is not applied.
    /// - Returns: The encoding. Never fails: characters the model cannot represent become its unknown token.
    public func encode(_ text: String, addSpecialTokens: Bool = true, maxLength: Int? = nil) -> Encoding {
        encode(text, pair: nil, addSpecialTokens: addSpecialTokens, maxLength: maxLength)
    }

    /// Encodes a pair of texts (e.g. question and passage) with the post-processor's pair template.
    ///
    /// Truncation is `LongestFirst`: the longer sequence gives up tokens first.
    public func encode(
        _ text: String, pair: String?, addSpecialTokens: Bool = true, maxLength: Int? = nil
    ) -> Encoding {
        var first = encodeSequence(text)
        var second = pair.map(encodeSequence)
        let added = addSpecialTokens ? (postProcessor?.addedCount(pair: second != nil) ?? 0) : 0
        let untruncated = first.count + (second?.count ?? 0) + added
        if let limit = maxLength ?? fileTruncation {
            let budget = max(0, limit - added)
            if var other = second {
                let (firstLength, secondLength) = Self.longestFirst(first.count, other.count, budget: budget)
                truncate(&first, to: firstLength)
                truncate(&other, to: secondLength)
                second = other
            } else {
                truncate(&first, to: budget)
            }
        }
        let ids: [Int]
        let typeIDs: [Int]
        if addSpecialTokens, let postProcessor {
            (ids, typeIDs) = postProcessor.process(first, second)
        } else {
            ids = first + (second ?? [])
            typeIDs = [Int](repeating: 0, count: first.count) + [Int](repeating: 1, count: second?.count ?? 0)
        }
        return Encoding(
            ids: ids, tokens: ids.map { token(for: $0) ?? "" },
            attentionMask: [Int](repeating: 1, count: ids.count), typeIDs: typeIDs, untruncatedLength: untruncated)
    }

    private func truncate(_ ids: inout [Int], to length: Int) {
        guard ids.count > length else { return }
        if truncateLeft {
            ids.removeFirst(ids.count - length)
        } else {
            ids.removeLast(ids.count - length)
        }
    }

    /// `tokenizers`' `LongestFirst` split of `budget` between two sequences: the shorter keeps its length when the
    /// longer can take the rest; otherwise both get half.
    static func longestFirst(_ a: Int, _ b: Int, budget: Int) -> (Int, Int) {
        guard a + b > budget else { return (a, b) }
        let swap = a > b
        var short = swap ? b : a
        var long: Int
        long = short > budget ? short : max(short, budget - short)
        if short + long > budget {
            short = budget / 2
            long = short + budget % 2
        }
        return swap ? (long, short) : (short, long)
    }

    /// Ids of one text without special tokens or truncation.
    private func encodeSequence(_ text: String) -> [Int] {
        var ids: [Int] = []
        let scalars = Array(text.unicodeScalars)
        for segment in rawMatcher.segments(of: scalars) {
            switch segment {
            case .token(let id):
                ids.append(id)
            case .text(let range):
                let raw = HFPreTokenizer.string(scalars[range])
                let normalized = normalizer?.apply(raw) ?? raw
                let normalizedScalars = Array(normalized.unicodeScalars)
                for inner in normalizedMatcher.segments(of: normalizedScalars) {
                    switch inner {
                    case .token(let id):
                        ids.append(id)
                    case .text(let innerRange):
                        let piece = HFPreTokenizer.string(normalizedScalars[innerRange])
                        let isFirst = range.lowerBound == 0 && innerRange.lowerBound == 0
                        let words = preTokenizer?.split(piece, isFirstSegment: isFirst) ?? [piece]
                        for word in words { model.tokenize(word, into: &ids) }
                    }
                }
            }
        }
        return ids
    }

    // MARK: - Decoding

    /// Decodes ids to text with the file's decoder (tokens joined by spaces when the file has none).
    ///
    /// - Parameter skipSpecialTokens: Omit added tokens marked `special` (`[CLS]`, `[SEP]`, `<|endoftext|>`, ...).
    /// - Throws: ``TokenizerError/invalidTokenID(_:vocabularySize:)`` for an id that names no token.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = true) throws(TokenizerError) -> String {
        var tokens: [String] = []
        tokens.reserveCapacity(ids.count)
        for id in ids {
            guard let text = token(for: id) else { throw .invalidTokenID(id, vocabularySize: vocabularySize) }
            if skipSpecialTokens && specialIDs.contains(id) { continue }
            tokens.append(text)
        }
        guard let decoder else { return tokens.joined(separator: " ") }
        return decoder.decode(tokens)
    }
}
