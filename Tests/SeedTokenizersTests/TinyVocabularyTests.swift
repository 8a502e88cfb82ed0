import Testing

@testable import SeedTokenizers

/// Tests on small hand-built vocabularies; they need no model file.
@Suite struct TinyVocabularyTests {
    /// All 256 byte-level characters, then the given multi-character tokens, then two special tokens.
    static func makeTokenizer(
        extraTokens: [String] = ["ab", "abc", "Ġa", "Ġab", "aa"],
        merges: [String] = ["a b", "ab c", "Ġ a", "Ġa b", "a a"],
        preTokenizer: String = "gpt2", addBOS: Bool = false, addEOS: Bool = false
    ) throws -> BPETokenizer {
        let byteTokens = ByteLevel.byteToScalar.map { String($0) }
        let tokens = byteTokens + extraTokens + ["<|end|>", "<user>"]
        let types = [Int32](repeating: 1, count: tokens.count - 2) + [3, 4]
        return try BPETokenizer(
            tokens: tokens, tokenTypes: types, merges: merges, preTokenizer: preTokenizer,
            bosTokenID: tokens.count - 2, eosTokenID: tokens.count - 2, addBOS: addBOS, addEOS: addEOS)
    }

    private func id(_ tokenizer: BPETokenizer, _ text: String) throws -> Int {
        try #require(tokenizer.tokenID(for: text), "\(text) is in the vocabulary")
    }

    @Test func byteLevelTableIsGPT2s() {
        #expect(ByteLevel.byteToScalar[0x20] == "Ġ")
        #expect(ByteLevel.byteToScalar[0x0A] == "Ċ")
        #expect(ByteLevel.byteToScalar[0x00] == "Ā")
        #expect(ByteLevel.byteToScalar[0x41] == "A")
        #expect(ByteLevel.byteToScalar[0xAD] == "Ń")
        #expect(Set(ByteLevel.byteToScalar).count == 256)
        #expect(ByteLevel.encode(Array(" hi\n".utf8)) == "ĠhiĊ")
        #expect(ByteLevel.decode("ĠhiĊ") == Array(" hi\n".utf8))
        for byte in 0...255 {
            #expect(ByteLevel.byte(for: ByteLevel.byteToScalar[byte]) == UInt8(byte))
        }
        #expect(ByteLevel.byte(for: "€") == nil)
    }

    @Test func mergesApplyLowestRankFirst() throws {
        let tokenizer = try Self.makeTokenizer()
        #expect(tokenizer.encode("abc") == [try id(tokenizer, "abc")])
        // " ab": "a b" (rank 0) beats "Ġ a" (rank 2), and there is no "Ġ ab" rule.
        #expect(tokenizer.encode(" ab") == [try id(tokenizer, "Ġ"), try id(tokenizer, "ab")])
        // With "Ġ a" ranked first, " ab" becomes "Ġa" + "b" and then "Ġab".
        let other = try Self.makeTokenizer(merges: ["Ġ a", "a b", "ab c", "Ġa b"])
        #expect(other.encode(" ab") == [try id(other, "Ġab")])
    }

    @Test func equalRankPairsMergeLeftmostFirst() throws {
        let tokenizer = try Self.makeTokenizer()
        let aa = try id(tokenizer, "aa")
        let a = try id(tokenizer, "a")
        #expect(tokenizer.encode("aaa") == [aa, a])
        #expect(tokenizer.encode("aaaa") == [aa, aa])
        // The long-piece path (heap) must agree with the short-piece path (scan).
        let long = Array(String(repeating: "a", count: 101).utf8)
        #expect(tokenizer.mergeForTesting(long, useHeap: true) == [Int](repeating: aa, count: 50) + [a])
        #expect(tokenizer.mergeForTesting(long, useHeap: false) == [Int](repeating: aa, count: 50) + [a])
        #expect(tokenizer.encode(String(repeating: "a", count: 101)) == [Int](repeating: aa, count: 50) + [a])
    }

    @Test func mergeResultsOutsideTheVocabularyFallBackToCharacters() throws {
        // "xy" is not a token, but "x y" and "xy z" are rules: "xyz" still forms, and a lone "xy" falls back.
        let tokenizer = try Self.makeTokenizer(extraTokens: ["xyz"], merges: ["x y", "xy z"])
        #expect(tokenizer.encode("xyz") == [try id(tokenizer, "xyz")])
        #expect(tokenizer.encode("xy") == [try id(tokenizer, "x"), try id(tokenizer, "y")])
    }

    @Test func bytesWithoutATokenAreDroppedNotFatal() throws {
        // A vocabulary without the byte-level character for 0x01.
        let tokens = ByteLevel.byteToScalar.enumerated().filter { $0.offset != 1 }.map { String($0.element) }
        let tokenizer = try BPETokenizer(
            tokens: tokens, tokenTypes: nil, merges: [], preTokenizer: "gpt2",
            bosTokenID: nil, eosTokenID: nil, addBOS: false, addEOS: false)
        let ids = tokenizer.encode("a\u{1}b")
        #expect(try tokenizer.decode(ids) == Array("ab".utf8))
    }

