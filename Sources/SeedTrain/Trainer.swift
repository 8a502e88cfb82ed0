import CBLAS
import Foundation
import SeedDistributed
import SeedFormats
import SeedModels
import SeedTensor

/// Why a training run could not start or continue. Every case says what to fix.
public enum TrainerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The configuration file or an override is wrong.
    case configuration(TrainingConfigurationError)
    /// The dataset cannot be used with this configuration (missing, empty, wrong tokenizer, too small).
    case data(DataError)
    /// The model or optimizer refused the configuration or a batch.
    case training(TrainingError)
    /// Saving or reading a checkpoint failed.
    case checkpoint(CheckpointError)
    /// `--resume` found a checkpoint from an incompatible run.
    case incompatibleCheckpoint(path: String, reason: String)
    /// Writing the log, plot or final model failed.
    case output(path: String, reason: String)
    /// The loss became NaN or infinite.
    case diverged(step: Int, loss: Double)
    /// The ranks cannot train together: a rank count that does not divide the batch, ranks with different
    /// configurations, ranks resuming from different checkpoints.
    case distributed(String)
    /// A collective failed on this rank (a peer died or hung past the timeout, or MPI failed); `diagnosis` says
    /// what is known about the other ranks.
    case collective(DistributedError, diagnosis: String)

    public var description: String {
        switch self {
        case .configuration(let error): "configuration: \(error)"
        case .data(let error): "data: \(error)"
        case .training(let error): "\(error)"
        case .checkpoint(let error): "checkpoint: \(error)"
        case .incompatibleCheckpoint(let path, let reason): "cannot resume from \(path): \(reason)"
        case .output(let path, let reason): "cannot write \(path): \(reason)"
        case .diverged(let step, let loss): "the loss diverged at step \(step) (\(loss)); lower optimizer.lr"
        case .distributed(let reason): "distributed training: \(reason)"
        case .collective(let error, let diagnosis):
            diagnosis.isEmpty ? "\(error)" : "\(error); \(diagnosis)"
        }
    }
}

/// One optimizer step's measurements (also one line of `log.jsonl`).
public struct TrainingStepRecord: Codable, Sendable, Equatable {
    /// Optimizer steps completed (1 after the first step).
    public var step: Int
    /// Mean cross-entropy over every target token of the step's global batch (nats per token).
    public var loss: Double
    /// Learning rate used by this step.
    public var lr: Double
    /// Global gradient L2 norm before clipping.
    public var gradNorm: Double
    /// Training tokens (targets) processed per second in this step.
    public var tokensPerSecond: Double
    /// Seconds since this process started training.
    public var elapsed: Double
    /// Validation loss, when evaluated after this step.
    public var validationLoss: Double?
    /// Several ranks: each rank's forward and backward seconds of this step (rank order), waits excluded.
    public var rankComputeSeconds: [Double]?
    /// Several ranks: each rank's seconds blocked on gradient (and ZeRO-1 parameter) collectives.
    public var rankCommunicationSeconds: [Double]?
    /// Several ranks: the rank with the longest compute time.
    public var stragglerRank: Int?
    /// Several ranks: the straggler's compute time over the median of all ranks' (1 = balanced).
    public var stragglerRatio: Double?

    enum CodingKeys: String, CodingKey {
        case step, loss, lr, elapsed
        case gradNorm = "grad_norm"
        case tokensPerSecond = "tokens_per_s"
        case validationLoss = "val_loss"
        case rankComputeSeconds = "rank_compute_s"
        case rankCommunicationSeconds = "rank_comm_s"
        case stragglerRank = "straggler_rank"
        case stragglerRatio = "straggler_ratio"
    }
}

/// Runs `seed train`: builds the model, optimizer, schedule and loaders from a ``TrainingConfiguration`` and trains.
///
/// Layout of the run directory (`output.dir`):
/// - `log.jsonl`: one ``TrainingStepRecord`` per step;
/// - `loss.svg`: the loss curve, refreshed at every evaluation and checkpoint;
/// - `checkpoints/step-XXXXXXXX/`: ``CheckpointStore`` checkpoints (model, AdamW moments, ``TrainingState``);
/// - `final/model.safetensors` + `final/config.json`: the trained weights with Hugging Face names and a
///   `LlamaConfig`-style JSON.
///
/// Data parallelism: with a ``Collective`` of N ranks (`mpirun`/`srun`), `training.batch_size` is the global batch
/// and must be a multiple of `N × micro_batch_size` (checked before any work). Rank `r` trains on rows
/// `[r·B/N, (r+1)·B/N)` of each global batch (its loader reads only those windows), every loss is normalised by the
/// global token count, and gradients are summed across ranks in buckets started during the last micro-batch's
/// backward, so each rank steps with the global mean gradient. With `distributed.zero1` the moments are sharded
/// (``ShardedAdamW``). Rank 0 alone writes the log, plot, metrics and final files; checkpoints are written by rank 0
/// (plus one optimizer shard per rank under ZeRO-1) and can be resumed on any rank count that divides the batch.
///
/// Determinism: weights start from ``TrainableLlama/init(configuration:pool:seed:initializerRange:)`` seeded by
/// `training.seed`, the data order depends only on the loader position, and every kernel partitions work by shape
/// and thread count, so a run killed and resumed from a checkpoint ends with the same bits as an uninterrupted one
/// (same configuration, same `training.threads`).
public final class Trainer {
    /// The run's configuration (after overrides).
    public let configuration: TrainingConfiguration
    /// The model being trained (float32).
    public let model: TrainableLlama<Float>
    /// Its optimizer, holding the whole AdamW moments (nil under ZeRO-1 on several ranks: see ``shardedOptimizer``).
    public let optimizer: AdamW<Float>?
    /// The training data in order.
    public private(set) var loader: TokenBatchLoader
    /// The validation data (nil when `eval.interval` is 0).
    public private(set) var validationLoader: TokenBatchLoader?
    /// Checkpoints of this run.
    public let store: CheckpointStore
    /// The dataset's manifest.
    public let manifest: DataManifest
    /// Optimizer steps completed.
    public private(set) var step = 0
    /// Target tokens consumed.
    public private(set) var tokensSeen = 0
    /// Step records of this run so far (reloaded from `log.jsonl` on resume).
    public private(set) var records: [TrainingStepRecord] = []
    /// Reserved for stochastic layers (none yet): saved and restored so a resumed run continues its stream.
    public private(set) var random: Xoshiro256StarStar
    /// Measured float32 GEMM throughput of the pool (FLOP/s), the MFU denominator.
    public private(set) var peakFLOPS: Double = 0

