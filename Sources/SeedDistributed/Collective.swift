/// How an all-reduce or reduce-scatter combines the ranks' values, element by element.
public enum ReduceOperation: Sendable, Equatable, CustomStringConvertible {
    case sum
    case max
    case min

    public var description: String {
        switch self {
        case .sum: "sum"
        case .max: "max"
        case .min: "min"
        }
    }
}

/// The element types collectives move and reduce. Each maps to one MPI datatype.
public enum CollectiveElementType: Sendable, Equatable, CustomStringConvertible {
    case float32, float64, int32, int64, uint8, uint64

    public var description: String {
        switch self {
        case .float32: "Float"
        case .float64: "Double"
        case .int32: "Int32"
        case .int64: "Int64"
        case .uint8: "UInt8"
        case .uint64: "UInt64"
        }
    }

    /// Size of one element in bytes.
    public var byteCount: Int {
        switch self {
        case .uint8: 1
        case .float32, .int32: 4
        case .float64, .int64, .uint64: 8
        }
    }
}

/// A scalar type that collectives can carry: `Float`, `Double`, `Int32`, `Int64`, `Int`, `UInt8`, `UInt64`.
public protocol CollectiveElement: BitwiseCopyable, Comparable, Sendable {
    /// The wire type (and MPI datatype) of this Swift type.
    static var collectiveType: CollectiveElementType { get }
    /// Combines two values the way `operation` does; integer sums wrap around, as MPI's do.
    static func reduce(_ a: Self, _ b: Self, _ operation: ReduceOperation) -> Self
}

extension CollectiveElement where Self: BinaryFloatingPoint {
    @inlinable @inline(__always)
    public static func reduce(_ a: Self, _ b: Self, _ operation: ReduceOperation) -> Self {
        switch operation {
        case .sum: a + b
        case .max: Swift.max(a, b)
        case .min: Swift.min(a, b)
        }
    }
}

extension CollectiveElement where Self: FixedWidthInteger {
    @inlinable @inline(__always)
    public static func reduce(_ a: Self, _ b: Self, _ operation: ReduceOperation) -> Self {
        switch operation {
        case .sum: a &+ b
        case .max: Swift.max(a, b)
        case .min: Swift.min(a, b)
        }
    }
}

extension Float: CollectiveElement { public static var collectiveType: CollectiveElementType { .float32 } }
extension Double: CollectiveElement { public static var collectiveType: CollectiveElementType { .float64 } }
extension Int32: CollectiveElement { public static var collectiveType: CollectiveElementType { .int32 } }
extension Int64: CollectiveElement { public static var collectiveType: CollectiveElementType { .int64 } }
extension Int: CollectiveElement { public static var collectiveType: CollectiveElementType { .int64 } }
extension UInt8: CollectiveElement { public static var collectiveType: CollectiveElementType { .uint8 } }
extension UInt64: CollectiveElement { public static var collectiveType: CollectiveElementType { .uint64 } }

/// What a collective call is: its kind, element type and total element count. Errors name it.
public struct CollectiveOperation: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case allReduce(ReduceOperation)
        case reduceScatter(ReduceOperation)
        case allGather
        case broadcast(root: Int)
        case barrier
    }

    public var kind: Kind
    public var elementType: CollectiveElementType
    /// Elements in the full (unsharded) buffer: the all-reduce/broadcast buffer, the reduce-scatter input, the
    /// all-gather output. Zero for a barrier.
    public var count: Int

    public init(_ kind: Kind, _ elementType: CollectiveElementType, count: Int) {
        self.kind = kind
        self.elementType = elementType
        self.count = count
    }

    public var description: String {
        switch kind {
        case .allReduce(let op): "all-reduce (\(op)) of \(count) \(elementType)"
        case .reduceScatter(let op): "reduce-scatter (\(op)) of \(count) \(elementType)"
        case .allGather: "all-gather of \(count) \(elementType)"
        case .broadcast(let root): "broadcast from rank \(root) of \(count) \(elementType)"
        case .barrier: "barrier"
        }
    }
}

