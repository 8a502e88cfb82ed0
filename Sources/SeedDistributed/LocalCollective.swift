import Foundation

/// `worldSize` ranks in one process, one thread each, sharing memory: the backend unit tests use to exercise
/// distributed code (gradient all-reduce, sharded optimizers) without MPI.
///
/// Each collective is a rendezvous: every rank publishes its buffers, then each rank computes its own part of the
/// result straight from the other ranks' memory, then all meet again before any returns. Reductions add in rank
/// order (rank 0 first), so results are deterministic and equal a naive loop over ranks. The group also checks what
/// MPI cannot: that every rank called the same collective with the same count, type and root.
///
/// Usage: `LocalCollectiveGroup.run(worldSize: 4) { collective in ... }` runs a body once per rank on its own
/// thread; or create a group and hand `members[rank]` to threads you start yourself.
public final class LocalCollectiveGroup: Sendable {
    /// Number of ranks.
    public let worldSize: Int
    /// Longest a collective may wait for the other ranks.
    public let timeout: Duration
    /// One collective per rank; `members[r].rank == r`.
    public let members: [LocalCollective]

    /// A group of `worldSize` (at least 1) ranks.
    public init(worldSize: Int, timeout: Duration = .seconds(60)) throws(DistributedError) {
        guard worldSize >= 1 else { throw .invalidArgument("a local group needs at least one rank, not \(worldSize)") }
        guard timeout > .zero else { throw .invalidArgument("collective timeout must be positive, not \(timeout)") }
        self.worldSize = worldSize
        self.timeout = timeout
        let rendezvous = Rendezvous(worldSize: worldSize, timeout: timeout)
        members = (0..<worldSize).map { LocalCollective(rank: $0, rendezvous: rendezvous) }
    }

    /// Runs `body` once per rank, each on its own thread, and returns the results in rank order.
    public static func run<R: Sendable>(
        worldSize: Int, timeout: Duration = .seconds(60),
        _ body: @escaping @Sendable (LocalCollective) throws -> R
    ) throws(DistributedError) -> [Result<R, any Error>] {
        let group = try LocalCollectiveGroup(worldSize: worldSize, timeout: timeout)
        let results = ResultSlots<R>(count: worldSize)
        let threads = group.members.map { member in
            Thread {
                let result = Result { try body(member) }
                results.set(member.rank, result)
            }
        }
        for thread in threads {
            thread.stackSize = 8 << 20
            thread.start()
        }
        return results.waitForAll()
    }
}

/// One rank of a `LocalCollectiveGroup`. Collectives run in start order on this rank's own communication thread,
/// so started requests progress while the caller computes, as with MPI.
public final class LocalCollective: Collective {
    public let rank: Int
    public var worldSize: Int { rendezvous.worldSize }
    public var timeout: Duration { rendezvous.timeout }

    private let rendezvous: Rendezvous
    private let worker: RankWorker

    init(rank: Int, rendezvous: Rendezvous) {
        self.rank = rank
        self.rendezvous = rendezvous
        self.worker = RankWorker(rank: rank)
    }

    deinit {
        worker.shutdown()
    }

    public func startAllReduce<T: CollectiveElement>(
        _ buffer: UnsafeMutableBufferPointer<T>, _ operation: ReduceOperation
    ) throws(DistributedError) -> any CollectiveRequest {
        let description = CollectiveOperation(.allReduce(operation), T.collectiveType, count: buffer.count)
        try CollectiveValidation.checkCount(buffer.count, description)
        return try submit(description, input: nil, output: UnsafeMutableRawPointer(buffer.baseAddress))
    }

    public func startReduceScatter<T: CollectiveElement>(
        _ input: UnsafeBufferPointer<T>, into output: UnsafeMutableBufferPointer<T>, _ operation: ReduceOperation
    ) throws(DistributedError) -> any CollectiveRequest {
        let description = CollectiveOperation(.reduceScatter(operation), T.collectiveType, count: input.count)
        try CollectiveValidation.reduceScatter(
            inputCount: input.count, outputCount: output.count, rank: rank, worldSize: worldSize, description)
        return try submit(
            description, input: UnsafeRawPointer(input.baseAddress), output: UnsafeMutableRawPointer(output.baseAddress)
        )
    }

