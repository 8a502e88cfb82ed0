import Foundation
import SeedTestSupport
import Testing

@testable import SeedTokenizers

/// all-MiniLM-L6-v2's `tokenizer.json` against ids produced by `tokenizers` 0.23.3 (truncation 256, no padding).
@Suite("HFTokenizer MiniLM reference")
struct HFTokenizerReferenceTests {
    struct Case: Decodable {
        var text: String
        var ids: [Int]
        var attention_mask: [Int]
        var tokens: [String]
        var n_tokens_untruncated: Int
        var truncated: Bool
    }

    static let tokenizerPath = TestPaths.modelDirectory + "/all-MiniLM-L6-v2/tokenizer.json"

    static func loadCases() throws -> [Case] {
        try JSONDecoder().decode([Case].self, from: TestPaths.referenceData("minilm/tokenizer-cases.json"))
    }

    @Test("every reference case: ids, tokens, attention mask, untruncated length")
    func referenceCases() throws {
        let tokenizer = try HFTokenizer(file: Self.tokenizerPath)
        let cases = try Self.loadCases()
        #expect(cases.count == 25)
        for item in cases {
            let encoding = tokenizer.encode(item.text, maxLength: 256)
            #expect(encoding.ids == item.ids, "ids for \(String(reflecting: item.text))")
            #expect(encoding.tokens == item.tokens, "tokens for \(String(reflecting: item.text))")
            #expect(encoding.attentionMask == item.attention_mask)
            #expect(encoding.typeIDs == [Int](repeating: 0, count: item.ids.count))
            #expect(encoding.untruncatedLength == item.n_tokens_untruncated)
            #expect(encoding.truncated == item.truncated)
        }
        #expect(cases.contains { $0.truncated }, "the reference set should include a truncated case")
    }

    @Test("file metadata: vocabulary, pad id, truncation and padding blocks")
    func metadata() throws {
        let tokenizer = try HFTokenizer(file: Self.tokenizerPath)
        #expect(tokenizer.vocabularySize == 30522)
        #expect(tokenizer.padTokenID == 0)
        #expect(tokenizer.fileTruncation == 128)
        #expect(tokenizer.filePaddingLength == 128)
        #expect(tokenizer.tokenID(for: "[CLS]") == 101)
        #expect(tokenizer.tokenID(for: "[UNK]") == 100)
        #expect(tokenizer.tokenID(for: "not-a-token-at-all") == nil)
    }

    @Test("the file's truncation (128) applies when maxLength is nil; padding is not applied")
    func fileTruncation() throws {
        let tokenizer = try HFTokenizer(file: Self.tokenizerPath)
        let long = try #require(try Self.loadCases().first { $0.truncated })
        let encoding = tokenizer.encode(long.text)
        #expect(encoding.ids.count == 128)
        #expect(encoding.ids.first == 101 && encoding.ids.last == 102)
        #expect(Array(encoding.ids[1..<127]) == Array(long.ids[1..<127]))
        #expect(encoding.untruncatedLength == long.n_tokens_untruncated)
        #expect(encoding.truncated)
        let short = tokenizer.encode("hello world")
        #expect(short.ids == [101, 7592, 2088, 102])
    }

    @Test("empty and whitespace-only text give just [CLS] [SEP]; without special tokens, nothing")
    func emptyText() throws {
        let tokenizer = try HFTokenizer(file: Self.tokenizerPath)
        #expect(tokenizer.encode("").ids == [101, 102])
        #expect(tokenizer.encode(" \t\n ").ids == [101, 102])
        #expect(tokenizer.encode("", addSpecialTokens: false).ids == [])
        #expect(tokenizer.encode("").untruncatedLength == 2)
    }

    @Test("a 100k-character input is truncated without crashing")
    func hugeInput() throws {
        let tokenizer = try HFTokenizer(file: Self.tokenizerPath)
        let words = String(repeating: "tokenization is fun, ", count: 5_000)
        #expect(words.count >= 100_000)
        let encoding = tokenizer.encode(words, maxLength: 256)
        #expect(encoding.ids.count == 256)
        #expect(encoding.truncated)
        #expect(encoding.untruncatedLength > 20_000)
        // One 100k-scalar word exceeds max_input_chars_per_word and becomes [UNK].
        let blob = tokenizer.encode(String(repeating: "x", count: 100_000))
        #expect(blob.ids == [101, 100, 102])
    }

    @Test("decode round trip of plain ASCII sentences gives the lowercased text")
    func decodeRoundTrip() throws {
        let tokenizer = try HFTokenizer(file: Self.tokenizerPath)
        for sentence in [
            "The quick brown fox jumps over the lazy dog.", "Hello, world! How are you?",
            "Tokenizers split words into pieces", "Seed runs small models, and it embeds sentences.",
        ] {
            let ids = tokenizer.encode(sentence).ids
            #expect(try tokenizer.decode(ids) == sentence.lowercased())
        }
        // `tokenizers` cleans up each token on its own, so the apostrophe of a split contraction keeps its spaces.
        #expect(try tokenizer.decode(tokenizer.encode("I can't").ids) == "i can ' t")
        let withSpecial = try tokenizer.decode(tokenizer.encode("hi there").ids, skipSpecialTokens: false)
        #expect(withSpecial == "[CLS] hi there [SEP]")
        #expect(throws: TokenizerError.invalidTokenID(40_000, vocabularySize: 30522)) {
            try tokenizer.decode([101, 40_000])
        }
    }
}
