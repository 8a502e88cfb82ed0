import Foundation
import SeedDistributed
import Synchronization
import Testing

/// Deterministic non-integer test values: reductions over them are exact only if done in the same order.
func value(rank: Int, index: Int, salt: Int = 0) -> Float {
    let mixed = (rank &* 7919 &+ index &* 104_729 &+ salt &* 31) % 10_007
    return Float(mixed) / 37.0 - 100.0
}

/// Runs `body` on `worldSize` rank threads and returns each rank's value, failing the test on any rank's error.
func runRanks<R: Sendable>(
    _ worldSize: Int, timeout: Duration = .seconds(30), _ body: @escaping @Sendable (LocalCollective) throws -> R
) throws -> [R] {
    try LocalCollectiveGroup.run(worldSize: worldSize, timeout: timeout, body).map { try $0.get() }
}

@Suite struct CollectivePartitionTests {
    @Test func unevenCountsGiveTheFirstRanksOneMore() {
        let partition = CollectivePartition(totalCount: 10, worldSize: 4)
        #expect((0..<4).map { partition.count(ofRank: $0) } == [3, 3, 2, 2])
        #expect((0..<4).map { partition.range(ofRank: $0) } == [0..<3, 3..<6, 6..<8, 8..<10])
        let small = CollectivePartition(totalCount: 2, worldSize: 4)
        #expect((0..<4).map { small.count(ofRank: $0) } == [1, 1, 0, 0])
        #expect(small.range(ofRank: 3) == 2..<2)
    }

    @Test(arguments: [0, 1, 5, 7, 1000, 1001, 1003])
    func rangesTileTheWholeBuffer(total: Int) {
        for worldSize in 1...5 {
            let partition = CollectivePartition(totalCount: total, worldSize: worldSize)
            var next = 0
            for rank in 0..<worldSize {
                let range = partition.range(ofRank: rank)
                #expect(range.lowerBound == next)
                #expect(range.count == total / worldSize || range.count == total / worldSize + 1)
                next = range.upperBound
            }
            #expect(next == total)
        }
    }
}

@Suite struct LocalCollectiveTests {
    @Test(arguments: 1...4)
    func allReduceSumEqualsNaiveSumInRankOrder(worldSize: Int) throws {
        let count = 1003
        let results = try runRanks(worldSize) { collective in
            var buffer = (0..<count).map { value(rank: collective.rank, index: $0) }
            try collective.allReduce(&buffer, .sum)
            return buffer
        }
        let expected = (0..<count).map { index in
            var sum = value(rank: 0, index: index)
            for rank in 1..<worldSize { sum += value(rank: rank, index: index) }
            return sum
        }
        for (rank, result) in results.enumerated() {
            #expect(result == expected, "rank \(rank) of \(worldSize)")
        }
    }

    @Test(arguments: 1...4)
    func allReduceMaxMinAndOtherTypes(worldSize: Int) throws {
        let results = try runRanks(worldSize) { collective in
            let rank = collective.rank
            var maxima = (0..<257).map { Double(value(rank: rank, index: $0, salt: 1)) }
            try collective.allReduce(&maxima, .max)
            var minima = (0..<257).map { Int32(value(rank: rank, index: $0, salt: 2)) }
            try collective.allReduce(&minima, .min)
            var counters: [UInt64] = [UInt64(rank + 1), UInt64(1) << 40]
            try collective.allReduce(&counters, .sum)
            var bytes = [UInt8](repeating: UInt8(rank), count: 5)
            try collective.allReduce(&bytes, .max)
            return (maxima, minima, counters, bytes)
        }
        let ranks = 0..<worldSize
        let expectedMax = (0..<257).map { i in ranks.map { Double(value(rank: $0, index: i, salt: 1)) }.max()! }
        let expectedMin = (0..<257).map { i in ranks.map { Int32(value(rank: $0, index: i, salt: 2)) }.min()! }
        for result in results {
            #expect(result.0 == expectedMax)
            #expect(result.1 == expectedMin)
            #expect(result.2 == [UInt64(worldSize * (worldSize + 1) / 2), UInt64(worldSize) << 40])
            #expect(result.3 == [UInt8](repeating: UInt8(worldSize - 1), count: 5))
        }
    }

    @Test func integerSumsWrapAroundLikeMPIs() throws {
        let results = try runRanks(2) { collective in
            var bytes: [UInt8] = [collective.rank == 0 ? 200 : 100]
            try collective.allReduce(&bytes, .sum)
            var ints: [Int32] = [collective.rank == 0 ? Int32.max : 1]
            try collective.allReduce(&ints, .sum)
            return (bytes, ints)
        }
        for result in results {
            #expect(result.0 == [44])
            #expect(result.1 == [Int32.min])
        }
    }

