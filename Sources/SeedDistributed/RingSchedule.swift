import CMPI

/// A ring collective over point-to-point messages: all-reduce (reduce-scatter then all-gather), reduce-scatter,
/// all-gather. Each rank sends to `rank + 1` and receives from `rank - 1`, one chunk per step; chunks follow
/// `CollectivePartition`, so shards may be uneven.
///
/// Why not `MPI_Iallreduce`: Open MPI's collectives allocate a temporary buffer per call; at 32 MiB and above
/// glibc serves it with a fresh mmap that is page-faulted in every time, which made all-reduces of ≥ 32 MiB
/// 4–5× slower here. The ring receives into scratch memory the group keeps, and reduces with Seed's own loops.
///
/// Reduce-scatter step `s` (0..<n-1): send chunk `(r - s - 1) mod n`, receive chunk `(r - s - 2) mod n` and
/// reduce it into the local partial sums, so that after n-1 steps rank `r` holds the reduction of chunk `r`.
/// All-gather step `s`: send chunk `(r - s) mod n`, receive chunk `(r - s - 1) mod n` in place. Each chunk is
/// reduced along one path and then copied, so every rank ends with the same bits.
///
/// Each chunk travels as segments of `segmentBytes`, `depth` of them in flight, so a received segment is reduced
/// while it is still in cache, and the receive scratch is `depth` segments whatever the buffer size. Each message
/// stream (a chunk sent, a chunk received) is cut the same way on both ends, so uneven chunks still match.
///
/// Not thread-safe: `advance` runs under `MPIRuntime.callLock`.
final class RingSchedule {
    enum Kind {
        /// In place on `buffer`.
        case allReduce(ReduceOperation)
        /// `input` (read only) reduced into this rank's shard `output`.
        case reduceScatter(ReduceOperation)
        /// Shards gathered into `buffer` (this rank's shard already in place).
        case allGather
    }

    /// Bytes per message. Measured with 2 ranks, two segments in flight (64–256 MiB all-reduces): 128 KiB
    /// segments ran at a third of the speed, 512 KiB ~25% slower than 1–2 MiB, whole chunks (no segments) about
    /// half. Each segment is a handshake with the neighbour, so on cores shared with
    /// other busy processes (each wait for the neighbour costs a scheduler time slice) fewer, larger messages
    /// would do better; ranks on dedicated cores are the case this is tuned for.
    static let segmentBytes = 1 << 20
    /// Segments in flight per step: one arriving while the previous one is reduced. Measured with 2 ranks on a
    /// busy machine (load ~10 on 2 cores), interleaved: with the progress thread, 256 MiB all-reduces took
    /// 116–132 ms with 2 in flight against 265–331 ms with 8; with one polling thread per rank, 8 was ~20% faster.
    /// The progress thread is the default, so 2.
    static let depth = 2

    private let kind: Kind
    private let type: CollectiveElementType
    private let elementSize: Int
    private let segmentCount: Int
    private let partition: CollectivePartition
    private let rank: Int
    private let worldSize: Int
    private let communicator: MPI_Comm
    private let tag: Int32
    private let buffer: UnsafeMutableRawPointer?
    private let input: UnsafeRawPointer?
    private let output: UnsafeMutableRawPointer
    private let scratch: ScratchPool.Buffer?
    /// Per slot: the receive handle, then the send handle.
    private let handles: UnsafeMutablePointer<MPI_Request?>

    private var step = 0
    /// Segments of the current step posted, and finished (received, reduced, sent).
    private var posted = 0
    private var finished = 0

    init(
        kind: Kind, type: CollectiveElementType, totalCount: Int, rank: Int, worldSize: Int,
        communicator: MPI_Comm, tag: Int32, buffer: UnsafeMutableRawPointer?, input: UnsafeRawPointer?,
        output: UnsafeMutableRawPointer?, scratch: ScratchPool.Buffer?
    ) {
        self.kind = kind
        self.type = type
        self.elementSize = type.byteCount
        self.segmentCount = max(1, Self.segmentBytes / type.byteCount)
        self.partition = CollectivePartition(totalCount: totalCount, worldSize: worldSize)
        self.rank = rank
        self.worldSize = worldSize
        self.communicator = communicator
        self.tag = tag
        self.buffer = buffer
        self.input = input
        self.output = output ?? MPIRuntime.emptyBuffer  // a rank may own no elements
        self.scratch = scratch
        self.handles = .allocate(capacity: 2 * Self.depth)
        handles.initialize(repeating: seed_mpi_request_null(), count: 2 * Self.depth)
    }

    deinit {
        handles.deallocate()
    }

    /// Scratch bytes a ring collective needs: `depth` received segments, plus two partial-sum chunks for an
    /// out-of-place reduce-scatter (one being sent while the next is computed).
    static func scratchBytes(_ kind: Kind, type: CollectiveElementType, totalCount: Int, worldSize: Int) -> Int {
        let chunkBytes =
            CollectivePartition(totalCount: totalCount, worldSize: worldSize).count(ofRank: 0)
            * type.byteCount
        let receive = depth * min(chunkBytes, max(1, segmentBytes / type.byteCount) * type.byteCount)
        switch kind {
        case .allReduce: return receive
        case .reduceScatter: return receive + 2 * chunkBytes
        case .allGather: return 0
        }
    }

