import Foundation

/// A string-keyed dictionary that remembers insertion order, like a Python `dict`.
public struct JinjaObject: Sendable, Equatable {
    /// The keys, in insertion order.
    public private(set) var keys: [String] = []
    private var storage: [String: JinjaValue] = [:]

    /// An empty object.
    public init() {}

    /// An object holding `pairs` in order; a repeated key keeps its first position and its last value.
    public init(_ pairs: [(String, JinjaValue)]) {
        for (key, value) in pairs { self[key] = value }
    }

    /// The number of entries.
    public var count: Int { keys.count }

    /// The values, in key order.
    public var values: [JinjaValue] { keys.map { storage[$0] ?? .undefined } }

    /// The value for `key`, or `nil`; assigning `nil` removes the entry.
    public subscript(key: String) -> JinjaValue? {
        get { storage[key] }
        set {
            if let newValue {
                if storage.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if storage.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    public static func == (lhs: JinjaObject, rhs: JinjaObject) -> Bool {
        lhs.storage == rhs.storage
    }
}

/// A value inside a Jinja template: the Python-like data model of Jinja2, restricted to what templates need.
public indirect enum JinjaValue: Sendable, Equatable {
    /// A missing variable or attribute: renders as `''`, is falsy, iterates as empty.
    case undefined
    /// Python's `None`.
    case none
    /// A boolean.
    case bool(Bool)
    /// An integer.
    case int(Int)
    /// A floating-point number.
    case double(Double)
    /// A string.
    case string(String)
    /// A list (also used for tuples).
    case array([JinjaValue])
    /// A dictionary with string keys, in insertion order.
    case object(JinjaObject)
    /// A `namespace(...)` object, whose attributes can be assigned with `{% set ns.attr = ... %}`.
    case namespace(JinjaObject)

    /// Builds an object value from ordered key/value pairs.
    public static func dictionary(_ pairs: [(String, JinjaValue)]) -> JinjaValue {
        .object(JinjaObject(pairs))
    }

    /// Python truthiness: undefined, none, false, zero, and empty strings/collections are false.
    public var isTruthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .array(let a): return !a.isEmpty
        case .object(let o): return o.count > 0
        case .namespace: return true
        }
    }

    /// The Python type name, used in error messages.
    public var typeName: String {
        switch self {
        case .undefined: return "undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "str"
        case .array: return "list"
        case .object: return "dict"
        case .namespace: return "Namespace"
        }
    }

    /// The text `{{ value }}` renders: Python's `str(value)`, with undefined rendering as the empty string.
    public var renderedString: String {
        switch self {
        case .undefined: return ""
        case .string(let s): return s
        default: return pythonRepr
        }
    }

    /// Python's `repr(value)`, as used for items inside rendered lists and dicts.
    public var pythonRepr: String {
        switch self {
        case .undefined: return ""
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .double(let d): return JinjaValue.pythonFloat(d)
        case .string(let s): return JinjaValue.pythonStringRepr(s)
        case .array(let items): return "[" + items.map(\.pythonRepr).joined(separator: ", ") + "]"
        case .object(let o):
            let parts = o.keys.map { JinjaValue.pythonStringRepr($0) + ": " + (o[$0] ?? .none).pythonRepr }
            return "{" + parts.joined(separator: ", ") + "}"
        case .namespace(let o):
            let parts = o.keys.map { $0 + "=" + (o[$0] ?? .none).pythonRepr }
            return "<Namespace " + parts.joined(separator: ", ") + ">"
        }
    }

    static func pythonFloat(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d < 0 ? "-inf" : "inf" }
        return "\(d)"
    }

    static func pythonStringRepr(_ s: String) -> String {
        let quote: Character = s.contains("'") && !s.contains("\"") ? "\"" : "'"
        var out = String(quote)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if Character(scalar) == quote {
                    out += "\\" + String(quote)
                } else if scalar.value < 0x20 || scalar.value == 0x7F {
                    out += String(format: "\\x%02x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out.append(quote)
        return out
    }
}

// MARK: - JSON (the `tojson` filter)

extension JinjaValue {
    /// Serialises like Python's `json.dumps(value, ensure_ascii=False, indent=indent)`, which is what
    /// Hugging Face transformers' `tojson` does. Undefined values cannot be serialised.
    func json(indent: Int?, sortKeys: Bool = false, level: Int = 0) -> String? {
        switch self {
        case .undefined: return nil
        case .none: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d):
            if d.isNaN { return "NaN" }
            if d.isInfinite { return d < 0 ? "-Infinity" : "Infinity" }
            return JinjaValue.pythonFloat(d)
        case .string(let s): return JinjaValue.jsonString(s)
        case .array(let items):
            if items.isEmpty { return "[]" }
            var parts: [String] = []
            for item in items {
                guard let text = item.json(indent: indent, sortKeys: sortKeys, level: level + 1) else { return nil }
                parts.append(text)
            }
            return JinjaValue.jsonContainer("[", "]", parts, indent: indent, level: level)
        case .object(let o), .namespace(let o):
            if o.count == 0 { return "{}" }
            var parts: [String] = []
            let keys =
                sortKeys
                ? o.keys.sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) } : o.keys
            for key in keys {
                guard let text = (o[key] ?? .none).json(indent: indent, sortKeys: sortKeys, level: level + 1) else {
                    return nil
                }
                parts.append(JinjaValue.jsonString(key) + ": " + text)
            }
            return JinjaValue.jsonContainer("{", "}", parts, indent: indent, level: level)
        }
    }

    private static func jsonContainer(
        _ open: String, _ close: String, _ parts: [String], indent: Int?,
        level: Int
    ) -> String {
        guard let indent else { return open + parts.joined(separator: ", ") + close }
        let inner = "\n" + String(repeating: " ", count: indent * (level + 1))
        let outer = "\n" + String(repeating: " ", count: indent * level)
        return open + inner + parts.joined(separator: "," + inner) + outer + close
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}

// MARK: - Literals

extension JinjaValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByFloatLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(arrayLiteral elements: JinjaValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JinjaValue)...) { self = .object(JinjaObject(elements)) }
    public init(nilLiteral: ()) { self = .none }
}
