import Foundation

/// Locations of test inputs that live outside the repository: `../shared/reference` and the model cache.
public enum TestPaths {
    /// The package root: the nearest folder above `file` that holds `Package.swift`.
    public static func packageRoot(from file: String = #filePath) -> String {
        var url = URL(fileURLWithPath: file).deletingLastPathComponent()
        while url.path != "/" {
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
                return url.path
            }
            url = url.deletingLastPathComponent()
        }
        return FileManager.default.currentDirectoryPath
    }

    /// `../shared/reference/<relative>` beside the package root.
    public static func reference(_ relative: String, from file: String = #filePath) -> String {
        URL(fileURLWithPath: packageRoot(from: file)).deletingLastPathComponent()
            .appendingPathComponent("shared/reference").appendingPathComponent(relative).path
    }

    /// Reads a reference file, failing with a message that says where it was expected.
    public static func referenceData(_ relative: String, from file: String = #filePath) throws -> Data {
        let path = reference(relative, from: file)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw MissingInput(message: "reference file \(path) is missing (../shared must sit beside the repository)")
        }
        return data
    }

    /// The model cache: `$SEED_MODEL_DIR` or `~/.cache/seed/models`.
    public static var modelDirectory: String {
        if let dir = ProcessInfo.processInfo.environment["SEED_MODEL_DIR"], !dir.isEmpty { return dir }
        return NSHomeDirectory() + "/.cache/seed/models"
    }

    /// Path of the default model (SmolLM2-135M-Instruct Q4_1), which `scripts/test.sh` fetches before the tests.
    public static func smolLM2() throws -> String {
        let path = modelDirectory + "/SmolLM2-135M-Instruct.Q4_1.gguf"
        guard FileManager.default.fileExists(atPath: path) else {
            throw MissingInput(message: "\(path) is missing: run scripts/fetch-models.sh (scripts/test.sh does)")
        }
        return path
    }

    /// A test input that is not where it should be.
    public struct MissingInput: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }
}
