import Foundation

/// A `tokenizer.json` normalizer: a text → text transformation applied before pre-tokenization.
enum HFNormalizer: Sendable, Equatable {
    /// BERT's normalizer. `stripAccents` is already resolved (a `null` in the file follows `lowercase`).
    case bert(cleanText: Bool, handleChineseChars: Bool, stripAccents: Bool, lowercase: Bool)
    case lowercase
    case nfc, nfd, nfkc, nfkd
    /// NFD, then drop nonspacing marks (as `StripAccents` does; the file usually puts an `NFD` before it).
    case stripAccents
    /// Replace every occurrence of a literal string.
    case replace(pattern: String, content: String)
    /// Prepend a string to non-empty text.
    case prepend(String)
    /// Strip whitespace on the left and/or right.
    case strip(left: Bool, right: Bool)
    case sequence([HFNormalizer])

    /// Parses a normalizer object (`{"type": ..., ...}`).
    init(json: HFJSONObject) throws(TokenizerError) {
        let type = try json.type()
        switch type {
        case "BertNormalizer":
            let lowercase = try json.bool("lowercase", default: true)
            self = .bert(
                cleanText: try json.bool("clean_text", default: true),
                handleChineseChars: try json.bool("handle_chinese_chars", default: true),
                stripAccents: try json.optionalBool("strip_accents") ?? lowercase,
                lowercase: lowercase)
        case "Lowercase": self = .lowercase
        case "NFC": self = .nfc
        case "NFD": self = .nfd
        case "NFKC": self = .nfkc
        case "NFKD": self = .nfkd
        case "StripAccents": self = .stripAccents
        case "Replace":
            let pattern = try json.object("pattern")
            guard let literal = try pattern.optionalString("String") else {
                throw .unsupportedComponent(kind: "normalizer", type: "Replace (regex pattern)")
            }
            guard !literal.isEmpty else { throw .invalidTokenizerJSON("\(json.path).pattern.String is empty") }
            self = .replace(pattern: literal, content: try json.string("content"))
        case "Prepend":
            self = .prepend(try json.string("prepend"))
        case "Strip":
            self = .strip(
                left: try json.bool("strip_left", default: true), right: try json.bool("strip_right", default: true))
        case "Sequence":
            var normalizers: [HFNormalizer] = []
            for element in try json.objects("normalizers") { normalizers.append(try HFNormalizer(json: element)) }
            self = .sequence(normalizers)
        default:
            throw .unsupportedComponent(kind: "normalizer", type: type)
        }
    }

    /// Applies the normalizer.
    func apply(_ text: String) -> String {
        switch self {
        case .bert(let cleanText, let handleChineseChars, let stripAccents, let lowercase):
            var result = Self.bertClean(text, cleanText: cleanText, handleChineseChars: handleChineseChars)
            if stripAccents { result = Self.removeAccents(result) }
            if lowercase { result = result.lowercased() }
            return result
        case .lowercase:
            return text.lowercased()
        case .nfc:
            return text.precomposedStringWithCanonicalMapping
        case .nfd:
            return text.decomposedStringWithCanonicalMapping
        case .nfkc:
            return text.precomposedStringWithCompatibilityMapping
        case .nfkd:
            return text.decomposedStringWithCompatibilityMapping
        case .stripAccents:
            return Self.removeAccents(text)
        case .replace(let pattern, let content):
            return Self.replaceLiteral(text, pattern, with: content)
        case .prepend(let prefix):
            return text.isEmpty ? text : prefix + text
        case .strip(let left, let right):
            let scalars = Array(text.unicodeScalars)
            var start = 0
            var end = scalars.count
            if left { while start < end && HFUnicode.isWhitespace(scalars[start]) { start += 1 } }
            if right { while end > start && HFUnicode.isWhitespace(scalars[end - 1]) { end -= 1 } }
            var view = String.UnicodeScalarView()
            view.append(contentsOf: scalars[start..<end])
            return String(view)
        case .sequence(let normalizers):
            return normalizers.reduce(text) { $1.apply($0) }
        }
    }

    /// BERT's `clean_text` (drop NUL, U+FFFD and other-category characters; whitespace becomes a space) and
    /// `handle_chinese_chars` (a space on both sides of every CJK ideograph).
    static func bertClean(_ text: String, cleanText: Bool, handleChineseChars: Bool) -> String {
        var result = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if cleanText {
                if scalar.value == 0 || scalar.value == 0xFFFD || isControl(scalar) { continue }
                if HFUnicode.isWhitespace(scalar) {
                    result.append(" ")
                    continue
                }
            }
            if handleChineseChars && isChineseCharacter(scalar) {
                result.append(" ")
                result.append(scalar)
                result.append(" ")
            } else {
                result.append(scalar)
            }
        }
        return String(result)
    }

    /// BERT's control test: general category C* (control, format, surrogate, private use, unassigned), except
    /// tab, newline and carriage return, which count as whitespace.
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09, 0x0A, 0x0D: return false
        case 0x20...0x7E: return false
        default:
            switch scalar.properties.generalCategory {
            case .control, .format, .surrogate, .privateUse, .unassigned: return true
            default: return false
            }
        }
    }

    /// The CJK Unified Ideographs blocks BERT isolates (not Hangul, kana or CJK punctuation).
    static func isChineseCharacter(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
            0x2B820...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }

    /// NFD, then drop nonspacing marks (`Café` → `Cafe`).
    static func removeAccents(_ text: String) -> String {
        var result = String.UnicodeScalarView()
        for scalar in text.decomposedStringWithCanonicalMapping.unicodeScalars
        where scalar.properties.generalCategory != .nonspacingMark {
            result.append(scalar)
        }
        return String(result)
    }

    /// Replaces every non-overlapping occurrence of `pattern` (left to right, compared scalar by scalar).
    static func replaceLiteral(_ text: String, _ pattern: String, with content: String) -> String {
        let source = Array(text.utf8)
        let needle = Array(pattern.utf8)
        guard !needle.isEmpty, source.count >= needle.count else { return text }
        var result: [UInt8] = []
        result.reserveCapacity(source.count)
        let replacement = Array(content.utf8)
        var i = 0
        while i < source.count {
            if source[i] == needle[0], i + needle.count <= source.count,
                source[i..<(i + needle.count)].elementsEqual(needle)
            {
                result.append(contentsOf: replacement)
                i += needle.count
            } else {
                result.append(source[i])
                i += 1
            }
        }
        return String(decoding: result, as: UTF8.self)
    }
}
