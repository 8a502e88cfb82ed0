import Foundation
import SeedTestSupport
import Testing

@testable import SeedTrain

@Suite struct DataPreparationTests {
    @Test func jsonlRoundTripsThroughShardsWithEndOfTextAfterEachDocument() throws {
        let directory = try makeDataTestDirectory()
        let documents = ["hello", "wörld ✓", "third document"]
        let (output, manifest) = try prepareJSONL(documents, in: directory, shardTokens: 7)
        let expected = documents.flatMap { (text: String) -> [Int32] in text.utf8.map { Int32($0) } + [256] }
        #expect(manifest.dtype == .uint16)
        #expect(manifest.train.tokens == expected.count)
        #expect(manifest.train.documents == 3)
        #expect(manifest.validation.tokens == 0 && manifest.validation.shards.isEmpty)
        #expect(manifest.totalTokens == expected.count)
        #expect(manifest.train.maxTokenId == 256)
        // 7 tokens per shard: all full but the last.
        #expect(manifest.train.shards.map(\.tokens) == [7, 7, 7, 7, expected.count - 28])
        #expect(manifest.train.shards.map(\.file) == (0..<5).map { "train-0000\($0).bin" })
        let shards = try TokenShardSet(directory: output, split: .train)
        #expect(allTokens(shards) == expected)
        // The shard bytes are little-endian uint16 and hash to the manifest's sha256.
        let first = try [UInt8](Data(contentsOf: URL(fileURLWithPath: output + "/train-00000.bin")))
        #expect(first == Array("hello".utf8).flatMap { [$0, 0] } + [0, 1, UInt8(ascii: "w"), 0])
        #expect(DataFileSystem.sha256Hex(first) == manifest.train.shards[0].sha256)
        #expect(manifest.sources.map(\.format) == ["jsonl"])
        #expect(manifest.sources[0].documents == 3)
    }

    @Test func largeVocabulariesUseUInt32Shards() throws {
        let directory = try makeDataTestDirectory()
        let input = try writeDataTestFile(directory, "a.txt", "ab")
        var options = DatasetPreparationOptions(inputs: [input], output: directory + "/out")
        options.validationFraction = 0
        let tokenizer = byteTokenizer(offset: 70000)
        let manifest = try DatasetPreparer.prepare(tokenizer: tokenizer, options: options).manifest
        #expect(manifest.dtype == .uint32)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: options.output + "/train-00000.bin")))
        // 70097 = 0x000111D1 ('a' + 70000), then 'b', then end of text 70256 = 0x00011270.
        #expect(bytes == [0xD1, 0x11, 0x01, 0x00, 0xD2, 0x11, 0x01, 0x00, 0x70, 0x12, 0x01, 0x00])
        let shards = try TokenShardSet(directory: options.output, split: .train)
        #expect(allTokens(shards) == [70097, 70098, 70256])
    }

