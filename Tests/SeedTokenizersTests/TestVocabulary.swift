import Foundation
@testable import SeedTokenizers

/// A missing or unreadable test input, with a message that says how to provide it.
struct TokenizerTestDataError: Error, CustomStringConvertible {
    let description: String
}

/// The SmolLM2-135M-Instruct tokenizer, loaded once per test process.
///
/// For now this reads a JSON dump of the GGUF's tokenizer metadata (made by `scripts/dump-gguf-vocab.py`) from
/// `$SEED_SMOLLM_VOCAB_JSON` or `/tmp/smollm-vocab.json`. Once SeedFormats can read GGUF files, only this function
/// (and `loadSmolLMVocabulary`) needs to change.
func loadSmolLMTokenizer() throws -> BPETokenizer {
    try SmolLMVocabulary.tokenizer.get()
}

/// The raw vocabulary arrays of the SmolLM2 model (for tests that build tokenizers themselves).
func loadSmolLMVocabulary() throws -> SmolLMVocabulary.Dump {
    try SmolLMVocabulary.dump.get()
}

enum SmolLMVocabulary {
    struct Dump: Decodable, Sendable {
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

    static let dumpPath = ProcessInfo.processInfo.environment["SEED_SMOLLM_VOCAB_JSON"] ?? "/tmp/smollm-vocab.json"

    static let dump: Result<Dump, any Error> = Result {
        guard let data = FileManager.default.contents(atPath: dumpPath) else {
            throw TokenizerTestDataError(description: """
                SmolLM2 vocabulary dump not found at \(dumpPath). Create it with: pip install gguf && \
                python3 scripts/dump-gguf-vocab.py ~/.cache/seed/models/SmolLM2-135M-Instruct.Q4_1.gguf \(dumpPath) \
                (scripts/fetch-models.sh downloads the model), or point SEED_SMOLLM_VOCAB_JSON at an existing dump.
                """)
        }
        return try JSONDecoder().decode(Dump.self, from: data)
    }

    static let tokenizer: Result<BPETokenizer, any Error> = Result {
        try dump.get().makeTokenizer()
    }
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