    /// Steps in all: n-1 per phase.
    private var totalSteps: Int {
        switch kind {
        case .allReduce: 2 * (worldSize - 1)
        case .reduceScatter, .allGather: worldSize - 1
        }
    }

    /// Byte offset and element count of chunk `index` (taken modulo the world size).
    private func chunk(_ index: Int) -> (offset: Int, count: Int) {
        let wrapped = ((index % worldSize) + worldSize) % worldSize
        return (partition.offset(ofRank: wrapped) * elementSize, partition.count(ofRank: wrapped))
    }

    private var receiveAreaBytes: Int {
        min(partition.count(ofRank: 0), segmentCount) * elementSize
    }

    /// Receive area of a pipeline slot.
    private func receiveArea(_ slot: Int) -> UnsafeMutableRawPointer {
        scratch!.pointer + slot * receiveAreaBytes
    }

    /// Partial sums of an out-of-place reduce-scatter (two areas, alternating by step).
    private func partialSums(_ index: Int) -> UnsafeMutableRawPointer {
        scratch!.pointer + Self.depth * receiveAreaBytes + index * partition.count(ofRank: 0) * elementSize
    }

    /// What the current step sends and receives: chunk sizes, where the data comes from, where it lands.
    private struct StepPlan {
        var sendFrom: UnsafeRawPointer
        var sendCount: Int
        var receiveCount: Int
        /// Where received data goes; nil when it goes to a receive area and is reduced.
        var receiveInto: UnsafeMutableRawPointer?
        /// For reducing steps: `target = base ⊕ received`.
        var reduceBase: UnsafeRawPointer?
        var reduceTarget: UnsafeMutableRawPointer?
    }

    private func plan() -> StepPlan {
        switch kind {
        case .allReduce:
            if step < worldSize - 1 {
                let send = chunk(rank - step - 1)
                let receive = chunk(rank - step - 2)
                return StepPlan(
                    sendFrom: UnsafeRawPointer(buffer! + send.offset), sendCount: send.count,
                    receiveCount: receive.count, receiveInto: nil,
                    reduceBase: UnsafeRawPointer(buffer! + receive.offset), reduceTarget: buffer! + receive.offset)
            }
            let s = step - (worldSize - 1)
            let send = chunk(rank - s)
            let receive = chunk(rank - s - 1)
            return StepPlan(
                sendFrom: UnsafeRawPointer(buffer! + send.offset), sendCount: send.count,
                receiveCount: receive.count, receiveInto: buffer! + receive.offset, reduceBase: nil,
                reduceTarget: nil)
        case .reduceScatter:
            let send = chunk(rank - step - 1)
            let receive = chunk(rank - step - 2)
            let sendFrom = step == 0 ? input! + send.offset : UnsafeRawPointer(partialSums((step - 1) % 2))
            let target = step == worldSize - 2 ? output : partialSums(step % 2)
            return StepPlan(
                sendFrom: sendFrom, sendCount: send.count, receiveCount: receive.count, receiveInto: nil,
                reduceBase: input! + receive.offset, reduceTarget: target)
        case .allGather:
            let send = chunk(rank - step)
            let receive = chunk(rank - step - 1)
            return StepPlan(
                sendFrom: UnsafeRawPointer(buffer! + send.offset), sendCount: send.count,
                receiveCount: receive.count, receiveInto: buffer! + receive.offset, reduceBase: nil,
                reduceTarget: nil)
        }
    }

    /// Elements `[segment * segmentCount, ...)` of a `count`-element message, clamped (possibly empty).
    private func segmentRange(_ segment: Int, of count: Int) -> Range<Int> {
        let start = min(count, segment * segmentCount)
        return start..<min(count, start + segmentCount)
    }

    private func segments(of count: Int) -> Int { (count + segmentCount - 1) / segmentCount }

    /// Posts, tests and finishes segments and steps as far as the messages allow; true once complete.
    func advance(_ name: String) throws(DistributedError) -> Bool {
        while step < totalSteps {
            let current = plan()
            let segmentsThisStep = max(segments(of: current.sendCount), segments(of: current.receiveCount))
            while posted < segmentsThisStep && posted - finished < Self.depth {
                try post(posted, current, name)
                posted += 1
            }
            if finished == segmentsThisStep {
                step += 1
                posted = 0
                finished = 0
                continue
            }
            let slot = finished % Self.depth
            var flag: Int32 = 0
            let code = MPI_Testall(2, handles + 2 * slot, &flag, seed_mpi_statuses_ignore())
            guard code == MPI_SUCCESS else {
                throw .mpi(
                    call: "MPI_Testall (\(name), step \(step))", code: code, message: MPIRuntime.errorString(code))
            }
            if flag == 0 { return false }
            finish(finished, current)
            finished += 1
        }
        return true
    }

