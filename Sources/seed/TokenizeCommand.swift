import ArgumentParser
import Foundation
import SeedEngine
import SeedFormats
import SeedTokenizers

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Print the token ids of a text as a JSON array, or decode ids back to text.",
        discussion: "Special tokens in the text (such as <|im_start|>) are recognised unless --no-parse-special.")

    @Option(name: [.short, .long], help: "GGUF model file or known model name (default: the default model).")
    var model: String?

    @Option(help: "Model cache directory (default: $SEED_MODEL_DIR or ~/.cache/seed/models).")
    var modelDir: String?

    @Flag(help: "Decode: TEXT is a JSON array of token ids.")
    var decode = false

    @Flag(inversion: .prefixedNo, help: "Recognise special tokens written in the text.")
    var parseSpecial = true

    @Argument(help: "The text (or, with --decode, a JSON array of ids). Read from standard input when omitted.")
    var text: String?

    func run() throws {
        let input = try text ?? readPrompt(prompt: nil, file: "-")
        let path = try ModelStore(directory: modelDir).resolve(model) { printError($0) }
        let tokenizer = try BPETokenizer(gguf: try GGUFFile(path: path))
        if decode {
            guard let data = input.data(using: .utf8),
                let ids = try? JSONDecoder().decode([Int].self, from: data)
            else {
                throw ValidationError("--decode expects a JSON array of integers, such as [504, 3575]")
            }
            let bytes = try tokenizer.decode(ids)
            writeOut(String(decoding: bytes, as: UTF8.self) + "\n")
        } else {
            let ids = tokenizer.encode(input, addSpecial: true, parseSpecial: parseSpecial)
            writeOut("[" + ids.map(String.init).joined(separator: ", ") + "]\n")
        }
    }
}
