import Foundation
import SeedTestSupport
import Testing

/// `seed embed` end to end: tokenizer.json + BERT + pooling against sentence-transformers' embeddings.
@Suite struct EmbedCLITests {
    struct Reference: Decodable {
        let text: String
        let embedding: [Double]
    }

    var miniLM: String { TestPaths.modelDirectory + "/all-MiniLM-L6-v2" }

    @Test func embeddingsMatchSentenceTransformersInBothOutputFormats() throws {
        let references = try JSONDecoder().decode(
            [Reference].self, from: TestPaths.referenceData("minilm/embeddings.json"))
        let texts = references.map(\.text)
        let jsonl = try SeedProcess.run(["embed", "--model", miniLM, "--jsonl", "--batch-size", "8", "--"] + texts)
        #expect(jsonl.status == 0, "\(jsonl.stderr)")
        let rows = jsonl.stdout.split(separator: "\n").map { line -> [String: Any] in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] ?? [:]
        }
        #expect(rows.count == references.count)
        var worst = 1.0
        for (row, reference) in zip(rows, references) {
            let vector = row["embedding"] as? [Double] ?? []
            #expect(vector.count == 384)
            worst = min(worst, zip(vector, reference.embedding).reduce(0) { $0 + $1.0 * $1.1 })
        }
        print("seed embed vs sentence-transformers: worst cosine \(worst)")
        #expect(worst >= 0.9999)
        // The 302-token sentence is truncated to max_seq_length and reported.
        #expect(jsonl.stderr.contains("truncated to 256"))
        #expect(rows.contains { ($0["truncated"] as? Bool) == true })

