import Foundation
import SeedTestSupport
import Testing

@testable import SeedTokenizers

/// Builds a `tokenizer.json` from Swift values.
private func tokenizerJSON(
    model: [String: Any], normalizer: Any = NSNull(), preTokenizer: Any = NSNull(), postProcessor: Any = NSNull(),
    decoder: Any = NSNull(), addedTokens: [[String: Any]] = []
) throws -> Data {
    let root: [String: Any] = [
        "version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": addedTokens,
        "normalizer": normalizer, "pre_tokenizer": preTokenizer, "post_processor": postProcessor,
        "decoder": decoder, "model": model,
    ]
    return try JSONSerialization.data(withJSONObject: root, options: [.sortedKeys])
}

private func addedToken(_ content: String, id: Int, special: Bool = true) -> [String: Any] {
    [
        "id": id, "content": content, "special": special, "single_word": false, "lstrip": false, "rstrip": false,
        "normalized": !special,
    ]
}

@Suite("HFTokenizer normalizers")
struct HFTokenizerNormalizerTests {
    let bert = HFNormalizer.bert(cleanText: true, handleChineseChars: true, stripAccents: true, lowercase: true)

    @Test("BertNormalizer lowercases and strips accents, for NFC and NFD input alike")
    func accents() {
        #expect(bert.apply("Café") == "cafe")
        #expect(bert.apply("Cafe\u{301}") == "cafe")
        #expect(bert.apply("ÀÉÎÕÜ Ñandú") == "aeiou nandu")
        #expect(bert.apply("で") == "て")  // the dakuten is a combining mark after NFD
        let cased = HFNormalizer.bert(cleanText: true, handleChineseChars: true, stripAccents: false, lowercase: false)
        #expect(cased.apply("Café") == "Café")
    }

    @Test("BertNormalizer strip_accents null follows lowercase")
    func stripAccentsDefault() throws {
        let json = try HFJSONObject(
            ["type": "BertNormalizer", "strip_accents": NSNull(), "lowercase": true] as [String: Any], path: "n")
        #expect(try HFNormalizer(json: json) == bert)
        let keep = try HFJSONObject(
            ["type": "BertNormalizer", "strip_accents": NSNull(), "lowercase": false] as [String: Any], path: "n")
        #expect(try HFNormalizer(json: keep).apply("Café") == "Café")
    }

    @Test("BertNormalizer puts spaces around CJK ideographs only")
    func chinese() {
        #expect(bert.apply("中文ok") == " 中  文 ok")
        #expect(bert.apply("한국어") == "한국어")  // Hangul is not isolated
        #expect(bert.apply("カタカナ") == "カタカナ")
    }

    @Test("BertNormalizer drops controls, format characters, NUL and U+FFFD; whitespace becomes a space")
    func cleanText() {
        #expect(bert.apply("a\u{0}b\u{200B}c\u{FEFF}d\u{1}e\u{FFFD}f") == "abcdef")
        #expect(bert.apply("a\u{00A0}b\tc\nd\r\u{3000}") == "a b c d  ")
        #expect(bert.apply("zero\u{200D}width") == "zerowidth")
    }

    @Test("Lowercase, NFC/NFD/NFKC, StripAccents, Replace, Prepend and Sequence")
    func others() {
        #expect(HFNormalizer.lowercase.apply("ÀB") == "àb")
        #expect(HFNormalizer.nfd.apply("é").unicodeScalars.count == 2)
        #expect(HFNormalizer.nfc.apply("e\u{301}").unicodeScalars.count == 1)
        #expect(HFNormalizer.nfkc.apply("ｆｕｌｌ") == "full")
        #expect(HFNormalizer.stripAccents.apply("naïve") == "naive")
        #expect(HFNormalizer.replace(pattern: " ", content: "▁").apply("a b  c") == "a▁b▁▁c")
        #expect(HFNormalizer.prepend("▁").apply("hi") == "▁hi")
        #expect(HFNormalizer.prepend("▁").apply("") == "")
        #expect(HFNormalizer.sequence([.nfd, .stripAccents, .lowercase]).apply("Ça Va") == "ca va")
    }
}

