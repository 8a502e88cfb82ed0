import Foundation

/// Typed access to one JSON object of a `tokenizer.json` (as produced by `JSONSerialization`), throwing
/// `TokenizerError.invalidTokenizerJSON` with the field's path when a field is missing or of the wrong type.
struct HFJSONObject {
    let values: [String: Any]
    /// Where this object sits in the file (e.g. `normalizer.normalizers[1]`), for error messages.
    let path: String

    init(_ value: Any?, path: String) throws(TokenizerError) {
        guard let values = value as? [String: Any] else { throw .invalidTokenizerJSON("\(path) is not an object") }
        self.values = values
        self.path = path
    }

    /// Whether the key is present with a non-null value.
    func has(_ key: String) -> Bool {
        guard let value = values[key] else { return false }
        return !(value is NSNull)
    }

    /// The `type` field of a component.
    func type() throws(TokenizerError) -> String {
        try string("type")
    }

    func string(_ key: String) throws(TokenizerError) -> String {
        guard let value = values[key] as? String else { throw missing(key, "a string") }
        return value
    }

    func optionalString(_ key: String) throws(TokenizerError) -> String? {
        guard has(key) else { return nil }
        return try string(key)
    }

    func bool(_ key: String, default fallback: Bool) throws(TokenizerError) -> Bool {
        guard has(key) else { return fallback }
        guard let number = values[key] as? NSNumber, String(cString: number.objCType) == "c" else {
            throw missing(key, "a boolean")
        }
        return number.boolValue
    }

    /// A boolean that may be `null` (returned as `nil`).
    func optionalBool(_ key: String) throws(TokenizerError) -> Bool? {
        guard has(key) else { return nil }
        guard let number = values[key] as? NSNumber, String(cString: number.objCType) == "c" else {
            throw missing(key, "a boolean or null")
        }
        return number.boolValue
    }

    func int(_ key: String) throws(TokenizerError) -> Int {
        guard let value = Self.integer(values[key]) else { throw missing(key, "an integer") }
        return value
    }

    func optionalInt(_ key: String) throws(TokenizerError) -> Int? {
        guard has(key) else { return nil }
        return try int(key)
    }

    func object(_ key: String) throws(TokenizerError) -> HFJSONObject {
        try HFJSONObject(values[key], path: "\(path).\(key)")
    }

    func optionalObject(_ key: String) throws(TokenizerError) -> HFJSONObject? {
        guard has(key) else { return nil }
        return try object(key)
    }

    func array(_ key: String) throws(TokenizerError) -> [Any] {
        guard let value = values[key] as? [Any] else { throw missing(key, "an array") }
        return value
    }

    /// The elements of an array of objects.
    func objects(_ key: String) throws(TokenizerError) -> [HFJSONObject] {
        var result: [HFJSONObject] = []
        for (index, element) in try array(key).enumerated() {
            result.append(try HFJSONObject(element, path: "\(path).\(key)[\(index)]"))
        }
        return result
    }

    func missing(_ key: String, _ expected: String) -> TokenizerError {
        .invalidTokenizerJSON("\(path).\(key) must be \(expected)")
    }

    /// An integral JSON number as `Int` (rejecting booleans, fractions and out-of-range values).
    static func integer(_ value: Any?) -> Int? {
        // `is Bool` is true for any NSNumber holding 0 or 1 on Linux; JSON booleans are `c`-typed numbers.
        guard let number = value as? NSNumber, String(cString: number.objCType) != "c" else { return nil }
        let double = number.doubleValue
        guard double.rounded() == double, abs(double) < 9.0e15 else { return nil }
        return number.intValue
    }
}

/// Unicode helpers shared by the `tokenizer.json` components.
enum HFUnicode {
    /// Rust's `char::is_whitespace` (the Unicode `White_Space` property).
    @inline(__always)
    static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x20, 0x09...0x0D: return true
        case 0..<0x80: return false
        default: return scalar.properties.isWhitespace
        }
    }

    /// Any Unicode punctuation (general category P*).
    static func isPunctuation(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
            .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }

    /// ASCII punctuation and symbols (`!`...`/`, `:`...`@`, `[`...`` ` ``, `{`...`~`) plus Unicode punctuation: what
    /// BERT splits off as single-character words.
    static func isBertPunctuation(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x21...0x2F, 0x3A...0x40, 0x5B...0x60, 0x7B...0x7E: return true
        case 0..<0x80: return false
        default: return isPunctuation(scalar)
        }
    }

    /// Rust's `char::is_numeric` (general categories Nd, Nl, No).
    static func isNumeric(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }

    /// A regex `\w` character: alphabetic, a mark, a decimal digit, connector punctuation or a join control.
    static func isWordCharacter(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x5F: return true
        case 0..<0x80: return false
        case 0x200C, 0x200D: return true
        default:
            let properties = scalar.properties
            if properties.isAlphabetic { return true }
            switch properties.generalCategory {
            case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
            default: return false
            }
        }
    }
}
