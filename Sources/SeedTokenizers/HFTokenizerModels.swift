/// A `tokenizer.json` model: turns one pre-tokenized word into token ids.
enum HFModel: Sendable {
    case wordPiece(HFWordPiece)
    case bpe(HFBPE)
    case wordLevel(HFWordLevel)

    /// Parses the `model` object. Returns the model and its vocabulary (token text → id).
    static func parse(
        _ json: HFJSONObject, byteLevel: Bool
    ) throws(TokenizerError) -> (model: HFModel, vocabulary: [String: Int]) {
        var type: String
        if let explicit = try json.optionalString("type") { type = explicit } else { type = try inferType(json) }
        guard ["WordPiece", "BPE", "WordLevel"].contains(type) else {
            throw .unsupportedComponent(kind: "model", type: type)
        }
        let vocabulary = try parseVocabulary(json)
        switch type {
        case "WordPiece":
            let model = try HFWordPiece(
                vocabulary: vocabulary, unknownToken: try json.optionalString("unk_token") ?? "[UNK]",
                prefix: try json.optionalString("continuing_subword_prefix") ?? "##",
                maxInputCharsPerWord: try json.optionalInt("max_input_chars_per_word") ?? 100)
            return (.wordPiece(model), vocabulary)
        case "BPE":
            return (.bpe(try HFBPE(json: json, vocabulary: vocabulary, byteLevel: byteLevel)), vocabulary)
        case "WordLevel":
            let unknown = try json.optionalString("unk_token")
            return (.wordLevel(try HFWordLevel(vocabulary: vocabulary, unknownToken: unknown)), vocabulary)
        default:
            throw .unsupportedComponent(kind: "model", type: type)
        }
    }

    /// Old files omit the model type; guess it the way `tokenizers` does (merges → BPE, prefix → WordPiece).
    private static func inferType(_ json: HFJSONObject) throws(TokenizerError) -> String {
        if json.has("merges") { return "BPE" }
        if json.has("continuing_subword_prefix") || json.has("max_input_chars_per_word") { return "WordPiece" }
        if json.has("vocab") { return "WordLevel" }
        throw .invalidTokenizerJSON("\(json.path).type is missing")
    }

    private static func parseVocabulary(_ json: HFJSONObject) throws(TokenizerError) -> [String: Int] {
        guard let raw = json.values["vocab"] as? [String: Any] else {
            throw .invalidTokenizerJSON("\(json.path).vocab must be an object mapping tokens to ids")
        }
        guard !raw.isEmpty else { throw .emptyVocabulary }
        var vocabulary: [String: Int] = [:]
        vocabulary.reserveCapacity(raw.count)
        for (token, value) in raw {
            guard let id = HFJSONObject.integer(value), id >= 0, id < BPETokenizer.maximumVocabularySize else {
                throw .invalidTokenizerJSON("\(json.path).vocab[\(String(reflecting: token))] is not a valid id")
            }
            vocabulary[token] = id
        }
        return vocabulary
    }

    /// Appends the ids of one word.
    func tokenize(_ word: String, into ids: inout [Int]) {
        switch self {
        case .wordPiece(let model): model.tokenize(word, into: &ids)
        case .bpe(let model): model.tokenize(word, into: &ids)
        case .wordLevel(let model): model.tokenize(word, into: &ids)
        }
    }
}

/// Byte-keyed vocabulary lookup: Swift `String` equality is canonical equivalence, but token matching must be
/// exact (a decomposed `é` is not the vocabulary's precomposed `é`).
struct HFVocabularyIndex: Sendable {
    let ids: [[UInt8]: Int]

    init(_ vocabulary: [String: Int]) {
        var ids: [[UInt8]: Int] = [:]
        ids.reserveCapacity(vocabulary.count)
        for (token, id) in vocabulary { ids[Array(token.utf8)] = id }
        self.ids = ids
    }

    subscript(_ bytes: [UInt8]) -> Int? { ids[bytes] }
    subscript(_ text: String) -> Int? { ids[Array(text.utf8)] }
}

/// BERT's WordPiece: greedy longest-match-first over each word; continuation pieces carry a prefix (`##`). A word
/// with no full segmentation, or longer than `maxInputCharsPerWord` scalars, becomes the unknown token.
struct HFWordPiece: Sendable {
    let vocabulary: HFVocabularyIndex
    let unknownID: Int
    let prefix: [UInt8]
    let maxInputCharsPerWord: Int

    init(vocabulary: [String: Int], unknownToken: String, prefix: String, maxInputCharsPerWord: Int)
        throws(TokenizerError)
    {
        guard let unknownID = vocabulary[unknownToken] else { throw .missingUnknownToken(unknownToken) }
        self.vocabulary = HFVocabularyIndex(vocabulary)
        // `vocabulary[unknownToken]` used canonical equivalence; prefer the exact spelling when present.
        self.unknownID = self.vocabulary[unknownToken] ?? unknownID
        self.prefix = Array(prefix.utf8)
        self.maxInputCharsPerWord = maxInputCharsPerWord
    }

