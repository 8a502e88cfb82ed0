import Foundation
import SeedModels
import SeedTokenizers

/// Runs closures one at a time on a thread of its own, so model compute stays off Swift's cooperative pool.
final class SerialWorkerThread: @unchecked Sendable {
    // @unchecked Sendable: `jobs` is guarded by `condition`.
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []

    init(name: String) {
        let thread = Thread { [self] in loop() }
        thread.name = name
        thread.stackSize = 8 << 20
        thread.start()
    }

    private func loop() {
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let job = jobs.removeFirst()
            condition.unlock()
            job()
        }
    }

    /// Runs `body` on the worker thread and returns its result.
    func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            condition.lock()
            jobs.append { continuation.resume(returning: body()) }
            condition.signal()
            condition.unlock()
        }
    }
}

/// Sentence embeddings from a sentence-transformers directory (tokenizer.json + BERT + pooling), computed on a
/// dedicated thread, for `POST /v1/embeddings`.
public final class SentenceEmbeddingService: EmbeddingService, @unchecked Sendable {
    // @unchecked Sendable: the embedder and tokenizer are immutable; compute is serialised on `worker`.
    public let modelID: String
    /// Longest input in tokens; longer inputs are truncated, as the model's config says.
    public let maxSequenceLength: Int
    private let embedder: SentenceEmbedder
    private let tokenizer: HFTokenizer
    private let worker = SerialWorkerThread(name: "seed-embeddings")

    /// Loads the model in `directory`.
    public init(directory: String, modelID: String, threads: Int? = nil) throws(EngineError) {
        do {
            tokenizer = try HFTokenizer(file: directory + "/tokenizer.json")
        } catch {
            throw .modelLoad("\(directory)/tokenizer.json: \(error)")
        }
        do {
            embedder = try SentenceEmbedder(directory: directory, threads: threads)
        } catch {
            throw .modelLoad("\(directory): \(error)")
        }
        self.modelID = modelID
        maxSequenceLength = embedder.maxSequenceLength
    }

    public func embed(_ texts: [String]) async throws(EngineError) -> (embeddings: [[Float]], tokenCount: Int) {
        guard !texts.isEmpty else { throw .invalidParameter(name: "input", message: "input must not be empty") }
        let result: Result<([[Float]], Int), EngineError> = await worker.run { [self] in
            let ids = texts.map { tokenizer.encode($0, maxLength: maxSequenceLength).ids }
            do {
                var vectors: [[Float]] = []
                vectors.reserveCapacity(ids.count)
                // Batches of 32 keep padding waste and scratch memory bounded.
                var start = 0
                while start < ids.count {
                    let end = min(ids.count, start + 32)
                    vectors += try embedder.embed(ids: Array(ids[start..<end]))
                    start = end
                }
                return .success((vectors, ids.reduce(0) { $0 + $1.count }))
            } catch {
                return .failure(.inference("\(error)"))
            }
        }
        return try result.get()
    }
}
