import Foundation
import SeedTensor

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What `seed data prepare` does, as options.
public struct DatasetPreparationOptions: Sendable {
    /// Input files or directories (see ``DocumentFormat`` for how files become documents).
    public var inputs: [String]
    /// The dataset directory to create.
    public var output: String
    /// Fraction of documents, chosen by a seeded hash of their text, that go to the validation split (`0..<1`).
    public var validationFraction: Double = 0.01
    /// Maximum tokens per shard file.
    public var shardTokens: Int = 1 << 26
    /// How inputs are cut into documents.
    public var format: DocumentFormat = .auto
    /// The JSONL field holding each document's text.
    public var jsonlField: String = "text"
    /// Seed of the split hash.
    public var splitSeed: UInt64 = 0
    /// Tokenisation threads (nil: all CPUs).
    public var threads: Int?

    public init(inputs: [String], output: String) {
        self.inputs = inputs
        self.output = output
    }

    /// Checks ranges; option names are the CLI's.
    public func validate() throws(DataError) {
        guard validationFraction.isFinite, validationFraction >= 0, validationFraction < 1 else {
            throw .invalidOption(
                option: "--validation-fraction", reason: "must be at least 0 and below 1, got \(validationFraction)")
        }
        guard shardTokens >= 1 else {
            throw .invalidOption(option: "--shard-tokens", reason: "must be at least 1, got \(shardTokens)")
        }
        guard !jsonlField.isEmpty else { throw .invalidOption(option: "--jsonl-field", reason: "must not be empty") }
        if let threads, !(1...1024).contains(threads) {
            throw .invalidOption(option: "--threads", reason: "must be between 1 and 1024, got \(threads)")
        }
        guard !output.isEmpty else { throw .invalidOption(option: "--output", reason: "must not be empty") }
    }
}

/// The outcome of ``DatasetPreparer/prepare(tokenizer:options:progress:)``.
public struct DatasetPreparationResult: Sendable {
    /// The manifest now in the output directory.
    public var manifest: DataManifest
    /// True when the output already held exactly this dataset and nothing was written.
    public var unchanged: Bool
}