    /// Called with a progress line after every step (the CLI redraws it in place).
    public var onProgress: (String) -> Void = { _ in }
    /// Called with messages worth keeping (evaluations, checkpoints, warnings).
    public var onMessage: (String) -> Void = { _ in }

    /// The ranks this trainer trains with (a ``SingleProcessCollective`` for one process).
    public let collective: any Collective
    /// Rows of the global batch this rank trains on per step.
    public let localBatchSize: Int
    /// The gradient buckets (nil on one rank).
    public let synchronizer: GradientSynchronizer?
    /// The ZeRO-1 optimizer, holding only this rank's share of the moments (nil unless `distributed.zero1` on
    /// several ranks).
    public let shardedOptimizer: ShardedAdamW?

    private let pool: WorkerPool
    private var batch: TokenBatch
    private var microBatch: [Int32] = []
    private var telemetry: [Double] = []
    private var telemetryShard: [Double] = [0, 0, 0]
    private var heartbeat: RankHeartbeat?

    /// Whether this rank writes the run's shared files (rank 0).
    public var isLeader: Bool { collective.rank == 0 }
    /// `directory/metrics.prom`: Prometheus text of the last step (node-exporter textfile format).
    public var metricsPath: String { directory + "/metrics.prom" }

    /// The run directory.
    public var directory: String { configuration.output.dir }
    /// `directory/log.jsonl`.
    public var logPath: String { directory + "/log.jsonl" }
    /// `directory/loss.svg`.
    public var plotPath: String { directory + "/loss.svg" }
    /// `directory/final`.
    public var finalDirectory: String { directory + "/final" }

    /// The model architecture a training configuration describes (Hugging Face rotate-half RoPE).
    public static func modelConfiguration(_ configuration: TrainingConfiguration) -> LlamaConfiguration {
        let m = configuration.model
        return LlamaConfiguration(
            vocabularySize: m.vocabSize, hiddenSize: m.hiddenSize, intermediateSize: m.intermediateSize,
            layerCount: m.layers, headCount: m.heads, kvHeadCount: m.kvHeads, ropeBase: Float(m.ropeTheta),
            rmsNormEpsilon: Float(m.normEps), contextLength: m.contextLength, tiedEmbeddings: m.tieEmbeddings,
            ropeInterleaved: false)
    }

