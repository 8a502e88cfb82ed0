import Foundation
import Logging
import SeedFormats

/// A float32 tensor as checkpoints store it: `values` row-major with `shape.product` elements.
public struct CheckpointTensor: Sendable, Equatable {
    /// Dimensions, outermost first (`[]` for a scalar).
    public var shape: [Int]
    /// Row-major values.
    public var values: [Float]

    public init(shape: [Int], values: [Float]) {
        self.shape = shape
        self.values = values
    }
}

/// What a training run saves beside its tensors so it can resume exactly.
public struct TrainingState: Codable, Sendable, Equatable {
    /// Optimizer steps completed.
    public var step: Int
    /// The training loader's next batch.
    public var dataPosition: TokenBatchLoader.Position
    /// The trainer's random generator state (opaque words).
    public var rngState: [UInt64]
    /// Training tokens consumed so far.
    public var tokensSeen: Int
    /// The configuration the run was started with.
    public var configuration: TrainingConfiguration

    public init(
        step: Int, dataPosition: TokenBatchLoader.Position, rngState: [UInt64], tokensSeen: Int,
        configuration: TrainingConfiguration
    ) {
        self.step = step
        self.dataPosition = dataPosition
        self.rngState = rngState
        self.tokensSeen = tokensSeen
        self.configuration = configuration
    }

    enum CodingKeys: String, CodingKey {
        case step
        case dataPosition = "data_position"
        case rngState = "rng_state"
        case tokensSeen = "tokens_seen"
        case configuration
    }
}

/// `state.json` of a checkpoint: the checksums of its tensor files and the caller's state.
///
/// ```json
/// {
///   "format": "seed-checkpoint", "version": 1, "step": 200,
///   "files": {
///     "model.safetensors": {"bytes": 1234, "sha256": "…"},
///     "optimizer.safetensors": {"bytes": 2468, "sha256": "…"}
///   },
///   "state": { … the caller's Codable state, e.g. TrainingState … }
/// }
/// ```
public struct CheckpointRecord<State: Codable & Sendable>: Codable, Sendable {
    public var format: String
    public var version: Int
    public var step: Int
    public var files: [String: FileEntry]
    public var state: State

    /// Size and sha256 (lowercase hex) of one file of the checkpoint.
    public struct FileEntry: Codable, Sendable, Equatable {
        public var bytes: Int
        public var sha256: String
    }

    public static var formatName: String { "seed-checkpoint" }
    public static var currentVersion: Int { 1 }
}

/// A checkpoint read back and verified.
public struct LoadedCheckpoint<State: Codable & Sendable>: Sendable {
    /// The step it was saved at.
    public var step: Int
    /// Its directory (`…/checkpoints/step-XXXXXXXX`).
    public var directory: String
    /// The caller's state from `state.json`.
    public var state: State
    /// Model tensors by name.
    public var model: [String: CheckpointTensor]
    /// Optimizer tensors by name.
    public var optimizer: [String: CheckpointTensor]
}

/// Saves and finds training checkpoints under `directory/checkpoints/step-XXXXXXXX/` (step zero-padded to 8 digits).
///
/// Each checkpoint directory holds `model.safetensors`, `optimizer.safetensors` (float32 tensors) and `state.json`
/// (``CheckpointRecord``: sha256 of both tensor files plus the caller's state). A save writes everything into a
/// temporary directory beside the others, `fsync`s every file and the directory, renames it into place and syncs
/// the parent, so a crash leaves either the complete checkpoint or none (a stale `.tmp-*` directory is ignored and
/// removed by the next save). After a save only the newest `keepLast` checkpoints are kept.
public struct CheckpointStore: Sendable {
    /// The run directory.
    public let directory: String
    /// Checkpoints kept after each save.
    public let keepLast: Int
    /// Where warnings about skipped checkpoints go.
    public let logger: Logger

    public static let modelFileName = "model.safetensors"
    public static let optimizerFileName = "optimizer.safetensors"
    public static let stateFileName = "state.json"

    /// A store for the run in `directory` (checkpoints go to `directory/checkpoints`).
    public init(directory: String, keepLast: Int = 3, logger: Logger = Logger(label: "seed.checkpoint")) {
        self.directory = directory
        self.keepLast = max(1, keepLast)
        self.logger = logger
    }

    /// `directory/checkpoints`.
    public var checkpointsDirectory: String { directory + "/checkpoints" }

    /// The directory of the checkpoint at `step`.
    public func path(step: Int) -> String {
        let digits = String(step)
        return checkpointsDirectory + "/step-" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }

