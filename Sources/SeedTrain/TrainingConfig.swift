/// Everything `seed train` needs to know, read from a JSON, TOML or YAML file with snake_case keys in sections:
///
/// ```toml
/// [model]            # Llama-style decoder shape
/// vocab_size = 49152
/// hidden_size = 576
/// intermediate_size = 1536
/// layers = 30
/// heads = 9
/// kv_heads = 3          # optional, default: heads
/// context_length = 2048
/// rope_theta = 100000.0 # optional, default 10000
/// tie_embeddings = true # optional, default true
/// norm_eps = 1e-5       # optional, default 1e-5
///
/// [data]
/// dir = "data/fortunes"   # from `seed data prepare`
///
/// [training]
/// steps = 1000
/// batch_size = 8          # sequences per optimizer step, all ranks together (the global batch)
/// micro_batch_size = 4    # optional, default batch_size; gradient accumulation = batch_size / micro_batch_size
/// seq_len = 256
/// precision = "bf16"      # optional, default "fp32"; "bf16": matmuls with bf16 operands and float32 sums
///
/// [optimizer]
/// lr = 3e-4
///
/// [output]
/// dir = "runs/fortunes"
///
/// [distributed]           # optional; used when mpirun or srun starts several ranks
/// zero1 = false           # shard the AdamW moments across ranks (ZeRO stage 1)
/// bucket_mb = 4           # gradient bucket size for the overlapped all-reduce
/// timeout = 300           # seconds a collective may wait for a peer before the job fails
/// ```
///
/// The remaining keys are optional (see each section's defaults). ``load(path:overrides:)`` rejects unknown keys,
/// names missing ones, checks types and validates values (``validate()``) before any work starts.
public struct TrainingConfiguration: Codable, Sendable, Equatable {
    public var model: Model
    public var data: DataSection
    public var training: Training
    public var optimizer: Optimizer
    public var checkpoint: Checkpoint
    public var eval: Evaluation
    public var output: Output
    public var distributed: Distributed

    /// A complete configuration; optional sections take their defaults.
    public init(
        model: Model, data: DataSection, training: Training, optimizer: Optimizer,
        checkpoint: Checkpoint = Checkpoint(), eval: Evaluation = Evaluation(), output: Output,
        distributed: Distributed = Distributed()
    ) {
        self.distributed = distributed
        self.model = model
        self.data = data
        self.training = training
        self.optimizer = optimizer
        self.checkpoint = checkpoint
        self.eval = eval
        self.output = output
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case model, data, training, optimizer, checkpoint, eval, output, distributed
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.decode(Model.self, forKey: .model)
        data = try c.decode(DataSection.self, forKey: .data)
        training = try c.decode(Training.self, forKey: .training)
        optimizer = try c.decode(Optimizer.self, forKey: .optimizer)
        checkpoint = try c.decodeIfPresent(Checkpoint.self, forKey: .checkpoint) ?? Checkpoint()
        eval = try c.decodeIfPresent(Evaluation.self, forKey: .eval) ?? Evaluation()
        output = try c.decode(Output.self, forKey: .output)
        distributed = try c.decodeIfPresent(Distributed.self, forKey: .distributed) ?? Distributed()
    }

    /// `[model]`: the decoder's shape (Llama family: RMSNorm, RoPE, SwiGLU, grouped-query attention).
    public struct Model: Codable, Sendable, Equatable {
        /// Token ids `0..<vocab_size`; must equal the dataset tokenizer's vocabulary.
        public var vocabSize: Int
        /// Width of the residual stream.
        public var hiddenSize: Int
        /// Width of the SwiGLU feed-forward layer.
        public var intermediateSize: Int
        /// Decoder layers.
        public var layers: Int
        /// Query heads; `hidden_size / heads` is the head dimension (must be even for RoPE).
        public var heads: Int
        /// Key/value heads (grouped-query attention); divides `heads`. Default: `heads`.
        public var kvHeads: Int
        /// Longest sequence the model is built for (positions `0..<context_length`).
        public var contextLength: Int
        /// RoPE base frequency. Default 10000.
        public var ropeTheta: Double
        /// Whether the output head shares the token embedding matrix. Default true.
        public var tieEmbeddings: Bool
        /// RMSNorm epsilon. Default 1e-5.
        public var normEps: Double

