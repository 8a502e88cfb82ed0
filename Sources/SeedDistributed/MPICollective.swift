import CMPI
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Collectives over Open MPI, for ranks started by `mpirun` or `srun --mpi=pmix`.
///
/// Every collective is non-blocking and completed by polling against a deadline, so a dead or hung peer turns into
/// `DistributedError.timedOut` instead of a hang. All-reduce, reduce-scatter and all-gather are Seed's own ring
/// over `MPI_Isend`/`MPI_Irecv` (see `RingSchedule`: scratch memory is reused, so once warm a call allocates only
/// its small request objects); broadcast and barrier are `MPI_Ibcast` and `MPI_Ibarrier`. MPI calls are serialised
/// by one process-wide lock, so any thread may start, test or wait. An optional progress thread tests outstanding
/// requests every `progressInterval`, which is what moves a started all-reduce forward while the caller computes
/// (Open MPI has no asynchronous progress over shared memory or TCP otherwise).
///
/// MPI is initialised once per process (`MPI_Init_thread`) by the first group and finalised by `shutdown()`; after a
/// timeout the communicator is unusable (MPI cannot cancel a collective), so the process should report the error
/// and `abort` (which ends every rank of the job) or exit non-zero.
public final class MPICollective: Collective, @unchecked Sendable {
    // @unchecked Sendable: `communicator` is immutable after init and used only through MPI calls made under
    // `MPIRuntime.callLock`; the mutable state is in a Mutex.

    public let rank: Int
    public let worldSize: Int
    public let timeout: Duration

    /// This group's communicator: a duplicate of `MPI_COMM_WORLD` that returns errors instead of aborting.
    let communicator: MPI_Comm
    private let status = Mutex<GroupStatus>(GroupStatus())
    private let progress: MPIProgressThread?
    /// Scratch memory of the ring collectives; guarded by `MPIRuntime.callLock`.
    let scratchPool = ScratchPool()
    /// Message tag of the latest ring collective (1...30000, then around again); guarded by `MPIRuntime.callLock`.
    /// Every rank starts collectives in the same order, so the same collective gets the same tag everywhere, and
    /// the messages of collectives in flight at once cannot match each other's receives.
    private var ringTag: Int32 = 0

    struct GroupStatus {
        var failure: String?
        var isShutDown = false
    }

    /// All ranks of the job (`MPI_COMM_WORLD`), initialising MPI if needed. Collective: every rank must call it.
    ///
    /// - Parameters:
    ///   - timeout: longest a blocking collective or a request's `wait` may take.
    ///   - progressInterval: period of the background thread that progresses started requests; nil for none
    ///     (then started requests progress only inside `test` and `wait`).
    public static func world(
        timeout: Duration = ProcessGroup.defaultTimeout, progressInterval: Duration? = .microseconds(200)
    ) throws(DistributedError) -> MPICollective {
        guard timeout > .zero else { throw .invalidArgument("collective timeout must be positive, not \(timeout)") }
        try MPIRuntime.initialize()
        var duplicate: MPI_Comm? = nil
        try MPIRuntime.call("MPI_Comm_dup") { MPI_Comm_dup(seed_mpi_comm_world(), &duplicate) }
        guard let duplicate else { throw .mpi(call: "MPI_Comm_dup", code: -1, message: "no communicator returned") }
        try MPIRuntime.call("MPI_Comm_set_errhandler") {
            MPI_Comm_set_errhandler(duplicate, seed_mpi_errors_return())
        }
        var rank: Int32 = 0
        var size: Int32 = 0
        try MPIRuntime.call("MPI_Comm_rank") { MPI_Comm_rank(duplicate, &rank) }
        try MPIRuntime.call("MPI_Comm_size") { MPI_Comm_size(duplicate, &size) }
        return MPICollective(
            communicator: duplicate, rank: Int(rank), worldSize: Int(size), timeout: timeout,
            progressInterval: progressInterval)
    }

    private init(
        communicator: MPI_Comm, rank: Int, worldSize: Int, timeout: Duration, progressInterval: Duration?
    ) {
        self.communicator = communicator
        self.rank = rank
        self.worldSize = worldSize
        self.timeout = timeout
        self.progress = progressInterval.map { MPIProgressThread(interval: $0) }
    }