    @Test func specialTokens() throws {
        let tokenizer = try Self.makeTokenizer()
        let end = try id(tokenizer, "<|end|>")
        let user = try id(tokenizer, "<user>")
        #expect(tokenizer.isControl(end) && !tokenizer.isControl(user))
        #expect(tokenizer.tokenType(for: user) == .userDefined)
        #expect(tokenizer.endOfGenerationIDs == [end])
        #expect(tokenizer.encode("ab<|end|>ab") == [try id(tokenizer, "ab"), end, try id(tokenizer, "ab")])
        // Control tokens are plain text without parseSpecial; user-defined tokens are always matched.
        let plain = tokenizer.encode("<|end|><user>", parseSpecial: false)
        #expect(!plain.contains(end) && plain.last == user)
        #expect(try tokenizer.decode(plain) == Array("<|end|><user>".utf8))
        // skipSpecial drops control tokens but keeps user-defined ones.
        #expect(try tokenizer.decodeString([end, user], skipSpecial: true) == "<user>")
        #expect(try tokenizer.decodeString([end, user]) == "<|end|><user>")
    }

    @Test func longerSpecialTokensWin() throws {
        let byteTokens = ByteLevel.byteToScalar.map { String($0) }
        let tokens = byteTokens + ["<s>", "<s><s>", "s><"]
        let types = [Int32](repeating: 1, count: byteTokens.count) + [3, 3, 3]
        let tokenizer = try BPETokenizer(
            tokens: tokens, tokenTypes: types, merges: [], preTokenizer: "gpt2",
            bosTokenID: nil, eosTokenID: nil, addBOS: false, addEOS: false)
        let single = 256
        let double = 257
        #expect(tokenizer.encode("<s><s><s>") == [double, single])
        #expect(tokenizer.encode("x<s>") == [Int(ByteLevel.byteToScalar.firstIndex(of: "x")!), single])
    }

    @Test func addSpecialAddsBOSAndEOS() throws {
        let tokenizer = try Self.makeTokenizer(addBOS: true, addEOS: true)
        let end = try id(tokenizer, "<|end|>")
        #expect(tokenizer.encode("ab") == [end, try id(tokenizer, "ab"), end])
        #expect(tokenizer.encode("ab", addSpecial: false) == [try id(tokenizer, "ab")])
        #expect(tokenizer.encode("") == [end, end])
        #expect(try Self.makeTokenizer().encode("") == [])
    }

    @Test func ignoreMergesEmitsWholeTokens() throws {
        // llama3 emits a piece that is a whole token directly, even when the merge rules could not form it.
        let llama = try Self.makeTokenizer(extraTokens: ["hello"], merges: [], preTokenizer: "llama3")
        let gpt2 = try Self.makeTokenizer(extraTokens: ["hello"], merges: [], preTokenizer: "gpt2")
        #expect(llama.encode("hello") == [try id(llama, "hello")])
        #expect(gpt2.encode("hello").count == 5)
    }

    @Test func decodeErrors() throws {
        let tokenizer = try Self.makeTokenizer()
        let size = tokenizer.vocabularySize
        #expect(throws: TokenizerError.invalidTokenID(size, vocabularySize: size)) { try tokenizer.decode([size]) }
        #expect(throws: TokenizerError.invalidTokenID(-5, vocabularySize: size)) { try tokenizer.decode([0, -5]) }
        #expect(TokenizerError.invalidTokenID(-5, vocabularySize: size).description.contains("-5"))
    }