@Suite("HFTokenizer pre-tokenizers")
struct HFTokenizerPreTokenizerTests {
    @Test("BertPreTokenizer splits on whitespace and isolates every punctuation character")
    func bert() {
        let split: (String) -> [String] = { HFPreTokenizer.bert.split($0, isFirstSegment: true) }
        #expect(split("Hello, world! (test)") == ["Hello", ",", "world", "!", "(", "test", ")"])
        #expect(split("don't  stop...") == ["don", "'", "t", "stop", ".", ".", "."])
        #expect(split("a$b+c^d`e~f") == ["a", "$", "b", "+", "c", "^", "d", "`", "e", "~", "f"])
        #expect(split("«quoted»—dash") == ["«", "quoted", "»", "—", "dash"])
        #expect(split(" \t\n ") == [])
        #expect(split("") == [])
    }

    @Test("Whitespace, WhitespaceSplit, Punctuation, Digits")
    func others() {
        let whitespace = HFPreTokenizer.whitespace.split("Hey friend!! 12ab", isFirstSegment: true)
        #expect(whitespace == ["Hey", "friend", "!!", "12ab"])
        #expect(HFPreTokenizer.whitespaceSplit.split(" a!b  c ", isFirstSegment: true) == ["a!b", "c"])
        #expect(HFPreTokenizer.punctuation(.isolated).split("a,b", isFirstSegment: true) == ["a", ",", "b"])
        #expect(HFPreTokenizer.punctuation(.mergedWithPrevious).split("a,b", isFirstSegment: true) == ["a,", "b"])
        let digits = HFPreTokenizer.digits(individual: true).split("a123b", isFirstSegment: true)
        #expect(digits == ["a", "1", "2", "3", "b"])
        #expect(HFPreTokenizer.digits(individual: false).split("a123b", isFirstSegment: true) == ["a", "123", "b"])
    }

    @Test("ByteLevel uses the GPT-2 expression; Metaspace replaces spaces and splits before them")
    func byteLevelAndMetaspace() throws {
        let byteLevel = HFPreTokenizer.byteLevel(
            addPrefixSpace: false, useRegex: true, splitter: try PreTokenizer(name: "gpt2"))
        #expect(byteLevel.split("Hello world's 42", isFirstSegment: true) == ["Hello", " world", "'s", " 42"])
        let metaspace = HFPreTokenizer.metaspace(replacement: "▁", prependScheme: .always, split: true)
        #expect(metaspace.split("Hey  you", isFirstSegment: true) == ["▁Hey", "▁", "▁you"])
    }
}

@Suite("HFTokenizer WordPiece")
struct HFTokenizerWordPieceTests {
    static let vocabulary: [String: Int] = [
        "[UNK]": 0, "un": 1, "##aff": 2, "##able": 3, "aff": 4, "##a": 5, "##af": 6, "[CLS]": 7, "[SEP]": 8,
        "runn": 9, "##ing": 10, "run": 11,
    ]

    @Test("greedy longest match first, [UNK] for a word that cannot be fully matched, max chars per word")
    func tinyVocabulary() throws {
        let model = try HFWordPiece(
            vocabulary: Self.vocabulary, unknownToken: "[UNK]", prefix: "##", maxInputCharsPerWord: 9)
        func ids(_ word: String) -> [Int] {
            var result: [Int] = []
            model.tokenize(word, into: &result)
            return result
        }
        #expect(ids("unaffable") == [1, 2, 3])  // ##aff beats ##af and ##a
        #expect(ids("running") == [9, 10])  // runn beats run
        #expect(ids("affa") == [4, 5])
        #expect(ids("affx") == [0])  // "##x" is missing: the whole word is unknown
        #expect(ids("xaff") == [0])
        #expect(ids("unaffablea") == [0])  // 10 scalars > 9
        #expect(ids("") == [])
    }