    /// Checks everything and builds the run; nothing is written until ``run(resume:)``.
    ///
    /// - Parameter collective: the ranks to train with; default one process.
    /// - Throws: ``TrainerError`` for an invalid configuration, a rank count that does not divide the batch into
    ///   whole micro-batches, a missing or empty dataset, a dataset made with another tokenizer (vocabulary size
    ///   or ids out of range), or too little data for one batch.
    public init(
        configuration: TrainingConfiguration, collective: any Collective = SingleProcessCollective()
    ) throws(TrainerError) {
        do {
            try configuration.validate()
        } catch {
            throw .configuration(error)
        }
        self.configuration = configuration
        self.collective = collective
        let t = configuration.training
        let ranks = collective.worldSize
        guard t.batchSize % (ranks * t.microBatchSize) == 0 else {
            throw .distributed(
                "training.batch_size \(t.batchSize) (the global batch) cannot be split over \(ranks) ranks in "
                    + "micro-batches of \(t.microBatchSize): it must be a multiple of \(ranks) × "
                    + "\(t.microBatchSize) = \(ranks * t.microBatchSize); change the rank count or the batch sizes")
        }
        localBatchSize = t.batchSize / ranks
        let shards: TokenShardSet
        do throws(DataError) {
            shards = try TokenShardSet(
                directory: configuration.data.dir, split: .train, verifyChecksums: configuration.data.verifyChecksums,
                vocabularySize: configuration.model.vocabSize)
            guard shards.manifest.train.maxTokenId < configuration.model.vocabSize else {
                throw DataError.tokenizerMismatch(
                    reason: "the training split has token id \(shards.manifest.train.maxTokenId), outside the "
                        + "model's vocabulary of \(configuration.model.vocabSize)")
            }
            guard shards.tokenCount > 0 else {
                throw DataError.notEnoughData(reason: "the training split of \(configuration.data.dir) is empty")
            }
            loader = try TokenBatchLoader(
                shards: shards, batchSize: t.batchSize / ranks, sequenceLength: t.seqLen, rank: collective.rank,
                worldSize: ranks, seed: t.seed, shuffle: true)
            if configuration.eval.interval > 0 {
                let validation = try TokenShardSet(
                    directory: configuration.data.dir, split: .validation,
                    verifyChecksums: configuration.data.verifyChecksums, vocabularySize: configuration.model.vocabSize)
                guard validation.tokenCount > 0 else {
                    throw DataError.notEnoughData(
                        reason: "the validation split of \(configuration.data.dir) is empty; prepare the data with "
                            + "--validation-fraction > 0 or set eval.interval = 0")
                }
                validationLoader = try TokenBatchLoader(
                    shards: validation, batchSize: t.microBatchSize, sequenceLength: t.seqLen, seed: t.seed,
                    shuffle: false)
            }
        } catch {
            throw .data(error)
        }
        manifest = shards.manifest
        pool = WorkerPool(threads: t.threads ?? WorkerPool.onlineCPUCount)
        do {
            model = try TrainableLlama<Float>(
                configuration: Self.modelConfiguration(configuration), pool: pool, seed: t.seed)
            try model.tape.setProductPrecision(t.precision.productPrecision)
            let o = configuration.optimizer
            let adamW = AdamWConfiguration(beta1: o.beta1, beta2: o.beta2, epsilon: o.eps, weightDecay: o.weightDecay)
            try adamW.validate()
            optimizer =
                ranks > 1 && configuration.distributed.zero1
                ? nil
                : try AdamW<Float>(
                    parameters: model.parameters, configuration: adamW, pool: pool,
                    decay: { !$0.name.hasSuffix("norm.weight") })
        } catch {
            throw .training(error)
        }
        if ranks > 1 {
            let d = configuration.distributed
            let synchronizer = GradientSynchronizer(
                parameters: model.parameters, collective: collective, mode: d.zero1 ? .reduceScatter : .allReduce,
                bucketElements: d.bucketElements)
            model.tape.onParameterGradientReady = { synchronizer.parameterReady($0) }
            self.synchronizer = synchronizer
            if d.zero1 {
                let o = configuration.optimizer
                do {
                    shardedOptimizer = try ShardedAdamW(
                        parameters: model.parameters, synchronizer: synchronizer,
                        configuration: AdamWConfiguration(
                            beta1: o.beta1, beta2: o.beta2, epsilon: o.eps, weightDecay: o.weightDecay),
                        pool: pool, decay: { !$0.name.hasSuffix("norm.weight") })
                } catch {
                    throw .training(error)
                }
            } else {
                shardedOptimizer = nil
            }
        } else {
            synchronizer = nil
            shardedOptimizer = nil
        }
        store = CheckpointStore(directory: configuration.output.dir, keepLast: configuration.checkpoint.keepLast)
        random = Xoshiro256StarStar(seed: derivedSeed(t.seed, name: "trainer"))
        batch = TokenBatch(batchSize: t.batchSize / ranks, sequenceLength: t.seqLen)
        telemetry = [Double](repeating: 0, count: 3 * ranks)
    }

    // MARK: Schedule

    /// The learning rate of optimizer step `step` (0-based): linear warm-up to `lr`, then the configured decay to
    /// `min_lr` at `training.steps`.
    public func learningRate(atStep step: Int) -> Double {
        let o = configuration.optimizer
        let total = configuration.training.steps
        switch o.schedule {
        case .cosine:
            return LearningRateSchedule(
                peakLearningRate: o.lr, minimumLearningRate: o.minLr, warmupSteps: o.warmupSteps, totalSteps: total
            ).learningRate(atStep: step)
        case .linear, .constant:
            if step < o.warmupSteps { return o.lr * Double(step + 1) / Double(o.warmupSteps) }
            if o.schedule == .constant { return o.lr }
            if step >= total || total == o.warmupSteps { return o.minLr }
            let progress = Double(step - o.warmupSteps) / Double(total - o.warmupSteps)
            return o.lr + (o.minLr - o.lr) * progress
        }
    }

    // MARK: FLOPs

    /// Trainable parameters.
    public var parameterCount: Int { model.parameters.elementCount }

    /// Training FLOPs per target token: `6·N` for the matrix products of forward and backward plus the attention
    /// scores and mixing, `12·layers·hidden·seq_len / 2` for a causal mask (PaLM's estimate, halved).
    public var flopsPerToken: Double {
        Self.flopsPerToken(configuration: configuration, parameterCount: parameterCount)
    }

