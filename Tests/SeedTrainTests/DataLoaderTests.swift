import Foundation
import Testing

@testable import SeedTrain

/// A dataset whose byte tokens make every window identifiable: 60 documents of 20 distinct-ish bytes each.
private func loaderDataset(shardTokens: Int = 173) throws -> (output: String, manifest: DataManifest) {
    let directory = try makeDataTestDirectory()
    let documents = (0..<60).map { (index: Int) -> String in
        let bytes: [UInt8] = (0..<20).map { (offset: Int) -> UInt8 in UInt8(33 + (index * 7 + offset) % 90) }
        return String(decoding: bytes, as: UTF8.self)
    }
    return try prepareJSONL(documents, in: directory, validationFraction: 0.2, shardTokens: shardTokens)
}

@Suite struct DataLoaderTests {
    @Test func windowsCoverEachShardWithStrideT() throws {
        let (output, manifest) = try loaderDataset()
        let shards = try TokenShardSet(directory: output, split: .train)
        let sequenceLength = 8
        var loader = try TokenBatchLoader(shards: shards, batchSize: 1, sequenceLength: sequenceLength, shuffle: false)
        let expectedWindows = manifest.train.shards.reduce(0) { $0 + ($1.tokens - 1) / sequenceLength }
        #expect(loader.windowCount == expectedWindows)
        #expect(loader.batchesPerEpoch == expectedWindows)
        // In file order, window w of shard s is tokens [w·T, w·T + T] of that shard.
        let tokens = (0..<shards.shardCount).map { shards.tokens(shard: $0, range: 0..<shards.shardTokenCounts[$0]) }
        var expected: [[Int32]] = []
        for shard in tokens where shard.count >= sequenceLength + 1 {
            for start in stride(from: 0, through: shard.count - sequenceLength - 1, by: sequenceLength) {
                expected.append(Array(shard[start...start + sequenceLength]))
            }
        }
        var seen: [[Int32]] = []
        for _ in 0..<loader.batchesPerEpoch { seen.append(Array(loader.next().window(0))) }
        #expect(seen == expected)
        #expect(loader.position == .init(epoch: 1, index: 0))
        let batch = TokenBatch(batchSize: 1, sequenceLength: 3)
        #expect(batch.tokens.count == 4)
        let filled = TokenBatch(batchSize: 1, sequenceLength: 2)
        var copy = filled
        copy.tokens = [5, 6, 7]
        #expect(Array(copy.inputs(0)) == [5, 6] && Array(copy.targets(0)) == [6, 7])
    }

    @Test func shuffledOrderIsDeterministicAndAPermutationPerEpoch() throws {
        let (output, _) = try loaderDataset()
        let shards = try TokenShardSet(directory: output, split: .train)
        func epochs(seed: UInt64) throws -> [[Int]] {
            var loader = try TokenBatchLoader(shards: shards, batchSize: 1, sequenceLength: 8, seed: seed)
            return (0..<3).map { epoch in
                (0..<loader.batchesPerEpoch).flatMap { loader.windowIndices(epoch: epoch, index: $0) }
            }
        }
        let first = try epochs(seed: 7)
        #expect(try epochs(seed: 7) == first)
        #expect(try epochs(seed: 8) != first)
        for order in first { #expect(order.sorted() == Array(0..<order.count)) }
        #expect(first[0] != first[1] && first[1] != first[2])
        #expect(first[0] != Array(0..<first[0].count))
    }

    @Test func resumesExactlyAtArbitraryPositions() throws {
        let (output, _) = try loaderDataset()
        let shards = try TokenShardSet(directory: output, split: .train)
        var reference = try TokenBatchLoader(shards: shards, batchSize: 3, sequenceLength: 5, seed: 42)
        let perEpoch = reference.batchesPerEpoch
        var stream: [(TokenBatchLoader.Position, TokenBatch)] = []
        var batch = TokenBatch(batchSize: 3, sequenceLength: 5)
        for _ in 0..<(perEpoch * 3 + 2) {
            let position = reference.position
            reference.next(into: &batch)
            stream.append((position, batch))
        }
        for start in [0, 1, perEpoch - 1, perEpoch, perEpoch + 3, 2 * perEpoch + 1, stream.count - 1] {
            // The saved position round-trips through JSON, as in a checkpoint.
            let saved = try JSONEncoder().encode(stream[start].0)
            let position = try JSONDecoder().decode(TokenBatchLoader.Position.self, from: saved)
            var resumed = try TokenBatchLoader(
                shards: shards, batchSize: 3, sequenceLength: 5, seed: 42, position: position)
            for offset in start..<stream.count {
                #expect(resumed.position == stream[offset].0)
                #expect(resumed.next() == stream[offset].1, "resumed at \(start), batch \(offset)")
            }
        }
        #expect(
            String(decoding: try JSONEncoder().encode(TokenBatchLoader.Position(epoch: 2, index: 5)), as: UTF8.self)
                .contains("\"epoch\":2"))
    }

