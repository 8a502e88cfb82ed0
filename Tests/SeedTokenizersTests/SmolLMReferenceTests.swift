import Foundation
import Testing

@testable import SeedTokenizers

/// Checks against llama.cpp's tokenization of the SmolLM2-135M-Instruct vocabulary (`shared/reference/smollm2`).
@Suite struct SmolLMReferenceTests {
    @Test func vocabularyMetadata() throws {
        let tokenizer = try loadSmolLMTokenizer()
        #expect(tokenizer.vocabularySize == 49152)
        #expect(tokenizer.preTokenizer.name == "smollm")
        #expect(tokenizer.bosTokenID == 1)
        #expect(tokenizer.eosTokenID == 2)
        #expect(!tokenizer.addBOS && !tokenizer.addEOS)
        #expect(tokenizer.tokenID(for: "<|im_start|>") == 1)
        #expect(tokenizer.tokenID(for: "Ġthe") != nil)
        #expect(tokenizer.tokenID(for: " the") == nil, "normal tokens are spelled in byte-level form")
        #expect(tokenizer.tokenString(for: 2) == "<|im_end|>")
        #expect(tokenizer.tokenString(for: 49152) == nil)
        #expect(tokenizer.isControl(0) && tokenizer.isControl(16) && !tokenizer.isControl(17))
        #expect(!tokenizer.isControl(-1) && !tokenizer.isControl(1_000_000))
        // <|endoftext|> (0) and <|im_end|> (2, also EOS) are the end-of-generation tokens of this vocabulary.
        #expect(tokenizer.endOfGenerationIDs == [0, 2])
        #expect(tokenizer.isEndOfGeneration(2) && !tokenizer.isEndOfGeneration(1))
    }

    @Test func everyReferenceCaseEncodesToLlamaCppIDs() throws {
        let tokenizer = try loadSmolLMTokenizer()
        let cases = try loadTokenizerReferenceCases()
        #expect(cases.count == 43)
        for testCase in cases {
            let ids = tokenizer.encode(testCase.text)
            #expect(ids == testCase.ids, "\(testCase.category): \(String(reflecting: testCase.text))")
        }
    }

    @Test func everyReferenceCaseRoundTripsByteExact() throws {
        let tokenizer = try loadSmolLMTokenizer()
        for testCase in try loadTokenizerReferenceCases() {
            let bytes = try tokenizer.decode(tokenizer.encode(testCase.text))
            // Compare bytes: String equality would accept canonically equivalent text (the NFD case).
            #expect(bytes == Array(testCase.text.utf8), "\(testCase.category)")
            #expect(try tokenizer.decode(testCase.ids) == Array(testCase.text.utf8), "\(testCase.category)")
            #expect(try tokenizer.decodeString(testCase.ids).utf8.elementsEqual(testCase.text.utf8))
        }
    }

    @Test func renderedChatPromptsEncodeToLlamaCppIDs() throws {
        let tokenizer = try loadSmolLMTokenizer()
        let cases = try loadRenderedChatCases()
        #expect(!cases.isEmpty)
        for testCase in cases {
            #expect(tokenizer.encode(testCase.rendered) == testCase.ids, "\(testCase.name)")
            #expect(try tokenizer.decode(testCase.ids) == Array(testCase.rendered.utf8), "\(testCase.name)")
        }
    }

    @Test func nfcAndNFDTextGiveDifferentIDs() throws {
        let tokenizer = try loadSmolLMTokenizer()
        let nfc = "caf\u{E9}"
        let nfd = "cafe\u{301}"
        #expect(nfc == nfd, "Swift considers them equal")
        #expect(tokenizer.encode(nfc) != tokenizer.encode(nfd), "the tokenizer must not normalize")
        #expect(try tokenizer.decode(tokenizer.encode(nfd)) == Array(nfd.utf8))
    }

    @Test func numberCharactersAreSplitOffIndividually() throws {
        let tokenizer = try loadSmolLMTokenizer()
        // README caveat 5: " ½" is [216 " ", 16738 "½"], not one piece.
        #expect(tokenizer.encode(" ½") == [216, 16738])
        #expect(tokenizer.encode("42") == [36, 34])
    }

