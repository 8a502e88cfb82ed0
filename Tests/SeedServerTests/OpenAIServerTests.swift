import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import SeedEngine
@testable import SeedServer

/// JSON helpers for response bodies.
func object(_ buffer: ByteBuffer) throws -> [String: Any] {
    let value = try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView))
    guard let dictionary = value as? [String: Any] else { throw TestFailure("not a JSON object: \(value)") }
    return dictionary
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The `data:` payloads of an SSE body, in order.
func events(_ buffer: ByteBuffer) -> [String] {
    String(buffer: buffer).components(separatedBy: "\n\n").compactMap { block in
        block.hasPrefix("data: ") ? String(block.dropFirst(6)) : nil
    }
}

func errorInfo(_ buffer: ByteBuffer) throws -> (type: String, code: String?, param: String?, message: String) {
    let body = try object(buffer)
    guard let error = body["error"] as? [String: Any], let message = error["message"] as? String,
        let type = error["type"] as? String
    else { throw TestFailure("no error envelope in \(String(buffer: buffer))") }
    return (type, error["code"] as? String, error["param"] as? String, message)
}

func json(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

@Suite struct OpenAIServerTests {
    static let setups: [TestingSetup] = [.router, .live]

    func makeServer(
        _ service: FakeCompletionService, apiKey: String? = nil, maxBody: Int = 1 << 20
    ) -> OpenAIServer {
        var configuration = ServerConfiguration()
        configuration.port = 0
        configuration.apiKey = apiKey
        configuration.maxBodyBytes = maxBody
        return OpenAIServer(service: service, configuration: configuration)
    }

    @Test(arguments: setups)
    func chatCompletionAnswersInOpenAIShape(setup: TestingSetup) async throws {
        let service = try FakeCompletionService()
        try await makeServer(service).makeApplication().test(setup) { client in
            let body = #"{"model":"fake-model","messages":[{"role":"user","content":"hi"}],"max_tokens":3}"#
            try await client.execute(uri: "/v1/chat/completions", method: .post, body: json(body)) { response in
                #expect(response.status == .ok)
                let reply = try object(response.body)
                #expect((reply["id"] as? String)?.hasPrefix("chatcmpl-") == true)
                #expect(reply["object"] as? String == "chat.completion")
                #expect(reply["model"] as? String == "fake-model")
                let choice = try #require((reply["choices"] as? [[String: Any]])?.first)
                let message = try #require(choice["message"] as? [String: Any])
                #expect(message["role"] as? String == "assistant")
                #expect(message["content"] as? String == "one two three")
                #expect(choice["finish_reason"] as? String == "length")
                let usage = try #require(reply["usage"] as? [String: Any])
                #expect(usage["completion_tokens"] as? Int == 3)
                let prompt = try #require(usage["prompt_tokens"] as? Int)
                #expect(usage["total_tokens"] as? Int == prompt + 3)
            }
        }
    }

    @Test(arguments: setups)
    func streamingChatSendsRoleContentFinishUsageAndDone(setup: TestingSetup) async throws {
        let service = try FakeCompletionService()
        try await makeServer(service).makeApplication().test(setup) { client in
            let body = #"""
                {"messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"hi"}]}],
                 "max_completion_tokens":4,"stream":true,"stream_options":{"include_usage":true},"stop":[" four"]}
                """#
            try await client.execute(uri: "/v1/chat/completions", method: .post, body: json(body)) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "text/event-stream")
                let payloads = events(response.body)
                #expect(payloads.last == "[DONE]")
                let chunks = try payloads.dropLast().map { try object(ByteBuffer(string: $0)) }
                #expect(chunks.allSatisfy { $0["object"] as? String == "chat.completion.chunk" })
                let first = try #require((chunks.first?["choices"] as? [[String: Any]])?.first)
                #expect((first["delta"] as? [String: Any])?["role"] as? String == "assistant")
                var text = ""
                var finish: String?
                for chunk in chunks {
                    for choice in chunk["choices"] as? [[String: Any]] ?? [] {
                        text += (choice["delta"] as? [String: Any])?["content"] as? String ?? ""
                        if let reason = choice["finish_reason"] as? String { finish = reason }
                    }
                }
                #expect(text == "one two three")  // the stop string " four" is not leaked
                #expect(finish == "stop")
                let usage = try #require(chunks.last?["usage"] as? [String: Any])
                #expect((chunks.last?["choices"] as? [Any])?.isEmpty == true)
                #expect(usage["completion_tokens"] as? Int == 4)
            }
        }
    }

    @Test func completionsAcceptStringsTokenArraysEchoNAndLogprobs() async throws {
        let service = try FakeCompletionService()
        try await makeServer(service).makeApplication().test(.router) { client in
            let body = #"{"prompt":["a b","c"],"max_tokens":2,"n":2,"logprobs":2,"echo":true,"seed":7}"#
            try await client.execute(uri: "/v1/completions", method: .post, body: json(body)) { response in
                #expect(response.status == .ok)
                let reply = try object(response.body)
                #expect(reply["object"] as? String == "text_completion")
                let choices = try #require(reply["choices"] as? [[String: Any]])
                #expect(choices.map { $0["index"] as? Int } == [0, 1, 2, 3])
                #expect(choices[0]["text"] as? String == "a bone two")
                #expect(choices[2]["text"] as? String == "cone two")
                let logprobs = try #require(choices[0]["logprobs"] as? [String: Any])
                #expect(logprobs["tokens"] as? [String] == ["one", " two"])
                #expect(logprobs["token_logprobs"] as? [Double] == [-0.5, -0.5])
                #expect(logprobs["text_offset"] as? [Int] == [3, 6])
                #expect((logprobs["top_logprobs"] as? [[String: Double]])?.first?.count == 2)
            }
            let seeds = service.submitted.withLock { $0.map(\.options.sampling.seed) }
            #expect(seeds == [7, 8, 7, 8])
            try await client.execute(
                uri: "/v1/completions", method: .post, body: json(#"{"prompt":[1,2,3],"max_tokens":1}"#)
            ) { response in
                #expect(response.status == .ok)
                #expect(service.submitted.withLock { $0.last?.promptTokens } == [1, 2, 3])
            }
        }
    }

    @Test func chatLogprobsUseTheChatFormat() async throws {
        let service = try FakeCompletionService()
        try await makeServer(service).makeApplication().test(.router) { client in
            let body = #"{"messages":[{"role":"user","content":"x"}],"max_tokens":2,"logprobs":true,"top_logprobs":3}"#
            try await client.execute(uri: "/v1/chat/completions", method: .post, body: json(body)) { response in
                let choice = try #require((try object(response.body)["choices"] as? [[String: Any]])?.first)
                let content = try #require((choice["logprobs"] as? [String: Any])?["content"] as? [[String: Any]])
                #expect(content.count == 2)
                #expect(content[0]["token"] as? String == "one")
                #expect(content[0]["bytes"] as? [Int] == Array("one".utf8).map(Int.init))
                #expect((content[0]["top_logprobs"] as? [Any])?.count == 3)
            }
            #expect(service.submitted.withLock { $0.last?.topLogprobs } == 3)
        }
    }

    @Test(arguments: setups)
    func modelsHealthAndMetrics(setup: TestingSetup) async throws {
        let service = try FakeCompletionService()
        try await makeServer(service).makeApplication().test(setup) { client in
            try await client.execute(uri: "/health", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/v1/models", method: .get) { response in
                let data = try #require(try object(response.body)["data"] as? [[String: Any]])
                #expect(data.map { $0["id"] as? String } == ["fake-model"])
            }
            try await client.execute(uri: "/v1/models/fake-model", method: .get) { #expect($0.status == .ok) }
            try await client.execute(
                uri: "/v1/chat/completions", method: .post,
                body: json(#"{"messages":[{"role":"user","content":"x"}],"max_tokens":2}"#)
            ) { #expect($0.status == .ok) }
            try await client.execute(uri: "/metrics", method: .get) { response in
                let text = String(buffer: response.body)
                #expect(text.contains("seed_requests_total{route=\"/v1/chat/completions\",status=\"200\"} 1"))
                #expect(text.contains("seed_generation_tokens_total 2"))
                #expect(text.contains("seed_time_to_first_token_seconds_count 1"))
                #expect(text.contains("seed_kv_blocks_free 10"))
                #expect(text.contains("seed_running_sequences 0"))
            }
        }
    }

    /// Every class of bad input gets a 4xx in OpenAI's envelope, naming the parameter where there is one.
    @Test(arguments: setups)
    func badRequestsGetClearErrors(setup: TestingSetup) async throws {
        let service = try FakeCompletionService()
        let cases: [(String, String, HTTPResponse.Status, String?)] = [
            ("/v1/chat/completions", "{not json", .badRequest, nil),
            ("/v1/chat/completions", "[]", .badRequest, nil),
            ("/v1/chat/completions", #"{"model":"fake-model"}"#, .badRequest, "messages"),
            ("/v1/chat/completions", #"{"messages":[]}"#, .badRequest, "messages"),
            ("/v1/chat/completions", #"{"messages":"hi"}"#, .badRequest, "messages"),
            (
                "/v1/chat/completions", #"{"messages":[{"role":"wizard","content":"x"}]}"#, .badRequest,
                "messages[0].role"
            ),
            ("/v1/chat/completions", #"{"messages":[{"content":"x"}]}"#, .badRequest, "messages[0].role"),
            ("/v1/chat/completions", #"{"messages":[{"role":"user","content":5}]}"#, .badRequest, "messages.content"),
            (
                "/v1/chat/completions", #"{"messages":[{"role":"user","content":"x"}],"temperature":3}"#, .badRequest,
                "temperature"
            ),
            (
                "/v1/chat/completions", #"{"messages":[{"role":"user","content":"x"}],"temperature":"hot"}"#,
                .badRequest, "temperature"
            ),
            (
                "/v1/chat/completions", #"{"messages":[{"role":"user","content":"x"}],"max_tokens":-1}"#, .badRequest,
                "max_tokens"
            ),
            (
                "/v1/chat/completions", #"{"messages":[{"role":"user","content":"x"}],"max_tokens":1e400}"#,
                .badRequest, nil
            ),
            (
                "/v1/chat/completions",
                #"{"messages":[{"role":"user","content":"x"}],"max_tokens":99999999999999999999999}"#, .badRequest, nil
            ),
            ("/v1/chat/completions", #"{"messages":[{"role":"user","content":"x"}],"n":0}"#, .badRequest, "n"),
            (
                "/v1/chat/completions", #"{"messages":[{"role":"user","content":"x"}],"top_p":-0.5}"#, .badRequest,
                "top_p"
            ),
            (
                "/v1/chat/completions", #"{"messages":[{"role":"user","content":"x"}],"stop":["a","b","c","d","e"]}"#,
                .badRequest, "stop"
            ),
            (
                "/v1/chat/completions",
                #"{"messages":[{"role":"user","content":"x"}],"logprobs":true,"top_logprobs":50}"#, .badRequest,
                "top_logprobs"
            ),
            (
                "/v1/chat/completions", #"{"model":"gpt-9","messages":[{"role":"user","content":"x"}]}"#, .notFound,
                "model"
            ),
            (
                "/v1/chat/completions",
                #"{"messages":[{"role":"user","content":"\#(String(repeating: "word ", count: 80))"}]}"#, .badRequest,
                "messages"
            ),
            ("/v1/completions", #"{"max_tokens":3}"#, .badRequest, "prompt"),
            ("/v1/completions", #"{"prompt":{"a":1}}"#, .badRequest, "prompt"),
            ("/v1/completions", #"{"prompt":""}"#, .badRequest, "prompt"),
            ("/v1/embeddings", #"{"input":"x"}"#, .badRequest, "model"),
            ("/v1/nothing", "{}", .notFound, nil),
        ]
        try await makeServer(service).makeApplication().test(setup) { client in
            for (uri, body, status, param) in cases {
                try await client.execute(uri: uri, method: .post, body: json(body)) { response in
                    #expect(response.status == status, "\(uri) \(body)")
                    let info = try errorInfo(response.body)
                    #expect(!info.message.isEmpty)
                    if let param { #expect(info.param == param, "\(body): \(info)") }
                }
            }
            // Invalid UTF-8 in the body.
            var invalid = ByteBuffer(string: #"{"messages":[{"role":"user","content":""#)
            invalid.writeBytes([0xFF, 0xFE, 0x80])
            invalid.writeString(#""}]}"#)
            try await client.execute(uri: "/v1/chat/completions", method: .post, body: invalid) { response in
                #expect(response.status == .badRequest)
                _ = try errorInfo(response.body)
            }
            try await client.execute(uri: "/v1/unknown", method: .get) { response in
                #expect(response.status == .notFound)
                let info = try errorInfo(response.body)
                #expect(info.code == "not_found")
            }
        }
        #expect(service.submitted.withLock { $0.isEmpty })
    }

    @Test(arguments: setups)
    func apiKeyIsRequiredOnV1Routes(setup: TestingSetup) async throws {
        let service = try FakeCompletionService()
        try await makeServer(service, apiKey: "s3cret").makeApplication().test(setup) { client in
            try await client.execute(uri: "/v1/models", method: .get) { response in
                #expect(response.status == .unauthorized)
                let info = try errorInfo(response.body)
                #expect(info.code == "invalid_api_key")
            }
            try await client.execute(uri: "/v1/models", method: .get, headers: [.authorization: "Bearer s3cre"]) {
                #expect($0.status == .unauthorized)
            }
            try await client.execute(uri: "/v1/models", method: .get, headers: [.authorization: "Bearer s3cret"]) {
                #expect($0.status == .ok)
            }
            try await client.execute(uri: "/health", method: .get) { #expect($0.status == .ok) }
        }
        #expect(APIKeyMiddleware.constantTimeEqual(Array("abc".utf8), Array("abc".utf8)))
        #expect(!APIKeyMiddleware.constantTimeEqual(Array("abc".utf8), Array("abcd".utf8)))
        #expect(!APIKeyMiddleware.constantTimeEqual([], Array("a".utf8)))
    }

    @Test(arguments: setups)
    func oversizedBodiesAndOverloadAreRefused(setup: TestingSetup) async throws {
        let service = try FakeCompletionService()
        try await makeServer(service, maxBody: 2048).makeApplication().test(setup) { client in
            let big = #"{"messages":[{"role":"user","content":""# + String(repeating: "x", count: 5000) + #""}]}"#
            try await client.execute(uri: "/v1/chat/completions", method: .post, body: json(big)) { response in
                #expect(response.status == .contentTooLarge)
                let info = try errorInfo(response.body)
                #expect(info.code == "request_too_large")
            }
            service.overloaded.store(true, ordering: .relaxed)
            try await client.execute(
                uri: "/v1/chat/completions", method: .post,
                body: json(#"{"messages":[{"role":"user","content":"x"}]}"#)
            ) { response in
                #expect(response.status == .tooManyRequests)
                #expect(response.headers[.retryAfter] == "3")
                let info = try errorInfo(response.body)
                #expect(info.type == "server_overloaded")
            }
        }
    }

    @Test func embeddingsWithoutAModelAnswerAClearError() async throws {
        let service = try FakeCompletionService()
        try await makeServer(service).makeApplication().test(.router) { client in
            try await client.execute(uri: "/v1/embeddings", method: .post, body: json(#"{"input":"hello"}"#)) {
                response in
                #expect(response.status == .badRequest)
                let info = try errorInfo(response.body)
                #expect(info.code == "model_not_available")
                #expect(info.message.contains("--embedding-model"))
            }
        }
    }
}
