import SeedTokenizers
import Testing

/// Pre-tokenizer splits on hand-picked strings; expected pieces are derived by hand from each regular expression.
@Suite struct PreTokenizerTests {
    private func split(_ name: String, _ text: String) throws -> [String] {
        let pieces = try PreTokenizer(name: name).split(text)
        #expect(pieces.joined().unicodeScalars.elementsEqual(text.unicodeScalars), "pieces must cover the text")
        return pieces
    }

    @Test func smolLMSplitsEveryNumberCharacter() throws {
        #expect(try split("smollm", " ½") == [" ", "½"])
        #expect(try split("smollm", "x 12") == ["x", " ", "1", "2"])
        #expect(try split("smollm", "3.14") == ["3", ".", "1", "4"])
        // Nl (Roman numeral), No (superscript, circled digit) and non-ASCII Nd (Arabic-Indic, Devanagari digits).
        #expect(try split("smollm", "Ⅻ²①٣५") == ["Ⅻ", "²", "①", "٣", "५"])
        #expect(try split("smollm", "x²") == ["x", "²"])
    }

    @Test func smolLMAppliesGPT2RulesBetweenNumbers() throws {
        #expect(try split("smollm", "   a") == ["  ", " a"])
        #expect(try split("smollm", "a\n\n b") == ["a", "\n\n", " b"])
        #expect(try split("smollm", "don't") == ["don", "'t"])
        #expect(try split("smollm", "I'M") == ["I", "'", "M"], "GPT-2 contractions are case-sensitive")
        #expect(try split("smollm", "we'll they've") == ["we", "'ll", " they", "'ve"])
        #expect(try split("smollm", "Hello мир 世界! مرحبا") == ["Hello", " мир", " 世界", "!", " مرحبا"])
        #expect(try split("smollm", "trailing  ") == ["trailing", "  "])
        #expect(try split("smollm", "a\u{A0}b") == ["a", "\u{A0}", "b"], "NBSP is \\s")
        #expect(try split("smollm", "\tx") == ["\t", "x"])
        #expect(try split("smollm", " (ok)") == [" (", "ok", ")"])
        #expect(
            try split("smollm", "e\u{301}t\u{E9}") == ["e", "\u{301}", "t\u{E9}"], "a combining mark is not \\p{L}")
        #expect(try split("smollm", "") == [])
    }

    @Test func gpt2KeepsNumberRuns() throws {
        #expect(try split("gpt2", "abc  123") == ["abc", " ", " 123"])
        #expect(try split("gpt-2", " ½") == [" ½"])
        #expect(try split("gpt2", "   ") == ["   "])
        #expect(try split("gpt2", "a  \n b") == ["a", "  \n", " b"])
        #expect(try split("gpt2", "x's 'twas") == ["x", "'s", " '", "twas"])
    }

    @Test func llama3Splits() throws {
        #expect(try split("llama3", "Hello world") == ["Hello", " world"])
        #expect(try split("llama3", "I'M fine") == ["I", "'M", " fine"], "contractions are case-insensitive")
        #expect(try split("llama3", "12345") == ["123", "45"])
        #expect(try split("llama3", "a\n\n b") == ["a", "\n\n", " b"])
        #expect(try split("llama3", "  hello") == [" ", " hello"])
        #expect(try split("llama3", "foo!!\n\nbar") == ["foo", "!!\n\n", "bar"])
        #expect(try split("llama3", "$100") == ["$", "100"])
        #expect(try split("llama3", "'hello") == ["'hello"])
        #expect(try split("llama3", "don't") == ["don", "'t"])
        #expect(try split("llama3", "x  \n y") == ["x", "  \n", " y"])
        #expect(try split("llama3", "\tword") == ["\tword"])
        #expect(try split("llama3", "ok. ") == ["ok", ".", " "])
        #expect(try split("llama3", "(x)") == ["(x", ")"])
        #expect(try split("llama-bpe", "a1b") == ["a", "1", "b"])
    }

    @Test func qwen2SplitsSingleDigits() throws {
        #expect(try split("qwen2", "12345") == ["1", "2", "3", "4", "5"])
        #expect(try split("qwen2", "I'M ok") == ["I", "'M", " ok"])
    }

    @Test func defaultPipeline() throws {
        // [\p{P}$+<=>^~|]+ first, then GPT-2 on each piece, then \p{N}+, then [0-9]{3}.
        #expect(try split("default", "Hi, there! 12345") == ["Hi", ",", " there", "!", " ", "123", "45"])
    }

    @Test func aliasesResolveToCanonicalNames() throws {
        #expect(try PreTokenizer(name: "llama-bpe").name == "llama3")
        #expect(try PreTokenizer(name: "llama-bpe").ignoresMerges)
        #expect(try PreTokenizer(name: "starcoder").name == "smollm")
        #expect(try !PreTokenizer(name: "smollm").ignoresMerges)
        for name in PreTokenizer.supportedNames {
            #expect(throws: Never.self) { try PreTokenizer(name: name) }
        }
    }

    @Test func unknownNameIsAnError() {
        #expect(throws: TokenizerError.unknownPreTokenizer(name: "tekken", supported: PreTokenizer.supportedNames)) {
            try PreTokenizer(name: "tekken")
        }
        let message = TokenizerError.unknownPreTokenizer(name: "tekken", supported: PreTokenizer.supportedNames)
            .description
        #expect(message.contains("\"tekken\"") && message.contains("smollm") && message.contains("llama3"))
    }
}
