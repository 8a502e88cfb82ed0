import Synchronization

/// A byte-level BPE tokenizer (GPT-2 style), compatible with llama.cpp's `tokenizer.ggml.model = "gpt2"`.
///
/// Encoding: special tokens are cut out of the raw text first (longest first); the remaining text is split by the
/// ``PreTokenizer``, each piece's UTF-8 bytes become byte-level symbols, merges are applied lowest rank first
/// (leftmost first among equal ranks) and the final symbols are looked up in the vocabulary. Decoding maps token text
/// back through the byte-level table, so `decode(encode(s))` reproduces the bytes of `s` exactly.
///
/// Token ids are `Int` in the public API (stored internally as `Int32`). The tokenizer is immutable after
/// initialization except for an internal, lock-protected cache of encoded pieces, so one instance can be shared
/// across threads.
public final class BPETokenizer: Sendable {
    /// Number of tokens in the vocabulary; valid ids are `0..<vocabularySize`.
    public let vocabularySize: Int
    /// The pre-tokenizer that splits raw text into pieces.
    public let preTokenizer: PreTokenizer
    /// Beginning-of-sequence token id, if the model has one.
    public let bosTokenID: Int?
    /// End-of-sequence token id, if the model has one.
    public let eosTokenID: Int?
    /// Whether `encode(_:addSpecial:parseSpecial:)` prepends the BOS token when `addSpecial` is true.
    public let addBOS: Bool
    /// Whether `encode(_:addSpecial:parseSpecial:)` appends the EOS token when `addSpecial` is true.
    public let addEOS: Bool
    /// Ids that end generation: the EOS token plus every control token of the vocabulary whose text is one of
    /// ``endOfGenerationTokenTexts`` (`<|im_end|>`, `<|endoftext|>`, `<|eot_id|>`, `<end_of_turn>`, ...).
    public let endOfGenerationIDs: Set<Int>

    /// Texts of the tokens that mark the end of a turn or of generation in common chat formats.
    public static let endOfGenerationTokenTexts: [String] = [
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>", "<|endoftext|>",
        "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>",
    ]

    /// Largest supported vocabulary (ids and virtual merge symbols must fit in 31 bits).
    static let maximumVocabularySize = 1 << 30

    let tokens: [String]
    let types: [TokenType]
    let textIndex: TokenTextIndex
    /// `left << 32 | right` → `rank << 32 | merged`, where ids at or above `vocabularySize` are virtual symbols.
    let merges: PairTable
    /// Initial BPE symbol for each byte value (the id of its byte-level character, or a virtual symbol).
    let byteSymbols: [Int32]
    /// For each virtual symbol (id - vocabularySize): the real tokens to emit if it survives merging.
    let virtualFallbacks: [[Int32]]
    /// Decoded bytes of every token: `decodedBytes[decodedOffsets[id] ..< decodedOffsets[id + 1]]`.
    let decodedBytes: [UInt8]
    let decodedOffsets: [Int32]
    /// Tokens whose decoded text is omitted when skipping special tokens.
    let skippable: [Bool]
    let specialMatcher: SpecialTokenMatcher
    let pieceCache = Mutex(PieceCache())