    func tokenize(_ word: String, into ids: inout [Int]) {
        let bytes = Array(word.utf8)
        guard !bytes.isEmpty else { return }
        // Byte offset of each scalar start, plus the end.
        var boundaries: [Int] = []
        boundaries.reserveCapacity(bytes.count + 1)
        for (offset, byte) in bytes.enumerated() where byte & 0xC0 != 0x80 { boundaries.append(offset) }
        boundaries.append(bytes.count)
        let scalarCount = boundaries.count - 1
        guard scalarCount <= maxInputCharsPerWord else {
            ids.append(unknownID)
            return
        }
        var pieces: [Int] = []
        var start = 0
        var key: [UInt8] = []
        while start < scalarCount {
            var end = scalarCount
            var found: Int? = nil
            while end > start {
                key.removeAll(keepingCapacity: true)
                if start > 0 { key.append(contentsOf: prefix) }
                key.append(contentsOf: bytes[boundaries[start]..<boundaries[end]])
                if let id = vocabulary[key] {
                    found = id
                    break
                }
                end -= 1
            }
            guard let id = found else {
                ids.append(unknownID)
                return
            }
            pieces.append(id)
            start = end
        }
        ids.append(contentsOf: pieces)
    }
}

/// A whole-word lookup model; words not in the vocabulary become the unknown token (or are dropped without one).
struct HFWordLevel: Sendable {
    let vocabulary: HFVocabularyIndex
    let unknownID: Int?

    init(vocabulary: [String: Int], unknownToken: String?) throws(TokenizerError) {
        self.vocabulary = HFVocabularyIndex(vocabulary)
        if let unknownToken {
            guard let id = self.vocabulary[unknownToken] else { throw .missingUnknownToken(unknownToken) }
            unknownID = id
        } else {
            unknownID = nil
        }
    }

    func tokenize(_ word: String, into ids: inout [Int]) {
        guard !word.isEmpty else { return }
        if let id = vocabulary[word] {
            ids.append(id)
        } else if let unknownID {
            ids.append(unknownID)
        }
    }
}

/// BPE. Byte-level vocabularies (the pre-tokenizer or decoder is `ByteLevel`) reuse ``BPETokenizer``'s merge code
/// on each word's UTF-8 bytes; other vocabularies merge Unicode scalars, with `byte_fallback` (`<0xAB>` tokens) or
/// the unknown token for scalars missing from the vocabulary.
struct HFBPE: Sendable {
    let byteLevel: Bool
    /// Byte-level engine (its vocabulary is this model's, with gaps in the id range filled by placeholders).
    let engine: BPETokenizer?
    let vocabulary: HFVocabularyIndex
    /// Scalar-level merges: `"left right"` bytes → (rank, merged id).
    let merges: [[UInt8]: (rank: Int, id: Int)]
    let unknownID: Int?
    let fuseUnknown: Bool
    let byteFallback: Bool
    let ignoreMerges: Bool
    let continuingPrefix: String
    let endOfWordSuffix: String

    init(json: HFJSONObject, vocabulary: [String: Int], byteLevel: Bool) throws(TokenizerError) {
        self.byteLevel = byteLevel
        self.vocabulary = HFVocabularyIndex(vocabulary)
        continuingPrefix = try json.optionalString("continuing_subword_prefix") ?? ""
        endOfWordSuffix = try json.optionalString("end_of_word_suffix") ?? ""
        fuseUnknown = try json.bool("fuse_unk", default: false)
        byteFallback = try json.bool("byte_fallback", default: false)
        ignoreMerges = try json.bool("ignore_merges", default: false)
        if let unknownToken = try json.optionalString("unk_token") {
            guard let id = self.vocabulary[unknownToken] else { throw .missingUnknownToken(unknownToken) }
            unknownID = id
        } else {
            unknownID = nil
        }

        // Merges: "a b" strings or ["a", "b"] pairs.
        var pairs: [(String, String)] = []
        let rawMerges = json.has("merges") ? try json.array("merges") : []
        pairs.reserveCapacity(rawMerges.count)
        for (rank, entry) in rawMerges.enumerated() {
            if let rule = entry as? String {
                let parts = rule.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                    throw .malformedMerge(rank: rank, rule: rule)
                }
                pairs.append((String(parts[0]), String(parts[1])))
            } else if let pair = entry as? [Any], pair.count == 2, let left = pair[0] as? String,
                let right = pair[1] as? String, !left.isEmpty, !right.isEmpty
            {
                pairs.append((left, right))
            } else {
                throw .malformedMerge(rank: rank, rule: String(describing: entry))
            }
        }