/// Tokenises text corpora into token shards plus `manifest.json` (see ``DataManifest``).
///
/// Two passes: the first reads every input, checks it (UTF-8, JSONL syntax, non-empty), hashes it and decides each
/// document's split, all before anything is written; the second tokenises (in parallel over documents) and streams
/// the ids into shards. Everything is written into a temporary directory beside the output, each file `fsync`ed, and
/// the directory renamed into place, so the output is either the complete dataset or absent.
///
/// Split: a document goes to validation when its seeded hash (``DataHashing/document(_:seed:)``), read as a
/// fraction of 2⁶⁴, is below `validationFraction`. With a positive fraction and at least two documents, each split
/// gets at least one document (the smallest hash moves to validation, or the largest to train).
public enum DatasetPreparer {
    /// Prepares the dataset; returns its manifest.
    ///
    /// - Parameter progress: called with one line per stage (for standard error).
    /// - Throws: ``DataError`` for bad options or inputs, an output directory holding something else, or a write
    ///   failure (the output is then untouched).
    public static func prepare(
        tokenizer: DatasetTokenizer, options: DatasetPreparationOptions, progress: (String) -> Void = { _ in }
    ) throws(DataError) -> DatasetPreparationResult {
        try options.validate()
        let files = try DocumentFile.expandInputs(options.inputs)

        // Pass 1: read and check every input; hash documents for the split.
        var sources: [DataManifest.Source] = []
        var hashes: [UInt64] = []
        for path in files {
            let file = try DocumentFile(path: path, format: options.format, jsonlField: options.jsonlField)
            sources.append(
                DataManifest.Source(
                    path: path, format: file.format.rawValue, bytes: file.digest.bytes, sha256: file.digest.sha256,
                    documents: file.documents.count))
            for document in file.documents { hashes.append(DataHashing.document(document, seed: options.splitSeed)) }
        }
        let inValidation = splitDecisions(hashes, fraction: options.validationFraction)
        let validationDocuments = inValidation.lazy.filter { $0 }.count
        progress(
            "read \(files.count) input file\(files.count == 1 ? "" : "s"): \(hashes.count) documents "
                + "(\(hashes.count - validationDocuments) train, \(validationDocuments) validation)")
        if options.validationFraction > 0 && validationDocuments == 0 {
            progress(
                "note: the validation split is empty: the split is by document and there is only one "
                    + "(a plain-text file is one document; use several files, fortunes or JSONL to get a validation split)"
            )
        }

        let recipe = DataManifest(
            format: DataManifest.formatName, version: DataManifest.currentVersion, tokenizer: tokenizer.identity,
            dtype: .fitting(vocabularySize: tokenizer.vocabularySize),
            options: DataManifest.Options(
                validationFraction: options.validationFraction, splitSeed: options.splitSeed,
                shardTokens: options.shardTokens, jsonlField: options.jsonlField),
            sources: sources,
            train: DataManifest.Split(documents: 0, tokens: 0, maxTokenId: -1, shards: []),
            validation: DataManifest.Split(documents: 0, tokens: 0, maxTokenId: -1, shards: []), totalTokens: 0)
        if let existing = try existingDataset(at: options.output, recipe: recipe) {
            progress("\(options.output) already holds this dataset; nothing to do")
            return DatasetPreparationResult(manifest: existing, unchanged: true)
        }

        // Pass 2: tokenise into shards inside a temporary directory.
        let output = options.output
        let parent = DataFileSystem.parent(of: output)
        do {
            try DataFileSystem.createDirectories(parent)
        } catch {
            throw .writeFailed(path: output, reason: error.reason)
        }
        let temporary: String
        do {
            temporary = try DataFileSystem.makeTemporaryDirectory(
                in: parent, prefix: "." + DataFileSystem.baseName(of: output) + ".tmp-")
        } catch {
            throw .writeFailed(path: output, reason: error.reason)
        }
        do throws(DataError) {
            let manifest = try writeShards(
                into: temporary, files: files, sources: sources, inValidation: inValidation, recipe: recipe,
                tokenizer: tokenizer, options: options, progress: progress)
            try publish(temporary, as: output, manifest: manifest)
            progress(
                "wrote \(output): train \(manifest.train.tokens) tokens in \(manifest.train.shards.count) shard(s), "
                    + "validation \(manifest.validation.tokens) tokens in \(manifest.validation.shards.count) shard(s)")
            return DatasetPreparationResult(manifest: manifest, unchanged: false)
        } catch {
            DataFileSystem.removeTree(temporary)
            throw error
        }
    }

    /// `true` for each document that goes to validation.
    static func splitDecisions(_ hashes: [UInt64], fraction: Double) -> [Bool] {
        guard fraction > 0 else { return [Bool](repeating: false, count: hashes.count) }
        // hash < fraction * 2^64, computed without overflow.
        let threshold = fraction >= 1 ? UInt64.max : UInt64(fraction * 0x1p64)
        var decisions = hashes.map { $0 < threshold }
        guard hashes.count >= 2 else { return decisions }
        if !decisions.contains(true), let smallest = hashes.indices.min(by: { hashes[$0] < hashes[$1] }) {
            decisions[smallest] = true
        }
        if !decisions.contains(false), let largest = hashes.indices.max(by: { hashes[$0] < hashes[$1] }) {
            decisions[largest] = false
        }
        return decisions
    }