    /// Posts segment `segment` of the current step: its receive (if the received message has that many
    /// segments) and its send (likewise); a missing side stays MPI_REQUEST_NULL, which tests as complete.
    private func post(_ segment: Int, _ current: StepPlan, _ name: String) throws(DistributedError) {
        let slot = segment % Self.depth
        let datatype = MPIRuntime.datatype(type)
        let left = Int32((rank - 1 + worldSize) % worldSize)
        let right = Int32((rank + 1) % worldSize)
        let receive = segmentRange(segment, of: current.receiveCount)
        if !receive.isEmpty {
            let into = current.receiveInto.map { $0 + receive.lowerBound * elementSize } ?? receiveArea(slot)
            let code = MPI_Irecv(
                into, Int32(receive.count), datatype, left, tag, communicator, &handles[2 * slot])
            guard code == MPI_SUCCESS else {
                throw .mpi(call: "MPI_Irecv (\(name), step \(step))", code: code, message: MPIRuntime.errorString(code))
            }
        }
        let send = segmentRange(segment, of: current.sendCount)
        if !send.isEmpty {
            let code = MPI_Isend(
                current.sendFrom + send.lowerBound * elementSize, Int32(send.count), datatype, right, tag,
                communicator, &handles[2 * slot + 1])
            guard code == MPI_SUCCESS else {
                throw .mpi(call: "MPI_Isend (\(name), step \(step))", code: code, message: MPIRuntime.errorString(code))
            }
        }
    }

    /// Reduces what segment `segment` of a reducing step received.
    private func finish(_ segment: Int, _ current: StepPlan) {
        guard current.receiveInto == nil, let base = current.reduceBase, let target = current.reduceTarget else {
            return
        }
        let range = segmentRange(segment, of: current.receiveCount)
        guard !range.isEmpty else { return }
        let offset = range.lowerBound * elementSize
        let operation: ReduceOperation
        switch kind {
        case .allReduce(let op), .reduceScatter(let op): operation = op
        case .allGather: return
        }
        ElementwiseReduction.combine(
            into: target + offset, base + offset, UnsafeRawPointer(receiveArea(segment % Self.depth)),
            count: range.count, type: type, operation)
    }
}

/// `target[i] = a[i] ⊕ b[i]` for every element type and reduction (`target` may be `a`).
enum ElementwiseReduction {
    static func combine(
        into target: UnsafeMutableRawPointer?, _ a: UnsafeRawPointer?, _ b: UnsafeRawPointer, count: Int,
        type: CollectiveElementType, _ operation: ReduceOperation
    ) {
        guard count > 0, let target, let a else { return }
        switch type {
        case .float32: typed(Float.self, target, a, b, count, operation)
        case .float64: typed(Double.self, target, a, b, count, operation)
        case .int32: typed(Int32.self, target, a, b, count, operation)
        case .int64: typed(Int64.self, target, a, b, count, operation)
        case .uint8: typed(UInt8.self, target, a, b, count, operation)
        case .uint64: typed(UInt64.self, target, a, b, count, operation)
        }
    }

    @inline(__always)
    private static func typed<T: CollectiveElement>(
        _: T.Type, _ target: UnsafeMutableRawPointer, _ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ count: Int,
        _ operation: ReduceOperation
    ) {
        let t = target.assumingMemoryBound(to: T.self)
        let x = a.assumingMemoryBound(to: T.self)
        let y = b.assumingMemoryBound(to: T.self)
        // One loop per operation, so each vectorises.
        switch operation {
        case .sum: for i in 0..<count { t[i] = T.reduce(x[i], y[i], .sum) }
        case .max: for i in 0..<count { t[i] = T.reduce(x[i], y[i], .max) }
        case .min: for i in 0..<count { t[i] = T.reduce(x[i], y[i], .min) }
        }
    }
}

/// Scratch memory the ring collectives reuse, so a step of training allocates nothing once warm. Buffers are
/// handed out best-fit and returned on completion; a request abandoned after a failure keeps its buffer (MPI
/// may still write into it). Guarded by `MPIRuntime.callLock`.
final class ScratchPool {
    final class Buffer {
        let pointer: UnsafeMutableRawPointer
        let byteCount: Int

        init(byteCount: Int) {
            self.byteCount = byteCount
            pointer = .allocate(byteCount: max(byteCount, 64), alignment: 64)
        }

        deinit {
            pointer.deallocate()
        }
    }

    private var free: [Buffer] = []

    func take(_ byteCount: Int) -> Buffer {
        if let index = free.indices.filter({ free[$0].byteCount >= byteCount })
            .min(by: { free[$0].byteCount < free[$1].byteCount })
        {
            return free.remove(at: index)
        }
        return Buffer(byteCount: byteCount)
    }

    func give(_ buffer: Buffer) {
        free.append(buffer)
    }
}
