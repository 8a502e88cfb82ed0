import Foundation
import Testing

@testable import SeedTrain

private let fullTOML = """
    # SmolLM2-135M shape, trained from scratch on fortunes.
    [model]
    vocab_size = 49152
    hidden_size = 576
    intermediate_size = 1536
    layers = 30
    heads = 9
    kv_heads = 3
    context_length = 2048
    rope_theta = 100000.0
    tie_embeddings = true
    norm_eps = 1e-5

    [data]
    dir = "data/fortunes"

    [training]
    steps = 1000
    batch_size = 8
    micro_batch_size = 4
    seq_len = 256
    seed = 1234
    threads = 2

    [optimizer]
    lr = 3e-4
    min_lr = 3e-5
    warmup_steps = 100
    schedule = "cosine"
    weight_decay = 0.1
    beta1 = 0.9
    beta2 = 0.95
    eps = 1e-8
    grad_clip = 1.0

    [checkpoint]
    interval = 200
    keep_last = 2

    [eval]
    interval = 100
    batches = 5

    [output]
    dir = "runs/fortunes"
    log_interval = 10
    """

private let fullJSON = """
    {
      "model": {"vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536, "layers": 30, "heads": 9,
                "kv_heads": 3, "context_length": 2048, "rope_theta": 100000, "tie_embeddings": true, "norm_eps": 1e-5},
      "data": {"dir": "data/fortunes"},
      "training": {"steps": 1000, "batch_size": 8, "micro_batch_size": 4, "seq_len": 256, "seed": 1234, "threads": 2},
      "optimizer": {"lr": 3e-4, "min_lr": 3e-5, "warmup_steps": 100, "schedule": "cosine", "weight_decay": 0.1,
                    "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "grad_clip": 1},
      "checkpoint": {"interval": 200, "keep_last": 2},
      "eval": {"interval": 100, "batches": 5},
      "output": {"dir": "runs/fortunes", "log_interval": 10}
    }
    """

private let fullYAML = """
    model:
      vocab_size: 49152
      hidden_size: 576
      intermediate_size: 1536
      layers: 30
      heads: 9
      kv_heads: 3
      context_length: 2048
      rope_theta: 100000.0
      tie_embeddings: true
      norm_eps: 1.0e-5
    data: {dir: data/fortunes}
    training: {steps: 1000, batch_size: 8, micro_batch_size: 4, seq_len: 256, seed: 1234, threads: 2}
    optimizer:
      lr: 3.0e-4
      min_lr: 3.0e-5
      warmup_steps: 100
      schedule: cosine
      weight_decay: 0.1
      beta1: 0.9
      beta2: 0.95
      eps: 1.0e-8
      grad_clip: 1.0
    checkpoint: {interval: 200, keep_last: 2}
    eval: {interval: 100, batches: 5}
    output: {dir: runs/fortunes, log_interval: 10}
    """

private let minimalTOML = """
    [model]
    vocab_size = 257
    hidden_size = 64
    intermediate_size = 128
    layers = 2
    heads = 4
    context_length = 128
    [data]
    dir = "d"
    [training]
    steps = 5
    batch_size = 2
    seq_len = 32
    [optimizer]
    lr = 0.001
    [output]
    dir = "o"
    """

@Suite struct ConfigTests {
    let expected = TrainingConfiguration(
        model: .init(
            vocabSize: 49152, hiddenSize: 576, intermediateSize: 1536, layers: 30, heads: 9, kvHeads: 3,
            contextLength: 2048, ropeTheta: 100000, tieEmbeddings: true, normEps: 1e-5),
        data: .init(dir: "data/fortunes"),
        training: .init(steps: 1000, batchSize: 8, microBatchSize: 4, seqLen: 256, seed: 1234, threads: 2),
        optimizer: .init(
            lr: 3e-4, minLr: 3e-5, warmupSteps: 100, schedule: .cosine, weightDecay: 0.1, beta1: 0.9, beta2: 0.95,
            eps: 1e-8, gradClip: 1.0),
        checkpoint: .init(interval: 200, keepLast: 2), eval: .init(interval: 100, batches: 5),
        output: .init(dir: "runs/fortunes", logInterval: 10))

