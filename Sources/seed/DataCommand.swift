import ArgumentParser
import Foundation
import SeedEngine
import SeedTrain

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Prepare training data.",
        subcommands: [DataPrepareCommand.self])
}

struct DataPrepareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prepare",
        abstract: "Tokenise text or JSONL files into token shards plus manifest.json for `seed train`.",
        discussion: """
            Inputs are files or directories (a directory contributes its regular files, sorted, not recursive; \
            hidden files, symbolic links and NAME.dat strfile indexes beside NAME are skipped). With --format auto, \
            .jsonl/.ndjson files are JSONL, a file with a line holding only "%" is a fortune file (Debian's \
            /usr/share/games/fortunes: one document per fortune), and any other file is one document. Inputs must \
            be UTF-8.

            Every document is followed by the end-of-text token. Shards hold little-endian uint16 ids (uint32 for \
            vocabularies over 65536 tokens). A document goes to the validation split when its seeded hash falls \
            below --validation-fraction. The output appears atomically; rerunning with the same inputs and options \
            is a no-op, and a directory holding a different dataset is refused.
            """)

    @Option(
        help: ArgumentHelp(
            "GGUF model, tokenizer.json (or its directory), or a known model name (smollm2, all-minilm-l6-v2).",
            valueName: "model-or-tokenizer"))
    var tokenizer: String

    @Option(parsing: .upToNextOption, help: ArgumentHelp("Input files or directories.", valueName: "files"))
    var input: [String] = []

    @Option(help: ArgumentHelp("Dataset directory to create.", valueName: "dir"))
    var output: String

    @Option(help: "Fraction of documents for the validation split (0 ≤ f < 1).")
    var validationFraction: Double = 0.01

    @Option(help: "Maximum tokens per shard file.")
    var shardTokens: Int = 1 << 26

    @Option(help: "How files become documents: auto, text, fortunes, jsonl.")
    var format: String = "auto"

    @Option(help: "JSONL field holding each document's text.")
    var jsonlField: String = "text"

    @Option(help: "Seed of the validation split hash.")
    var splitSeed: UInt64 = 0

    @Option(help: "End-of-text token placed after each document (default: <|endoftext|> or the model's own).")
    var eotToken: String?

    @Option(help: "Tokenisation threads (default: all CPUs).")
    var threads: Int?

    @Option(help: "Model cache directory (default: $SEED_MODEL_DIR or ~/.cache/seed/models).")
    var modelDir: String?

    func validate() throws {
        guard DocumentFormat(rawValue: format) != nil else {
            throw ValidationError(
                "--format must be one of " + DocumentFormat.allCases.map(\.rawValue).joined(separator: ", ")
                    + ", got '\(format)'")
        }
        guard !input.isEmpty else { throw ValidationError("give at least one --input file or directory") }
        do {
            try options.validate()
        } catch {
            throw ValidationError(error.description)
        }
    }

    private var options: DatasetPreparationOptions {
        var options = DatasetPreparationOptions(inputs: input, output: output)
        options.validationFraction = validationFraction
        options.shardTokens = shardTokens
        options.format = DocumentFormat(rawValue: format) ?? .auto
        options.jsonlField = jsonlField
        options.splitSeed = splitSeed
        options.threads = threads
        return options
    }

    func run() throws {
        let path = try resolveTokenizer()
        let tokenizer = try DatasetTokenizer.load(path: path, endOfText: eotToken)
        printError(
            "tokenizer: \(tokenizer.identity.name) (\(tokenizer.identity.kind), \(tokenizer.vocabularySize) tokens, "
                + "end of text \(tokenizer.identity.endOfText) = \(tokenizer.endOfTextID))")
        let result = try DatasetPreparer.prepare(tokenizer: tokenizer, options: options) { printError($0) }
        let manifest = result.manifest
        writeOut(
            "\(output): \(manifest.totalTokens) tokens (\(manifest.dtype.rawValue)); "
                + "train \(manifest.train.documents) documents, \(manifest.train.tokens) tokens, "
                + "\(manifest.train.shards.count) shard(s); validation \(manifest.validation.documents) documents, "
                + "\(manifest.validation.tokens) tokens, \(manifest.validation.shards.count) shard(s)"
                + (result.unchanged ? " (unchanged)" : "") + "\n")
    }

    /// A known model name goes through the model store (fetching it if needed); anything else is a path.
    private func resolveTokenizer() throws -> String {
        let name = tokenizer.lowercased()
        let aliases = ["smollm2": KnownModel.smolLM2, "minilm": KnownModel.miniLM]
        if let known = aliases[name] ?? KnownModel.all.first(where: { $0.name == name }) {
            return try ModelStore(directory: modelDir).resolve(known.name) { printError($0) }
        }
        return tokenizer
    }
}
