import Foundation
import SeedTensor
import Testing

@testable import SeedTrain

/// A small model's configuration for the benchmark (the data directory is never read).
private func smallConfiguration(
    batchSize: Int = 4, microBatchSize: Int = 2, threads: Int = 2, gradClip: Double = 1.0, heads: Int = 4
) -> TrainingConfiguration {
    TrainingConfiguration(
        model: .init(
            vocabSize: 300, hiddenSize: 32, intermediateSize: 64, layers: 2, heads: heads, kvHeads: 2,
            contextLength: 64),
        data: .init(dir: "/nonexistent/seed-bench-train-data"),
        training: .init(
            steps: 10, batchSize: batchSize, microBatchSize: microBatchSize, seqLen: 16, seed: 7, threads: threads),
        optimizer: .init(lr: 3e-3, gradClip: gradClip),
        output: .init(dir: "/nonexistent/seed-bench-train-run"))
}

@Suite("TrainingBenchmark")
struct TrainingBenchmarkTests {
    @Test("the synthetic token stream is SplitMix64 of seed·2³² + index (values from an independent Python version)")
    func syntheticTokens() {
        let first = (0..<4).map { TrainingBenchmark.syntheticToken(seed: 1, index: $0, vocabularySize: 49152) }
        #expect(first == [16696, 21871, 45090, 44955])
        #expect(TrainingBenchmark.syntheticToken(seed: 7, index: 0, vocabularySize: 1000) == 489)
        #expect(TrainingBenchmark.syntheticToken(seed: 7, index: 5, vocabularySize: 1000) == 592)
        #expect(TrainingBenchmark.syntheticToken(seed: 7, index: 1 << 33, vocabularySize: 1000) == 353)
    }

    @Test("a benchmark step is the trainer's step: same parameters bit for bit as a hand-written loop")
    func stepMatchesManualLoop() throws {
        let configuration = smallConfiguration()
        let benchmark = try TrainingBenchmark(configuration: configuration)
        let result = try benchmark.run(warmup: 1, steps: 2)
        #expect(result.stepSeconds.count == 2)
        #expect(result.losses.count == 3)
        #expect(result.stepSeconds.allSatisfy { $0 > 0 })
        #expect(result.tokensPerStep == 4 * 16)
        #expect(result.tokensPerSecond > 0)
        #expect(result.parameterCount == 300 * 32 + 2 * (32 + 4 * 8 * 32 * 2 + 2 * 8 * 32 * 2 + 32 + 3 * 32 * 64) + 32)

        // The same three steps by hand.
        let t = configuration.training
        let pool = WorkerPool(threads: 2)
        let model = try TrainableLlama<Float>(
            configuration: Trainer.modelConfiguration(configuration), pool: pool, seed: t.seed)
        let o = configuration.optimizer
        let optimizer = try AdamW<Float>(
            parameters: model.parameters,
            configuration: AdamWConfiguration(
                beta1: o.beta1, beta2: o.beta2, epsilon: o.eps, weightDecay: o.weightDecay),
            pool: pool, decay: { !$0.name.hasSuffix("norm.weight") })
        let width = t.seqLen + 1
        var losses: [Double] = []
        for step in 0..<3 {
            let tokens = (0..<(t.batchSize * width)).map {
                TrainingBenchmark.syntheticToken(
                    seed: t.seed, index: step * t.batchSize * width + $0, vocabularySize: 300)
            }
            model.zeroGradients()
            var loss = 0.0
            for micro in 0..<2 {
                loss += try model.lossAndGradients(
                    tokens: Array(tokens[(micro * 2 * width)..<((micro + 1) * 2 * width)]), batchSize: 2,
                    normalizer: Double(t.batchSize * t.seqLen))
            }
            _ = clipGradientNorm(model.parameters, maxNorm: o.gradClip, pool: pool)
            optimizer.step(learningRate: o.lr)
            losses.append(loss)
        }
        #expect(losses == result.losses)
        for (mine, theirs) in zip(model.parameters.parameters, benchmark.model.parameters.parameters) {
            #expect(mine.values == theirs.values, "\(mine.name)")
        }
        // Training moved the weights and the loss is a cross-entropy over 300 classes.
        #expect(abs(result.losses[0] - Foundation.log(300.0)) < 0.5)
        #expect(result.losses[2] != result.losses[0])
    }

    @Test("the median step time and tokens/s follow the measured steps")
    func medianAndRate() {
        let result = TrainingBenchmarkResult(
            parameterCount: 1, tokensPerStep: 100, flopsPerToken: 6, threads: 1, stepSeconds: [0.5, 0.1, 0.2, 0.4],
            losses: [])
        #expect(abs(result.medianStepSeconds - 0.3) < 1e-12)
        #expect(abs(result.tokensPerSecond - 100 / 0.3) < 1e-9)
        let empty = TrainingBenchmarkResult(
            parameterCount: 1, tokensPerStep: 100, flopsPerToken: 6, threads: 1, stepSeconds: [], losses: [])
        #expect(empty.medianStepSeconds == 0 && empty.tokensPerSecond == 0)
    }

    @Test("an invalid configuration is refused with a configuration error")
    func invalidConfiguration() {
        var configuration = smallConfiguration()
        configuration.training.microBatchSize = 3  // does not divide batch_size 4
        #expect(throws: TrainerError.self) { try TrainingBenchmark(configuration: configuration) }
        let badHeads = smallConfiguration(heads: 5)  // 32 is not a multiple of 5 heads
        #expect(throws: TrainerError.self) { try TrainingBenchmark(configuration: badHeads) }
    }
}