    /// Steps of the published checkpoints, ascending (whether or not they verify).
    public func steps() -> [Int] {
        guard let names = try? DataFileSystem.listDirectory(checkpointsDirectory) else { return [] }
        return names.compactMap(Self.step(fromName:)).sorted()
    }

    static func step(fromName name: String) -> Int? {
        guard name.hasPrefix("step-") else { return nil }
        let digits = name.dropFirst(5)
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else { return nil }
        return Int(digits)
    }

    /// Saves a checkpoint atomically and prunes old ones; returns its directory. An existing checkpoint at the same
    /// step (say, a damaged one being redone after a resume) is replaced.
    ///
    /// - Parameters:
    ///   - model: model tensors by name.
    ///   - optimizer: optimizer tensors by name (e.g. `layers.0.attn.q.weight.m`), possibly empty.
    ///   - state: anything `Codable` (usually ``TrainingState``), stored under `state` in `state.json`.
    /// - Throws: ``CheckpointError/invalidInput(reason:)`` for a negative step or a tensor whose shape does not match
    ///   its values; ``CheckpointError/writeFailed(path:reason:)`` (nothing is published then).
    @discardableResult
    public func save<State: Codable & Sendable>(
        step: Int, model: [String: CheckpointTensor], optimizer: [String: CheckpointTensor], state: State
    ) throws(CheckpointError) -> String {
        guard step >= 0 else { throw .invalidInput(reason: "step \(step) is negative") }
        let modelWriter = try Self.safetensors(model, kind: "model", step: step)
        let optimizerWriter = try Self.safetensors(optimizer, kind: "optimizer", step: step)
        let final = path(step: step)
        do {
            try DataFileSystem.createDirectories(checkpointsDirectory)
        } catch {
            throw .writeFailed(path: final, reason: error.reason)
        }
        let temporary: String
        do {
            temporary = try DataFileSystem.makeTemporaryDirectory(
                in: checkpointsDirectory, prefix: ".tmp-" + DataFileSystem.baseName(of: final) + "-")
        } catch {
            throw .writeFailed(path: final, reason: error.reason)
        }
        do throws(CheckpointError) {
            var files: [String: CheckpointRecord<State>.FileEntry] = [:]
            for (name, writer) in [(Self.modelFileName, modelWriter), (Self.optimizerFileName, optimizerWriter)] {
                let filePath = temporary + "/" + name
                do {
                    try writer.write(to: filePath)
                } catch {
                    throw .writeFailed(path: final, reason: error.description)
                }
                do {
                    let digest = try DataFileSystem.digest(ofFileAt: filePath)
                    files[name] = .init(bytes: digest.bytes, sha256: digest.sha256)
                } catch {
                    throw .writeFailed(path: final, reason: error.reason)
                }
            }
            let record = CheckpointRecord(
                format: CheckpointRecord<State>.formatName, version: CheckpointRecord<State>.currentVersion,
                step: step, files: files, state: state)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let json: Data
            do {
                json = try encoder.encode(record)
            } catch {
                throw .invalidInput(reason: "the state cannot be encoded as JSON: \(error)")
            }
            do {
                _ = try DataFileSystem.writeDurably(temporary + "/" + Self.stateFileName, Array(json) + [0x0A])
                try DataFileSystem.syncDirectory(temporary)
                try publish(temporary, as: final)
            } catch {
                throw .writeFailed(path: final, reason: error.reason)
            }
        } catch {
            DataFileSystem.removeTree(temporary)
            throw error
        }
        prune(keeping: final)
        return final
    }

    private static func safetensors(_ tensors: [String: CheckpointTensor], kind: String, step: Int)
        throws(CheckpointError) -> SafetensorsWriter
    {
        var writer = SafetensorsWriter()
        writer.setMetadata("seed.checkpoint", kind)
        writer.setMetadata("seed.step", String(step))
        for (name, tensor) in tensors {
            let count = tensor.shape.reduce(1, *)
            guard tensor.shape.allSatisfy({ $0 >= 0 }), count == tensor.values.count else {
                throw .invalidInput(
                    reason: "\(kind) tensor '\(name)' has shape \(tensor.shape) but \(tensor.values.count) values")
            }
            do {
                try writer.addTensor(name: name, shape: tensor.shape, floats: tensor.values)
            } catch {
                throw .invalidInput(reason: error.description)
            }
        }
        return writer
    }

