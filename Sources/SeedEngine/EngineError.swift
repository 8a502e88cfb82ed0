/// Errors raised by the engine: bad requests, models that cannot be loaded, sequences that do not fit.
public enum EngineError: Error, Equatable, CustomStringConvertible {
    /// A generation or sampling parameter is out of range.
    case invalidParameter(name: String, message: String)
    /// The prompt (plus at least one generated token) does not fit in the context.
    case promptTooLong(tokens: Int, context: Int)
    /// The prompt tokenized to nothing.
    case emptyPrompt
    /// Loading the model or tokenizer failed.
    case modelLoad(String)
    /// The model file is not in the cache and could not be fetched.
    case modelUnavailable(String)
    /// Running the model failed.
    case inference(String)
    /// The waiting queue is full; the client should retry after `retryAfterSeconds`.
    case overloaded(retryAfterSeconds: Int)

    public var description: String {
        switch self {
        case .invalidParameter(let name, let message): "invalid value for \(name): \(message)"
        case .promptTooLong(let tokens, let context):
            "the prompt has \(tokens) tokens but the context holds \(context) (raise --ctx-size or shorten it)"
        case .emptyPrompt: "the prompt is empty"
        case .modelLoad(let message): "cannot load the model: \(message)"
        case .modelUnavailable(let message): message
        case .inference(let message): "inference failed: \(message)"
        case .overloaded(let seconds): "the server is overloaded; retry after \(seconds) s"
        }
    }
}