    public func startAllGather<T: CollectiveElement>(
        _ shard: UnsafeBufferPointer<T>?, into output: UnsafeMutableBufferPointer<T>
    ) throws(DistributedError) -> any CollectiveRequest {
        let description = CollectiveOperation(.allGather, T.collectiveType, count: output.count)
        try CollectiveValidation.allGather(
            shardCount: shard?.count, outputCount: output.count, rank: rank, worldSize: worldSize, description)
        var source = UnsafeRawPointer(shard?.baseAddress)
        if shard == nil, let base = output.baseAddress {
            let offset = CollectivePartition(totalCount: output.count, worldSize: worldSize).offset(ofRank: rank)
            source = UnsafeRawPointer(base + offset)
        }
        return try submit(description, input: source, output: UnsafeMutableRawPointer(output.baseAddress))
    }

    public func startBroadcast<T: CollectiveElement>(
        _ buffer: UnsafeMutableBufferPointer<T>, root: Int
    ) throws(DistributedError) -> any CollectiveRequest {
        let description = CollectiveOperation(.broadcast(root: root), T.collectiveType, count: buffer.count)
        try CollectiveValidation.root(root, worldSize: worldSize, description)
        try CollectiveValidation.checkCount(buffer.count, description)
        return try submit(description, input: nil, output: UnsafeMutableRawPointer(buffer.baseAddress))
    }

    public func startBarrier() throws(DistributedError) -> any CollectiveRequest {
        try submit(CollectiveOperation(.barrier, .uint8, count: 0), input: nil, output: nil)
    }

    /// Throws if the group has failed (as an MPI group would); the rank's thread ends when this object goes away.
    public func shutdown() throws(DistributedError) {
        if let reason = rendezvous.failureReason { throw .groupFailed(rank: rank, reason: reason) }
    }

    private func submit(
        _ operation: CollectiveOperation, input: UnsafeRawPointer?, output: UnsafeMutableRawPointer?
    ) throws(DistributedError) -> LocalRequest {
        if let reason = rendezvous.failureReason { throw .groupFailed(rank: rank, reason: reason) }
        let arrival = Rendezvous.Arrival(operation: operation, input: input, output: output)
        let request = LocalRequest(operation: operation, rank: rank, rendezvous: rendezvous, arrival: arrival)
        worker.enqueue(request)
        return request
    }
}

/// A collective queued on a rank's communication thread.
final class LocalRequest: CollectiveRequest, @unchecked Sendable {
    // @unchecked Sendable: `arrival` holds raw pointers the caller promised to keep valid until completion; it is
    // read only by the rank's worker thread. `outcome` is guarded by `condition`.
    let operation: CollectiveOperation
    let rank: Int
    let rendezvous: Rendezvous
    let arrival: Rendezvous.Arrival
    private let condition = MonotonicCondition()
    private var outcome: Result<Void, DistributedError>?

    init(operation: CollectiveOperation, rank: Int, rendezvous: Rendezvous, arrival: Rendezvous.Arrival) {
        self.operation = operation
        self.rank = rank
        self.rendezvous = rendezvous
        self.arrival = arrival
    }

    /// Runs the collective (on the worker thread) and records how it ended.
    func execute() {
        let result: Result<Void, DistributedError>
        do throws(DistributedError) {
            try rendezvous.perform(rank: rank, arrival)
            result = .success(())
        } catch {
            result = .failure(error)
        }
        condition.withLock {
            outcome = result
            condition.broadcast()
        }
    }

    func test() throws(DistributedError) -> Bool {
        let current = condition.withLock { outcome }
        guard let current else { return false }
        try current.get()
        return true
    }

    func wait() throws(DistributedError) {
        let deadline = monotonicNanoseconds() &+ rendezvous.timeout.clampedNanoseconds
        condition.lock()
        while outcome == nil {
            if !condition.wait(untilNanoseconds: deadline), outcome == nil {
                condition.unlock()
                let error = DistributedError.timedOut(
                    operation: operation, rank: rank, worldSize: rendezvous.worldSize,
                    seconds: rendezvous.timeout.seconds)
                rendezvous.fail(error.description)
                throw error
            }
        }
        let result = outcome!
        condition.unlock()
        try result.get()
    }
}

