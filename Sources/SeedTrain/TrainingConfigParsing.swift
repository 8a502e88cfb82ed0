import Foundation
import TOMLKit
import Yams

/// A configuration value as read from JSON, TOML or YAML, before it is checked against the schema.
public indirect enum TrainingConfigValue: Sendable, Equatable, CustomStringConvertible {
    case table([String: TrainingConfigValue])
    case array([TrainingConfigValue])
    case string(String)
    case integer(Int)
    case number(Double)
    case boolean(Bool)

    /// What kind of value this is, for error messages ("an integer", "a table", ...).
    public var kindDescription: String {
        switch self {
        case .table: "a table"
        case .array: "an array"
        case .string: "a string"
        case .integer: "an integer"
        case .number: "a number"
        case .boolean: "a boolean"
        }
    }

    public var description: String {
        switch self {
        case .table(let entries):
            "{" + entries.keys.sorted().map { "\($0) = \(entries[$0]!)" }.joined(separator: ", ") + "}"
        case .array(let items): "[" + items.map(\.description).joined(separator: ", ") + "]"
        case .string(let text): "\"\(text)\""
        case .integer(let value): "\(value)"
        case .number(let value): "\(value)"
        case .boolean(let value): "\(value)"
        }
    }

    /// The value as JSON text (numbers in Swift's shortest round-trip form).
    func jsonText() -> String {
        switch self {
        case .table(let entries):
            "{"
                + entries.keys.sorted().map { Self.jsonString($0) + ":" + entries[$0]!.jsonText() }.joined(
                    separator: ",")
                + "}"
        case .array(let items): "[" + items.map { $0.jsonText() }.joined(separator: ",") + "]"
        case .string(let text): Self.jsonString(text)
        case .integer(let value): "\(value)"
        case .number(let value): "\(value)"
        case .boolean(let value): value ? "true" : "false"
        }
    }

    private static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

extension TrainingConfigValue: Decodable {
    /// Decodes any JSON value; numbers without a fraction or exponent become integers.
    public init(from decoder: any Decoder) throws {
        if var array = try? decoder.unkeyedContainer() {
            var items: [TrainingConfigValue] = []
            while !array.isAtEnd { items.append(try array.decode(TrainingConfigValue.self)) }
            self = .array(items)
            return
        }
        if let object = try? decoder.container(keyedBy: AnyKey.self) {
            var entries: [String: TrainingConfigValue] = [:]
            for key in object.allKeys {
                entries[key.stringValue] = try object.decode(TrainingConfigValue.self, forKey: key)
            }
            self = .table(entries)
            return
        }
        let single = try decoder.singleValueContainer()
        if let value = try? single.decode(Bool.self) {
            self = .boolean(value)
        } else if let value = try? single.decode(Int.self) {
            self = .integer(value)
        } else if let value = try? single.decode(Double.self) {
            self = .number(value)
        } else if let value = try? single.decode(String.self) {
            self = .string(value)
        } else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "null is not a configuration value"))
        }
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}

/// Configuration file formats.
public enum TrainingConfigFormat: String, Sendable, CaseIterable {
    case json, toml, yaml

    /// The format named by `path`'s extension (`.json`, `.toml`, `.yaml`/`.yml`), or nil.
    public init?(path: String) {
        let lower = path.lowercased()
        if lower.hasSuffix(".json") {
            self = .json
        } else if lower.hasSuffix(".toml") {
            self = .toml
        } else if lower.hasSuffix(".yaml") || lower.hasSuffix(".yml") {
            self = .yaml
        } else {
            return nil
        }
    }
}

extension TrainingConfigValue {
    /// Parses a configuration document; `source` names it in errors.
    ///
    /// - Throws: ``TrainingConfigurationError/malformed(path:reason:)`` with the parser's message (and line and
    ///   column where the parser gives them), or when the top level is not a table.
    public static func parse(_ text: String, format: TrainingConfigFormat, source: String)
        throws(TrainingConfigurationError) -> TrainingConfigValue
    {
        let value: TrainingConfigValue
        switch format {
        case .json:
            do {
                value = try JSONDecoder().decode(TrainingConfigValue.self, from: Data(text.utf8))
            } catch {
                throw .malformed(path: source, reason: "not valid JSON: \(describeDecodingError(error))")
            }
        case .toml:
            let table: TOMLTable
            do {
                table = try TOMLTable(string: text)
            } catch let error as TOMLParseError {
                throw .malformed(
                    path: source,
                    reason:
                        "\(error.description) (line \(error.source.begin.line), column \(error.source.begin.column))")
            } catch {
                throw .malformed(path: source, reason: "\(error)")
            }
            value = try fromTOML(table, path: [], source: source)
        case .yaml:
            let node: Any?
            do {
                node = try Yams.load(yaml: text)
            } catch {
                throw .malformed(path: source, reason: "not valid YAML: \(error)")
            }
            guard let node else { throw .malformed(path: source, reason: "the document is empty") }
            value = try fromYAML(node, path: [], source: source)
        }
        guard case .table = value else {
            throw .malformed(
                path: source, reason: "the top level must be a table of sections, not \(value.kindDescription)")
        }
        return value
    }