    @Test(arguments: 1...4)
    func reduceScatterGivesEachRankItsShardOfTheSum(worldSize: Int) throws {
        for total in [0, 1, 3, 10, 1001] {
            let shards = try runRanks(worldSize) { collective in
                let input = (0..<total).map { value(rank: collective.rank, index: $0) }
                return try collective.reduceScatter(input, .sum)
            }
            let partition = CollectivePartition(totalCount: total, worldSize: worldSize)
            for (rank, shard) in shards.enumerated() {
                #expect(shard.count == partition.count(ofRank: rank), "total \(total), rank \(rank) of \(worldSize)")
                let expected = partition.range(ofRank: rank).map { index in
                    var sum = value(rank: 0, index: index)
                    for other in 1..<worldSize { sum += value(rank: other, index: index) }
                    return sum
                }
                #expect(shard == expected, "total \(total), rank \(rank) of \(worldSize)")
            }
        }
    }

    @Test(arguments: 1...4)
    func allGatherConcatenatesUnevenShardsInRankOrder(worldSize: Int) throws {
        for total in [0, 1, 3, 10, 1001] {
            let partition = CollectivePartition(totalCount: total, worldSize: worldSize)
            let results = try runRanks(worldSize) { collective in
                let shard = partition.range(ofRank: collective.rank).map { Float($0) + 0.25 }
                let gathered = try collective.allGather(shard, totalCount: total)
                // In place: this rank's shard already sits at its range; the rest is garbage before the gather.
                var inPlace = [Double](repeating: .nan, count: total)
                for index in partition.range(ofRank: collective.rank) { inPlace[index] = Double(index) * 2 }
                try inPlace.withUnsafeMutableBufferPointer { buffer in try collective.allGather(inPlace: buffer) }
                return (gathered, inPlace)
            }
            for (rank, result) in results.enumerated() {
                #expect(result.0 == (0..<total).map { Float($0) + 0.25 }, "total \(total), rank \(rank)")
                #expect(result.1 == (0..<total).map { Double($0) * 2 }, "in place, total \(total), rank \(rank)")
            }
        }
    }