    @Test func fortuneFilesSplitOnPercentLines() throws {
        let text = "First fortune.\n%\nSecond\n  fortune.\n%\n%\n   \n%\nLast one, no final separator\n"
        let directory = try makeDataTestDirectory()
        let path = try writeDataTestFile(directory, "fortunes", text)
        let file = try DocumentFile(path: path, format: .auto, jsonlField: "text")
        #expect(file.format == .fortunes)
        #expect(file.documents == ["First fortune.\n", "Second\n  fortune.\n", "Last one, no final separator\n"])
        // CRLF separators work too; a "%" inside a line does not split.
        let crlf = try writeDataTestFile(directory, "crlf", "a 100% sure\r\n%\r\nb\r\n")
        #expect(
            try DocumentFile(path: crlf, format: .auto, jsonlField: "text").documents == ["a 100% sure\r\n", "b\r\n"])
        // --format text keeps the file whole.
        #expect(try DocumentFile(path: path, format: .text, jsonlField: "text").documents == [text])
    }

    @Test func plainTextIsOneDocumentAndByteOrderMarkIsDropped() throws {
        let directory = try makeDataTestDirectory()
        let path = try writeDataTestFile(
            directory, "book.txt", bytes: [0xEF, 0xBB, 0xBF] + Array("Chapter 1\n\nText.\n".utf8))
        let file = try DocumentFile(path: path, format: .auto, jsonlField: "text")
        #expect(file.format == .text)
        #expect(file.documents == ["Chapter 1\n\nText.\n"])
    }

    @Test func realFortunesInstallAndPrepare() throws {
        // Debian's `fortunes` package (scripts install it): the demo corpus.
        let fortunes = "/usr/share/games/fortunes"
        guard FileManager.default.fileExists(atPath: fortunes + "/fortunes") else {
            Issue.record("\(fortunes) is missing: apt-get install -y fortunes")
            return
        }
        let files = try DocumentFile.expandInputs([fortunes])
        // Directory expansion skips the .dat indexes and the .u8 symlinks.
        #expect(!files.contains { $0.hasSuffix(".dat") || $0.hasSuffix(".u8") })
        #expect(files.contains(fortunes + "/fortunes"))
        // Named one by one, as a shell glob does, the index and the symlinked alias are still skipped.
        let globbed = try DocumentFile.expandInputs([fortunes + "/art", fortunes + "/art.dat", fortunes + "/art.u8"])
        #expect(globbed == [fortunes + "/art"])
        let file = try DocumentFile(path: fortunes + "/fortunes", format: .auto, jsonlField: "text")
        #expect(file.format == .fortunes)
        // Every fortune is one document: the file ends with "%", so there are as many documents as separators.
        let text = try String(contentsOfFile: fortunes + "/fortunes", encoding: .utf8)
        let separators = text.split(separator: "\n", omittingEmptySubsequences: false).filter { $0 == "%" }.count
        #expect(text.hasSuffix("\n%\n"))
        #expect(file.documents.count == separators)
        #expect(file.documents.first?.hasPrefix("A day for firm decisions!!!!!") == true)
        #expect(file.documents.allSatisfy { !$0.contains("\n%\n") })
    }

    @Test func preparingTwiceIsByteIdenticalAndANoOp() throws {
        let directory = try makeDataTestDirectory()
        let documents = (0..<200).map { "document number \($0) " + String(repeating: "x", count: $0 % 17) }
        let (output, manifest) = try prepareJSONL(documents, in: directory, validationFraction: 0.1, shardTokens: 500)
        let before = try snapshot(output)
        // Same inputs and options: nothing is rewritten.
        var options = DatasetPreparationOptions(inputs: [directory + "/corpus.jsonl"], output: output)
        options.validationFraction = 0.1
        options.shardTokens = 500
        let again = try DatasetPreparer.prepare(tokenizer: byteTokenizer(), options: options)
        #expect(again.unchanged)
        #expect(again.manifest == manifest)
        #expect(try snapshot(output) == before)
        // A fresh directory gets the very same bytes.
        options.output = directory + "/second"
        _ = try DatasetPreparer.prepare(tokenizer: byteTokenizer(), options: options)
        #expect(try snapshot(options.output) == before)
    }

    private func snapshot(_ directory: String) throws -> [String: Data] {
        var files: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: directory) {
            files[name] = try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name))
        }
        return files
    }

    @Test func validationSplitIsBySeededDocumentHash() throws {
        let directory = try makeDataTestDirectory()
        let documents = (0..<1000).map { "doc \($0)" }
        let (output, manifest) = try prepareJSONL(documents, in: directory, validationFraction: 0.2)
        // The split follows the documented rule exactly.
        let threshold = UInt64(0.2 * 0x1p64)
        let expectedValidation = documents.filter { DataHashing.document($0, seed: 0) < threshold }
        #expect(manifest.validation.documents == expectedValidation.count)
        #expect(manifest.train.documents == 1000 - expectedValidation.count)
        #expect((150...250).contains(expectedValidation.count))
        let validation = try TokenShardSet(directory: output, split: .validation)
        let expectedTokens = expectedValidation.flatMap { (text: String) -> [Int32] in
            text.utf8.map { Int32($0) } + [256]
        }
        #expect(allTokens(validation) == expectedTokens)
        // Another seed picks other documents.
        let other = documents.filter { DataHashing.document($0, seed: 1) < threshold }
        #expect(other != expectedValidation)
    }

    @Test func eachSplitGetsADocumentWhenTheFractionIsPositive() {
        // Hashes all above the threshold: the smallest moves to validation.
        #expect(DatasetPreparer.splitDecisions([.max, 5 << 60, .max - 1], fraction: 0.01) == [false, true, false])
        // All below: the largest stays in train.
        #expect(DatasetPreparer.splitDecisions([1, 2, 3], fraction: 0.5) == [true, true, false])
        // A single document stays in train; a zero fraction puts nothing in validation.
        #expect(DatasetPreparer.splitDecisions([1], fraction: 0.5) == [true])
        #expect(DatasetPreparer.splitDecisions([1, 2], fraction: 0) == [false, false])
    }

    @Test func utf8ValidatorMatchesTheStandardLibrary() {
        let cases: [[UInt8]] = [
            [0x41, 0xC3, 0xA9], [0xC0, 0x80], [0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80],
            [0xF0, 0x9F, 0x98, 0x80], [0xE2, 0x82], [0xFF], [0x80], [0xEF, 0xBF, 0xBF], [0xF5, 0x80, 0x80, 0x80],
        ]
        for bytes in cases {
            let valid = String(validating: bytes, as: UTF8.self) != nil
            #expect((DocumentFile.firstInvalidUTF8Offset(bytes) == nil) == valid, "\(bytes)")
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0...8, using: &generator)).map { _ in
                UInt8.random(in: 0...255, using: &generator)
            }
            let valid = String(validating: bytes, as: UTF8.self) != nil
            #expect((DocumentFile.firstInvalidUTF8Offset(bytes) == nil) == valid, "\(bytes)")
        }
    }
}

