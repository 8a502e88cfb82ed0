/// Why a training configuration was rejected. Keys are written as dotted snake_case paths (`model.hidden_size`).
public enum TrainingConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file cannot be read.
    case unreadable(path: String, reason: String)
    /// The file's extension names no supported format.
    case unsupportedFormat(path: String)
    /// The file is not valid JSON/TOML/YAML, or its top level is not a table.
    case malformed(path: String, reason: String)
    /// Keys the configuration does not have (typos are the usual cause).
    case unknownKeys([String])
    /// Required keys that are absent.
    case missingKeys([String])
    /// A value of the wrong type.
    case wrongType(key: String, expected: String, found: String)
    /// Values out of range or inconsistent with each other, one message per problem.
    case invalidValues([String])
    /// A `key=value` override that cannot be applied.
    case badOverride(String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): "cannot read configuration \(path): \(reason)"
        case .unsupportedFormat(let path):
            "configuration \(path): unsupported format (use a .json, .toml, .yaml or .yml file)"
        case .malformed(let path, let reason): "configuration \(path) is malformed: \(reason)"
        case .unknownKeys(let keys):
            "unknown configuration key\(keys.count == 1 ? "" : "s"): " + keys.joined(separator: ", ")
        case .missingKeys(let keys):
            "missing required configuration key\(keys.count == 1 ? "" : "s"): " + keys.joined(separator: ", ")
        case .wrongType(let key, let expected, let found): "configuration key \(key) must be \(expected), got \(found)"
        case .invalidValues(let problems): "invalid configuration: " + problems.joined(separator: "; ")
        case .badOverride(let text, let reason): "override '\(text)': \(reason)"
        }
    }
}
