import Foundation
import SeedEngine
import Testing

@Suite struct ModelStoreTests {
    func temporaryCache() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("seed-store-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func explicitPathsAndUnknownNames() throws {
        let store = ModelStore(directory: try temporaryCache())
        let file = store.directory + "/model.gguf"
        FileManager.default.createFile(atPath: file, contents: Data([1, 2, 3]))
        #expect(try store.resolve(file, fetch: false) == file)
        #expect {
            try store.resolve("/no/such/model.gguf", fetch: false)
        } throws: { error in
            "\(error)".contains("does not exist") && "\(error)".contains("smollm2-135m-instruct")
        }
        #expect {
            try store.resolve(nil, fetch: false)
        } throws: { error in
            "\(error)".contains("not in \(store.directory)")
        }
    }

    @Test func fetchesAModelDirectoryAndRejectsAChecksumMismatch() throws {
        let store = ModelStore(directory: try temporaryCache())
        var tampered = KnownModel.miniLM
        tampered.checksums["config.json"] = String(repeating: "0", count: 64)
        #expect {
            try store.fetch(tampered)
        } throws: { error in
            "\(error)".contains("sha256 of all-MiniLM-L6-v2/config.json")
        }
        // Nothing half-done is left where the model belongs.
        #expect(!FileManager.default.fileExists(atPath: store.directory + "/all-MiniLM-L6-v2"))
        #expect(!FileManager.default.fileExists(atPath: store.directory + "/all-MiniLM-L6-v2.partial"))

        let path = try store.resolve("all-minilm-l6-v2")
        #expect(path == store.directory + "/all-MiniLM-L6-v2")
        for file in ["model.safetensors", "tokenizer.json", "config.json", "1_Pooling/config.json", ".complete"] {
            #expect(FileManager.default.fileExists(atPath: path + "/" + file), "\(file)")
        }
        // A second resolve finds it without fetching.
        #expect(try store.resolve("all-minilm-l6-v2", fetch: false) == path)
        try? FileManager.default.removeItem(atPath: store.directory)
    }
}
