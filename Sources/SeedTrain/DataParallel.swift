import Foundation
import SeedDistributed
import SeedTensor

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Contiguous ranges of a ``ParameterStore``'s flat gradient buffer that cross ranks as one collective each.
///
/// Buckets are formed in reverse parameter order (the order backward finishes them: the head and the last layers
/// first), each holding whole parameters until it reaches `bucketElements` (a larger parameter gets a bucket of its
/// own). Together they tile `0..<flatCount`, padding included, so bucket 0 ends at `flatCount` and the last bucket
/// starts at 0. The layout depends only on the parameter shapes and the bucket size, so every rank computes the same.
public struct GradientBucketLayout: Sendable, Equatable {
    /// One bucket: its flat element range and the parameters (indices into ``ParameterStore/parameters``) inside.
    public struct Bucket: Sendable, Equatable {
        /// Flat elements `[start, end)` of the bucket (whole parameters plus their alignment padding).
        public var range: Range<Int>
        /// Indices of the parameters in the bucket, ascending.
        public var parameters: Range<Int>
    }

    /// The buckets, in the order they are reduced (reverse parameter order).
    public let buckets: [Bucket]
    /// Elements of the flat buffers the buckets tile.
    public let flatCount: Int

    /// Lays out buckets of about `bucketElements` elements over `parameters`.
    public init<Scalar: TrainScalar>(parameters: ParameterStore<Scalar>, bucketElements: Int) {
        let list = parameters.parameters
        var buckets: [Bucket] = []
        var end = list.count
        var flatEnd = parameters.flatCount
        while end > 0 {
            var start = end - 1
            while start > 0 && flatEnd - list[start - 1].offset <= max(bucketElements, 1) {
                start -= 1
            }
            let flatStart = start == 0 ? 0 : list[start].offset
            buckets.append(Bucket(range: flatStart..<flatEnd, parameters: start..<end))
            end = start
            flatEnd = flatStart
        }
        self.buckets = buckets
        flatCount = parameters.flatCount
    }

    /// The flat elements rank `rank` of `worldSize` owns under ZeRO-1: in each bucket (bucket order), its
    /// ``CollectivePartition`` share of the bucket, which is what a reduce-scatter of the bucket gives it and what
    /// an in-place all-gather of the bucket expects from it. Empty ranges are kept so indices match ``buckets``.
    public func ownedRanges(rank: Int, worldSize: Int) -> [Range<Int>] {
        buckets.map { bucket in
            let piece = CollectivePartition(totalCount: bucket.range.count, worldSize: worldSize).range(ofRank: rank)
            return (bucket.range.lowerBound + piece.lowerBound)..<(bucket.range.lowerBound + piece.upperBound)
        }
    }
}

/// Reduces gradients across the ranks of a ``Collective`` in buckets, each started as soon as backward has finished
/// its parameters (see ``Tape/onParameterGradientReady``) and waited for before the optimizer step.
///
/// With `.allReduce` every rank ends with the whole summed gradient in the store's gradient buffer. With
/// `.reduceScatter` (ZeRO-1) each rank receives only its owned share of every bucket, summed, in
/// ``shardGradients`` (`[shardCount]`, the owned ranges of ``GradientBucketLayout/ownedRanges(rank:worldSize:)``
/// concatenated in bucket order).
///
/// The loss normaliser of every rank is the token count of the global batch, so the sum over ranks is the global
/// mean gradient: nothing is divided afterwards.
public final class GradientSynchronizer {
    /// How a bucket crosses the ranks.
    public enum Mode: Sendable, Equatable {
        /// In-place all-reduce (sum) of each bucket: plain data parallelism.
        case allReduce
        /// Reduce-scatter (sum) of each bucket into this rank's shard: ZeRO stage 1.
        case reduceScatter
    }

