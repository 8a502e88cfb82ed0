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
            if let text = try? c.decodeIfPresent(String.self, forKey: .content) {
                content = text
            } else if let parts = try? c.decode([Part].self, forKey: .content) {
                var text = ""
                for part in parts {
                    guard part.type == "text", let piece = part.text else {
                        throw APIError.invalidValue(
                            param: "messages.content", message: "content part type '\(part.type)' is not supported")
                    }
                    text += piece
                }
                content = text
            } else if try c.decodeNil(forKey: .content) {
                content = ""
            } else {
                throw APIError.invalidValue(
                    param: "messages.content", message: "content must be a string or an array of text parts")
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
            try c.decodeIfPresent(Int.self, forKey: .maxCompletionTokens)
            ?? c.decodeIfPresent(Int.self, forKey: .maxTokens)
        temperature = try c.decodeIfPresent(Double.self, forKey: .temperature)
        topP = try c.decodeIfPresent(Double.self, forKey: .topP)
        topK = try c.decodeIfPresent(Int.self, forKey: .topK)
        minP = try c.decodeIfPresent(Double.self, forKey: .minP)
        presencePenalty = try c.decodeIfPresent(Double.self, forKey: .presencePenalty)
        frequencyPenalty = try c.decodeIfPresent(Double.self, forKey: .frequencyPenalty)
        repetitionPenalty = try c.decodeIfPresent(Double.self, forKey: .repetitionPenalty)
        seed = try c.decodeIfPresent(Int64.self, forKey: .seed)
        if let one = try? c.decodeIfPresent(String.self, forKey: .stop) {
            stop = [one]
        } else {
            stop = try c.decodeIfPresent([String].self, forKey: .stop) ?? []
        }
        stream = try c.decodeIfPresent(Bool.self, forKey: .stream) ?? false
        includeUsage = try c.decodeIfPresent(StreamOptions.self, forKey: .streamOptions)?.include_usage ?? false
        n = try c.decodeIfPresent(Int.self, forKey: .n) ?? 1
        ignoreEOS = try c.decodeIfPresent(Bool.self, forKey: .ignoreEOS) ?? false
        // Chat sends `logprobs: true/false` and `top_logprobs: N`; completions send `logprobs: N`.
        if let flag = try? c.decodeIfPresent(Bool.self, forKey: .logprobs) {
            logprobs = flag ? (try c.decodeIfPresent(Int.self, forKey: .topLogprobs) ?? 0) : nil
        } else {
            logprobs = try c.decodeIfPresent(Int.self, forKey: .logprobs)
            if logprobs == nil, try c.decodeIfPresent(Int.self, forKey: .topLogprobs) != nil {
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
