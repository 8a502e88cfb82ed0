/// Why saving or loading a checkpoint failed.
public enum CheckpointError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A save request is malformed (negative step, a tensor whose shape does not match its values, ...).
    case invalidInput(reason: String)
    /// Writing failed; nothing was published under the checkpoint's name.
    case writeFailed(path: String, reason: String)
    /// A checkpoint is missing, damaged or does not verify.
    case damaged(path: String, reason: String)
    /// No checkpoint at the requested step.
    case notFound(path: String)

    public var description: String {
        switch self {
        case .invalidInput(let reason): "invalid checkpoint: \(reason)"
        case .writeFailed(let path, let reason): "cannot write checkpoint \(path): \(reason)"
        case .damaged(let path, let reason): "checkpoint \(path) is damaged: \(reason)"
        case .notFound(let path): "no checkpoint at \(path)"
        }
    }
}