        public init(
            vocabSize: Int, hiddenSize: Int, intermediateSize: Int, layers: Int, heads: Int, kvHeads: Int? = nil,
            contextLength: Int, ropeTheta: Double = 10000, tieEmbeddings: Bool = true, normEps: Double = 1e-5
        ) {
            self.vocabSize = vocabSize
            self.hiddenSize = hiddenSize
            self.intermediateSize = intermediateSize
            self.layers = layers
            self.heads = heads
            self.kvHeads = kvHeads ?? heads
            self.contextLength = contextLength
            self.ropeTheta = ropeTheta
            self.tieEmbeddings = tieEmbeddings
            self.normEps = normEps
        }

        /// `hidden_size / heads`.
        public var headDimension: Int { hiddenSize / max(heads, 1) }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case vocabSize = "vocab_size"
            case hiddenSize = "hidden_size"
            case intermediateSize = "intermediate_size"
            case layers, heads
            case kvHeads = "kv_heads"
            case contextLength = "context_length"
            case ropeTheta = "rope_theta"
            case tieEmbeddings = "tie_embeddings"
            case normEps = "norm_eps"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            vocabSize = try c.decode(Int.self, forKey: .vocabSize)
            hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
            intermediateSize = try c.decode(Int.self, forKey: .intermediateSize)
            layers = try c.decode(Int.self, forKey: .layers)
            heads = try c.decode(Int.self, forKey: .heads)
            kvHeads = try c.decodeIfPresent(Int.self, forKey: .kvHeads) ?? heads
            contextLength = try c.decode(Int.self, forKey: .contextLength)
            ropeTheta = try c.decodeIfPresent(Double.self, forKey: .ropeTheta) ?? 10000
            tieEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieEmbeddings) ?? true
            normEps = try c.decodeIfPresent(Double.self, forKey: .normEps) ?? 1e-5
        }
    }

    /// `[data]`: the prepared dataset.
    public struct DataSection: Codable, Sendable, Equatable {
        /// Directory written by `seed data prepare`.
        public var dir: String
        /// Whether shard checksums are verified when training starts. Default true.
        public var verifyChecksums: Bool

        public init(dir: String, verifyChecksums: Bool = true) {
            self.dir = dir
            self.verifyChecksums = verifyChecksums
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case dir
            case verifyChecksums = "verify_checksums"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            dir = try c.decode(String.self, forKey: .dir)
            verifyChecksums = try c.decodeIfPresent(Bool.self, forKey: .verifyChecksums) ?? true
        }
    }

    /// `[training]`: how long and how big.
    public struct Training: Codable, Sendable, Equatable {
        /// Optimizer steps to run.
        public var steps: Int
        /// Sequences per optimizer step over all ranks (the global batch): each of N ranks trains on
        /// `batch_size / N` of them, so the same file gives the same run on any number of ranks that divides it.
        public var batchSize: Int
        /// Sequences per forward/backward pass; divides `batch_size` (and, with N ranks, `batch_size / N`).
        /// Default: `batch_size` (no accumulation).
        public var microBatchSize: Int
        /// Tokens per training sequence (T); at most `model.context_length`.
        public var seqLen: Int
        /// Seed of weight initialisation and data order. Default 0.
        public var seed: UInt64
        /// Compute threads; nil (absent) uses every CPU.
        public var threads: Int?
        /// Arithmetic of the matrix products. Default fp32.
        public var precision: Precision

        public init(
            steps: Int, batchSize: Int, microBatchSize: Int? = nil, seqLen: Int, seed: UInt64 = 0, threads: Int? = nil,
            precision: Precision = .fp32
        ) {
            self.steps = steps
            self.batchSize = batchSize
            self.microBatchSize = microBatchSize ?? batchSize
            self.seqLen = seqLen
            self.seed = seed
            self.threads = threads
            self.precision = precision
        }

        /// Micro-batches accumulated per optimizer step: `batch_size / micro_batch_size`.
        public var gradientAccumulationSteps: Int { batchSize / max(microBatchSize, 1) }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case steps
            case batchSize = "batch_size"
            case microBatchSize = "micro_batch_size"
            case seqLen = "seq_len"
            case seed, threads, precision
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            steps = try c.decode(Int.self, forKey: .steps)
            batchSize = try c.decode(Int.self, forKey: .batchSize)
            microBatchSize = try c.decodeIfPresent(Int.self, forKey: .microBatchSize) ?? batchSize
            seqLen = try c.decode(Int.self, forKey: .seqLen)
            seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? 0
            threads = try c.decodeIfPresent(Int.self, forKey: .threads)
            precision = try c.decodeIfPresent(Precision.self, forKey: .precision) ?? .fp32
        }
    }

    /// `training.precision`: how the matrix products of the model compute.
    public enum Precision: String, Codable, Sendable, CaseIterable {
        /// Float32 throughout (OpenBLAS sgemm).
        case fp32
        /// Mixed precision, as PyTorch's CPU bf16 autocast: the operands of every linear layer's products (forward
        /// and both backward products) and of the output head's are rounded to bfloat16 and multiplied with float32
        /// sums (``SeedKernels/BFloat16Product``); weights, gradients, optimizer state, norms, softmax, RoPE,
        /// attention and the loss stay float32.
        case bf16

        /// The tape setting this precision means.
        public var productPrecision: ProductPrecision { self == .fp32 ? .native : .bf16 }
    }

    /// Learning-rate schedule after warmup.
    public enum Schedule: String, Codable, Sendable, CaseIterable {
        /// Cosine decay from `lr` to `min_lr` over the remaining steps.
        case cosine
        /// Linear decay from `lr` to `min_lr`.
        case linear
        /// `lr` throughout.
        case constant
    }

    /// `[optimizer]`: AdamW and its schedule.
    public struct Optimizer: Codable, Sendable, Equatable {
        /// Peak learning rate.
        public var lr: Double
        /// Learning rate at the end of the decay. Default 0.
        public var minLr: Double
        /// Steps of linear warmup from 0 to `lr`. Default 0.
        public var warmupSteps: Int
        /// Decay after warmup. Default cosine.
        public var schedule: Schedule
        /// AdamW decoupled weight decay. Default 0.1.
        public var weightDecay: Double
        /// AdamW β₁. Default 0.9.
        public var beta1: Double
        /// AdamW β₂. Default 0.95.
        public var beta2: Double
        /// AdamW ε. Default 1e-8.
        public var eps: Double
        /// Global gradient-norm clip; 0 disables. Default 1.0.
        public var gradClip: Double

        public init(
            lr: Double, minLr: Double = 0, warmupSteps: Int = 0, schedule: Schedule = .cosine,
            weightDecay: Double = 0.1, beta1: Double = 0.9, beta2: Double = 0.95, eps: Double = 1e-8,
            gradClip: Double = 1.0
        ) {
            self.lr = lr
            self.minLr = minLr
            self.warmupSteps = warmupSteps
            self.schedule = schedule
            self.weightDecay = weightDecay
            self.beta1 = beta1
            self.beta2 = beta2
            self.eps = eps
            self.gradClip = gradClip
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case lr
            case minLr = "min_lr"
            case warmupSteps = "warmup_steps"
            case schedule
            case weightDecay = "weight_decay"
            case beta1, beta2, eps
            case gradClip = "grad_clip"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            lr = try c.decode(Double.self, forKey: .lr)
            minLr = try c.decodeIfPresent(Double.self, forKey: .minLr) ?? 0
            warmupSteps = try c.decodeIfPresent(Int.self, forKey: .warmupSteps) ?? 0
            schedule = try c.decodeIfPresent(Schedule.self, forKey: .schedule) ?? .cosine
            weightDecay = try c.decodeIfPresent(Double.self, forKey: .weightDecay) ?? 0.1
            beta1 = try c.decodeIfPresent(Double.self, forKey: .beta1) ?? 0.9
            beta2 = try c.decodeIfPresent(Double.self, forKey: .beta2) ?? 0.95
            eps = try c.decodeIfPresent(Double.self, forKey: .eps) ?? 1e-8
            gradClip = try c.decodeIfPresent(Double.self, forKey: .gradClip) ?? 1.0
        }
    }

    /// `[checkpoint]`: how often and how many.
    public struct Checkpoint: Codable, Sendable, Equatable {
        /// Save every `interval` steps (and at the end); 0 saves only at the end. Default 100.
        public var interval: Int
        /// Checkpoints kept on disk (older ones are deleted). Default 3.
        public var keepLast: Int

        public init(interval: Int = 100, keepLast: Int = 3) {
            self.interval = interval
            self.keepLast = keepLast
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case interval
            case keepLast = "keep_last"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            interval = try c.decodeIfPresent(Int.self, forKey: .interval) ?? 100
            keepLast = try c.decodeIfPresent(Int.self, forKey: .keepLast) ?? 3
        }
    }

    /// `[eval]`: validation loss.
    public struct Evaluation: Codable, Sendable, Equatable {
        /// Evaluate every `interval` steps (and at the end); 0 disables evaluation. Default 100.
        public var interval: Int
        /// Validation batches per evaluation (the same batches each time). Default 10.
        public var batches: Int

        public init(interval: Int = 100, batches: Int = 10) {
            self.interval = interval
            self.batches = batches
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case interval, batches
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            interval = try c.decodeIfPresent(Int.self, forKey: .interval) ?? 100
            batches = try c.decodeIfPresent(Int.self, forKey: .batches) ?? 10
        }
    }

    /// `[output]`: where logs and checkpoints go.
    public struct Output: Codable, Sendable, Equatable {
        /// Run directory: checkpoints in `dir/checkpoints`, logs and the loss plot beside them.
        public var dir: String
        /// Log a training record every `log_interval` steps. Default 10.
        public var logInterval: Int

        public init(dir: String, logInterval: Int = 10) {
            self.dir = dir
            self.logInterval = logInterval
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case dir
            case logInterval = "log_interval"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            dir = try c.decode(String.self, forKey: .dir)
            logInterval = try c.decodeIfPresent(Int.self, forKey: .logInterval) ?? 10
        }
    }

    /// `[distributed]`: data-parallel training over several ranks (ignored by a single process).
    public struct Distributed: Codable, Sendable, Equatable {
        /// Shard the AdamW moments over the ranks (ZeRO stage 1): gradients are reduce-scattered, each rank
        /// updates its shard of the parameters, and the parameters are all-gathered. Default false.
        public var zero1: Bool
        /// Size of a gradient bucket in MiB: buckets are reduced while the backward pass still runs. Default 4.
        public var bucketMB: Double
        /// Seconds a collective may wait for the other ranks before the run fails naming the collective and
        /// rank (a dead or hung peer). `SEED_COLLECTIVE_TIMEOUT` overrides it. Default 300.
        public var timeout: Double

        public init(zero1: Bool = false, bucketMB: Double = 4, timeout: Double = 300) {
            self.zero1 = zero1
            self.bucketMB = bucketMB
            self.timeout = timeout
        }

        /// Gradient elements (float32) per bucket.
        public var bucketElements: Int { max(1, Int(bucketMB * 1_048_576 / 4)) }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case zero1
            case bucketMB = "bucket_mb"
            case timeout
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            zero1 = try c.decodeIfPresent(Bool.self, forKey: .zero1) ?? false
            bucketMB = try c.decodeIfPresent(Double.self, forKey: .bucketMB) ?? 4
            timeout = try c.decodeIfPresent(Double.self, forKey: .timeout) ?? 300
        }
    }

    /// Checks every value and every cross-key rule; returns nothing or throws all problems at once.
    ///
    /// - Throws: ``TrainingConfigurationError/invalidValues(_:)`` listing each problem with its key.
    public func validate() throws(TrainingConfigurationError) {
        var problems: [String] = []
        func require(_ condition: Bool, _ message: @autoclosure () -> String) {
            if !condition { problems.append(message()) }
        }
        let m = model
        require(m.vocabSize >= 1, "model.vocab_size must be at least 1, got \(m.vocabSize)")
        require(m.hiddenSize >= 1, "model.hidden_size must be at least 1, got \(m.hiddenSize)")
        require(m.intermediateSize >= 1, "model.intermediate_size must be at least 1, got \(m.intermediateSize)")
        require(m.layers >= 1, "model.layers must be at least 1, got \(m.layers)")
        require(m.heads >= 1, "model.heads must be at least 1, got \(m.heads)")
        require(m.kvHeads >= 1, "model.kv_heads must be at least 1, got \(m.kvHeads)")
        if m.heads >= 1 && m.hiddenSize >= 1 {
            require(
                m.hiddenSize % m.heads == 0,
                "model.hidden_size (\(m.hiddenSize)) must be divisible by model.heads (\(m.heads))")
            if m.hiddenSize % m.heads == 0 {
                require(
                    m.headDimension % 2 == 0,
                    "the head dimension hidden_size / heads = \(m.headDimension) must be even for RoPE")
            }
        }
        if m.heads >= 1 && m.kvHeads >= 1 {
            require(
                m.heads % m.kvHeads == 0, "model.heads (\(m.heads)) must be divisible by model.kv_heads (\(m.kvHeads))")
        }
        require(m.contextLength >= 1, "model.context_length must be at least 1, got \(m.contextLength)")
        require(m.ropeTheta.isFinite && m.ropeTheta > 0, "model.rope_theta must be positive, got \(m.ropeTheta)")
        require(m.normEps.isFinite && m.normEps > 0, "model.norm_eps must be positive, got \(m.normEps)")

        require(!data.dir.isEmpty, "data.dir must not be empty")

        let t = training
        require(t.steps >= 1, "training.steps must be positive, got \(t.steps)")
        require(t.batchSize >= 1, "training.batch_size must be at least 1, got \(t.batchSize)")
        require(t.microBatchSize >= 1, "training.micro_batch_size must be at least 1, got \(t.microBatchSize)")
        if t.batchSize >= 1 && t.microBatchSize >= 1 {
            require(
                t.batchSize % t.microBatchSize == 0,
                "training.batch_size (\(t.batchSize)) must be divisible by training.micro_batch_size "
                    + "(\(t.microBatchSize))")
        }
        require(t.seqLen >= 1, "training.seq_len must be at least 1, got \(t.seqLen)")
        require(
            t.seqLen <= m.contextLength,
            "training.seq_len (\(t.seqLen)) must not exceed model.context_length (\(m.contextLength))")
        if let threads = t.threads {
            require((1...1024).contains(threads), "training.threads must be between 1 and 1024, got \(threads)")
        }

        let o = optimizer
        require(o.lr.isFinite && o.lr >= 0, "optimizer.lr must be >= 0, got \(o.lr)")
        require(
            o.minLr.isFinite && o.minLr >= 0 && o.minLr <= o.lr,
            "optimizer.min_lr must be between 0 and optimizer.lr (\(o.lr)), got \(o.minLr)")
        require(o.warmupSteps >= 0, "optimizer.warmup_steps must be >= 0, got \(o.warmupSteps)")
        require(
            o.warmupSteps <= t.steps,
            "optimizer.warmup_steps (\(o.warmupSteps)) must not exceed training.steps (\(t.steps))")
        require(
            o.weightDecay.isFinite && o.weightDecay >= 0, "optimizer.weight_decay must be >= 0, got \(o.weightDecay)")
        require(o.beta1 >= 0 && o.beta1 < 1, "optimizer.beta1 must be in [0, 1), got \(o.beta1)")
        require(o.beta2 >= 0 && o.beta2 < 1, "optimizer.beta2 must be in [0, 1), got \(o.beta2)")
        require(o.eps.isFinite && o.eps > 0, "optimizer.eps must be positive, got \(o.eps)")
        require(o.gradClip.isFinite && o.gradClip >= 0, "optimizer.grad_clip must be >= 0 (0 = off), got \(o.gradClip)")

        require(checkpoint.interval >= 0, "checkpoint.interval must be >= 0 (0 = only at the end)")
        require(checkpoint.keepLast >= 1, "checkpoint.keep_last must be at least 1, got \(checkpoint.keepLast)")
        require(eval.interval >= 0, "eval.interval must be >= 0 (0 = off), got \(eval.interval)")
        require(eval.batches >= 1, "eval.batches must be at least 1, got \(eval.batches)")
        require(!output.dir.isEmpty, "output.dir must not be empty")
        require(output.logInterval >= 1, "output.log_interval must be at least 1, got \(output.logInterval)")
        let d = distributed
        require(
            d.bucketMB.isFinite && d.bucketMB > 0 && d.bucketMB <= 1024,
            "distributed.bucket_mb must be in (0, 1024], got \(d.bucketMB)")
        require(
            d.timeout.isFinite && d.timeout > 0 && d.timeout < 1e6,
            "distributed.timeout must be a positive number of seconds, got \(d.timeout)")

        if !problems.isEmpty { throw .invalidValues(problems) }
    }
}