    /// The ranks.
    public let collective: any Collective
    /// All-reduce or reduce-scatter.
    public let mode: Mode
    /// The buckets.
    public let layout: GradientBucketLayout
    /// This rank's flat ranges, one per bucket (ZeRO-1 ownership; computed in both modes).
    public let ownedRanges: [Range<Int>]
    /// Offset of bucket `b`'s owned piece in ``shardGradients``.
    public let shardOffsets: [Int]
    /// Elements this rank owns in total.
    public let shardCount: Int
    /// The reduced gradients of the owned ranges (`.reduceScatter` only; `[shardCount]`).
    public let shardGradients: UnsafeMutablePointer<Float>
    /// Seconds spent blocked waiting for buckets in the last step.
    public private(set) var waitSeconds = 0.0
    /// Buckets of the last step whose collective started during the backward pass (before ``finish()``): all of
    /// them when every parameter is on the tape, which is what makes communication overlap computation.
    public private(set) var bucketsStartedDuringBackward = 0

    private let parameters: ParameterStore<Float>
    private let bucketOfParameter: [Int]
    private let parameterIndexByOffset: [Int: Int]
    private var pending: [Int]
    private var nextBucket = 0
    private var armed = false
    private var requests: [any CollectiveRequest] = []
    private var failure: DistributedError?

    /// A synchronizer of `parameters` over `collective` with buckets of about `bucketElements` elements.
    public init(
        parameters: ParameterStore<Float>, collective: any Collective, mode: Mode, bucketElements: Int
    ) {
        self.parameters = parameters
        self.collective = collective
        self.mode = mode
        layout = GradientBucketLayout(parameters: parameters, bucketElements: bucketElements)
        ownedRanges = layout.ownedRanges(rank: collective.rank, worldSize: collective.worldSize)
        var offsets: [Int] = []
        var total = 0
        for range in ownedRanges {
            offsets.append(total)
            total += range.count
        }
        shardOffsets = offsets
        shardCount = total
        shardGradients = UnsafeMutablePointer<Float>.allocate(capacity: max(total, 1))
        shardGradients.initialize(repeating: 0, count: max(total, 1))
        var bucketOf = [Int](repeating: 0, count: parameters.parameters.count)
        for (b, bucket) in layout.buckets.enumerated() {
            for p in bucket.parameters { bucketOf[p] = b }
        }
        bucketOfParameter = bucketOf
        var byOffset: [Int: Int] = [:]
        for (index, parameter) in parameters.parameters.enumerated() { byOffset[parameter.offset] = index }
        parameterIndexByOffset = byOffset
        pending = layout.buckets.map(\.parameters.count)
        requests.reserveCapacity(layout.buckets.count * 2)
    }

    deinit {
        shardGradients.deallocate()
    }

    /// Arms the synchronizer for the backward pass that finishes this step's gradients (the last micro-batch):
    /// from now on ready parameters start their buckets.
    public func arm() {
        for (b, bucket) in layout.buckets.enumerated() { pending[b] = bucket.parameters.count }
        nextBucket = 0
        requests.removeAll(keepingCapacity: true)
        failure = nil
        waitSeconds = 0
        armed = true
    }

    /// Notes that `parameter`'s gradient is final; starts every bucket, in bucket order, whose parameters are all
    /// final. Ignored unless armed. A failure to start is kept and thrown by ``finish()``.
    public func parameterReady(_ parameter: Parameter<Float>) {
        guard armed, let index = parameterIndexByOffset[parameter.offset] else { return }
        let b = bucketOfParameter[index]
        pending[b] -= 1
        while nextBucket < layout.buckets.count && pending[nextBucket] <= 0 {
            start(bucket: nextBucket)
            nextBucket += 1
        }
    }