    @Test("a WordPiece tokenizer.json: pre-tokenizer, model and BertProcessing together")
    func throughJSON() throws {
        let data = try tokenizerJSON(
            model: ["type": "WordPiece", "unk_token": "[UNK]", "vocab": Self.vocabulary],
            preTokenizer: ["type": "WhitespaceSplit"],
            postProcessor: ["type": "BertProcessing", "sep": ["[SEP]", 8], "cls": ["[CLS]", 7]],
            decoder: ["type": "WordPiece", "prefix": "##", "cleanup": true],
            addedTokens: [addedToken("[CLS]", id: 7), addedToken("[SEP]", id: 8)])
        let tokenizer = try HFTokenizer(json: data)
        let encoding = tokenizer.encode("unaffable running zzz")
        #expect(encoding.ids == [7, 1, 2, 3, 9, 10, 0, 8])
        #expect(encoding.tokens == ["[CLS]", "un", "##aff", "##able", "runn", "##ing", "[UNK]", "[SEP]"])
        #expect(try tokenizer.decode(encoding.ids) == "unaffable running [UNK]")
        #expect(tokenizer.encode("unaffable", addSpecialTokens: false).ids == [1, 2, 3])
        let pair = tokenizer.encode("run", pair: "aff")
        #expect(pair.ids == [7, 11, 8, 4, 8])
        #expect(pair.typeIDs == [0, 0, 0, 1, 1])
    }
}