    @Test func rankSlicesPartitionEachEpoch() throws {
        let (output, _) = try loaderDataset()
        let shards = try TokenShardSet(directory: output, split: .train)
        for worldSize in [1, 2, 3] {
            var loaders = try (0..<worldSize).map {
                try TokenBatchLoader(
                    shards: shards, batchSize: 2, sequenceLength: 6, rank: $0, worldSize: worldSize, seed: 3)
            }
            let perEpoch = loaders[0].batchesPerEpoch
            #expect(perEpoch == loaders[0].windowCount / (2 * worldSize))
            for epoch in 0..<2 {
                var all: [Int] = []
                for rank in 0..<worldSize {
                    #expect(loaders[rank].batchesPerEpoch == perEpoch)
                    all += (0..<perEpoch).flatMap { loaders[rank].windowIndices(epoch: epoch, index: $0) }
                }
                // Disjoint, and together exactly the epoch's first perEpoch·N·B permuted windows.
                #expect(Set(all).count == all.count)
                #expect(all.count == perEpoch * worldSize * 2)
                var single = try TokenBatchLoader(shards: shards, batchSize: 1, sequenceLength: 6, seed: 3)
                let order = (0..<single.batchesPerEpoch).flatMap { single.windowIndices(epoch: epoch, index: $0) }
                #expect(Set(all) == Set(order.prefix(all.count)))
            }
            // The tokens each rank reads are those windows.
            let batch = loaders[worldSize - 1].next()
            let windows = loaders[worldSize - 1].windowIndices(epoch: 0, index: 0)
            for (row, window) in windows.enumerated() {
                let (shard, offset) = loaders[worldSize - 1].windowLocation(window)
                #expect(Array(batch.window(row)) == shards.tokens(shard: shard, range: offset..<offset + 7))
            }
        }
        #expect(throws: DataError.invalidOption(option: "rank", reason: "rank 2 is outside 0..<2")) {
            try TokenBatchLoader(shards: shards, batchSize: 1, sequenceLength: 4, rank: 2, worldSize: 2)
        }
    }

    @Test func validationLoaderReadsTheValidationSplitInOrder() throws {
        let (output, manifest) = try loaderDataset()
        let validation = try TokenShardSet(directory: output, split: .validation)
        #expect(validation.tokenCount == manifest.validation.tokens)
        #expect(manifest.validation.documents > 0)
        var loader = try TokenBatchLoader(shards: validation, batchSize: 2, sequenceLength: 4, shuffle: false)
        let first = loader.batch(epoch: 0, index: 0)
        #expect(loader.position == .init())
        #expect(Array(first.window(0)) == validation.tokens(shard: 0, range: 0..<5))
        #expect(Array(first.window(1)) == validation.tokens(shard: 0, range: 4..<9))
        #expect(loader.batch(epoch: 3, index: 0) == first)
    }

    @Test func positionsFromElsewhereAreRejected() throws {
        let (output, _) = try loaderDataset()
        let shards = try TokenShardSet(directory: output, split: .train)
        var loader = try TokenBatchLoader(shards: shards, batchSize: 2, sequenceLength: 8)
        #expect(throws: DataError.self) { try loader.seek(to: .init(epoch: 0, index: loader.batchesPerEpoch)) }
        #expect(throws: DataError.self) { try loader.seek(to: .init(epoch: -1, index: 0)) }
        #expect(throws: DataError.self) {
            try TokenBatchLoader(
                shards: shards, batchSize: 2, sequenceLength: 8, position: .init(epoch: 0, index: 10_000))
        }
    }

    @Test func tooLittleDataForOneBatch() throws {
        let (output, _) = try loaderDataset()
        let validation = try TokenShardSet(directory: output, split: .validation)
        do {
            _ = try TokenBatchLoader(shards: validation, batchSize: 64, sequenceLength: 512)
            Issue.record("a batch larger than the split was accepted")
        } catch {
            #expect(error.description.hasPrefix("not enough data: the validation split of \(output) has "))
            #expect(error.description.contains("one batch needs 64 (batch 64 × 1 rank)"))
        }
    }
}