        if byteLevel {
            guard continuingPrefix.isEmpty, endOfWordSuffix.isEmpty else {
                throw .unsupportedComponent(kind: "model", type: "BPE (byte-level with subword prefix or suffix)")
            }
            let size = (vocabulary.values.max() ?? 0) + 1
            var tokens = [String](repeating: "", count: size)
            var filled = [Bool](repeating: false, count: size)
            for (token, id) in vocabulary {
                tokens[id] = token
                filled[id] = true
            }
            for id in 0..<size where !filled[id] { tokens[id] = "\u{10FFFF}<unused \(id)>" }
            var rules: [String] = []
            rules.reserveCapacity(pairs.count)
            for (rank, (left, right)) in pairs.enumerated() {
                // Byte-level symbols never contain a space; a pair that does cannot be a byte-level merge.
                guard !left.contains(" "), !right.contains(" ") else {
                    throw .malformedMerge(rank: rank, rule: left + " " + right)
                }
                rules.append(left + " " + right)
            }
            engine = try BPETokenizer(
                tokens: tokens, tokenTypes: nil, merges: rules, preTokenizer: "gpt2",
                bosTokenID: nil, eosTokenID: nil, addBOS: false, addEOS: false)
            merges = [:]
        } else {
            engine = nil
            var table: [[UInt8]: (rank: Int, id: Int)] = [:]
            table.reserveCapacity(pairs.count)
            for (rank, (left, right)) in pairs.enumerated() {
                let merged = left + right.dropFirst(right.hasPrefix(continuingPrefix) ? continuingPrefix.count : 0)
                // Merges whose result is not a token can never apply; skip them as `tokenizers` rejects them.
                guard let id = self.vocabulary[merged] else { continue }
                let key = Array(left.utf8) + [0x20] + Array(right.utf8)
                if table[key] == nil { table[key] = (rank, id) }
            }
            merges = table
        }
    }

    func tokenize(_ word: String, into ids: inout [Int]) {
        guard !word.isEmpty else { return }
        if let engine {
            let bytes = Array(word.utf8)
            if ignoreMerges, let id = vocabulary[ByteLevel.encode(bytes)] {
                ids.append(id)
                return
            }
            ids.append(contentsOf: engine.encodePreTokenizedPiece(bytes))
            return
        }
        if ignoreMerges, let id = vocabulary[word] {
            ids.append(id)
            return
        }
        tokenizeScalars(word, into: &ids)
    }

    /// Scalar-level BPE: start from single scalars (with prefix/suffix), merge the lowest-ranked pair until none
    /// applies, then map symbols to ids with byte fallback or the unknown token.
    private func tokenizeScalars(_ word: String, into ids: inout [Int]) {
        let scalars = Array(word.unicodeScalars)
        var symbols: [String] = []
        symbols.reserveCapacity(scalars.count)
        for (index, scalar) in scalars.enumerated() {
            var symbol = String(scalar)
            if index > 0 { symbol = continuingPrefix + symbol }
            if index == scalars.count - 1 { symbol += endOfWordSuffix }
            symbols.append(symbol)
        }
        while symbols.count > 1 {
            var best: (rank: Int, index: Int, id: Int)? = nil
            for index in 0..<(symbols.count - 1) {
                let key = Array(symbols[index].utf8) + [0x20] + Array(symbols[index + 1].utf8)
                if let merge = merges[key], best == nil || merge.rank < best!.rank {
                    best = (merge.rank, index, merge.id)
                }
            }
            guard let best else { break }
            let right = symbols[best.index + 1]
            let rightBody = right.hasPrefix(continuingPrefix) ? String(right.dropFirst(continuingPrefix.count)) : right
            symbols[best.index] += continuingPrefix.isEmpty ? right : rightBody
            symbols.remove(at: best.index + 1)
        }
        var previousWasUnknown = false
        for symbol in symbols {
            if let id = vocabulary[symbol] {
                ids.append(id)
                previousWasUnknown = false
                continue
            }
            if byteFallback {
                var all: [Int] = []
                for byte in symbol.utf8 {
                    guard let id = vocabulary[Self.fallbackToken(for: byte)] else {
                        all.removeAll()
                        break
                    }
                    all.append(id)
                }
                if !all.isEmpty {
                    ids.append(contentsOf: all)
                    previousWasUnknown = false
                    continue
                }
            }
            guard let unknownID else { continue }
            if fuseUnknown && previousWasUnknown { continue }
            ids.append(unknownID)
            previousWasUnknown = true
        }
    }

    /// The byte-fallback token text of `byte`, e.g. `<0x0A>`.
    static func fallbackToken(for byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return "<0x" + String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 0xF)]) + ">"
    }
}
