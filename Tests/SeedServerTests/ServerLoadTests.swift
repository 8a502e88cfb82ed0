import Foundation
import HummingbirdTesting
import SeedModels
import SeedTestSupport
import SeedTokenizers
import Testing

@testable import SeedEngine
@testable import SeedServer

/// What one load-test client saw.
struct LoadClientResult: Sendable {
    var status = 0
    var text = ""
    var finishReason: String?
    var completionTokens: Int?
    var sawDone = false
    var problems: [String] = []
}

/// The server under load over real sockets, with the real model and batching engine.
@Suite(.serialized) struct ServerLoadTests {
    static let questions = [
        "What is the capital of France?", "Name three colors.", "Write a haiku about rain.", "What is 2+2?",
        "Say hello in Spanish.", "What is the largest planet?", "Give me a synonym for happy.",
        "How many legs does a spider have?",
    ]

    /// A streamed chat request body.
    static func body(_ question: String, maxTokens: Int, ignoreEOS: Bool = false) -> [UInt8] {
        let content = String(decoding: encodeJSON(question), as: UTF8.self)
        return Array(
            (#"{"messages":[{"role":"user","content":\#(content)}],"max_tokens":\#(maxTokens),"#
                + #""temperature":0.7,"seed":1,"stream":true,"stream_options":{"include_usage":true},"#
                + #""ignore_eos":\#(ignoreEOS)}"#).utf8)
    }

    /// Reads a whole streamed response and checks every event: chunk objects with one id, the role first, a finish
    /// reason, usage, then `[DONE]`.
    static func streamToEnd(port: Int, question: String, maxTokens: Int) -> LoadClientResult {
        var result = LoadClientResult()
        do {
            let connection = try RawHTTPConnection(port: port, timeout: .seconds(90))
            try connection.send(
                method: "POST", path: "/v1/chat/completions", body: body(question, maxTokens: maxTokens))
            let response = try connection.readToEnd()
            result.status = response.status
            if response.headers["content-type"] != "text/event-stream" {
                result.problems.append("content-type \(response.headers["content-type"] ?? "none")")
            }
            if !response.isComplete { result.problems.append("the body ended without its last chunk") }
            let payloads = response.dataEvents
            result.sawDone = payloads.last == "[DONE]"
            var ids = Set<String>()
            for (i, payload) in payloads.dropLast().enumerated() {
                guard let chunk = try? object(.init(string: payload)) else {
                    result.problems.append("event \(i) is not a JSON object: \(payload)")
                    continue
                }
                if chunk["error"] != nil { result.problems.append("error event: \(payload)") }
                if chunk["object"] as? String != "chat.completion.chunk" {
                    result.problems.append("event \(i) is not a chunk: \(payload)")
                }
                if let id = chunk["id"] as? String { ids.insert(id) }
                let choices = chunk["choices"] as? [[String: Any]] ?? []
                if i == 0, (choices.first?["delta"] as? [String: Any])?["role"] as? String != "assistant" {
                    result.problems.append("the first chunk has no assistant role: \(payload)")
                }
                for choice in choices {
                    result.text += (choice["delta"] as? [String: Any])?["content"] as? String ?? ""
                    if let reason = choice["finish_reason"] as? String {
                        if result.finishReason != nil { result.problems.append("two finish reasons") }
                        result.finishReason = reason
                    }
                }
                if let usage = chunk["usage"] as? [String: Any] {
                    result.completionTokens = usage["completion_tokens"] as? Int
                }
            }
            if ids.count != 1 { result.problems.append("\(ids.count) distinct chunk ids") }
        } catch {
            result.problems.append("\(error)")
        }
        return result
    }

    /// Starts a long request and hangs up: right after the response head (possibly while still queued) or after the
    /// first content arrived. Returns a description of anything unexpected.
    static func disconnect(port: Int, question: String, afterContent: Bool) -> String? {
        do {
            let connection = try RawHTTPConnection(port: port, timeout: .seconds(90))
            try connection.send(
                method: "POST", path: "/v1/chat/completions", body: body(question, maxTokens: 4000, ignoreEOS: true))
            // The first event is the role chunk; content deltas follow (the engine sends no empty ones).
            let response = try connection.read { $0.dataEvents.count >= (afterContent ? 2 : 1) }
            connection.close()
            return response.status == 200 ? nil : "status \(response.status)"
        } catch {
            return "\(error)"
        }
    }

    /// 32 streaming clients and 8 that leave mid-way, all at once over real sockets against 16 parallel slots: every
    /// kept request ends with valid chunks, a finish reason, text and `[DONE]`; afterwards `/metrics` shows nothing
    /// running or waiting and every KV block free. The leavers ask for 4000 tokens each, so an idle engine proves
    /// they were cancelled.
    @Test(.timeLimit(.minutes(3)))
    func thirtyTwoStreamingClientsAndEightThatLeaveAllEndCleanlyAndFreeEveryBlock() async throws {
        let model = try LlamaModel(path: try TestPaths.smolLM2(), threads: 2)
        let tokenizer = try BPETokenizer(gguf: model.file)
        var settings = BatchingConfiguration()
        settings.maxSequences = 16
        settings.kvCacheTokens = 4096
        settings.checksBlockAccounting = true
        let engine = try BatchingEngine(model: model, tokenizer: tokenizer, modelID: "smollm2", configuration: settings)
        defer { engine.shutdown() }
        let totalBlocks = engine.statistics().kvBlocksFree
        #expect(totalBlocks == 4096 / 16)
        var configuration = ServerConfiguration()
        configuration.port = 0
        let server = OpenAIServer(service: engine, configuration: configuration)
        let started = ContinuousClock.now
        try await server.makeApplication().test(.live) { client in
            let port = try #require(client.port)
            let kept = 32
            let leavers = 8
            let maxTokens = 12
            let results = await RawHTTPClient.runOnThreads(kept + leavers) { i -> (LoadClientResult?, String?) in
                let question = Self.questions[i % Self.questions.count]
                if i < kept { return (Self.streamToEnd(port: port, question: question, maxTokens: maxTokens), nil) }
                return (nil, Self.disconnect(port: port, question: question, afterContent: i % 2 == 0))
            }
            for (i, (result, leaverProblem)) in results.enumerated() {
                if let result {
                    #expect(result.status == 200, "client \(i)")
                    #expect(result.problems.isEmpty, "client \(i): \(result.problems)")
                    #expect(result.sawDone, "client \(i)")
                    #expect(!result.text.isEmpty, "client \(i)")
                    #expect(result.finishReason == "stop" || result.finishReason == "length", "client \(i)")
                    let tokens = try #require(result.completionTokens, "client \(i): no usage")
                    #expect((1...maxTokens).contains(tokens), "client \(i): \(tokens) tokens")
                    if result.finishReason == "length" { #expect(tokens == maxTokens, "client \(i)") }
                } else {
                    #expect(leaverProblem == nil, "leaver \(i): \(leaverProblem ?? "")")
                }
            }
            // The leavers' sequences are cancelled once the server notices (a failed write, or the keep-alive
            // comment for one still queued); then nothing runs and every block is free.
            let deadline = ContinuousClock.now + .seconds(30)
            var metrics: [String: Double] = [:]
            while ContinuousClock.now < deadline {
                metrics = try await Self.scrape(client)
                if metrics["seed_running_sequences"] == 0 && metrics["seed_waiting_sequences"] == 0
                    && metrics["seed_kv_blocks_used"] == 0
                {
                    break
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(metrics["seed_running_sequences"] == 0)
            #expect(metrics["seed_waiting_sequences"] == 0)
            #expect(metrics["seed_kv_blocks_used"] == 0)
            #expect(metrics["seed_kv_blocks_free"] == Double(totalBlocks))
            #expect(metrics["seed_generation_tokens_total"].map { $0 >= Double(kept) } == true)
        }
        let stats = engine.statistics()
        #expect(stats.kvBlocksUsed == 0 && stats.kvBlocksFree == totalBlocks && stats.runningSequences == 0)
        print("load test: 40 clients in \((ContinuousClock.now - started).seconds) s")
    }

    /// `GET /metrics` as name → value for the unlabelled samples.
    static func scrape(_ client: some TestClientProtocol) async throws -> [String: Double] {
        try await client.execute(uri: "/metrics", method: .get) { response in
            var values: [String: Double] = [:]
            for line in String(buffer: response.body).split(separator: "\n") where !line.hasPrefix("#") {
                let parts = line.split(separator: " ")
                if parts.count == 2, !parts[0].contains("{"), let value = Double(parts[1]) {
                    values[String(parts[0])] = value
                }
            }
            return values
        }
    }
}
