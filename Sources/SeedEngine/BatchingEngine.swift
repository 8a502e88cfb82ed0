import Foundation
import Logging
import SeedModels
import SeedTokenizers
import Synchronization

/// Sizes and limits of a ``BatchingEngine``.
public struct BatchingConfiguration: Sendable, Equatable {
    /// The most sequences decoding together (parallel slots).
    public var maxSequences = 16
    /// The most tokens in one forward pass: every running decode contributes one, prompts fill the rest in chunks.
    public var maxBatchTokens = 256
    /// Positions per KV-cache block.
    public var blockSize = 16
    /// Positions the KV cache holds across all sequences.
    public var kvCacheTokens = 32_768
    /// The most positions one sequence may hold (default: the model's context, capped by the cache).
    public var contextLength: Int?
    /// Requests that may wait for a slot; beyond this, ``BatchingEngine/submit(_:)`` throws `.overloaded`.
    public var maxWaiting = 128
    /// Share the KV blocks of common prompt prefixes between requests.
    public var prefixCaching = true
    /// After every step, check that each KV block is held, cached or free exactly as the sequences say, and stop
    /// with a message if not (a debugging aid; tests turn it on).
    public var checksBlockAccounting = false

    public init() {}

    /// Rejects unusable values, naming the setting.
    public func validate() throws(EngineError) {
        func positive(_ value: Int, _ name: String) throws(EngineError) {
            guard value >= 1 else { throw .invalidParameter(name: name, message: "must be >= 1, got \(value)") }
        }
        try positive(maxSequences, "parallel")
        try positive(maxBatchTokens, "batch-tokens")
        try positive(blockSize, "kv-block-size")
        try positive(kvCacheTokens, "kv-cache-tokens")
        if let contextLength { try positive(contextLength, "ctx-size") }
        guard maxWaiting >= 0 else {
            throw .invalidParameter(name: "max-waiting", message: "must be >= 0, got \(maxWaiting)")
        }
        guard kvCacheTokens >= blockSize else {
            throw .invalidParameter(
                name: "kv-cache-tokens", message: "must hold at least one block of \(blockSize) positions")
        }
    }
}

/// The serving engine: one scheduler thread owns the model and runs batched steps over many sequences.
///
/// Requests join the running batch at token boundaries (continuous batching); every step runs one forward pass in
/// which each decoding sequence contributes its next token and waiting prompts contribute chunks, so long prompts
/// never stall running decodes for more than one chunk. Keys and values live in a paged cache: fixed-size blocks,
/// per-sequence block tables, a free list, and full blocks of common prefixes shared between requests
/// (reference-counted, least recently used evicted first). When blocks run out, the most recently admitted sequence
/// is preempted (its blocks freed, its tokens recomputed later, mostly from the prefix cache).
///
/// Results: greedy decoding of a request alone in the engine gives the same tokens as ``TextGenerator``. In a busy
/// batch the weight products run over more rows at once and may take a different kernel (fused dot products below
/// 8 rows, tiled sgemm from 8), so logits can differ in the last bits and a near-tie may resolve differently.
public final class BatchingEngine: CompletionService, @unchecked Sendable {
    // @unchecked Sendable: `shared` is guarded by `condition`; everything else mutable is touched only by the
    // scheduler thread.

    public let model: LlamaModel
    public let tokenizer: BPETokenizer
    public let modelID: String
    public let contextLength: Int
    public let configuration: BatchingConfiguration
    private let chatTemplate: ChatTemplate?
    private let logger: Logger

    private struct Shared {
        var arrivals: [ActiveSequence] = []
        var waitingCount = 0
        var statistics = EngineStatistics()
        var stopping = false
        var stopped = false
    }
    private let condition = NSCondition()
    private var shared = Shared()

    // Scheduler-thread state.
    private let cache: PagedKVCache
    private let runner: LlamaBatchRunner
    private let blocks: KVBlockManager
    private var waiting: [ActiveSequence] = []
    private var running: [ActiveSequence] = []
    private var admissionCounter: UInt64 = 0
    private var preemptionCount = 0
    private let maxBlocksPerSequence: Int

