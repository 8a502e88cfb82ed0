import Foundation
import SeedDistributed
import SeedModels
import SeedTensor
import Testing

@testable import SeedTrain

/// Gradient buckets, the backward pass's announcements, and data-parallel / ZeRO-1 math over in-process ranks
/// (``LocalCollective``, one thread per rank): fast checks of what the mpirun tests check end to end.
@Suite("Data parallel")
struct DataParallelTests {
    static func model(tied: Bool = false) throws -> TrainableLlama<Float> {
        try TrainableLlama<Float>(
            configuration: TrainableLlamaTests.configuration(tied: tied), pool: WorkerPool(threads: 1), seed: 3,
            initializerRange: 0.3)
    }

    @Test("buckets tile the flat buffer in reverse parameter order; ZeRO-1 shares tile each bucket")
    func layout() throws {
        let store = try Self.model().parameters
        for bucketElements in [1, 100, 700, 5000, 1 << 20] {
            let layout = GradientBucketLayout(parameters: store, bucketElements: bucketElements)
            var end = store.flatCount
            var parameterEnd = store.parameters.count
            for bucket in layout.buckets {
                #expect(bucket.range.upperBound == end)
                #expect(bucket.parameters.upperBound == parameterEnd)
                #expect(bucket.range.lowerBound == store.parameters[bucket.parameters.lowerBound].offset)
                #expect(bucket.parameters.count == 1 || bucket.range.count <= bucketElements)
                end = bucket.range.lowerBound
                parameterEnd = bucket.parameters.lowerBound
            }
            #expect(end == 0 && parameterEnd == 0)
            if bucketElements == 1 { #expect(layout.buckets.count == store.parameters.count) }
            if bucketElements == 1 << 20 { #expect(layout.buckets.count == 1) }
            for worldSize in 1...3 {
                let owned = (0..<worldSize).map { layout.ownedRanges(rank: $0, worldSize: worldSize) }
                for (b, bucket) in layout.buckets.enumerated() {
                    var next = bucket.range.lowerBound
                    for rank in 0..<worldSize {
                        #expect(owned[rank][b].lowerBound == next)
                        next = owned[rank][b].upperBound
                    }
                    #expect(next == bucket.range.upperBound)
                }
            }
        }
    }

    @Test("backward announces each parameter once, when its gradient is final", arguments: [false, true])
    func announcements(tied: Bool) throws {
        let model = try Self.model(tied: tied)
        let tokens = TrainableLlamaTests.tokens(batch: 2, length: 7)
        var announced: [String] = []
        var snapshots: [String: [Float]] = [:]
        model.tape.onParameterGradientReady = { parameter in
            announced.append(parameter.name)
            snapshots[parameter.name] = parameter.gradients
        }
        model.zeroGradients()
        try model.lossAndGradients(tokens: tokens, batchSize: 2)
        #expect(announced.count == model.parameters.parameters.count)
        #expect(Set(announced) == Set(model.parameters.parameters.map(\.name)))
        for parameter in model.parameters.parameters {
            #expect(snapshots[parameter.name] == parameter.gradients, "\(parameter.name) changed after announcement")
        }
        // Backward finishes the end of the model first: the embedding (also the head when tied) comes last.
        #expect(announced.last == "model.embed_tokens.weight")
        #expect(announced.first == (tied ? "model.norm.weight" : "lm_head.weight"))
    }

    /// Two in-process ranks each run half of a batch of 4 with the global normaliser, reduce their gradients in
    /// small buckets, and step; the result must equal one model stepping on the whole batch.
    @Test("two ranks' bucketed gradients and steps equal one rank's", arguments: [false, true])
    func twoRanksEqualOne(zero1: Bool) throws {
        let tokens = TrainableLlamaTests.tokens(batch: 4, length: 7)
        let normalizer = 4.0 * 7
        let configuration = AdamWConfiguration(weightDecay: 0.1)
        let decay: (Parameter<Float>) -> Bool = { !$0.name.hasSuffix("norm.weight") }

        let single = try Self.model()
        single.zeroGradients()
        let half = tokens.count / 2
        let wholeLoss =
            try single.lossAndGradients(tokens: Array(tokens[..<half]), batchSize: 2, normalizer: normalizer)
            + single.lossAndGradients(tokens: Array(tokens[half...]), batchSize: 2, normalizer: normalizer)
        let referenceGradients = Array(single.parameters.flatGradients)
        let referenceNorm = gradientNorm(single.parameters, pool: single.pool)
        let optimizer = try AdamW<Float>(
            parameters: single.parameters, configuration: configuration, pool: single.pool, decay: decay)
        optimizer.step(learningRate: 0.01)
        let referenceValues = Array(single.parameters.flatValues)

        struct RankResult: Sendable {
            var loss: Double
            var gradients: [Float]
            var norm: Double
            var values: [Float]
            var overlapped = 0
        }
        let results = try LocalCollectiveGroup.run(worldSize: 2, timeout: .seconds(30)) { collective in
            let decay: (Parameter<Float>) -> Bool = { !$0.name.hasSuffix("norm.weight") }
            let model = try Self.model()
            let synchronizer = GradientSynchronizer(
                parameters: model.parameters, collective: collective, mode: zero1 ? .reduceScatter : .allReduce,
                bucketElements: 300)
            model.tape.onParameterGradientReady = { synchronizer.parameterReady($0) }
            model.zeroGradients()
            synchronizer.arm()
            let slice = Array(tokens[(collective.rank * half)..<((collective.rank + 1) * half)])
            var loss = try model.lossAndGradients(tokens: slice, batchSize: 2, normalizer: normalizer)
            try synchronizer.finish()
            let overlapped = synchronizer.bucketsStartedDuringBackward
            try withUnsafeMutablePointer(to: &loss) { try collective.allReduce(.init(start: $0, count: 1)) }
            if zero1 {
                let norm = try synchronizer.shardGradientNorm()
                let sharded = try ShardedAdamW(
                    parameters: model.parameters, synchronizer: synchronizer, configuration: configuration,
                    pool: model.pool, decay: decay)
                let shard = Array(
                    UnsafeBufferPointer(start: synchronizer.shardGradients, count: synchronizer.shardCount))
                sharded.step(learningRate: 0.01, shardGradients: synchronizer.shardGradients)
                try synchronizer.gatherParameters()
                return RankResult(
                    loss: loss, gradients: shard, norm: norm, values: Array(model.parameters.flatValues),
                    overlapped: overlapped)
            }
            let norm = gradientNorm(model.parameters, pool: model.pool)
            let gradients = Array(model.parameters.flatGradients)
            let optimizer = try AdamW<Float>(
                parameters: model.parameters, configuration: configuration, pool: model.pool, decay: decay)
            optimizer.step(learningRate: 0.01)
            return RankResult(
                loss: loss, gradients: gradients, norm: norm, values: Array(model.parameters.flatValues),
                overlapped: overlapped)
        }.map { try $0.get() }

        let layout = GradientBucketLayout(parameters: single.parameters, bucketElements: 300)
        #expect(layout.buckets.count > 3, "the test needs several buckets")
        for (rank, result) in results.enumerated() {
            // Every bucket started while backward still ran (the embedding's, last, as it finished).
            #expect(result.overlapped == layout.buckets.count)
            #expect(abs(result.loss - wholeLoss) <= 1e-6 * abs(wholeLoss))
            #expect(abs(result.norm - referenceNorm) <= 1e-5 * referenceNorm)
            if zero1 {
                var expected: [Float] = []
                for range in layout.ownedRanges(rank: rank, worldSize: 2) { expected += referenceGradients[range] }
                #expect(result.gradients.count == expected.count)
                let worst = zip(result.gradients, expected).map { abs($0 - $1) }.max() ?? .infinity
                #expect(worst <= 1e-6, "rank \(rank): shard gradient off by \(worst)")
            } else {
                let worst = zip(result.gradients, referenceGradients).map { abs($0 - $1) }.max() ?? .infinity
                #expect(worst <= 1e-6, "rank \(rank): gradient off by \(worst)")
            }
            let worstValue = zip(result.values, referenceValues).map { abs($0 - $1) }.max() ?? .infinity
            #expect(worstValue <= 1e-5, "rank \(rank): parameters off by \(worstValue)")
        }
        #expect(results[0].values == results[1].values, "every rank ends with the same parameters")
    }
}
