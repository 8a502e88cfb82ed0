/// One split of a prepared dataset, its shards memory-mapped: random access to token ids.
///
/// Opening checks each shard's size against the manifest and, with `verifyChecksums`, its sha256 (reading every
/// byte once). Immutable after opening, so one instance can be shared by loaders on several threads.
public final class TokenShardSet: Sendable {
    /// The dataset directory.
    public let directory: String
    /// Its manifest.
    public let manifest: DataManifest
    /// Which split this is.
    public let split: DataSplit
    /// Token counts of the shards, in order.
    public let shardTokenCounts: [Int]
    private let files: [MappedDataFile]
    private let dtype: TokenDType

    /// Opens `split` of the dataset in `directory`.
    ///
    /// - Parameters:
    ///   - verifyChecksums: hash every shard and compare with the manifest (slower; catches silent corruption).
    ///   - vocabularySize: the model's vocabulary size; when given, the shards' tokenizer must have exactly this many
    ///     tokens (and every id in the split must be below it).
    ///   - vocabularySHA256: the model tokenizer's vocabulary hash (``DataManifest/TokenizerIdentity``), checked
    ///     when given.
    /// - Throws: ``DataError/badManifest(path:reason:)``, ``DataError/corruptShard(path:reason:)`` (missing file,
    ///   wrong size, checksum mismatch) or ``DataError/tokenizerMismatch(reason:)``.
    public init(
        directory: String, split: DataSplit, verifyChecksums: Bool = true, vocabularySize: Int? = nil,
        vocabularySHA256: String? = nil
    ) throws(DataError) {
        let manifest = try DataManifest.read(directory: directory)
        let identity = manifest.tokenizer
        if let vocabularySize, vocabularySize != identity.vocabSize {
            throw .tokenizerMismatch(
                reason: "the shards in \(directory) were made with \(identity.name) (vocabulary of "
                    + "\(identity.vocabSize) tokens) but the model has a vocabulary of \(vocabularySize); "
                    + "prepare the data with the model's tokenizer")
        }
        if let vocabularySHA256, vocabularySHA256 != identity.vocabularySha256 {
            throw .tokenizerMismatch(
                reason: "the shards in \(directory) were made with \(identity.name), whose vocabulary differs from "
                    + "the model's (sha256 \(identity.vocabularySha256.prefix(12))… vs \(vocabularySHA256.prefix(12))…)"
            )
        }
        let entry = manifest.split(split)
        var files: [MappedDataFile] = []
        for shard in entry.shards {
            let path = directory + "/" + shard.file
            let file: MappedDataFile
            do {
                file = try MappedDataFile(path: path)
            } catch {
                throw .corruptShard(path: path, reason: "cannot open it: \(error.reason)")
            }
            let expected = shard.tokens * manifest.dtype.byteSize
            guard file.size == expected else {
                throw .corruptShard(
                    path: path,
                    reason: "it has \(file.size) bytes, the manifest says \(shard.tokens) \(manifest.dtype.rawValue) "
                        + "tokens (\(expected) bytes)")
            }
            if verifyChecksums {
                let digest: FileDigest
                do {
                    digest = try DataFileSystem.digest(ofFileAt: path)
                } catch {
                    throw .corruptShard(path: path, reason: error.reason)
                }
                guard digest.sha256 == shard.sha256 else {
                    throw .corruptShard(
                        path: path, reason: "sha256 is \(digest.sha256), the manifest says \(shard.sha256)")
                }
            }
            files.append(file)
        }
        self.directory = directory
        self.manifest = manifest
        self.split = split
        self.shardTokenCounts = entry.shards.map(\.tokens)
        self.files = files
        self.dtype = manifest.dtype
    }

    /// Number of shards.
    public var shardCount: Int { files.count }

    /// Tokens in this split.
    public var tokenCount: Int { shardTokenCounts.reduce(0, +) }

    /// Copies `count` ids of shard `shard` starting at `offset` into `destination` (as `Int32`).
    ///
    /// - Precondition: `offset + count <= shardTokenCounts[shard]`, `destination.count >= count` (callers compute
    ///   windows from the counts, so this is not input-dependent).
    public func copyTokens(
        shard: Int, offset: Int, count: Int, into destination: UnsafeMutableBufferPointer<Int32>
    ) {
        precondition(
            offset >= 0 && count >= 0 && offset + count <= shardTokenCounts[shard] && destination.count >= count)
        let base = files[shard].base
        switch dtype {
        case .uint16:
            for index in 0..<count {
                let raw = base.loadUnaligned(fromByteOffset: (offset + index) * 2, as: UInt16.self)
                destination[index] = Int32(UInt16(littleEndian: raw))
            }
        case .uint32:
            for index in 0..<count {
                let raw = base.loadUnaligned(fromByteOffset: (offset + index) * 4, as: UInt32.self)
                destination[index] = Int32(bitPattern: UInt32(littleEndian: raw))
            }
        }
    }

    /// The ids of shard `shard` in `range` (for tests and tools; loaders use ``copyTokens(shard:offset:count:into:)``).
    public func tokens(shard: Int, range: Range<Int>) -> [Int32] {
        [Int32](unsafeUninitializedCapacity: range.count) { buffer, initialized in
            copyTokens(shard: shard, offset: range.lowerBound, count: range.count, into: buffer)
            initialized = range.count
        }
    }
}