    deinit {
        progress?.stop()
    }

    /// The MPI library's version string (`MPI_Get_library_version`).
    public static var libraryVersion: String {
        var buffer = [CChar](repeating: 0, count: 8192)
        var length: Int32 = 0
        MPI_Get_library_version(&buffer, &length)
        return String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Why this group failed, if it has.
    public var failureReason: String? { status.withLock { $0.failure } }

    /// Frees the communicator and finalises MPI (`MPI_Finalize`) for the whole process. Collective: call it on
    /// every rank once all collectives (of every group) have completed; later calls do nothing. Throws, without
    /// finalising, when the group has failed (finalising could hang waiting for a dead rank): exit non-zero or
    /// `abort` instead.
    public func shutdown() throws(DistributedError) {
        let (failure, wasShutDown) = status.withLock { state in
            defer { state.isShutDown = true }
            return (state.failure, state.isShutDown)
        }
        if wasShutDown { return }
        progress?.stop()
        if let failure { throw .groupFailed(rank: rank, reason: failure) }
        var communicator: MPI_Comm? = self.communicator
        try MPIRuntime.call("MPI_Comm_free") { MPI_Comm_free(&communicator) }
        try MPIRuntime.finalize()
    }

    /// Ends every rank of the job (`MPI_Abort`) with `exitCode`: the way out after a timeout.
    public func abort(exitCode: Int32) -> Never {
        MPI_Abort(communicator, exitCode)
        exit(exitCode)
    }

    // MARK: Collectives

    public func startAllReduce<T: CollectiveElement>(
        _ buffer: UnsafeMutableBufferPointer<T>, _ operation: ReduceOperation
    ) throws(DistributedError) -> any CollectiveRequest {
        let description = CollectiveOperation(.allReduce(operation), T.collectiveType, count: buffer.count)
        try CollectiveValidation.checkCount(buffer.count, description)
        try checkUsable()
        if buffer.isEmpty || worldSize == 1 { return CompletedRequest(operation: description) }
        return try startRing(
            description, .allReduce(operation), totalCount: buffer.count,
            buffer: UnsafeMutableRawPointer(buffer.baseAddress), input: nil, output: nil)
    }

    public func startReduceScatter<T: CollectiveElement>(
        _ input: UnsafeBufferPointer<T>, into output: UnsafeMutableBufferPointer<T>, _ operation: ReduceOperation
    ) throws(DistributedError) -> any CollectiveRequest {
        let description = CollectiveOperation(.reduceScatter(operation), T.collectiveType, count: input.count)
        try CollectiveValidation.reduceScatter(
            inputCount: input.count, outputCount: output.count, rank: rank, worldSize: worldSize, description)
        try checkUsable()
        if input.isEmpty { return CompletedRequest(operation: description) }
        if worldSize == 1 {
            _ = output.initialize(from: input)
            return CompletedRequest(operation: description)
        }
        return try startRing(
            description, .reduceScatter(operation), totalCount: input.count, buffer: nil,
            input: UnsafeRawPointer(input.baseAddress), output: UnsafeMutableRawPointer(output.baseAddress))
    }

    public func startAllGather<T: CollectiveElement>(
        _ shard: UnsafeBufferPointer<T>?, into output: UnsafeMutableBufferPointer<T>
    ) throws(DistributedError) -> any CollectiveRequest {
        let description = CollectiveOperation(.allGather, T.collectiveType, count: output.count)
        try CollectiveValidation.allGather(
            shardCount: shard?.count, outputCount: output.count, rank: rank, worldSize: worldSize, description)
        try checkUsable()
        if output.isEmpty { return CompletedRequest(operation: description) }
        if let shard, let source = shard.baseAddress, let base = output.baseAddress {
            // The ring gathers in place: put this rank's shard where it belongs first.
            let offset = CollectivePartition(totalCount: output.count, worldSize: worldSize).offset(ofRank: rank)
            UnsafeMutableRawPointer(base + offset).copyMemory(
                from: source, byteCount: shard.count * MemoryLayout<T>.stride)
        }
        if worldSize == 1 { return CompletedRequest(operation: description) }
        return try startRing(
            description, .allGather, totalCount: output.count, buffer: UnsafeMutableRawPointer(output.baseAddress),
            input: nil, output: nil)
    }

    public func startBroadcast<T: CollectiveElement>(
        _ buffer: UnsafeMutableBufferPointer<T>, root: Int
    ) throws(DistributedError) -> any CollectiveRequest {
        let description = CollectiveOperation(.broadcast(root: root), T.collectiveType, count: buffer.count)
        try CollectiveValidation.root(root, worldSize: worldSize, description)
        try CollectiveValidation.checkCount(buffer.count, description)
        try checkUsable()
        if buffer.isEmpty { return CompletedRequest(operation: description) }
        let request = MPIRequest(operation: description, group: self)
        try request.start("MPI_Ibcast") { handle in
            MPI_Ibcast(
                buffer.baseAddress, Int32(buffer.count), MPIRuntime.datatype(T.collectiveType), Int32(root),
                communicator, &handle)
        }
        return track(request)
    }

    public func startBarrier() throws(DistributedError) -> any CollectiveRequest {
        try checkUsable()
        let request = MPIRequest(operation: CollectiveOperation(.barrier, .uint8, count: 0), group: self)
        try request.start("MPI_Ibarrier") { handle in MPI_Ibarrier(communicator, &handle) }
        return track(request)
    }

    // MARK: Group state

    private func startRing(
        _ description: CollectiveOperation, _ kind: RingSchedule.Kind, totalCount: Int,
        buffer: UnsafeMutableRawPointer?, input: UnsafeRawPointer?, output: UnsafeMutableRawPointer?
    ) throws(DistributedError) -> MPIRequest {
        let request = MPIRequest(operation: description, group: self)
        try MPIRuntime.callLock.withLock { () throws(DistributedError) in
            ringTag = ringTag % 30_000 + 1
            let bytes = RingSchedule.scratchBytes(
                kind, type: description.elementType, totalCount: totalCount, worldSize: worldSize)
            let scratch = bytes > 0 ? scratchPool.take(bytes) : nil
            let schedule = RingSchedule(
                kind: kind, type: description.elementType, totalCount: totalCount, rank: rank,
                worldSize: worldSize, communicator: communicator, tag: ringTag, buffer: buffer, input: input,
                output: output, scratch: scratch)
            try request.attachLocked(schedule, scratch: scratch)
        }
        return track(request)
    }

    private func track(_ request: MPIRequest) -> MPIRequest {
        progress?.add(request)
        return request
    }

    func checkUsable() throws(DistributedError) {
        let current = status.withLock { $0 }
        if current.isShutDown { throw .shutDown }
        if let failure = current.failure { throw .groupFailed(rank: rank, reason: failure) }
    }

    /// Records the first failure; every later collective on this group throws `groupFailed` with it.
    func markFailed(_ reason: String) {
        status.withLock { state in
            if state.failure == nil { state.failure = reason }
        }
    }

    var hasFailed: Bool { status.withLock { $0.failure != nil } }
}

/// One started MPI collective: a single MPI request (broadcast, barrier) or a ring schedule of sends and receives.
final class MPIRequest: CollectiveRequest, @unchecked Sendable {
    // @unchecked Sendable: `handle`, `ring`, `scratch` and `isComplete` are read and written only under
    // `MPIRuntime.callLock`.
    let operation: CollectiveOperation
    private let group: MPICollective
    private var handle: MPI_Request? = nil
    private var ring: RingSchedule?
    private var scratch: ScratchPool.Buffer?
    private var isComplete = false

