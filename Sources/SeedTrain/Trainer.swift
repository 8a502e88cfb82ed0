import CBLAS
import Foundation
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

    public var description: String {
        switch self {
        case .configuration(let error): "configuration: \(error)"
        case .data(let error): "data: \(error)"
        case .training(let error): "\(error)"
        case .checkpoint(let error): "checkpoint: \(error)"
        case .incompatibleCheckpoint(let path, let reason): "cannot resume from \(path): \(reason)"
        case .output(let path, let reason): "cannot write \(path): \(reason)"
        case .diverged(let step, let loss): "the loss diverged at step \(step) (\(loss)); lower optimizer.lr"
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

    enum CodingKeys: String, CodingKey {
        case step, loss, lr, elapsed
        case gradNorm = "grad_norm"
        case tokensPerSecond = "tokens_per_s"
        case validationLoss = "val_loss"
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
/// Determinism: weights start from ``TrainableLlama/init(configuration:pool:seed:initializerRange:)`` seeded by
/// `training.seed`, the data order depends only on the loader position, and every kernel partitions work by shape
/// and thread count, so a run killed and resumed from a checkpoint ends with the same bits as an uninterrupted one
/// (same configuration, same `training.threads`).
public final class Trainer {
    /// The run's configuration (after overrides).
    public let configuration: TrainingConfiguration
    /// The model being trained (float32).
    public let model: TrainableLlama<Float>
    /// Its optimizer.
    public let optimizer: AdamW<Float>
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

    private let pool: WorkerPool
    private var batch: TokenBatch
    private var microBatch: [Int32] = []

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
    /// - Throws: ``TrainerError`` for an invalid configuration, a missing or empty dataset, a dataset made with
    ///   another tokenizer (vocabulary size or ids out of range), or too little data for one batch.
    public init(configuration: TrainingConfiguration) throws(TrainerError) {
        do {
            try configuration.validate()
        } catch {
            throw .configuration(error)
        }
        self.configuration = configuration
        let t = configuration.training
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
                shards: shards, batchSize: t.batchSize, sequenceLength: t.seqLen, seed: t.seed, shuffle: true)
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
            let o = configuration.optimizer
            optimizer = try AdamW<Float>(
                parameters: model.parameters,
                configuration: AdamWConfiguration(
                    beta1: o.beta1, beta2: o.beta2, epsilon: o.eps, weightDecay: o.weightDecay),
                pool: pool, decay: { !$0.name.hasSuffix("norm.weight") })
        } catch {
            throw .training(error)
        }
        store = CheckpointStore(directory: configuration.output.dir, keepLast: configuration.checkpoint.keepLast)
        random = Xoshiro256StarStar(seed: derivedSeed(t.seed, name: "trainer"))
        batch = TokenBatch(batchSize: t.batchSize, sequenceLength: t.seqLen)
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
    /// - Throws: ``TrainerError``.
    public func run(resume: Bool) throws(TrainerError) {
        do {
            try DataFileSystem.createDirectories(directory)
        } catch {
            throw .output(path: directory, reason: error.reason)
        }
        if resume {
            try restoreLatest()
        } else {
            try writeLog(records: [])
        }
        if peakFLOPS == 0 { _ = measurePeakFLOPS() }
        let t = configuration.training
        let totalSteps = t.steps
        let microBatches = t.gradientAccumulationSteps
        let microRows = t.microBatchSize
        let width = t.seqLen + 1
        let normalizer = Double(t.batchSize * t.seqLen)
        let started = DispatchTime.now().uptimeNanoseconds
        let firstStep = step
        var log: FileHandle
        do {
            log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
            try log.seekToEnd()
        } catch {
            throw .output(path: logPath, reason: "\(error)")
        }
        defer { try? log.close() }
        onMessage(
            "model: \(parameterCount) parameters, \(String(format: "%.1f", flopsPerToken / 1e6)) MFLOP/token; "
                + "peak sgemm \(String(format: "%.1f", peakFLOPS / 1e9)) GFLOP/s on \(pool.threadCount) thread(s); "
                + "data: \(loader.windowCount) windows, \(loader.batchesPerEpoch) batches/epoch")
        while step < totalSteps {
            let stepStart = DispatchTime.now().uptimeNanoseconds
            loader.next(into: &batch)
            model.zeroGradients()
            var loss = 0.0
            for micro in 0..<microBatches {
                microBatch.removeAll(keepingCapacity: true)
                microBatch.append(
                    contentsOf: batch.tokens[(micro * microRows * width)..<((micro + 1) * microRows * width)])
                do {
                    loss += try model.lossAndGradients(tokens: microBatch, batchSize: microRows, normalizer: normalizer)
                } catch {
                    throw .training(error)
                }
            }
            guard loss.isFinite else { throw .diverged(step: step + 1, loss: loss) }
            let gradNorm: Double
            if configuration.optimizer.gradClip > 0 {
                gradNorm = clipGradientNorm(model.parameters, maxNorm: configuration.optimizer.gradClip, pool: pool)
            } else {
                gradNorm = gradientNorm(model.parameters, pool: pool)
            }
            let lr = learningRate(atStep: step)
            optimizer.step(learningRate: lr)
            step += 1
            tokensSeen += t.batchSize * t.seqLen
            let now = DispatchTime.now().uptimeNanoseconds
            let seconds = Double(now - stepStart) / 1e9
            let tokensPerSecond = Double(t.batchSize * t.seqLen) / seconds
            var record = TrainingStepRecord(
                step: step, loss: loss, lr: lr, gradNorm: gradNorm, tokensPerSecond: tokensPerSecond,
                elapsed: Double(now - started) / 1e9, validationLoss: nil)
            let evaluate =
                configuration.eval.interval > 0 && (step % configuration.eval.interval == 0 || step == totalSteps)
            if evaluate, validationLoader != nil {
                record.validationLoss = try validationLoss()
            }
            records.append(record)
            do {
                try log.write(contentsOf: Self.jsonLine(record))
            } catch {
                throw .output(path: logPath, reason: "\(error)")
            }
            let done = step - firstStep
            let averageSeconds = Double(now - started) / 1e9 / Double(done)
            let mfu = tokensPerSecond * flopsPerToken / max(peakFLOPS, 1)
            onProgress(
                String(
                    format: "step %d/%d | loss %.4f | lr %.2e | %.0f tok/s | MFU %.1f%% | ETA %@", step, totalSteps,
                    loss, lr, tokensPerSecond, 100 * mfu,
                    Self.duration(averageSeconds * Double(totalSteps - step))))
            if let validation = record.validationLoss {
                onMessage(String(format: "step %d: val_loss %.4f (train loss %.4f)", step, validation, loss))
            }
            let checkpointNow =
                step == totalSteps
                || (configuration.checkpoint.interval > 0 && step % configuration.checkpoint.interval == 0)
            if checkpointNow {
                try saveCheckpoint()
            }
            if evaluate || checkpointNow { writePlot() }
        }
        try writeFinal()
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

    /// Saves model, optimizer moments and ``TrainingState`` at the current step.
    public func saveCheckpoint() throws(TrainerError) {
        var modelTensors: [String: CheckpointTensor] = [:]
        for parameter in model.parameters.parameters {
            modelTensors[parameter.name] = CheckpointTensor(shape: parameter.shape, values: parameter.values)
        }
        var optimizerTensors: [String: CheckpointTensor] = [:]
        for tensor in optimizer.stateTensors() {
            optimizerTensors[tensor.name] = CheckpointTensor(shape: tensor.shape, values: tensor.values)
        }
        let state = TrainingState(
            step: step, dataPosition: loader.position, rngState: random.stateWords, tokensSeen: tokensSeen,
            configuration: configuration)
        do {
            let path = try store.save(step: step, model: modelTensors, optimizer: optimizerTensors, state: state)
            onMessage("step \(step): checkpoint \(path)")
        } catch {
            throw .checkpoint(error)
        }
    }

    /// Restores the newest checkpoint that verifies; warns and starts fresh when there is none.
    private func restoreLatest() throws(TrainerError) {
        for candidate in store.steps().reversed() {
            let loaded: LoadedCheckpoint<TrainingState>
            do {
                loaded = try store.load(step: candidate, as: TrainingState.self)
            } catch {
                onMessage("warning: skipping checkpoint: \(error)")
                continue
            }
            try restore(loaded)
            onMessage("resumed from \(loaded.directory) (step \(loaded.step))")
            return
        }
        onMessage("warning: no valid checkpoint in \(store.checkpointsDirectory); starting from step 0")
        try writeLog(records: [])
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
            try optimizer.loadState(loaded.optimizer.mapValues(\.values), stepCount: loaded.step)
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
        let previous = Self.readLog(path: logPath).filter { $0.step <= step }
        try writeLog(records: previous)
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