    private static func fromTOML(_ table: TOMLTable, path: [String], source: String) throws(TrainingConfigurationError)
        -> TrainingConfigValue
    {
        var entries: [String: TrainingConfigValue] = [:]
        for (key, element) in table {
            entries[key] = try fromTOML(element.tomlValue, path: path + [key], source: source)
        }
        return .table(entries)
    }

    private static func fromTOML(_ node: TOMLValue, path: [String], source: String) throws(TrainingConfigurationError)
        -> TrainingConfigValue
    {
        let key = path.joined(separator: ".")
        switch node.type {
        case .table:
            guard let table = node.table else { break }
            return try fromTOML(table, path: path, source: source)
        case .array:
            guard let array = node.array else { break }
            var items: [TrainingConfigValue] = []
            for (index, item) in array.enumerated() {
                items.append(try fromTOML(item.tomlValue, path: path + ["[\(index)]"], source: source))
            }
            return .array(items)
        case .string:
            if let text = node.string { return .string(text) }
        case .int:
            if let value = node.int { return .integer(value) }
        case .double:
            if let value = node.double { return .number(value) }
        case .bool:
            if let value = node.bool { return .boolean(value) }
        case .date, .time, .dateTime:
            throw .malformed(path: source, reason: "\(key): dates and times are not configuration values")
        }
        throw .malformed(path: source, reason: "\(key): unreadable TOML value")
    }

    private static func fromYAML(_ node: Any, path: [String], source: String) throws(TrainingConfigurationError)
        -> TrainingConfigValue
    {
        let key = path.isEmpty ? "the top level" : path.joined(separator: ".")
        switch node {
        case let dictionary as [AnyHashable: Any]:
            var entries: [String: TrainingConfigValue] = [:]
            for (rawKey, value) in dictionary {
                guard let name = rawKey.base as? String else {
                    throw .malformed(path: source, reason: "\(key): key \(rawKey) is not a string")
                }
                entries[name] = try fromYAML(value, path: path + [name], source: source)
            }
            return .table(entries)
        case let array as [Any]:
            var items: [TrainingConfigValue] = []
            for (index, item) in array.enumerated() {
                items.append(try fromYAML(item, path: path + ["[\(index)]"], source: source))
            }
            return .array(items)
        case let value as Bool: return .boolean(value)
        case let value as Int: return .integer(value)
        case let value as Double: return .number(value)
        case let value as String: return .string(value)
        default:
            throw .malformed(
                path: source, reason: "\(key): \(type(of: node)) values (null, dates, binary) are not allowed")
        }
    }
}

// MARK: - Schema, overrides and loading

extension TrainingConfiguration {
    /// The type a configuration key holds.
    public enum ValueKind: Sendable, Equatable {
        case integer
        /// An integer `>= 0` (seeds).
        case unsignedInteger
        case number
        case boolean
        case string
        /// A string from a fixed set.
        case choice([String])

        var description: String {
            switch self {
            case .integer: "an integer"
            case .unsignedInteger: "a non-negative integer"
            case .number: "a number"
            case .boolean: "a boolean (true or false)"
            case .string: "a string"
            case .choice(let options): "one of " + options.map { "\"\($0)\"" }.joined(separator: ", ")
            }
        }
    }

    /// One key of the schema.
    public struct KeySpec: Sendable {
        public var kind: ValueKind
        public var required: Bool
    }

