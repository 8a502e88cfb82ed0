import Foundation
import SeedEngine

/// `usage` of a response.
struct Usage: Encodable, Sendable {
    struct PromptDetails: Encodable, Sendable {
        var cached_tokens: Int
    }
    var prompt_tokens: Int
    var completion_tokens: Int
    var total_tokens: Int
    var prompt_tokens_details: PromptDetails

    init(prompt: Int, completion: Int, cached: Int) {
        prompt_tokens = prompt
        completion_tokens = completion
        total_tokens = prompt + completion
        prompt_tokens_details = PromptDetails(cached_tokens: cached)
    }
}

/// Chat-format log-probabilities: `{"content": [{token, logprob, bytes, top_logprobs}]}`.
struct ChatLogprobs: Encodable, Sendable {
    struct Top: Encodable, Sendable {
        var token: String
        var logprob: Float
        var bytes: [UInt8]
    }
    struct Entry: Encodable, Sendable {
        var token: String
        var logprob: Float
        var bytes: [UInt8]
        var top_logprobs: [Top]
    }
    var content: [Entry]

    init(_ steps: [TokenLogprobs]) {
        content = steps.map { step in
            Entry(
                token: step.chosen.text, logprob: step.chosen.logprob, bytes: step.chosen.bytes,
                top_logprobs: step.top.map { Top(token: $0.text, logprob: $0.logprob, bytes: $0.bytes) })
        }
    }
}

/// Completions-format log-probabilities: parallel arrays plus one `{token: logprob}` map per token.
struct CompletionLogprobs: Encodable, Sendable {
    var tokens: [String] = []
    var token_logprobs: [Float] = []
    var top_logprobs: [[String: Float]] = []
    var text_offset: [Int] = []

    mutating func append(_ steps: [TokenLogprobs], offset: inout Int) {
        for step in steps {
            tokens.append(step.chosen.text)
            token_logprobs.append(step.chosen.logprob)
            var top: [String: Float] = [:]
            for candidate in step.top where top[candidate.text] == nil { top[candidate.text] = candidate.logprob }
            top_logprobs.append(top)
            text_offset.append(offset)
            offset += step.chosen.text.utf8.count
        }
    }
}

struct ChatMessageOut: Encodable, Sendable {
    var role = "assistant"
    var content: String
}

struct ChatChoice: Encodable, Sendable {
    var index: Int
    var message: ChatMessageOut
    var logprobs: ChatLogprobs?
    var finish_reason: String
}

struct ChatCompletionResponse: Encodable, Sendable {
    var id: String
    var object = "chat.completion"
    var created: Int
    var model: String
    var choices: [ChatChoice]
    var usage: Usage
}

struct ChatDelta: Encodable, Sendable {
    var role: String?
    var content: String?
}

struct ChatChunkChoice: Encodable, Sendable {
    var index: Int
    var delta: ChatDelta
    var logprobs: ChatLogprobs?
    var finish_reason: String?
}

struct ChatCompletionChunk: Encodable, Sendable {
    var id: String
    var object = "chat.completion.chunk"
    var created: Int
    var model: String
    var choices: [ChatChunkChoice]
    var usage: Usage?
}

struct TextChoice: Encodable, Sendable {
    var text: String
    var index: Int
    var logprobs: CompletionLogprobs?
    var finish_reason: String?
}

struct TextCompletionResponse: Encodable, Sendable {
    var id: String
    var object = "text_completion"
    var created: Int
    var model: String
    var choices: [TextChoice]
    var usage: Usage?
}

struct ModelList: Encodable, Sendable {
    struct Model: Encodable, Sendable {
        var id: String
        var object = "model"
        var created: Int
        var owned_by = "seed"
    }
    var object = "list"
    var data: [Model]
}

/// Encodes response bodies (one encoder per call: `JSONEncoder` is not `Sendable`).
func encodeJSON(_ value: some Encodable) -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.withoutEscapingSlashes]
    do {
        return try encoder.encode(value)
    } catch {
        return Data(#"{"error":{"message":"response encoding failed","type":"server_error"}}"#.utf8)
    }
}