/// How reduce-scatter and all-gather split `totalCount` elements over `worldSize` ranks.
///
/// Rule (no padding): rank `r` owns the contiguous range starting at the sum of the earlier ranks' counts, with
/// `totalCount / worldSize` elements, plus one more for the first `totalCount % worldSize` ranks. So shard sizes
/// differ by at most one, and a rank may own zero elements when `totalCount < worldSize`.
/// Example: 10 elements over 4 ranks → counts [3, 3, 2, 2], ranges 0..<3, 3..<6, 6..<8, 8..<10.
public struct CollectivePartition: Sendable, Equatable {
    public let totalCount: Int
    public let worldSize: Int

    public init(totalCount: Int, worldSize: Int) {
        precondition(totalCount >= 0 && worldSize >= 1, "partition of \(totalCount) elements over \(worldSize) ranks")
        self.totalCount = totalCount
        self.worldSize = worldSize
    }

    /// Number of elements rank `rank` owns.
    @inlinable
    public func count(ofRank rank: Int) -> Int {
        totalCount / worldSize + (rank < totalCount % worldSize ? 1 : 0)
    }

    /// First element rank `rank` owns.
    @inlinable
    public func offset(ofRank rank: Int) -> Int {
        let base = totalCount / worldSize
        return rank * base + Swift.min(rank, totalCount % worldSize)
    }

    /// The elements rank `rank` owns.
    @inlinable
    public func range(ofRank rank: Int) -> Range<Int> {
        let start = offset(ofRank: rank)
        return start..<(start + count(ofRank: rank))
    }
}

/// A started collective. Its buffers must stay valid and untouched until `wait` returns or `test` returns true.
public protocol CollectiveRequest: AnyObject, Sendable {
    /// The collective this request runs.
    var operation: CollectiveOperation { get }
    /// Makes progress; true once the collective has completed (its results are in the output buffer).
    /// Throws the collective's error if it failed.
    func test() throws(DistributedError) -> Bool
    /// Blocks until the collective completes, at most the group's `timeout` counted from this call; throws
    /// `DistributedError.timedOut` naming the collective when it does not complete in time (the group is then
    /// unusable: every later call throws `groupFailed`).
    func wait() throws(DistributedError)
}

/// A group of `worldSize` ranks that run collectives together. Every rank must call the same collectives in the
/// same order with matching counts, element types and roots.
///
/// Buffers are raw memory the caller owns; for a started (non-blocking) collective they must outlive the request's
/// completion. A collective that does not complete within `timeout` throws `DistributedError.timedOut` instead of
/// hanging, so a dead or stuck rank is detected.
///
/// One request at a time per buffer; requests started on one rank complete in any order, but each rank must start
/// them in the same order as the other ranks.
public protocol Collective: AnyObject, Sendable {
    /// This process's rank, `0..<worldSize`.
    var rank: Int { get }
    /// Number of ranks in the group.
    var worldSize: Int { get }
    /// Longest a blocking collective, or a request's `wait`, may take before it fails.
    var timeout: Duration { get }

    /// Starts an in-place all-reduce: afterwards every rank's `buffer: [count]` holds the element-wise reduction of
    /// all ranks' buffers.
    func startAllReduce<T: CollectiveElement>(
        _ buffer: UnsafeMutableBufferPointer<T>, _ operation: ReduceOperation
    ) throws(DistributedError) -> any CollectiveRequest

    /// Starts a reduce-scatter: `input: [totalCount]` (same count on every rank) is reduced across ranks, and this
    /// rank receives its shard `output: [partition.count(ofRank: rank)]` (see `CollectivePartition`).
    /// `input` and `output` must not overlap.
    func startReduceScatter<T: CollectiveElement>(
        _ input: UnsafeBufferPointer<T>, into output: UnsafeMutableBufferPointer<T>, _ operation: ReduceOperation
    ) throws(DistributedError) -> any CollectiveRequest

