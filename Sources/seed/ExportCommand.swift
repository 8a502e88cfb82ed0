import ArgumentParser
import Foundation
import SeedEngine
import SeedFormats
import SeedTrain

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a trained model to GGUF (for seed generate/serve, llama.cpp) or Hugging Face safetensors.",
        discussion: """
            SOURCE is a run directory (its final/ model, else its newest valid checkpoint), a final/ directory or \
            a checkpoint directory. gguf-f32 and gguf-f16 write one GGUF file with the tokenizer copied from \
            --tokenizer (a GGUF with the vocabulary the data was prepared with; default smollm2); hf writes a \
            directory with model.safetensors and config.json.
            """)

    @Argument(help: ArgumentHelp("Run, final or checkpoint directory.", valueName: "source"))
    var source: String

    @Option(help: "Output format: gguf-f32, gguf-f16 or hf.")
    var format: String = "gguf-f32"

    @Option(help: ArgumentHelp("Output GGUF file, or directory for hf.", valueName: "path"))
    var output: String

    @Option(help: ArgumentHelp("GGUF whose tokenizer goes into the export (or a known model name).", valueName: "gguf"))
    var tokenizer: String = "smollm2"

    @Option(help: "Model cache directory (default: $SEED_MODEL_DIR or ~/.cache/seed/models).")
    var modelDir: String?

    func validate() throws {
        guard ExportFormat(rawValue: format) != nil else {
            throw ValidationError(
                "--format must be one of " + ExportFormat.allCases.map(\.rawValue).joined(separator: ", ")
                    + ", got '\(format)'")
        }
    }

    func run() throws {
        let exportFormat = ExportFormat(rawValue: format) ?? .ggufF32
        let model = try TrainedModel.open(path: source)
        switch exportFormat {
        case .hf:
            try model.writeHuggingFace(to: output)
        case .ggufF32, .ggufF16:
            let name = tokenizer.lowercased() == "smollm2" ? "smollm2-135m-instruct" : tokenizer
            let path = try ModelStore(directory: modelDir).resolve(name) { printError($0) }
            let file: GGUFFile
            do {
                file = try GGUFFile(path: path)
            } catch {
                throw ExportError.badTokenizer(path: path, reason: "\(error)")
            }
            try model.writeGGUF(to: output, tokenizer: file, halfPrecision: exportFormat == .ggufF16)
        }
        printError("exported \(model.source) as \(exportFormat.rawValue)")
        writeOut(output + "\n")
    }
}
