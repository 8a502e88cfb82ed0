import ArgumentParser
import Foundation
import SeedEngine
import SeedTokenizers

struct ChatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat",
        abstract: "Chat with the model, one turn per line of input.",
        discussion: """
            Messages are rendered with the model's own chat template (tokenizer.chat_template). Each line read from \
            standard input is one user message; the reply streams to standard output. Works interactively and with \
            a pipe. Type /reset to start over, /exit (or end the input) to quit.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup(title: "Sampling") var sampling: SamplingOptions

    @Option(name: [.short, .long], help: "System prompt (default: the template's own, if any).")
    var system: String?

    @Option(name: [.customShort("n"), .long], help: "The most tokens per reply.")
    var maxTokens: Int = 512

    func validate() throws {
        if maxTokens < 1 { throw ValidationError("--max-tokens must be >= 1, got \(maxTokens)") }
    }

    func run() throws {
        let (model, tokenizer) = try modelOptions.load()
        guard let source = model.file.metadata["tokenizer.chat_template"]?.string else {
            throw ValidationError("the model has no chat template (tokenizer.chat_template)")
        }
        let template = try ChatTemplate(source)
        let generator = TextGenerator(model: model, tokenizer: tokenizer, contextLength: modelOptions.ctxSize)
        let bos = tokenizer.bosTokenID.map { tokenizer.tokenString(for: $0) ?? "" } ?? ""
        let eos = tokenizer.eosTokenID.map { tokenizer.tokenString(for: $0) ?? "" } ?? ""
        var messages: [ChatMessage] = system.map { [ChatMessage(role: "system", content: $0)] } ?? []
        let interactive = isatty(0) != 0
        let options = GenerationOptions(maxTokens: maxTokens, sampling: sampling.parameters)
        while true {
            if interactive { printError("> ", terminator: "") }
            guard let line = readLine(strippingNewline: true) else { break }
            let input = line.trimmingCharacters(in: .whitespaces)
            if input.isEmpty { continue }
            if input == "/exit" || input == "/quit" { break }
            if input == "/reset" {
                messages = system.map { [ChatMessage(role: "system", content: $0)] } ?? []
                continue
            }
            messages.append(ChatMessage(role: "user", content: input))
            let rendered = try template.render(
                messages: messages, addGenerationPrompt: true, bosToken: bos, eosToken: eos)
            let ids = generator.tokenize(rendered)
            let result: GenerationResult
            do {
                result = try generator.generate(prompt: ids, options: options) { piece in
                    writeOut(piece)
                    return true
                }
            } catch {
                guard case .promptTooLong(let tokens, let context) = error else { throw error }
                printError("the conversation (\(tokens) tokens) no longer fits the context (\(context)); /reset")
                messages.removeLast()
                continue
            }
            writeOut("\n")
            messages.append(ChatMessage(role: "assistant", content: result.text))
        }
    }
}

func printError(_ message: String, terminator: String) {
    FileHandle.standardError.write(Data((message + terminator).utf8))
}
