/// The group of one: every collective completes at once (all-reduce and broadcast leave the buffer as it is;
/// reduce-scatter and all-gather copy). What `ProcessGroup.fromEnvironment()` returns when no launcher started
/// this process, so single-process training runs the same code without MPI.
public final class SingleProcessCollective: Collective {
    public var rank: Int { 0 }
    public var worldSize: Int { 1 }
    public let timeout: Duration

    public init(timeout: Duration = ProcessGroup.defaultTimeout) {
        self.timeout = timeout
    }

    public func startAllReduce<T: CollectiveElement>(
        _ buffer: UnsafeMutableBufferPointer<T>, _ operation: ReduceOperation
    ) throws(DistributedError) -> any CollectiveRequest {
        let description = CollectiveOperation(.allReduce(operation), T.collectiveType, count: buffer.count)
        try CollectiveValidation.checkCount(buffer.count, description)
        return CompletedRequest(operation: description)
    }

    public func startReduceScatter<T: CollectiveElement>(
        _ input: UnsafeBufferPointer<T>, into output: UnsafeMutableBufferPointer<T>, _ operation: ReduceOperation
    ) throws(DistributedError) -> any CollectiveRequest {
        let description = CollectiveOperation(.reduceScatter(operation), T.collectiveType, count: input.count)
        try CollectiveValidation.reduceScatter(
            inputCount: input.count, outputCount: output.count, rank: 0, worldSize: 1, description)
        if let source = input.baseAddress, let destination = output.baseAddress {
            UnsafeMutableRawPointer(destination).copyMemory(
                from: source, byteCount: input.count * MemoryLayout<T>.stride)
        }
        return CompletedRequest(operation: description)
    }

    public func startAllGather<T: CollectiveElement>(
        _ shard: UnsafeBufferPointer<T>?, into output: UnsafeMutableBufferPointer<T>
    ) throws(DistributedError) -> any CollectiveRequest {
        let description = CollectiveOperation(.allGather, T.collectiveType, count: output.count)
        try CollectiveValidation.allGather(
            shardCount: shard?.count, outputCount: output.count, rank: 0, worldSize: 1, description)
        if let source = shard?.baseAddress, let destination = output.baseAddress {
            UnsafeMutableRawPointer(destination).copyMemory(
                from: source, byteCount: output.count * MemoryLayout<T>.stride)
        }
        return CompletedRequest(operation: description)
    }

    public func startBroadcast<T: CollectiveElement>(
        _ buffer: UnsafeMutableBufferPointer<T>, root: Int
    ) throws(DistributedError) -> any CollectiveRequest {
        let description = CollectiveOperation(.broadcast(root: root), T.collectiveType, count: buffer.count)
        try CollectiveValidation.root(root, worldSize: 1, description)
        try CollectiveValidation.checkCount(buffer.count, description)
        return CompletedRequest(operation: description)
    }

    public func startBarrier() throws(DistributedError) -> any CollectiveRequest {
        CompletedRequest(operation: CollectiveOperation(.barrier, .uint8, count: 0))
    }

    /// Nothing to release.
    public func shutdown() throws(DistributedError) {}
}

/// A request that completed when it started.
final class CompletedRequest: CollectiveRequest {
    let operation: CollectiveOperation

    init(operation: CollectiveOperation) {
        self.operation = operation
    }

    func test() throws(DistributedError) -> Bool { true }
    func wait() throws(DistributedError) {}
}
