import SeedDistributed

/// Every collective on inputs whose reductions are exact (small integers in floating point), compared element by
/// element with a naive computation of what every rank contributed.
struct CollectiveChecks {
    let collective: any Collective
    let largeCount: Int
    private(set) var report: [String] = []
    private(set) var failures = 0
    private(set) var count = 0

    init(collective: any Collective, largeCount: Int) {
        self.collective = collective
        self.largeCount = largeCount
    }

    private var rank: Int { collective.rank }
    private var worldSize: Int { collective.worldSize }

    private mutating func record(_ name: String, _ mismatch: String?) {
        count += 1
        if let mismatch {
            failures += 1
            report.append("\(name): FAILED: \(mismatch)")
        } else {
            report.append("\(name): ok")
        }
    }

    private func firstMismatch<T: Equatable>(_ got: [T], _ expected: [T]) -> String? {
        guard got.count == expected.count else { return "got \(got.count) elements, expected \(expected.count)" }
        guard let index = got.indices.first(where: { got[$0] != expected[$0] }) else { return nil }
        return "element \(index) is \(got[index]), expected \(expected[index])"
    }

    mutating func runAll() throws(DistributedError) {
        let ranks = 0..<worldSize
        let rankSum = ranks.reduce(0) { $0 + $1 + 1 }  // Σ (r + 1)

        // All-reduce, sum, a large odd count of Float.
        var large = (0..<largeCount).map { Float((rank + 1) * ($0 % 1000)) }
        try collective.allReduce(&large, .sum)
        record(
            "all-reduce sum Float x\(largeCount)",
            firstMismatch(large, (0..<largeCount).map { Float(rankSum * ($0 % 1000)) }))

        // All-reduce whose chunks have more segments (1 MiB each) than the ring keeps in flight (8).
        let deep = worldSize * 9 * 262_144 + 3
        var deepBuffer = (0..<deep).map { Float(($0 % 977) * (rank + 1)) }
        try collective.allReduce(&deepBuffer, .sum)
        record(
            "all-reduce sum Float x\(deep)", firstMismatch(deepBuffer, (0..<deep).map { Float(($0 % 977) * rankSum) }))

        // All-reduce, sum, Double.
        var doubles = (0..<4097).map { Double($0) * 0.5 + Double(rank) }
        try collective.allReduce(&doubles, .sum)
        record(
            "all-reduce sum Double x4097",
            firstMismatch(doubles, (0..<4097).map { i in ranks.reduce(0.0) { $0 + Double(i) * 0.5 + Double($1) } }))

        // All-reduce, max and min, Float and Int.
        let maxInput = { (r: Int, i: Int) in Float((i * 7 + r * 13) % 101) }
        var maxima = (0..<10_001).map { maxInput(rank, $0) }
        try collective.allReduce(&maxima, .max)
        record(
            "all-reduce max Float x10001",
            firstMismatch(maxima, (0..<10_001).map { i in ranks.map { maxInput($0, i) }.max()! }))
        var minima = (0..<999).map { ($0 * 31 + rank * 17) % 257 - 100 }
        try collective.allReduce(&minima, .min)
        record(
            "all-reduce min Int x999",
            firstMismatch(minima, (0..<999).map { i in ranks.map { (i * 31 + $0 * 17) % 257 - 100 }.min()! }))

        // All-reduce, sum, Int32 and UInt64.
        var int32s = (0..<513).map { Int32($0 - 256) * Int32(rank + 1) }
        try collective.allReduce(&int32s, .sum)
        record("all-reduce sum Int32 x513", firstMismatch(int32s, (0..<513).map { Int32(($0 - 256) * rankSum) }))
        var counters: [UInt64] = [UInt64(rank + 1) << 40, 1]
        try collective.allReduce(&counters, .sum)
        record("all-reduce sum UInt64 x2", firstMismatch(counters, [UInt64(rankSum) << 40, UInt64(worldSize)]))

        // Reduce-scatter with a count that does not divide evenly.
        for total in [1001, worldSize - 1, 7] where total >= 0 {
            let input = (0..<total).map { Float(rank * 10 + $0 % 17) }
            let shard = try collective.reduceScatter(input, .sum)
            let partition = CollectivePartition(totalCount: total, worldSize: worldSize)
            let expected = partition.range(ofRank: rank).map { i in Float(ranks.reduce(0) { $0 + $1 * 10 + i % 17 }) }
            record("reduce-scatter sum Float x\(total) (shard \(shard.count))", firstMismatch(shard, expected))
        }

        // Shards of several pipeline segments (1 MiB = 262144 Float), with rank 0's one element longer than the
        // others', so neighbours exchange messages of different segment counts.
        let segmented = 2 * 262_144 * worldSize + 1
        let segmentedInput = (0..<segmented).map { Float((rank + 1) * ($0 % 4099)) }
        let segmentedShard = try collective.reduceScatter(segmentedInput, .sum)
        let segmentedPartition = CollectivePartition(totalCount: segmented, worldSize: worldSize)
        record(
            "reduce-scatter sum Float x\(segmented) (shard \(segmentedShard.count))",
            firstMismatch(
                segmentedShard, segmentedPartition.range(ofRank: rank).map { Float(rankSum * ($0 % 4099)) }))
        let gathered = try collective.allGather(
            segmentedPartition.range(ofRank: rank).map { Double($0) - 7 }, totalCount: segmented)
        record("all-gather Double x\(segmented)", firstMismatch(gathered, (0..<segmented).map { Double($0) - 7 }))

        // All-gather with uneven shards, out of place and in place.
        for total in [1001, 3] {
            let partition = CollectivePartition(totalCount: total, worldSize: worldSize)
            let shard = partition.range(ofRank: rank).map { Float($0) * 2 + 1 }
            let whole = try collective.allGather(shard, totalCount: total)
            record("all-gather Float x\(total)", firstMismatch(whole, (0..<total).map { Float($0) * 2 + 1 }))
        }
        var inPlace = [Double](repeating: -1, count: 12_345)
        let mine = CollectivePartition(totalCount: inPlace.count, worldSize: worldSize).range(ofRank: rank)
        for i in mine { inPlace[i] = Double(i) }
        try inPlace.withUnsafeMutableBufferPointer { (buffer) throws(DistributedError) in
            try collective.allGather(inPlace: buffer)
        }
        record("all-gather in place Double x12345", firstMismatch(inPlace, (0..<12_345).map { Double($0) }))

        // Broadcast from the last rank, Double and bytes.
        let root = worldSize - 1
        var broadcastValues = (0..<1_000_000).map { Double(rank == root ? $0 : -1) }
        try collective.broadcast(&broadcastValues, root: root)
        record(
            "broadcast Double x1000000 from rank \(root)",
            firstMismatch(broadcastValues, (0..<1_000_000).map { Double($0) }))
        var bytes = [UInt8](rank == 0 ? Array("seed".utf8) : [0, 0, 0, 0])
        try collective.broadcast(&bytes, root: 0)
        record("broadcast UInt8 x4 from rank 0", firstMismatch(bytes, Array("seed".utf8)))

        // Started all-reduces of three buckets, waited for in reverse order.
        let bucketSizes = [100_000, 33_333, 1]
        var buckets = bucketSizes.map { size in (0..<size).map { Float(rank + 1) + Float($0 % 3) } }
        try withStartedAllReduces(&buckets)
        for (index, size) in bucketSizes.enumerated() {
            let expected = (0..<size).map { Float(rankSum) + Float(worldSize * ($0 % 3)) }
            record("started all-reduce bucket \(index) x\(size)", firstMismatch(buckets[index], expected))
        }

        // Barrier.
        try collective.barrier()
        record("barrier", nil)

        // Bad arguments fail on this rank alone, before any communication.
        do {
            var value: [Float] = [1]
            try collective.broadcast(&value, root: worldSize)
            record("broadcast from a missing root is refused", "no error")
        } catch {
            record("broadcast from a missing root is refused", Self.isInvalidArgument(error) ? nil : "\(error)")
        }
        do {
            var output = [Float](repeating: 0, count: 3)
            let input = [Float](repeating: 1, count: 10 * worldSize)
            try input.withUnsafeBufferPointer { (inputBuffer) throws(DistributedError) in
                try output.withUnsafeMutableBufferPointer { (outputBuffer) throws(DistributedError) in
                    try collective.reduceScatter(inputBuffer, into: outputBuffer)
                }
            }
            record("reduce-scatter into a wrong-sized shard is refused", "no error")
        } catch {
            record(
                "reduce-scatter into a wrong-sized shard is refused", Self.isInvalidArgument(error) ? nil : "\(error)")
        }
        try collective.barrier()
    }

    /// Starts one all-reduce per bucket, then waits for them last to first.
    private func withStartedAllReduces(_ buckets: inout [[Float]]) throws(DistributedError) {
        var requests: [any CollectiveRequest] = []
        var pointers: [UnsafeMutableBufferPointer<Float>] = []
        for index in buckets.indices {
            let pointer = UnsafeMutableBufferPointer<Float>.allocate(capacity: buckets[index].count)
            _ = pointer.initialize(from: buckets[index])
            pointers.append(pointer)
        }
        // On failure the buffers stay allocated: MPI may still write into them.
        for pointer in pointers { requests.append(try collective.startAllReduce(pointer, .sum)) }
        for request in requests.reversed() { try request.wait() }
        for index in buckets.indices {
            buckets[index] = Array(pointers[index])
            pointers[index].deallocate()
        }
    }

    private static func isInvalidArgument(_ error: DistributedError) -> Bool {
        if case .invalidArgument = error { return true }
        return false
    }
}
