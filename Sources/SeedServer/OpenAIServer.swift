import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import SeedEngine
import SeedTokenizers

/// Settings of an ``OpenAIServer``.
public struct ServerConfiguration: Sendable {
    /// Address to bind (loopback by default).
    public var host = "127.0.0.1"
    /// Port to bind; 0 picks a free one.
    public var port = 8080
    /// When set, `/v1/*` requests must send `Authorization: Bearer <apiKey>`.
    public var apiKey: String?
    /// Largest request body accepted.
    public var maxBodyBytes = 4 << 20
    /// Other names clients may use for the model.
    public var modelAliases: [String] = []
    /// After this long without a write, a streamed response sends an SSE comment (`: keep-alive`), so that a client
    /// that left during a long prompt or a wait for a slot is noticed (the write fails) and its requests cancelled.
    public var streamHeartbeat: Duration = .seconds(1)

    public init() {}
}

/// An OpenAI-compatible HTTP API over a ``CompletionService`` (and optionally an ``EmbeddingService``):
/// chat and text completions with SSE streaming, models, embeddings, health and Prometheus metrics.
public final class OpenAIServer: Sendable {
    public let service: any CompletionService
    public let embeddings: (any EmbeddingService)?
    public let configuration: ServerConfiguration
    let metrics = ServerMetrics()
    let logger: Logger
    let created = Int(Date().timeIntervalSince1970)

    public init(
        service: any CompletionService, embeddings: (any EmbeddingService)? = nil,
        configuration: ServerConfiguration = ServerConfiguration(), logger: Logger = Logger(label: "seed.server")
    ) {
        self.service = service
        self.embeddings = embeddings
        self.configuration = configuration
        self.logger = logger
    }