    /// Renames `temporary` to `final`, moving an existing `final` aside first, and syncs the parent.
    private func publish(_ temporary: String, as final: String) throws(DataFileSystem.Failure) {
        var displaced: String?
        if DataFileSystem.kind(of: final) != .missing {
            let trash = try DataFileSystem.makeTemporaryDirectory(
                in: checkpointsDirectory, prefix: ".trash-" + DataFileSystem.baseName(of: final) + "-")
            try DataFileSystem.rename(final, trash + "/old")
            displaced = trash
        }
        try DataFileSystem.rename(temporary, final)
        try DataFileSystem.syncDirectory(checkpointsDirectory)
        if let displaced { DataFileSystem.removeTree(displaced) }
    }

    /// Deletes all but the newest `keepLast` checkpoints, and leftovers of interrupted saves.
    private func prune(keeping current: String) {
        let all = steps()
        for step in all.dropLast(keepLast) where path(step: step) != current {
            DataFileSystem.removeTree(path(step: step))
        }
        let names = (try? DataFileSystem.listDirectory(checkpointsDirectory)) ?? []
        for name in names where name.hasPrefix(".tmp-") || name.hasPrefix(".trash-") {
            DataFileSystem.removeTree(checkpointsDirectory + "/" + name)
        }
        try? DataFileSystem.syncDirectory(checkpointsDirectory)
    }

    /// Reads and verifies the checkpoint at `step`: both tensor files must match the sizes and sha256 in
    /// `state.json`, and the state must decode as `State`.
    ///
    /// - Throws: ``CheckpointError/notFound(path:)`` or ``CheckpointError/damaged(path:reason:)`` naming the file
    ///   and what failed.
    public func load<State: Codable & Sendable>(step: Int, as type: State.Type = State.self) throws(CheckpointError)
        -> LoadedCheckpoint<State>
    {
        let directory = path(step: step)
        guard DataFileSystem.kind(of: directory) == .directory else { throw .notFound(path: directory) }
        let statePath = directory + "/" + Self.stateFileName
        let bytes: [UInt8]
        do {
            bytes = try DataFileSystem.readFile(statePath)
        } catch {
            throw .damaged(path: directory, reason: "\(Self.stateFileName): \(error.reason)")
        }
        let record: CheckpointRecord<State>
        do {
            record = try JSONDecoder().decode(CheckpointRecord<State>.self, from: Data(bytes))
        } catch {
            throw .damaged(path: directory, reason: "\(Self.stateFileName): \(describeDecodingError(error))")
        }
        guard record.format == CheckpointRecord<State>.formatName,
            record.version == CheckpointRecord<State>.currentVersion
        else {
            throw .damaged(
                path: directory,
                reason: "\(Self.stateFileName) is format '\(record.format)' version \(record.version), expected "
                    + "'\(CheckpointRecord<State>.formatName)' version \(CheckpointRecord<State>.currentVersion)")
        }
        guard record.step == step else {
            throw .damaged(path: directory, reason: "\(Self.stateFileName) says step \(record.step)")
        }
        var tensors: [[String: CheckpointTensor]] = []
        for name in [Self.modelFileName, Self.optimizerFileName] {
            guard let expected = record.files[name] else {
                throw .damaged(path: directory, reason: "\(Self.stateFileName) lists no checksum for \(name)")
            }
            let filePath = directory + "/" + name
            let digest: FileDigest
            do {
                digest = try DataFileSystem.digest(ofFileAt: filePath)
            } catch {
                throw .damaged(path: directory, reason: "\(name): \(error.reason)")
            }
            guard digest.bytes == expected.bytes else {
                throw .damaged(path: directory, reason: "\(name) has \(digest.bytes) bytes, expected \(expected.bytes)")
            }
            guard digest.sha256 == expected.sha256 else {
                throw .damaged(
                    path: directory, reason: "\(name) sha256 is \(digest.sha256), expected \(expected.sha256)")
            }
            do {
                let file = try SafetensorsFile(path: filePath)
                var loaded: [String: CheckpointTensor] = [:]
                for info in file.tensors {
                    loaded[info.name] = CheckpointTensor(shape: info.shape, values: try file.floats(named: info.name))
                }
                tensors.append(loaded)
            } catch {
                throw .damaged(path: directory, reason: "\(name): \(error)")
            }
        }
        return LoadedCheckpoint(
            step: step, directory: directory, state: record.state, model: tensors[0], optimizer: tensors[1])
    }

    /// The newest checkpoint that verifies, or nil if there is none. Damaged ones are skipped with a warning naming
    /// the checkpoint and what failed.
    public func latestValid<State: Codable & Sendable>(as type: State.Type = State.self) -> LoadedCheckpoint<State>? {
        for step in steps().reversed() {
            do {
                return try load(step: step, as: type)
            } catch {
                logger.warning("skipping checkpoint: \(error)")
            }
        }
        return nil
    }
}