    /// Starts an all-gather: every rank contributes `shard: [partition.count(ofRank: rank)]` and receives
    /// `output: [totalCount]`, the shards concatenated in rank order (see `CollectivePartition`). With `shard` nil
    /// the gather is in place: this rank's shard already sits at `partition.range(ofRank: rank)` of `output`.
    func startAllGather<T: CollectiveElement>(
        _ shard: UnsafeBufferPointer<T>?, into output: UnsafeMutableBufferPointer<T>
    ) throws(DistributedError) -> any CollectiveRequest

    /// Starts a broadcast: afterwards every rank's `buffer: [count]` equals rank `root`'s.
    func startBroadcast<T: CollectiveElement>(
        _ buffer: UnsafeMutableBufferPointer<T>, root: Int
    ) throws(DistributedError) -> any CollectiveRequest

    /// Starts a barrier: it completes once every rank has started it.
    func startBarrier() throws(DistributedError) -> any CollectiveRequest

    /// Ends the group when the job is done: for MPI, frees the communicator and calls `MPI_Finalize` (collective:
    /// every rank calls it); nothing for in-process groups. Throws, without finalising, after a failure.
    func shutdown() throws(DistributedError)
}

extension Collective {
    /// In-place all-reduce of `buffer: [count]`, blocking (bounded by `timeout`).
    public func allReduce<T: CollectiveElement>(
        _ buffer: UnsafeMutableBufferPointer<T>, _ operation: ReduceOperation = .sum
    ) throws(DistributedError) {
        try startAllReduce(buffer, operation).wait()
    }

    /// In-place all-reduce of an array, blocking.
    public func allReduce<T: CollectiveElement>(
        _ array: inout [T], _ operation: ReduceOperation = .sum
    ) throws(DistributedError) {
        try array.withUnsafeMutableBufferPointer { (buffer) throws(DistributedError) in
            try allReduce(buffer, operation)
        }
    }

    /// Reduce-scatter of `input: [totalCount]` into this rank's `output: [partition.count(ofRank: rank)]`, blocking.
    public func reduceScatter<T: CollectiveElement>(
        _ input: UnsafeBufferPointer<T>, into output: UnsafeMutableBufferPointer<T>,
        _ operation: ReduceOperation = .sum
    ) throws(DistributedError) {
        try startReduceScatter(input, into: output, operation).wait()
    }

    /// Reduce-scatter of an array; returns this rank's shard of the reduction, `[partition.count(ofRank: rank)]`.
    public func reduceScatter<T: CollectiveElement>(
        _ input: [T], _ operation: ReduceOperation = .sum
    ) throws(DistributedError) -> [T] {
        let shardCount = CollectivePartition(totalCount: input.count, worldSize: worldSize).count(ofRank: rank)
        var output = [T](repeating: input.first ?? Self.zeroFill(), count: shardCount)
        try input.withUnsafeBufferPointer { (inputBuffer) throws(DistributedError) in
            try output.withUnsafeMutableBufferPointer { (outputBuffer) throws(DistributedError) in
                try reduceScatter(inputBuffer, into: outputBuffer, operation)
            }
        }
        return output
    }

    /// All-gather of this rank's `shard` into `output: [totalCount]`, blocking.
    public func allGather<T: CollectiveElement>(
        _ shard: UnsafeBufferPointer<T>, into output: UnsafeMutableBufferPointer<T>
    ) throws(DistributedError) {
        try startAllGather(shard, into: output).wait()
    }

    /// In-place all-gather: this rank's shard sits at `partition.range(ofRank: rank)` of `buffer: [totalCount]`;
    /// afterwards `buffer` holds every rank's shard. Blocking.
    public func allGather<T: CollectiveElement>(inPlace buffer: UnsafeMutableBufferPointer<T>) throws(DistributedError)
    {
        try startAllGather(nil, into: buffer).wait()
    }