    /// Starts the scheduler thread.
    ///
    /// - Parameters:
    ///   - modelID: the name clients use for the model.
    public init(
        model: LlamaModel, tokenizer: BPETokenizer, modelID: String,
        configuration: BatchingConfiguration = BatchingConfiguration(),
        logger: Logger = Logger(label: "seed.engine")
    ) throws(EngineError) {
        try configuration.validate()
        self.model = model
        self.tokenizer = tokenizer
        self.modelID = modelID
        self.configuration = configuration
        self.logger = logger
        let c = model.configuration
        let blockSize = configuration.blockSize
        let blockCount = (configuration.kvCacheTokens + blockSize - 1) / blockSize
        contextLength = min(configuration.contextLength ?? c.contextLength, c.contextLength, blockCount * blockSize)
        maxBlocksPerSequence = (contextLength + blockSize - 1) / blockSize
        if let source = model.file.metadata["tokenizer.chat_template"]?.string {
            do {
                chatTemplate = try ChatTemplate(source)
            } catch {
                throw .modelLoad("the model's chat template does not parse: \(error)")
            }
        } else {
            chatTemplate = nil
        }
        cache = PagedKVCache(configuration: c, blockSize: blockSize, blockCount: blockCount)
        blocks = KVBlockManager(blockSize: blockSize, blockCount: blockCount)
        runner = LlamaBatchRunner(
            model: model, cache: cache, maxTokens: max(configuration.maxBatchTokens, configuration.maxSequences),
            maxLogitRows: configuration.maxSequences, maxPositions: contextLength)
        shared.statistics = makeStatistics()
        let thread = Thread { [self] in runLoop() }
        thread.name = "seed-scheduler"
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// Stops the scheduler: running and waiting requests end with an error. Waits for the thread to finish.
    public func shutdown() {
        condition.lock()
        shared.stopping = true
        condition.broadcast()
        while !shared.stopped { condition.wait() }
        condition.unlock()
    }

    // MARK: CompletionService

    public func tokenizeChat(_ messages: [ChatMessage]) throws(EngineError) -> [Int] {
        guard let chatTemplate else {
            throw .invalidParameter(name: "messages", message: "the model has no chat template")
        }
        let bos = tokenizer.bosTokenID.map { tokenizer.tokenString(for: $0) ?? "" } ?? ""
        let eos = tokenizer.eosTokenID.map { tokenizer.tokenString(for: $0) ?? "" } ?? ""
        let rendered: String
        do {
            rendered = try chatTemplate.render(
                messages: messages, addGenerationPrompt: true, bosToken: bos, eosToken: eos)
        } catch {
            throw .invalidParameter(name: "messages", message: "the chat template rejected the messages: \(error)")
        }
        return tokenizer.encode(rendered, addSpecial: true, parseSpecial: true)
    }

    public func submit(_ request: CompletionRequest) throws(EngineError) -> AsyncThrowingStream<
        CompletionEvent, any Error
    > {
        try request.options.validate()
        guard !request.promptTokens.isEmpty else { throw .emptyPrompt }
        guard request.promptTokens.count < contextLength else {
            throw .promptTooLong(tokens: request.promptTokens.count, context: contextLength)
        }
        let vocabulary = model.configuration.vocabularySize
        if let bad = request.promptTokens.first(where: { $0 < 0 || $0 >= vocabulary }) {
            throw .invalidParameter(
                name: "prompt", message: "token id \(bad) is outside the vocabulary (\(vocabulary))")
        }
        if let top = request.topLogprobs, top < 0 || top > 20 {
            throw .invalidParameter(name: "top_logprobs", message: "must be between 0 and 20, got \(top)")
        }
        let (stream, continuation) = AsyncThrowingStream<CompletionEvent, any Error>.makeStream()
        if request.options.maxTokens == 0 {
            continuation.yield(
                .finished(
                    CompletionSummary(
                        finishReason: .length, promptTokens: request.promptTokens.count, cachedPromptTokens: 0,
                        completionTokens: 0, timeToFirstToken: 0, totalSeconds: 0)))
            continuation.finish()
            return stream
        }
        let sequence = ActiveSequence(
            request: request, continuation: continuation, tokenizer: tokenizer, maxBlocks: maxBlocksPerSequence)
        condition.lock()
        defer { condition.unlock() }
        if shared.stopping {
            throw .inference("the engine is shutting down")
        }
        if shared.waitingCount >= configuration.maxWaiting {
            let retry = max(1, shared.statistics.runningSequences > 0 ? 2 : 1)
            throw .overloaded(retryAfterSeconds: retry)
        }
        shared.arrivals.append(sequence)
        shared.waitingCount += 1
        shared.statistics.waitingSequences = shared.waitingCount
        continuation.onTermination = { [weak self, sequence] _ in
            sequence.cancelled.store(true, ordering: .releasing)
            self?.wakeScheduler()
        }
        condition.signal()
        return stream
    }

    public func statistics() -> EngineStatistics {
        condition.lock()
        defer { condition.unlock() }
        return shared.statistics
    }

    private func wakeScheduler() {
        condition.lock()
        condition.signal()
        condition.unlock()
    }

    // MARK: Scheduler thread

    private func runLoop() {
        while true {
            condition.lock()
            while shared.arrivals.isEmpty && running.isEmpty && waiting.isEmpty && !shared.stopping {
                condition.wait()
            }
            if shared.stopping {
                condition.unlock()
                for sequence in running + waiting + shared.arrivals {
                    sequence.continuation.finish(throwing: EngineError.inference("the engine shut down"))
                    blocks.release(blocks: sequence.blocks)
                }
                condition.lock()
                running = []
                waiting = []
                shared.arrivals = []
                shared.stopped = true
                condition.broadcast()
                condition.unlock()
                return
            }
            waiting.append(contentsOf: shared.arrivals)
            shared.arrivals.removeAll(keepingCapacity: true)
            condition.unlock()

            step()
            if configuration.checksBlockAccounting, let problem = blockAccountingError() {
                preconditionFailure("KV block accounting: \(problem)")
            }

            condition.lock()
            shared.waitingCount = waiting.count + shared.arrivals.count
            shared.statistics = makeStatistics()
            shared.statistics.waitingSequences = shared.waitingCount
            condition.unlock()
        }
    }

    /// Checks that every block is accounted for: held by running sequences (counted once per reference), cached, or
    /// free. Runs on the scheduler thread; returns a description of the first violation, or nil.
    func blockAccountingError() -> String? {
        var references: [Int32: Int] = [:]
        for sequence in running {
            for block in sequence.blocks { references[block, default: 0] += 1 }
        }
        for sequence in waiting where !sequence.blocks.isEmpty {
            return "a waiting sequence holds \(sequence.blocks.count) blocks"
        }
        for (block, count) in references where blocks.referenceCount(block) != count {
            return "block \(block) has \(blocks.referenceCount(block)) references but \(count) holders"
        }
        let held = references.count
        if held != blocks.usedBlocks { return "\(blocks.usedBlocks) blocks in use but \(held) held by sequences" }
        return nil
    }

    private func makeStatistics() -> EngineStatistics {
        var s = EngineStatistics()
        s.runningSequences = running.count
        s.waitingSequences = waiting.count
        s.kvBlocksUsed = blocks.usedBlocks
        s.kvBlocksFree = blocks.availableBlocks
        s.kvBlockSize = blocks.blockSize
        s.prefixCacheQueriedTokens = blocks.queriedTokens
        s.prefixCacheHitTokens = blocks.hitTokens
        s.preemptions = preemptionCount
        return s
    }

    /// One scheduling step: drop cancelled requests, admit waiting ones, run one forward pass, sample.
    private func step() {
        dropCancelled()
        admit()
        guard !running.isEmpty else { return }

        // Decoding sequences first (one token each), then prompt chunks in admission order.
        var budget = runner.maxTokens
        var scheduled: [(sequence: ActiveSequence, count: Int)] = []
        let ordered = running.filter { $0.isDecoding } + running.filter { !$0.isDecoding }
        for sequence in ordered where budget > 0 && sequence.isRunning {
            // (A sequence preempted earlier in this loop is no longer running and must not take blocks.)
            let take = min(sequence.pendingCount, budget)
            guard take > 0 else { continue }
            guard ensureBlocks(for: sequence, positions: sequence.computed + take) else { continue }
            scheduled.append((sequence, take))
            budget -= take
        }
        // Preemption inside ensureBlocks may have removed sequences scheduled earlier.
        scheduled.removeAll { entry in !running.contains { $0 === entry.sequence } }
        guard !scheduled.isEmpty else { return }

        var segments: [BatchSegment] = []
        segments.reserveCapacity(scheduled.count)
        for (sequence, count) in scheduled {
            segments.append(
                BatchSegment(
                    tokens: sequence.tokens[sequence.computed..<(sequence.computed + count)],
                    startPosition: sequence.computed, blockTable: UnsafePointer(sequence.blockTable),
                    wantsLogits: sequence.computed + count == sequence.tokens.count))
        }
        let logits: UnsafeBufferPointer<Float>
        do {
            logits = try runner.forward(segments)
        } catch {
            logger.error("forward pass failed: \(error)")
            for (sequence, _) in scheduled {
                finish(sequence, error: EngineError.inference("\(error)"))
            }
            return
        }
        let vocabulary = model.configuration.vocabularySize
        var row = 0
        for (index, (sequence, count)) in scheduled.enumerated() {
            sequence.computed += count
            if configuration.prefixCaching { registerFullBlocks(of: sequence) }
            guard segments[index].wantsLogits else { continue }
            let rowLogits = UnsafeMutableBufferPointer(
                mutating: UnsafeBufferPointer(rebasing: logits[(row * vocabulary)..<((row + 1) * vocabulary)]))
            row += 1
            if sequence.cancelled.load(ordering: .acquiring) { continue }
            emitNextToken(sequence, logits: rowLogits)
        }
    }

    private func dropCancelled() {
        for sequence in running where sequence.cancelled.load(ordering: .acquiring) {
            finish(sequence, error: nil, cancelled: true)
        }
        waiting.removeAll { sequence in
            guard sequence.cancelled.load(ordering: .acquiring) else { return false }
            blocks.release(blocks: sequence.blocks)
            sequence.setBlocks([])
            sequence.continuation.finish()
            return true
        }
    }

    /// Moves waiting requests into the running batch while there are slots and KV blocks for their prompts.
    private func admit() {
        while let sequence = waiting.first, running.count < configuration.maxSequences {
            let matched = configuration.prefixCaching ? blocks.matchPrefix(sequence.tokens) : []
            let needed = blocks.blocksNeeded(forPositions: sequence.tokens.count + 1) - matched.count
            // Keep one block of headroom per running sequence so admitting does not force immediate preemption.
            guard needed + running.count <= blocks.availableBlocks || running.isEmpty else {
                blocks.release(blocks: matched)
                break
            }
            waiting.removeFirst()
            precondition(sequence.blocks.isEmpty, "a waiting sequence holds KV blocks")
            sequence.setBlocks(matched)
            sequence.registeredBlocks = matched.count
            sequence.computed = matched.count * blocks.blockSize
            if !sequence.wasAdmitted {
                sequence.cachedPromptTokens = sequence.computed
                sequence.wasAdmitted = true
            }
            admissionCounter += 1
            sequence.admissionOrder = admissionCounter
            sequence.isRunning = true
            running.append(sequence)
        }
    }

    /// Gives `sequence` enough blocks for `positions` positions, preempting the most recently admitted sequences if
    /// the cache is full. Returns false if `sequence` itself had to be preempted.
    private func ensureBlocks(for sequence: ActiveSequence, positions: Int) -> Bool {
        let needed = blocks.blocksNeeded(forPositions: positions)
        while sequence.blocks.count < needed {
            if let block = blocks.allocate() {
                sequence.appendBlock(block)
                continue
            }
            guard let victim = running.max(by: { $0.admissionOrder < $1.admissionOrder }) else { return false }
            preempt(victim)
            if victim === sequence { return false }
        }
        return true
    }

    /// Frees a running sequence's blocks and puts it back at the head of the queue; it resumes by recomputing its
    /// tokens (prompt and generated so far).
    private func preempt(_ sequence: ActiveSequence) {
        logger.debug("preempting a sequence of \(sequence.tokens.count) tokens: KV cache full")
        preemptionCount += 1
        blocks.release(blocks: sequence.blocks)
        sequence.setBlocks([])
        sequence.computed = 0
        sequence.registeredBlocks = 0
        running.removeAll { $0 === sequence }
        sequence.isRunning = false
        waiting.insert(sequence, at: 0)
    }

    private func registerFullBlocks(of sequence: ActiveSequence) {
        let size = blocks.blockSize
        while (sequence.registeredBlocks + 1) * size <= sequence.computed {
            let i = sequence.registeredBlocks
            let parent: Int32 = i == 0 ? -1 : sequence.blocks[i - 1]
            blocks.register(sequence.blocks[i], parent: parent, tokens: sequence.tokens[(i * size)..<((i + 1) * size)])
            sequence.registeredBlocks += 1
        }
    }

    /// Samples the sequence's next token from `logits` and reports it.
    private func emitNextToken(_ sequence: ActiveSequence, logits: UnsafeMutableBufferPointer<Float>) {
        let options = sequence.request.options
        var report: [TokenLogprobs] = []
        let penalized = options.sampling.appliesPenalties
        if sequence.request.topLogprobs != nil && penalized {
            // The penalties change the logits in place; log-probabilities are of the raw ones.
            sequence.rawLogits.removeAll(keepingCapacity: true)
            sequence.rawLogits.append(contentsOf: logits)
        }
        let next = sequence.sampler.sample(logits, history: sequence.tokens)
        if let top = sequence.request.topLogprobs {
            let entry =
                penalized
                ? sequence.rawLogits.withUnsafeBufferPointer { raw in
                    LogprobTable.report(
                        logits: raw, chosen: next, top: top, keys: &sequence.logprobKeys, tokenizer: tokenizer)
                }
                : LogprobTable.report(
                    logits: UnsafeBufferPointer(logits), chosen: next, top: top, keys: &sequence.logprobKeys,
                    tokenizer: tokenizer)
            report.append(entry)
        }
        sequence.tokens.append(next)
        sequence.generated += 1
        if sequence.firstTokenTime == nil { sequence.firstTokenTime = ContinuousClock.now }

        if tokenizer.endOfGenerationIDs.contains(next) && !options.ignoreEndOfGeneration {
            if !report.isEmpty { sequence.continuation.yield(.delta(text: "", logprobs: report)) }
            finish(sequence, reason: .stop)
            return
        }
        let piece: String
        do {
            piece = sequence.filter.push(try sequence.decoder.append(next))
        } catch {
            finish(
                sequence,
                error: EngineError.inference("the model produced token \(next), which cannot be decoded: \(error)"))
            return
        }
        if !piece.isEmpty || !report.isEmpty {
            sequence.continuation.yield(.delta(text: piece, logprobs: report))
        }
        if sequence.filter.stopped {
            finish(sequence, reason: .stop)
        } else if sequence.generated >= options.maxTokens || sequence.tokens.count > contextLength {
            finish(sequence, reason: .length)
        }
    }

    private func finish(_ sequence: ActiveSequence, reason: FinishReason) {
        if !sequence.filter.stopped {
            let tail = sequence.filter.push(sequence.decoder.flush()) + sequence.filter.flush()
            if !tail.isEmpty { sequence.continuation.yield(.delta(text: tail, logprobs: [])) }
        }
        let now = ContinuousClock.now
        let total = (now - sequence.submitted).seconds
        let first = sequence.firstTokenTime.map { ($0 - sequence.submitted).seconds } ?? total
        let summary = CompletionSummary(
            finishReason: reason, promptTokens: sequence.promptCount,
            cachedPromptTokens: sequence.cachedPromptTokens, completionTokens: sequence.generated,
            timeToFirstToken: first, totalSeconds: total)
        // The blocks go back before the client hears the end, so whoever reads the statistics after a response
        // has ended sees them free.
        releaseResources(of: sequence)
        sequence.continuation.yield(.finished(summary))
        sequence.continuation.finish()
    }

    private func finish(_ sequence: ActiveSequence, error: (any Error)?, cancelled: Bool = false) {
        releaseResources(of: sequence)
        if let error {
            sequence.continuation.finish(throwing: error)
        } else {
            sequence.continuation.finish()
        }
    }

    private func releaseResources(of sequence: ActiveSequence) {
        blocks.release(blocks: sequence.blocks)
        sequence.setBlocks([])
        sequence.isRunning = false
        running.removeAll { $0 === sequence }
    }
}

/// The scheduler's record of one request.
final class ActiveSequence: @unchecked Sendable {
    // @unchecked Sendable: only `cancelled` is touched off the scheduler thread.
    let request: CompletionRequest
    let continuation: AsyncThrowingStream<CompletionEvent, any Error>.Continuation
    let cancelled = Atomic<Bool>(false)
    let submitted = ContinuousClock.now
    let promptCount: Int
    /// Prompt and generated tokens; the last one's key/value is not computed yet once generation has started.
    var tokens: [Int]
    /// Positions whose keys and values are in the cache.
    var computed = 0
    private(set) var blocks: [Int32] = []
    /// The block table handed to the forward pass (mirror of `blocks`).
    let blockTable: UnsafeMutablePointer<Int32>
    let maxBlocks: Int
    /// Leading full blocks already registered in (or taken from) the prefix cache.
    var registeredBlocks = 0
    var sampler: Sampler
    /// The step's logits before penalties, when log-probabilities are asked for and penalties apply.
    var rawLogits: [Float] = []
    /// Scratch of the log-probability selection.
    var logprobKeys: [UInt64] = []
    var decoder: StreamingDecoder
    var filter: StopStringFilter
    var generated = 0
    var cachedPromptTokens = 0
    var wasAdmitted = false
    /// Whether the sequence is in the running batch (not waiting, preempted or finished).
    var isRunning = false
    var admissionOrder: UInt64 = 0
    var firstTokenTime: ContinuousClock.Instant?

