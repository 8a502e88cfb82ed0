import Foundation
import SeedTestSupport
import Testing

/// A fresh directory for one training CLI test.
private func trainDirectory(_ label: String) throws -> String {
    let path = FileManager.default.temporaryDirectory
        .appendingPathComponent("seed-cli-train-\(getpid())-\(label)-\(UInt32.random(in: 0...UInt32.max))").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// A small fortune-format corpus (240 short documents) prepared with the SmolLM2 tokenizer.
private func preparedCorpus(in directory: String) throws -> String {
    let subjects = ["The cat", "A dog", "My friend", "The old man", "Every child", "The teacher", "A bird", "The king"]
    let verbs = ["sees", "likes", "finds", "remembers", "paints", "carries"]
    let objects = ["the red ball", "a small house", "the blue sea", "an apple tree", "the quiet river"]
    var documents: [String] = []
    for i in 0..<240 {
        let s = subjects[i % subjects.count]
        let v = verbs[(i / 3) % verbs.count]
        let o = objects[(i / 7) % objects.count]
        documents.append("\(s) \(v) \(o). \(s) is happy today.")
    }
    let corpus = directory + "/corpus"
    try Data((documents.joined(separator: "\n%\n") + "\n").utf8).write(to: URL(fileURLWithPath: corpus))
    let output = directory + "/data"
    let r = try SeedProcess.run([
        "data", "prepare", "--tokenizer", try TestPaths.smolLM2(), "--input", corpus, "--output", output,
        "--validation-fraction", "0.1",
    ])
    #expect(r.status == 0, "\(r.stderr)")
    return output
}

/// A tiny model's configuration (TOML) over `data`, writing to `run`.
private func tinyConfig(data: String, run: String, steps: Int = 40, extra: String = "") -> String {
    """
    [model]
    vocab_size = 49152
    hidden_size = 32
    intermediate_size = 64
    layers = 2
    heads = 4
    kv_heads = 2
    context_length = 64

    [data]
    dir = "\(data)"

    [training]
    steps = \(steps)
    batch_size = 4
    micro_batch_size = 2
    seq_len = 32
    seed = 7
    threads = 2

    [optimizer]
    lr = 3e-3
    warmup_steps = 4

    [checkpoint]
    interval = 3
    keep_last = 3

    [eval]
    interval = 10
    batches = 2

    [output]
    dir = "\(run)"
    log_interval = 10
    \(extra)
    """
}

private func writeConfig(_ directory: String, _ name: String, _ text: String) throws -> String {
    let path = directory + "/" + name
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    return path
}

private func fileBytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

/// Starts `seed` with `arguments` and kills it with SIGKILL after `seconds` (if it is still running).
private func runAndKill(_ arguments: [String], after seconds: Double) throws -> Bool {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: SeedProcess.executable)
    process.arguments = arguments
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    usleep(UInt32(seconds * 1e6))
    let killed = process.isRunning
    if killed { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
    return killed
}

@Suite(.serialized) struct TrainCLITests {
    @Test func trainsResumesExactlyAfterKillsAndExports() throws {
        let directory = try trainDirectory("resume")
        let data = try preparedCorpus(in: directory)

        // Uninterrupted reference run.
        let runA = directory + "/a"
        let configA = try writeConfig(directory, "a.toml", tinyConfig(data: data, run: runA))
        let a = try SeedProcess.run(["train", configA])
        #expect(a.status == 0, "\(a.stderr)")
        #expect(a.stdout == runA + "/final\n")
        #expect(a.stderr.contains("MFU"))
        let reference = try fileBytes(runA + "/final/model.safetensors")

        // The log: one record per step with the required keys; the loss falls on this repetitive corpus.
        let lines = try String(decoding: fileBytes(runA + "/log.jsonl"), as: UTF8.self)
            .split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        #expect(lines.count == 40)
        #expect(lines.map { $0["step"] as? Int } == (1...40).map { $0 })
        for line in lines {
            for key in ["step", "loss", "lr", "tokens_per_s", "grad_norm", "elapsed"] {
                #expect(line[key] != nil, "missing \(key) in \(line)")
            }
        }
        let losses = lines.compactMap { $0["loss"] as? Double }
        #expect(losses.first! > 10)  // ln(49152) ≈ 10.8 at initialisation
        #expect(losses.suffix(5).reduce(0, +) / 5 < losses.first! - 3, "losses: \(losses)")
        #expect(lines.filter { $0["val_loss"] != nil }.map { $0["step"] as? Int } == [10, 20, 30, 40])
        let svg = try String(decoding: fileBytes(runA + "/loss.svg"), as: UTF8.self)
        #expect(svg.hasPrefix("<svg") || svg.hasPrefix("<?xml"))
        let config = try JSONSerialization.jsonObject(with: fileBytes(runA + "/final/config.json")) as! [String: Any]
        #expect(config["model_type"] as? String == "llama")
        #expect(config["num_hidden_layers"] as? Int == 2)
        #expect(config["num_key_value_heads"] as? Int == 2)

        // Killed at random moments and resumed each time: the same final bits.
        let runB = directory + "/b"
        let configB = try writeConfig(directory, "b.toml", tinyConfig(data: data, run: runB))
        var generator = SystemRandomNumberGenerator()
        var kills = 0
        for attempt in 0..<4 {
            let delay = Double.random(in: 0.4...1.6, using: &generator)
            if try runAndKill(["train", configB] + (attempt == 0 ? [] : ["--resume"]), after: delay) { kills += 1 }
        }
        let b = try SeedProcess.run(["train", configB, "--resume"])
        #expect(b.status == 0, "\(b.stderr)")
        #expect(kills >= 1, "no run was interrupted; the test proves nothing")
        #expect(try fileBytes(runB + "/final/model.safetensors") == reference)
        let logB = try String(decoding: fileBytes(runB + "/log.jsonl"), as: UTF8.self).split(separator: "\n")
        #expect(logB.count == 40)

        // Corrupt the newest checkpoint: resume warns, uses the previous one, and still ends with the same bits.
        let newest = runB + "/checkpoints/step-00000040/model.safetensors"
        var damaged = try fileBytes(newest)
        damaged[damaged.count - 1] ^= 0xFF
        try damaged.write(to: URL(fileURLWithPath: newest))
        try FileManager.default.removeItem(atPath: runB + "/final")
        let c = try SeedProcess.run(["train", configB, "--resume"])
        #expect(c.status == 0, "\(c.stderr)")
        #expect(c.stderr.contains("skipping checkpoint"), "\(c.stderr)")
        #expect(c.stderr.contains("step-00000039"), "\(c.stderr)")
        #expect(try fileBytes(runB + "/final/model.safetensors") == reference)

        // Export to GGUF and generate from it; export to Hugging Face files.
        let gguf = directory + "/tiny.gguf"
        let e = try SeedProcess.run(["export", runA, "--format", "gguf-f32", "--output", gguf])
        #expect(e.status == 0, "\(e.stderr)")
        let g = try SeedProcess.run([
            "generate", "--model", gguf, "--prompt", "The cat", "-n", "8", "--temperature", "0", "--quiet",
        ])
        #expect(g.status == 0, "\(g.stderr)")
        #expect(g.stdout.trimmingCharacters(in: .whitespacesAndNewlines).count > 0)
        let half = directory + "/tiny-f16.gguf"
        let h = try SeedProcess.run(["export", runA + "/final", "--format", "gguf-f16", "--output", half])
        #expect(h.status == 0, "\(h.stderr)")
        let hf = directory + "/hf"
        let x = try SeedProcess.run(["export", runA + "/checkpoints/step-00000040", "--format", "hf", "--output", hf])
        #expect(x.status == 0, "\(x.stderr)")
        #expect(try fileBytes(hf + "/model.safetensors") == reference)
    }

    func expectFailure(_ arguments: [String], mentions: String) throws {
        let r = try SeedProcess.run(arguments)
        #expect(r.status != 0, "expected failure for \(arguments)")
        #expect(r.stderr.localizedCaseInsensitiveContains(mentions), "stderr was: \(r.stderr)")
        #expect(!r.stderr.contains("Fatal error") && !r.stderr.contains("crashed"), "crashed: \(r.stderr)")
        #expect(r.stdout.isEmpty, "stdout should stay clean: \(r.stdout)")
    }

    @Test func badInputIsRefusedBeforeAnyWork() throws {
        let directory = try trainDirectory("bad")
        let data = try preparedCorpus(in: directory)
        let run = directory + "/run"
        try expectFailure(["train", directory + "/missing.toml"], mentions: "missing.toml")
        let malformed = try writeConfig(directory, "malformed.toml", "[model\nvocab_size = ")
        try expectFailure(["train", malformed], mentions: "malformed.toml")
        let unknown = try writeConfig(
            directory, "unknown.toml", tinyConfig(data: data, run: run, extra: "[extra]\nfoo = 1"))
        try expectFailure(["train", unknown], mentions: "unknown")
        let good = try writeConfig(directory, "good.toml", tinyConfig(data: data, run: run))
        try expectFailure(["train", good, "--set", "model.heads=5"], mentions: "divisible")
        try expectFailure(["train", good, "--set", "training.micro_batch_size=3"], mentions: "micro_batch_size")
        try expectFailure(["train", good, "--set", "optimizer.learning_rate=1"], mentions: "unknown")
        try expectFailure(["train", good, "--set", "optimizer.lr"], mentions: "key=value")
        try expectFailure(["train", good, "--steps", "0"], mentions: "training.steps")
        try expectFailure(["train", good, "--set", "data.dir=\(directory)/nowhere"], mentions: "nowhere")
        try expectFailure(["train", good, "--set", "model.vocab_size=1000"], mentions: "vocabulary")
        try expectFailure(
            [
                "train", good, "--set", "training.seq_len=60", "--set", "training.batch_size=400",
                "--set", "training.micro_batch_size=400",
            ], mentions: "batch")
        // Nothing was written for any of them.
        #expect(!FileManager.default.fileExists(atPath: run))
        try expectFailure(["export", run, "--output", directory + "/x.gguf"], mentions: "no final")
        try expectFailure(["export", run, "--format", "onnx", "--output", directory + "/x"], mentions: "format")
    }
}

/// `training.precision = "bf16"`: the loss falls, and resuming from an earlier checkpoint ends with the same bits
/// as the uninterrupted run (the bf16 products are deterministic).
@Suite(.serialized) struct BF16TrainCLITests {
    @Test func bf16TrainingLearnsAndResumesExactly() throws {
        let directory = try trainDirectory("bf16")
        let data = try preparedCorpus(in: directory)
        let run = directory + "/run"
        let config = try writeConfig(directory, "bf16.toml", tinyConfig(data: data, run: run, steps: 24))
        let a = try SeedProcess.run(["train", config, "--set", "training.precision=bf16"])
        #expect(a.status == 0, "\(a.stderr)")
        #expect(a.stderr.contains("bf16 products"), "\(a.stderr)")
        let reference = try fileBytes(run + "/final/model.safetensors")
        let lines = try String(decoding: fileBytes(run + "/log.jsonl"), as: UTF8.self)
            .split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        let losses = lines.compactMap { $0["loss"] as? Double }
        #expect(losses.count == 24)
        #expect(losses.first! > 10)  // ln(49152) ≈ 10.8 at initialisation
        #expect(losses.suffix(4).reduce(0, +) / 4 < losses.first! - 2, "losses: \(losses)")

        // Keep checkpoints up to step 18 only and resume: steps 19-24 again, the same final bits.
        for step in [21, 24] {
            try FileManager.default.removeItem(atPath: run + "/checkpoints/step-" + String(format: "%08d", step))
        }
        try FileManager.default.removeItem(atPath: run + "/final")
        let b = try SeedProcess.run(["train", config, "--set", "training.precision=bf16", "--resume"])
        #expect(b.status == 0, "\(b.stderr)")
        #expect(b.stderr.contains("step-00000018"), "\(b.stderr)")
        #expect(try fileBytes(run + "/final/model.safetensors") == reference)
    }
}

@Suite struct BenchGemmCLITests {
    @Test func comparesBothEnginesAndPrintsJSON() throws {
        let r = try SeedProcess.run([
            "bench-gemm", "--shape", "40x70x33:tn", "64x32x64", "--threads", "2", "--repeats", "3", "--seconds",
            "0.01", "--json",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        let objects = try r.stdout.split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
        #expect(objects.map { $0["shape"] as? String } == ["40x70x33:tn", "64x32x64:nt"])
        for object in objects {
            #expect(object["threads"] as? Int == 2)
            #expect((object["bf16_runs"] as? [Double])?.count == 3)
            #expect((object["sgemm_runs"] as? [Double])?.count == 3)
            let bf16 = try #require(object["bf16_gflop_s"] as? Double)
            let sgemm = try #require(object["sgemm_gflop_s"] as? Double)
            let ratio = try #require(object["ratio"] as? Double)
            #expect(bf16 > 0 && sgemm > 0)
            #expect(abs(ratio - bf16 / sgemm) < 0.01 * ratio + 0.002)
        }
    }

    @Test func badInputIsRefused() throws {
        let cases: [([String], String)] = [
            (["bench-gemm", "--shape", "0x5x5"], "0x5x5"),
            (["bench-gemm", "--shape", "5x5"], "5x5"),
            (["bench-gemm", "--shape", "5x5x5:xn"], ":nn, :nt"),
            (["bench-gemm", "--shape", "5x5x5:nt:tt"], "5x5x5:nt:tt"),
            (["bench-gemm", "--shape", "100000x100000x8"], "2^28"),
            (["bench-gemm", "--threads", "0"], "--threads"),
            (["bench-gemm", "--repeats", "0"], "--repeats"),
            (["bench-gemm", "--seconds", "0"], "--seconds"),
        ]
        for (arguments, mention) in cases {
            let r = try SeedProcess.run(arguments)
            #expect(r.status != 0, "\(arguments) succeeded")
            #expect(r.stderr.contains(mention), "\(arguments): \(r.stderr)")
        }
    }
}

@Suite struct BenchTrainCLITests {
    @Test func timesStepsAndPrintsJSON() throws {
        let directory = try trainDirectory("bench")
        // The data directory does not exist: the benchmark never reads it.
        let config = try writeConfig(
            directory, "bench.toml", tinyConfig(data: directory + "/no-data", run: directory + "/no-run"))
        let r = try SeedProcess.run([
            "bench-train", config, "--steps", "2", "--warmup", "1", "--threads", "1", "--peak-gflops", "10",
            "--set", "training.batch_size=2", "--json",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        // 49152 × 32 tied embedding + 2 layers + final norm.
        let perLayer = 32 + 32 * 32 + 2 * 16 * 32 + 32 * 32 + 32 + 3 * 32 * 64
        #expect(object["parameters"] as? Int == 49152 * 32 + 2 * perLayer + 32)
        #expect(object["threads"] as? Int == 1)
        #expect(object["tokens_per_step"] as? Int == 2 * 32)
        #expect(object["micro_batch_size"] as? Int == 2)
        #expect((object["step_seconds"] as? [Double])?.count == 2)
        let rate = try #require(object["tokens_per_s"] as? Double)
        let median = try #require(object["median_step_s"] as? Double)
        #expect(rate > 0 && abs(rate * median - 64) < 0.5)
        #expect(object["peak_gflop_s"] as? Double == 10)
        let flops = try #require(object["flops_per_token"] as? Double)
        let mfu = try #require(object["mfu"] as? Double)
        #expect(abs(mfu - rate * flops / 1e10) < 1e-3)
        #expect((object["first_loss"] as? Double ?? 0) > 10)  // ln(49152) ≈ 10.8
        #expect(!FileManager.default.fileExists(atPath: directory + "/no-run"))
        #expect(object["precision"] as? String == "fp32")

        let b = try SeedProcess.run([
            "bench-train", config, "--steps", "1", "--warmup", "1", "--threads", "2", "--peak-gflops", "10",
            "--set", "training.batch_size=2", "--precision", "bf16", "--json",
        ])
        #expect(b.status == 0, "\(b.stderr)")
        let bf16 = try JSONSerialization.jsonObject(with: Data(b.stdout.utf8)) as! [String: Any]
        #expect(bf16["precision"] as? String == "bf16")
        let first = try #require(bf16["first_loss"] as? Double)
        // The same initial weights and tokens as the float32 run: the first loss agrees to bf16 rounding.
        #expect(abs(first - (object["first_loss"] as? Double ?? 0)) < 0.05, "\(first)")
    }

    @Test func badInputIsRefused() throws {
        let directory = try trainDirectory("bench-bad")
        let config = try writeConfig(
            directory, "bench.toml", tinyConfig(data: directory + "/no-data", run: directory + "/no-run"))
        let cases: [([String], String)] = [
            (["bench-train", directory + "/missing.toml"], "missing.toml"),
            (["bench-train", config, "--steps", "0"], "--steps"),
            (["bench-train", config, "--warmup", "-1"], "--warmup"),
            (["bench-train", config, "--threads", "0"], "--threads"),
            (["bench-train", config, "--peak-gflops", "0"], "--peak-gflops"),
            (["bench-train", config, "--set", "training.batch_size=3"], "batch_size"),
            (["bench-train", config, "--set", "nonsense"], "nonsense"),
            (["bench-train", config, "--set", "model.heads=5"], "heads"),
            (["bench-train", config, "--precision", "fp16"], "training.precision must be one of"),
            (["bench-train", config, "--set", "training.precision=half"], "training.precision"),
        ]
        for (arguments, mention) in cases {
            let r = try SeedProcess.run(arguments)
            #expect(r.status != 0, "\(arguments) succeeded")
            #expect(r.stderr.contains(mention), "\(arguments): \(r.stderr)")
        }
    }
}
