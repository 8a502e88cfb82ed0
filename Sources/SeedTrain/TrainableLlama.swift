import SeedFormats
import SeedModels
import SeedTensor

/// A Llama decoder with trainable parameters, built from ``Tape`` ops (the inference model's architecture).
///
/// Parameters use Hugging Face names and layouts (`model.embed_tokens.weight` `[vocab, hidden]`,
/// `model.layers.N.self_attn.q_proj.weight` `[queryDim, hidden]`, ..., `model.norm.weight`, and `lm_head.weight`
/// unless ``LlamaConfiguration/tiedEmbeddings``), so `model.safetensors` files of `LlamaForCausalLM` load and save
/// as they are. RoPE follows ``LlamaConfiguration/ropeInterleaved`` (false: Hugging Face rotate-half).
///
/// One step of training:
/// ```swift
/// model.zeroGradients()
/// for microBatch in microBatches {   // [batch, length + 1] tokens each
///     loss += try model.lossAndGradients(tokens: microBatch, batchSize: b, normalizer: totalTargets)
/// }
/// let norm = clipGradientNorm(model.parameters, maxNorm: 1, pool: model.pool)
/// optimizer.step(learningRate: schedule.learningRate(atStep: step))
/// ```
/// The model reuses its tape's buffers, so steps of the same shape allocate nothing after the first.
public final class TrainableLlama<Scalar: TrainScalar> {
    /// The architecture.
    public let configuration: LlamaConfiguration
    /// Every trainable tensor, in Hugging Face order (see ``parameterSpecifications(for:)``).
    public let parameters: ParameterStore<Scalar>
    /// The tape the forward and backward passes record on.
    public let tape: Tape<Scalar>
    /// RoPE tables for positions `0..<configuration.contextLength`.
    public let rotary: RotaryEmbedding<Scalar>

    private let embedding: Parameter<Scalar>
    private let finalNorm: Parameter<Scalar>
    private let head: Parameter<Scalar>
    private let layers: [LayerParameters]
    private let epsilon: Scalar
    private var positions: [Int32] = []
    private var inputScratch: [Int32] = []
    private var targetScratch: [Int32] = []

    private struct LayerParameters {
        let attentionNorm: Parameter<Scalar>
        let query: Parameter<Scalar>
        let key: Parameter<Scalar>
        let value: Parameter<Scalar>
        let output: Parameter<Scalar>
        let feedForwardNorm: Parameter<Scalar>
        let gate: Parameter<Scalar>
        let up: Parameter<Scalar>
        let down: Parameter<Scalar>
    }

    /// The pool the model computes on.
    public var pool: WorkerPool { tape.pool }

    /// A model with freshly initialised weights: Linear and Embedding weights N(0, `initializerRange`²) from a
    /// generator seeded per parameter by ``derivedSeed(_:name:)`` of `seed`, norm weights 1.
    ///
    /// - Throws: ``TrainingError/invalidConfiguration(_:)`` when `configuration` does not describe a runnable model.
    public init(
        configuration: LlamaConfiguration, pool: WorkerPool, seed: UInt64, initializerRange: Double = 0.02
    ) throws(TrainingError) {
        do {
            try configuration.validate()
        } catch {
            throw .invalidConfiguration(error.description)
        }
        self.configuration = configuration
        parameters = ParameterStore(Self.parameterSpecifications(for: configuration))
        tape = Tape(pool: pool)
        rotary = RotaryEmbedding(
            headDim: configuration.headDim, base: exactDecimal(configuration.ropeBase),
            maximumPositions: configuration.contextLength, interleaved: configuration.ropeInterleaved)
        epsilon = Scalar(exactDecimal(configuration.rmsNormEpsilon))
        let store = parameters
        func named(_ name: String) -> Parameter<Scalar> { store[name]! }
        embedding = named("model.embed_tokens.weight")
        finalNorm = named("model.norm.weight")
        head = configuration.tiedEmbeddings ? embedding : named("lm_head.weight")
        layers = (0..<configuration.layerCount).map { i in
            let p = "model.layers.\(i)."
            return LayerParameters(
                attentionNorm: named(p + "input_layernorm.weight"), query: named(p + "self_attn.q_proj.weight"),
                key: named(p + "self_attn.k_proj.weight"), value: named(p + "self_attn.v_proj.weight"),
                output: named(p + "self_attn.o_proj.weight"),
                feedForwardNorm: named(p + "post_attention_layernorm.weight"),
                gate: named(p + "mlp.gate_proj.weight"), up: named(p + "mlp.up_proj.weight"),
                down: named(p + "mlp.down_proj.weight"))
        }
        initialize(seed: seed, standardDeviation: initializerRange)
    }