@Suite("HFTokenizer post-processing and truncation")
struct HFTokenizerTemplateTests {
    @Test("TemplateProcessing with a pair: $A/$B, special tokens, type ids")
    func templatePair() throws {
        let template: [String: Any] = [
            "type": "TemplateProcessing",
            "single": [
                ["SpecialToken": ["id": "<s>", "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]],
                ["SpecialToken": ["id": "</s>", "type_id": 0]],
            ],
            "pair": ["<s>", "$A", "</s>", "$B:1", "</s>:1"],
            "special_tokens": [
                "<s>": ["id": "<s>", "ids": [0], "tokens": ["<s>"]],
                "</s>": ["id": "</s>", "ids": [1], "tokens": ["</s>"]],
            ],
        ]
        let data = try tokenizerJSON(
            model: [
                "type": "WordLevel", "unk_token": "<unk>", "vocab": ["<s>": 0, "</s>": 1, "<unk>": 2, "a": 3, "b": 4],
            ],
            preTokenizer: ["type": "Whitespace"], postProcessor: template,
            addedTokens: [addedToken("<s>", id: 0), addedToken("</s>", id: 1)])
        let tokenizer = try HFTokenizer(json: data)
        #expect(tokenizer.encode("a b c").ids == [0, 3, 4, 2, 1])
        let pair = tokenizer.encode("a a", pair: "b")
        #expect(pair.ids == [0, 3, 3, 1, 4, 1])
        #expect(pair.typeIDs == [0, 0, 0, 0, 1, 1])
        #expect(pair.tokens == ["<s>", "a", "a", "</s>", "b", "</s>"])
        // LongestFirst: 3 + 1 ids with a budget of 5 - 3 specials = 2 → 1 + 1.
        let truncated = tokenizer.encode("a a a", pair: "b", maxLength: 5)
        #expect(truncated.ids == [0, 3, 1, 4, 1])
        #expect(truncated.untruncatedLength == 7)
        #expect(truncated.truncated)
    }

    @Test("LongestFirst keeps the shorter sequence when the longer can absorb the cut")
    func longestFirst() {
        #expect(HFTokenizer.longestFirst(10, 3, budget: 8) == (5, 3))
        #expect(HFTokenizer.longestFirst(3, 10, budget: 8) == (3, 5))
        #expect(HFTokenizer.longestFirst(10, 10, budget: 7) == (3, 4))
        #expect(HFTokenizer.longestFirst(2, 2, budget: 8) == (2, 2))
        #expect(HFTokenizer.longestFirst(5, 5, budget: 0) == (0, 0))
    }
}

@Suite("HFTokenizer byte-level BPE")
struct HFTokenizerBPETests {
    /// Merges (rank order): h e, l l, he ll, hell o, Ġ w, o r, Ġw or — half as strings, half as pairs.
    static func makeTokenizer(addPrefixSpace: Bool = false) throws -> HFTokenizer {
        let vocabulary: [String: Int] = [
            "h": 0, "e": 1, "l": 2, "o": 3, "Ġ": 4, "w": 5, "r": 6, "d": 7, "he": 8, "ll": 9, "hell": 10, "hello": 11,
            "Ġw": 12, "or": 13, "Ġwor": 14, "!": 16,
        ]
        let merges: [Any] = ["h e", ["l", "l"], "he ll", ["hell", "o"], "Ġ w", ["o", "r"], "Ġw or"]
        let data = try tokenizerJSON(
            model: ["type": "BPE", "vocab": vocabulary, "merges": merges, "unk_token": NSNull()],
            preTokenizer: ["type": "ByteLevel", "add_prefix_space": addPrefixSpace, "use_regex": true],
            postProcessor: ["type": "ByteLevel", "trim_offsets": true],
            decoder: ["type": "ByteLevel"],
            addedTokens: [addedToken("<|endoftext|>", id: 15)])
        return try HFTokenizer(json: data)
    }

    @Test("merges by rank on each GPT-2 piece; ids derived by hand")
    func tinyMerges() throws {
        let tokenizer = try Self.makeTokenizer()
        // "hello" → h e l l o → he l l o → he ll o → hell o → hello.
        // " world" → Ġ w o r l d → Ġw o r l d → Ġw or l d → Ġwor l d.
        let encoding = tokenizer.encode("hello world")
        #expect(encoding.ids == [11, 14, 2, 7])
        #expect(encoding.tokens == ["hello", "Ġwor", "l", "d"])
        #expect(try tokenizer.decode(encoding.ids) == "hello world")
        #expect(tokenizer.encode("hello<|endoftext|>!").ids == [11, 15, 16])
        #expect(try tokenizer.decode([11, 15, 16]) == "hello!")
        #expect(try tokenizer.decode([11, 15, 16], skipSpecialTokens: false) == "hello<|endoftext|>!")
        #expect(tokenizer.vocabularySize == 17)
    }

    @Test("add_prefix_space puts a space before the first word")
    func prefixSpace() throws {
        let tokenizer = try Self.makeTokenizer(addPrefixSpace: true)
        #expect(tokenizer.encode("wor").ids == [14])
    }
}

@Suite("HFTokenizer bad input")
struct HFTokenizerBadInputTests {
    static var wordPieceModel: [String: Any] {
        ["type": "WordPiece", "unk_token": "[UNK]", "vocab": ["[UNK]": 0, "a": 1]]
    }

    @Test("invalid JSON and a missing model are reported as invalid tokenizer.json")
    func invalidJSON() throws {
        #expect {
            try HFTokenizer(json: Data("{not json".utf8))
        } throws: { error in
            guard case .invalidTokenizerJSON = error as? TokenizerError else { return false }
            return true
        }
        #expect(throws: TokenizerError.invalidTokenizerJSON("tokenizer.model is missing")) {
            try HFTokenizer(json: Data(#"{"version": "1.0", "normalizer": null}"#.utf8))
        }
        #expect(throws: TokenizerError.invalidTokenizerJSON("tokenizer is not an object")) {
            try HFTokenizer(json: Data("[1, 2]".utf8))
        }
        #expect(throws: TokenizerError.unreadableFile(path: "/nonexistent/tokenizer.json")) {
            try HFTokenizer(file: "/nonexistent/tokenizer.json")
        }
    }