    /// Creates a tokenizer from GGUF-style vocabulary data.
    ///
    /// - Parameters:
    ///   - tokens: The vocabulary (`tokenizer.ggml.tokens`): byte-level text for normal tokens, literal text for
    ///     control and user-defined tokens. The index is the id.
    ///   - tokenTypes: llama.cpp token types (`tokenizer.ggml.token_type`, see ``TokenType``), one per token; `nil`
    ///     makes every token normal except the BOS and EOS tokens, which become control tokens.
    ///   - merges: Merge rules `"left right"` (`tokenizer.ggml.merges`); the index is the rank (lower merges first).
    ///   - preTokenizer: The `tokenizer.ggml.pre` name, e.g. `"smollm"`, `"gpt2"`, `"llama-bpe"`, `"qwen2"`.
    ///   - bosTokenID: `tokenizer.ggml.bos_token_id`, if any.
    ///   - eosTokenID: `tokenizer.ggml.eos_token_id`, if any.
    ///   - addBOS: `tokenizer.ggml.add_bos_token`.
    ///   - addEOS: `tokenizer.ggml.add_eos_token`.
    /// - Throws: ``TokenizerError`` for an empty vocabulary, a type array of the wrong length or with values outside
    ///   0...6, a malformed merge rule, an unknown pre-tokenizer name, or BOS/EOS ids outside the vocabulary.
    public init(
        tokens: [String], tokenTypes: [Int32]?, merges: [String], preTokenizer: String,
        bosTokenID: Int?, eosTokenID: Int?, addBOS: Bool, addEOS: Bool
    ) throws(TokenizerError) {
        guard !tokens.isEmpty else { throw .emptyVocabulary }
        guard tokens.count <= Self.maximumVocabularySize else { throw .vocabularyTooLarge(tokens.count) }
        let vocabularySize = tokens.count
        for (role, id) in [("BOS", bosTokenID), ("EOS", eosTokenID)] {
            if let id, !(0..<vocabularySize).contains(id) {
                throw .specialTokenOutOfRange(role: role, tokenID: id, vocabularySize: vocabularySize)
            }
        }
        if addBOS && bosTokenID == nil { throw .missingSpecialToken(role: "BOS") }
        if addEOS && eosTokenID == nil { throw .missingSpecialToken(role: "EOS") }

        var types: [TokenType]
        if let tokenTypes {
            guard tokenTypes.count == vocabularySize else {
                throw .tokenTypeCountMismatch(tokens: vocabularySize, tokenTypes: tokenTypes.count)
            }
            types = []
            types.reserveCapacity(vocabularySize)
            for (id, raw) in tokenTypes.enumerated() {
                guard let type = TokenType(rawValue: raw) else { throw .invalidTokenType(tokenID: id, type: raw) }
                types.append(type)
            }
        } else {
            types = [TokenType](repeating: .normal, count: vocabularySize)
            for id in [bosTokenID, eosTokenID].compactMap({ $0 }) { types[id] = .control }
        }

        self.preTokenizer = try PreTokenizer(name: preTokenizer)
        self.vocabularySize = vocabularySize
        self.bosTokenID = bosTokenID
        self.eosTokenID = eosTokenID
        self.addBOS = addBOS
        self.addEOS = addEOS
        self.tokens = tokens
        self.types = types
        let textIndex = TokenTextIndex(tokens: tokens)
        self.textIndex = textIndex

        var builder = SymbolBuilder(textIndex: textIndex, vocabularySize: vocabularySize)
        self.byteSymbols = ByteLevel.byteToUTF8.map { builder.symbol(for: $0) }
        self.merges = try builder.buildMerges(merges)
        self.virtualFallbacks = builder.virtualTexts.map { text in
            // llama.cpp emits the single-character tokens of an unknown symbol and drops the rest.
            var fallback: [Int32] = []
            for scalar in String(decoding: text, as: UTF8.self).unicodeScalars {
                if let id = textIndex.id(for: Array(String(scalar).utf8)) { fallback.append(id) }
            }
            return fallback
        }

        var decodedBytes: [UInt8] = []
        decodedBytes.reserveCapacity(textIndex.storage.count)
        var decodedOffsets: [Int32] = [0]
        decodedOffsets.reserveCapacity(vocabularySize + 1)
        var skippable = [Bool](repeating: false, count: vocabularySize)
        for id in 0..<vocabularySize {
            switch types[id] {
            case .normal, .undefined:
                ByteLevel.appendDecoded(tokens[id], to: &decodedBytes)
            case .byte:
                if let byte = Self.parseByteToken(tokens[id]) {
                    decodedBytes.append(byte)
                } else {
                    decodedBytes.append(contentsOf: tokens[id].utf8)
                }
            case .userDefined:
                decodedBytes.append(contentsOf: tokens[id].utf8)
            case .control, .unknown, .unused:
                decodedBytes.append(contentsOf: tokens[id].utf8)
                skippable[id] = true
            }
            decodedOffsets.append(Int32(decodedBytes.count))
        }
        self.decodedBytes = decodedBytes
        self.decodedOffsets = decodedOffsets
        self.skippable = skippable
        self.specialMatcher = SpecialTokenMatcher(types: types, textIndex: textIndex)

        var endOfGeneration = Set<Int>()
        if let eosTokenID { endOfGeneration.insert(eosTokenID) }
        for text in Self.endOfGenerationTokenTexts {
            if let id = textIndex.id(for: Array(text.utf8)), types[Int(id)] == .control {
                endOfGeneration.insert(Int(id))
            }
        }
        self.endOfGenerationIDs = endOfGeneration
    }