    @Test func parseSpecialFalseEncodesControlTokensAsText() throws {
        let tokenizer = try loadSmolLMTokenizer()
        let text = "<|im_start|>user\nHi<|im_end|>"
        let parsed = tokenizer.encode(text)
        let plain = tokenizer.encode(text, parseSpecial: false)
        #expect(parsed.first == 1 && parsed.last == 2)
        #expect(plain != parsed)
        #expect(!plain.contains(1) && !plain.contains(2))
        #expect(plain.allSatisfy { !tokenizer.isControl($0) })
        #expect(try tokenizer.decode(plain) == Array(text.utf8))
    }

    @Test func specialTokensAreMatchedLiterally() throws {
        let tokenizer = try loadSmolLMTokenizer()
        #expect(tokenizer.encode("<|im_end|><|im_end|>") == [2, 2])
        #expect(tokenizer.encode("a<|endoftext|>b") == [tokenizer.encode("a")[0], 0, tokenizer.encode("b")[0]])
        // A near miss is ordinary text.
        #expect(!tokenizer.encode("<|im_end|").contains(2))
    }

    @Test func skipSpecialDropsControlTokens() throws {
        let tokenizer = try loadSmolLMTokenizer()
        let ids = tokenizer.encode("<|im_start|>assistant\nHello!<|im_end|>")
        #expect(try tokenizer.decodeString(ids, skipSpecial: true) == "assistant\nHello!")
        #expect(try tokenizer.decodeString(ids) == "<|im_start|>assistant\nHello!<|im_end|>")
    }