    /// Training FLOPs per target token of `configuration` with `parameterCount` parameters:
    /// `6·N + 6·layers·hidden·seq_len` (see ``flopsPerToken``).
    public static func flopsPerToken(configuration: TrainingConfiguration, parameterCount: Int) -> Double {
        let m = configuration.model
        return 6 * Double(parameterCount) + 6 * Double(m.layers * m.hiddenSize * configuration.training.seqLen)
    }

    /// Measures the pool's float32 GEMM throughput (see ``measureSgemmPeak(pool:)``) into ``peakFLOPS``.
    public func measurePeakFLOPS() -> Double {
        peakFLOPS = measureSgemmPeak(pool: pool)
        return peakFLOPS
    }

    // MARK: Running

    /// Trains to `training.steps`, checkpointing and evaluating at the configured intervals, then writes
    /// `final/`. With `resume`, first restores the newest valid checkpoint (skipping damaged ones with a warning);
    /// without one it starts from scratch.
    ///
    /// On several ranks every rank calls this; the ranks first check that their configurations agree.
    ///
    /// - Throws: ``TrainerError``; ``TrainerError/collective(_:diagnosis:)`` when a peer rank died or hung.
    public func run(resume: Bool) throws(TrainerError) {
        do {
            try DataFileSystem.createDirectories(directory)
        } catch {
            throw .output(path: directory, reason: error.reason)
        }
        if collective.worldSize > 1 {
            heartbeat = RankHeartbeat(directory: directory, rank: collective.rank, worldSize: collective.worldSize)
            heartbeat?.beat(step: step)
            try checkConfigurationsAgree()
        }
        if resume {
            try restoreLatest()
        } else if isLeader {
            try writeLog(records: [])
        }
        if peakFLOPS == 0 { _ = measurePeakFLOPS() }
        let t = configuration.training
        let totalSteps = t.steps
        let microBatches = localBatchSize / t.microBatchSize
        let microRows = t.microBatchSize
        let width = t.seqLen + 1
        let normalizer = Double(t.batchSize * t.seqLen)
        let started = DispatchTime.now().uptimeNanoseconds
        let firstStep = step
        var log: FileHandle?
        if isLeader {
            do {
                log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
                try log?.seekToEnd()
            } catch {
                throw .output(path: logPath, reason: "\(error)")
            }
        }
        defer { try? log?.close() }
        onMessage(
            "model: \(parameterCount) parameters, \(String(format: "%.1f", flopsPerToken / 1e6)) MFLOP/token, "
                + "\(t.precision.rawValue) products; "
                + "peak sgemm \(String(format: "%.1f", peakFLOPS / 1e9)) GFLOP/s on \(pool.threadCount) thread(s); "
                + "data: \(loader.windowCount) windows, \(loader.batchesPerEpoch) batches/epoch"
                + (collective.worldSize > 1
                    ? "; \(collective.worldSize) ranks × \(localBatchSize) rows"
                        + (configuration.distributed.zero1 ? ", ZeRO-1" : "") + ", "
                        + "\(synchronizer?.layout.buckets.count ?? 0) gradient buckets"
                    : ""))
        while step < totalSteps {
            let stepStart = DispatchTime.now().uptimeNanoseconds
            loader.next(into: &batch)
            model.zeroGradients()
            var loss = 0.0
            for micro in 0..<microBatches {
                microBatch.removeAll(keepingCapacity: true)
                microBatch.append(
                    contentsOf: batch.tokens[(micro * microRows * width)..<((micro + 1) * microRows * width)])
                if micro == microBatches - 1 { synchronizer?.arm() }
                do {
                    loss += try model.lossAndGradients(tokens: microBatch, batchSize: microRows, normalizer: normalizer)
                } catch {
                    throw .training(error)
                }
            }
            let computeSeconds = Double(DispatchTime.now().uptimeNanoseconds - stepStart) / 1e9
            var rankCompute: [Double]?
            var rankCommunication: [Double]?
            if let synchronizer {
                try collectively { () throws(DistributedError) in try synchronizer.finish() }
                (loss, rankCompute, rankCommunication) = try gatherStepTelemetry(
                    loss: loss, compute: computeSeconds, communication: synchronizer.waitSeconds)
            }
            guard loss.isFinite else { throw .diverged(step: step + 1, loss: loss) }
            let gradNorm: Double
            let lr = learningRate(atStep: step)
            if let shardedOptimizer, let synchronizer {
                let norm = try collectively { () throws(DistributedError) in try synchronizer.shardGradientNorm() }
                let maxNorm = configuration.optimizer.gradClip
                if maxNorm > 0, norm.isFinite, maxNorm / (norm + 1e-6) < 1 {
                    synchronizer.scaleShardGradients(by: Float(maxNorm / (norm + 1e-6)))
                }
                gradNorm = norm
                shardedOptimizer.step(learningRate: lr, shardGradients: synchronizer.shardGradients)
                try collectively { () throws(DistributedError) in try synchronizer.gatherParameters() }
            } else {
                if configuration.optimizer.gradClip > 0 {
                    gradNorm = clipGradientNorm(model.parameters, maxNorm: configuration.optimizer.gradClip, pool: pool)
                } else {
                    gradNorm = gradientNorm(model.parameters, pool: pool)
                }
                optimizer?.step(learningRate: lr)
            }
            step += 1
            tokensSeen += t.batchSize * t.seqLen
            heartbeat?.beat(step: step)
            let now = DispatchTime.now().uptimeNanoseconds
            let seconds = Double(now - stepStart) / 1e9
            let tokensPerSecond = Double(t.batchSize * t.seqLen) / seconds
            var record = TrainingStepRecord(
                step: step, loss: loss, lr: lr, gradNorm: gradNorm, tokensPerSecond: tokensPerSecond,
                elapsed: Double(now - started) / 1e9, validationLoss: nil)
            if let rankCompute, let rankCommunication {
                record.rankComputeSeconds = rankCompute
                record.rankCommunicationSeconds = rankCommunication
                let straggler = Self.straggler(rankCompute)
                record.stragglerRank = straggler.rank
                record.stragglerRatio = straggler.ratio
            }
            let evaluate =
                configuration.eval.interval > 0 && (step % configuration.eval.interval == 0 || step == totalSteps)
            if evaluate, validationLoader != nil, isLeader {
                record.validationLoss = try validationLoss()
            }
            if isLeader {
                records.append(record)
                do {
                    try log?.write(contentsOf: Self.jsonLine(record))
                } catch {
                    throw .output(path: logPath, reason: "\(error)")
                }
                writeMetrics(record, stepSeconds: seconds)
            }
            let done = step - firstStep
            let averageSeconds = Double(now - started) / 1e9 / Double(done)
            let mfu = tokensPerSecond * flopsPerToken / max(peakFLOPS * Double(collective.worldSize), 1)
            var line = String(
                format: "step %d/%d | loss %.4f | lr %.2e | %.0f tok/s | MFU %.1f%% | ETA %@", step, totalSteps,
                loss, lr, tokensPerSecond, 100 * mfu, Self.duration(averageSeconds * Double(totalSteps - step)))
            if let ratio = record.stragglerRatio, let slowest = record.stragglerRank,
                let communication = record.rankCommunicationSeconds
            {
                line += String(
                    format: " | comm %.0f ms | slowest rank %d ×%.2f median", 1000 * communication[collective.rank],
                    slowest, ratio)
            }
            onProgress(line)
            if let validation = record.validationLoss {
                onMessage(String(format: "step %d: val_loss %.4f (train loss %.4f)", step, validation, loss))
            }
            let checkpointNow =
                step == totalSteps
                || (configuration.checkpoint.interval > 0 && step % configuration.checkpoint.interval == 0)
            if checkpointNow {
                try saveCheckpoint()
            }
            if (evaluate || checkpointNow) && isLeader { writePlot() }
        }
        if isLeader { try writeFinal() }
        if collective.worldSize > 1 {
            try collectively { () throws(DistributedError) in try collective.barrier() }
        }
    }