    /// All-gather of arrays: every rank passes its shard of a `totalCount`-element whole; returns the whole.
    public func allGather<T: CollectiveElement>(_ shard: [T], totalCount: Int) throws(DistributedError) -> [T] {
        guard totalCount >= 0 else { throw .invalidArgument("all-gather total count \(totalCount) is negative") }
        var output = [T](repeating: shard.first ?? Self.zeroFill(), count: totalCount)
        try shard.withUnsafeBufferPointer { (shardBuffer) throws(DistributedError) in
            try output.withUnsafeMutableBufferPointer { (outputBuffer) throws(DistributedError) in
                try allGather(shardBuffer, into: outputBuffer)
            }
        }
        return output
    }

    /// Broadcast of `buffer: [count]` from `root`, blocking.
    public func broadcast<T: CollectiveElement>(
        _ buffer: UnsafeMutableBufferPointer<T>, root: Int = 0
    ) throws(DistributedError) {
        try startBroadcast(buffer, root: root).wait()
    }

    /// Broadcast of an array from `root` (the array must have the same count on every rank), blocking.
    public func broadcast<T: CollectiveElement>(_ array: inout [T], root: Int = 0) throws(DistributedError) {
        try array.withUnsafeMutableBufferPointer { (buffer) throws(DistributedError) in
            try broadcast(buffer, root: root)
        }
    }

    /// Blocks until every rank has reached the barrier (bounded by `timeout`).
    public func barrier() throws(DistributedError) {
        try startBarrier().wait()
    }

    /// A zero value of any collective element type (all of them are plain integers or IEEE floats).
    static func zeroFill<T: CollectiveElement>() -> T {
        withUnsafeTemporaryAllocation(of: T.self, capacity: 1) { buffer in
            UnsafeMutableRawBufferPointer(buffer).initializeMemory(as: UInt8.self, repeating: 0)
            return buffer[0]
        }
    }
}

/// Checks one rank's arguments before a collective starts; shared by every backend.
enum CollectiveValidation {
    /// MPI counts and displacements are 32-bit.
    static let maximumCount = Int(Int32.max)

    static func checkCount(_ count: Int, _ operation: CollectiveOperation) throws(DistributedError) {
        guard count <= maximumCount else {
            throw .invalidArgument("\(operation): \(count) elements exceed the MPI limit of \(maximumCount)")
        }
    }

    static func reduceScatter(
        inputCount: Int, outputCount: Int, rank: Int, worldSize: Int, _ operation: CollectiveOperation
    ) throws(DistributedError) {
        try checkCount(inputCount, operation)
        let expected = CollectivePartition(totalCount: inputCount, worldSize: worldSize).count(ofRank: rank)
        guard outputCount == expected else {
            throw .invalidArgument(
                "\(operation): rank \(rank) of \(worldSize) owns \(expected) elements "
                    + "but its output holds \(outputCount)"
            )
        }
    }

    static func allGather(
        shardCount: Int?, outputCount: Int, rank: Int, worldSize: Int, _ operation: CollectiveOperation
    ) throws(DistributedError) {
        try checkCount(outputCount, operation)
        let expected = CollectivePartition(totalCount: outputCount, worldSize: worldSize).count(ofRank: rank)
        if let shardCount, shardCount != expected {
            throw .invalidArgument(
                "\(operation): rank \(rank) of \(worldSize) owns \(expected) elements but its shard holds \(shardCount)"
            )
        }
    }

    static func root(_ root: Int, worldSize: Int, _ operation: CollectiveOperation) throws(DistributedError) {
        guard (0..<worldSize).contains(root) else {
            throw .invalidArgument("\(operation): root \(root) is not a rank of a group of \(worldSize)")
        }
    }
}
