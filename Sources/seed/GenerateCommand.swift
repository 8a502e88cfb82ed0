import ArgumentParser
import Foundation
import SeedEngine

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Continue a prompt, streaming the text to standard output.",
        discussion: """
            Only generated text goes to standard output; timings and diagnostics go to standard error. Special \
            tokens in the prompt (such as <|im_start|>) are recognised, so a hand-written chat prompt works.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup(title: "Sampling") var sampling: SamplingOptions

    @Option(name: [.short, .long], help: "The prompt text.")
    var prompt: String?

    @Option(name: [.customShort("f"), .long], help: "Read the prompt from a file ('-' for standard input).")
    var file: String?

    @Option(name: [.customShort("n"), .long], help: "The most tokens to generate.")
    var maxTokens: Int = 256

    @Option(help: "Stop before this string (repeatable).")
    var stop: [String] = []

    @Flag(help: "Keep generating past end-of-generation tokens.")
    var ignoreEos = false

    @Flag(help: "Print nothing but the generated text (no timings on standard error).")
    var quiet = false

    func validate() throws {
        if prompt == nil && file == nil { throw ValidationError("give a prompt with --prompt or --file") }
        if prompt != nil && file != nil { throw ValidationError("give either --prompt or --file, not both") }
        if maxTokens < 0 { throw ValidationError("--max-tokens must be >= 0, got \(maxTokens)") }
    }

    func run() throws {
        let text = try readPrompt(prompt: prompt, file: file)
        let (model, tokenizer) = try modelOptions.load()
        let generator = TextGenerator(model: model, tokenizer: tokenizer, contextLength: modelOptions.ctxSize)
        let ids = generator.tokenize(text)
        var options = GenerationOptions(maxTokens: maxTokens, sampling: sampling.parameters, stop: stop)
        options.ignoreEndOfGeneration = ignoreEos
        let result = try generator.generate(prompt: ids, options: options) { piece in
            writeOut(piece)
            return true
        }
        writeOut("\n")
        if !quiet {
            printError(
                String(
                    format: "prompt: %d tokens, %.1f tok/s | generated: %d tokens, %.1f tok/s | finish: %@",
                    result.promptTokensEvaluated, result.promptTokensPerSecond, result.tokens.count,
                    result.generationTokensPerSecond, result.finishReason.rawValue))
        }
    }
}

/// The prompt from `--prompt`, or from a file or standard input with `--file`.
func readPrompt(prompt: String?, file: String?) throws -> String {
    if let prompt { return prompt }
    guard let file else { throw ValidationError("no prompt given") }
    let data: Data?
    if file == "-" {
        data = FileHandle.standardInput.readDataToEndOfFile()
    } else {
        data = FileManager.default.contents(atPath: file)
    }
    guard let data else { throw ValidationError("cannot read the prompt file '\(file)'") }
    guard let text = String(data: data, encoding: .utf8) else {
        throw ValidationError("the prompt file '\(file)' is not valid UTF-8")
    }
    return text
}
