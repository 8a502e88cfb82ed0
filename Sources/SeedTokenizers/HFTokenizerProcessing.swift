/// A `tokenizer.json` post-processor: adds special tokens around one or two encoded sequences and assigns type ids.
enum HFPostProcessor: Sendable, Equatable {
    /// One element of a template: a sequence (`$A`/`$B`) or special token ids, each with a type id.
    enum Piece: Sendable, Equatable {
        case sequenceA(typeID: Int)
        case sequenceB(typeID: Int)
        case special(ids: [Int], typeID: Int)
    }

    case template(single: [Piece], pair: [Piece])
    /// `ByteLevel` (offset trimming only) or a sequence of such: ids are unchanged.
    case none

    init(json: HFJSONObject, tokenID: (String) -> Int?) throws(TokenizerError) {
        let type = try json.type()
        switch type {
        case "TemplateProcessing":
            var specials: [String: [Int]] = [:]
            if let map = try json.optionalObject("special_tokens") {
                for key in map.values.keys {
                    let entry = try map.object(key)
                    var ids: [Int] = []
                    for value in try entry.array("ids") {
                        guard let id = HFJSONObject.integer(value) else {
                            throw .invalidTokenizerJSON("\(entry.path).ids must hold integers")
                        }
                        ids.append(id)
                    }
                    specials[try entry.optionalString("id") ?? key] = ids
                }
            }
            func pieces(_ key: String) throws(TokenizerError) -> [Piece] {
                var result: [Piece] = []
                for (index, element) in try json.array(key).enumerated() {
                    let path = "\(json.path).\(key)[\(index)]"
                    result.append(try Self.parsePiece(element, path: path, specials, tokenID))
                }
                return result
            }
            self = .template(single: try pieces("single"), pair: try pieces("pair"))
        case "BertProcessing", "RobertaProcessing":
            func special(_ key: String) throws(TokenizerError) -> Int {
                guard let pair = json.values[key] as? [Any], pair.count == 2, let id = HFJSONObject.integer(pair[1])
                else { throw .invalidTokenizerJSON("\(json.path).\(key) must be [token, id]") }
                return id
            }
            let cls = try special("cls")
            let sep = try special("sep")
            if type == "BertProcessing" {
                self = .template(
                    single: [.special(ids: [cls], typeID: 0), .sequenceA(typeID: 0), .special(ids: [sep], typeID: 0)],
                    pair: [
                        .special(ids: [cls], typeID: 0), .sequenceA(typeID: 0), .special(ids: [sep], typeID: 0),
                        .sequenceB(typeID: 1), .special(ids: [sep], typeID: 1),
                    ])
            } else {
                self = .template(
                    single: [.special(ids: [cls], typeID: 0), .sequenceA(typeID: 0), .special(ids: [sep], typeID: 0)],
                    pair: [
                        .special(ids: [cls], typeID: 0), .sequenceA(typeID: 0), .special(ids: [sep, sep], typeID: 0),
                        .sequenceB(typeID: 0), .special(ids: [sep], typeID: 0),
                    ])
            }
        case "ByteLevel":
            self = .none
        case "Sequence":
            var result = HFPostProcessor.none
            for element in try json.objects("processors") {
                let processor = try HFPostProcessor(json: element, tokenID: tokenID)
                guard processor != .none else { continue }
                guard result == .none else {
                    throw .unsupportedComponent(kind: "post-processor", type: "Sequence (several adding processors)")
                }
                result = processor
            }
            self = result
        default:
            throw .unsupportedComponent(kind: "post-processor", type: type)
        }
    }

