import Foundation
import Logging
import SeedFormats
import Synchronization
import Testing

@testable import SeedTrain

/// Collects log messages so tests can check the warnings.
final class CheckpointLogRecorder: LogHandler, @unchecked Sendable {
    let messages = Mutex<[String]>([])
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        messages.withLock { $0.append("\(event.level): \(event.message)") }
    }
}

func sampleTrainingConfiguration() -> TrainingConfiguration {
    TrainingConfiguration(
        model: .init(
            vocabSize: 257, hiddenSize: 16, intermediateSize: 32, layers: 2, heads: 4, kvHeads: 2, contextLength: 64),
        data: .init(dir: "data"), training: .init(steps: 10, batchSize: 4, microBatchSize: 2, seqLen: 16),
        optimizer: .init(lr: 1e-3, minLr: 1e-4, warmupSteps: 2), output: .init(dir: "run"))
}

private func sampleCheckpointTensors(_ step: Int) -> (
    model: [String: CheckpointTensor], optimizer: [String: CheckpointTensor]
) {
    let embed = CheckpointTensor(shape: [3, 4], values: (0..<12).map { Float($0) * 0.5 + Float(step) })
    let norm = CheckpointTensor(shape: [4], values: [1, -2, .pi, -.infinity])
    let scalar = CheckpointTensor(shape: [], values: [Float(step)])
    return (
        ["embed.weight": embed, "norm.weight": norm, "scale": scalar],
        [
            "embed.weight.m": embed,
            "embed.weight.v": CheckpointTensor(shape: [3, 4], values: Array(repeating: 1e-8, count: 12)),
        ]
    )
}

private func sampleTrainingState(_ step: Int) -> TrainingState {
    TrainingState(
        step: step, dataPosition: .init(epoch: 1, index: step), rngState: [UInt64.max, 0x9E37_79B9_7F4A_7C15, 1],
        tokensSeen: step * 64, configuration: sampleTrainingConfiguration())
}

@Suite struct CheckpointTests {
    func store(_ directory: String, keepLast: Int = 3) -> (CheckpointStore, CheckpointLogRecorder) {
        let handler = CheckpointLogRecorder()
        let logger = Logger(label: "test") { _ in handler }
        return (CheckpointStore(directory: directory, keepLast: keepLast, logger: logger), handler)
    }