    /// Runs a collective operation, turning its failure into ``TrainerError/collective(_:diagnosis:)`` with what the
    /// heartbeat files say about the other ranks.
    private func collectively<Result>(_ body: () throws(DistributedError) -> Result) throws(TrainerError) -> Result {
        heartbeat?.enter(.waiting)
        do {
            let result = try body()
            heartbeat?.enter(.computing)
            return result
        } catch {
            heartbeat?.enter(.failed)
            throw .collective(error, diagnosis: heartbeat?.diagnosePeers() ?? "")
        }
    }

    /// All-gathers `[loss, compute seconds, communication seconds]` of every rank; returns the global loss (the
    /// ranks' partial losses summed in rank order, the same on every rank) and the per-rank times.
    private func gatherStepTelemetry(loss: Double, compute: Double, communication: Double) throws(TrainerError)
        -> (Double, [Double], [Double])
    {
        let ranks = collective.worldSize
        telemetryShard[0] = loss
        telemetryShard[1] = compute
        telemetryShard[2] = communication
        try collectively { () throws(DistributedError) in
            try telemetryShard.withUnsafeBufferPointer { (shard) throws(DistributedError) in
                try telemetry.withUnsafeMutableBufferPointer { (output) throws(DistributedError) in
                    try collective.allGather(shard, into: output)
                }
            }
        }
        var total = 0.0
        var computes: [Double] = []
        var communications: [Double] = []
        for rank in 0..<ranks {
            total += telemetry[3 * rank]
            computes.append(telemetry[3 * rank + 1])
            communications.append(telemetry[3 * rank + 2])
        }
        return (total, computes, communications)
    }

    /// The slowest rank of `seconds` and its time over the median (the mean of the middle two for an even count).
    static func straggler(_ seconds: [Double]) -> (rank: Int, ratio: Double) {
        guard let slowest = seconds.indices.max(by: { seconds[$0] < seconds[$1] }) else { return (0, 1) }
        let sorted = seconds.sorted()
        let middle = sorted.count / 2
        let median = sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
        return (slowest, median > 0 ? seconds[slowest] / median : 1)
    }