    /// The routes, with error, auth, logging and metrics middleware.
    public func makeRouter() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: RequestAccountingMiddleware(server: self))
        router.add(middleware: ErrorEnvelopeMiddleware())
        router.add(middleware: APIKeyMiddleware(key: configuration.apiKey))
        router.get("/health") { _, _ -> Response in
            Self.json(Data(#"{"status":"ok"}"#.utf8))
        }
        router.get("/metrics") { [self] _, _ -> Response in
            let text = metrics.render(statistics: service.statistics())
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
        }
        router.get("/v1/models") { [self] _, _ -> Response in
            var models = [ModelList.Model(id: service.modelID, created: created)]
            if let embeddings { models.append(ModelList.Model(id: embeddings.modelID, created: created)) }
            return Self.json(encodeJSON(ModelList(data: models)))
        }
        router.get("/v1/models/{id}") { [self] _, context -> Response in
            let id = context.parameters.get("id") ?? ""
            guard id == service.modelID || configuration.modelAliases.contains(id) || id == embeddings?.modelID
            else { throw APIError.modelNotFound(id) }
            return Self.json(encodeJSON(ModelList.Model(id: id, created: created)))
        }
        router.post("/v1/chat/completions") { [self] request, _ -> Response in
            try await chatCompletions(try await body(of: request))
        }
        router.post("/v1/completions") { [self] request, _ -> Response in
            try await textCompletions(try await body(of: request))
        }
        router.post("/v1/embeddings") { [self] request, _ -> Response in
            try await embed(try await body(of: request))
        }
        return router
    }

    /// A Hummingbird application serving ``makeRouter()``; `onRunning` receives the bound port.
    public func makeApplication(onRunning: @escaping @Sendable (Int) async -> Void = { _ in })
        -> some ApplicationProtocol
    {
        Application(
            router: makeRouter(),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "seed"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) },
            logger: logger)
    }

    // MARK: Request plumbing

    static func json(_ data: Data, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    private func body(of request: Request) async throws(APIError) -> Data {
        let limit = configuration.maxBodyBytes
        if let declared = request.headers[.contentLength].flatMap(Int.init), declared > limit {
            throw .tooLarge(limit: limit)
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch {
            throw .tooLarge(limit: limit)
        }
        return Data(buffer.readableBytesView)
    }

    private func decode<T: Decodable>(_ type: T.Type, from data: Data) throws(APIError) -> T {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch {
            throw APIError(decoding: error)
        }
    }

    private func checkModel(_ name: String?) throws(APIError) {
        guard let name else { return }
        guard name == service.modelID || configuration.modelAliases.contains(name) else {
            throw .modelNotFound(name)
        }
    }

    private func submit(_ request: CompletionRequest) throws(APIError) -> AsyncThrowingStream<
        CompletionEvent, any Error
    > {
        do {
            return try service.submit(request)
        } catch {
            throw APIError(error)
        }
    }

    private static func requestID(_ prefix: String) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        return prefix + String((0..<24).map { _ in alphabet.randomElement()! })
    }

    /// One engine request per (prompt, choice); choice `i` of prompt `p` has index `p * n + i` and seed `seed + i`.
    private func submitChoices(
        prompts: [[Int]], sampling: RequestSampling
    ) throws(APIError) -> (streams: [AsyncThrowingStream<CompletionEvent, any Error>], promptTokens: Int) {
        var streams: [AsyncThrowingStream<CompletionEvent, any Error>] = []
        var promptTokens = 0
        for prompt in prompts {
            let remaining = max(1, service.contextLength - prompt.count)
            let (options, topLogprobs) = try sampling.generationOptions(defaultMaxTokens: remaining)
            promptTokens += prompt.count
            for i in 0..<sampling.n {
                var choice = options
                choice.sampling.seed = options.sampling.seed &+ UInt64(i)
                streams.append(
                    try submit(CompletionRequest(promptTokens: prompt, options: choice, topLogprobs: topLogprobs)))
            }
        }
        return (streams, promptTokens)
    }

    /// What one choice produced.
    struct ChoiceResult {
        var text = ""
        var logprobs: [TokenLogprobs] = []
        var summary: CompletionSummary?
    }

    /// Runs every choice to the end (non-streaming responses).
    private func collect(_ streams: [AsyncThrowingStream<CompletionEvent, any Error>]) async throws -> [ChoiceResult] {
        try await withThrowingTaskGroup(of: (Int, ChoiceResult).self) { group in
            for (index, stream) in streams.enumerated() {
                group.addTask { [metrics] in
                    var result = ChoiceResult()
                    var last: ContinuousClock.Instant?
                    for try await event in stream {
                        switch event {
                        case .delta(let text, let logprobs):
                            result.text += text
                            result.logprobs += logprobs
                            let now = ContinuousClock.now
                            if let last { metrics.interTokenLatency.record((now - last).seconds) }
                            last = now
                        case .finished(let summary):
                            result.summary = summary
                        }
                    }
                    return (index, result)
                }
            }
            var results = [ChoiceResult](repeating: ChoiceResult(), count: streams.count)
            for try await (index, result) in group { results[index] = result }
            return results
        }
    }

    private func record(_ summary: CompletionSummary) {
        metrics.generatedTokens.increment(by: Int64(summary.completionTokens))
        metrics.timeToFirstToken.record(summary.timeToFirstToken)
    }

    /// What a streamed response waits for: an engine event of one choice, the end of a choice's stream, or a
    /// heartbeat tick.
    private enum StreamItem: Sendable {
        case event(choice: Int, CompletionEvent)
        case end(choice: Int, (any Error)?)
        case tick
    }

    /// Writes the choices of one request as server-sent events and ends the response.
    ///
    /// In order: each engine delta through `delta` (nil skips it) and each choice's end through `finish`, as they
    /// come; a `: keep-alive` comment after ``ServerConfiguration/streamHeartbeat`` of silence; the usage chunk
    /// (`usage`) when `includeUsage`; an `error` event if the engine fails mid-stream; then `data: [DONE]`. When a
    /// write fails (the client went away) it stops at once, which cancels every choice's engine request.
    ///
    /// - Parameters:
    ///   - streams: one engine stream per choice; choice `i` is `streams[i]`.
    ///   - promptTokens: prompt tokens over all choices, for the usage chunk.
    private func writeEvents(
        _ streams: [AsyncThrowingStream<CompletionEvent, any Error>], to writer: inout any ResponseBodyWriter,
        promptTokens: Int, includeUsage: Bool,
        delta: (_ choice: Int, _ text: String, _ logprobs: [TokenLogprobs]) -> ByteBuffer?,
        finish: (_ choice: Int, _ reason: FinishReason) -> ByteBuffer,
        usage: (Usage) -> ByteBuffer
    ) async throws {
        let heartbeat = configuration.streamHeartbeat
        let clock = ContinuousClock()
        var lastWrite = clock.now
        func send(_ buffer: ByteBuffer, _ writer: inout any ResponseBodyWriter) async throws(WriteFailure) {
            do {
                try await writer.write(buffer)
            } catch {
                throw WriteFailure()
            }
            lastWrite = clock.now
        }
        let (merged, sink) = AsyncStream<StreamItem>.makeStream()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (choice, stream) in streams.enumerated() {
                group.addTask {
                    do {
                        for try await event in stream { sink.yield(.event(choice: choice, event)) }
                        sink.yield(.end(choice: choice, nil))
                    } catch {
                        sink.yield(.end(choice: choice, error))
                    }
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: heartbeat / 2)
                    sink.yield(.tick)
                }
            }
            var open = streams.count
            var completion = 0
            var cached = 0
            var lastToken = [ContinuousClock.Instant?](repeating: nil, count: streams.count)
            do {
                for await item in merged {
                    switch item {
                    case .tick:
                        if clock.now - lastWrite >= heartbeat {
                            try await send(ByteBuffer(string: ": keep-alive\n\n"), &writer)
                        }
                    case .event(let choice, .delta(let text, let logprobs)):
                        let now = clock.now
                        if let previous = lastToken[choice] {
                            metrics.interTokenLatency.record((now - previous).seconds)
                        }
                        lastToken[choice] = now
                        if let chunk = delta(choice, text, logprobs) { try await send(chunk, &writer) }
                    case .event(let choice, .finished(let summary)):
                        record(summary)
                        completion += summary.completionTokens
                        cached = max(cached, summary.cachedPromptTokens)
                        try await send(finish(choice, summary.finishReason), &writer)
                    case .end(_, let error?):
                        throw error
                    case .end:
                        open -= 1
                    }
                    if open == 0 { break }
                }
                if includeUsage {
                    try await send(usage(Usage(prompt: promptTokens, completion: completion, cached: cached)), &writer)
                }
            } catch let error where !(error is WriteFailure) {
                try await send(Self.streamError(error), &writer)
            }
            sink.finish()
            group.cancelAll()
        }
        try await send(ByteBuffer(string: "data: [DONE]\n\n"), &writer)
        try await writer.finish(nil)
    }

    private static func sse(_ data: Data) -> ByteBuffer {
        var buffer = ByteBuffer(string: "data: ")
        buffer.writeBytes(data)
        buffer.writeString("\n\n")
        return buffer
    }

    private static func streamingResponse(
        _ body: @escaping @Sendable (inout any ResponseBodyWriter) async throws -> Void
    ) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache", .connection: "keep-alive"],
            body: ResponseBody { writer in try await body(&writer) })
    }

    /// An error that happens after the stream started: sent as an `error` event, then the stream ends.
    private static func streamError(_ error: any Error) -> ByteBuffer {
        let api = (error as? EngineError).map(APIError.init) ?? (error as? APIError) ?? .internalError("\(error)")
        return sse(api.body)
    }

    // MARK: Chat completions

    static let knownRoles: Set<String> = ["system", "developer", "user", "assistant", "tool"]

    private func chatCompletions(_ data: Data) async throws -> Response {
        let request = try decode(ChatCompletionRequest.self, from: data)
        try checkModel(request.model)
        guard !request.messages.isEmpty else {
            throw APIError.invalidValue(param: "messages", message: "messages must not be empty")
        }
        for (i, message) in request.messages.enumerated() where !Self.knownRoles.contains(message.role) {
            throw APIError.invalidValue(
                param: "messages[\(i)].role",
                message: "unknown role '\(message.role)' (expected system, developer, user, assistant or tool)")
        }
        let messages = request.messages.map {
            ChatMessage(role: $0.role == "developer" ? "system" : $0.role, content: $0.content)
        }
        let prompt: [Int]
        do {
            prompt = try service.tokenizeChat(messages)
        } catch {
            throw APIError(error)
        }
        let sampling = request.sampling
        let (streams, promptTokens) = try submitChoices(prompts: [prompt], sampling: sampling)
        metrics.promptTokens.increment(by: Int64(promptTokens))
        let id = Self.requestID("chatcmpl-")
        let model = request.model ?? service.modelID
        let created = Int(Date().timeIntervalSince1970)
        let wantsLogprobs = sampling.logprobs != nil

        guard sampling.stream else {
            let results = try await collect(streams)
            var completion = 0
            var cached = 0
            var choices: [ChatChoice] = []
            for (index, result) in results.enumerated() {
                guard let summary = result.summary else { throw APIError.internalError("a choice ended early") }
                record(summary)
                completion += summary.completionTokens
                cached = max(cached, summary.cachedPromptTokens)
                choices.append(
                    ChatChoice(
                        index: index, message: ChatMessageOut(content: result.text),
                        logprobs: wantsLogprobs ? ChatLogprobs(result.logprobs) : nil,
                        finish_reason: summary.finishReason.rawValue))
            }
            let response = ChatCompletionResponse(
                id: id, created: created, model: model, choices: choices,
                usage: Usage(prompt: promptTokens, completion: completion, cached: cached))
            return Self.json(encodeJSON(response))
        }

        let includeUsage = sampling.includeUsage
        return Self.streamingResponse { [self] writer in
            func chunk(_ choices: [ChatChunkChoice], usage: Usage? = nil) -> ByteBuffer {
                Self.sse(
                    encodeJSON(
                        ChatCompletionChunk(id: id, created: created, model: model, choices: choices, usage: usage)))
            }
            for index in streams.indices {
                try await writer.write(
                    chunk([ChatChunkChoice(index: index, delta: ChatDelta(role: "assistant", content: ""))]))
            }
            try await writeEvents(
                streams, to: &writer, promptTokens: promptTokens, includeUsage: includeUsage,
                delta: { index, text, logprobs in
                    chunk([
                        ChatChunkChoice(
                            index: index, delta: ChatDelta(content: text),
                            logprobs: wantsLogprobs ? ChatLogprobs(logprobs) : nil)
                    ])
                },
                finish: { index, reason in
                    chunk([ChatChunkChoice(index: index, delta: ChatDelta(), finish_reason: reason.rawValue)])
                },
                usage: { chunk([], usage: $0) })
        }
    }

    // MARK: Text completions

    private func textCompletions(_ data: Data) async throws -> Response {
        let request = try decode(CompletionRequestBody.self, from: data)
        try checkModel(request.model)
        let tokenizer = service.tokenizer
        let prompts: [[Int]]
        let promptTexts: [String]
        switch request.prompt {
        case .texts(let texts):
            guard !texts.isEmpty else {
                throw APIError.invalidValue(param: "prompt", message: "prompt must not be empty")
            }
            prompts = texts.map { tokenizer.encode($0, addSpecial: true, parseSpecial: true) }
            promptTexts = texts
        case .tokens(let batches):
            guard !batches.isEmpty else {
                throw APIError.invalidValue(param: "prompt", message: "prompt must not be empty")
            }
            let vocabulary = tokenizer.vocabularySize
            if let bad = batches.joined().first(where: { $0 < 0 || $0 >= vocabulary }) {
                throw APIError.invalidValue(
                    param: "prompt", message: "token id \(bad) is outside the vocabulary (0..<\(vocabulary))")
            }
            prompts = batches
            promptTexts = batches.map { ids in (try? tokenizer.decodeString(ids)) ?? "" }
        }
        let sampling = request.sampling
        let (streams, promptTokens) = try submitChoices(prompts: prompts, sampling: sampling)
        metrics.promptTokens.increment(by: Int64(promptTokens))
        let id = Self.requestID("cmpl-")
        let model = request.model ?? service.modelID
        let created = Int(Date().timeIntervalSince1970)
        let wantsLogprobs = sampling.logprobs != nil
        let n = sampling.n
        let echo = request.echo

        guard sampling.stream else {
            let results = try await collect(streams)
            var completion = 0
            var cached = 0
            var choices: [TextChoice] = []
            for (index, result) in results.enumerated() {
                guard let summary = result.summary else { throw APIError.internalError("a choice ended early") }
                record(summary)
                completion += summary.completionTokens
                cached = max(cached, summary.cachedPromptTokens)
                let prefix = echo ? promptTexts[index / n] : ""
                var logprobs: CompletionLogprobs?
                if wantsLogprobs {
                    var table = CompletionLogprobs()
                    var offset = prefix.utf8.count
                    table.append(result.logprobs, offset: &offset)
                    logprobs = table
                }
                choices.append(
                    TextChoice(
                        text: prefix + result.text, index: index, logprobs: logprobs,
                        finish_reason: summary.finishReason.rawValue))
            }
            let response = TextCompletionResponse(
                id: id, created: created, model: model, choices: choices,
                usage: Usage(prompt: promptTokens, completion: completion, cached: cached))
            return Self.json(encodeJSON(response))
        }

        let includeUsage = sampling.includeUsage
        return Self.streamingResponse { [self] writer in
            func chunk(_ choices: [TextChoice], usage: Usage? = nil) -> ByteBuffer {
                Self.sse(
                    encodeJSON(
                        TextCompletionResponse(id: id, created: created, model: model, choices: choices, usage: usage))
                )
            }
            if echo {
                for index in streams.indices {
                    try await writer.write(chunk([TextChoice(text: promptTexts[index / n], index: index)]))
                }
            }
            // Text offsets of the log-probabilities, per choice (after the echoed prompt).
            var offsets = streams.indices.map { echo ? promptTexts[$0 / n].utf8.count : 0 }
            try await writeEvents(
                streams, to: &writer, promptTokens: promptTokens, includeUsage: includeUsage,
                delta: { index, text, logprobs in
                    var table: CompletionLogprobs?
                    if wantsLogprobs {
                        var entries = CompletionLogprobs()
                        entries.append(logprobs, offset: &offsets[index])
                        table = entries
                    }
                    return chunk([TextChoice(text: text, index: index, logprobs: table)])
                },
                finish: { index, reason in chunk([TextChoice(text: "", index: index, finish_reason: reason.rawValue)])
                },
                usage: { chunk([], usage: $0) })
        }
    }

    // MARK: Embeddings

    private struct EmbeddingRequest: Decodable {
        var model: String?
        var input: [String]
        var encodingFormat: String
        var dimensions: Int?

        enum CodingKeys: String, CodingKey {
            case model, input, dimensions
            case encodingFormat = "encoding_format"
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            model = try c.decodeIfPresent(String.self, forKey: .model)
            if let one = try? c.decode(String.self, forKey: .input) {
                input = [one]
            } else if let many = try? c.decode([String].self, forKey: .input) {
                input = many
            } else if c.contains(.input) {
                throw APIError.invalidValue(
                    param: "input",
                    message: "input must be a string or an array of strings (token ids are not supported)")
            } else {
                throw APIError.missing(param: "input")
            }
            encodingFormat = try c.decodeIfPresent(String.self, forKey: .encodingFormat) ?? "float"
            dimensions = try c.decodeIfPresent(Int.self, forKey: .dimensions)
        }
    }

    private func embed(_ data: Data) async throws -> Response {
        guard let embeddings else {
            throw APIError(
                status: .badRequest,
                message: "No embedding model is loaded; start the server with --embedding-model DIR",
                type: "invalid_request_error", param: "model", code: "model_not_available")
        }
        let request = try decode(EmbeddingRequest.self, from: data)
        if let model = request.model, model != embeddings.modelID { throw APIError.modelNotFound(model) }
        guard !request.input.isEmpty, !request.input.contains(where: \.isEmpty) else {
            throw APIError.invalidValue(param: "input", message: "input must not be empty (nor contain empty strings)")
        }
        guard request.input.count <= 2048 else {
            throw APIError.invalidValue(param: "input", message: "at most 2048 inputs per request")
        }
        guard request.encodingFormat == "float" || request.encodingFormat == "base64" else {
            throw APIError.invalidValue(
                param: "encoding_format", message: "encoding_format must be 'float' or 'base64'")
        }
        let result: EmbeddingResult
        do {
            result = try await embeddings.embed(request.input)
        } catch {
            throw APIError(error)
        }
        if let dimensions = request.dimensions, dimensions != result.embeddings.first?.count {
            throw APIError.invalidValue(
                param: "dimensions",
                message: "this model produces \(result.embeddings.first?.count ?? 0) dimensions and cannot shorten them"
            )
        }
        if !result.truncatedIndices.isEmpty {
            logger.notice(
                "embeddings: \(result.truncatedIndices.count) of \(request.input.count) inputs truncated to the model's maximum"
            )
        }
        // A truncated input is marked with `"truncated": true` in its item (absent otherwise, as in OpenAI's format).
        let truncated = Set(result.truncatedIndices)
        var json = "{\"object\":\"list\",\"data\":["
        for (index, vector) in result.embeddings.enumerated() {
            if index > 0 { json += "," }
            json += "{\"object\":\"embedding\",\"index\":\(index),"
            if truncated.contains(index) { json += "\"truncated\":true," }
            json += "\"embedding\":"
            if request.encodingFormat == "base64" {
                let bytes = vector.withUnsafeBufferPointer { Data(buffer: $0) }
                json += "\"" + bytes.base64EncodedString() + "\""
            } else {
                json += "[" + vector.map { "\($0)" }.joined(separator: ",") + "]"
            }
            json += "}"
        }
        let model = String(decoding: encodeJSON(embeddings.modelID), as: UTF8.self)
        json +=
            "],\"model\":\(model),\"usage\":{\"prompt_tokens\":\(result.tokenCount),"
            + "\"total_tokens\":\(result.tokenCount)}}"
        return Self.json(Data(json.utf8))
    }
}

