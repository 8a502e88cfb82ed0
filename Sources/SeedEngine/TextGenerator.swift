import Foundation
import SeedModels
import SeedTokenizers

/// Why generation ended (OpenAI's `finish_reason`).
public enum FinishReason: String, Sendable, Codable {
    /// An end-of-generation token or a stop string.
    case stop
    /// The token limit or the end of the context.
    case length
}

/// What to generate.
public struct GenerationOptions: Sendable, Equatable {
    /// The most tokens to generate.
    public var maxTokens: Int = 256
    /// How tokens are picked.
    public var sampling = SamplingParameters()
    /// Generation stops before the first occurrence of any of these; the stop string itself is not returned.
    public var stop: [String] = []
    /// Keep going past end-of-generation tokens (benchmarks use this to time exactly `maxTokens` tokens).
    public var ignoreEndOfGeneration = false

    public init(maxTokens: Int = 256, sampling: SamplingParameters = SamplingParameters(), stop: [String] = []) {
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.stop = stop
    }

    /// Rejects out-of-range values, naming the parameter.
    public func validate() throws(EngineError) {
        guard maxTokens >= 0 else {
            throw .invalidParameter(name: "max_tokens", message: "must be >= 0, got \(maxTokens)")
        }
        try sampling.validate()
    }
}

/// The outcome of one generation.
public struct GenerationResult: Sendable, Equatable {
    /// The generated text (stop string excluded).
    public var text: String
    /// The generated token ids (including a final end-of-generation token, if one ended generation).
    public var tokens: [Int]
    public var finishReason: FinishReason
    /// Prompt tokens processed in this call (tokens reused from the cache are not counted).
    public var promptTokensEvaluated: Int
    public var promptSeconds: Double
    public var generationSeconds: Double

    /// Prompt-processing speed.
    public var promptTokensPerSecond: Double {
        promptSeconds > 0 ? Double(promptTokensEvaluated) / promptSeconds : 0
    }
    /// Generation speed (tokens after the first, over the time after the first).
    public var generationTokensPerSecond: Double {
        generationSeconds > 0 ? Double(max(0, tokens.count - 1)) / generationSeconds : 0
    }
}

/// Runs a model and its tokenizer for one sequence at a time: `seed generate`, `seed chat`, `seed perplexity`.
///
/// Keeps the tokens already in the key/value cache, so a follow-up prompt that extends the previous one (a chat
/// turn) only processes the new tokens.
public final class TextGenerator {
    public let model: LlamaModel
    public let tokenizer: BPETokenizer
    public let session: LlamaSession
    /// The tokens whose keys and values are in the session's cache, in order.
    public private(set) var cachedTokens: [Int] = []

    /// A generator with a context of `contextLength` tokens (default: the model's).
    public init(model: LlamaModel, tokenizer: BPETokenizer, contextLength: Int? = nil) {
        self.model = model
        self.tokenizer = tokenizer
        session = model.makeSession(contextLength: contextLength)
    }

    /// Tokenizes `text` with special tokens recognised (as llama.cpp does for prompts).
    public func tokenize(_ text: String) -> [Int] {
        tokenizer.encode(text, addSpecial: true, parseSpecial: true)
    }

    /// Generates a continuation of `prompt`, calling `onText` with each piece of text as soon as it is final.
    ///
    /// - Parameters:
    ///   - prompt: prompt token ids (at least one).
    ///   - onText: receives text pieces; return `false` to stop early.
    public func generate(
        prompt: [Int], options: GenerationOptions, onText: (String) -> Bool = { _ in true }
    ) throws(EngineError) -> GenerationResult {
        try options.validate()
        guard !prompt.isEmpty else { throw .emptyPrompt }
        guard prompt.count < session.capacity else {
            throw .promptTooLong(tokens: prompt.count, context: session.capacity)
        }
        let clock = ContinuousClock()
        // Reuse the cached prefix; always evaluate at least the last prompt token to get fresh logits.
        var reuse = 0
        while reuse < min(prompt.count - 1, cachedTokens.count) && cachedTokens[reuse] == prompt[reuse] {
            reuse += 1
        }
        session.truncate(to: reuse)
        cachedTokens.removeLast(cachedTokens.count - reuse)

        var sampler = Sampler(parameters: options.sampling)
        var decoder = StreamingDecoder(tokenizer: tokenizer)
        var filter = StopStringFilter(stops: options.stop)
        var text = ""
        var generated: [Int] = []
        var history = prompt
        var finish = FinishReason.length

        let promptStart = clock.now
        var logits: UnsafeBufferPointer<Float>
        do {
            logits = try session.forward(Array(prompt[reuse...]))
        } catch {
            throw .inference("\(error)")
        }
        cachedTokens = prompt
        let promptSeconds = (clock.now - promptStart).seconds
        var firstTokenTime = clock.now
        let endIDs = tokenizer.endOfGenerationIDs
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: logits.count)
        defer { buffer.deallocate() }

        while generated.count < options.maxTokens {
            _ = buffer.initialize(fromContentsOf: logits)
            let next = sampler.sample(buffer, history: history)
            generated.append(next)
            history.append(next)
            if generated.count == 1 { firstTokenTime = clock.now }
            if endIDs.contains(next) && !options.ignoreEndOfGeneration {
                finish = .stop
                break
            }
            let decoded: String
            do {
                decoded = try decoder.append(next)
            } catch {
                throw .inference("the model produced token \(next), which the tokenizer cannot decode: \(error)")
            }
            let piece = filter.push(decoded)
            if !piece.isEmpty {
                text += piece
                if !onText(piece) {
                    finish = .stop
                    break
                }
            }
            if filter.stopped {
                finish = .stop
                break
            }
            if generated.count == options.maxTokens { break }
            if session.position >= session.capacity {
                finish = .length
                break
            }
            do {
                logits = try session.forward([next])
            } catch {
                throw .inference("\(error)")
            }
            cachedTokens.append(next)
        }
        if !filter.stopped {
            let tail = filter.push(decoder.flush()) + filter.flush()
            if !tail.isEmpty {
                text += tail
                _ = onText(tail)
            }
        }
        return GenerationResult(
            text: text, tokens: generated, finishReason: finish, promptTokensEvaluated: prompt.count - reuse,
            promptSeconds: promptSeconds, generationSeconds: (clock.now - firstTokenTime).seconds)
    }
}

extension Duration {
    /// The duration in seconds.
    public var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) * 1e-18
    }
}