    /// `<0xAB>` → 0xAB.
    private static func parseByteToken(_ text: String) -> UInt8? {
        let utf8 = Array(text.utf8)
        guard utf8.count == 6, utf8[0] == UInt8(ascii: "<"), utf8[1] == UInt8(ascii: "0"),
            utf8[2] == UInt8(ascii: "x"), utf8[5] == UInt8(ascii: ">")
        else { return nil }
        return UInt8(String(decoding: utf8[3..<5], as: UTF8.self), radix: 16)
    }

    // MARK: - Vocabulary queries

    /// The id of the token whose vocabulary text is exactly `text` (byte for byte, no normalization), or `nil`.
    /// Normal tokens are spelled in byte-level form (`"Ġthe"` for " the").
    public func tokenID(for text: String) -> Int? {
        textIndex.id(for: Array(text.utf8)).map(Int.init)
    }

    /// The vocabulary text of token `id` (byte-level form for normal tokens), or `nil` if `id` is out of range.
    public func tokenString(for id: Int) -> String? {
        guard (0..<vocabularySize).contains(id) else { return nil }
        return tokens[id]
    }

    /// The llama.cpp type of token `id`, or `nil` if `id` is out of range.
    public func tokenType(for id: Int) -> TokenType? {
        guard (0..<vocabularySize).contains(id) else { return nil }
        return types[id]
    }

    /// Whether `id` is a control token (`<|im_start|>`, `<|endoftext|>`, ...). `false` for out-of-range ids.
    public func isControl(_ id: Int) -> Bool {
        tokenType(for: id) == .control
    }

    /// Whether generating `id` should end generation (see ``endOfGenerationIDs``).
    public func isEndOfGeneration(_ id: Int) -> Bool {
        endOfGenerationIDs.contains(id)
    }

    // MARK: - Decoding

    /// The exact bytes that `ids` stand for.
    ///
    /// Normal tokens are mapped back through the byte-level table; control, unknown and unused tokens decode to their
    /// literal text unless `skipSpecial` is true; user-defined tokens always decode to their text.
    /// - Throws: ``TokenizerError/invalidTokenID(_:vocabularySize:)`` if an id is outside the vocabulary.
    public func decode(_ ids: [Int], skipSpecial: Bool = false) throws(TokenizerError) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count * 4)
        for id in ids {
            try appendBytes(of: id, skipSpecial: skipSpecial, to: &bytes)
        }
        return bytes
    }

    /// `decode(_:skipSpecial:)` as a string; invalid UTF-8 (e.g. a cut multi-byte character) becomes U+FFFD.
    public func decodeString(_ ids: [Int], skipSpecial: Bool = false) throws(TokenizerError) -> String {
        String(decoding: try decode(ids, skipSpecial: skipSpecial), as: UTF8.self)
    }

    /// The bytes of one token (empty for a skipped special token).
    public func tokenBytes(for id: Int, skipSpecial: Bool = false) throws(TokenizerError) -> [UInt8] {
        var bytes: [UInt8] = []
        try appendBytes(of: id, skipSpecial: skipSpecial, to: &bytes)
        return bytes
    }

    func appendBytes(of id: Int, skipSpecial: Bool, to bytes: inout [UInt8]) throws(TokenizerError) {
        guard (0..<vocabularySize).contains(id) else {
            throw .invalidTokenID(id, vocabularySize: vocabularySize)
        }
        if skipSpecial && skippable[id] { return }
        bytes.append(contentsOf: decodedBytes[Int(decodedOffsets[id])..<Int(decodedOffsets[id + 1])])
    }
}

