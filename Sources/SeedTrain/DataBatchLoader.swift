/// A batch of token windows: `tokens` is `[batchSize, sequenceLength + 1]`, row-major. Row `b`'s inputs are its first
/// `sequenceLength` ids and its targets the last `sequenceLength` (the same window shifted by one).
public struct TokenBatch: Sendable, Equatable {
    /// Rows (B).
    public var batchSize: Int
    /// Positions per row that are predicted (T); each row holds T + 1 ids.
    public var sequenceLength: Int
    /// `[batchSize, sequenceLength + 1]` token ids.
    public var tokens: [Int32]

    /// An all-zero batch of the given shape, to be filled by ``TokenBatchLoader/next(into:)``.
    public init(batchSize: Int, sequenceLength: Int) {
        self.batchSize = batchSize
        self.sequenceLength = sequenceLength
        self.tokens = [Int32](repeating: 0, count: batchSize * (sequenceLength + 1))
    }

    /// Row `row`'s T + 1 ids.
    public func window(_ row: Int) -> ArraySlice<Int32> {
        let width = sequenceLength + 1
        return tokens[row * width..<(row + 1) * width]
    }

    /// Row `row`'s inputs: ids `0..<T` of its window.
    public func inputs(_ row: Int) -> ArraySlice<Int32> { window(row).dropLast() }

    /// Row `row`'s targets: ids `1...T` of its window.
    public func targets(_ row: Int) -> ArraySlice<Int32> { window(row).dropFirst() }
}

/// Yields batches of token windows from a ``TokenShardSet`` in a deterministic, seeded order, sliced by rank.
///
/// **Windows.** Each shard of `n` tokens holds `(n - 1) / T` windows of `T + 1` tokens, starting every `T` tokens
/// (consecutive windows share one token, so every token but the shard's tail is a target exactly once per epoch).
/// Windows never cross shards.
///
/// **Order.** With `shuffle`, epoch `e` visits all windows in a Fisher–Yates permutation drawn from SplitMix64
/// seeded with `(seed, e)`; without it, in file order. Every rank computes the same permutation; batch `i` of rank
/// `r` out of `N` takes permutation entries `[(i·N + r)·B, (i·N + r + 1)·B)`, so the ranks' batches partition the
/// epoch (the `W mod (N·B)` windows left over at the end of an epoch are skipped; the next epoch's shuffle differs).
///
/// **Position.** ``Position`` (epoch, batch index) is the whole state: a loader set to a saved position yields exactly
/// the batches that would have followed.
public struct TokenBatchLoader: Sendable {
    /// Where the loader is: the next batch it yields is batch `index` of epoch `epoch`.
    public struct Position: Codable, Sendable, Equatable, Hashable {
        public var epoch: Int
        public var index: Int

        public init(epoch: Int = 0, index: Int = 0) {
            self.epoch = epoch
            self.index = index
        }
    }

    /// The split being read.
    public let shards: TokenShardSet
    /// Rows per batch (B).
    public let batchSize: Int
    /// Predicted positions per row (T).
    public let sequenceLength: Int
    /// This process's rank in `0..<worldSize`.
    public let rank: Int
    /// Number of ranks reading the same data.
    public let worldSize: Int
    /// Seed of the per-epoch shuffle.
    public let seed: UInt64
    /// Whether epochs are shuffled (training) or read in file order (evaluation).
    public let shuffle: Bool
    /// Windows in the split.
    public let windowCount: Int
    /// Batches each rank reads per epoch.
    public let batchesPerEpoch: Int
    /// The next batch to yield.
    public private(set) var position: Position

    /// Cumulative window counts: shard `s` holds windows `windowStarts[s]..<windowStarts[s + 1]`.
    private let windowStarts: [Int]
    private var permutation: [UInt32] = []
    private var permutationEpoch = -1

    /// A loader over `shards`.
    ///
    /// - Throws: ``DataError/invalidOption(option:reason:)`` for non-positive sizes or a rank outside
    ///   `0..<worldSize`; ``DataError/notEnoughData(reason:)`` when the split has fewer windows than one batch for
    ///   every rank.
    public init(
        shards: TokenShardSet, batchSize: Int, sequenceLength: Int, rank: Int = 0, worldSize: Int = 1,
        seed: UInt64 = 0, shuffle: Bool = true, position: Position = Position()
    ) throws(DataError) {
        guard batchSize >= 1 else { throw .invalidOption(option: "batch_size", reason: "must be at least 1") }
        guard sequenceLength >= 1 else { throw .invalidOption(option: "seq_len", reason: "must be at least 1") }
        guard worldSize >= 1, (0..<worldSize).contains(rank) else {
            throw .invalidOption(option: "rank", reason: "rank \(rank) is outside 0..<\(worldSize)")
        }
        var starts = [0]
        for count in shards.shardTokenCounts {
            starts.append(starts.last! + (count >= sequenceLength + 1 ? (count - 1) / sequenceLength : 0))
        }
        let windows = starts.last!
        guard windows <= Int(UInt32.max) else {
            throw .notEnoughData(reason: "\(windows) windows exceed the loader's limit of \(UInt32.max)")
        }
        let perEpoch = windows / (batchSize * worldSize)
        guard perEpoch >= 1 else {
            throw .notEnoughData(
                reason: "the \(shards.split.rawValue) split of \(shards.directory) has \(shards.tokenCount) tokens, "
                    + "\(windows) windows of \(sequenceLength + 1); one batch needs \(batchSize * worldSize) "
                    + "(batch \(batchSize) × \(worldSize) rank\(worldSize == 1 ? "" : "s"))")
        }
        self.shards = shards
        self.batchSize = batchSize
        self.sequenceLength = sequenceLength
        self.rank = rank
        self.worldSize = worldSize
        self.seed = seed
        self.shuffle = shuffle
        self.windowCount = windows
        self.batchesPerEpoch = perEpoch
        self.windowStarts = starts
        self.position = Position()
        try seek(to: position)
    }