    /// Every rank's configuration fingerprint must equal rank 0's; otherwise every rank throws the same error
    /// naming the ranks that differ.
    private func checkConfigurationsAgree() throws(TrainerError) {
        let mine = configurationFingerprint(configuration)
        let all = try collectively { () throws(DistributedError) in
            try collective.allGather(mine, totalCount: 4 * collective.worldSize)
        }
        let reference = Array(all[0..<4])
        let differing = (1..<collective.worldSize).filter { Array(all[(4 * $0)..<(4 * $0 + 4)]) != reference }
        guard differing.isEmpty else {
            throw .distributed(
                "the configurations of rank\(differing.count == 1 ? "" : "s") "
                    + "\(differing.map(String.init).joined(separator: ", ")) differ from rank 0's (every rank must "
                    + "start with the same configuration file and overrides)")
        }
    }

    /// Mean loss over the first `eval.batches` validation batches (the same batches every time).
    public func validationLoss() throws(TrainerError) -> Double {
        guard var validation = validationLoader else { return .nan }
        let count = min(configuration.eval.batches, validation.batchesPerEpoch)
        var total = 0.0
        for index in 0..<count {
            let batch = validation.batch(epoch: 0, index: index)
            do {
                total += try model.loss(tokens: batch.tokens, batchSize: batch.batchSize)
            } catch {
                throw .training(error)
            }
        }
        validationLoader = validation
        return total / Double(count)
    }

    // MARK: Checkpoints

    /// Saves model, optimizer moments and ``TrainingState`` at the current step. On several ranks every rank calls
    /// it: rank 0 writes the checkpoint; under ZeRO-1 each rank first writes its moment shard, which rank 0 moves
    /// into the checkpoint with a manifest (``OptimizerShards``) before publishing it atomically.
    public func saveCheckpoint() throws(TrainerError) {
        let ranks = collective.worldSize
        var extraFiles: [String: String] = [:]
        var shards: OptimizerShards?
        if let shardedOptimizer, let synchronizer {
            let staging = store.checkpointsDirectory + "/.shard-\(step)-rank-\(collective.rank)"
            let (m, v) = shardedOptimizer.shardState()
            var writer = SafetensorsWriter()
            do {
                try DataFileSystem.createDirectories(store.checkpointsDirectory)
                try writer.addTensor(name: "exp_avg", shape: [m.count], floats: m)
                try writer.addTensor(name: "exp_avg_sq", shape: [v.count], floats: v)
                try writer.write(to: staging)
            } catch {
                throw .checkpoint(.writeFailed(path: staging, reason: "\(error)"))
            }
            // Every rank's ranges follow from the shared layout.
            var list: [OptimizerShards.Shard] = []
            for rank in 0..<ranks {
                let ranges = synchronizer.layout.ownedRanges(rank: rank, worldSize: ranks)
                let name = OptimizerShards.fileName(rank: rank, worldSize: ranks)
                list.append(.init(file: name, ranges: ranges.map { [$0.lowerBound, $0.upperBound] }))
                extraFiles[name] = store.checkpointsDirectory + "/.shard-\(step)-rank-\(rank)"
            }
            shards = OptimizerShards(worldSize: ranks, flatCount: model.parameters.flatCount, shards: list)
            try collectively { () throws(DistributedError) in try collective.barrier() }
        }
        if isLeader {
            var modelTensors: [String: CheckpointTensor] = [:]
            for parameter in model.parameters.parameters {
                modelTensors[parameter.name] = CheckpointTensor(shape: parameter.shape, values: parameter.values)
            }
            var optimizerTensors: [String: CheckpointTensor] = [:]
            if let optimizer {
                for tensor in optimizer.stateTensors() {
                    optimizerTensors[tensor.name] = CheckpointTensor(shape: tensor.shape, values: tensor.values)
                }
            }
            let state = TrainingState(
                step: step, dataPosition: loader.position, rngState: random.stateWords, tokensSeen: tokensSeen,
                configuration: configuration, optimizerShards: shards)
            do {
                let path = try store.save(
                    step: step, model: modelTensors, optimizer: optimizerTensors, state: state, extraFiles: extraFiles)
                onMessage("step \(step): checkpoint \(path)")
            } catch {
                throw .checkpoint(error)
            }
        }
        if ranks > 1 {
            try collectively { () throws(DistributedError) in try collective.barrier() }
        }
    }

    /// Restores the newest checkpoint that verifies; warns and starts fresh when there is none. On several ranks
    /// the ranks must pick the same checkpoint.
    private func restoreLatest() throws(TrainerError) {
        var chosen: LoadedCheckpoint<TrainingState>?
        for candidate in store.steps().reversed() {
            do {
                chosen = try store.load(step: candidate, as: TrainingState.self)
                break
            } catch {
                onMessage("warning: skipping checkpoint: \(error)")
            }
        }
        if collective.worldSize > 1 {
            var bounds = [chosen?.step ?? -1, -(chosen?.step ?? -1)]
            try collectively { () throws(DistributedError) in try collective.allReduce(&bounds, .max) }
            guard bounds[0] == -bounds[1] else {
                throw .distributed(
                    "the ranks found different newest valid checkpoints (steps \(-bounds[1]) to \(bounds[0])); "
                        + "every rank must see the same run directory")
            }
        }
        if let loaded = chosen {
            try restore(loaded)
            onMessage("resumed from \(loaded.directory) (step \(loaded.step))")
            return
        }
        onMessage("warning: no valid checkpoint in \(store.checkpointsDirectory); starting from step 0")
        if isLeader { try writeLog(records: []) }
    }