@Suite struct DataPreparationErrorTests {
    func prepare(_ inputs: [String], output: String, configure: (inout DatasetPreparationOptions) -> Void = { _ in })
        throws(DataError)
    {
        var options = DatasetPreparationOptions(inputs: inputs, output: output)
        options.threads = 1
        configure(&options)
        _ = try DatasetPreparer.prepare(tokenizer: byteTokenizer(), options: options)
    }

    @Test func missingAndEmptyInputs() throws {
        let directory = try makeDataTestDirectory()
        #expect(throws: DataError.missingInput(path: directory + "/nope.txt")) {
            try prepare([directory + "/nope.txt"], output: directory + "/out")
        }
        let empty = try writeDataTestFile(directory, "empty.txt", "")
        #expect(throws: DataError.emptyInput(path: empty)) { try prepare([empty], output: directory + "/out") }
        let blank = try writeDataTestFile(directory, "blank.jsonl", "\n  \n{\"text\": \"\"}\n")
        #expect(throws: DataError.emptyInput(path: blank)) { try prepare([blank], output: directory + "/out") }
        let onlySeparators = try writeDataTestFile(directory, "seps", "%\n%\n")
        #expect(throws: DataError.emptyInput(path: onlySeparators)) {
            try prepare([onlySeparators], output: directory + "/out")
        }
        let emptyDirectory = directory + "/nothing"
        try FileManager.default.createDirectory(atPath: emptyDirectory, withIntermediateDirectories: true)
        #expect(throws: DataError.noInputs(reason: "the given directories hold no regular files")) {
            try prepare([emptyDirectory], output: directory + "/out")
        }
        #expect(throws: DataError.noInputs(reason: "give at least one --input file or directory")) {
            try prepare([], output: directory + "/out")
        }
        // Nothing was left behind.
        #expect(!FileManager.default.fileExists(atPath: directory + "/out"))
    }

    @Test func unreadableInput() throws {
        guard getuid() != 0 else {
            // root reads any file regardless of mode; a FIFO stands in for an unreadable input.
            let directory = try makeDataTestDirectory()
            let fifo = directory + "/pipe"
            #expect(mkfifo(fifo, 0o600) == 0)
            #expect(throws: DataError.unreadableInput(path: fifo, reason: "not a regular file or directory")) {
                try prepare([fifo], output: directory + "/out")
            }
            return
        }
        let directory = try makeDataTestDirectory()
        let path = try writeDataTestFile(directory, "secret.txt", "text")
        chmod(path, 0)
        #expect(throws: DataError.self) { try prepare([path], output: directory + "/out") }
    }

    @Test func invalidUTF8IsLocated() throws {
        let directory = try makeDataTestDirectory()
        let path = try writeDataTestFile(
            directory, "latin1.txt", bytes: Array("line one\nline two caf".utf8) + [0xE9, 0x0A])
        #expect(throws: DataError.invalidUTF8(path: path, line: 2, column: 13)) {
            try prepare([path], output: directory + "/out")
        }
        let description = DataError.invalidUTF8(path: path, line: 2, column: 13).description
        #expect(description == "\(path):2:13: invalid UTF-8 (inputs must be UTF-8 text)")
    }

    @Test func badJSONLinesNameFileAndLine() throws {
        let directory = try makeDataTestDirectory()
        let cases: [(String, String)] = [
            ("{\"text\": \"ok\"}\n{\"text\": \"unterminated}\n", "not valid JSON"),
            ("{\"text\": \"ok\"}\n[1, 2]\n", "expected a JSON object"),
            (
                "{\"text\": \"ok\"}\n{\"body\": \"x\", \"id\": 3}\n",
                "no field 'text' (the object has: body, id; "
                    + "choose the field with --jsonl-field)"
            ),
            ("{\"text\": \"ok\"}\n{\"text\": 42}\n", "field 'text' is not a string"),
        ]
        for (index, (contents, reason)) in cases.enumerated() {
            let path = try writeDataTestFile(directory, "bad\(index).jsonl", contents)
            #expect(throws: DataError.badJSONLine(path: path, line: 2, reason: reason)) {
                try prepare([path], output: directory + "/out")
            }
        }
        // --jsonl-field picks another field.
        let path = try writeDataTestFile(directory, "body.jsonl", "{\"body\": \"x\"}\n")
        try prepare([path], output: directory + "/body") { $0.jsonlField = "body" }
    }

    @Test func outputHoldingSomethingElseIsRefused() throws {
        let directory = try makeDataTestDirectory()
        let input = try writeDataTestFile(directory, "a.txt", "some text")
        let other = try writeDataTestFile(directory, "b.txt", "other text")
        try prepare([input], output: directory + "/out")
        #expect(
            throws: DataError.outputConflict(
                path: directory + "/out",
                reason: "already holds a different dataset (other inputs); remove it or choose another directory")
        ) { try prepare([other], output: directory + "/out") }
        #expect(throws: DataError.self) { try prepare([input], output: directory + "/out") { $0.shardTokens = 3 } }
        // A non-empty directory without a manifest, and a file, are refused too.
        let stuff = directory + "/stuff"
        try FileManager.default.createDirectory(atPath: stuff, withIntermediateDirectories: true)
        try writeDataTestFile(stuff, "notes.txt", "mine")
        #expect(
            throws: DataError.outputConflict(
                path: stuff, reason: "is not empty and holds no dataset manifest; choose an empty or new directory")
        ) { try prepare([input], output: stuff) }
        #expect(throws: DataError.outputConflict(path: input, reason: "exists and is not a directory")) {
            try prepare([other], output: input)
        }
        // An empty directory is used.
        let empty = directory + "/empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        try prepare([input], output: empty)
        #expect(FileManager.default.fileExists(atPath: empty + "/manifest.json"))
        // No temporary directories remain beside the outputs.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasPrefix(".") }.isEmpty)
    }

    @Test func optionsAreChecked() throws {
        let directory = try makeDataTestDirectory()
        let input = try writeDataTestFile(directory, "a.txt", "text")
        #expect(
            throws: DataError.invalidOption(
                option: "--validation-fraction", reason: "must be at least 0 and below 1, got 1.0")
        ) { try prepare([input], output: directory + "/out") { $0.validationFraction = 1 } }
        #expect(throws: DataError.invalidOption(option: "--shard-tokens", reason: "must be at least 1, got 0")) {
            try prepare([input], output: directory + "/out") { $0.shardTokens = 0 }
        }
        #expect(throws: DataError.invalidOption(option: "--jsonl-field", reason: "must not be empty")) {
            try prepare([input], output: directory + "/out") { $0.jsonlField = "" }
        }
    }

    @Test func tokenizerLoadingErrors() throws {
        let directory = try makeDataTestDirectory()
        #expect(throws: DataError.self) { try DatasetTokenizer.load(path: directory + "/missing.gguf") }
        #expect(throws: DataError.tokenizer(reason: "directory \(directory) holds no tokenizer.json")) {
            try DatasetTokenizer.load(path: directory)
        }
        let junk = try writeDataTestFile(directory, "junk.gguf", "not a gguf file at all")
        do {
            _ = try DatasetTokenizer.load(path: junk)
            Issue.record("a junk file loaded as a tokenizer")
        } catch {
            #expect(error.description.contains("is neither a GGUF model nor a tokenizer.json"))
        }
    }
}

