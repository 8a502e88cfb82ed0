import Foundation
import SeedTensor

/// Times full training steps of the model a ``TrainingConfiguration`` describes on synthetic tokens, with none of
/// the I/O of a run (no dataset, log, evaluation or checkpoint): the `seed bench-train` measurement.
///
/// One step is what ``Trainer/run(resume:)`` does per optimizer step: zero the gradients, forward and backward over
/// `training.batch_size / training.micro_batch_size` micro-batches of `[micro_batch_size, seq_len + 1]` tokens,
/// clip the global gradient norm (`optimizer.grad_clip`, when > 0) and take an AdamW step at the constant learning
/// rate `optimizer.lr`.
///
/// The tokens are ``syntheticToken(seed:index:vocabularySize:)`` of the running index over every step's
/// `[batch_size, seq_len + 1]` block, so a peer (scripts/bench/train_bench.py) trains on the same data.
public final class TrainingBenchmark {
    /// The configuration being measured.
    public let configuration: TrainingConfiguration
    /// The model (float32, initialised from `training.seed`).
    public let model: TrainableLlama<Float>
    /// The optimizer.
    public let optimizer: AdamW<Float>
    /// The pool of `training.threads` (default: every CPU).
    public let pool: WorkerPool

    private var tokens: [Int32] = []
    private var microBatch: [Int32] = []
    private var stepIndex = 0

    /// Builds the model and optimizer of `configuration` (`data` is not read).
    ///
    /// - Throws: ``TrainerError/configuration(_:)`` for an invalid configuration, ``TrainerError/training(_:)`` when
    ///   the model or optimizer refuses it.
    public init(configuration: TrainingConfiguration) throws(TrainerError) {
        do {
            try configuration.validate()
        } catch {
            throw .configuration(error)
        }
        self.configuration = configuration
        pool = WorkerPool(threads: configuration.training.threads ?? WorkerPool.onlineCPUCount)
        do {
            model = try TrainableLlama<Float>(
                configuration: Trainer.modelConfiguration(configuration), pool: pool, seed: configuration.training.seed)
            try model.tape.setProductPrecision(configuration.training.precision.productPrecision)
            let o = configuration.optimizer
            optimizer = try AdamW<Float>(
                parameters: model.parameters,
                configuration: AdamWConfiguration(
                    beta1: o.beta1, beta2: o.beta2, epsilon: o.eps, weightDecay: o.weightDecay),
                pool: pool, decay: { !$0.name.hasSuffix("norm.weight") })
        } catch {
            throw .training(error)
        }
    }

    /// Target tokens per step (`batch_size * seq_len`).
    public var tokensPerStep: Int { configuration.training.batchSize * configuration.training.seqLen }

    /// Trainable parameters (a tied embedding counts once).
    public var parameterCount: Int { model.parameters.elementCount }

    /// Training FLOPs per target token (see ``Trainer/flopsPerToken(configuration:parameterCount:)``).
    public var flopsPerToken: Double {
        Trainer.flopsPerToken(configuration: configuration, parameterCount: parameterCount)
    }

    /// Token `index` of the synthetic stream: SplitMix64 of `seed · 2³² + index`, modulo the vocabulary.
    public static func syntheticToken(seed: UInt64, index: Int, vocabularySize: Int) -> Int32 {
        var z = (seed &* 0x1_0000_0000 &+ UInt64(index)) &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Int32(truncatingIfNeeded: z % UInt64(vocabularySize))
    }

    /// Runs the next training step on the next block of synthetic tokens; returns its loss.
    ///
    /// - Throws: ``TrainerError/training(_:)`` if the model refuses the batch, ``TrainerError/diverged(step:loss:)``
    ///   if the loss is not finite.
    @discardableResult
    public func step() throws(TrainerError) -> Double {
        let t = configuration.training
        let width = t.seqLen + 1
        let blockCount = t.batchSize * width
        let vocabulary = configuration.model.vocabSize
        let base = stepIndex * blockCount
        tokens.removeAll(keepingCapacity: true)
        for i in 0..<blockCount {
            tokens.append(Self.syntheticToken(seed: t.seed, index: base + i, vocabularySize: vocabulary))
        }
        stepIndex += 1
        model.zeroGradients()
        var loss = 0.0
        let normalizer = Double(t.batchSize * t.seqLen)
        for micro in 0..<t.gradientAccumulationSteps {
            microBatch.removeAll(keepingCapacity: true)
            microBatch.append(
                contentsOf: tokens[(micro * t.microBatchSize * width)..<((micro + 1) * t.microBatchSize * width)])
            do {
                loss += try model.lossAndGradients(
                    tokens: microBatch, batchSize: t.microBatchSize, normalizer: normalizer)
            } catch {
                throw .training(error)
            }
        }
        guard loss.isFinite else { throw .diverged(step: stepIndex, loss: loss) }
        if configuration.optimizer.gradClip > 0 {
            _ = clipGradientNorm(model.parameters, maxNorm: configuration.optimizer.gradClip, pool: pool)
        }
        optimizer.step(learningRate: configuration.optimizer.lr)
        return loss
    }

    /// Runs `warmup` untimed steps, then `steps` timed ones.
    ///
    /// - Throws: as ``step()``.
    public func run(warmup: Int, steps: Int) throws(TrainerError) -> TrainingBenchmarkResult {
        var losses: [Double] = []
        for _ in 0..<warmup { losses.append(try step()) }
        var seconds: [Double] = []
        for _ in 0..<steps {
            let start = DispatchTime.now().uptimeNanoseconds
            losses.append(try step())
            seconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return TrainingBenchmarkResult(
            parameterCount: parameterCount, tokensPerStep: tokensPerStep, flopsPerToken: flopsPerToken,
            threads: pool.threadCount, stepSeconds: seconds, losses: losses)
    }
}

/// What ``TrainingBenchmark/run(warmup:steps:)`` measured.
public struct TrainingBenchmarkResult: Sendable, Equatable {
    /// Trainable parameters.
    public var parameterCount: Int
    /// Target tokens per step.
    public var tokensPerStep: Int
    /// Training FLOPs per target token.
    public var flopsPerToken: Double
    /// Compute threads.
    public var threads: Int
    /// Wall time of each timed step, in order.
    public var stepSeconds: [Double]
    /// Loss of every step, warm-up included, in order.
    public var losses: [Double]

    /// Median of ``stepSeconds`` (0 when there are none).
    public var medianStepSeconds: Double {
        let sorted = stepSeconds.sorted()
        guard !sorted.isEmpty else { return 0 }
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    /// Target tokens per second at the median step time.
    public var tokensPerSecond: Double {
        medianStepSeconds > 0 ? Double(tokensPerStep) / medianStepSeconds : 0
    }
}
