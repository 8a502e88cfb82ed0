/// Errors raised while loading or running a model.
public enum ModelError: Error, Equatable, CustomStringConvertible {
    /// The file names an architecture this build cannot run.
    case unsupportedArchitecture(String)
    /// A required metadata key is missing or has the wrong type.
    case missingMetadata(String)
    /// A metadata value is out of range or inconsistent with another.
    case invalidMetadata(key: String, reason: String)
    /// A required tensor is missing.
    case missingTensor(String)
    /// A tensor has the wrong shape.
    case tensorShape(name: String, expected: [Int], actual: [Int])
    /// A tensor is stored in a format the kernels cannot use.
    case unsupportedTensorType(name: String, type: String)
    /// A token id outside the vocabulary.
    case tokenOutOfRange(id: Int, vocabularySize: Int)
    /// The sequence would grow past the context the session was created with.
    case contextOverflow(needed: Int, capacity: Int)
    /// Reading the model file failed.
    case file(String)
    /// A file the model needs is not there (`path` says which).
    case missingFile(path: String)
    /// A configuration file is malformed (`key` empty) or one of its keys has an unusable value.
    case invalidConfiguration(path: String, key: String, reason: String)
    /// The caller's input cannot be run (empty sequence, mismatched shapes, ...).
    case invalidInput(String)

    public var description: String {
        switch self {
        case .unsupportedArchitecture(let name):
            "unsupported model architecture '\(name)' (supported: llama)"
        case .missingMetadata(let key): "model metadata key '\(key)' is missing or has the wrong type"
        case .invalidMetadata(let key, let reason): "model metadata '\(key)' is invalid: \(reason)"
        case .missingTensor(let name): "model tensor '\(name)' is missing"
        case .tensorShape(let name, let expected, let actual):
            "model tensor '\(name)' has shape \(actual), expected \(expected)"
        case .unsupportedTensorType(let name, let type):
            "model tensor '\(name)' has type \(type), which the kernels do not support"
        case .tokenOutOfRange(let id, let size): "token id \(id) is outside the vocabulary (size \(size))"
        case .contextOverflow(let needed, let capacity):
            "the sequence needs \(needed) positions but the context holds \(capacity)"
        case .file(let message): message
        case .missingFile(let path): "model file '\(path)' is missing"
        case .invalidConfiguration(let path, let key, let reason):
            key.isEmpty
                ? "configuration '\(path)' is malformed: \(reason)"
                : "configuration '\(path)': '\(key)' \(reason)"
        case .invalidInput(let message): "invalid input: \(message)"
        }
    }
}
