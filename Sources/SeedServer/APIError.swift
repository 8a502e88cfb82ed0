import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SeedEngine

/// An error answered in OpenAI's envelope: `{"error": {"message", "type", "param", "code"}}` with an HTTP status.
public struct APIError: Error, HTTPResponseError, Sendable, Equatable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var message: String
    public var type: String
    public var param: String?
    public var code: String?
    /// Seconds for a `Retry-After` header (429).
    public var retryAfter: Int?

    public init(
        status: HTTPResponse.Status, message: String, type: String, param: String? = nil, code: String? = nil,
        retryAfter: Int? = nil
    ) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.retryAfter = retryAfter
    }

    public var description: String { "\(status.code) \(type): \(message)" }

    static func invalidValue(param: String?, message: String) -> APIError {
        APIError(
            status: .badRequest, message: message, type: "invalid_request_error", param: param, code: "invalid_value")
    }

    static func missing(param: String) -> APIError {
        APIError(
            status: .badRequest, message: "'\(param)' is required", type: "invalid_request_error", param: param,
            code: "missing_required_parameter")
    }

    static func modelNotFound(_ name: String) -> APIError {
        APIError(
            status: .notFound, message: "The model '\(name)' does not exist", type: "invalid_request_error",
            param: "model", code: "model_not_found")
    }

    static func notFound(_ path: String) -> APIError {
        APIError(status: .notFound, message: "Unknown route: \(path)", type: "invalid_request_error", code: "not_found")
    }

    static var unauthorized: APIError {
        APIError(
            status: .unauthorized, message: "Incorrect or missing API key (send 'Authorization: Bearer <key>')",
            type: "invalid_request_error", code: "invalid_api_key")
    }

    static func tooLarge(limit: Int) -> APIError {
        APIError(
            status: .contentTooLarge, message: "The request body is larger than \(limit) bytes",
            type: "invalid_request_error", code: "request_too_large")
    }

    static func internalError(_ message: String) -> APIError {
        APIError(status: .internalServerError, message: message, type: "server_error", code: "internal_error")
    }

    /// Maps the engine's errors to statuses: bad requests are 400, a full queue 429, the rest 500.
    init(_ error: EngineError) {
        switch error {
        case .invalidParameter(let name, let message):
            self = .invalidValue(param: name, message: "invalid value for \(name): \(message)")
        case .promptTooLong(let tokens, let context):
            self = APIError(
                status: .badRequest,
                message:
                    "This model's maximum context length is \(context) tokens; the prompt has \(tokens) tokens "
                    + "(at least one more is needed to generate)",
                type: "invalid_request_error", param: "messages", code: "context_length_exceeded")
        case .emptyPrompt:
            self = .invalidValue(param: "prompt", message: "the prompt is empty")
        case .overloaded(let seconds):
            self = APIError(
                status: .tooManyRequests, message: "The server is overloaded; retry after \(seconds) s",
                type: "server_overloaded", code: "rate_limit_exceeded", retryAfter: seconds)
        case .modelLoad(let message), .modelUnavailable(let message), .inference(let message):
            self = .internalError(message)
        }
    }

    /// Maps decoding failures to a 400 that names the offending field.
    init(decoding error: any Error) {
        if let api = error as? APIError {
            self = api
            return
        }
        func path(_ context: DecodingError.Context) -> String? {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            guard !keys.isEmpty else { return nil }
            return keys.reduce("") { $0.isEmpty || $1.hasPrefix("[") ? $0 + $1 : $0 + "." + $1 }
        }
        switch error as? DecodingError {
        case .keyNotFound(let key, let context)?:
            let parent = path(context).map { $0 + "." } ?? ""
            self = .missing(param: parent + key.stringValue)
        case .typeMismatch(let type, let context)?:
            let name = path(context) ?? "body"
            self = .invalidValue(param: name, message: "'\(name)' has the wrong type (expected \(type))")
        case .valueNotFound(let type, let context)?:
            let name = path(context) ?? "body"
            self = .invalidValue(param: name, message: "'\(name)' must not be null (expected \(type))")
        case .dataCorrupted(let context)?:
            if let name = path(context) {
                self = .invalidValue(param: name, message: "'\(name)' is invalid: \(context.debugDescription)")
            } else {
                self = APIError(
                    status: .badRequest, message: "The request body is not valid JSON: \(context.debugDescription)",
                    type: "invalid_request_error", code: "invalid_json")
            }
        default:
            self = APIError(
                status: .badRequest, message: "The request body could not be read: \(error)",
                type: "invalid_request_error", code: "invalid_json")
        }
    }

    /// The JSON envelope.
    var body: Data {
        struct Envelope: Encodable {
            struct Detail: Encodable {
                var message: String
                var type: String
                var param: String?
                var code: String?

                func encode(to encoder: any Encoder) throws {
                    var c = encoder.container(keyedBy: CodingKeys.self)
                    try c.encode(message, forKey: .message)
                    try c.encode(type, forKey: .type)
                    try c.encode(param, forKey: .param)  // explicit null, as OpenAI sends
                    try c.encode(code, forKey: .code)
                }
                enum CodingKeys: String, CodingKey { case message, type, param, code }
            }
            var error: Detail
        }
        let envelope = Envelope(error: .init(message: message, type: type, param: param, code: code))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return (try? encoder.encode(envelope)) ?? Data(#"{"error":{"message":"error"}}"#.utf8)
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}