/// Thrown when writing to the client fails (it went away): the stream stops without an error event.
struct WriteFailure: Error {}

// MARK: Middleware

/// Turns every error into OpenAI's envelope with the right status (unknown routes become 404s, not HTML).
struct ErrorEnvelopeMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return try error.response(from: request, context: context)
        } catch let error as HTTPError {
            let api: APIError
            switch error.status {
            case .notFound: api = .notFound(request.uri.path)
            case .methodNotAllowed:
                api = APIError(
                    status: .methodNotAllowed, message: "\(request.method) is not allowed on \(request.uri.path)",
                    type: "invalid_request_error", code: "method_not_allowed")
            case .contentTooLarge: api = .tooLarge(limit: 0)
            default:
                api = APIError(
                    status: error.status, message: error.body ?? error.status.reasonPhrase,
                    type: error.status.code >= 500 ? "server_error" : "invalid_request_error")
            }
            return try api.response(from: request, context: context)
        } catch {
            context.logger.error("unhandled error: \(error)")
            return try APIError.internalError("internal error: \(error)").response(from: request, context: context)
        }
    }
}

/// Checks `Authorization: Bearer <key>` on `/v1/*` in constant time (when a key is configured).
struct APIKeyMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let key: [UInt8]?

    init(key: String?) { self.key = key.map { Array($0.utf8) } }

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard let key, request.uri.path.hasPrefix("/v1") else { return try await next(request, context) }
        let header = request.headers[.authorization] ?? ""
        let prefix = "Bearer "
        let presented = header.hasPrefix(prefix) ? Array(header.utf8.dropFirst(prefix.utf8.count)) : []
        guard Self.constantTimeEqual(presented, key) else { throw APIError.unauthorized }
        return try await next(request, context)
    }

    /// Compares without an early exit, so timing does not reveal how much of the key matched.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for i in 0..<max(a.count, b.count) {
            let x = i < a.count ? a[i] : 0
            let y = i < b.count ? b[i] : 0
            difference |= x ^ y
        }
        return difference == 0 && a.count == b.count
    }
}

/// Logs one line per request and counts it by route and status.
struct RequestAccountingMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let server: OpenAIServer

    static let routes: Set<String> = [
        "/health", "/metrics", "/v1/models", "/v1/chat/completions", "/v1/completions", "/v1/embeddings",
    ]

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let start = ContinuousClock.now
        let path = request.uri.path
        let route = Self.routes.contains(path) ? path : (path.hasPrefix("/v1/models/") ? "/v1/models/{id}" : "other")
        let response = try await next(request, context)
        let seconds = (ContinuousClock.now - start).seconds
        server.metrics.countRequest(route: route, status: response.status.code)
        server.metrics.requestDuration.record(seconds)
        server.logger.info(
            "\(request.method) \(path) \(response.status.code) \(String(format: "%.1f", seconds * 1000)) ms")
        return response
    }
}