@Suite struct DataShardIntegrityTests {
    @Test func corruptShardIsDetected() throws {
        let (output, manifest) = try loaderDataset()
        let shard = output + "/" + manifest.train.shards[1].file
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: shard)))
        bytes[10] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: shard))
        do {
            _ = try TokenShardSet(directory: output, split: .train)
            Issue.record("a flipped bit went unnoticed")
        } catch {
            guard case .corruptShard(let path, let reason) = error else {
                Issue.record("unexpected error \(error)")
                return
            }
            #expect(path == shard)
            #expect(
                reason.hasPrefix("sha256 is ")
                    && reason.hasSuffix("the manifest says \(manifest.train.shards[1].sha256)"))
        }
        // Without verification it opens (the flip is not a size change).
        _ = try TokenShardSet(directory: output, split: .train, verifyChecksums: false)
        // A truncated shard is caught even without verification.
        try Data(bytes.dropLast(2)).write(to: URL(fileURLWithPath: shard))
        #expect(
            throws: DataError.corruptShard(
                path: shard,
                reason: "it has \(bytes.count - 2) bytes, the manifest says \(manifest.train.shards[1].tokens) uint16 "
                    + "tokens (\(bytes.count) bytes)")
        ) { try TokenShardSet(directory: output, split: .train, verifyChecksums: false) }
        try FileManager.default.removeItem(atPath: shard)
        #expect(throws: DataError.self) { try TokenShardSet(directory: output, split: .train, verifyChecksums: false) }
    }

    @Test func tokenizerMustMatchTheModel() throws {
        let (output, _) = try loaderDataset()
        do {
            _ = try TokenShardSet(directory: output, split: .train, vocabularySize: 49152)
            Issue.record("a vocabulary mismatch went unnoticed")
        } catch {
            #expect(
                error.description.hasPrefix(
                    "tokenizer does not match shards: the shards in \(output) were made "
                        + "with bytes (vocabulary of 257 tokens) but the model has a vocabulary of 49152"))
        }
        #expect(throws: DataError.self) {
            try TokenShardSet(directory: output, split: .train, vocabularySize: 257, vocabularySHA256: "other")
        }
        _ = try TokenShardSet(directory: output, split: .train, vocabularySize: 257, vocabularySHA256: "bytes-0")
    }

    @Test func badManifests() throws {
        let (output, _) = try loaderDataset()
        let path = output + "/manifest.json"
        let original = try String(contentsOfFile: path, encoding: .utf8)
        let cases: [(String, String)] = [
            ("{", "not valid JSON"),
            (
                original.replacingOccurrences(of: "\"version\" : 1", with: "\"version\" : 9"),
                "version 9 is not supported"
            ),
            (original.replacingOccurrences(of: "\"total_tokens\"", with: "\"total\""), "missing key 'total_tokens'"),
            (original.replacingOccurrences(of: "\"seed-token-shards\"", with: "\"other\""), "format is 'other'"),
        ]
        for (contents, message) in cases {
            try writeDataTestFile(output, "manifest.json", contents)
            do {
                _ = try TokenShardSet(directory: output, split: .train)
                Issue.record("accepted a bad manifest (\(message))")
            } catch {
                #expect(error.description.contains(message), "\(error)")
            }
        }
        #expect(throws: DataError.self) { try TokenShardSet(directory: output + "/nope", split: .train) }
    }
}