    @Test("unknown component types name the kind and the type")
    func unknownComponents() throws {
        #expect(throws: TokenizerError.unsupportedComponent(kind: "model", type: "Unigram")) {
            try HFTokenizer(json: tokenizerJSON(model: ["type": "Unigram", "vocab": [["a", 0.0]]]))
        }
        #expect(throws: TokenizerError.unsupportedComponent(kind: "normalizer", type: "Precompiled")) {
            try HFTokenizer(json: tokenizerJSON(model: Self.wordPieceModel, normalizer: ["type": "Precompiled"]))
        }
        #expect(throws: TokenizerError.unsupportedComponent(kind: "pre-tokenizer", type: "UnicodeScripts")) {
            try HFTokenizer(json: tokenizerJSON(model: Self.wordPieceModel, preTokenizer: ["type": "UnicodeScripts"]))
        }
        #expect(throws: TokenizerError.unsupportedComponent(kind: "post-processor", type: "Magic")) {
            try HFTokenizer(json: tokenizerJSON(model: Self.wordPieceModel, postProcessor: ["type": "Magic"]))
        }
        #expect(throws: TokenizerError.unsupportedComponent(kind: "decoder", type: "CTC")) {
            try HFTokenizer(json: tokenizerJSON(model: Self.wordPieceModel, decoder: ["type": "CTC"]))
        }
        let description = TokenizerError.unsupportedComponent(kind: "model", type: "Unigram").description
        #expect(description.contains("model") && description.contains("Unigram"))
    }

    @Test("WordPiece whose unk_token is not in the vocabulary")
    func missingUnknown() throws {
        #expect(throws: TokenizerError.missingUnknownToken("[UNK]")) {
            try HFTokenizer(json: tokenizerJSON(model: ["type": "WordPiece", "unk_token": "[UNK]", "vocab": ["a": 0]]))
        }
    }

    @Test("malformed merges: a string without exactly two parts, a pair of the wrong shape")
    func malformedMerges() throws {
        let vocabulary = ["a": 0, "b": 1, "ab": 2]
        #expect(throws: TokenizerError.malformedMerge(rank: 1, rule: "a b c")) {
            try HFTokenizer(
                json: tokenizerJSON(
                    model: ["type": "BPE", "vocab": vocabulary, "merges": ["a b", "a b c"]],
                    preTokenizer: ["type": "ByteLevel"]))
        }
        #expect {
            try HFTokenizer(
                json: tokenizerJSON(
                    model: ["type": "BPE", "vocab": vocabulary, "merges": [["a", "b"], ["ab"]]],
                    preTokenizer: ["type": "ByteLevel"]))
        } throws: { error in
            guard case .malformedMerge(rank: 1, _) = error as? TokenizerError else { return false }
            return true
        }
        #expect(throws: TokenizerError.invalidTokenizerJSON("tokenizer.model.vocab[\"a\"] is not a valid id")) {
            try HFTokenizer(json: tokenizerJSON(model: ["type": "WordPiece", "vocab": ["a": -1]]))
        }
    }

    @Test("odd text never crashes: lone combining marks, emoji, controls, long words")
    func oddText() throws {
        let tokenizer = try HFTokenizer(
            json: tokenizerJSON(
                model: Self.wordPieceModel,
                normalizer: ["type": "BertNormalizer", "lowercase": true, "strip_accents": NSNull()],
                preTokenizer: ["type": "BertPreTokenizer"]))
        #expect(tokenizer.encode("\u{301}\u{301} 🙂 \u{0}\u{7} a").ids == [0, 1])
        #expect(tokenizer.encode("").ids == [])
        #expect(tokenizer.encode(String(repeating: "a ", count: 50_000), maxLength: 10).ids.count == 10)
    }
}

@Suite("HFTokenizer Split with regular expressions")
struct HFTokenizerRegexSplitTests {
    static let gpt2 = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let llama3 =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2 =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    static func split(_ pattern: String, behavior: String = "Isolated", invert: Bool = false) throws -> HFPreTokenizer {
        let json: [String: Any] = [
            "type": "Split", "pattern": ["Regex": pattern], "behavior": behavior, "invert": invert,
        ]
        return try HFPreTokenizer(json: HFJSONObject(json, path: "tokenizer.pre_tokenizer"))
    }

    static let text = "Hello WORLD'S 12345 tests!!\n\n  ok\tÉcole's café 3.14 👍🏽 日本語"