    /// A model with the parameters of the safetensors file at `path` (see ``load(from:)``).
    public convenience init(configuration: LlamaConfiguration, pool: WorkerPool, path: String) throws(TrainingError) {
        try self.init(configuration: configuration, pool: pool, seed: 0)
        try load(from: path)
    }

    /// Names and shapes of the parameters of `configuration`, in Hugging Face order.
    public static func parameterSpecifications(for c: LlamaConfiguration) -> [(name: String, shape: [Int])] {
        var specifications: [(name: String, shape: [Int])] = [
            ("model.embed_tokens.weight", [c.vocabularySize, c.hiddenSize])
        ]
        for i in 0..<c.layerCount {
            let p = "model.layers.\(i)."
            specifications += [
                (p + "input_layernorm.weight", [c.hiddenSize]),
                (p + "self_attn.q_proj.weight", [c.queryDim, c.hiddenSize]),
                (p + "self_attn.k_proj.weight", [c.kvDim, c.hiddenSize]),
                (p + "self_attn.v_proj.weight", [c.kvDim, c.hiddenSize]),
                (p + "self_attn.o_proj.weight", [c.hiddenSize, c.queryDim]),
                (p + "post_attention_layernorm.weight", [c.hiddenSize]),
                (p + "mlp.gate_proj.weight", [c.intermediateSize, c.hiddenSize]),
                (p + "mlp.up_proj.weight", [c.intermediateSize, c.hiddenSize]),
                (p + "mlp.down_proj.weight", [c.hiddenSize, c.intermediateSize]),
            ]
        }
        specifications.append(("model.norm.weight", [c.hiddenSize]))
        if !c.tiedEmbeddings { specifications.append(("lm_head.weight", [c.vocabularySize, c.hiddenSize])) }
        return specifications
    }

    /// Re-initialises every parameter: norm weights (names ending in `norm.weight`) to 1, all others
    /// N(0, `standardDeviation`²) from `NormalSampler(seed: derivedSeed(seed, name: parameter.name))`.
    @_specialize(exported:true,where Scalar == Float)
    @_specialize(exported:true,where Scalar == Double)
    public func initialize(seed: UInt64, standardDeviation: Double = 0.02) {
        for parameter in parameters.parameters {
            if parameter.name.hasSuffix("norm.weight") {
                parameter.value.update(repeating: 1, count: parameter.count)
            } else {
                var sampler = NormalSampler(seed: derivedSeed(seed, name: parameter.name))
                sampler.fill(parameter.value, count: parameter.count, standardDeviation: standardDeviation)
            }
        }
    }

    /// Sets every gradient to zero.
    public func zeroGradients() { parameters.zeroGradients() }

    // MARK: Training passes

    /// Mean next-token cross-entropy of a batch, accumulating its gradient into the parameters.
    ///
    /// - Parameters:
    ///   - tokens: `[batchSize, length + 1]` row-major: each row's first `length` tokens are inputs and its last
    ///     `length` are the targets (the next token at each position).
    ///   - normalizer: divisor of the summed per-token losses; default `batchSize * length`. For gradient
    ///     accumulation pass the token count of the whole step, so the micro-batches' losses sum to its mean.
    /// - Returns: this batch's summed loss divided by `normalizer`.
    /// - Throws: ``TrainingError/invalidBatch(_:)`` or ``TrainingError/tokenOutOfRange(token:vocabularySize:)``.
    @discardableResult
    @_specialize(exported:true,where Scalar == Float)
    @_specialize(exported:true,where Scalar == Double)
    public func lossAndGradients(tokens: [Int32], batchSize: Int, normalizer: Double? = nil) throws(TrainingError)
        -> Double
    {
        try splitShifted(tokens: tokens, batchSize: batchSize)
        return try run(
            inputs: inputScratch, targets: targetScratch, batchSize: batchSize, normalizer: normalizer,
            gradients: true)
    }

    /// Mean next-token cross-entropy of `[batchSize, length + 1]` tokens (as ``lossAndGradients(tokens:batchSize:normalizer:)``)
    /// without recording or touching gradients.
    @_specialize(exported:true,where Scalar == Float)
    @_specialize(exported:true,where Scalar == Double)
    public func loss(tokens: [Int32], batchSize: Int) throws(TrainingError) -> Double {
        try splitShifted(tokens: tokens, batchSize: batchSize)
        return try run(
            inputs: inputScratch, targets: targetScratch, batchSize: batchSize, normalizer: nil, gradients: false)
    }