    @Test func tomlJSONAndYAMLReadTheSameConfiguration() throws {
        #expect(try TrainingConfiguration.decode(fullTOML, format: .toml) == expected)
        #expect(try TrainingConfiguration.decode(fullJSON, format: .json) == expected)
        #expect(try TrainingConfiguration.decode(fullYAML, format: .yaml) == expected)
        #expect(expected.training.gradientAccumulationSteps == 2)
        #expect(expected.model.headDimension == 64)
    }

    @Test func filesAreReadByExtension() throws {
        let directory = try makeDataTestDirectory()
        for (name, text) in [("c.toml", fullTOML), ("c.json", fullJSON), ("c.yaml", fullYAML), ("c.yml", fullYAML)] {
            let path = try writeDataTestFile(directory, name, text)
            #expect(try TrainingConfiguration.load(path: path) == expected, "\(name)")
        }
        let other = try writeDataTestFile(directory, "c.ini", fullTOML)
        #expect(throws: TrainingConfigurationError.unsupportedFormat(path: other)) {
            try TrainingConfiguration.load(path: other)
        }
        #expect(throws: TrainingConfigurationError.self) {
            try TrainingConfiguration.load(path: directory + "/none.toml")
        }
    }

    @Test func defaultsFillOptionalKeys() throws {
        let config = try TrainingConfiguration.decode(minimalTOML, format: .toml)
        #expect(config.model.kvHeads == 4)
        #expect(config.model.ropeTheta == 10000)
        #expect(config.model.tieEmbeddings)
        #expect(config.model.normEps == 1e-5)
        #expect(config.training.microBatchSize == 2 && config.training.seed == 0 && config.training.threads == nil)
        #expect(config.optimizer == .init(lr: 0.001))
        #expect(config.optimizer.beta2 == 0.95 && config.optimizer.schedule == .cosine)
        #expect(config.checkpoint == .init(interval: 100, keepLast: 3))
        #expect(config.eval == .init(interval: 100, batches: 10))
        #expect(config.output.logInterval == 10)
        #expect(config.data.verifyChecksums)
        #expect(config.distributed == .init(zero1: false, bucketMB: 4, timeout: 300))
        #expect(config.distributed.bucketElements == 1 << 20)
    }

    @Test func distributedSectionIsReadAndChecked() throws {
        let overrides = try ["distributed.zero1=true", "distributed.bucket_mb=0.5", "distributed.timeout=7"].map {
            text throws(TrainingConfigurationError) in try TrainingConfiguration.Override(parsing: text)
        }
        let config = try TrainingConfiguration.decode(minimalTOML, format: .toml, overrides: overrides)
        #expect(config.distributed == .init(zero1: true, bucketMB: 0.5, timeout: 7))
        var bad = config
        bad.distributed.bucketMB = 0
        bad.distributed.timeout = -1
        #expect(
            throws: TrainingConfigurationError.invalidValues([
                "distributed.bucket_mb must be in (0, 1024], got 0.0",
                "distributed.timeout must be a positive number of seconds, got -1.0",
            ])
        ) { try bad.validate() }
        #expect(
            throws: TrainingConfigurationError.badOverride(
                "distributed.zero2=true", reason: "unknown configuration key 'distributed.zero2'")
        ) { try TrainingConfiguration.Override(parsing: "distributed.zero2=true") }
    }

    @Test func codableRoundTripUsesSnakeCase() throws {
        let data = try JSONEncoder().encode(expected)
        #expect(try JSONDecoder().decode(TrainingConfiguration.self, from: data) == expected)
        let text = expected.jsonText()
        for key in ["\"vocab_size\"", "\"micro_batch_size\"", "\"warmup_steps\"", "\"keep_last\"", "\"log_interval\""] {
            #expect(text.contains(key))
        }
        // The schema lists exactly the keys the Codable form has.
        guard case .table(let sections) = expected.tree() else {
            Issue.record("not a table")
            return
        }
        for (name, value) in sections {
            guard case .table(let entries) = value else { continue }
            #expect(Set(entries.keys) == Set(TrainingConfiguration.schema[name]!.keys), "\(name)")
        }
        #expect(Set(sections.keys) == Set(TrainingConfiguration.schema.keys))
        #expect(try TrainingConfiguration.decode(text, format: .json) == expected)
    }

    @Test func unknownKeysAreNamed() {
        let text = fullTOML.replacingOccurrences(of: "warmup_steps", with: "warmup")
            .replacingOccurrences(of: "[eval]", with: "[evaluation]")
        #expect(throws: TrainingConfigurationError.unknownKeys(["evaluation", "optimizer.warmup"])) {
            try TrainingConfiguration.decode(text, format: .toml)
        }
        #expect(
            TrainingConfigurationError.unknownKeys(["optimizer.warmup"]).description
                == "unknown configuration key: optimizer.warmup")
    }

    @Test func missingRequiredKeysAreNamed() {
        let text = minimalTOML.replacingOccurrences(of: "hidden_size = 64\n", with: "")
            .replacingOccurrences(of: "[output]\ndir = \"o\"", with: "")
        #expect(throws: TrainingConfigurationError.missingKeys(["model.hidden_size", "output.dir"])) {
            try TrainingConfiguration.decode(text, format: .toml)
        }
        #expect(
            throws: TrainingConfigurationError.missingKeys([
                "data.dir", "model.context_length", "model.heads", "model.hidden_size", "model.intermediate_size",
                "model.layers", "model.vocab_size", "optimizer.lr", "output.dir", "training.batch_size",
                "training.seq_len", "training.steps",
            ])
        ) { try TrainingConfiguration.decode("{}", format: .json) }
    }

    @Test func malformedFilesReportWhere() {
        do {
            _ = try TrainingConfiguration.decode("[model]\nvocab_size = \n", format: .toml, source: "x.toml")
            Issue.record("accepted broken TOML")
        } catch {
            #expect(error.description.hasPrefix("configuration x.toml is malformed: "))
            #expect(error.description.contains("line 2"))
        }
        #expect(throws: TrainingConfigurationError.self) {
            try TrainingConfiguration.decode("{\"model\": ", format: .json)
        }
        #expect(throws: TrainingConfigurationError.self) {
            try TrainingConfiguration.decode("model: [1, 2\n", format: .yaml)
        }
        #expect(
            throws: TrainingConfigurationError.malformed(
                path: "<text>", reason: "the top level must be a table of sections, not an array")
        ) { try TrainingConfiguration.decode("[1, 2]", format: .json) }
        #expect(throws: TrainingConfigurationError.wrongType(key: "model", expected: "a table", found: "an integer")) {
            try TrainingConfiguration.decode("model = 3", format: .toml)
        }
    }

    @Test func wrongTypesAreNamed() throws {
        let cases: [(String, String, TrainingConfigurationError)] = [
            (
                "layers = 2", "layers = \"two\"",
                .wrongType(key: "model.layers", expected: "an integer", found: "a string (\"two\")")
            ),
            (
                "layers = 2", "layers = 2.5",
                .wrongType(key: "model.layers", expected: "an integer", found: "a number (2.5)")
            ),
            (
                "lr = 0.001", "lr = true",
                .wrongType(key: "optimizer.lr", expected: "a number", found: "a boolean (true)")
            ),
            ("dir = \"d\"", "dir = 5", .wrongType(key: "data.dir", expected: "a string", found: "an integer (5)")),
            (
                "lr = 0.001", "lr = 0.001\nschedule = \"exp\"",
                .wrongType(
                    key: "optimizer.schedule", expected: "one of \"cosine\", \"linear\", \"constant\"", found: "\"exp\""
                )
            ),
            ("lr = 0.001", "lr = inf", .invalidValues(["optimizer.lr must be finite, got inf"])),
        ]
        for (original, replacement, error) in cases {
            let text = minimalTOML.replacingOccurrences(of: original, with: replacement)
            #expect(throws: error) { try TrainingConfiguration.decode(text, format: .toml) }
        }
        // An integer is fine where a number is expected.
        #expect(
            try TrainingConfiguration.decode(
                minimalTOML.replacingOccurrences(of: "lr = 0.001", with: "lr = 1"),
                format: .toml
            ).optimizer.lr == 1)
    }

    @Test func shapesAndRangesAreValidated() {
        func problems(_ edit: (inout TrainingConfiguration) -> Void) -> [String] {
            var config = expected
            edit(&config)
            do {
                try config.validate()
                return []
            } catch {
                guard case .invalidValues(let problems) = error else { return ["unexpected \(error)"] }
                return problems
            }
        }
        #expect(problems { _ in } == [])
        #expect(
            problems {
                $0.model.heads = 7
                $0.model.kvHeads = 7
            } == ["model.hidden_size (576) must be divisible by model.heads (7)"])
        #expect(problems { $0.model.kvHeads = 2 } == ["model.heads (9) must be divisible by model.kv_heads (2)"])
        #expect(
            problems { $0.model.hiddenSize = 9 * 3 } == [
                "the head dimension hidden_size / heads = 3 must be even for RoPE"
            ])
        #expect(
            problems { $0.training.steps = 0 } == [
                "training.steps must be positive, got 0",
                "optimizer.warmup_steps (100) must not exceed training.steps (0)",
            ])
        #expect(
            problems { $0.optimizer.lr = -1 } == [
                "optimizer.lr must be >= 0, got -1.0",
                "optimizer.min_lr must be between 0 and optimizer.lr (-1.0), got 3e-05",
            ])
        #expect(
            problems { $0.training.microBatchSize = 3 } == [
                "training.batch_size (8) must be divisible by training.micro_batch_size (3)"
            ])
        #expect(
            problems { $0.training.seqLen = 4096 } == [
                "training.seq_len (4096) must not exceed model.context_length (2048)"
            ])
        #expect(problems { $0.optimizer.beta2 = 1 } == ["optimizer.beta2 must be in [0, 1), got 1.0"])
        #expect(problems { $0.checkpoint.keepLast = 0 } == ["checkpoint.keep_last must be at least 1, got 0"])
        #expect(problems { $0.training.threads = 0 } == ["training.threads must be between 1 and 1024, got 0"])
        // Several problems are reported together.
        #expect(
            problems {
                $0.model.layers = 0
                $0.eval.batches = 0
            }.count == 2)
        // Through a file, the same message arrives before anything runs.
        let text = minimalTOML.replacingOccurrences(of: "heads = 4", with: "heads = 3")
        #expect(
            throws: TrainingConfigurationError.invalidValues([
                "model.hidden_size (64) must be divisible by model.heads (3)"
            ])
        ) { try TrainingConfiguration.decode(text, format: .toml) }
    }

    @Test func overridesMergeOverTheFile() throws {
        let overrides = try ["training.steps=20", "optimizer.lr = 0.01", "data.dir=123", "model.tie_embeddings=false"]
            .map { text throws(TrainingConfigurationError) in try TrainingConfiguration.Override(parsing: text) }
        let config = try TrainingConfiguration.decode(minimalTOML, format: .toml, overrides: overrides)
        #expect(config.training.steps == 20)
        #expect(config.optimizer.lr == 0.01)
        #expect(config.data.dir == "123")
        #expect(!config.model.tieEmbeddings)
        // Overrides can add a key the file left to its default, and supply a missing required one.
        let withoutDir = minimalTOML.replacingOccurrences(of: "[data]\ndir = \"d\"", with: "")
        let supplied = try TrainingConfiguration.decode(
            withoutDir, format: .toml, overrides: [.init(key: "data.dir", value: .string("x"))])
        #expect(supplied.data.dir == "x")
        // The merge API on a loaded configuration re-validates.
        let merged = try config.applying([try .init(key: "eval.batches", text: "3")])
        #expect(merged.eval.batches == 3 && merged.training.steps == 20)
        #expect(throws: TrainingConfigurationError.invalidValues(["training.steps must be positive, got 0"])) {
            try config.applying([try .init(key: "training.steps", text: "0")])
        }
    }

    @Test func precisionIsFp32UnlessSetToBf16InAnyFormatOrOverride() throws {
        #expect(try TrainingConfiguration.decode(minimalTOML, format: .toml).training.precision == .fp32)
        let toml = minimalTOML.replacingOccurrences(of: "seq_len = 32", with: "seq_len = 32\nprecision = \"bf16\"")
        #expect(try TrainingConfiguration.decode(toml, format: .toml).training.precision == .bf16)
        let json = fullJSON.replacingOccurrences(
            of: "\"threads\": 2}", with: "\"threads\": 2, \"precision\": \"bf16\"}")
        #expect(try TrainingConfiguration.decode(json, format: .json).training.precision == .bf16)
        let yaml = fullYAML.replacingOccurrences(
            of: "seed: 1234, threads: 2}", with: "seed: 1234, threads: 2, precision: bf16}")
        #expect(yaml != fullYAML)
        #expect(try TrainingConfiguration.decode(yaml, format: .yaml).training.precision == .bf16)
        let override = try TrainingConfiguration.Override(parsing: "training.precision=bf16")
        #expect(
            try TrainingConfiguration.decode(minimalTOML, format: .toml, overrides: [override]).training.precision
                == .bf16)
        #expect(TrainingConfiguration.Precision.bf16.productPrecision == .bf16)
        #expect(TrainingConfiguration.Precision.fp32.productPrecision == .native)
        // Anything else is refused, naming the choices.
        #expect(
            throws: TrainingConfigurationError.wrongType(
                key: "training.precision", expected: "one of \"fp32\", \"bf16\"", found: "\"fp16\"")
        ) {
            try TrainingConfiguration.decode(
                minimalTOML.replacingOccurrences(of: "seq_len = 32", with: "seq_len = 32\nprecision = \"fp16\""),
                format: .toml)
        }
        #expect(
            throws: TrainingConfigurationError.wrongType(
                key: "training.precision", expected: "one of \"fp32\", \"bf16\"", found: "an integer (16)")
        ) {
            try TrainingConfiguration.decode(
                minimalTOML.replacingOccurrences(of: "seq_len = 32", with: "seq_len = 32\nprecision = 16"),
                format: .toml)
        }
        #expect(
            throws: TrainingConfigurationError.badOverride(
                "training.precision=BF16", reason: "training.precision must be one of \"fp32\", \"bf16\"")
        ) { try TrainingConfiguration.Override(parsing: "training.precision=BF16") }
    }

    @Test func badOverrides() {
        #expect(throws: TrainingConfigurationError.badOverride("steps", reason: "expected section.key=value")) {
            try TrainingConfiguration.Override(parsing: "steps")
        }
        #expect(
            throws: TrainingConfigurationError.badOverride(
                "training.stepz=3", reason: "unknown configuration key 'training.stepz'")
        ) { try TrainingConfiguration.Override(parsing: "training.stepz=3") }
        #expect(
            throws: TrainingConfigurationError.badOverride(
                "training.steps=many", reason: "training.steps must be an integer")
        ) { try TrainingConfiguration.Override(parsing: "training.steps=many") }
        #expect(
            throws: TrainingConfigurationError.badOverride(
                "model.tie_embeddings=yes", reason: "model.tie_embeddings must be a boolean (true or false)")
        ) { try TrainingConfiguration.Override(parsing: "model.tie_embeddings=yes") }
    }

    @Test func trainingStateRoundTripsThroughJSON() throws {
        let state = TrainingState(
            step: 12, dataPosition: .init(epoch: 3, index: 4), rngState: [.max, 1 << 63, 0], tokensSeen: 9999,
            configuration: expected)
        let data = try JSONEncoder().encode(state)
        #expect(try JSONDecoder().decode(TrainingState.self, from: data) == state)
    }
}
