import Foundation
import SeedKernels
import SeedModels
import SeedTestSupport
import SeedTokenizers
import Testing

@testable import SeedEngine

/// Collects a request's events.
private struct Collected {
    var text = ""
    var deltas = 0
    var logprobs: [TokenLogprobs] = []
    var summary: CompletionSummary?
}

private func collect(_ stream: AsyncThrowingStream<CompletionEvent, any Error>) async throws -> Collected {
    var result = Collected()
    for try await event in stream {
        switch event {
        case .delta(let text, let logprobs):
            result.text += text
            result.deltas += 1
            result.logprobs += logprobs
        case .finished(let summary):
            result.summary = summary
        }
    }
    return result
}

private func greedy(_ maxTokens: Int, stop: [String] = []) -> GenerationOptions {
    GenerationOptions(maxTokens: maxTokens, sampling: .greedy, stop: stop)
}

/// Waits until the engine reports no running or waiting sequences (the scheduler updates its statistics after each
/// step, so a stream can end a moment before).
private func waitUntilIdle(_ engine: BatchingEngine) async throws -> EngineStatistics {
    for _ in 0..<200 {
        let s = engine.statistics()
        if s.runningSequences == 0 && s.waitingSequences == 0 { return s }
        try await Task.sleep(for: .milliseconds(10))
    }
    return engine.statistics()
}

@Suite(.serialized) struct BatchingEngineTests {
    static let prompts = [
        "The capital of France is",
        "Write a haiku about the sea.",
        "def fibonacci(n):",
        "Once upon a time, in a small village,",
        "List three primary colors:",
        "1, 2, 3, 4,",
    ]

    /// A model of its own per test: sessions of one model must not run concurrently with other suites.
    func load(activations: ActivationPrecision = .float32) throws -> (LlamaModel, BPETokenizer) {
        let model = try LlamaModel(path: try TestPaths.smolLM2(), threads: 2, activations: activations)
        let tokenizer = try BPETokenizer(gguf: model.file)
        return (model, tokenizer)
    }

    func reference(_ model: LlamaModel, _ tokenizer: BPETokenizer, _ prompt: String, maxTokens: Int) throws
        -> GenerationResult
    {
        let generator = TextGenerator(model: model, tokenizer: tokenizer, contextLength: 2048)
        return try generator.generate(prompt: generator.tokenize(prompt), options: greedy(maxTokens))
    }

    @Test func aloneGreedyEqualsTextGenerator() async throws {
        let (model, tokenizer) = try load()
        let expected = try reference(model, tokenizer, Self.prompts[0], maxTokens: 24)
        var checked = BatchingConfiguration()
        checked.checksBlockAccounting = true
        let engine = try BatchingEngine(model: model, tokenizer: tokenizer, modelID: "smollm2", configuration: checked)
        defer { engine.shutdown() }
        let ids = tokenizer.encode(Self.prompts[0], addSpecial: true, parseSpecial: true)
        let got = try await collect(try engine.submit(CompletionRequest(promptTokens: ids, options: greedy(24))))
        #expect(got.text == expected.text)
        #expect(got.summary?.completionTokens == expected.tokens.count)
        #expect(got.summary?.finishReason == expected.finishReason)
        #expect(got.summary?.promptTokens == ids.count)
        let stats = try await waitUntilIdle(engine)
        #expect(stats.kvBlocksUsed == 0)
    }

