import Foundation
import SeedEngine
import SeedTokenizers

/// `POST /v1/chat/completions` body (the fields Seed reads; unknown fields are ignored, as OpenAI does).
struct ChatCompletionRequest: Decodable, Sendable {
    struct Message: Decodable, Sendable {
        var role: String
        var content: String

        enum CodingKeys: String, CodingKey { case role, content }

        /// A content part (`{"type": "text", "text": "..."}`); other part types are rejected.
        struct Part: Decodable {
            var type: String
            var text: String?
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            role = try c.decode(String.self, forKey: .role)
            // `messages[i].content`, from where the decoder is.
            let param = parameterName(decoder.codingPath + [CodingKeys.content])
            if let text = try? c.decodeIfPresent(String.self, forKey: .content) {
                content = text
            } else if let parts = try? c.decode([Part].self, forKey: .content) {
                var text = ""
                for part in parts {
                    guard part.type == "text", let piece = part.text else {
                        throw APIError.unsupported(
                            param: param,
                            message: "content parts of type '\(part.type)' are not supported (this model reads text)")
                    }
                    text += piece
                }
                content = text
            } else if try c.decodeNil(forKey: .content) {
                content = ""
            } else {
                throw APIError.invalidValue(
                    param: param, message: "content must be a string or an array of text parts")
            }
        }
    }

    var model: String?
    var messages: [Message]
    var sampling: RequestSampling

    enum CodingKeys: String, CodingKey { case model, messages }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.decodeIfPresent(String.self, forKey: .model)
        messages = try c.decode([Message].self, forKey: .messages)
        sampling = try RequestSampling(from: decoder)
        try UnsupportedFields.reject(
            in: decoder, [.tools, .toolChoice, .functions, .functionCall, .responseFormat, .logitBias])
    }
}

/// `POST /v1/completions` body.
struct CompletionRequestBody: Decodable, Sendable {
    /// OpenAI's `prompt`: a string, an array of strings, an array of token ids, or an array of token-id arrays.
    enum Prompt: Sendable {
        case texts([String])
        case tokens([[Int]])
    }

    var model: String?
    var prompt: Prompt
    var echo: Bool
    var sampling: RequestSampling

    enum CodingKeys: String, CodingKey { case model, prompt, echo }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.decodeIfPresent(String.self, forKey: .model)
        echo = try c.decodeIfPresent(Bool.self, forKey: .echo) ?? false
        if let text = try? c.decode(String.self, forKey: .prompt) {
            prompt = .texts([text])
        } else if let texts = try? c.decode([String].self, forKey: .prompt) {
            prompt = .texts(texts)
        } else if let ids = try? c.decode([Int].self, forKey: .prompt) {
            prompt = .tokens([ids])
        } else if let batches = try? c.decode([[Int]].self, forKey: .prompt) {
            prompt = .tokens(batches)
        } else if c.contains(.prompt) {
            throw APIError.invalidValue(
                param: "prompt", message: "prompt must be a string, an array of strings or an array of token ids")
        } else {
            throw APIError.missing(param: "prompt")
        }
        sampling = try RequestSampling(from: decoder)
        try UnsupportedFields.reject(in: decoder, [.logitBias, .suffix])
    }
}

/// Fields of OpenAI's API that Seed does not implement. Sending one with a value that asks for the feature is a 400
/// naming the field (never silently ignored); the values that mean "off" (`null`, `[]`, `{}`, `"none"`, `""`,
/// `{"type": "text"}`) are accepted.
struct UnsupportedFields {
    enum Field: String, CodingKey, CaseIterable {
        case tools
        case toolChoice = "tool_choice"
        case functions
        case functionCall = "function_call"
        case responseFormat = "response_format"
        case logitBias = "logit_bias"
        case suffix
    }

