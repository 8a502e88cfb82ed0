import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SeedKernels
import SeedModels
import SeedTestSupport
import SeedTokenizers
import Testing

@testable import SeedEngine
@testable import SeedServer

#if canImport(Glibc)
    import Glibc
#endif

/// The server over the real batching engine and the default model.
@Suite(.serialized) struct ServerWithModelTests {
    static let questions = [
        "What is the capital of France?", "Name three colors.", "Write a haiku about rain.", "What is 2+2?",
        "Say hello in Spanish.", "What is the largest planet?",
    ]

    func makeEngine(parallel: Int = 8) throws -> (BatchingEngine, LlamaModel, BPETokenizer) {
        let model = try LlamaModel(path: try TestPaths.smolLM2(), threads: 2, activations: .float32)
        let tokenizer = try BPETokenizer(gguf: model.file)
        var configuration = BatchingConfiguration()
        configuration.maxSequences = parallel
        configuration.kvCacheTokens = 4096
        let engine = try BatchingEngine(
            model: model, tokenizer: tokenizer, modelID: "smollm2", configuration: configuration)
        return (engine, model, tokenizer)
    }

    /// What `seed generate`'s generator produces for the chat-rendered prompt, greedily.
    func expected(_ engine: BatchingEngine, _ model: LlamaModel, _ tokenizer: BPETokenizer, _ question: String)
        throws -> String
    {
        let prompt = try engine.tokenizeChat([ChatMessage(role: "user", content: question)])
        let generator = TextGenerator(model: model, tokenizer: tokenizer, contextLength: 1024)
        return try generator.generate(prompt: prompt, options: GenerationOptions(maxTokens: 24, sampling: .greedy)).text
    }

    func chatBody(_ question: String, stream: Bool = false) -> ByteBuffer {
        let content = String(decoding: encodeJSON(question), as: UTF8.self)
        return ByteBuffer(
            string:
                #"{"messages":[{"role":"user","content":\#(content)}],"max_tokens":24,"temperature":0,"stream":\#(stream)}"#
        )
    }

    @Test func greedyChatThroughTheServerEqualsTheGeneratorAloneAndInABusyBatch() async throws {
        let (engine, model, tokenizer) = try makeEngine()
        defer { engine.shutdown() }
        let wanted = try Self.questions.map { try expected(engine, model, tokenizer, $0) }
        var configuration = ServerConfiguration()
        configuration.port = 0
        let server = OpenAIServer(service: engine, configuration: configuration)
        // In-process (the socket path is covered by the fake-engine tests and the disconnect test): a loaded machine
        // can take longer than the live test client's 20-second read timeout to finish six batched requests.
        try await server.makeApplication().test(.router) { client in
            // Alone.
            try await client.execute(uri: "/v1/chat/completions", method: .post, body: chatBody(Self.questions[0])) {
                response in
                #expect(response.status == .ok)
                let choice = try #require((try object(response.body)["choices"] as? [[String: Any]])?.first)
                #expect((choice["message"] as? [String: Any])?["content"] as? String == wanted[0])
            }
            // All at once, half of them streaming.
            let texts = try await withThrowingTaskGroup(of: (Int, String).self) { group in
                for (i, question) in Self.questions.enumerated() {
                    group.addTask {
                        try await client.execute(
                            uri: "/v1/chat/completions", method: .post, body: chatBody(question, stream: i % 2 == 1)
                        ) { response in
                            if i % 2 == 0 {
                                let choice = try #require(
                                    (try object(response.body)["choices"] as? [[String: Any]])?.first)
                                return (i, (choice["message"] as? [String: Any])?["content"] as? String ?? "")
                            }
                            var text = ""
                            for payload in events(response.body) where payload != "[DONE]" {
                                let chunk = try object(ByteBuffer(string: payload))
                                for choice in chunk["choices"] as? [[String: Any]] ?? [] {
                                    text += (choice["delta"] as? [String: Any])?["content"] as? String ?? ""
                                }
                            }
                            return (i, text)
                        }
                    }
                }
                var texts = [String](repeating: "", count: Self.questions.count)
                for try await (i, text) in group { texts[i] = text }
                return texts
            }
            #expect(texts == wanted)
        }
        let stats = engine.statistics()
        #expect(stats.kvBlocksUsed == 0)
    }

    /// A client that closes its connection mid-stream: its sequence is cancelled and its blocks come back.
    @Test func aClientThatDisconnectsMidStreamIsCancelled() async throws {
        let (engine, _, _) = try makeEngine()
        defer { engine.shutdown() }
        var configuration = ServerConfiguration()
        configuration.port = 0
        let server = OpenAIServer(service: engine, configuration: configuration)
        try await server.makeApplication().test(.live) { client in
            let port = try #require(client.port)
            let body =
                #"{"messages":[{"role":"user","content":"Tell me a long story."}],"max_tokens":2000,"ignore_eos":true,"stream":true}"#
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            try #require(fd >= 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            try #require(connected == 0)
            let request =
                "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + "Content-Length: \(body.utf8.count)\r\n\r\n" + body
            _ = request.withCString { send(fd, $0, strlen($0), 0) }
            // Read until a few content chunks have arrived, then hang up.
            var received = ""
            var buffer = [UInt8](repeating: 0, count: 4096)
            while received.components(separatedBy: "\"content\"").count < 5 {
                let n = recv(fd, &buffer, buffer.count, 0)
                if n <= 0 { break }
                received += String(decoding: buffer[0..<n], as: UTF8.self)
            }
            #expect(received.hasPrefix("HTTP/1.1 200"))
            #expect(engine.statistics().runningSequences == 1)
            close(fd)
            var stats = engine.statistics()
            for _ in 0..<300 where stats.runningSequences > 0 || stats.kvBlocksUsed > 0 {
                try await Task.sleep(for: .milliseconds(10))
                stats = engine.statistics()
            }
            #expect(stats.runningSequences == 0)
            #expect(stats.kvBlocksUsed == 0)
        }
    }
}