extension BPETokenizer {
    /// llama.cpp's token types (`tokenizer.ggml.token_type`).
    public enum TokenType: Int32, Sendable, CaseIterable {
        /// Not set by the converter; treated like `normal`.
        case undefined = 0
        /// An ordinary byte-level BPE token.
        case normal = 1
        /// The unknown token; decodes to its text like a control token.
        case unknown = 2
        /// A control token such as `<|im_start|>`: matched in raw text only when parsing special tokens, and omitted
        /// from decoded text when skipping special tokens.
        case control = 3
        /// A user-defined (added, non-special) token: always matched in raw text, always decoded as its text.
        case userDefined = 4
        /// An unused slot; decodes to its text like a control token.
        case unused = 5
        /// A raw byte token written `<0xAB>`; decodes to that byte.
        case byte = 6
    }
}

/// Assigns symbol ids while reading the merge rules: vocabulary ids for texts that are tokens, and virtual ids
/// (at or above the vocabulary size) for merge operands and results that are not, so that merging works on ids
/// exactly as llama.cpp's string-based merging does.
struct SymbolBuilder {
    let textIndex: TokenTextIndex
    let vocabularySize: Int
    private(set) var virtualTexts: [[UInt8]] = []
    private var virtualIDs: [[UInt8]: Int32] = [:]

    init(textIndex: TokenTextIndex, vocabularySize: Int) {
        self.textIndex = textIndex
        self.vocabularySize = vocabularySize
    }

    mutating func symbol(for text: [UInt8]) -> Int32 {
        text.withUnsafeBytes { symbol(for: $0) }
    }

    mutating func symbol(for text: UnsafeRawBufferPointer) -> Int32 {
        if let id = textIndex.id(for: text) { return id }
        let key = Array(text)
        if let id = virtualIDs[key] { return id }
        let id = Int32(vocabularySize + virtualTexts.count)
        virtualTexts.append(key)
        virtualIDs[key] = id
        return id
    }

    mutating func buildMerges(_ rules: [String]) throws(TokenizerError) -> PairTable {
        var table = PairTable(minimumCapacity: rules.count)
        var joined: [UInt8] = []
        for (rank, rule) in rules.enumerated() {
            var rule = rule
            let parsed: (Int32, Int32, Int32)? = rule.withUTF8 { utf8 in
                // Split at the first space after the first byte (a symbol is never empty).
                guard utf8.count >= 3, let space = utf8[1...].firstIndex(of: UInt8(ascii: " ")),
                    space + 1 < utf8.count
                else { return nil }
                let raw = UnsafeRawBufferPointer(utf8)
                let left = symbol(for: UnsafeRawBufferPointer(rebasing: raw[..<space]))
                let right = symbol(for: UnsafeRawBufferPointer(rebasing: raw[(space + 1)...]))
                joined.removeAll(keepingCapacity: true)
                joined.append(contentsOf: raw[..<space])
                joined.append(contentsOf: raw[(space + 1)...])
                return (left, right, symbol(for: joined))
            }
            guard let (left, right, merged) = parsed else { throw .malformedMerge(rank: rank, rule: rule) }
            // The first rule for a pair wins, as in llama.cpp.
            table.insertIfAbsent(PairTable.key(left, right), UInt64(rank) << 32 | UInt64(UInt32(bitPattern: merged)))
        }
        return table
    }
}