    init(operation: CollectiveOperation, group: MPICollective) {
        self.operation = operation
        self.group = group
    }

    /// Issues the non-blocking MPI call that fills in the request handle.
    func start(_ call: String, _ body: (inout MPI_Request?) -> Int32) throws(DistributedError) {
        try MPIRuntime.callLock.withLock { () throws(DistributedError) in
            let code = body(&handle)
            guard code == MPI_SUCCESS else {
                isComplete = true
                let error = DistributedError.mpi(call: call, code: code, message: MPIRuntime.errorString(code))
                group.markFailed(error.description)
                throw error
            }
        }
    }

    /// Drives the collective with `schedule` and posts its first step. Call with `MPIRuntime.callLock` held.
    func attachLocked(_ schedule: RingSchedule, scratch: ScratchPool.Buffer?) throws(DistributedError) {
        ring = schedule
        self.scratch = scratch
        _ = try advanceLocked()
    }

    /// One round of progress; true once complete. Call with `MPIRuntime.callLock` held.
    private func advanceLocked() throws(DistributedError) -> Bool {
        if isComplete { return true }
        let done: Bool
        do throws(DistributedError) {
            if let ring {
                done = try ring.advance(operation.description)
            } else {
                var flag: Int32 = 0
                let code = MPI_Test(&handle, &flag, seed_mpi_status_ignore())
                guard code == MPI_SUCCESS else {
                    throw DistributedError.mpi(
                        call: "MPI_Test (\(operation))", code: code, message: MPIRuntime.errorString(code))
                }
                done = flag != 0
            }
        } catch {
            group.markFailed(error.description)
            throw error
        }
        if done {
            isComplete = true
            ring = nil
            if let scratch { group.scratchPool.give(scratch) }
            scratch = nil
        }
        return done
    }