    @Test func constructionErrors() throws {
        let tokens = ByteLevel.byteToScalar.map { String($0) } + ["ab"]
        func make(
            tokens: [String] = tokens, types: [Int32]? = nil, merges: [String] = ["a b"], pre: String = "gpt2",
            bos: Int? = nil, eos: Int? = nil, addBOS: Bool = false
        ) throws -> BPETokenizer {
            try BPETokenizer(
                tokens: tokens, tokenTypes: types, merges: merges, preTokenizer: pre,
                bosTokenID: bos, eosTokenID: eos, addBOS: addBOS, addEOS: false)
        }
        #expect(throws: Never.self) { try make() }
        #expect(throws: TokenizerError.malformedMerge(rank: 1, rule: "ab")) { try make(merges: ["a b", "ab"]) }
        #expect(throws: TokenizerError.malformedMerge(rank: 0, rule: "a ")) { try make(merges: ["a "]) }
        #expect(throws: TokenizerError.malformedMerge(rank: 0, rule: " a")) { try make(merges: [" a"]) }
        #expect(throws: TokenizerError.malformedMerge(rank: 0, rule: "")) { try make(merges: [""]) }
        #expect(TokenizerError.malformedMerge(rank: 3, rule: "ab").description.contains("merge rule 3"))
        #expect(throws: TokenizerError.unknownPreTokenizer(name: "bogus", supported: PreTokenizer.supportedNames)) {
            try make(pre: "bogus")
        }
        #expect(throws: TokenizerError.emptyVocabulary) { try make(tokens: [], merges: []) }
        #expect(throws: TokenizerError.tokenTypeCountMismatch(tokens: 257, tokenTypes: 1)) { try make(types: [1]) }
        var badTypes = [Int32](repeating: 1, count: 257)
        badTypes[7] = 9
        #expect(throws: TokenizerError.invalidTokenType(tokenID: 7, type: 9)) { try make(types: badTypes) }
        #expect(throws: TokenizerError.specialTokenOutOfRange(role: "BOS", tokenID: 257, vocabularySize: 257)) {
            try make(bos: 257)
        }
        #expect(throws: TokenizerError.missingSpecialToken(role: "BOS")) { try make(addBOS: true) }
    }

    @Test func duplicateMergeRulesKeepTheFirstRank() throws {
        let tokenizer = try Self.makeTokenizer(merges: ["Ġ a", "a b", "Ġa b", "a b"])
        #expect(tokenizer.encode(" ab") == [try id(tokenizer, "Ġab")])
    }

    @Test func encodeNeverFailsOnOddInput() throws {
        let tokenizer = try Self.makeTokenizer()
        let inputs = [
            "", "\0", "\u{FFFD}", "\u{10FFFF}", "\u{E000}", String(repeating: " ", count: 5000),
            String(repeating: "<|end|", count: 100), "\r\n\r\n", "🏳️‍🌈", String(repeating: "é", count: 3000),
        ]
        for input in inputs {
            let ids = tokenizer.encode(input)
            #expect(try tokenizer.decode(ids) == Array(input.utf8))
        }
    }
}

@Suite struct StreamingDecoderTests {
    @Test func multiByteCharactersSplitAcrossTokensAreHeldBack() throws {
        let tokenizer = try TinyVocabularyTests.makeTokenizer()
        // No merges apply to emoji here, so "😀" is four single-byte tokens.
        let ids = tokenizer.encode("a😀b")
        #expect(ids.count == 6)
        var decoder = StreamingDecoder(tokenizer: tokenizer)
        var chunks: [String] = []
        for id in ids { chunks.append(try decoder.append(id)) }
        #expect(chunks == ["a", "", "", "", "😀", "b"])
        #expect(decoder.flush() == "")
    }

    @Test func flushEmitsAnIncompleteTailAsReplacement() throws {
        let tokenizer = try TinyVocabularyTests.makeTokenizer()
        let ids = tokenizer.encode("😀")
        var decoder = StreamingDecoder(tokenizer: tokenizer)
        #expect(try decoder.append(contentsOf: ids.prefix(2)) == "")
        #expect(decoder.hasPendingBytes)
        #expect(decoder.flush() == "\u{FFFD}")
        #expect(!decoder.hasPendingBytes)
        #expect(try decoder.append(contentsOf: tokenizer.encode("ok")) == "ok")
    }

    @Test func bytesThatCanNeverBeValidAreEmittedAtOnce() throws {
        let tokenizer = try TinyVocabularyTests.makeTokenizer()
        let byteToken = { (byte: UInt8) in tokenizer.tokenID(for: String(ByteLevel.byteToScalar[Int(byte)]))! }
        var decoder = StreamingDecoder(tokenizer: tokenizer)
        #expect(try decoder.append(byteToken(0xFF)) == "\u{FFFD}")
        #expect(try decoder.append(byteToken(0x80)) == "\u{FFFD}", "a lone continuation byte")
        #expect(try decoder.append(byteToken(0xE0)) == "", "could still become valid")
        #expect(try decoder.append(byteToken(0x80)) == "\u{FFFD}\u{FFFD}", "E0 80 is never valid")
        #expect(!decoder.hasPendingBytes)
    }

    @Test func invalidIDThrowsAndKeepsState() throws {
        let tokenizer = try TinyVocabularyTests.makeTokenizer()
        let ids = tokenizer.encode("😀")
        var decoder = StreamingDecoder(tokenizer: tokenizer)
        _ = try decoder.append(ids[0])
        #expect(throws: TokenizerError.invalidTokenID(99_999, vocabularySize: tokenizer.vocabularySize)) {
            try decoder.append(99_999)
        }
        #expect(try decoder.append(contentsOf: ids.dropFirst()) == "😀")
    }

    @Test func skipSpecialOmitsControlTokens() throws {
        let tokenizer = try TinyVocabularyTests.makeTokenizer()
        var decoder = StreamingDecoder(tokenizer: tokenizer, skipSpecial: true)
        #expect(try decoder.append(contentsOf: tokenizer.encode("ab<|end|>")) == "ab")
    }
}