    /// Every section and key, with its type and whether it is required. Sections without required keys are
    /// optional.
    public static let schema: [String: [String: KeySpec]] = {
        func r(_ kind: ValueKind) -> KeySpec { KeySpec(kind: kind, required: true) }
        func o(_ kind: ValueKind) -> KeySpec { KeySpec(kind: kind, required: false) }
        return [
            "model": [
                "vocab_size": r(.integer), "hidden_size": r(.integer), "intermediate_size": r(.integer),
                "layers": r(.integer), "heads": r(.integer), "kv_heads": o(.integer), "context_length": r(.integer),
                "rope_theta": o(.number), "tie_embeddings": o(.boolean), "norm_eps": o(.number),
            ],
            "data": ["dir": r(.string), "verify_checksums": o(.boolean)],
            "training": [
                "steps": r(.integer), "batch_size": r(.integer), "micro_batch_size": o(.integer),
                "seq_len": r(.integer), "seed": o(.unsignedInteger), "threads": o(.integer),
                "precision": o(.choice(Precision.allCases.map(\.rawValue))),
            ],
            "optimizer": [
                "lr": r(.number), "min_lr": o(.number), "warmup_steps": o(.integer),
                "schedule": o(.choice(Schedule.allCases.map(\.rawValue))), "weight_decay": o(.number),
                "beta1": o(.number), "beta2": o(.number), "eps": o(.number), "grad_clip": o(.number),
            ],
            "checkpoint": ["interval": o(.integer), "keep_last": o(.integer)],
            "eval": ["interval": o(.integer), "batches": o(.integer)],
            "output": ["dir": r(.string), "log_interval": o(.integer)],
            "distributed": ["zero1": o(.boolean), "bucket_mb": o(.number), "timeout": o(.number)],
        ]
    }()

    /// A `section.key = value` override (from a command-line flag).
    public struct Override: Sendable, Equatable {
        /// Dotted key, e.g. `optimizer.lr`.
        public var key: String
        public var value: TrainingConfigValue

        public init(key: String, value: TrainingConfigValue) {
            self.key = key
            self.value = value
        }

        /// Parses `section.key=value`; the value is read as the key's type (so `data.dir=123` is a string).
        ///
        /// - Throws: ``TrainingConfigurationError/badOverride(_:reason:)`` without `=`, for an unknown key, or a
        ///   value that is not of the key's type.
        public init(parsing text: String) throws(TrainingConfigurationError) {
            guard let equals = text.firstIndex(of: "=") else {
                throw .badOverride(text, reason: "expected section.key=value")
            }
            let key = String(text[..<equals]).trimmingCharacters(in: .whitespaces)
            let raw = String(text[text.index(after: equals)...]).trimmingCharacters(in: .whitespaces)
            try self.init(key: key, text: raw)
        }

        /// Reads `text` as the type of `key`.
        ///
        /// - Throws: ``TrainingConfigurationError/badOverride(_:reason:)`` for an unknown key or a bad value.
        public init(key: String, text: String) throws(TrainingConfigurationError) {
            let parts = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2, let spec = TrainingConfiguration.schema[parts[0]]?[parts[1]] else {
                throw .badOverride("\(key)=\(text)", reason: "unknown configuration key '\(key)'")
            }
            let value: TrainingConfigValue?
            switch spec.kind {
            case .integer: value = Int(text).map { .integer($0) }
            case .unsignedInteger: value = Int(text).flatMap { $0 >= 0 ? .integer($0) : nil }
            case .number: value = Double(text).map { .number($0) }
            case .boolean: value = ["true": true, "false": false][text.lowercased()].map { .boolean($0) }
            case .string: value = .string(text)
            case .choice(let options): value = options.contains(text) ? .string(text) : nil
            }
            guard let value else {
                throw .badOverride("\(key)=\(text)", reason: "\(key) must be \(spec.kind.description)")
            }
            self.init(key: key, value: value)
        }
    }

    /// Reads, checks and validates a configuration file, applying `overrides` on top of it.
    ///
    /// - Throws: ``TrainingConfigurationError``: unreadable file, unsupported extension, syntax errors, unknown keys,
    ///   missing keys, wrong types, invalid values.
    public static func load(path: String, overrides: [Override] = []) throws(TrainingConfigurationError)
        -> TrainingConfiguration
    {
        guard let format = TrainingConfigFormat(path: path) else { throw .unsupportedFormat(path: path) }
        let bytes: [UInt8]
        do {
            bytes = try DataFileSystem.readFile(path)
        } catch {
            throw .unreadable(path: path, reason: error.reason)
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw .malformed(path: path, reason: "not valid UTF-8")
        }
        return try decode(TrainingConfigValue.parse(text, format: format, source: path), overrides: overrides)
    }