    /// Makes progress; true once complete. Used by `test`, `wait` and the progress thread.
    func poll() throws(DistributedError) -> Bool {
        try MPIRuntime.callLock.withLock { () throws(DistributedError) -> Bool in try advanceLocked() }
    }

    var completed: Bool { MPIRuntime.callLock.withLock { isComplete } }

    /// True once the group has failed: the request may never complete, so the progress thread drops it.
    var abandoned: Bool { group.hasFailed }

    func test() throws(DistributedError) -> Bool {
        if try poll() { return true }
        if let reason = group.failureReason { throw .groupFailed(rank: group.rank, reason: reason) }
        return false
    }

    func wait() throws(DistributedError) {
        let deadline = monotonicNanoseconds() &+ group.timeout.clampedNanoseconds
        var polls = 0
        var pause: UInt64 = 10_000
        while true {
            if try poll() { return }
            if let reason = group.failureReason { throw .groupFailed(rank: group.rank, reason: reason) }
            if monotonicNanoseconds() >= deadline {
                let error = DistributedError.timedOut(
                    operation: operation, rank: group.rank, worldSize: group.worldSize,
                    seconds: group.timeout.seconds)
                group.markFailed(error.description)
                throw error
            }
            // Poll hard for short collectives, then back off so a long wait leaves the core to computation.
            polls += 1
            if polls < 256 {
                sched_yield()
            } else {
                var time = timespec(tv_sec: 0, tv_nsec: Int(pause))
                nanosleep(&time, nil)
                pause = min(pause * 2, 200_000)
            }
        }
    }
}

/// Tests outstanding requests periodically so started collectives progress while their owners compute.
final class MPIProgressThread: @unchecked Sendable {
    // @unchecked Sendable: `outstanding` and `stopping` are guarded by `condition`.
    private let condition = MonotonicCondition()
    private var outstanding: [MPIRequest] = []
    private var stopping = false
    private let intervalNanoseconds: UInt64

    init(interval: Duration) {
        intervalNanoseconds = max(1_000, interval.clampedNanoseconds)
        let thread = MonotonicThread { [self] in run() }
        thread.start()
    }

    func add(_ request: MPIRequest) {
        condition.withLock {
            outstanding.append(request)
            condition.broadcast()
        }
    }

    func stop() {
        condition.withLock {
            stopping = true
            outstanding.removeAll()
            condition.broadcast()
        }
    }