        let array = try SeedProcess.run(["embed", "--model", miniLM, texts[0], texts[1]])
        #expect(array.status == 0, "\(array.stderr)")
        let parsed = try JSONSerialization.jsonObject(with: Data(array.stdout.utf8)) as? [[Double]]
        #expect(parsed?.count == 2)
        let first = parsed?.first ?? []
        #expect(zip(first, references[0].embedding).reduce(0) { $0 + $1.0 * $1.1 } >= 0.9999)
    }

    @Test func textsFromStandardInputOnePerLine() throws {
        let r = try SeedProcess.run(["embed", "--model", miniLM, "--jsonl"], stdin: "first line\nsecond line\n")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.split(separator: "\n").count == 2)
    }

    @Test func badInput() throws {
        func expectFailure(_ arguments: [String], mentions: String, stdin: String? = nil) throws {
            let r = try SeedProcess.run(arguments, stdin: stdin)
            #expect(r.status != 0, "expected failure for \(arguments)")
            #expect(r.stderr.localizedCaseInsensitiveContains(mentions), "stderr was: \(r.stderr)")
            #expect(!r.stderr.contains("crashed"), "\(r.stderr)")
            #expect(r.stdout.isEmpty)
        }
        try expectFailure(["embed", "--model", miniLM, "--batch-size", "0", "x"], mentions: "batch-size")
        try expectFailure(["embed", "--model", miniLM], mentions: "no text", stdin: "")
        try expectFailure(["embed", "--model", "/no/such/dir", "x"], mentions: "does not exist")
        try expectFailure(["embed", "--model", miniLM, "--file", "/no/such/file.txt"], mentions: "cannot read")
        // A model directory whose tokenizer.json is garbage.
        let broken = FileManager.default.temporaryDirectory.appendingPathComponent("broken-minilm-\(getpid())").path
        try? FileManager.default.removeItem(atPath: broken)
        try FileManager.default.copyItem(atPath: miniLM, toPath: broken)
        try Data("{ not json".utf8).write(to: URL(fileURLWithPath: broken + "/tokenizer.json"))
        try expectFailure(["embed", "--model", broken, "x"], mentions: "tokenizer")
        // The real tokenizer.json with a normalizer this implementation does not have: the error names it.
        let original = try Data(contentsOf: URL(fileURLWithPath: miniLM + "/tokenizer.json"))
        var object = try #require(try JSONSerialization.jsonObject(with: original) as? [String: Any])
        object["normalizer"] = ["type": "Precompiled", "precompiled_charsmap": "AA=="]
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: broken + "/tokenizer.json"))
        try expectFailure(["embed", "--model", broken, "x"], mentions: #"normalizer type "Precompiled""#)
        try FileManager.default.removeItem(atPath: broken + "/tokenizer.json")
        try expectFailure(["embed", "--model", broken, "x"], mentions: "tokenizer.json")
        // A weights file cut short.
        try FileManager.default.copyItem(atPath: miniLM + "/tokenizer.json", toPath: broken + "/tokenizer.json")
        let weights = try Data(contentsOf: URL(fileURLWithPath: miniLM + "/model.safetensors"))
        try FileManager.default.removeItem(atPath: broken + "/model.safetensors")
        try weights.prefix(weights.count / 2).write(to: URL(fileURLWithPath: broken + "/model.safetensors"))
        try expectFailure(["embed", "--model", broken, "x"], mentions: "past the end")
        try? FileManager.default.removeItem(atPath: broken)
    }

    /// The empty string is a text like any other for sentence-transformers ([CLS] [SEP]); a text longer than
    /// max_seq_length is truncated to it, and both the note on stderr and the JSONL row say so.
    @Test func emptyAndOverlongTextsAreHandledAsSentenceTransformersDoes() throws {
        let references = try JSONDecoder().decode(
            [Reference].self, from: TestPaths.referenceData("minilm/embeddings.json"))
        let empty = try #require(references.first { $0.text.isEmpty })
        let long = try #require(references.first { $0.text.count > 1000 })
        let r = try SeedProcess.run(["embed", "--model", miniLM, "--jsonl", "--", "", long.text, "short"])
        #expect(r.status == 0, "\(r.stderr)")
        let rows = r.stdout.split(separator: "\n").map { line -> [String: Any] in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] ?? [:]
        }
        #expect(rows.count == 3)
        #expect(rows.map { $0["tokens"] as? Int } == [2, 256, 3])
        #expect(rows.map { $0["truncated"] as? Bool } == [false, true, false])
        #expect(r.stderr.contains("note: text 1 has 302 tokens; truncated to 256"), "\(r.stderr)")
        #expect(!r.stderr.contains("text 0") && !r.stderr.contains("text 2"))
        for (row, reference) in zip(rows.prefix(2), [empty, long]) {
            let vector = row["embedding"] as? [Double] ?? []
            #expect(vector.count == 384)
            #expect(zip(vector, reference.embedding).reduce(0) { $0 + $1.0 * $1.1 } >= 0.9999)
        }
    }

    @Test func benchEmbedPrintsOneJSONObject() throws {
        let texts = try temporaryFile(
            "bench-embed.txt", Data("The cat sat on the mat.\nA second, longer sentence about cats.\nThird.\n".utf8))
        let r = try SeedProcess.run([
            "bench-embed", "--model", miniLM, "--file", texts, "--threads", "1", "--batch-size", "2", "--repeats", "1",
            "--json",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] ?? [:]
        #expect(object["threads"] as? Int == 1)
        #expect(object["batch_size"] as? Int == 2)
        #expect(object["sentences"] as? Int == 3)
        // [CLS] the cat sat on the mat . [SEP] = 9; [CLS] a second , longer sentence about cats . [SEP] = 10;
        // [CLS] third . [SEP] = 4.
        #expect(object["tokens"] as? Int == 23)
        #expect((object["sentences_per_s"] as? Double ?? 0) > 0)
        #expect((object["tokens_per_s"] as? Double ?? 0) > 0)
        #expect((object["rss_mb"] as? Double ?? 0) > 0)
        #expect(object["load_s"] is Double)

        let text = try SeedProcess.run(["bench-embed", "--model", miniLM, "--file", texts, "--repeats", "2"])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("3 texts (23 tokens)"))
        #expect(text.stdout.contains("median of 2"))
    }

    @Test func benchEmbedBadInput() throws {
        func expectFailure(_ arguments: [String], mentions: String) throws {
            let r = try SeedProcess.run(["bench-embed", "--model", miniLM] + arguments)
            #expect(r.status != 0, "expected failure for \(arguments)")
            #expect(r.stderr.localizedCaseInsensitiveContains(mentions), "stderr was: \(r.stderr)")
            #expect(!r.stderr.contains("crashed"), "\(r.stderr)")
            #expect(r.stdout.isEmpty)
        }
        let texts = try temporaryFile("bench-embed-bad.txt", Data("one\ntwo\n".utf8))
        let empty = try temporaryFile("bench-embed-empty.txt", Data())
        try expectFailure([], mentions: "--file")
        try expectFailure(["--file", texts, "--threads", "0"], mentions: "--threads")
        try expectFailure(["--file", texts, "--threads", "2000"], mentions: "--threads")
        try expectFailure(["--file", texts, "--batch-size", "0"], mentions: "--batch-size")
        try expectFailure(["--file", texts, "--batch-size", "-3"], mentions: "batch-size")
        try expectFailure(["--file", texts, "--repeats", "0"], mentions: "--repeats")
        try expectFailure(["--file", texts, "--repeats", "many"], mentions: "repeats")
        try expectFailure(["--file", "/no/such/texts.txt"], mentions: "cannot read")
        try expectFailure(["--file", empty], mentions: "no text")
        let r = try SeedProcess.run(["bench-embed", "--model", "/no/such/dir", "--file", texts])
        #expect(r.status != 0)
        #expect(r.stderr.contains("does not exist"), "\(r.stderr)")
    }
}