    @Test func concurrentGreedyRequestsMatchTheirSoloRuns() async throws {
        let (model, tokenizer) = try load()
        let expected = try Self.prompts.map { try reference(model, tokenizer, $0, maxTokens: 20).text }
        var configuration = BatchingConfiguration()
        configuration.checksBlockAccounting = true
        configuration.maxSequences = 4  // more requests than slots: some wait and join mid-way
        configuration.maxBatchTokens = 16  // prompts are prefilled in chunks while others decode
        let engine = try BatchingEngine(
            model: model, tokenizer: tokenizer, modelID: "smollm2", configuration: configuration)
        defer { engine.shutdown() }
        let results = try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for (i, prompt) in Self.prompts.enumerated() {
                let ids = tokenizer.encode(prompt, addSpecial: true, parseSpecial: true)
                let stream = try engine.submit(CompletionRequest(promptTokens: ids, options: greedy(20)))
                group.addTask { (i, try await collect(stream).text) }
            }
            var texts = [String](repeating: "", count: Self.prompts.count)
            for try await (i, text) in group { texts[i] = text }
            return texts
        }
        for i in Self.prompts.indices {
            #expect(results[i] == expected[i], "prompt \(i): batched output differs from the solo run")
        }
        let stats = try await waitUntilIdle(engine)
        #expect(stats.kvBlocksUsed == 0)
    }

    /// With the default int8 activations: requests arriving one after another, each prompt prefilled whole (in
    /// float32, as `TextGenerator` prefills it) in the same steps as the others' decode rows, which go through the
    /// multi-token integer kernels together. Every text equals its solo run token for token: batching changes no
    /// sequence's numbers.
    @Test func staggeredGreedyRequestsWithInt8ActivationsMatchTheirSoloRuns() async throws {
        // Not under `KernelInstructionSetLock`: holding it across awaits while synchronous tests wait for it can
        // leave no cooperative thread to resume this test (a deadlock seen in the full suite). A switch by the
        // kernel tests meanwhile would change only rounding, not these greedy texts in practice.
        let (model, tokenizer) = try load(activations: .int8)
        #expect(model.multiplier.singleTokenActivations == .int8)
        let expected = try Self.prompts.map { try reference(model, tokenizer, $0, maxTokens: 20).text }
        var configuration = BatchingConfiguration()
        configuration.checksBlockAccounting = true
        configuration.maxSequences = 8  // every request runs at once
        configuration.prefixCaching = false
        let engine = try BatchingEngine(
            model: model, tokenizer: tokenizer, modelID: "smollm2", configuration: configuration)
        defer { engine.shutdown() }
        let (firstEvents, firstEvent) = AsyncStream<Int>.makeStream()
        let results = try await withThrowingTaskGroup(of: (Int, String).self) { group in
            var arrivals = firstEvents.makeAsyncIterator()
            for (i, prompt) in Self.prompts.enumerated() {
                let ids = tokenizer.encode(prompt, addSpecial: true, parseSpecial: true)
                let stream = try engine.submit(CompletionRequest(promptTokens: ids, options: greedy(20)))
                group.addTask {
                    var text = ""
                    var signalled = false
                    for try await event in stream {
                        if case .delta(let delta, _) = event { text += delta }
                        if !signalled { firstEvent.yield(i) }
                        signalled = true
                    }
                    if !signalled { firstEvent.yield(i) }
                    return (i, text)
                }
                // The next request arrives once this one's prompt is done (the earlier ones are decoding).
                _ = await arrivals.next()
            }
            var texts = [String](repeating: "", count: Self.prompts.count)
            for try await (i, text) in group { texts[i] = text }
            return texts
        }
        for i in Self.prompts.indices {
            #expect(results[i] == expected[i], "prompt \(i): batched output differs from the solo run")
        }
        let stats = try await waitUntilIdle(engine)
        #expect(stats.kvBlocksUsed == 0)
    }

    @Test func repeatedPromptReusesCachedBlocksAndGivesTheSameText() async throws {
        let (model, tokenizer) = try load()
        var checked = BatchingConfiguration()
        checked.checksBlockAccounting = true
        let engine = try BatchingEngine(model: model, tokenizer: tokenizer, modelID: "smollm2", configuration: checked)
        defer { engine.shutdown() }
        let ids = tokenizer.encode(
            String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 6),
            addSpecial: true, parseSpecial: true)
        let first = try await collect(try engine.submit(CompletionRequest(promptTokens: ids, options: greedy(12))))
        let second = try await collect(try engine.submit(CompletionRequest(promptTokens: ids, options: greedy(12))))
        #expect(first.summary?.cachedPromptTokens == 0)
        let blockSize = engine.configuration.blockSize
        #expect(second.summary?.cachedPromptTokens == (ids.count - 1) / blockSize * blockSize)
        #expect(second.text == first.text)
        let stats = try await waitUntilIdle(engine)
        #expect(stats.prefixCacheHitTokens > 0)
        #expect(stats.kvBlocksUsed == 0)
    }

    @Test func aTinyCachePreemptsAndStillCompletesEveryRequestCorrectly() async throws {
        let (model, tokenizer) = try load()
        let expected = try Self.prompts.prefix(4).map { try reference(model, tokenizer, $0, maxTokens: 24).text }
        var configuration = BatchingConfiguration()
        configuration.checksBlockAccounting = true
        configuration.blockSize = 4
        configuration.kvCacheTokens = 64  // four sequences of ~35 positions cannot all fit
        configuration.prefixCaching = false
        let engine = try BatchingEngine(
            model: model, tokenizer: tokenizer, modelID: "smollm2", configuration: configuration)
        defer { engine.shutdown() }
        let texts = try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for (i, prompt) in Self.prompts.prefix(4).enumerated() {
                let ids = tokenizer.encode(prompt, addSpecial: true, parseSpecial: true)
                let stream = try engine.submit(CompletionRequest(promptTokens: ids, options: greedy(24)))
                group.addTask { (i, try await collect(stream).text) }
            }
            var texts = [String](repeating: "", count: 4)
            for try await (i, text) in group { texts[i] = text }
            return texts
        }
        #expect(texts == expected)
        let stats = try await waitUntilIdle(engine)
        #expect(stats.kvBlocksUsed == 0)
        #expect(stats.kvBlocksFree == 16)
        #expect(stats.preemptions > 0)
    }

    @Test func thirtyTwoClientsWithSomeDisconnectingAllFinishAndEveryBlockComesBack() async throws {
        let (model, tokenizer) = try load()
        var configuration = BatchingConfiguration()
        configuration.checksBlockAccounting = true
        configuration.maxSequences = 16
        configuration.kvCacheTokens = 2048
        let engine = try BatchingEngine(
            model: model, tokenizer: tokenizer, modelID: "smollm2", configuration: configuration)
        defer { engine.shutdown() }
        let outcomes = try await withThrowingTaskGroup(of: (kept: Bool, tokens: Int, text: String).self) { group in
            for i in 0..<32 {
                let prompt = Self.prompts[i % Self.prompts.count] + " (\(i))"
                let ids = tokenizer.encode(prompt, addSpecial: true, parseSpecial: true)
                var options = GenerationOptions(maxTokens: 24, sampling: SamplingParameters())
                options.sampling.seed = UInt64(i)
                options.ignoreEndOfGeneration = true
                let stream = try engine.submit(CompletionRequest(promptTokens: ids, options: options))
                let disconnects = i % 5 == 4
                group.addTask {
                    var text = ""
                    var pieces = 0
                    for try await event in stream {
                        switch event {
                        case .delta(let piece, _):
                            text += piece
                            pieces += 1
                            if disconnects && pieces == 3 { return (false, 0, text) }
                        case .finished(let summary):
                            return (true, summary.completionTokens, text)
                        }
                    }
                    return (false, -1, text)  // the stream ended without a summary
                }
            }
            var all: [(kept: Bool, tokens: Int, text: String)] = []
            for try await outcome in group { all.append(outcome) }
            return all
        }
        let kept = outcomes.filter(\.kept)
        #expect(kept.count == 32 - 32 / 5)
        for outcome in kept {
            #expect(outcome.tokens == 24)
            #expect(!outcome.text.isEmpty)
        }
        #expect(!outcomes.contains { $0.tokens == -1 })
        let stats = try await waitUntilIdle(engine)
        #expect(stats.runningSequences == 0 && stats.waitingSequences == 0)
        #expect(stats.kvBlocksUsed == 0)
        #expect(stats.kvBlocksFree == 2048 / configuration.blockSize)
    }

    @Test func cancellingAStreamFreesItsBlocksAtOnce() async throws {
        let (model, tokenizer) = try load()
        var checked = BatchingConfiguration()
        checked.checksBlockAccounting = true
        let engine = try BatchingEngine(model: model, tokenizer: tokenizer, modelID: "smollm2", configuration: checked)
        defer { engine.shutdown() }
        let ids = tokenizer.encode(Self.prompts[3], addSpecial: true, parseSpecial: true)
        var options = greedy(2000)
        options.ignoreEndOfGeneration = true
        let task = Task {
            var pieces = 0
            for try await event in try engine.submit(CompletionRequest(promptTokens: ids, options: options)) {
                if case .delta = event { pieces += 1 }
                if pieces == 5 { break }  // leaving the loop drops the stream
            }
            return pieces
        }
        #expect(try await task.value == 5)
        let stats = try await waitUntilIdle(engine)
        #expect(stats.runningSequences == 0)
        #expect(stats.kvBlocksUsed == 0)
    }

    @Test func aFullQueueIsOverloadedAndBadRequestsAreRejected() async throws {
        let (model, tokenizer) = try load()
        var configuration = BatchingConfiguration()
        configuration.checksBlockAccounting = true
        configuration.maxSequences = 1
        configuration.maxWaiting = 1
        configuration.contextLength = 64
        let engine = try BatchingEngine(
            model: model, tokenizer: tokenizer, modelID: "smollm2", configuration: configuration)
        defer { engine.shutdown() }
        let ids = tokenizer.encode(Self.prompts[0], addSpecial: true, parseSpecial: true)
        var options = greedy(40)
        options.ignoreEndOfGeneration = true
        var streams: [AsyncThrowingStream<CompletionEvent, any Error>] = []
        var overloaded = 0
        for _ in 0..<6 {
            do {
                streams.append(try engine.submit(CompletionRequest(promptTokens: ids, options: options)))
            } catch {
                guard case .overloaded(let seconds) = error else { throw error }
                #expect(seconds >= 1)
                overloaded += 1
            }
        }
        #expect(overloaded >= 3)
        for stream in streams {
            let got = try await collect(stream)
            #expect(got.summary?.completionTokens == 40)
        }

        #expect(throws: EngineError.emptyPrompt) {
            try engine.submit(CompletionRequest(promptTokens: [], options: options))
        }
        #expect(throws: EngineError.promptTooLong(tokens: 64, context: 64)) {
            try engine.submit(CompletionRequest(promptTokens: Array(repeating: 1, count: 64), options: options))
        }
        #expect(throws: EngineError.self) {
            try engine.submit(CompletionRequest(promptTokens: [49152], options: options))
        }
        #expect(throws: EngineError.self) {
            try engine.submit(CompletionRequest(promptTokens: ids, options: options, topLogprobs: 21))
        }
        var bad = options
        bad.sampling.temperature = -1
        #expect(throws: EngineError.self) { try engine.submit(CompletionRequest(promptTokens: ids, options: bad)) }
    }

    @Test func stopStringsEndTheTextWithoutLeakingAndLogprobsAreConsistent() async throws {
        let (model, tokenizer) = try load()
        let full = try reference(model, tokenizer, Self.prompts[5], maxTokens: 16).text
        var checked = BatchingConfiguration()
        checked.checksBlockAccounting = true
        let engine = try BatchingEngine(model: model, tokenizer: tokenizer, modelID: "smollm2", configuration: checked)
        defer { engine.shutdown() }
        let ids = tokenizer.encode(Self.prompts[5], addSpecial: true, parseSpecial: true)
        // Stop at the second comma-separated number of the greedy continuation.
        let parts = full.split(separator: ",", omittingEmptySubsequences: false)
        try #require(parts.count >= 3)
        let stop = "," + parts[2]
        let got = try await collect(
            try engine.submit(CompletionRequest(promptTokens: ids, options: greedy(16, stop: [stop]), topLogprobs: 3)))
        #expect(got.text == String(parts[0] + "," + parts[1]))
        #expect(got.summary?.finishReason == .stop)
        #expect(got.logprobs.count == got.summary?.completionTokens)
        for step in got.logprobs {
            #expect(step.top.count == 3)
            #expect(step.chosen.tokenID == step.top[0].tokenID)  // greedy picks the most likely token
            #expect(step.top[0].logprob >= step.top[1].logprob && step.top[1].logprob >= step.top[2].logprob)
            #expect(step.chosen.logprob <= 0)
        }
    }

    @Test func logprobsAreOfTheRawLogitsWhenPenaltiesApply() async throws {
        let (model, tokenizer) = try load()
        let engine = try BatchingEngine(model: model, tokenizer: tokenizer, modelID: "smollm2")
        defer { engine.shutdown() }
        let ids = tokenizer.encode(Self.prompts[5], addSpecial: true, parseSpecial: true)
        var options = greedy(24)
        options.sampling.repetitionPenalty = 3
        let penalized = try await collect(
            try engine.submit(CompletionRequest(promptTokens: ids, options: options, topLogprobs: 5)))
        let plain = try await collect(
            try engine.submit(CompletionRequest(promptTokens: ids, options: greedy(24), topLogprobs: 5)))
        #expect(penalized.logprobs.count == penalized.summary?.completionTokens)
        // The first step sees the same raw logits either way (only the prompt is in the history, and the report is
        // of the logits before the penalty).
        let first = try #require(penalized.logprobs.first)
        let reference = try #require(plain.logprobs.first)
        #expect(first.top.map(\.tokenID) == reference.top.map(\.tokenID))
        #expect(zip(first.top, reference.top).allSatisfy { abs($0.logprob - $1.logprob) < 1e-5 })
        // A strong penalty makes greedy pass over the raw favourite at some step ("1, 2, 3, 4," repeats commas);
        // with the report taken after the penalty the chosen token would always be the top one.
        #expect(penalized.logprobs.contains { $0.chosen.tokenID != $0.top[0].tokenID })
        for step in penalized.logprobs {
            #expect(zip(step.top, step.top.dropFirst()).allSatisfy { $0.logprob >= $1.logprob })
            if let same = step.top.first(where: { $0.tokenID == step.chosen.tokenID }) {
                #expect(same.logprob == step.chosen.logprob)
            }
        }
    }
}