    /// Cross-entropy with explicit targets, optionally accumulating gradients.
    ///
    /// - Parameters:
    ///   - inputs: `[batchSize, length]` token ids.
    ///   - targets: `[batchSize, length]`: the class each position predicts, or negative to ignore it.
    ///   - normalizer: divisor of the summed losses (default: the number of non-negative targets).
    ///   - computeGradients: record and back-propagate, accumulating into ``parameters``.
    @_specialize(exported:true,where Scalar == Float)
    @_specialize(exported:true,where Scalar == Double)
    public func loss(
        inputs: [Int32], targets: [Int32], batchSize: Int, normalizer: Double? = nil, computeGradients: Bool
    ) throws(TrainingError) -> Double {
        try run(
            inputs: inputs, targets: targets, batchSize: batchSize, normalizer: normalizer,
            gradients: computeGradients)
    }

    /// Full logits of every position (forward only).
    ///
    /// Materialises `[batchSize * length, vocabulary]`: meant for tests and small vocabularies; training uses the
    /// fused, chunked cross-entropy instead.
    ///
    /// - Parameter inputs: `[batchSize, length]` token ids.
    /// - Returns: `[batchSize * length, vocabulary]`, row-major.
    @_specialize(exported:true,where Scalar == Float)
    @_specialize(exported:true,where Scalar == Double)
    public func logits(inputs: [Int32], batchSize: Int) throws(TrainingError) -> [Scalar] {
        let length = try validate(inputs: inputs, targets: nil, batchSize: batchSize)
        tape.reset()
        tape.isRecording = false
        defer { tape.isRecording = true }
        let hidden = inputs.withUnsafeBufferPointer { record(inputs: $0, batchSize: batchSize, length: length) }
        let logits = tape.linear(hidden, weight: tape.parameter(head))
        return Array(tape.value(of: logits))
    }

    private func run(inputs: [Int32], targets: [Int32], batchSize: Int, normalizer: Double?, gradients: Bool)
        throws(TrainingError) -> Double
    {
        let length = try validate(inputs: inputs, targets: targets, batchSize: batchSize)
        if let normalizer, !(normalizer > 0 && normalizer.isFinite) {
            throw .invalidBatch("the loss normalizer must be positive, got \(normalizer)")
        }
        tape.reset()
        tape.isRecording = gradients
        defer { tape.isRecording = true }
        let loss = inputs.withUnsafeBufferPointer { ids in
            targets.withUnsafeBufferPointer { classes in
                let hidden = record(inputs: ids, batchSize: batchSize, length: length)
                return tape.linearCrossEntropy(
                    hidden, weight: tape.parameter(head), targets: classes, normalizer: normalizer)
            }
        }
        if gradients { tape.backward(from: loss) }
        return Double(tape.value(of: loss)[0])
    }

    /// Records the decoder up to the final norm; returns the hidden states `[batch * length, hidden]`.
    private func record(inputs: UnsafeBufferPointer<Int32>, batchSize: Int, length: Int) -> Variable {
        let c = configuration
        positions.removeAll(keepingCapacity: true)
        for _ in 0..<batchSize {
            for t in 0..<length { positions.append(Int32(t)) }
        }
        let layout = AttentionLayout(
            batch: batchSize, length: length, heads: c.headCount, kvHeads: c.kvHeadCount, headDim: c.headDim)
        return positions.withUnsafeBufferPointer { positions in
            var x = tape.embedding(tape.parameter(embedding), tokens: inputs)
            for layer in layers {
                let h = tape.rmsNorm(x, weight: tape.parameter(layer.attentionNorm), epsilon: epsilon)
                var q = tape.linear(h, weight: tape.parameter(layer.query))
                var k = tape.linear(h, weight: tape.parameter(layer.key))
                let v = tape.linear(h, weight: tape.parameter(layer.value))
                q = tape.rotary(q, table: rotary, positions: positions, heads: c.headCount)
                k = tape.rotary(k, table: rotary, positions: positions, heads: c.kvHeadCount)
                let attention = tape.causalAttention(query: q, key: k, value: v, layout: layout)
                x = tape.add(x, tape.linear(attention, weight: tape.parameter(layer.output)))
                let f = tape.rmsNorm(x, weight: tape.parameter(layer.feedForwardNorm), epsilon: epsilon)
                let gate = tape.linear(f, weight: tape.parameter(layer.gate))
                let up = tape.linear(f, weight: tape.parameter(layer.up))
                let mixed = tape.swiGLU(gate: gate, up: up)
                x = tape.add(x, tape.linear(mixed, weight: tape.parameter(layer.down)))
            }
            return tape.rmsNorm(x, weight: tape.parameter(finalNorm), epsilon: epsilon)
        }
    }