/// A rank's communication thread: runs its requests one after another, in start order.
final class RankWorker: @unchecked Sendable {
    // @unchecked Sendable: `queue` and `stopping` are guarded by `condition`.
    private let condition = MonotonicCondition()
    private var queue: [LocalRequest] = []
    private var queueHead = 0
    private var stopping = false

    init(rank: Int) {
        let thread = Thread { [self] in run() }
        thread.name = "seed-local-collective-\(rank)"
        thread.start()
    }

    func enqueue(_ request: LocalRequest) {
        condition.withLock {
            queue.append(request)
            condition.broadcast()
        }
    }

    func shutdown() {
        condition.withLock {
            stopping = true
            condition.broadcast()
        }
    }

    private func run() {
        while true {
            condition.lock()
            while queueHead == queue.count && !stopping { condition.wait() }
            if queueHead == queue.count {
                condition.unlock()
                return
            }
            let request = queue[queueHead]
            queueHead += 1
            if queueHead == queue.count {
                queue.removeAll(keepingCapacity: true)
                queueHead = 0
            }
            condition.unlock()
            request.execute()
        }
    }
}

/// Where the ranks of a local group meet: a generation-counted barrier that also exchanges buffer pointers.
final class Rendezvous: @unchecked Sendable {
    // @unchecked Sendable: every stored property except the immutable ones is guarded by `condition`; the raw
    // pointers in `Arrival` are only dereferenced between the two meetings of a collective, while their owners
    // are blocked inside it.

    /// What one rank brings to a collective.
    struct Arrival {
        var operation: CollectiveOperation
        var input: UnsafeRawPointer?
        var output: UnsafeMutableRawPointer?
    }

    let worldSize: Int
    let timeout: Duration
    private let condition = MonotonicCondition()
    private var arrivals: [Arrival?]
    private var snapshot: [Arrival] = []
    private var arrivedCount = 0
    private var generation = 0
    private var failure: String?

    init(worldSize: Int, timeout: Duration) {
        self.worldSize = worldSize
        self.timeout = timeout
        arrivals = Array(repeating: nil, count: worldSize)
    }

    /// Why the group failed, if it has.
    var failureReason: String? { condition.withLock { failure } }

    /// Marks the group failed and wakes every waiting rank.
    func fail(_ reason: String) {
        condition.withLock {
            if failure == nil { failure = reason }
            condition.broadcast()
        }
    }

    /// Runs one collective for `rank`: meet, check that all ranks agree, compute this rank's part, meet again.
    func perform(rank: Int, _ arrival: Arrival) throws(DistributedError) {
        let deadline = monotonicNanoseconds() &+ timeout.clampedNanoseconds
        let all = try meet(rank: rank, arrival, deadline: deadline)
        if let mismatch = Self.mismatch(all) {
            fail(mismatch)
            throw .mismatchedCollective(mismatch)
        }
        if case .barrier = arrival.operation.kind { return }
        LocalComputation.run(rank: rank, all)
        _ = try meet(rank: rank, arrival, deadline: deadline)
    }

    /// Waits until all ranks have arrived (or the deadline passes, or the group fails); returns every arrival.
    private func meet(rank: Int, _ arrival: Arrival, deadline: UInt64) throws(DistributedError) -> [Arrival] {
        condition.lock()
        defer { condition.unlock() }
        if let failure { throw .groupFailed(rank: rank, reason: failure) }
        let myGeneration = generation
        arrivals[rank] = arrival
        arrivedCount += 1
        if arrivedCount == worldSize {
            snapshot = arrivals.map { $0! }
            arrivedCount = 0
            generation &+= 1
            condition.broadcast()
            return snapshot
        }
        while generation == myGeneration && failure == nil {
            if !condition.wait(untilNanoseconds: deadline) && generation == myGeneration {
                let error = DistributedError.timedOut(
                    operation: arrival.operation, rank: rank, worldSize: worldSize, seconds: timeout.seconds)
                if failure == nil { failure = error.description }
                condition.broadcast()
                throw error
            }
        }
        // A later generation cannot complete without this rank, so the snapshot is still this generation's.
        if generation != myGeneration { return snapshot }
        throw .groupFailed(rank: rank, reason: failure ?? "unknown failure")
    }

