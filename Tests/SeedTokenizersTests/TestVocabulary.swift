import Foundation
import SeedFormats
import SeedTestSupport

@testable import SeedTokenizers

/// A missing or unreadable test input, with a message that says how to provide it.
struct TokenizerTestDataError: Error, CustomStringConvertible {
    let description: String
}

/// The SmolLM2-135M-Instruct tokenizer, read from the default model's GGUF once per test process.
func loadSmolLMTokenizer() throws -> BPETokenizer {
    try SmolLMVocabulary.tokenizer.get()
}

/// The raw vocabulary arrays of the SmolLM2 model (for tests that build tokenizers themselves).
func loadSmolLMVocabulary() throws -> SmolLMVocabulary.Dump {
    try SmolLMVocabulary.dump.get()
}

enum SmolLMVocabulary {
    /// The `tokenizer.ggml.*` arrays of the GGUF, as plain Swift values.
    struct Dump: Sendable {
        let tokens: [String]
        let token_type: [Int32]
        let merges: [String]
        let pre: String
        let bos_token_id: Int?
        let eos_token_id: Int?
        let add_bos_token: Bool?
        let add_eos_token: Bool?

        func makeTokenizer() throws -> BPETokenizer {
            try BPETokenizer(
                tokens: tokens, tokenTypes: token_type, merges: merges, preTokenizer: pre,
                bosTokenID: bos_token_id, eosTokenID: eos_token_id,
                addBOS: add_bos_token ?? false, addEOS: add_eos_token ?? false)
        }
    }

    static let file: Result<GGUFFile, any Error> = Result { try GGUFFile(path: try TestPaths.smolLM2()) }

    static let dump: Result<Dump, any Error> = Result {
        let m = try file.get().metadata
        return Dump(
            tokens: m["tokenizer.ggml.tokens"]?.stringArray ?? [],
            token_type: (m["tokenizer.ggml.token_type"]?.intArray ?? []).map { Int32($0) },
            merges: m["tokenizer.ggml.merges"]?.stringArray ?? [], pre: m["tokenizer.ggml.pre"]?.string ?? "",
            bos_token_id: m["tokenizer.ggml.bos_token_id"]?.int, eos_token_id: m["tokenizer.ggml.eos_token_id"]?.int,
            add_bos_token: m["tokenizer.ggml.add_bos_token"]?.bool,
            add_eos_token: m["tokenizer.ggml.add_eos_token"]?.bool)
    }

    static let tokenizer: Result<BPETokenizer, any Error> = Result { try BPETokenizer(gguf: try file.get()) }
}

/// Reference data shared by all worktrees: `<package root>/../shared/reference/<relativePath>`.
func tokenizerReferenceFileURL(_ relativePath: String, filePath: String = #filePath) throws -> URL {
    var directory = URL(fileURLWithPath: filePath).deletingLastPathComponent()
    while !FileManager.default.fileExists(atPath: directory.appendingPathComponent("Package.swift").path) {
        let parent = directory.deletingLastPathComponent()
        guard parent.path != directory.path else {
            throw TokenizerTestDataError(description: "no Package.swift found above \(filePath)")
        }
        directory = parent
    }
    let url = directory.deletingLastPathComponent().appendingPathComponent("shared/reference/\(relativePath)")
    guard FileManager.default.fileExists(atPath: url.path) else {
        throw TokenizerTestDataError(description: "reference file missing: \(url.standardizedFileURL.path)")
    }
    return url
}

/// One case of `smollm2/tokenizer-cases.json`: text and llama.cpp's ids (add_special and parse_special on).
struct TokenizerReferenceCase: Decodable, Sendable {
    let category: String
    let text: String
    let ids: [Int]
}

/// One case of `smollm2/chat-template.json`: a rendered chat prompt and llama.cpp's ids for it.
struct RenderedChatCase: Decodable, Sendable {
    let name: String
    let rendered: String
    let ids: [Int]
}

private struct RenderedChatFile: Decodable {
    let cases: [RenderedChatCase]
}

func loadTokenizerReferenceCases() throws -> [TokenizerReferenceCase] {
    let data = try Data(contentsOf: try tokenizerReferenceFileURL("smollm2/tokenizer-cases.json"))
    return try JSONDecoder().decode([TokenizerReferenceCase].self, from: data)
}

func loadRenderedChatCases() throws -> [RenderedChatCase] {
    let data = try Data(contentsOf: try tokenizerReferenceFileURL("smollm2/chat-template.json"))
    return try JSONDecoder().decode(RenderedChatFile.self, from: data).cases
}
