/// Errors of the training core: bad model shapes, bad batches, parameter files and optimiser state that do not fit.
public enum TrainingError: Error, Equatable, CustomStringConvertible {
    /// The model configuration cannot be trained (the reason says which field).
    case invalidConfiguration(String)
    /// A batch has the wrong size or layout.
    case invalidBatch(String)
    /// A token id outside the vocabulary.
    case tokenOutOfRange(token: Int, vocabularySize: Int)
    /// A parameter file lacks a tensor the model needs.
    case missingTensor(path: String, name: String)
    /// A parameter file holds a tensor the model does not have.
    case unexpectedTensor(path: String, name: String)
    /// A tensor has the wrong shape.
    case tensorShape(path: String, name: String, expected: [Int], actual: [Int])
    /// A tensor has an element type that is not a floating-point type.
    case tensorType(path: String, name: String, dtype: String)
    /// Reading or writing a file failed.
    case file(String)
    /// Optimiser state does not match the parameters (the reason says how).
    case invalidOptimizerState(String)
    /// A hyperparameter is out of range.
    case invalidHyperparameter(name: String, reason: String)

    public var description: String {
        switch self {
        case .invalidConfiguration(let reason): "invalid model configuration: \(reason)"
        case .invalidBatch(let reason): "invalid batch: \(reason)"
        case .tokenOutOfRange(let token, let size): "token id \(token) is outside the vocabulary (size \(size))"
        case .missingTensor(let path, let name): "'\(path)' has no tensor '\(name)'"
        case .unexpectedTensor(let path, let name): "'\(path)' has a tensor '\(name)' that the model does not use"
        case .tensorShape(let path, let name, let expected, let actual):
            "'\(path)': tensor '\(name)' has shape \(actual), expected \(expected)"
        case .tensorType(let path, let name, let dtype):
            "'\(path)': tensor '\(name)' has element type \(dtype), expected a floating-point type"
        case .file(let message): message
        case .invalidOptimizerState(let reason): "invalid optimizer state: \(reason)"
        case .invalidHyperparameter(let name, let reason): "invalid \(name): \(reason)"
        }
    }
}
