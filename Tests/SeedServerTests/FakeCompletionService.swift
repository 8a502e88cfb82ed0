import Foundation
import SeedEngine
import SeedFormats
import SeedTestSupport
import SeedTokenizers
import Synchronization

/// A deterministic stand-in for the engine: answers every request with the words "one two three ..." (one per
/// token), up to `max_tokens`, honouring stop strings, logprobs and an overload switch, and records cancellations.
final class FakeCompletionService: CompletionService, @unchecked Sendable {
    // @unchecked Sendable: mutable state is in Mutex/Atomic.
    let modelID = "fake-model"
    let contextLength = 64
    let tokenizer: BPETokenizer
    let overloaded = Atomic<Bool>(false)
    let cancellations = Atomic<Int>(0)
    let submitted = Mutex<[CompletionRequest]>([])
    /// Delay between tokens (lets tests disconnect mid-stream).
    let tokenDelay: Duration
    static let words = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]

    init(tokenDelay: Duration = .zero) throws {
        tokenizer = try BPETokenizer(gguf: GGUFFile(path: try TestPaths.smolLM2()))
        self.tokenDelay = tokenDelay
    }

    func tokenizeChat(_ messages: [ChatMessage]) throws(EngineError) -> [Int] {
        let text = messages.map { "\($0.role): \($0.content)" }.joined(separator: "\n")
        return tokenizer.encode(text, addSpecial: false, parseSpecial: false)
    }

    func submit(_ request: CompletionRequest) throws(EngineError) -> AsyncThrowingStream<CompletionEvent, any Error> {
        try request.options.validate()
        if overloaded.load(ordering: .relaxed) { throw .overloaded(retryAfterSeconds: 3) }
        guard !request.promptTokens.isEmpty else { throw .emptyPrompt }
        guard request.promptTokens.count < contextLength else {
            throw .promptTooLong(tokens: request.promptTokens.count, context: contextLength)
        }
        submitted.withLock { $0.append(request) }
        let (stream, continuation) = AsyncThrowingStream<CompletionEvent, any Error>.makeStream()
        let delay = tokenDelay
        let task = Task {
            var filter = StopStringFilter(stops: request.options.stop)
            var count = 0
            var reason = FinishReason.length
            while count < request.options.maxTokens {
                if delay > .zero { try? await Task.sleep(for: delay) }
                if Task.isCancelled { return }
                let word = (count == 0 ? "" : " ") + Self.words[count % Self.words.count]
                count += 1
                var logprobs: [TokenLogprobs] = []
                if let top = request.topLogprobs {
                    let chosen = TokenCandidate(tokenID: count, text: word, bytes: Array(word.utf8), logprob: -0.5)
                    let others = (0..<top).map {
                        TokenCandidate(
                            tokenID: 100 + $0, text: "alt\($0)", bytes: Array("alt\($0)".utf8), logprob: -1 - Float($0))
                    }
                    logprobs = [TokenLogprobs(chosen: chosen, top: others)]
                }
                continuation.yield(.delta(text: filter.push(word), logprobs: logprobs))
                if filter.stopped {
                    reason = .stop
                    break
                }
            }
            if !filter.stopped {
                let tail = filter.flush()
                if !tail.isEmpty { continuation.yield(.delta(text: tail, logprobs: [])) }
            }
            continuation.yield(
                .finished(
                    CompletionSummary(
                        finishReason: reason, promptTokens: request.promptTokens.count, cachedPromptTokens: 0,
                        completionTokens: count, timeToFirstToken: 0.001, totalSeconds: 0.002)))
            continuation.finish()
        }
        continuation.onTermination = { [self] termination in
            if case .cancelled = termination {
                cancellations.add(1, ordering: .relaxed)
                task.cancel()
            }
        }
        return stream
    }

    func statistics() -> EngineStatistics {
        var s = EngineStatistics()
        s.kvBlocksFree = 10
        s.kvBlockSize = 16
        return s
    }
}