    /// Expected pieces: `tokenizers` 0.23.3, `pre_tokenizers.Split(Regex(pattern), behavior="isolated")`.
    @Test("the GPT-2, Llama 3 and Qwen 2 expressions split as tokenizers does")
    func knownExpressions() throws {
        #expect(
            try Self.split(Self.gpt2).split(Self.text, isFirstSegment: true) == [
                "Hello", " WORLD", "'", "S", " 12345", " tests", "!!", "\n\n ", " ok", "\t", "École", "'s", " café",
                " 3", ".", "14", " 👍🏽", " 日本語",
            ])
        #expect(
            try Self.split(Self.llama3).split(Self.text, isFirstSegment: true) == [
                "Hello", " WORLD", "'S", " ", "123", "45", " tests", "!!\n\n", " ", " ok", "\tÉcole", "'s", " café",
                " ", "3", ".", "14", " 👍🏽", " 日本語",
            ])
        #expect(
            try Self.split(Self.qwen2).split(Self.text, isFirstSegment: true) == [
                "Hello", " WORLD", "'S", " ", "1", "2", "3", "4", "5", " tests", "!!\n\n", " ", " ok", "\tÉcole", "'s",
                " café", " ", "3", ".", "1", "4", " 👍🏽", " 日本語",
            ])
    }

    /// Expected pieces: `tokenizers` 0.23.3 on "ab, cd" with the GPT-2 expression (its matches tile the text).
    @Test("every split behavior and invert, as tokenizers does them")
    func behaviors() throws {
        func pieces(_ behavior: String, invert: Bool = false) throws -> [String] {
            try Self.split(Self.gpt2, behavior: behavior, invert: invert).split("ab, cd", isFirstSegment: true)
        }
        #expect(try pieces("Removed") == [])
        #expect(try pieces("MergedWithPrevious") == ["ab", ",", " cd"])
        #expect(try pieces("MergedWithNext") == ["ab", ",", " cd"])
        #expect(try pieces("Contiguous") == ["ab, cd"])
        #expect(try pieces("Removed", invert: true) == ["ab", ",", " cd"])
        // Literal patterns follow the same rules: inverted, each occurrence is its own piece.
        let literal = HFPreTokenizer.split(pattern: "ab", behavior: .removed, invert: true)
        #expect(literal.split("ababxab", isFirstSegment: true) == ["ab", "ab", "ab"])
        let contiguous = HFPreTokenizer.split(pattern: "-", behavior: .contiguous, invert: false)
        #expect(contiguous.split("a--b-c", isFirstSegment: true) == ["a", "--", "b", "-", "c"])
    }

    @Test("a Llama 3 style tokenizer.json: Split by the expression, then byte-level BPE within each piece")
    func piecesBoundMerges() throws {
        // Ranked first, the merge "3 4" would join the digits across the \p{N}{1,3} boundary: 12345 → 12 34 5.
        let vocabulary: [String: Int] = [
            "1": 0, "2": 1, "3": 2, "4": 3, "5": 4, "12": 5, "123": 6, "45": 7, "34": 8,
        ]
        let data = try tokenizerJSON(
            model: [
                "type": "BPE", "vocab": vocabulary, "merges": ["3 4", "1 2", "12 3", "4 5"], "unk_token": NSNull(),
            ],
            preTokenizer: [
                "type": "Sequence",
                "pretokenizers": [
                    ["type": "Split", "pattern": ["Regex": Self.llama3], "behavior": "Isolated", "invert": false],
                    ["type": "ByteLevel", "add_prefix_space": false, "use_regex": false],
                ],
            ],
            decoder: ["type": "ByteLevel"])
        let tokenizer = try HFTokenizer(json: data)
        #expect(tokenizer.encode("12345").ids == [6, 7])
        #expect(try tokenizer.decode([6, 7]) == "12345")
    }

    @Test("an expression it does not implement is named in the error; a pattern of neither kind is invalid")
    func unsupported() throws {
        let pattern = #"\p{Han}+|[a-z]+"#
        #expect {
            try Self.split(pattern)
        } throws: { error in
            guard case .unsupportedComponent(let kind, let type) = error as? TokenizerError else { return false }
            return kind == "pre-tokenizer" && type.contains(pattern) && type.contains("Split")
        }
        #expect {
            try HFPreTokenizer(
                json: HFJSONObject(
                    ["type": "Split", "pattern": ["Glob": "*"], "behavior": "Isolated"], path: "tokenizer.pre_tokenizer"
                ))
        } throws: { error in
            guard case .invalidTokenizerJSON(let message) = error as? TokenizerError else { return false }
            return message.contains("pattern")
        }
    }
}
