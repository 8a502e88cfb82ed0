import ArgumentParser
import Foundation
import SeedEngine
import SeedModels
import SeedTokenizers

/// Options every model-running command shares.
struct ModelOptions: ParsableArguments {
    @Option(name: [.short, .long], help: "GGUF model file, or a known model name (default: smollm2-135m-instruct).")
    var model: String?

    @Option(name: .long, help: "Model cache directory (default: $SEED_MODEL_DIR or ~/.cache/seed/models).")
    var modelDir: String?

    @Option(name: [.short, .long], help: "Compute threads (default: all CPUs).")
    var threads: Int?

    @Option(name: [.customShort("c"), .long], help: "Context size in tokens (default: 4096, at most the model's).")
    var ctxSize: Int = 4096

    @Option(
        help: """
            Activations of generation steps' quantized matrix products: int8 (8 bits per block of 32, as \
            llama.cpp; fastest) or f32 (exact float32). Prompt batches always use float32.
            """)
    var activations: ActivationsOption = .int8

    func validate() throws {
        if let threads, threads < 1 || threads > 1024 {
            throw ValidationError("--threads must be between 1 and 1024, got \(threads)")
        }
        if ctxSize < 1 || ctxSize > 1 << 22 {
            throw ValidationError("--ctx-size must be between 1 and \(1 << 22), got \(ctxSize)")
        }
    }

    /// Loads the model and its tokenizer, fetching the default model if needed.
    func load() throws -> (LlamaModel, BPETokenizer) {
        let store = ModelStore(directory: modelDir)
        let path = try store.resolve(model) { message in printError(message) }
        let model = try LlamaModel(path: path, threads: threads, activations: activations == .f32 ? .float32 : .int8)
        let tokenizer = try BPETokenizer(gguf: model.file)
        return (model, tokenizer)
    }
}

/// Values of `--activations`.
enum ActivationsOption: String, ExpressibleByArgument, CaseIterable {
    case int8
    case f32
}

/// Sampling flags, named as llama.cpp names them.
struct SamplingOptions: ParsableArguments {
    @Option(help: "Sampling temperature; 0 = greedy.")
    var temperature: Float = 0.8

    @Option(help: "Top-k sampling (0 = off).")
    var topK: Int = 40

    @Option(help: "Top-p (nucleus) sampling (1.0 = off).")
    var topP: Float = 0.95

    @Option(help: "Min-p sampling (0.0 = off).")
    var minP: Float = 0.05

    @Option(help: "Penalise repeated tokens (1.0 = off).")
    var repeatPenalty: Float = 1.0

    @Option(help: "Tokens the repetition penalty looks back over (-1 = all).")
    var repeatLastN: Int = 64

    @Option(help: "Presence penalty (OpenAI semantics, 0 = off).")
    var presencePenalty: Float = 0

    @Option(help: "Frequency penalty (OpenAI semantics, 0 = off).")
    var frequencyPenalty: Float = 0

    @Option(help: "Random seed (default: random).")
    var seed: UInt64?

    var parameters: SamplingParameters {
        var p = SamplingParameters()
        p.temperature = temperature
        p.topK = topK
        p.topP = topP
        p.minP = minP
        p.repetitionPenalty = repeatPenalty
        p.penaltyWindow = repeatLastN
        p.presencePenalty = presencePenalty
        p.frequencyPenalty = frequencyPenalty
        p.seed = seed ?? UInt64.random(in: 0...UInt64.max)
        return p
    }

    func validate() throws {
        do {
            try parameters.validate()
        } catch {
            throw ValidationError(error.description.replacingOccurrences(of: "_", with: "-"))
        }
    }
}

/// Writes a line to standard error.
func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// Writes text to standard output at once (no buffering), for streaming.
func writeOut(_ text: String) {
    FileHandle.standardOutput.write(Data(text.utf8))
}
