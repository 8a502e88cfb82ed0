import ArgumentParser
import Foundation
import Hummingbird
import Logging
import SeedEngine
import SeedServer

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the model over an OpenAI-compatible HTTP API.",
        discussion: """
            Routes: POST /v1/chat/completions, POST /v1/completions, GET /v1/models, POST /v1/embeddings (with \
            --embedding-model), GET /health, GET /metrics (Prometheus). Requests are batched continuously: up to \
            --parallel sequences decode together over a paged KV cache whose blocks are shared between prompts \
            with a common prefix. Binds 127.0.0.1 unless --host says otherwise.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Address to bind.")
    var host = "127.0.0.1"

    @Option(help: "Port to bind (0 picks a free port and prints it).")
    var port = 8080

    @Option(help: "Require 'Authorization: Bearer KEY' on /v1 routes (default: $SEED_API_KEY, or none).")
    var apiKey: String?

    @Option(help: "Sequences decoding together (parallel slots).")
    var parallel = 16

    @Option(help: "Requests that may wait for a slot before the server answers 429.")
    var maxWaiting = 128

    @Option(help: "Tokens per forward pass (decodes plus prompt chunks).")
    var batchTokens = 256

    @Option(help: "Positions in the KV cache across all sequences.")
    var kvCacheTokens = 32_768

    @Option(help: "Positions per KV-cache block.")
    var kvBlockSize = 16

    @Flag(help: "Do not share KV blocks between prompts with a common prefix.")
    var noPrefixCache = false

    @Option(help: "Largest request body in bytes.")
    var maxBodyBytes = 4 << 20

    @Option(help: "Sentence-transformers directory (or 'all-minilm-l6-v2') to serve /v1/embeddings.")
    var embeddingModel: String?

    func validate() throws {
        if !(0...65535).contains(port) { throw ValidationError("--port must be between 0 and 65535, got \(port)") }
        if parallel < 1 || parallel > 256 {
            throw ValidationError("--parallel must be between 1 and 256, got \(parallel)")
        }
        if maxWaiting < 0 { throw ValidationError("--max-waiting must be >= 0, got \(maxWaiting)") }
        if batchTokens < 1 { throw ValidationError("--batch-tokens must be >= 1, got \(batchTokens)") }
        if kvBlockSize < 1 || kvBlockSize > 1024 {
            throw ValidationError("--kv-block-size must be between 1 and 1024, got \(kvBlockSize)")
        }
        if kvCacheTokens < kvBlockSize {
            throw ValidationError(
                "--kv-cache-tokens must hold at least one block (\(kvBlockSize)), got \(kvCacheTokens)")
        }
        if maxBodyBytes < 1024 { throw ValidationError("--max-body-bytes must be >= 1024, got \(maxBodyBytes)") }
        if let apiKey, apiKey.isEmpty { throw ValidationError("--api-key must not be empty") }
    }

    func run() async throws {
        var logger = Logger(label: "seed.serve")
        logger.logLevel = .info
        let (model, tokenizer) = try modelOptions.load()
        let modelPath = model.file.path
        var modelID = URL(fileURLWithPath: modelPath).lastPathComponent
        if modelID.hasSuffix(".gguf") { modelID.removeLast(5) }
        var settings = BatchingConfiguration()
        settings.maxSequences = parallel
        settings.maxWaiting = maxWaiting
        settings.maxBatchTokens = batchTokens
        settings.kvCacheTokens = kvCacheTokens
        settings.blockSize = kvBlockSize
        settings.contextLength = modelOptions.ctxSize
        settings.prefixCaching = !noPrefixCache
        let engine = try BatchingEngine(
            model: model, tokenizer: tokenizer, modelID: modelID, configuration: settings,
            logger: Logger(label: "seed.engine"))
        var embeddings: SentenceEmbeddingService?
        if let embeddingModel {
            let directory = try ModelStore(directory: modelOptions.modelDir).resolve(embeddingModel, default: .miniLM) {
                printError($0)
            }
            var name = URL(fileURLWithPath: directory).lastPathComponent
            if name.isEmpty { name = "embeddings" }
            embeddings = try SentenceEmbeddingService(
                directory: directory, modelID: name, threads: modelOptions.threads)
        }
        var configuration = ServerConfiguration()
        configuration.host = host
        configuration.port = port
        configuration.apiKey =
            apiKey ?? ProcessInfo.processInfo.environment["SEED_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        configuration.maxBodyBytes = maxBodyBytes
        configuration.modelAliases = ["default", KnownModel.smolLM2.name].filter { _ in
            modelPath.hasSuffix(KnownModel.smolLM2.fileName)
        }
        let server = OpenAIServer(service: engine, embeddings: embeddings, configuration: configuration, logger: logger)
        let host = self.host
        let servedID = modelID
        let app = server.makeApplication { port in
            writeOut(
                "seed serve: listening on http://\(host):\(port) (model \(servedID), \(engine.contextLength)-token context)\n"
            )
        }
        defer { engine.shutdown() }
        try await app.runService()
    }
}