    /// Starts the buckets backward did not announce, then waits for every bucket (each wait bounded by the
    /// collective's timeout).
    ///
    /// - Throws: the first ``DistributedError`` (a timeout names the collective and this rank).
    public func finish() throws(DistributedError) {
        bucketsStartedDuringBackward = nextBucket
        while nextBucket < layout.buckets.count {
            start(bucket: nextBucket)
            nextBucket += 1
        }
        armed = false
        let begin = DispatchTime.now().uptimeNanoseconds
        defer { waitSeconds += Double(DispatchTime.now().uptimeNanoseconds - begin) / 1e9 }
        if let failure { throw failure }
        for request in requests { try request.wait() }
        requests.removeAll(keepingCapacity: true)
    }

    private func start(bucket b: Int) {
        guard failure == nil else { return }
        let range = layout.buckets[b].range
        let gradients = parameters.flatGradients
        do {
            switch mode {
            case .allReduce:
                let slice = UnsafeMutableBufferPointer(rebasing: gradients[range])
                requests.append(try collective.startAllReduce(slice, .sum))
            case .reduceScatter:
                let input = UnsafeBufferPointer(rebasing: gradients[range])
                let output = UnsafeMutableBufferPointer(
                    start: shardGradients + shardOffsets[b], count: ownedRanges[b].count)
                requests.append(try collective.startReduceScatter(input, into: output, .sum))
            }
        } catch {
            failure = error
        }
    }

    /// ZeRO-1: the global gradient norm from the shards, `sqrt(Σ_ranks Σ_shard g²)` (all-reduced in `Double`).
    public func shardGradientNorm() throws(DistributedError) -> Double {
        var sum = 0.0
        for i in 0..<shardCount {
            let g = Double(shardGradients[i])
            sum += g * g
        }
        var total = sum
        try withUnsafeMutablePointer(to: &total) { (pointer) throws(DistributedError) in
            try collective.allReduce(UnsafeMutableBufferPointer(start: pointer, count: 1), .sum)
        }
        return total.squareRoot()
    }

    /// ZeRO-1: multiplies the shard gradients by `factor`.
    public func scaleShardGradients(by factor: Float) {
        for i in 0..<shardCount { shardGradients[i] *= factor }
    }

    /// ZeRO-1: all-gathers every bucket of the flat values in place (each rank contributes its owned piece).
    public func gatherParameters() throws(DistributedError) {
        let values = parameters.flatValues
        let begin = DispatchTime.now().uptimeNanoseconds
        defer { waitSeconds += Double(DispatchTime.now().uptimeNanoseconds - begin) / 1e9 }
        requests.removeAll(keepingCapacity: true)
        for bucket in layout.buckets {
            requests.append(
                try collective.startAllGather(nil, into: UnsafeMutableBufferPointer(rebasing: values[bucket.range])))
        }
        for request in requests { try request.wait() }
        requests.removeAll(keepingCapacity: true)
    }
}

/// AdamW over the flat ranges one rank owns under ZeRO-1: moments exist only for those elements, and a step
/// updates only the owned parameter values (the other ranks update theirs; an all-gather then shares them).
///
/// The arithmetic per element is ``AdamW``'s exactly, so with the same summed gradient the owned values end
/// bit for bit where a full ``AdamW`` would put them.
public final class ShardedAdamW {
    /// The hyperparameters.
    public let configuration: AdamWConfiguration
    /// Steps taken.
    public private(set) var stepCount = 0
    /// Elements of the shard (``GradientSynchronizer/shardCount``).
    public let shardCount: Int

    /// A run of elements inside one parameter: flat offset, offset in the shard, length, weight decay.
    private struct Segment {
        var flat: Int
        var shard: Int
        var count: Int
        var decays: Bool
    }

    private let segments: [Segment]
    private let parameters: ParameterStore<Float>
    private let pool: WorkerPool
    private let firstMoment: UnsafeMutablePointer<Float>
    private let secondMoment: UnsafeMutablePointer<Float>