    private func restore(_ loaded: LoadedCheckpoint<TrainingState>) throws(TrainerError) {
        let saved = loaded.state.configuration
        var problems: [String] = []
        if saved.model != configuration.model { problems.append("the model shape differs") }
        let (a, b) = (saved.training, configuration.training)
        if a.batchSize != b.batchSize || a.microBatchSize != b.microBatchSize || a.seqLen != b.seqLen {
            problems.append("the batch shape differs")
        }
        if a.seed != b.seed { problems.append("training.seed differs (\(a.seed) vs \(b.seed))") }
        if !problems.isEmpty {
            throw .incompatibleCheckpoint(path: loaded.directory, reason: problems.joined(separator: "; "))
        }
        for parameter in model.parameters.parameters {
            guard let tensor = loaded.model[parameter.name], tensor.values.count == parameter.count else {
                throw .incompatibleCheckpoint(
                    path: loaded.directory, reason: "tensor '\(parameter.name)' is missing or has the wrong size")
            }
            tensor.values.withUnsafeBufferPointer {
                parameter.value.update(from: $0.baseAddress!, count: parameter.count)
            }
        }
        do {
            if let optimizer, loaded.state.optimizerShards == nil {
                try optimizer.loadState(loaded.optimizer.mapValues(\.values), stepCount: loaded.step)
            } else {
                // Reshard: rebuild the whole flat moments, then take what this run's partition needs.
                let (m, v) = try flatMoments(loaded)
                if let shardedOptimizer, let synchronizer {
                    try shardedOptimizer.load(
                        flatFirstMoment: m, flatSecondMoment: v, ownedRanges: synchronizer.ownedRanges,
                        stepCount: loaded.step)
                } else {
                    var tensors: [String: [Float]] = [:]
                    for parameter in model.parameters.parameters {
                        let range = parameter.offset..<(parameter.offset + parameter.count)
                        tensors[parameter.name + ".exp_avg"] = Array(m[range])
                        tensors[parameter.name + ".exp_avg_sq"] = Array(v[range])
                    }
                    try optimizer?.loadState(tensors, stepCount: loaded.step)
                }
            }
        } catch {
            throw .incompatibleCheckpoint(path: loaded.directory, reason: error.description)
        }
        do {
            try loader.seek(to: loaded.state.dataPosition)
        } catch {
            throw .incompatibleCheckpoint(path: loaded.directory, reason: error.description)
        }
        guard let generator = Xoshiro256StarStar(stateWords: loaded.state.rngState) else {
            throw .incompatibleCheckpoint(path: loaded.directory, reason: "the RNG state is not four nonzero words")
        }
        random = generator
        step = loaded.step
        tokensSeen = loaded.state.tokensSeen
        // Keep the log lines up to the checkpoint; later ones belong to the interrupted run and will be redone.
        if isLeader {
            let previous = Self.readLog(path: logPath).filter { $0.step <= step }
            try writeLog(records: previous)
        }
    }

    /// The whole AdamW moments of a checkpoint as flat buffers (`[flatCount]` each, zero in the padding), from
    /// `optimizer.safetensors` or from the per-rank shards its manifest lists.
    private func flatMoments(_ loaded: LoadedCheckpoint<TrainingState>) throws(TrainingError) -> ([Float], [Float]) {
        let flatCount = model.parameters.flatCount
        var m = [Float](repeating: 0, count: flatCount)
        var v = [Float](repeating: 0, count: flatCount)
        guard let manifest = loaded.state.optimizerShards else {
            for parameter in model.parameters.parameters {
                for (suffix, isFirst) in [("exp_avg", true), ("exp_avg_sq", false)] {
                    let name = parameter.name + "." + suffix
                    guard let tensor = loaded.optimizer[name], tensor.values.count == parameter.count else {
                        throw .invalidOptimizerState("tensor '\(name)' is missing or has the wrong size")
                    }
                    for i in 0..<parameter.count {
                        if isFirst {
                            m[parameter.offset + i] = tensor.values[i]
                        } else {
                            v[parameter.offset + i] = tensor.values[i]
                        }
                    }
                }
            }
            return (m, v)
        }
        guard manifest.flatCount == flatCount else {
            throw .invalidOptimizerState(
                "the optimizer shards cover \(manifest.flatCount) elements, this model has \(flatCount)")
        }
        var covered = 0
        for shard in manifest.shards {
            let path = loaded.directory + "/" + shard.file
            let first: [Float]
            let second: [Float]
            do {
                let file = try SafetensorsFile(path: path)
                first = try file.floats(named: "exp_avg")
                second = try file.floats(named: "exp_avg_sq")
            } catch {
                throw .invalidOptimizerState("\(shard.file): \(error)")
            }
            var offset = 0
            for pair in shard.ranges {
                guard pair.count == 2, pair[0] >= 0, pair[0] <= pair[1], pair[1] <= flatCount,
                    offset + pair[1] - pair[0] <= min(first.count, second.count)
                else {
                    throw .invalidOptimizerState("\(shard.file): range \(pair) does not fit")
                }
                for (i, flat) in (pair[0]..<pair[1]).enumerated() {
                    m[flat] = first[offset + i]
                    v[flat] = second[offset + i]
                }
                offset += pair[1] - pair[0]
                covered += pair[1] - pair[0]
            }
        }
        guard covered == flatCount else {
            throw .invalidOptimizerState("the optimizer shards cover \(covered) of \(flatCount) elements")
        }
        return (m, v)
    }