    private func run() {
        var batch: [MPIRequest] = []
        while true {
            condition.lock()
            while outstanding.isEmpty && !stopping { condition.wait() }
            if stopping {
                condition.unlock()
                return
            }
            batch.removeAll(keepingCapacity: true)
            batch.append(contentsOf: outstanding)
            condition.unlock()

            for request in batch {
                do throws(DistributedError) {
                    _ = try request.poll()
                } catch {
                    // The waiter sees the same error (the group is marked failed); nothing more to do here.
                }
            }
            condition.withLock {
                // Drop completed requests, and those of a failed group (their waiters report the failure).
                outstanding.removeAll { $0.completed || $0.abandoned }
            }
            var time = timespec(tv_sec: 0, tv_nsec: Int(intervalNanoseconds))
            nanosleep(&time, nil)
        }
    }
}

/// A detached pthread running a closure (the progress thread must not live on Dispatch or the cooperative pool).
final class MonotonicThread: @unchecked Sendable {
    // @unchecked Sendable: `body` is set once before the thread starts and read only by that thread.
    private let body: () -> Void

    init(_ body: @escaping () -> Void) {
        self.body = body
    }

    func start() {
        let context = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        let created = pthread_create(
            &thread, nil,
            { raw in
                let me = Unmanaged<MonotonicThread>.fromOpaque(raw!).takeRetainedValue()
                me.body()
                return nil
            }, context)
        if created == 0 {
            pthread_detach(thread)
        } else {
            // No thread: started requests then progress only inside `test` and `wait`, which is still correct.
            Unmanaged<MonotonicThread>.fromOpaque(context).release()
        }
    }
}

/// Process-wide MPI state. MPI may be initialised once and finalised once per process.
enum MPIRuntime {
    enum State {
        case uninitialized
        case initialized
        case finalized
    }

    static let state = Mutex<State>(.uninitialized)
    /// Serialises every MPI call (enough for `MPI_THREAD_SERIALIZED`; harmless with `MPI_THREAD_MULTIPLE`).
    static let callLock = MonotonicCondition()
    /// A valid address for zero-length receive buffers.
    nonisolated(unsafe) static let emptyBuffer = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 64)

    /// `MPI_Init_thread` on first use; requires at least `MPI_THREAD_SERIALIZED`.
    static func initialize() throws(DistributedError) {
        try state.withLock { (current: inout State) throws(DistributedError) in
            switch current {
            case .initialized: return
            case .finalized: throw DistributedError.shutDown
            case .uninitialized: break
            }
            var provided: Int32 = 0
            let code = callLock.withLock {
                MPI_Init_thread(nil, nil, Int32(MPI_THREAD_MULTIPLE), &provided)
            }
            guard code == MPI_SUCCESS else {
                throw DistributedError.mpi(call: "MPI_Init_thread", code: code, message: errorString(code))
            }
            guard provided >= Int32(MPI_THREAD_SERIALIZED) else {
                throw DistributedError.launch(
                    "the MPI library provides thread level \(provided); Seed needs MPI_THREAD_SERIALIZED or better")
            }
            current = .initialized
        }
    }

    static func finalize() throws(DistributedError) {
        try state.withLock { (current: inout State) throws(DistributedError) in
            guard case .initialized = current else { return }
            current = .finalized
            let code = callLock.withLock { MPI_Finalize() }
            guard code == MPI_SUCCESS else {
                throw DistributedError.mpi(call: "MPI_Finalize", code: code, message: errorString(code))
            }
        }
    }

    /// Runs one MPI call under the lock and turns an error code into `DistributedError.mpi`.
    static func call(_ name: String, _ body: () -> Int32) throws(DistributedError) {
        let code = callLock.withLock { body() }
        guard code == MPI_SUCCESS else { throw .mpi(call: name, code: code, message: errorString(code)) }
    }

    static func errorString(_ code: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: 1024)
        var length: Int32 = 0
        guard MPI_Error_string(code, &buffer, &length) == MPI_SUCCESS else { return "unknown MPI error" }
        return String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func datatype(_ type: CollectiveElementType) -> MPI_Datatype {
        switch type {
        case .float32: seed_mpi_float()
        case .float64: seed_mpi_double()
        case .int32: seed_mpi_int32_t()
        case .int64: seed_mpi_int64_t()
        case .uint8: seed_mpi_uint8_t()
        case .uint64: seed_mpi_uint64_t()
        }
    }

    static func reduction(_ operation: ReduceOperation) -> MPI_Op {
        switch operation {
        case .sum: seed_mpi_sum()
        case .max: seed_mpi_max()
        case .min: seed_mpi_min()
        }
    }
}
