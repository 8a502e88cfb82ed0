import Foundation
import SeedFormats
import SeedModels
import SeedTensor
import Testing

@testable import SeedTrain

@Suite("Trainable Llama")
struct TrainableLlamaTests {
    static func configuration(tied: Bool = false, interleaved: Bool = false) -> LlamaConfiguration {
        LlamaConfiguration(
            vocabularySize: 37, hiddenSize: 16, intermediateSize: 24, layerCount: 2, headCount: 4, kvHeadCount: 2,
            headDim: 4, ropeBase: 10_000, rmsNormEpsilon: 1e-5, contextLength: 16, tiedEmbeddings: tied,
            ropeInterleaved: interleaved)
    }

    /// `[batch, length + 1]` pseudo-random tokens.
    static func tokens(batch: Int, length: Int, vocabulary: Int = 37, seed: UInt64 = 5) -> [Int32] {
        var generator = Xoshiro256StarStar(seed: seed)
        return (0..<(batch * (length + 1))).map { _ in Int32(generator.next() % UInt64(vocabulary)) }
    }

    static func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("seed-train-\(UUID().uuidString)-\(name)").path
    }

    @Test(
        "whole-model gradients match float64 finite differences",
        arguments: [
            (tied: false, interleaved: false), (tied: true, interleaved: false), (tied: false, interleaved: true),
        ])
    func finiteDifferences(tied: Bool, interleaved: Bool) throws {
        let model = try TrainableLlama<Double>(
            configuration: Self.configuration(tied: tied, interleaved: interleaved), pool: WorkerPool(threads: 2),
            seed: 11, initializerRange: 0.3)
        // Norm weights away from 1 so their gradients are generic.
        var sampler = NormalSampler(seed: 3)
        for parameter in model.parameters.parameters where parameter.name.hasSuffix("norm.weight") {
            for i in 0..<parameter.count { parameter.value[i] = 1 + 0.2 * sampler.next() }
        }
        let tokens = Self.tokens(batch: 2, length: 6)
        model.zeroGradients()
        let loss = try model.lossAndGradients(tokens: tokens, batchSize: 2)
        #expect(loss.isFinite && loss > 0)
        let step = 1e-5
        var generator = Xoshiro256StarStar(seed: 9)
        var worst = 0.0
        for parameter in model.parameters.parameters {
            // Six elements per tensor (all of a small one).
            let picks = (0..<min(6, parameter.count)).map { _ in Int(generator.next() % UInt64(parameter.count)) }
            for i in picks {
                let original = parameter.value[i]
                parameter.value[i] = original + step
                let plus = try model.loss(tokens: tokens, batchSize: 2)
                parameter.value[i] = original - step
                let minus = try model.loss(tokens: tokens, batchSize: 2)
                parameter.value[i] = original
                let numeric = (plus - minus) / (2 * step)
                let error = abs(numeric - parameter.gradient[i]) / max(1, abs(numeric))
                #expect(error < 1e-7, "\(parameter.name)[\(i)]: analytic \(parameter.gradient[i]), numeric \(numeric)")
                worst = max(worst, error)
            }
        }
        #expect(worst < 1e-7)
    }

    @Test("parameters have Hugging Face names and shapes; lm_head only when untied")
    func parameterNames() throws {
        let untied = TrainableLlama<Float>.parameterSpecifications(for: Self.configuration())
        #expect(untied.count == 1 + 2 * 9 + 2)
        #expect(untied.first?.name == "model.embed_tokens.weight" && untied.first?.shape == [37, 16])
        #expect(untied.contains { $0.name == "model.layers.1.self_attn.k_proj.weight" && $0.shape == [8, 16] })
        #expect(untied.contains { $0.name == "model.layers.0.mlp.down_proj.weight" && $0.shape == [16, 24] })
        #expect(untied.last?.name == "lm_head.weight")
        let tied = TrainableLlama<Float>.parameterSpecifications(for: Self.configuration(tied: true))
        #expect(tied.count == untied.count - 1)
        #expect(!tied.contains { $0.name == "lm_head.weight" })
    }

    @Test("initialisation is reproducible from the seed: N(0, 0.02) weights, unit norms")
    func initialisation() throws {
        let pool = WorkerPool(threads: 1)
        let big = LlamaConfiguration(
            vocabularySize: 512, hiddenSize: 64, intermediateSize: 128, layerCount: 1, headCount: 4, kvHeadCount: 4)
        let a = try TrainableLlama<Float>(configuration: big, pool: pool, seed: 42)
        let b = try TrainableLlama<Float>(configuration: big, pool: pool, seed: 42)
        let c = try TrainableLlama<Float>(configuration: big, pool: pool, seed: 43)
        for (pa, pb) in zip(a.parameters.parameters, b.parameters.parameters) { #expect(pa.values == pb.values) }
        let embedding = a.parameters["model.embed_tokens.weight"]!.values
        #expect(embedding != c.parameters["model.embed_tokens.weight"]!.values)
        let mean = embedding.reduce(0, +) / Float(embedding.count)
        let std = (embedding.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(embedding.count)).squareRoot()
        #expect(abs(mean) < 0.001)
        #expect(abs(std - 0.02) < 0.0005, "std \(std)")
        #expect(a.parameters["model.norm.weight"]!.values.allSatisfy { $0 == 1 })
        #expect(a.parameters["model.layers.0.input_layernorm.weight"]!.values.allSatisfy { $0 == 1 })
        // Each tensor has its own stream: q and k of the same layer differ.
        let q = a.parameters["model.layers.0.self_attn.q_proj.weight"]!.values
        let k = a.parameters["model.layers.0.self_attn.k_proj.weight"]!.values
        #expect(q != k)
    }

    @Test("save then load round-trips every parameter bit for bit", arguments: [false, true])
    func saveLoad(tied: Bool) throws {
        let pool = WorkerPool(threads: 1)
        let original = try TrainableLlama<Float>(configuration: Self.configuration(tied: tied), pool: pool, seed: 1)
        let path = Self.temporaryPath("model.safetensors")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try original.save(to: path)
        let file = try SafetensorsFile(path: path)
        #expect(file.metadata == ["format": "pt"])
        #expect(file.tensors.count == original.parameters.parameters.count)
        #expect(file.tensors.allSatisfy { $0.dtype == .f32 })
        let loaded = try TrainableLlama<Float>(configuration: Self.configuration(tied: tied), pool: pool, path: path)
        for (a, b) in zip(original.parameters.parameters, loaded.parameters.parameters) {
            #expect(a.values.map(\.bitPattern) == b.values.map(\.bitPattern), "\(a.name)")
        }
        // A float64 model reads the float32 file exactly and writes F64.
        let wide = try TrainableLlama<Double>(configuration: Self.configuration(tied: tied), pool: pool, path: path)
        #expect(
            wide.parameters["model.norm.weight"]!.values
                == original.parameters["model.norm.weight"]!.values.map(Double.init))
    }

    @Test("loading refuses missing, unexpected, misshapen and non-float tensors and unreadable files")
    func loadErrors() throws {
        let pool = WorkerPool(threads: 1)
        let configuration = Self.configuration()
        let model = try TrainableLlama<Float>(configuration: configuration, pool: pool, seed: 1)
        let path = Self.temporaryPath("bad.safetensors")
        defer { try? FileManager.default.removeItem(atPath: path) }

        func write(_ edit: (inout [(name: String, shape: [Int], dtype: SafetensorsDType)]) -> Void) throws {
            var tensors = TrainableLlama<Float>.parameterSpecifications(for: configuration).map {
                (name: $0.name, shape: $0.shape, dtype: SafetensorsDType.f32)
            }
            edit(&tensors)
            var writer = SafetensorsWriter()
            for tensor in tensors {
                let count = tensor.shape.reduce(1, *)
                try writer.addTensor(
                    name: tensor.name, dtype: tensor.dtype, shape: tensor.shape,
                    bytes: [UInt8](repeating: 0, count: count * tensor.dtype.byteSize))
            }
            try writer.write(to: path)
        }

        try write { $0.removeAll { $0.name == "model.norm.weight" } }
        #expect(throws: TrainingError.missingTensor(path: path, name: "model.norm.weight")) {
            try model.load(from: path)
        }

        try write { $0.append((name: "model.extra.weight", shape: [2], dtype: .f32)) }
        #expect(throws: TrainingError.unexpectedTensor(path: path, name: "model.extra.weight")) {
            try model.load(from: path)
        }

        try write { tensors in
            tensors = tensors.map { $0.name == "lm_head.weight" ? (name: $0.name, shape: [16, 37], dtype: .f32) : $0 }
        }
        #expect(
            throws: TrainingError.tensorShape(
                path: path, name: "lm_head.weight", expected: [37, 16], actual: [16, 37])
        ) {
            try model.load(from: path)
        }

        try write { tensors in
            tensors = tensors.map {
                $0.name == "model.norm.weight" ? (name: $0.name, shape: $0.shape, dtype: .i32) : $0
            }
        }
        #expect(throws: TrainingError.tensorType(path: path, name: "model.norm.weight", dtype: "I32")) {
            try model.load(from: path)
        }

        let missing = Self.temporaryPath("does-not-exist.safetensors")
        #expect {
            try model.load(from: missing)
        } throws: { error in
            guard case TrainingError.file(let message) = error else { return false }
            return message.contains(missing)
        }

        // A tied model refuses a file that carries lm_head.weight rather than silently dropping it.
        let tied = try TrainableLlama<Float>(configuration: Self.configuration(tied: true), pool: pool, seed: 1)
        try model.save(to: path)
        #expect(throws: TrainingError.unexpectedTensor(path: path, name: "lm_head.weight")) {
            try tied.load(from: path)
        }
    }

    @Test("bad batches and configurations are refused with clear errors")
    func badInput() throws {
        let pool = WorkerPool(threads: 1)
        let model = try TrainableLlama<Float>(configuration: Self.configuration(), pool: pool, seed: 1)
        #expect(throws: TrainingError.invalidBatch("the batch size must be positive, got 0")) {
            try model.lossAndGradients(tokens: [1, 2, 3], batchSize: 0)
        }
        #expect(throws: TrainingError.self) { try model.lossAndGradients(tokens: [1, 2, 3], batchSize: 2) }
        #expect(throws: TrainingError.self) { try model.lossAndGradients(tokens: [1, 2], batchSize: 2) }
        #expect(throws: TrainingError.tokenOutOfRange(token: 37, vocabularySize: 37)) {
            try model.lossAndGradients(tokens: [1, 2, 37, 4], batchSize: 1)
        }
        #expect(throws: TrainingError.tokenOutOfRange(token: -3, vocabularySize: 37)) {
            try model.lossAndGradients(tokens: [1, -3, 3, 4], batchSize: 1)
        }
        #expect(throws: TrainingError.invalidBatch("sequence length 17 exceeds the context length 16")) {
            try model.lossAndGradients(tokens: [Int32](repeating: 1, count: 18), batchSize: 1)
        }
        #expect(throws: TrainingError.invalidBatch("the loss normalizer must be positive, got 0.0")) {
            try model.lossAndGradients(tokens: [1, 2, 3], batchSize: 1, normalizer: 0)
        }
        #expect(throws: TrainingError.invalidBatch("3 targets for 2 inputs")) {
            try model.loss(inputs: [1, 2], targets: [1, 2, 3], batchSize: 1, computeGradients: false)
        }
        var bad = Self.configuration()
        bad.kvHeadCount = 3
        #expect {
            try TrainableLlama<Float>(configuration: bad, pool: pool, seed: 1)
        } throws: { error in
            guard case TrainingError.invalidConfiguration(let message) = error else { return false }
            return message.contains("num_key_value_heads")
        }
    }

    @Test("same inputs and threads give bitwise-identical loss and gradients; 1 and 2 threads agree")
    func determinism() throws {
        let configuration = LlamaConfiguration(
            vocabularySize: 300, hiddenSize: 64, intermediateSize: 160, layerCount: 2, headCount: 4, kvHeadCount: 2,
            contextLength: 128)
        let tokens = Self.tokens(batch: 3, length: 100, vocabulary: 300)
        func run(threads: Int) throws -> (Double, [UInt32]) {
            let model = try TrainableLlama<Float>(
                configuration: configuration, pool: WorkerPool(threads: threads), seed: 7)
            model.zeroGradients()
            let loss = try model.lossAndGradients(tokens: tokens, batchSize: 3)
            return (loss, model.parameters.flatGradients.map(\.bitPattern))
        }
        let first = try run(threads: 2)
        let second = try run(threads: 2)
        #expect(first.0 == second.0)
        #expect(first.1 == second.1)
        let single = try run(threads: 1)
        #expect(first.0 == single.0)
        #expect(first.1 == single.1)
    }

    @Test("gradient accumulation: two micro-batches with the step's normalizer equal one batch")
    func accumulation() throws {
        let model = try TrainableLlama<Double>(
            configuration: Self.configuration(), pool: WorkerPool(threads: 2), seed: 3)
        let tokens = Self.tokens(batch: 4, length: 7)
        model.zeroGradients()
        let whole = try model.lossAndGradients(tokens: tokens, batchSize: 4)
        let reference = model.parameters.flatGradients.map { $0 }
        model.zeroGradients()
        let half = tokens.count / 2
        let first = try model.lossAndGradients(tokens: Array(tokens[..<half]), batchSize: 2, normalizer: 28)
        let second = try model.lossAndGradients(tokens: Array(tokens[half...]), batchSize: 2, normalizer: 28)
        #expect(abs(first + second - whole) < 1e-13)
        let accumulated = model.parameters.flatGradients
        let worst = zip(reference, accumulated).map { abs($0 - $1) }.max() ?? 0
        #expect(worst < 1e-14, "worst \(worst)")
    }

    @Test("forward-only loss leaves gradients alone; steps of one shape reuse the arena")
    func evaluationAndArena() throws {
        let model = try TrainableLlama<Float>(
            configuration: Self.configuration(), pool: WorkerPool(threads: 2), seed: 3)
        let tokens = Self.tokens(batch: 2, length: 9)
        model.zeroGradients()
        let evaluated = try model.loss(tokens: tokens, batchSize: 2)
        #expect(model.parameters.flatGradients.allSatisfy { $0 == 0 })
        let trained = try model.lossAndGradients(tokens: tokens, batchSize: 2)
        #expect(evaluated == trained)
        #expect(abs(trained - log(37.0)) < 0.1, "an untrained model is near uniform: \(trained)")
        let bytes = model.tape.arenaBytes
        for _ in 0..<3 { try model.lossAndGradients(tokens: tokens, batchSize: 2) }
        #expect(model.tape.arenaBytes == bytes)
    }

    @Test("a few AdamW steps on one batch drive the loss down")
    func overfitOneBatch() throws {
        let pool = WorkerPool(threads: 2)
        let model = try TrainableLlama<Float>(configuration: Self.configuration(), pool: pool, seed: 3)
        let optimizer = try AdamW(
            parameters: model.parameters, configuration: AdamWConfiguration(weightDecay: 0.0), pool: pool)
        let tokens = Self.tokens(batch: 2, length: 12)
        var losses: [Double] = []
        for _ in 0..<30 {
            model.zeroGradients()
            losses.append(try model.lossAndGradients(tokens: tokens, batchSize: 2))
            clipGradientNorm(model.parameters, maxNorm: 1, pool: pool)
            optimizer.step(learningRate: 1e-2)
        }
        #expect(losses.last! < losses.first! * 0.5, "losses \(losses)")
    }

    @Test(
        "bf16 products: runs repeat bit for bit, differ from float32 by bf16 rounding, and AdamW drives the loss down")
    func bf16Products() throws {
        let configuration = LlamaConfiguration(
            vocabularySize: 300, hiddenSize: 64, intermediateSize: 160, layerCount: 2, headCount: 4, kvHeadCount: 2,
            contextLength: 128)
        let tokens = Self.tokens(batch: 3, length: 100, vocabulary: 300)
        func run(_ precision: ProductPrecision) throws -> (loss: Double, gradients: [Float], arena: Int) {
            let model = try TrainableLlama<Float>(configuration: configuration, pool: WorkerPool(threads: 2), seed: 7)
            try model.tape.setProductPrecision(precision)
            var loss = 0.0
            for _ in 0..<2 {  // the second step reuses the first one's memory
                model.zeroGradients()
                loss = try model.lossAndGradients(tokens: tokens, batchSize: 3)
            }
            return (loss, Array(model.parameters.flatGradients), model.tape.arenaBytes)
        }
        let first = try run(.bf16)
        let second = try run(.bf16)
        #expect(first.loss == second.loss)
        #expect(first.gradients.map(\.bitPattern) == second.gradients.map(\.bitPattern))
        let float32 = try run(.native)
        #expect(first.loss != float32.loss)
        #expect(abs(first.loss - float32.loss) < 1e-2 * float32.loss)
        #expect(first.arena == float32.arena)
        var dot = 0.0
        var a = 0.0
        var b = 0.0
        for (x, y) in zip(first.gradients, float32.gradients) {
            dot += Double(x) * Double(y)
            a += Double(x) * Double(x)
            b += Double(y) * Double(y)
        }
        #expect(dot / (a * b).squareRoot() > 0.999)

        let pool = WorkerPool(threads: 2)
        let model = try TrainableLlama<Float>(configuration: Self.configuration(), pool: pool, seed: 3)
        try model.tape.setProductPrecision(.bf16)
        let optimizer = try AdamW(
            parameters: model.parameters, configuration: AdamWConfiguration(weightDecay: 0.0), pool: pool)
        let batch = Self.tokens(batch: 2, length: 12)
        var losses: [Double] = []
        for _ in 0..<30 {
            model.zeroGradients()
            losses.append(try model.lossAndGradients(tokens: batch, batchSize: 2))
            clipGradientNorm(model.parameters, maxNorm: 1, pool: pool)
            optimizer.step(learningRate: 1e-2)
        }
        #expect(losses.last! < losses.first! * 0.5, "losses \(losses)")
    }
}