    /// A template element: `{"SpecialToken": {"id", "type_id"}}`, `{"Sequence": {"id": "A"|"B", "type_id"}}`, or
    /// the string shorthand `"$A"`, `"$B:1"`, `"[CLS]"`, `"[SEP]:1"`.
    private static func parsePiece(
        _ element: Any, path: String, _ specials: [String: [Int]], _ tokenID: (String) -> Int?
    ) throws(TokenizerError) -> Piece {
        var name: String
        var typeID = 0
        var isSequence: Bool
        if let text = element as? String {
            var body = Substring(text)
            if let colon = text.lastIndex(of: ":"), let parsed = Int(text[text.index(after: colon)...]) {
                typeID = parsed
                body = text[..<colon]
            }
            isSequence = body == "$A" || body == "$B" || body == "$"
            name = isSequence ? (body == "$B" ? "B" : "A") : String(body)
        } else {
            let object = try HFJSONObject(element, path: path)
            if object.has("Sequence") {
                let sequence = try object.object("Sequence")
                name = try sequence.string("id")
                typeID = try sequence.optionalInt("type_id") ?? 0
                isSequence = true
            } else {
                let token = try object.object("SpecialToken")
                name = try token.string("id")
                typeID = try token.optionalInt("type_id") ?? 0
                isSequence = false
            }
        }
        if isSequence {
            switch name {
            case "A": return .sequenceA(typeID: typeID)
            case "B": return .sequenceB(typeID: typeID)
            default: throw .invalidTokenizerJSON("\(path): unknown sequence \(String(reflecting: name))")
            }
        }
        if let ids = specials[name] { return .special(ids: ids, typeID: typeID) }
        if let id = tokenID(name) { return .special(ids: [id], typeID: typeID) }
        throw .invalidTokenizerJSON("\(path): special token \(String(reflecting: name)) is not defined")
    }

    /// How many ids the processor adds to a single sequence or a pair.
    func addedCount(pair: Bool) -> Int {
        guard case .template(let single, let pairPieces) = self else { return 0 }
        return (pair ? pairPieces : single).reduce(0) { count, piece in
            if case .special(let ids, _) = piece { return count + ids.count }
            return count
        }
    }

    /// Assembles the final ids and type ids.
    func process(_ a: [Int], _ b: [Int]?) -> (ids: [Int], typeIDs: [Int]) {
        guard case .template(let single, let pairPieces) = self else {
            let ids = a + (b ?? [])
            return (ids, [Int](repeating: 0, count: a.count) + [Int](repeating: 1, count: b?.count ?? 0))
        }
        var ids: [Int] = []
        var typeIDs: [Int] = []
        for piece in b == nil ? single : pairPieces {
            switch piece {
            case .sequenceA(let typeID):
                ids += a
                typeIDs += [Int](repeating: typeID, count: a.count)
            case .sequenceB(let typeID):
                let sequence = b ?? []
                ids += sequence
                typeIDs += [Int](repeating: typeID, count: sequence.count)
            case .special(let specialIDs, let typeID):
                ids += specialIDs
                typeIDs += [Int](repeating: typeID, count: specialIDs.count)
            }
        }
        return (ids, typeIDs)
    }
}

/// A `tokenizer.json` decoder: turns token strings back into text, as a chain of token-list transformations.
enum HFDecoder: Sendable, Equatable {
    case wordPiece(prefix: String, cleanup: Bool)
    case byteLevel
    case metaspace(replacement: String, stripFirstSpace: Bool)
    case replace(pattern: String, content: String)
    case byteFallback
    case fuse
    case strip(content: Unicode.Scalar, start: Int, stop: Int)
    case sequence([HFDecoder])

    init(json: HFJSONObject) throws(TokenizerError) {
        let type = try json.type()
        switch type {
        case "WordPiece":
            self = .wordPiece(
                prefix: try json.optionalString("prefix") ?? "##", cleanup: try json.bool("cleanup", default: true))
        case "ByteLevel":
            self = .byteLevel
        case "Metaspace":
            let scheme = try json.optionalString("prepend_scheme")
            var strip: Bool
            if let scheme {
                strip = scheme != "never"
            } else {
                strip = try json.bool("add_prefix_space", default: true)
            }
            self = .metaspace(replacement: try json.optionalString("replacement") ?? "\u{2581}", stripFirstSpace: strip)
        case "Replace":
            let pattern = try json.object("pattern")
            guard let literal = try pattern.optionalString("String"), !literal.isEmpty else {
                throw .unsupportedComponent(kind: "decoder", type: "Replace (regex pattern)")
            }
            self = .replace(pattern: literal, content: try json.string("content"))
        case "ByteFallback":
            self = .byteFallback
        case "Fuse":
            self = .fuse
        case "Strip":
            let content = try json.string("content")
            guard content.unicodeScalars.count == 1, let scalar = content.unicodeScalars.first else {
                throw .invalidTokenizerJSON("\(json.path).content must be one character")
            }
            self = .strip(
                content: scalar, start: max(0, try json.optionalInt("start") ?? 0),
                stop: max(0, try json.optionalInt("stop") ?? 0))
        case "Sequence":
            var decoders: [HFDecoder] = []
            for element in try json.objects("decoders") { decoders.append(try HFDecoder(json: element)) }
            self = .sequence(decoders)
        default:
            throw .unsupportedComponent(kind: "decoder", type: type)
        }
    }