@Suite struct DataRealTokenizerTests {
    @Test func smolLM2TokenizerIdentityAndEncoding() throws {
        let tokenizer = try DatasetTokenizer.load(path: try TestPaths.smolLM2())
        #expect(tokenizer.vocabularySize == 49152)
        #expect(tokenizer.identity.kind == "gguf")
        #expect(tokenizer.identity.endOfText == "<|endoftext|>")
        #expect(tokenizer.endOfTextID == 0)
        // Same ids as `seed tokenize` (llama.cpp's): "Hello, world!" → [19556, 28, 905, 17].
        #expect(tokenizer.encode("Hello, world!") == [19556, 28, 905, 17])
        // Special-token text inside a document stays text.
        #expect(!tokenizer.encode("a <|endoftext|> b").contains(0))
        #expect(tokenizer.identity.vocabularySha256.count == 64)
        // The MiniLM tokenizer.json (WordPiece) works too, ending documents with [SEP].
        let miniLM = TestPaths.modelDirectory + "/all-MiniLM-L6-v2"
        let wordPiece = try DatasetTokenizer.load(path: miniLM)
        #expect(wordPiece.identity.kind == "tokenizer.json")
        #expect(wordPiece.identity.endOfText == "[SEP]")
        #expect(wordPiece.vocabularySize == 30522)
        // No [CLS]/[SEP] added and no truncation at the model's 128/256 tokens.
        let long = String(repeating: "hello ", count: 600)
        #expect(wordPiece.encode(long).count == 600)
    }
}
