import ArgumentParser
import Foundation
import SeedEngine
import SeedFormats

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Show a GGUF model's metadata, tensors and parameter count.")

    @Argument(help: "GGUF file or known model name (default: the default model).")
    var model: String?

    @Option(help: "Model cache directory (default: $SEED_MODEL_DIR or ~/.cache/seed/models).")
    var modelDir: String?

    @Flag(help: "Also list every tensor.")
    var tensors = false

    @Option(help: "Show at most this many elements of array values.")
    var maxArray: Int = 8

    func run() throws {
        let path = try ModelStore(directory: modelDir).resolve(model) { printError($0) }
        let file = try GGUFFile(path: path)
        var out = "file: \(path)\n"
        out += "GGUF version \(file.version), \(file.metadataKeys.count) metadata keys, \(file.tensors.count) tensors\n"
        var counts: [String: (tensors: Int, parameters: Int)] = [:]
        var parameters = 0
        for t in file.tensors {
            parameters += t.elementCount
            counts[t.type.name, default: (0, 0)].tensors += 1
            counts[t.type.name, default: (0, 0)].parameters += t.elementCount
        }
        out += "parameters: \(parameters) (\(String(format: "%.1f", Double(parameters) / 1e6))M)\n"
        out +=
            "tensor types: "
            + counts.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value.tensors)" }.joined(separator: ", ")
            + "\n\nmetadata:\n"
        for key in file.metadataKeys {
            guard let value = file.metadata[key] else { continue }
            out += "  \(key) = \(render(value))\n"
        }
        if tensors {
            out += "\ntensors:\n"
            let width = file.tensors.map(\.name.count).max() ?? 0
            for t in file.tensors {
                let name = t.name.padding(toLength: width, withPad: " ", startingAt: 0)
                let type = t.type.name.padding(toLength: 6, withPad: " ", startingAt: 0)
                out += "  \(name)  \(type)  \(t.dimensions)  \(t.elementCount)\n"
            }
        } else {
            out += "\n(use --tensors to list all \(file.tensors.count) tensors)\n"
        }
        writeOut(out)
    }

    private func render(_ value: GGUFValue) -> String {
        switch value {
        case .string(let s):
            let escaped = s.replacingOccurrences(of: "\n", with: "\\n")
            return escaped.count > 120 ? "\"\(escaped.prefix(120))…\" (\(s.count) chars)" : "\"\(escaped)\""
        case .array(let items):
            let shown = (0..<min(maxArray, items.count)).map { render(items[$0]) }.joined(separator: ", ")
            return items.count > maxArray ? "[\(shown), …] (\(items.count) items)" : "[\(shown)]"
        default:
            return "\(value)"
        }
    }
}