    /// Describes how the ranks' calls disagree, or nil when they all match.
    private static func mismatch(_ all: [Arrival]) -> String? {
        let first = all[0].operation
        guard all.contains(where: { $0.operation != first }) else { return nil }
        return all.enumerated().map { "rank \($0.offset): \($0.element.operation)" }.joined(separator: "; ")
    }
}

/// The arithmetic of the local backend: each rank fills its own part of every rank's output.
enum LocalComputation {
    static func run(rank: Int, _ all: [Rendezvous.Arrival]) {
        let operation = all[rank].operation
        switch operation.elementType {
        case .float32: typed(Float.self, rank: rank, all, operation)
        case .float64: typed(Double.self, rank: rank, all, operation)
        case .int32: typed(Int32.self, rank: rank, all, operation)
        case .int64: typed(Int64.self, rank: rank, all, operation)
        case .uint8: typed(UInt8.self, rank: rank, all, operation)
        case .uint64: typed(UInt64.self, rank: rank, all, operation)
        }
    }

    @inline(__always)
    private static func typed<T: CollectiveElement>(
        _: T.Type, rank: Int, _ all: [Rendezvous.Arrival], _ operation: CollectiveOperation
    ) {
        let worldSize = all.count
        let partition = CollectivePartition(totalCount: operation.count, worldSize: worldSize)
        let mine = partition.range(ofRank: rank)
        switch operation.kind {
        case .allReduce(let reduce):
            // Rank `rank` reduces its partition of the elements and writes the result into every rank's buffer.
            guard !mine.isEmpty else { return }
            let buffers = all.map { $0.output!.assumingMemoryBound(to: T.self) }
            for index in mine {
                var accumulator = buffers[0][index]
                for other in 1..<worldSize { accumulator = T.reduce(accumulator, buffers[other][index], reduce) }
                for other in 0..<worldSize { buffers[other][index] = accumulator }
            }
        case .reduceScatter(let reduce):
            guard !mine.isEmpty else { return }
            let inputs = all.map { $0.input!.assumingMemoryBound(to: T.self) }
            let output = all[rank].output!.assumingMemoryBound(to: T.self)
            for (outIndex, index) in mine.enumerated() {
                var accumulator = inputs[0][index]
                for other in 1..<worldSize { accumulator = T.reduce(accumulator, inputs[other][index], reduce) }
                output[outIndex] = accumulator
            }
        case .allGather:
            guard !mine.isEmpty, let source = all[rank].input else { return }
            for other in 0..<worldSize {
                let destination = all[other].output! + mine.lowerBound * MemoryLayout<T>.stride
                if destination != UnsafeMutableRawPointer(mutating: source) {
                    destination.copyMemory(from: source, byteCount: mine.count * MemoryLayout<T>.stride)
                }
            }
        case .broadcast(let root):
            guard rank != root, operation.count > 0 else { return }
            all[rank].output!.copyMemory(
                from: all[root].output!, byteCount: operation.count * MemoryLayout<T>.stride)
        case .barrier:
            return
        }
    }
}

/// Per-rank results of `LocalCollectiveGroup.run`, filled by the rank threads.
final class ResultSlots<R: Sendable>: @unchecked Sendable {
    // @unchecked Sendable: `slots` is guarded by `condition`.
    private let condition = MonotonicCondition()
    private var slots: [Result<R, any Error>?]
    private var filled = 0

    init(count: Int) {
        slots = Array(repeating: nil, count: count)
    }

    func set(_ index: Int, _ result: Result<R, any Error>) {
        condition.withLock {
            slots[index] = result
            filled += 1
            condition.broadcast()
        }
    }

    func waitForAll() -> [Result<R, any Error>] {
        condition.withLock {
            while filled < slots.count { condition.wait() }
            return slots.map { $0! }
        }
    }
}