    // MARK: Outputs

    private func writeLog(records: [TrainingStepRecord]) throws(TrainerError) {
        self.records = records
        do {
            try DataFileSystem.writeAtomically(logPath, records.flatMap { Array(Self.jsonLine($0)) })
        } catch {
            throw .output(path: logPath, reason: error.reason)
        }
    }

    static func jsonLine(_ record: TrainingStepRecord) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        var data = (try? encoder.encode(record)) ?? Data("{}".utf8)
        data.append(0x0A)
        return data
    }

    /// The records of a `log.jsonl` (unreadable lines are skipped: the last may be cut short by a kill).
    public static func readLog(path: String) -> [TrainingStepRecord] {
        guard let bytes = try? DataFileSystem.readFile(path) else { return [] }
        return bytes.split(separator: 0x0A).compactMap {
            try? JSONDecoder().decode(TrainingStepRecord.self, from: Data($0))
        }
    }

    /// Writes `loss.svg` from the records so far (failures are reported, not fatal).
    public func writePlot() {
        let plot = LossPlot(
            title: "seed train: \(parameterCount) parameters",
            records: records.map {
                TrainingLogRecord(step: $0.step, trainLoss: $0.loss, validationLoss: $0.validationLoss)
            })
        do {
            try plot.write(to: plotPath)
        } catch {
            onMessage("warning: cannot write the loss plot: \(error)")
        }
    }

    /// Writes `final/model.safetensors` and `final/config.json`.
    public func writeFinal() throws(TrainerError) {
        do {
            try DataFileSystem.createDirectories(finalDirectory)
        } catch {
            throw .output(path: finalDirectory, reason: error.reason)
        }
        do {
            try model.save(to: finalDirectory + "/model.safetensors")
        } catch {
            throw .training(error)
        }
        let json = Self.huggingFaceConfig(
            model.configuration, endOfTextID: manifest.tokenizer.endOfTextId)
        do {
            try DataFileSystem.writeAtomically(finalDirectory + "/config.json", Array(json.utf8))
        } catch {
            throw .output(path: finalDirectory + "/config.json", reason: error.reason)
        }
        writePlot()
        onMessage("final model: \(finalDirectory)/model.safetensors, \(finalDirectory)/config.json")
    }

    /// A Hugging Face `LlamaConfig` JSON for `configuration` (what `LlamaForCausalLM.from_pretrained` reads).
    public static func huggingFaceConfig(_ c: LlamaConfiguration, endOfTextID: Int) -> String {
        let object: [String: Any] = [
            "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": c.vocabularySize,
            "hidden_size": c.hiddenSize, "intermediate_size": c.intermediateSize,
            "num_hidden_layers": c.layerCount, "num_attention_heads": c.headCount,
            "num_key_value_heads": c.kvHeadCount, "head_dim": c.headDim,
            "max_position_embeddings": c.contextLength, "rms_norm_eps": exactDecimal(c.rmsNormEpsilon),
            "rope_theta": exactDecimal(c.ropeBase), "tie_word_embeddings": c.tiedEmbeddings,
            "rope_interleaved": c.ropeInterleaved, "hidden_act": "silu", "attention_bias": false, "mlp_bias": false,
            "torch_dtype": "float32", "bos_token_id": endOfTextID, "eos_token_id": endOfTextID,
            "initializer_range": 0.02,
        ]
        let data =
            (try? JSONSerialization.data(
                withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "?" }
        let total = Int(seconds.rounded())
        if total >= 3600 { return String(format: "%dh%02dm", total / 3600, (total % 3600) / 60) }
        if total >= 60 { return String(format: "%dm%02ds", total / 60, total % 60) }
        return "\(total)s"
    }
}

/// Measures `pool`'s float32 GEMM throughput in FLOP/s: every thread multiplies 384×384 matrices with single-threaded
/// OpenBLAS calls for about 0.3 s (the MFU denominator of `seed train` and `seed bench-train`).
public func measureSgemmPeak(pool: WorkerPool) -> Double {
    let n = 384
    let threads = pool.threadCount
    let matrices = (0..<threads).map { _ in [Float](repeating: 0.5, count: 3 * n * n) }
    var repeats = 1
    while true {
        let start = DispatchTime.now().uptimeNanoseconds
        matrices.withUnsafeBufferPointer { all in
            pool.parallelFor(threads) { thread in
                all[thread].withUnsafeBufferPointer { m in
                    let base = UnsafeMutablePointer(mutating: m.baseAddress!)
                    for _ in 0..<repeats {
                        cblas_sgemm(
                            CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1, base,
                            Int32(n), base + n * n, Int32(n), 0, base + 2 * n * n, Int32(n))
                    }
                }
            }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        if seconds > 0.3 || repeats >= 1 << 12 {
            return 2 * Double(n * n * n) * Double(repeats * threads) / seconds
        }
        repeats *= seconds < 0.03 ? 8 : 2
    }
}