    @Test(arguments: 1...4)
    func broadcastCopiesTheRootsBufferToEveryRank(worldSize: Int) throws {
        for root in 0..<worldSize {
            let results = try runRanks(worldSize) { collective in
                var buffer = (0..<100).map { value(rank: collective.rank, index: $0) }
                try collective.broadcast(&buffer, root: root)
                return buffer
            }
            for result in results { #expect(result == (0..<100).map { value(rank: root, index: $0) }) }
        }
    }

    @Test(arguments: 2...4)
    func barrierHoldsEveryRankUntilAllArrive(worldSize: Int) throws {
        final class Counter: Sendable { let arrived = Atomic<Int>(0) }
        let counter = Counter()
        let seen = try runRanks(worldSize) { collective in
            usleep(UInt32(collective.rank * 20_000))  // later ranks arrive later
            counter.arrived.add(1, ordering: .sequentiallyConsistent)
            try collective.barrier()
            return counter.arrived.load(ordering: .sequentiallyConsistent)
        }
        #expect(seen == Array(repeating: worldSize, count: worldSize))
    }

    @Test func startedAllReducesCompleteInAnyWaitOrderAndProgressWithoutWait() throws {
        let worldSize = 3
        let sizes = [5000, 1, 777]
        let results = try runRanks(worldSize) { collective in
            let buffers = sizes.map { UnsafeMutableBufferPointer<Float>.allocate(capacity: $0) }
            defer { for buffer in buffers { buffer.deallocate() } }
            for (bucket, buffer) in buffers.enumerated() {
                for index in buffer.indices { buffer[index] = value(rank: collective.rank, index: index, salt: bucket) }
            }
            let requests = try buffers.map { try collective.startAllReduce($0, .sum) }
            // The last bucket completes by polling `test` alone (its rank thread progresses it).
            let deadline = Date().addingTimeInterval(20)
            while try !requests[2].test() {
                guard Date() < deadline else { throw DistributedError.invalidArgument("test() never became true") }
                usleep(100)
            }
            try requests[1].wait()
            try requests[0].wait()
            return buffers.map { Array($0) }
        }
        for result in results {
            for (bucket, size) in sizes.enumerated() {
                let expected = (0..<size).map { index in
                    var sum = value(rank: 0, index: index, salt: bucket)
                    for rank in 1..<worldSize { sum += value(rank: rank, index: index, salt: bucket) }
                    return sum
                }
                #expect(result[bucket] == expected, "bucket \(bucket)")
            }
        }
    }

    @Test func aRankThatNeverArrivesMakesTheOthersTimeOutNamingTheCollective() throws {
        let timeout = Duration.milliseconds(300)
        let start = Date()
        let results = try LocalCollectiveGroup.run(worldSize: 3, timeout: timeout) { collective -> String in
            if collective.rank == 2 { return "absent" }  // never calls the all-reduce
            var buffer = [Float](repeating: 1, count: 64)
            do {
                try collective.allReduce(&buffer, .sum)
                return "completed"
            } catch {
                // The group is now unusable: a later collective fails at once.
                var more = [Float](repeating: 1, count: 1)
                do throws(DistributedError) {
                    try collective.allReduce(&more)
                } catch .groupFailed {
                    // Shutting down a failed group reports the failure too.
                    do throws(DistributedError) {
                        try collective.shutdown()
                    } catch .groupFailed {
                        return "\(error)"
                    } catch {
                        return "shutdown threw \(error)"
                    }
                    return "shutdown of a failed group succeeded"
                } catch {
                    return "later call threw \(error)"
                }
                return "later call succeeded"
            }
        }
        let elapsed = Date().timeIntervalSince(start)
        let messages = try results.map { try $0.get() }
        #expect(messages[2] == "absent")
        #expect(elapsed >= 0.3 && elapsed < 10, "took \(elapsed) s")
        for message in messages[0..<2] {
            #expect(message.contains("all-reduce (sum) of 64 Float"), "\(message)")
            #expect(message.contains("timed out after 0.3 s"), "\(message)")
        }
    }

    @Test func timedOutErrorNamesTheOperationAndRank() throws {
        let results = try LocalCollectiveGroup.run(worldSize: 2, timeout: .milliseconds(100)) { collective in
            guard collective.rank == 0 else { return Optional<DistributedError>.none }
            var buffer = [Double](repeating: 0, count: 9)
            do throws(DistributedError) {
                try collective.broadcast(&buffer, root: 1)
                return nil
            } catch {
                return error
            }
        }
        let outcome = try results[0].get()
        let error = try #require(outcome)
        guard case .timedOut(let operation, let rank, let worldSize, let seconds) = error else {
            Issue.record("expected a timeout, got \(error)")
            return
        }
        #expect(operation == CollectiveOperation(.broadcast(root: 1), .float64, count: 9))
        #expect(rank == 0 && worldSize == 2 && seconds == 0.1)
        #expect(error.description.hasPrefix("broadcast from rank 1 of 9 Double timed out after 0.1 s on rank 0 of 2"))
    }

    @Test func ranksCallingDifferentCollectivesFailOnEveryRank() throws {
        let results = try LocalCollectiveGroup.run(worldSize: 2, timeout: .seconds(10)) { collective in
            var buffer = [Float](repeating: 1, count: 10 + collective.rank)
            try collective.allReduce(&buffer)
        }
        for result in results {
            let error = #expect(throws: DistributedError.self) { try result.get() }
            guard case .mismatchedCollective(let message) = error else {
                Issue.record("expected a mismatch, got \(String(describing: error))")
                continue
            }
            #expect(message.contains("rank 0: all-reduce (sum) of 10 Float"), "\(message)")
            #expect(message.contains("rank 1: all-reduce (sum) of 11 Float"), "\(message)")
        }
    }

    @Test func badArgumentsAreRefusedBeforeAnyCommunication() throws {
        #expect(throws: DistributedError.self) { try LocalCollectiveGroup(worldSize: 0) }
        #expect(throws: DistributedError.self) { try LocalCollectiveGroup(worldSize: 2, timeout: .zero) }
        let group = try LocalCollectiveGroup(worldSize: 2, timeout: .seconds(5))
        let collective = group.members[0]
        var buffer: [Float] = [1, 2, 3]
        #expect(throws: DistributedError.self) { try collective.broadcast(&buffer, root: 2) }
        #expect(throws: DistributedError.self) { try collective.broadcast(&buffer, root: -1) }
        let input = [Float](repeating: 1, count: 5)  // rank 0 of 2 owns 3
        var output = [Float](repeating: 0, count: 2)
        do {
            try input.withUnsafeBufferPointer { inputBuffer in
                try output.withUnsafeMutableBufferPointer { outputBuffer in
                    try collective.reduceScatter(inputBuffer, into: outputBuffer)
                }
            }
            Issue.record("a wrong-sized reduce-scatter output was accepted")
        } catch let error as DistributedError {
            #expect(error.description.contains("rank 0 of 2 owns 3 elements but its output holds 2"), "\(error)")
        }
        do {
            _ = try collective.allGather([Float](repeating: 0, count: 1), totalCount: 5)
            Issue.record("a wrong-sized all-gather shard was accepted")
        } catch {
            #expect(error.description.contains("owns 3 elements but its shard holds 1"), "\(error)")
        }
        // None of these reached the other rank, so the group still works.
        let results = try runRanks(2) { member in
            var values: [Float] = [Float(member.rank)]
            try member.allReduce(&values)
            return values
        }
        #expect(results == [[1], [1]])
    }
}

@Suite struct SingleProcessCollectiveTests {
    @Test func collectivesOfOneRankLeaveOrCopyTheData() throws {
        let collective = SingleProcessCollective()
        #expect(collective.rank == 0 && collective.worldSize == 1)
        var values: [Float] = [1.5, -2, 3]
        try collective.allReduce(&values, .sum)
        #expect(values == [1.5, -2, 3])
        #expect(try collective.reduceScatter(values) == values)
        #expect(try collective.allGather(values, totalCount: 3) == values)
        try collective.broadcast(&values, root: 0)
        #expect(values == [1.5, -2, 3])
        try collective.barrier()
        #expect(try collective.startAllReduce(UnsafeMutableBufferPointer<Float>(start: nil, count: 0), .sum).test())
        #expect(throws: DistributedError.self) { try collective.broadcast(&values, root: 1) }
        #expect(throws: DistributedError.self) { _ = try collective.allGather(values, totalCount: 4) }
    }
}