    /// Splits `[batch, length + 1]` tokens into inputs and shifted targets (into the scratch buffers).
    private func splitShifted(tokens: [Int32], batchSize: Int) throws(TrainingError) {
        guard batchSize > 0 else { throw .invalidBatch("the batch size must be positive, got \(batchSize)") }
        guard tokens.count % batchSize == 0, tokens.count / batchSize >= 2 else {
            throw .invalidBatch(
                "\(tokens.count) tokens do not form \(batchSize) rows of length + 1 >= 2 (inputs plus next tokens)")
        }
        let row = tokens.count / batchSize
        inputScratch.removeAll(keepingCapacity: true)
        targetScratch.removeAll(keepingCapacity: true)
        for b in 0..<batchSize {
            inputScratch.append(contentsOf: tokens[(b * row)..<(b * row + row - 1)])
            targetScratch.append(contentsOf: tokens[(b * row + 1)..<(b * row + row)])
        }
    }

    /// Checks a batch; returns the sequence length.
    private func validate(inputs: [Int32], targets: [Int32]?, batchSize: Int) throws(TrainingError) -> Int {
        guard batchSize > 0 else { throw .invalidBatch("the batch size must be positive, got \(batchSize)") }
        guard !inputs.isEmpty, inputs.count % batchSize == 0 else {
            throw .invalidBatch("\(inputs.count) input tokens do not split into \(batchSize) equal non-empty rows")
        }
        let length = inputs.count / batchSize
        guard length <= configuration.contextLength else {
            throw .invalidBatch(
                "sequence length \(length) exceeds the context length \(configuration.contextLength)")
        }
        let vocabulary = configuration.vocabularySize
        for token in inputs where token < 0 || Int(token) >= vocabulary {
            throw .tokenOutOfRange(token: Int(token), vocabularySize: vocabulary)
        }
        if let targets {
            guard targets.count == inputs.count else {
                throw .invalidBatch("\(targets.count) targets for \(inputs.count) inputs")
            }
            for token in targets where Int(token) >= vocabulary {
                throw .tokenOutOfRange(token: Int(token), vocabularySize: vocabulary)
            }
        }
        return length
    }

    // MARK: Files

    /// Loads every parameter from a safetensors file with Hugging Face names (F32, F64, F16 or BF16 elements).
    ///
    /// - Throws: ``TrainingError/missingTensor(path:name:)``, ``TrainingError/unexpectedTensor(path:name:)`` (a
    ///   file with tensors the model lacks, e.g. `lm_head.weight` for a tied model, is refused rather than
    ///   half-used), ``TrainingError/tensorShape(path:name:expected:actual:)``,
    ///   ``TrainingError/tensorType(path:name:dtype:)``, or ``TrainingError/file(_:)``. On error the parameters
    ///   may be partly overwritten.
    public func load(from path: String) throws(TrainingError) {
        let file: SafetensorsFile
        do {
            file = try SafetensorsFile(path: path)
        } catch {
            throw .file(error.description)
        }
        for info in file.tensors where parameters[info.name] == nil {
            throw .unexpectedTensor(path: path, name: info.name)
        }
        for parameter in parameters.parameters {
            guard let info = file.tensor(named: parameter.name) else {
                throw .missingTensor(path: path, name: parameter.name)
            }
            guard info.shape == parameter.shape else {
                throw .tensorShape(path: path, name: parameter.name, expected: parameter.shape, actual: info.shape)
            }
            guard info.dtype.isFloatingPoint else {
                throw .tensorType(path: path, name: parameter.name, dtype: info.dtype.rawValue)
            }
            do {
                if Scalar.self == Float.self {
                    let values = try file.floats(named: parameter.name)
                    values.withUnsafeBytes {
                        UnsafeMutableRawPointer(parameter.value).copyMemory(from: $0.baseAddress!, byteCount: $0.count)
                    }
                } else {
                    let values = try file.doubles(named: parameter.name)
                    for i in 0..<parameter.count { parameter.value[i] = Scalar(values[i]) }
                }
            } catch {
                throw .file(error.description)
            }
        }
    }

    /// Writes every parameter to a safetensors file (atomically) with Hugging Face names, as `F32` for a `Float`
    /// model and `F64` for a `Double` one, with metadata `format: pt` as `save_pretrained` writes.
    public func save(to path: String) throws(TrainingError) {
        var writer = SafetensorsWriter()
        writer.setMetadata("format", "pt")
        do {
            for parameter in parameters.parameters {
                let bytes = Array(
                    UnsafeRawBufferPointer(start: parameter.value, count: parameter.count * MemoryLayout<Scalar>.stride)
                )
                try writer.addTensor(
                    name: parameter.name, dtype: Scalar.safetensorsDType, shape: parameter.shape, bytes: bytes)
            }
            try writer.write(to: path)
        } catch {
            throw .file(error.description)
        }
    }
}

/// The `Double` a configuration's `Float` field was written as: `1e-5` stays `1e-5` rather than becoming
/// `9.99999974e-6`, so a `Double` model matches a float64 reference exactly.
func exactDecimal(_ value: Float) -> Double {
    Double("\(value)") ?? Double(value)
}
