import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SeedTestSupport
import Testing

@testable import SeedEngine
@testable import SeedServer

/// `POST /v1/embeddings` over the real all-MiniLM-L6-v2 (as `seed serve --embedding-model` loads it), against
/// sentence-transformers' embeddings in `../shared/reference/minilm`.
@Suite(.serialized) struct EmbeddingsWithModelTests {
    /// One line of `minilm/embeddings.json`.
    struct Reference: Decodable {
        let text: String
        let ids: [Int]
        let embedding: [Float]
    }

    /// One line of `minilm/tokenizer-cases.json` (only what these tests read).
    struct TokenizerCase: Decodable {
        let text: String
        let truncated: Bool
    }

    static let modelID = "all-minilm-l6-v2"

    func makeService() throws -> SentenceEmbeddingService {
        let directory = TestPaths.modelDirectory + "/all-MiniLM-L6-v2"
        guard FileManager.default.fileExists(atPath: directory + "/model.safetensors") else {
            throw TestFailure("\(directory) is missing: run scripts/fetch-models.sh (scripts/test.sh does)")
        }
        return try SentenceEmbeddingService(directory: directory, modelID: Self.modelID, threads: 2)
    }

    func makeServer(_ embeddings: SentenceEmbeddingService) throws -> OpenAIServer {
        var configuration = ServerConfiguration()
        configuration.port = 0
        return OpenAIServer(service: try FakeCompletionService(), embeddings: embeddings, configuration: configuration)
    }

    func body(_ input: [String], format: String? = nil, model: String? = modelID) -> ByteBuffer {
        var request: [String: Any] = ["input": input]
        if let format { request["encoding_format"] = format }
        if let model { request["model"] = model }
        return ByteBuffer(bytes: (try? JSONSerialization.data(withJSONObject: request)) ?? Data())
    }

    /// The vectors of a successful response, decoding base64 items (little-endian float32) as well as arrays.
    func vectors(_ response: [String: Any]) throws -> [[Float]] {
        let data = try #require(response["data"] as? [[String: Any]])
        return try data.enumerated().map { position, item in
            #expect(item["object"] as? String == "embedding")
            #expect(item["index"] as? Int == position)
            if let numbers = item["embedding"] as? [Double] { return numbers.map { Float($0) } }
            let text = try #require(item["embedding"] as? String, "embedding is neither an array nor a string")
            let bytes = try #require(Data(base64Encoded: text), "embedding is not base64")
            #expect(bytes.count % 4 == 0)
            return stride(from: 0, to: bytes.count, by: 4).map { offset in
                Float(
                    bitPattern: bytes.subdata(in: offset..<offset + 4).withUnsafeBytes {
                        $0.loadUnaligned(as: UInt32.self)
                    }.littleEndian)
            }
        }
    }

    func cosine(_ a: [Float], _ b: [Float]) -> Double {
        var dot = 0.0
        var na = 0.0
        var nb = 0.0
        for (x, y) in zip(a, b) {
            dot += Double(x) * Double(y)
            na += Double(x) * Double(x)
            nb += Double(y) * Double(y)
        }
        return dot / (na.squareRoot() * nb.squareRoot())
    }

    @Test func arrayAndStringInputsInFloatAndBase64MatchSentenceTransformers() async throws {
        // OpenAI refuses the empty string as input (tested below); every other reference text is sent.
        let references = try JSONDecoder().decode(
            [Reference].self, from: TestPaths.referenceData("minilm/embeddings.json")
        ).filter { !$0.text.isEmpty }
        let cases = try JSONDecoder().decode(
            [TokenizerCase].self, from: TestPaths.referenceData("minilm/tokenizer-cases.json"))
        let truncatedTexts = Set(cases.filter(\.truncated).map(\.text))
        let expectedTruncated = references.indices.filter { truncatedTexts.contains(references[$0].text) }
        #expect(references.count == 24)
        #expect(expectedTruncated.count == 1)
        let texts = references.map(\.text)
        let tokens = references.reduce(0) { $0 + $1.ids.count }

        let embeddings = try makeService()
        defer { embeddings.shutdown() }
        try await makeServer(embeddings).makeApplication().test(.router) { client in
            var byFormat: [String: [[Float]]] = [:]
            for format in ["float", "base64"] {
                try await client.execute(uri: "/v1/embeddings", method: .post, body: body(texts, format: format)) {
                    response in
                    #expect(response.status == .ok, "\(String(buffer: response.body))")
                    let reply = try object(response.body)
                    #expect(reply["object"] as? String == "list")
                    #expect(reply["model"] as? String == Self.modelID)
                    let usage = try #require(reply["usage"] as? [String: Any])
                    #expect(usage["prompt_tokens"] as? Int == tokens)
                    #expect(usage["total_tokens"] as? Int == tokens)
                    let got = try vectors(reply)
                    #expect(got.count == references.count)
                    var worst = 1.0
                    for (vector, reference) in zip(got, references) {
                        #expect(vector.count == 384)
                        let c = cosine(vector, reference.embedding)
                        #expect(c >= 0.9999, "\(format): cosine \(c) for \"\(reference.text)\"")
                        worst = min(worst, c)
                    }
                    print("POST /v1/embeddings (\(format)): worst cosine against sentence-transformers \(worst)")
                    // The over-long text is truncated to max_seq_length and marked; no other item is.
                    let items = try #require(reply["data"] as? [[String: Any]])
                    #expect(items.indices.filter { items[$0]["truncated"] as? Bool == true } == expectedTruncated)
                    #expect(items.filter { $0["truncated"] != nil }.count == 1)
                    byFormat[format] = got
                }
            }
            // Floats printed as JSON numbers round-trip: both encodings carry the same float32 values.
            #expect(byFormat["float"] == byFormat["base64"])

            // A single string, without "model": one item, its own token count; the same vector as in the batch
            // up to float rounding (it was computed in a batch of one instead of 24).
            let batch = try #require(byFormat["float"])
            for index in [0, 6, expectedTruncated[0]] {
                let reference = references[index]
                let single = ByteBuffer(
                    bytes: try JSONSerialization.data(withJSONObject: ["input": reference.text]))
                try await client.execute(uri: "/v1/embeddings", method: .post, body: single) { response in
                    #expect(response.status == .ok, "\(String(buffer: response.body))")
                    let reply = try object(response.body)
                    let usage = try #require(reply["usage"] as? [String: Any])
                    #expect(usage["prompt_tokens"] as? Int == reference.ids.count)
                    let got = try vectors(reply)
                    #expect(got.count == 1)
                    let vector = try #require(got.first)
                    #expect(cosine(vector, reference.embedding) >= 0.9999)
                    let difference = zip(vector, batch[index]).reduce(Float(0)) { max($0, abs($1.0 - $1.1)) }
                    #expect(difference <= 1e-5, "batch of one vs batch of 24: \(difference)")
                }
            }
        }
    }