    /// Throws for the first of `fields` present in the body with a value that asks for the feature.
    static func reject(in decoder: any Decoder, _ fields: [Field]) throws {
        let c = try decoder.container(keyedBy: Field.self)
        for field in fields where c.contains(field) {
            let value = try c.decode(LooseJSON.self, forKey: field)
            let name = field.rawValue
            switch (field, value) {
            case (_, .null), (.tools, .array([])), (.functions, .array([])), (.logitBias, .object([:])),
                (.toolChoice, .string("none")), (.functionCall, .string("none")), (.suffix, .string("")):
                continue
            case (.responseFormat, .object(let members)) where members["type"] == .string("text"):
                continue
            case (.responseFormat, .object(let members)):
                let kind = members["type"].flatMap { if case .string(let s) = $0 { s } else { nil } } ?? "?"
                throw APIError.unsupported(
                    param: name,
                    message: "response_format type '\(kind)' is not supported (no JSON mode); only 'text' is")
            case (.tools, _), (.toolChoice, _), (.functions, _), (.functionCall, _):
                throw APIError.unsupported(param: name, message: "tool and function calling are not supported")
            case (.logitBias, _):
                throw APIError.unsupported(param: name, message: "logit_bias is not supported")
            case (.suffix, _):
                throw APIError.unsupported(param: name, message: "suffix (fill-in-the-middle) is not supported")
            case (.responseFormat, _):
                throw APIError.invalidValue(param: name, message: "response_format must be an object")
            }
        }
    }
}

/// Any JSON value, for fields Seed only inspects.
enum LooseJSON: Decodable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([LooseJSON])
    case object([String: LooseJSON])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let value = try? c.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? c.decode(Double.self) {
            self = .number(value)
        } else if let value = try? c.decode(String.self) {
            self = .string(value)
        } else if let value = try? c.decode([LooseJSON].self) {
            self = .array(value)
        } else {
            self = .object(try c.decode([String: LooseJSON].self))
        }
    }
}

extension KeyedDecodingContainer {
    /// An optional integer field; a number that is not one (`2.5`, `1e30`, `2^70`) is a 400 naming the field, where
    /// the decoder alone would only say the body is not valid JSON.
    func decodeInteger<T: FixedWidthInteger & Decodable>(_ type: T.Type = T.self, forKey key: Key) throws -> T? {
        if let value = try? decodeIfPresent(T.self, forKey: key) { return value }
        if let number = try? decode(Double.self, forKey: key) {
            let name = parameterName(codingPath + [key])
            throw APIError.invalidValue(
                param: name, message: "'\(name)' must be an integer between \(T.min) and \(T.max), got \(number)")
        }
        return try decodeIfPresent(T.self, forKey: key)
    }
}

/// `messages[0].content` from a decoding path.
func parameterName(_ path: [any CodingKey]) -> String {
    path.reduce("") { name, key in
        if let index = key.intValue { return name + "[\(index)]" }
        return name.isEmpty ? key.stringValue : name + "." + key.stringValue
    }
}

/// The generation fields shared by chat and text completions.
struct RequestSampling: Decodable, Sendable {
    var maxTokens: Int?
    var temperature: Double?
    var topP: Double?
    var topK: Int?
    var minP: Double?
    var presencePenalty: Double?
    var frequencyPenalty: Double?
    var repetitionPenalty: Double?
    var seed: Int64?
    var stop: [String]
    var stream: Bool
    var includeUsage: Bool
    var n: Int
    /// Chat: `logprobs: true` + `top_logprobs: N`; completions: `logprobs: N`.
    var logprobs: Int?
    var ignoreEOS: Bool

    enum CodingKeys: String, CodingKey {
        case maxTokens = "max_tokens"
        case maxCompletionTokens = "max_completion_tokens"
        case temperature
        case topP = "top_p"
        case topK = "top_k"
        case minP = "min_p"
        case presencePenalty = "presence_penalty"
        case frequencyPenalty = "frequency_penalty"
        case repetitionPenalty = "repetition_penalty"
        case seed, stop, stream, n, logprobs
        case topLogprobs = "top_logprobs"
        case streamOptions = "stream_options"
        case ignoreEOS = "ignore_eos"
    }