    @Test func decodeRejectsUnknownIDs() throws {
        let tokenizer = try loadSmolLMTokenizer()
        #expect(throws: TokenizerError.invalidTokenID(49152, vocabularySize: 49152)) {
            try tokenizer.decode([19556, 49152])
        }
        #expect(throws: TokenizerError.invalidTokenID(-1, vocabularySize: 49152)) {
            try tokenizer.decodeString([-1])
        }
    }

    @Test func streamingDecoderReassemblesEveryCaseWithoutBrokenCharacters() throws {
        let tokenizer = try loadSmolLMTokenizer()
        for testCase in try loadTokenizerReferenceCases() {
            var decoder = StreamingDecoder(tokenizer: tokenizer)
            var emitted: [UInt8] = []
            let expected = Array(testCase.text.utf8)
            for id in testCase.ids {
                let chunk = try decoder.append(id)
                // Every chunk is whole characters of the original text: no replacement characters, and the text so
                // far is a prefix of the expected bytes.
                #expect(!chunk.unicodeScalars.contains("\u{FFFD}"), "\(testCase.category)")
                emitted.append(contentsOf: chunk.utf8)
                #expect(expected.starts(with: emitted), "\(testCase.category)")
            }
            #expect(!decoder.hasPendingBytes)
            #expect(decoder.flush().isEmpty)
            #expect(emitted == expected, "\(testCase.category)")
        }
    }

    @Test func streamingDecoderHoldsBackEmojiSplitAcrossTokens() throws {
        let tokenizer = try loadSmolLMTokenizer()
        let ids = tokenizer.encode("😀🚀🎉")
        #expect(ids.count > 3, "these emoji are split over several tokens")
        var decoder = StreamingDecoder(tokenizer: tokenizer)
        var chunks: [String] = []
        for id in ids { chunks.append(try decoder.append(id)) }
        #expect(chunks.contains(""), "some tokens end inside a character and must produce nothing yet")
        #expect(chunks.joined() == "😀🚀🎉")
        #expect(chunks.filter { !$0.isEmpty }.allSatisfy { $0.unicodeScalars.allSatisfy { $0.value >= 0x1F000 } })
    }

    @Test func longPiecesMergeIdenticallyWithHeapAndScan() throws {
        let tokenizer = try loadSmolLMTokenizer()
        var generator = TokenizerTestRandom(seed: 7)
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzéü日本".utf8)
        for length in [2, 5, 20, 47, 48, 49, 64, 300, 2000] {
            let piece = (0..<length).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] }
            #expect(tokenizer.mergeForTesting(piece, useHeap: true) == tokenizer.mergeForTesting(piece, useHeap: false))
        }
        for repeated in ["a", "ab", " ", "=", "\n"] {
            let piece = Array(String(repeating: repeated, count: 777).utf8)
            let heap = tokenizer.mergeForTesting(piece, useHeap: true)
            #expect(heap == tokenizer.mergeForTesting(piece, useHeap: false))
            #expect(try tokenizer.decode(heap) == piece)
        }
    }

    @Test func arbitraryUnicodeRoundTrips() throws {
        let tokenizer = try loadSmolLMTokenizer()
        var generator = TokenizerTestRandom(seed: 42)
        // Scalars from many blocks, including controls, combining marks, private use and supplementary planes.
        let ranges: [ClosedRange<UInt32>] = [
            0x20...0x7E, 0x09...0x0D, 0x80...0x2FF, 0x300...0x36F, 0x370...0x52F, 0x590...0x6FF, 0x900...0x97F,
            0x2000...0x206F, 0x2150...0x218F, 0x3000...0x30FF, 0x4E00...0x4FFF, 0xAC00...0xAD00, 0xE000...0xE0FF,
            0xFE00...0xFE0F, 0x1F300...0x1F6FF, 0x10000...0x1007F, 0xE0000...0xE007F,
        ]
        for _ in 0..<200 {
            var scalars = String.UnicodeScalarView()
            for _ in 0..<Int(generator.next() % 40) {
                let range = ranges[Int(generator.next() % UInt64(ranges.count))]
                let value = range.lowerBound + UInt32(generator.next() % UInt64(range.count))
                if let scalar = Unicode.Scalar(value) { scalars.append(scalar) }
            }
            let text = String(scalars)
            let ids = tokenizer.encode(text, parseSpecial: false)
            #expect(ids.allSatisfy { (0..<tokenizer.vocabularySize).contains($0) })
            // Bytes 0x04 0x06 0x13 0x14 0x16 0x1D 0xF1 0xF2 ... have no token in this vocabulary and are dropped, as
            // in llama.cpp; every other text must round-trip.
            let missing: Set<UInt8> = [0x04, 0x06, 0x13, 0x14, 0x16, 0x1D, 0xC0, 0xC1, 0xF1, 0xF2]
            if !text.utf8.contains(where: { missing.contains($0) }) {
                #expect(try tokenizer.decode(ids) == Array(text.utf8), "\(String(reflecting: text))")
            }
        }
    }

    @Test func concurrentEncodingMatchesSerialEncoding() async throws {
        let tokenizer = try loadSmolLMTokenizer()
        let cases = try loadTokenizerReferenceCases()
        let expected = cases.map { tokenizer.encode($0.text) }
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    for _ in 0..<5 {
                        for (index, testCase) in cases.enumerated()
                        where tokenizer.encode(testCase.text) != expected[index] {
                            return false
                        }
                    }
                    return true
                }
            }
            for try await ok in group { #expect(ok) }
        }
    }

    /// Prints construction and encoding times (no timed assertions; run with `-c release` for meaningful numbers).
    @Test func timingReport() throws {
        let vocabulary = try loadSmolLMVocabulary()
        let clock = ContinuousClock()
        var builds: [Duration] = []
        for _ in 0..<3 {
            let start = clock.now
            _ = try vocabulary.makeTokenizer()
            builds.append(clock.now - start)
        }
        let tokenizer = try vocabulary.makeTokenizer()
        let long = try #require(try loadTokenizerReferenceCases().first { $0.category == "long-2000-chars" })
        let coldStart = clock.now
        let coldIDs = tokenizer.encode(long.text)
        let cold = clock.now - coldStart
        let iterations = 200
        let warmStart = clock.now
        for _ in 0..<iterations { #expect(tokenizer.encode(long.text).count == coldIDs.count) }
        let warm = (clock.now - warmStart) / iterations
        let decodeStart = clock.now
        for _ in 0..<iterations { _ = try tokenizer.decode(coldIDs) }
        let decode = (clock.now - decodeStart) / iterations
        print(
            """
            [timing] build from 49152 tokens + 48900 merges: \(builds.map(\.description).joined(separator: ", "))
            [timing] encode 2000 chars (\(coldIDs.count) ids): first \(cold), cached \(warm) per call
            [timing] decode \(coldIDs.count) ids: \(decode) per call
            """)
    }
}

/// Small deterministic random number generator for reproducible test inputs.
struct TokenizerTestRandom {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