    /// Moves to `position` (from a checkpoint).
    ///
    /// - Throws: ``DataError/invalidPosition(reason:)`` if the epoch is negative or the index is not below
    ///   ``batchesPerEpoch`` (a checkpoint from another dataset or batch shape).
    public mutating func seek(to position: Position) throws(DataError) {
        guard position.epoch >= 0, (0..<batchesPerEpoch).contains(position.index) else {
            throw .invalidPosition(
                reason: "epoch \(position.epoch), batch \(position.index) does not fit this loader "
                    + "(\(batchesPerEpoch) batches per epoch); was it saved with another dataset or batch size?")
        }
        self.position = position
    }

    /// Fills `batch` with the batch at ``position`` and advances it (to the next epoch after the last batch).
    /// Reuses `batch`'s storage when its shape matches.
    public mutating func next(into batch: inout TokenBatch) {
        fill(&batch, epoch: position.epoch, index: position.index)
        position.index += 1
        if position.index == batchesPerEpoch {
            position = Position(epoch: position.epoch + 1, index: 0)
        }
    }

    /// The batch at ``position``, advancing it.
    public mutating func next() -> TokenBatch {
        var batch = TokenBatch(batchSize: batchSize, sequenceLength: sequenceLength)
        next(into: &batch)
        return batch
    }

    /// Batch `index` of `epoch` for this rank, without moving ``position`` (evaluation reads the same batches each
    /// time this way).
    ///
    /// - Precondition: `0 <= index < batchesPerEpoch`, `epoch >= 0`.
    public mutating func batch(epoch: Int, index: Int) -> TokenBatch {
        var batch = TokenBatch(batchSize: batchSize, sequenceLength: sequenceLength)
        fill(&batch, epoch: epoch, index: index)
        return batch
    }

    /// The global window indices of batch `index` of `epoch` for this rank (what ``next(into:)`` reads).
    public mutating func windowIndices(epoch: Int, index: Int) -> [Int] {
        precondition(epoch >= 0 && (0..<batchesPerEpoch).contains(index))
        preparePermutation(epoch)
        let first = (index * worldSize + rank) * batchSize
        return (first..<first + batchSize).map { shuffle ? Int(permutation[$0]) : $0 }
    }

    /// Shard and token offset of global window `window`.
    public func windowLocation(_ window: Int) -> (shard: Int, offset: Int) {
        // Binary search for the last shard whose first window is <= window.
        var low = 0
        var high = windowStarts.count - 2
        while low < high {
            let middle = (low + high + 1) / 2
            if windowStarts[middle] <= window { low = middle } else { high = middle - 1 }
        }
        // Skip shards without windows (equal starts).
        while windowStarts[low + 1] <= window { low += 1 }
        return (low, (window - windowStarts[low]) * sequenceLength)
    }

    private mutating func fill(_ batch: inout TokenBatch, epoch: Int, index: Int) {
        precondition(epoch >= 0 && (0..<batchesPerEpoch).contains(index))
        let width = sequenceLength + 1
        if batch.batchSize != batchSize || batch.sequenceLength != sequenceLength
            || batch.tokens.count != batchSize * width
        {
            batch = TokenBatch(batchSize: batchSize, sequenceLength: sequenceLength)
        }
        preparePermutation(epoch)
        let first = (index * worldSize + rank) * batchSize
        batch.tokens.withUnsafeMutableBufferPointer { tokens in
            for row in 0..<batchSize {
                let window = shuffle ? Int(permutation[first + row]) : first + row
                let (shard, offset) = windowLocation(window)
                shards.copyTokens(
                    shard: shard, offset: offset, count: width,
                    into: UnsafeMutableBufferPointer(rebasing: tokens[row * width..<(row + 1) * width]))
            }
        }
    }

    /// Builds the epoch's permutation once (Fisher–Yates, SplitMix64 seeded by seed and epoch).
    private mutating func preparePermutation(_ epoch: Int) {
        guard shuffle, permutationEpoch != epoch else { return }
        if permutation.count != windowCount {
            permutation = (0..<windowCount).map { UInt32($0) }
        } else {
            for index in 0..<windowCount { permutation[index] = UInt32(index) }
        }
        var state = DataHashing.mix(seed ^ 0x5EED_DA7A_0000_0000) &+ DataHashing.mix(UInt64(epoch))
        func nextRandom() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            return DataHashing.mix(state)
        }
        var index = windowCount - 1
        while index > 0 {
            // Unbiased bounded draw (Lemire's method with rejection).
            let bound = UInt64(index + 1)
            var product = nextRandom().multipliedFullWidth(by: bound)
            if product.low < bound {
                let threshold = (0 &- bound) % bound
                while product.low < threshold { product = nextRandom().multipliedFullWidth(by: bound) }
            }
            permutation.swapAt(index, Int(product.high))
            index -= 1
        }
        permutationEpoch = epoch
    }
}