    func decode(_ tokens: [String]) -> String {
        decodeChain(tokens).joined()
    }

    func decodeChain(_ tokens: [String]) -> [String] {
        switch self {
        case .wordPiece(let prefix, let cleanup):
            return tokens.enumerated().map { index, token in
                var piece = token
                if index > 0 {
                    if !prefix.isEmpty && piece.utf8.starts(with: prefix.utf8) {
                        piece = String(decoding: Array(piece.utf8.dropFirst(prefix.utf8.count)), as: UTF8.self)
                    } else {
                        piece = " " + piece
                    }
                }
                return cleanup ? Self.cleanUp(piece) : piece
            }
        case .byteLevel:
            var bytes: [UInt8] = []
            for token in tokens { ByteLevel.appendDecoded(token, to: &bytes) }
            return [String(decoding: bytes, as: UTF8.self)]
        case .metaspace(let replacement, let stripFirstSpace):
            return tokens.enumerated().map { index, token in
                var piece = HFNormalizer.replaceLiteral(token, replacement, with: " ")
                if stripFirstSpace && index == 0 && piece.hasPrefix(" ") { piece.removeFirst() }
                return piece
            }
        case .replace(let pattern, let content):
            return tokens.map { HFNormalizer.replaceLiteral($0, pattern, with: content) }
        case .byteFallback:
            var result: [String] = []
            var pending: [UInt8] = []
            func flush() {
                guard !pending.isEmpty else { return }
                // Invalid UTF-8 becomes one U+FFFD per byte, as `tokenizers` does.
                if let text = String(validating: pending, as: UTF8.self) {
                    result.append(text)
                } else {
                    result.append(contentsOf: [String](repeating: "\u{FFFD}", count: pending.count))
                }
                pending.removeAll()
            }
            for token in tokens {
                if let byte = Self.parseByteToken(token) {
                    pending.append(byte)
                } else {
                    flush()
                    result.append(token)
                }
            }
            flush()
            return result
        case .fuse:
            return [tokens.joined()]
        case .strip(let content, let start, let stop):
            return tokens.map { token in
                var scalars = Array(token.unicodeScalars)
                var removed = 0
                while removed < start, scalars.first == content {
                    scalars.removeFirst()
                    removed += 1
                }
                removed = 0
                while removed < stop, scalars.last == content {
                    scalars.removeLast()
                    removed += 1
                }
                return HFPreTokenizer.string(scalars[...])
            }
        case .sequence(let decoders):
            return decoders.reduce(tokens) { $1.decodeChain($0) }
        }
    }

    /// `tokenizers`' `cleanup`: removes the space before punctuation and English contractions.
    static func cleanUp(_ text: String) -> String {
        var result = text
        for (pattern, replacement) in [
            (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
            (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
        ] {
            result = HFNormalizer.replaceLiteral(result, pattern, with: replacement)
        }
        return result
    }

    /// `<0xAB>` → 0xAB.
    static func parseByteToken(_ token: String) -> UInt8? {
        let utf8 = Array(token.utf8)
        guard utf8.count == 6, utf8[0] == UInt8(ascii: "<"), utf8[1] == UInt8(ascii: "0"),
            utf8[2] == UInt8(ascii: "x"), utf8[5] == UInt8(ascii: ">")
        else { return nil }
        return UInt8(String(decoding: utf8[3..<5], as: UTF8.self), radix: 16)
    }
}