    @Test func saveAndLoadRoundTrip() throws {
        let directory = try makeDataTestDirectory()
        let (store, _) = store(directory)
        let (model, optimizer) = sampleCheckpointTensors(7)
        let path = try store.save(step: 7, model: model, optimizer: optimizer, state: sampleTrainingState(7))
        #expect(path == directory + "/checkpoints/step-00000007")
        #expect(
            Set(try FileManager.default.contentsOfDirectory(atPath: path))
                == ["model.safetensors", "optimizer.safetensors", "state.json"])
        let loaded = try store.load(step: 7, as: TrainingState.self)
        #expect(loaded.model == model)
        #expect(loaded.optimizer == optimizer)
        #expect(loaded.state == sampleTrainingState(7))
        #expect(loaded.state.rngState[0] == UInt64.max)
        // state.json records each tensor file's size and sha256, and the files are plain safetensors.
        let record = try JSONDecoder().decode(
            CheckpointRecord<TrainingState>.self, from: Data(contentsOf: URL(fileURLWithPath: path + "/state.json")))
        let modelBytes = try Data(contentsOf: URL(fileURLWithPath: path + "/model.safetensors"))
        #expect(
            record.files["model.safetensors"]
                == .init(bytes: modelBytes.count, sha256: DataFileSystem.sha256Hex(Array(modelBytes))))
        #expect(record.format == "seed-checkpoint" && record.version == 1 && record.step == 7)
        let file = try SafetensorsFile(path: path + "/model.safetensors")
        #expect(file.metadata["seed.step"] == "7")
        #expect(try file.floats(named: "norm.weight") == [1, -2, .pi, -.infinity])
        let json = try String(contentsOfFile: path + "/state.json", encoding: .utf8)
        #expect(json.contains("\"data_position\"") && json.contains("\"rng_state\"") && json.contains("\"vocab_size\""))
        // Nothing temporary is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory + "/checkpoints") == ["step-00000007"])
    }

    @Test func keepsOnlyTheLastK() throws {
        let directory = try makeDataTestDirectory()
        let (store, _) = store(directory, keepLast: 2)
        for step in [10, 20, 30, 40] {
            let (model, optimizer) = sampleCheckpointTensors(step)
            try store.save(step: step, model: model, optimizer: optimizer, state: sampleTrainingState(step))
        }
        #expect(store.steps() == [30, 40])
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: directory + "/checkpoints").sorted()
                == ["step-00000030", "step-00000040"])
        // keep_last = 1 keeps just the newest.
        let (single, _) = self.store(directory, keepLast: 1)
        let (model, optimizer) = sampleCheckpointTensors(50)
        try single.save(step: 50, model: model, optimizer: optimizer, state: sampleTrainingState(50))
        #expect(single.steps() == [50])
    }

    @Test func damagedNewestCheckpointsAreSkippedWithAWarning() throws {
        let directory = try makeDataTestDirectory()
        let (store, log) = store(directory, keepLast: 5)
        for step in [1, 2, 3, 4] {
            let (model, optimizer) = sampleCheckpointTensors(step)
            try store.save(step: step, model: model, optimizer: optimizer, state: sampleTrainingState(step))
        }
        // 4: one flipped bit in the model file; 3: truncated state.json; 2: optimizer file gone.
        let modelPath = store.path(step: 4) + "/model.safetensors"
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: modelPath)))
        bytes[bytes.count - 3] ^= 0x10
        try Data(bytes).write(to: URL(fileURLWithPath: modelPath))
        let statePath = store.path(step: 3) + "/state.json"
        let state = try Data(contentsOf: URL(fileURLWithPath: statePath))
        try state.prefix(state.count / 2).write(to: URL(fileURLWithPath: statePath))
        try FileManager.default.removeItem(atPath: store.path(step: 2) + "/optimizer.safetensors")

        let latest = try #require(store.latestValid(as: TrainingState.self))
        #expect(latest.step == 1)
        #expect(latest.state == sampleTrainingState(1))
        #expect(latest.model == sampleCheckpointTensors(1).model)
        let warnings = log.messages.withLock { $0 }
        #expect(warnings.count == 3)
        #expect(
            warnings[0].hasPrefix(
                "warning: skipping checkpoint: checkpoint \(store.path(step: 4)) is damaged: "
                    + "model.safetensors sha256 is "))
        #expect(warnings[1].contains("step-00000003 is damaged: state.json:"))
        #expect(warnings[2].contains("step-00000002 is damaged: optimizer.safetensors:"))
        // Loading a damaged step directly throws the same reason.
        #expect(throws: CheckpointError.self) { try store.load(step: 4, as: TrainingState.self) }
        #expect(throws: CheckpointError.notFound(path: store.path(step: 9))) {
            try store.load(step: 9, as: TrainingState.self)
        }
    }

    @Test func savingAgainReplacesADamagedCheckpoint() throws {
        let directory = try makeDataTestDirectory()
        let (store, _) = store(directory)
        let (model, optimizer) = sampleCheckpointTensors(5)
        try store.save(step: 5, model: model, optimizer: optimizer, state: sampleTrainingState(5))
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: store.path(step: 5) + "/model.safetensors"))
        #expect(store.latestValid(as: TrainingState.self) == nil)
        try store.save(step: 5, model: model, optimizer: optimizer, state: sampleTrainingState(5))
        #expect(store.latestValid(as: TrainingState.self)?.model == model)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory + "/checkpoints") == ["step-00000005"])
    }

    @Test func leftoversOfAnInterruptedSaveAreIgnoredAndCleaned() throws {
        let directory = try makeDataTestDirectory()
        let (store, log) = store(directory)
        // A crash mid-save leaves a temporary directory; it is not a checkpoint.
        let stale = directory + "/checkpoints/.tmp-step-00000009-abc123"
        try FileManager.default.createDirectory(atPath: stale, withIntermediateDirectories: true)
        try writeDataTestFile(stale, "model.safetensors", "partial")
        #expect(store.steps().isEmpty)
        #expect(store.latestValid(as: TrainingState.self) == nil)
        #expect(log.messages.withLock { $0 }.isEmpty)
        let (model, optimizer) = sampleCheckpointTensors(1)
        try store.save(step: 1, model: model, optimizer: optimizer, state: sampleTrainingState(1))
        #expect(!FileManager.default.fileExists(atPath: stale))
    }

    @Test func badSaveRequests() throws {
        let directory = try makeDataTestDirectory()
        let (store, _) = store(directory)
        let bad = ["w": CheckpointTensor(shape: [2, 3], values: [1, 2, 3])]
        #expect(throws: CheckpointError.invalidInput(reason: "model tensor 'w' has shape [2, 3] but 3 values")) {
            try store.save(step: 1, model: bad, optimizer: [:], state: sampleTrainingState(1))
        }
        #expect(throws: CheckpointError.invalidInput(reason: "step -1 is negative")) {
            try store.save(step: -1, model: [:], optimizer: [:], state: sampleTrainingState(1))
        }
        #expect(!FileManager.default.fileExists(atPath: directory + "/checkpoints/step-00000001"))
        // An unwritable location fails cleanly.
        let file = try writeDataTestFile(directory, "file", "x")
        let (blocked, _) = self.store(file)
        #expect(throws: CheckpointError.self) {
            try blocked.save(step: 1, model: [:], optimizer: [:], state: sampleTrainingState(1))
        }
    }

    @Test func stepNamesAreParsedStrictly() {
        #expect(CheckpointStore.step(fromName: "step-00000042") == 42)
        #expect(CheckpointStore.step(fromName: "step-123456789") == 123_456_789)
        #expect(CheckpointStore.step(fromName: "step-") == nil)
        #expect(CheckpointStore.step(fromName: "step-12a") == nil)
        #expect(CheckpointStore.step(fromName: ".tmp-step-00000001-x") == nil)
    }
}
