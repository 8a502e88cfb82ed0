import Foundation
import SeedFormats
import SeedTestSupport
import Testing

/// Runs the built `seed` executable (it sits beside the test bundle) and captures its output.
struct SeedProcess {
    var status: Int32
    var stdout: String
    var stderr: String

    static var executable: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("seed").path
    }

    static func run(_ arguments: [String], stdin: String? = nil) throws -> SeedProcess {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let input = Pipe()
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        // Read both pipes concurrently so a chatty process cannot block on a full pipe.
        nonisolated(unsafe) var errData = Data()
        let reader = Thread { errData = err.fileHandleForReading.readDataToEndOfFile() }
        reader.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while !reader.isFinished { usleep(1000) }
        return SeedProcess(
            status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self))
    }
}

func temporaryFile(_ name: String, _ contents: Data) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("seed-cli-tests-\(getpid())")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let path = dir.appendingPathComponent(name).path
    try contents.write(to: URL(fileURLWithPath: path))
    return path
}

@Suite struct CLIHappyPathTests {
    @Test func generateGreedyMatchesLlamaCppPrefixAndKeepsStdoutClean() throws {
        let model = try TestPaths.smolLM2()
        let r = try SeedProcess.run([
            "generate", "--model", model, "--prompt", "The capital of France is", "--temperature", "0",
            "--max-tokens", "5", "--threads", "1",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        // llama.cpp's greedy ids [7042, 30, 198, 198, 504] decode to " Paris.\n\nThe" (agreed prefix of shared-0).
        #expect(r.stdout == " Paris.\n\nThe\n")
        #expect(r.stderr.contains("tok/s"))
    }

    @Test func exactActivationsGiveTheSameGreedyText() throws {
        let r = try SeedProcess.run([
            "generate", "--model", try TestPaths.smolLM2(), "--prompt", "The capital of France is", "--temperature",
            "0", "--max-tokens", "5", "--activations", "f32", "--quiet",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == " Paris.\n\nThe\n")
    }

    @Test func stopStringEndsGenerationAndIsNotPrinted() throws {
        let r = try SeedProcess.run([
            "generate", "--model", try TestPaths.smolLM2(), "--prompt", "The capital of France is",
            "--temperature", "0", "--max-tokens", "20", "--stop", ".", "--quiet",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == " Paris\n")
    }

    @Test func tokenizeAndDecodeRoundTrip() throws {
        let model = try TestPaths.smolLM2()
        let encoded = try SeedProcess.run(["tokenize", "--model", model, "Hello, world!"])
        #expect(encoded.status == 0, "\(encoded.stderr)")
        #expect(encoded.stdout == "[19556, 28, 905, 17]\n")
        let decoded = try SeedProcess.run(["tokenize", "--model", model, "--decode", "[19556, 28, 905, 17]"])
        #expect(decoded.stdout == "Hello, world!\n")
        let special = try SeedProcess.run(["tokenize", "--model", model, "<|im_start|>user"])
        #expect(special.stdout == "[1, 4093]\n")
    }

    @Test func infoShowsArchitectureTensorsAndParameterCount() throws {
        let r = try SeedProcess.run(["info", try TestPaths.smolLM2(), "--tensors"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("general.architecture = \"llama\""))
        #expect(r.stdout.contains("token_embd.weight"))
        #expect(r.stdout.contains("q8_0"))
        #expect(r.stdout.contains("parameters: 134515008"))
    }

    @Test func chatReadsTurnsFromAPipe() throws {
        let r = try SeedProcess.run(
            ["chat", "--model", try TestPaths.smolLM2(), "--temperature", "0", "--max-tokens", "12"],
            stdin: "What is the capital of France?\nAnd of Germany?\n")
        #expect(r.status == 0, "\(r.stderr)")
        let replies = r.stdout.split(separator: "\n", omittingEmptySubsequences: true)
        #expect(replies.count >= 2)
        #expect(r.stdout.contains("Paris"))
    }

    @Test func perplexityFollowsLlamaCppOutputFormat() throws {
        let text = String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 40)
        let file = try temporaryFile("ppl.txt", Data(text.utf8))
        let r = try SeedProcess.run(["perplexity", "--model", try TestPaths.smolLM2(), "--ctx", "128", file])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("[1]"))
        #expect(r.stdout.contains("Final estimate: PPL = "))
        // A memorisable repeated sentence is easy: perplexity must be low.
        let value = r.stdout.components(separatedBy: "PPL = ").last.flatMap { Double($0.prefix(6)) } ?? .infinity
        #expect(value < 3)
    }
}

@Suite struct CLIBadInputTests {
    func expectFailure(_ arguments: [String], mentions: String, stdin: String? = nil) throws {
        let r = try SeedProcess.run(arguments, stdin: stdin)
        #expect(r.status != 0, "expected failure for \(arguments)")
        #expect(r.stderr.localizedCaseInsensitiveContains(mentions), "stderr was: \(r.stderr)")
        #expect(!r.stderr.contains("Fatal error") && !r.stderr.contains("crashed"), "crashed: \(r.stderr)")
        #expect(r.stdout.isEmpty, "stdout should stay clean: \(r.stdout)")
    }

    @Test func invalidSamplingValues() throws {
        let base = ["generate", "--model", try TestPaths.smolLM2(), "--prompt", "hi"]
        try expectFailure(base + ["--temperature", "-1"], mentions: "temperature")
        try expectFailure(base + ["--top-p", "0"], mentions: "top-p")
        try expectFailure(base + ["--top-p", "1.5"], mentions: "top-p")
        try expectFailure(base + ["--top-k", "-3"], mentions: "top-k")
        try expectFailure(base + ["--min-p", "2"], mentions: "min-p")
        try expectFailure(base + ["--repeat-penalty", "0"], mentions: "repeat-penalty")
        try expectFailure(base + ["--max-tokens", "-5"], mentions: "max-tokens")
        try expectFailure(base + ["--threads", "0"], mentions: "threads")
        try expectFailure(base + ["--activations", "int4"], mentions: "activations")
        try expectFailure(base + ["--temperature", "abc"], mentions: "temperature")
        try expectFailure(["generate", "--model", try TestPaths.smolLM2()], mentions: "prompt")
    }

    @Test func missingAndMalformedModelFiles() throws {
        try expectFailure(
            ["generate", "--model", "/nonexistent/model.gguf", "--prompt", "hi"], mentions: "does not exist")
        let text = try temporaryFile("not-a-model.gguf", Data("hello, I am not a model\n".utf8))
        try expectFailure(["generate", "--model", text, "--prompt", "hi"], mentions: "GGUF")
        try expectFailure(["info", text], mentions: "GGUF")
        let real = try Data(contentsOf: URL(fileURLWithPath: try TestPaths.smolLM2()))
        // The file name must not contain the words checked for, or the check would pass on the path alone.
        for cut in [3, 20, 5_000, 2_000_000] {
            let cutFile = try temporaryFile("cut-\(cut).gguf", real.prefix(cut))
            let r = try SeedProcess.run(["generate", "--model", cutFile, "--prompt", "hi"])
            #expect(r.status != 0)
            #expect(!r.stderr.contains("crashed"), "\(r.stderr)")
            // Short files are reported as truncated, as counts the file cannot hold, or as data past its end.
            let named = ["truncated", "-byte file can hold", "past the end of the"].contains { r.stderr.contains($0) }
            #expect(named, "\(r.stderr)")
        }
    }

    @Test func unknownArchitectureIsNamed() throws {
        var writer = GGUFWriter()
        writer.setMetadata("general.architecture", .string("mamba"))
        let tensor = [Float](repeating: 1, count: 32)
        try writer.addTensor(
            name: "token_embd.weight", dimensions: [32], type: .f32,
            data: tensor.withUnsafeBytes { Array($0) })
        let path = try temporaryFile("mamba.gguf", Data())
        try writer.write(to: path)
        try expectFailure(["generate", "--model", path, "--prompt", "hi"], mentions: "mamba")
    }

    @Test func promptLongerThanTheContext() throws {
        let prompt = String(repeating: "word ", count: 100)
        try expectFailure(
            ["generate", "--model", try TestPaths.smolLM2(), "--ctx-size", "16", "--prompt", prompt],
            mentions: "context holds 16")
    }

    @Test func badTokenizeInput() throws {
        let model = try TestPaths.smolLM2()
        try expectFailure(["tokenize", "--model", model, "--decode", "[1, two]"], mentions: "JSON array")
        try expectFailure(["tokenize", "--model", model, "--decode", "[99999999]"], mentions: "99999999")
    }

    @Test func perplexityNeedsEnoughText() throws {
        let file = try temporaryFile("short.txt", Data("too short".utf8))
        try expectFailure(["perplexity", "--model", try TestPaths.smolLM2(), file], mentions: "at least")
        try expectFailure(
            ["perplexity", "--model", try TestPaths.smolLM2(), "/nonexistent.txt"], mentions: "cannot read")
    }

    @Test func unknownCommandAndFlag() throws {
        try expectFailure(["frobnicate"], mentions: "unexpected argument")
        try expectFailure(["generate", "--prompt", "x", "--no-such-flag"], mentions: "unknown option")
    }
}
