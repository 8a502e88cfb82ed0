import Foundation
import SeedModels
import SeedTokenizers

/// Runs closures one at a time on a thread of its own, so model compute stays off Swift's cooperative pool.
final class SerialWorkerThread: @unchecked Sendable {
    // @unchecked Sendable: `jobs` and `stopped` are guarded by `condition`.
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var stopped = false

    init(name: String) {
        let thread = Thread { [self] in loop() }
        thread.name = name
        thread.stackSize = 8 << 20
        thread.start()
    }

    private func loop() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopped { condition.wait() }
            if jobs.isEmpty {
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job()
        }
    }

    /// Runs `body` on the worker thread and returns its result, or `nil` once ``stop()`` has been called.
    func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T? {
        await withCheckedContinuation { continuation in
            condition.lock()
            defer { condition.unlock() }
            guard !stopped else {
                continuation.resume(returning: nil)
                return
            }
            jobs.append { continuation.resume(returning: body()) }
            condition.signal()
        }
    }

    /// Lets the queued jobs finish, then ends the thread; later ``run(_:)`` calls return `nil`.
    func stop() {
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
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

    public func embed(_ texts: [String]) async throws(EngineError) -> EmbeddingResult {
        guard !texts.isEmpty else { throw .invalidParameter(name: "input", message: "input must not be empty") }
        let result: Result<EmbeddingResult, EngineError>? = await worker.run { [self] in
            let encodings = texts.map { tokenizer.encode($0, maxLength: maxSequenceLength) }
            do {
                var vectors: [[Float]] = []
                vectors.reserveCapacity(encodings.count)
                // Batches of 32 keep padding waste and scratch memory bounded.
                var start = 0
                while start < encodings.count {
                    let end = min(encodings.count, start + 32)
                    vectors += try embedder.embed(ids: encodings[start..<end].map(\.ids))
                    start = end
                }
                return .success(
                    EmbeddingResult(
                        embeddings: vectors, tokenCount: encodings.reduce(0) { $0 + $1.ids.count },
                        truncatedIndices: encodings.indices.filter { encodings[$0].truncated }))
            } catch {
                return .failure(.inference("\(error)"))
            }
        }
        guard let result else { throw .modelUnavailable("the embedding service has been shut down") }
        return try result.get()
    }

    /// Ends the worker thread once the queued requests are done; later requests fail with `.modelUnavailable`.
    public func shutdown() {
        worker.stop()
    }
}