    /// An optimizer with zero moments for the owned ranges of `synchronizer`.
    ///
    /// - Parameter decay: which parameters get weight decay (as for ``AdamW``).
    /// - Throws: ``TrainingError/invalidHyperparameter(name:reason:)``.
    public init(
        parameters: ParameterStore<Float>, synchronizer: GradientSynchronizer, configuration: AdamWConfiguration,
        pool: WorkerPool, decay: (Parameter<Float>) -> Bool
    ) throws(TrainingError) {
        try configuration.validate()
        self.configuration = configuration
        self.parameters = parameters
        self.pool = pool
        shardCount = synchronizer.shardCount
        var segments: [Segment] = []
        let list = parameters.parameters
        for (b, owned) in synchronizer.ownedRanges.enumerated() where !owned.isEmpty {
            for index in synchronizer.layout.buckets[b].parameters {
                let p = list[index]
                let lower = max(owned.lowerBound, p.offset)
                let upper = min(owned.upperBound, p.offset + p.count)
                guard lower < upper else { continue }
                segments.append(
                    Segment(
                        flat: lower, shard: synchronizer.shardOffsets[b] + lower - owned.lowerBound,
                        count: upper - lower, decays: decay(p)))
            }
        }
        self.segments = segments
        let count = max(shardCount, 1)
        firstMoment = .allocate(capacity: count)
        firstMoment.initialize(repeating: 0, count: count)
        secondMoment = .allocate(capacity: count)
        secondMoment.initialize(repeating: 0, count: count)
    }

    deinit {
        firstMoment.deallocate()
        secondMoment.deallocate()
    }

    /// One AdamW step of the owned values from `shardGradients: [shardCount]`.
    public func step(learningRate: Double, shardGradients: UnsafeMutablePointer<Float>) {
        stepCount += 1
        let constants = AdamWStepConstants(configuration: configuration, learningRate: learningRate, step: stepCount)
        let values = parameters.flatValues.baseAddress!
        for segment in segments {
            AdamW<Float>.update(
                values: values + segment.flat, gradients: shardGradients + segment.shard,
                firstMoment: firstMoment + segment.shard, secondMoment: secondMoment + segment.shard,
                count: segment.count, decays: segment.decays, constants: constants, pool: pool)
        }
    }

    /// The moments of the shard, `[shardCount]` each.
    public func shardState() -> (firstMoment: [Float], secondMoment: [Float]) {
        (
            Array(UnsafeBufferPointer(start: firstMoment, count: shardCount)),
            Array(UnsafeBufferPointer(start: secondMoment, count: shardCount))
        )
    }

    /// Restores the shard's moments from whole flat moments (`[flatCount]` each) and the step count.
    public func load(
        flatFirstMoment: [Float], flatSecondMoment: [Float], ownedRanges: [Range<Int>], stepCount: Int
    ) throws(TrainingError) {
        guard flatFirstMoment.count == parameters.flatCount, flatSecondMoment.count == parameters.flatCount else {
            throw .invalidOptimizerState(
                "flat moments have \(flatFirstMoment.count) and \(flatSecondMoment.count) values, expected "
                    + "\(parameters.flatCount)")
        }
        guard stepCount >= 0 else { throw .invalidOptimizerState("step count \(stepCount) is negative") }
        var offset = 0
        for range in ownedRanges {
            for (i, flat) in range.enumerated() {
                firstMoment[offset + i] = flatFirstMoment[flat]
                secondMoment[offset + i] = flatSecondMoment[flat]
            }
            offset += range.count
        }
        self.stepCount = stepCount
    }
}

/// A fingerprint of a configuration: the SHA-256 of its canonical JSON (sorted keys), as four words.
func configurationFingerprint(_ configuration: TrainingConfiguration) -> [UInt64] {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let bytes = Array((try? encoder.encode(configuration)) ?? Data())
    let hex = DataFileSystem.sha256Hex(bytes)
    var words: [UInt64] = []
    var index = hex.startIndex
    for _ in 0..<4 {
        let end = hex.index(index, offsetBy: 16)
        words.append(UInt64(hex[index..<end], radix: 16) ?? 0)
        index = end
    }
    return words
}
