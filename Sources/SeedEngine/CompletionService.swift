import SeedTokenizers

/// One request as the scheduler sees it: prompt tokens and how to continue them.
public struct CompletionRequest: Sendable, Equatable {
    /// The prompt, already tokenized (chat messages rendered with the chat template first).
    public var promptTokens: [Int]
    /// Token limit, sampling, stop strings.
    public var options: GenerationOptions
    /// How many alternatives to report per generated token with their log-probabilities; `nil` reports none,
    /// `0` reports only the chosen token's log-probability.
    public var topLogprobs: Int?

    public init(promptTokens: [Int], options: GenerationOptions, topLogprobs: Int? = nil) {
        self.promptTokens = promptTokens
        self.options = options
        self.topLogprobs = topLogprobs
    }
}

/// A candidate token and its log-probability (natural log, after temperature 1 softmax over the raw logits).
public struct TokenCandidate: Sendable, Equatable {
    public var tokenID: Int
    /// The token's bytes decoded as UTF-8 (lossy for tokens that hold part of a character).
    public var text: String
    /// The token's raw bytes.
    public var bytes: [UInt8]
    public var logprob: Float

    public init(tokenID: Int, text: String, bytes: [UInt8], logprob: Float) {
        self.tokenID = tokenID
        self.text = text
        self.bytes = bytes
        self.logprob = logprob
    }
}

/// The log-probability report for one generated token.
public struct TokenLogprobs: Sendable, Equatable {
    /// The chosen token.
    public var chosen: TokenCandidate
    /// The most likely alternatives, most likely first (`topLogprobs` of them).
    public var top: [TokenCandidate]

    public init(chosen: TokenCandidate, top: [TokenCandidate]) {
        self.chosen = chosen
        self.top = top
    }
}

/// How a finished request went.
public struct CompletionSummary: Sendable, Equatable {
    public var finishReason: FinishReason
    /// Tokens in the prompt.
    public var promptTokens: Int
    /// Prompt tokens whose keys/values came from the prefix cache instead of being computed.
    public var cachedPromptTokens: Int
    /// Tokens generated (including a final end-of-generation token).
    public var completionTokens: Int
    /// Seconds from submission to the first generated token.
    public var timeToFirstToken: Double
    /// Seconds from submission to the end.
    public var totalSeconds: Double

    public init(
        finishReason: FinishReason, promptTokens: Int, cachedPromptTokens: Int, completionTokens: Int,
        timeToFirstToken: Double, totalSeconds: Double
    ) {
        self.finishReason = finishReason
        self.promptTokens = promptTokens
        self.cachedPromptTokens = cachedPromptTokens
        self.completionTokens = completionTokens
        self.timeToFirstToken = timeToFirstToken
        self.totalSeconds = totalSeconds
    }
}

/// What a running request reports, in order: any number of deltas, then one summary.
public enum CompletionEvent: Sendable, Equatable {
    /// New text, with the log-probabilities of the tokens generated since the last delta (when requested).
    /// `text` may be empty while text is held back (a possible stop string, or a character split across tokens).
    case delta(text: String, logprobs: [TokenLogprobs])
    /// The request ended; nothing follows.
    case finished(CompletionSummary)
}

/// A point-in-time view of the scheduler for metrics and health checks.
public struct EngineStatistics: Sendable, Equatable {
    /// Sequences in the running batch.
    public var runningSequences = 0
    /// Requests admitted but waiting for a place in the batch.
    public var waitingSequences = 0
    /// KV-cache blocks held by at least one sequence.
    public var kvBlocksUsed = 0
    /// KV-cache blocks available to sequences: on the free list, or idle in the prefix cache (kept until needed).
    public var kvBlocksFree = 0
    /// Positions per KV-cache block.
    public var kvBlockSize = 0
    /// Prompt tokens looked up in the prefix cache, and how many of them were found.
    public var prefixCacheQueriedTokens = 0
    public var prefixCacheHitTokens = 0
    /// Sequences preempted (blocks freed, recomputed later) because the KV cache ran out.
    public var preemptions = 0

    public init() {}
}

/// What a server needs from the engine: one model, its tokenizer and chat template, and a queue of requests.
///
/// Implementations are thread-safe. ``submit(_:)`` returns at once; the stream yields events as the scheduler
/// produces them. Cancelling the consuming task (or dropping the stream) cancels the request and frees its
/// KV-cache blocks.
public protocol CompletionService: AnyObject, Sendable {
    /// The model's name as clients address it (`model` in requests and `GET /v1/models`).
    var modelID: String { get }
    /// The most positions (prompt + generated) one sequence may hold.
    var contextLength: Int { get }
    /// The model's tokenizer.
    var tokenizer: BPETokenizer { get }

    /// Renders chat messages with the model's chat template (adding the assistant generation prompt) and
    /// tokenizes the result. Throws `.invalidParameter` for messages the template rejects.
    func tokenizeChat(_ messages: [ChatMessage]) throws(EngineError) -> [Int]

    /// Queues a request. Throws `.promptTooLong` when the prompt cannot fit the context, `.emptyPrompt`,
    /// `.invalidParameter` for bad options, and `.overloaded` when the waiting queue is full.
    func submit(_ request: CompletionRequest) throws(EngineError) -> AsyncThrowingStream<CompletionEvent, any Error>

    /// The scheduler's current state.
    func statistics() -> EngineStatistics
}

/// Sentence embeddings for `POST /v1/embeddings`.
public protocol EmbeddingService: AnyObject, Sendable {
    /// The embedding model's name as clients address it.
    var modelID: String { get }
    /// Embeds each text (L2-normalised when the model's pooling config asks for it); texts longer than the model's
    /// maximum are truncated and listed in ``EmbeddingResult/truncatedIndices``.
    /// Throws `.invalidParameter` for an empty list, `.inference` when the model fails.
    func embed(_ texts: [String]) async throws(EngineError) -> EmbeddingResult
}

/// What an ``EmbeddingService`` returns for a list of texts.
public struct EmbeddingResult: Sendable, Equatable {
    /// One vector per text, `[texts.count][dimension]`.
    public var embeddings: [[Float]]
    /// Tokens the model processed, after truncation, special tokens included.
    public var tokenCount: Int
    /// Indices (into the texts) of the texts that were longer than the model's maximum and were truncated.
    public var truncatedIndices: [Int]

    public init(embeddings: [[Float]], tokenCount: Int, truncatedIndices: [Int] = []) {
        self.embeddings = embeddings
        self.tokenCount = tokenCount
        self.truncatedIndices = truncatedIndices
    }
}
