import Foundation
import SeedTestSupport
import Testing

/// A fresh directory for one CLI test.
private func cliDirectory(_ label: String) throws -> String {
    let path = FileManager.default.temporaryDirectory
        .appendingPathComponent("seed-cli-data-\(getpid())-\(label)-\(UInt32.random(in: 0...UInt32.max))").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

private func write(_ directory: String, _ name: String, _ contents: String) throws -> String {
    let path = directory + "/" + name
    try Data(contents.utf8).write(to: URL(fileURLWithPath: path))
    return path
}

/// The ids in a little-endian uint16 shard.
private func readShard(_ path: String) throws -> [Int] {
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    return stride(from: 0, to: data.count, by: 2).map { Int(data[$0]) | Int(data[$0 + 1]) << 8 }
}

@Suite struct DataPrepareCLITests {
    @Test func preparesASmallCorpusWithTheSmolLM2Tokenizer() throws {
        let model = try TestPaths.smolLM2()
        let directory = try cliDirectory("corpus")
        let fortunes = try write(
            directory, "fortunes", "Hello, world!\n%\nThe capital of France is Paris.\n%\nA third fortune.\n")
        let jsonl = try write(directory, "docs.jsonl", "{\"text\": \"Hello, world!\", \"id\": 1}\n")
        let output = directory + "/dataset"
        let r = try SeedProcess.run([
            "data", "prepare", "--tokenizer", model, "--input", fortunes, jsonl, "--output", output,
            "--validation-fraction", "0", "--shard-tokens", "16",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("\(output): "))
        #expect(r.stdout.contains("train 4 documents"))
        #expect(r.stderr.contains("tokenizer: "))
        #expect(r.stderr.contains("<|endoftext|> = 0"))

        let manifestData = try Data(contentsOf: URL(fileURLWithPath: output + "/manifest.json"))
        let manifest = try #require(try JSONSerialization.jsonObject(with: manifestData) as? [String: Any])
        #expect(manifest["format"] as? String == "seed-token-shards")
        #expect(manifest["version"] as? Int == 1)
        #expect(manifest["dtype"] as? String == "uint16")
        let tokenizer = try #require(manifest["tokenizer"] as? [String: Any])
        #expect(tokenizer["vocab_size"] as? Int == 49152)
        #expect(tokenizer["end_of_text_id"] as? Int == 0)
        #expect((tokenizer["vocabulary_sha256"] as? String)?.count == 64)
        let train = try #require(manifest["train"] as? [String: Any])
        let shards = try #require(train["shards"] as? [[String: Any]])
        // The shards, concatenated, are each document's llama.cpp ids followed by <|endoftext|> (id 0).
        let ids = try shards.flatMap { try readShard(output + "/" + ($0["file"] as! String)) }
        let hello = [19556, 28, 905, 17]
        let expectedPrefix = [19556, 28, 905, 17, 198, 0]  // "Hello, world!\n" <|endoftext|>
        #expect(Array(ids.prefix(6)) == expectedPrefix)
        #expect(Array(ids.suffix(5)) == hello + [0])
        #expect(ids.filter { $0 == 0 }.count == 4)
        #expect(train["tokens"] as? Int == ids.count)
        #expect(shards.dropLast().allSatisfy { $0["tokens"] as? Int == 16 })
        // The recorded sha256 is the shard's.
        for shard in shards {
            let file = output + "/" + (shard["file"] as! String)
            let sum = try shell("/usr/bin/sha256sum", [file]).split(separator: " ").first.map(String.init)
            #expect(sum == shard["sha256"] as? String)
        }
        // Running it again is a no-op; the known name `smollm2` resolves to the same tokenizer.
        let again = try SeedProcess.run([
            "data", "prepare", "--tokenizer", "smollm2", "--input", fortunes, jsonl, "--output", output,
            "--validation-fraction", "0", "--shard-tokens", "16",
        ])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.contains("(unchanged)"))
    }

    @Test func preparesTheDebianFortunes() throws {
        let fortunes = "/usr/share/games/fortunes"
        guard FileManager.default.fileExists(atPath: fortunes + "/literature") else {
            Issue.record("\(fortunes) is missing: apt-get install -y fortunes (scripts/install-deps.sh does)")
            return
        }
        let directory = try cliDirectory("fortunes")
        let output = directory + "/fortunes"
        let r = try SeedProcess.run([
            "data", "prepare", "--tokenizer", try TestPaths.smolLM2(), "--input", fortunes + "/literature",
            fortunes + "/science", "--output", output, "--validation-fraction", "0.05",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("(fortunes)"))
        let manifest = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output + "/manifest.json")))
                as? [String: Any])
        let train = try #require(manifest["train"] as? [String: Any])
        let validation = try #require(manifest["validation"] as? [String: Any])
        let documents = (train["documents"] as! Int) + (validation["documents"] as! Int)
        let sources = try #require(manifest["sources"] as? [[String: Any]])
        #expect(documents == sources.reduce(0) { $0 + ($1["documents"] as! Int) })
        #expect(documents > 300)
        #expect((validation["documents"] as! Int) > 0)
    }

    func expectFailure(_ arguments: [String], mentions: String) throws {
        let r = try SeedProcess.run(arguments)
        #expect(r.status != 0, "expected failure for \(arguments)")
        #expect(r.stderr.contains(mentions), "stderr was: \(r.stderr)")
        #expect(!r.stderr.contains("Fatal error") && !r.stderr.contains("crashed"), "crashed: \(r.stderr)")
        #expect(r.stdout.isEmpty, "stdout should stay clean: \(r.stdout)")
    }

    @Test func badInputs() throws {
        let model = try TestPaths.smolLM2()
        let directory = try cliDirectory("bad")
        let good = try write(directory, "good.txt", "some text")
        let base = ["data", "prepare", "--tokenizer", model]
        try expectFailure(
            base + ["--input", directory + "/missing.txt", "--output", directory + "/o"],
            mentions: "input \(directory)/missing.txt does not exist")
        let empty = try write(directory, "empty.txt", "")
        try expectFailure(base + ["--input", empty, "--output", directory + "/o"], mentions: "is empty")
        let latin1 = directory + "/latin1.txt"
        try Data([0x63, 0x61, 0x66, 0xE9, 0x0A]).write(to: URL(fileURLWithPath: latin1))
        try expectFailure(
            base + ["--input", latin1, "--output", directory + "/o"], mentions: "\(latin1):1:4: invalid UTF-8")
        let badJSON = try write(directory, "bad.jsonl", "{\"text\": \"fine\"}\n{\"text\": \n")
        try expectFailure(
            base + ["--input", badJSON, "--output", directory + "/o"], mentions: "\(badJSON):2: not valid JSON")
        try expectFailure(
            base + ["--input", good, "--output", directory + "/o", "--validation-fraction", "1.5"],
            mentions: "--validation-fraction")
        try expectFailure(
            base + ["--input", good, "--output", directory + "/o", "--shard-tokens", "0"],
            mentions: "--shard-tokens")
        try expectFailure(
            base + ["--input", good, "--output", directory + "/o", "--format", "csv"], mentions: "--format")
        try expectFailure(base + ["--output", directory + "/o"], mentions: "--input")
        try expectFailure(["data", "prepare", "--input", good, "--output", directory + "/o"], mentions: "--tokenizer")
        try expectFailure(
            [
                "data", "prepare", "--tokenizer", directory + "/nope.gguf", "--input", good, "--output",
                directory + "/o",
            ],
            mentions: "does not exist")
        try expectFailure(
            base + ["--input", good, "--output", directory + "/o", "--eot-token", "<|nope|>"],
            mentions: "end-of-text token '<|nope|>' is not in the vocabulary")
        // An output holding another dataset is refused, and left as it was.
        let other = try write(directory, "other.txt", "other text")
        let first = try SeedProcess.run(base + ["--input", good, "--output", directory + "/ds"])
        #expect(first.status == 0, "\(first.stderr)")
        let before = try Data(contentsOf: URL(fileURLWithPath: directory + "/ds/manifest.json"))
        try expectFailure(
            base + ["--input", other, "--output", directory + "/ds"], mentions: "already holds a different dataset")
        #expect(try Data(contentsOf: URL(fileURLWithPath: directory + "/ds/manifest.json")) == before)
        #expect(!FileManager.default.fileExists(atPath: directory + "/o"))
    }
}

private func shell(_ executable: String, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}