    init(
        request: CompletionRequest, continuation: AsyncThrowingStream<CompletionEvent, any Error>.Continuation,
        tokenizer: BPETokenizer, maxBlocks: Int
    ) {
        self.request = request
        self.continuation = continuation
        promptCount = request.promptTokens.count
        tokens = request.promptTokens
        tokens.reserveCapacity(request.promptTokens.count + min(request.options.maxTokens, 4096) + 1)
        self.maxBlocks = maxBlocks
        blockTable = .allocate(capacity: max(1, maxBlocks))
        sampler = Sampler(parameters: request.options.sampling)
        decoder = StreamingDecoder(tokenizer: tokenizer)
        filter = StopStringFilter(stops: request.options.stop)
    }

    deinit { blockTable.deallocate() }

    /// Tokens not yet run through the model.
    var pendingCount: Int { tokens.count - computed }
    /// Whether the sequence has started generating (one pending token per step).
    var isDecoding: Bool { generated > 0 && pendingCount == 1 }

    func setBlocks(_ newBlocks: [Int32]) {
        blocks = newBlocks
        for (i, b) in newBlocks.enumerated() { blockTable[i] = b }
    }

    func appendBlock(_ block: Int32) {
        precondition(blocks.count < maxBlocks, "sequence outgrew its block table")
        blockTable[blocks.count] = block
        blocks.append(block)
    }
}

/// Log-probabilities of one step's raw logits (softmax at temperature 1, before penalties).
enum LogprobTable {
    /// The chosen token's and the `top` most likely tokens' log-probabilities (ties: lower id first).
    ///
    /// - Parameters:
    ///   - logits: `[vocab]` raw logits.
    ///   - keys: scratch for the selection, kept by the caller between steps.
    static func report(
        logits: UnsafeBufferPointer<Float>, chosen: Int, top: Int, keys: inout [UInt64], tokenizer: BPETokenizer
    ) -> TokenLogprobs {
        var maxLogit = -Float.infinity
        for v in logits where v > maxLogit { maxLogit = v }
        var sum: Float = 0
        for v in logits { sum += expf(v - maxLogit) }
        let logSumExp = maxLogit + logf(sum)
        func candidate(_ id: Int) -> TokenCandidate {
            let bytes = (try? tokenizer.tokenBytes(for: id)) ?? []
            return TokenCandidate(
                tokenID: id, text: String(decoding: bytes, as: UTF8.self), bytes: bytes,
                logprob: logits[id] - logSumExp)
        }
        let best = top > 0 ? Sampler.topIDs(top, of: logits, keys: &keys) : []
        return TokenLogprobs(chosen: candidate(chosen), top: best.map(candidate))
    }
}