    /// The dataset already at `path` if it matches `recipe`; nil if `path` is absent or an empty directory.
    ///
    /// - Throws: ``DataError/outputConflict(path:reason:)`` if `path` holds anything else.
    static func existingDataset(at path: String, recipe: DataManifest) throws(DataError) -> DataManifest? {
        switch DataFileSystem.kind(of: path) {
        case .missing: return nil
        case .file, .other: throw .outputConflict(path: path, reason: "exists and is not a directory")
        case .directory: break
        }
        let names: [String]
        do {
            names = try DataFileSystem.listDirectory(path)
        } catch {
            throw .outputConflict(path: path, reason: "cannot be read: \(error.reason)")
        }
        if names.isEmpty { return nil }
        guard names.contains(DataManifest.fileName) else {
            throw .outputConflict(
                path: path, reason: "is not empty and holds no dataset manifest; choose an empty or new directory")
        }
        let existing: DataManifest
        do {
            existing = try DataManifest.read(directory: path)
        } catch {
            throw .outputConflict(path: path, reason: "holds an unreadable dataset (\(error)); remove it first")
        }
        var differences: [String] = []
        if existing.tokenizer != recipe.tokenizer { differences.append("tokenizer") }
        if existing.options != recipe.options { differences.append("options") }
        let contents = { (sources: [DataManifest.Source]) in sources.map { [$0.format, $0.sha256, "\($0.bytes)"] } }
        if contents(existing.sources) != contents(recipe.sources) { differences.append("inputs") }
        guard differences.isEmpty else {
            throw .outputConflict(
                path: path,
                reason: "already holds a different dataset (other \(differences.joined(separator: ", "))); "
                    + "remove it or choose another directory")
        }
        for split in [existing.train, existing.validation] {
            for shard in split.shards {
                let file = path + "/" + shard.file
                var info = stat()
                guard stat(file, &info) == 0, Int(info.st_size) == shard.tokens * existing.dtype.byteSize else {
                    throw .outputConflict(
                        path: path,
                        reason: "holds this dataset but shard \(shard.file) is missing or damaged; remove it")
                }
            }
        }
        return existing
    }

    private static func writeShards(
        into directory: String, files: [String], sources: [DataManifest.Source], inValidation: [Bool],
        recipe: DataManifest, tokenizer: DatasetTokenizer, options: DatasetPreparationOptions,
        progress: (String) -> Void
    ) throws(DataError) -> DataManifest {
        let pool = options.threads.map { WorkerPool(threads: $0) } ?? WorkerPool.shared
        let train = ShardSink(
            directory: directory, prefix: "train", dtype: recipe.dtype, shardTokens: options.shardTokens)
        let validation = ShardSink(
            directory: directory, prefix: "validation", dtype: recipe.dtype, shardTokens: options.shardTokens)
        let vocabularySize = tokenizer.vocabularySize
        let endOfText = tokenizer.endOfTextID
        var documentIndex = 0
        let chunkSize = 1024
        for (fileIndex, path) in files.enumerated() {
            let file = try DocumentFile(path: path, format: options.format, jsonlField: options.jsonlField)
            guard file.digest.sha256 == sources[fileIndex].sha256 else { throw .inputChanged(path: path) }
            let documents = file.documents
            var encoded = [[Int]](repeating: [], count: min(chunkSize, documents.count))
            var tokensInFile = 0
            var start = 0
            while start < documents.count {
                let count = min(chunkSize, documents.count - start)
                encoded.withUnsafeMutableBufferPointer { slots in
                    pool.parallelFor(count) { index in slots[index] = tokenizer.encode(documents[start + index]) }
                }
                for index in 0..<count {
                    let ids = encoded[index]
                    for id in ids where id < 0 || id >= vocabularySize {
                        throw .tokenizer(reason: "produced id \(id), outside the vocabulary of \(vocabularySize)")
                    }
                    let sink = inValidation[documentIndex] ? validation : train
                    try sink.append(ids)
                    try sink.append([endOfText])
                    sink.documents += 1
                    tokensInFile += ids.count + 1
                    documentIndex += 1
                }
                start += count
            }
            progress(
                "tokenised \(path) (\(file.format.rawValue)): \(documents.count) documents, \(tokensInFile) tokens")
        }
        var manifest = recipe
        manifest.train = try train.finish()
        manifest.validation = try validation.finish()
        manifest.totalTokens = manifest.train.tokens + manifest.validation.tokens
        guard manifest.train.tokens > 0 else {
            throw .notEnoughData(reason: "the training split is empty (lower --validation-fraction)")
        }
        do {
            _ = try DataFileSystem.writeDurably(directory + "/" + DataManifest.fileName, manifest.encoded())
        } catch {
            throw .writeFailed(path: directory + "/" + DataManifest.fileName, reason: error.reason)
        }
        return manifest
    }