    struct StreamOptions: Decodable {
        var include_usage: Bool?
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        maxTokens =
            try c.decodeInteger(forKey: .maxCompletionTokens) ?? c.decodeInteger(forKey: .maxTokens)
        temperature = try c.decodeIfPresent(Double.self, forKey: .temperature)
        topP = try c.decodeIfPresent(Double.self, forKey: .topP)
        topK = try c.decodeInteger(forKey: .topK)
        minP = try c.decodeIfPresent(Double.self, forKey: .minP)
        presencePenalty = try c.decodeIfPresent(Double.self, forKey: .presencePenalty)
        frequencyPenalty = try c.decodeIfPresent(Double.self, forKey: .frequencyPenalty)
        repetitionPenalty = try c.decodeIfPresent(Double.self, forKey: .repetitionPenalty)
        seed = try c.decodeInteger(forKey: .seed)
        if let one = try? c.decodeIfPresent(String.self, forKey: .stop) {
            stop = [one]
        } else {
            stop = try c.decodeIfPresent([String].self, forKey: .stop) ?? []
        }
        stream = try c.decodeIfPresent(Bool.self, forKey: .stream) ?? false
        includeUsage = try c.decodeIfPresent(StreamOptions.self, forKey: .streamOptions)?.include_usage ?? false
        n = try c.decodeInteger(forKey: .n) ?? 1
        ignoreEOS = try c.decodeIfPresent(Bool.self, forKey: .ignoreEOS) ?? false
        // Chat sends `logprobs: true/false` and `top_logprobs: N`; completions send `logprobs: N`.
        if let flag = try? c.decodeIfPresent(Bool.self, forKey: .logprobs) {
            logprobs = flag ? (try c.decodeInteger(forKey: .topLogprobs) ?? 0) : nil
        } else {
            logprobs = try c.decodeInteger(forKey: .logprobs)
            if logprobs == nil, try c.decodeInteger(forKey: .topLogprobs) as Int? != nil {
                throw APIError.invalidValue(param: "top_logprobs", message: "top_logprobs requires logprobs: true")
            }
        }
    }

    /// Checks ranges and builds the engine's options (OpenAI defaults: temperature 1, top_p 1, no top-k or min-p).
    func generationOptions(defaultMaxTokens: Int) throws(APIError) -> (GenerationOptions, topLogprobs: Int?) {
        func range(_ value: Double?, _ name: String, _ low: Double, _ high: Double) throws(APIError) {
            if let value, !(value >= low && value <= high) {
                throw .invalidValue(param: name, message: "\(name) must be between \(low) and \(high), got \(value)")
            }
        }
        try range(temperature, "temperature", 0, 2)
        try range(topP, "top_p", 0, 1)
        try range(minP, "min_p", 0, 1)
        try range(presencePenalty, "presence_penalty", -2, 2)
        try range(frequencyPenalty, "frequency_penalty", -2, 2)
        try range(repetitionPenalty, "repetition_penalty", 0.01, 10)
        if let maxTokens, maxTokens < 1 {
            throw .invalidValue(param: "max_tokens", message: "max_tokens must be at least 1, got \(maxTokens)")
        }
        if let topK, topK < 0 { throw .invalidValue(param: "top_k", message: "top_k must be >= 0, got \(topK)") }
        guard (1...16).contains(n) else { throw .invalidValue(param: "n", message: "n must be between 1 and 16") }
        guard stop.count <= 4 else { throw .invalidValue(param: "stop", message: "at most 4 stop sequences") }
        if stop.contains(where: \.isEmpty) {
            throw .invalidValue(param: "stop", message: "stop sequences must not be empty")
        }
        if let logprobs, !(0...20).contains(logprobs) {
            throw .invalidValue(
                param: "top_logprobs", message: "top_logprobs must be between 0 and 20, got \(logprobs)")
        }
        var sampling = SamplingParameters()
        sampling.temperature = Float(temperature ?? 1)
        sampling.topP = Float(topP ?? 1)
        sampling.topK = topK ?? 0
        sampling.minP = Float(minP ?? 0)
        sampling.presencePenalty = Float(presencePenalty ?? 0)
        sampling.frequencyPenalty = Float(frequencyPenalty ?? 0)
        sampling.repetitionPenalty = Float(repetitionPenalty ?? 1)
        sampling.seed = seed.map { UInt64(bitPattern: $0) } ?? UInt64.random(in: 0...UInt64.max)
        var options = GenerationOptions(maxTokens: maxTokens ?? defaultMaxTokens, sampling: sampling, stop: stop)
        options.ignoreEndOfGeneration = ignoreEOS
        return (options, logprobs)
    }
}