    /// Parses configuration text in `format` (see ``load(path:overrides:)``).
    public static func decode(
        _ text: String, format: TrainingConfigFormat, overrides: [Override] = [], source: String = "<text>"
    ) throws(TrainingConfigurationError) -> TrainingConfiguration {
        try decode(TrainingConfigValue.parse(text, format: format, source: source), overrides: overrides)
    }

    /// Checks a parsed tree against ``schema``, applies `overrides`, decodes and validates it.
    public static func decode(_ tree: TrainingConfigValue, overrides: [Override] = [])
        throws(TrainingConfigurationError) -> TrainingConfiguration
    {
        guard case .table(var sections) = tree else {
            throw .malformed(path: "<tree>", reason: "the top level must be a table")
        }
        // Unknown keys first: a typo in a key name is more useful to hear about than the "missing" key it causes.
        var unknown: [String] = []
        for (name, value) in sections {
            guard let keys = schema[name] else {
                unknown.append(name)
                continue
            }
            guard case .table(let entries) = value else {
                throw .wrongType(key: name, expected: "a table", found: value.kindDescription)
            }
            unknown += entries.keys.filter { keys[$0] == nil }.map { "\(name).\($0)" }
        }
        if !unknown.isEmpty { throw .unknownKeys(unknown.sorted()) }

        for override in overrides {
            let parts = override.key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2, schema[parts[0]]?[parts[1]] != nil else {
                throw .badOverride(override.key, reason: "unknown configuration key '\(override.key)'")
            }
            var entries: [String: TrainingConfigValue] = [:]
            if case .table(let existing) = sections[parts[0]] { entries = existing }
            entries[parts[1]] = override.value
            sections[parts[0]] = .table(entries)
        }

        var missing: [String] = []
        for (name, keys) in schema {
            var entries: [String: TrainingConfigValue] = [:]
            if case .table(let existing) = sections[name] { entries = existing }
            for (key, spec) in keys {
                let dotted = "\(name).\(key)"
                guard let value = entries[key] else {
                    if spec.required { missing.append(dotted) }
                    continue
                }
                try check(value, against: spec.kind, key: dotted)
            }
        }
        if !missing.isEmpty { throw .missingKeys(missing.sorted()) }

        let configuration: TrainingConfiguration
        do {
            configuration = try JSONDecoder().decode(
                TrainingConfiguration.self, from: Data(TrainingConfigValue.table(sections).jsonText().utf8))
        } catch {
            // The schema check above makes this unreachable short of a schema/Codable mismatch.
            throw .malformed(path: "<tree>", reason: describeDecodingError(error))
        }
        try configuration.validate()
        return configuration
    }

    private static func check(_ value: TrainingConfigValue, against kind: ValueKind, key: String)
        throws(TrainingConfigurationError)
    {
        switch (kind, value) {
        case (.integer, .integer), (.number, .integer), (.boolean, .boolean), (.string, .string):
            return
        case (.unsignedInteger, .integer(let number)):
            guard number >= 0 else { throw .invalidValues(["\(key) must be >= 0, got \(number)"]) }
        case (.number, .number(let number)):
            guard number.isFinite else { throw .invalidValues(["\(key) must be finite, got \(number)"]) }
        case (.choice(let options), .string(let text)):
            guard options.contains(text) else {
                throw .wrongType(key: key, expected: kind.description, found: "\"\(text)\"")
            }
        default:
            throw .wrongType(key: key, expected: kind.description, found: "\(value.kindDescription) (\(value))")
        }
    }

    /// This configuration with `overrides` applied, checked and validated again (the merge of flags over a file).
    ///
    /// - Throws: ``TrainingConfigurationError`` as ``decode(_:overrides:)``.
    public func applying(_ overrides: [Override]) throws(TrainingConfigurationError) -> TrainingConfiguration {
        try Self.decode(tree(), overrides: overrides)
    }

    /// The configuration as a value tree (every key, defaults filled in).
    public func tree() -> TrainingConfigValue {
        // Encoding plain value types to JSON and reading them back cannot fail.
        let encoder = JSONEncoder()
        guard let data = try? encoder.encode(self),
            let value = try? JSONDecoder().decode(TrainingConfigValue.self, from: data)
        else { return .table([:]) }
        return value
    }

    /// Pretty JSON with sorted snake_case keys (for logs and `state.json`).
    public func jsonText() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}