    /// Renames the finished temporary directory to `output` (replacing an empty directory) and syncs both levels.
    private static func publish(_ temporary: String, as output: String, manifest: DataManifest) throws(DataError) {
        do throws(DataFileSystem.Failure) {
            try DataFileSystem.syncDirectory(temporary)
            if DataFileSystem.kind(of: output) == .directory {
                guard rmdir(output) == 0 else {
                    throw DataFileSystem.Failure(reason: "cannot replace \(output): \(DataFileSystem.lastError())")
                }
            }
            try DataFileSystem.rename(temporary, output)
            try DataFileSystem.syncDirectory(DataFileSystem.parent(of: output))
        } catch {
            throw .writeFailed(path: output, reason: error.reason)
        }
    }
}

/// Streams one split's token ids into numbered shard files.
private final class ShardSink {
    let directory: String
    let prefix: String
    let dtype: TokenDType
    let shardTokens: Int
    var documents = 0
    private var shards: [DataManifest.Shard] = []
    private var writer: DurableFileWriter?
    private var tokensInShard = 0
    private var totalTokens = 0
    private var maxTokenID = -1
    private var staging: [UInt8] = []
    private static let stagingBytes = 1 << 20

    init(directory: String, prefix: String, dtype: TokenDType, shardTokens: Int) {
        self.directory = directory
        self.prefix = prefix
        self.dtype = dtype
        self.shardTokens = shardTokens
        staging.reserveCapacity(Self.stagingBytes + 8)
    }

    private var currentName: String {
        let number = String(shards.count)
        return prefix + "-" + String(repeating: "0", count: max(0, 5 - number.count)) + number + ".bin"
    }

    func append(_ ids: [Int]) throws(DataError) {
        for id in ids {
            if writer == nil {
                do {
                    writer = try DurableFileWriter(path: directory + "/" + currentName)
                } catch {
                    throw .writeFailed(path: directory + "/" + currentName, reason: error.reason)
                }
            }
            if dtype == .uint16 {
                let value = UInt16(id)
                staging.append(UInt8(truncatingIfNeeded: value))
                staging.append(UInt8(truncatingIfNeeded: value >> 8))
            } else {
                let value = UInt32(id)
                for shift in stride(from: 0, to: 32, by: 8) {
                    staging.append(UInt8(truncatingIfNeeded: value >> shift))
                }
            }
            maxTokenID = max(maxTokenID, id)
            tokensInShard += 1
            totalTokens += 1
            if staging.count >= Self.stagingBytes { try flush() }
            if tokensInShard == shardTokens { try closeShard() }
        }
    }

    private func flush() throws(DataError) {
        guard let writer, !staging.isEmpty else { return }
        do {
            try writer.write(staging)
        } catch {
            throw .writeFailed(path: writer.path, reason: error.reason)
        }
        staging.removeAll(keepingCapacity: true)
    }

    private func closeShard() throws(DataError) {
        guard let current = writer else { return }
        try flush()
        let digest: FileDigest
        do {
            digest = try current.finish()
        } catch {
            throw .writeFailed(path: current.path, reason: error.reason)
        }
        shards.append(DataManifest.Shard(file: currentName, tokens: tokensInShard, sha256: digest.sha256))
        writer = nil
        tokensInShard = 0
    }

    func finish() throws(DataError) -> DataManifest.Split {
        try closeShard()
        return DataManifest.Split(documents: documents, tokens: totalTokens, maxTokenId: maxTokenID, shards: shards)
    }
}