    @Test func badInputsAnswerTheErrorEnvelope() async throws {
        let embeddings = try makeService()
        defer { embeddings.shutdown() }
        let many = String(repeating: #""a","#, count: 2048) + #""a""#
        let cases: [(body: String, status: HTTPResponse.Status, param: String?, code: String?)] = [
            (#"{"input": ""}"#, .badRequest, "input", "invalid_value"),
            (#"{"input": []}"#, .badRequest, "input", "invalid_value"),
            (#"{"input": ["fine", ""]}"#, .badRequest, "input", "invalid_value"),
            (#"{"input": 5}"#, .badRequest, "input", "invalid_value"),
            (#"{"input": [101, 2023, 102]}"#, .badRequest, "input", "invalid_value"),
            (#"{"input": [["nested"]]}"#, .badRequest, "input", "invalid_value"),
            (#"{"input": {"text": "x"}}"#, .badRequest, "input", "invalid_value"),
            (#"{"input": null}"#, .badRequest, "input", "invalid_value"),
            (#"{"model": "all-minilm-l6-v2"}"#, .badRequest, "input", "missing_required_parameter"),
            (#"{"input": "x", "model": 7}"#, .badRequest, "model", "invalid_value"),
            (#"{"input": "x", "encoding_format": "int8"}"#, .badRequest, "encoding_format", "invalid_value"),
            (#"{"input": "x", "encoding_format": 1}"#, .badRequest, "encoding_format", "invalid_value"),
            (#"{"input": "x", "dimensions": 128}"#, .badRequest, "dimensions", "invalid_value"),
            (#"{"input": "x", "dimensions": "384"}"#, .badRequest, "dimensions", "invalid_value"),
            (#"{"input": [\#(many)]}"#, .badRequest, "input", "invalid_value"),
            (#"{"input": "x""#, .badRequest, nil, "invalid_json"),
            (#"["x"]"#, .badRequest, nil, nil),
            // OpenAI answers an unknown model with 404 model_not_found, in the same envelope.
            (#"{"input": "x", "model": "text-embedding-3-small"}"#, .notFound, "model", "model_not_found"),
        ]
        try await makeServer(embeddings).makeApplication().test(.router) { client in
            for c in cases {
                try await client.execute(uri: "/v1/embeddings", method: .post, body: json(c.body)) { response in
                    #expect(response.status == c.status, "\(c.body.prefix(80)): \(String(buffer: response.body))")
                    let info = try errorInfo(response.body)
                    #expect(info.type == "invalid_request_error", "\(c.body.prefix(80))")
                    #expect(!info.message.isEmpty)
                    if let param = c.param { #expect(info.param == param, "\(c.body.prefix(80)): \(info)") }
                    if let code = c.code { #expect(info.code == code, "\(c.body.prefix(80)): \(info)") }
                }
            }
            // The server still answers afterwards.
            try await client.execute(uri: "/v1/embeddings", method: .post, body: json(#"{"input": "still here"}"#)) {
                response in
                #expect(response.status == .ok)
            }
        }
    }

    @Test func aShutDownServiceFailsClearly() async throws {
        let embeddings = try makeService()
        embeddings.shutdown()
        await #expect(throws: EngineError.modelUnavailable("the embedding service has been shut down")) {
            try await embeddings.embed(["x"])
        }
    }
}
