import Foundation
import SeedFormats
import SeedModels
import SeedTensor
import SeedTestSupport
import Testing

@testable import SeedTrain

/// One forward + backward + AdamW step of the 2-layer reference Llama (`../shared/reference/train`, made with
/// PyTorch/transformers in float64; see its README): logits, loss, every gradient and the weights after one step.
@Suite("Llama training step vs PyTorch reference")
struct LlamaReferenceTests {
    struct Batch: Decodable {
        var input_ids: [[Int32]]
    }

    struct Results: Decodable {
        var loss_float64: Double
        var grad_global_l2_norm: Double
    }

    struct Reference {
        let directory: String
        let configuration: LlamaConfiguration
        let batch: [[Int32]]
        let results: Results

        init(_ name: String) throws {
            directory = TestPaths.reference("train/\(name)")
            configuration = LlamaConfiguration(
                vocabularySize: 256, hiddenSize: 64, intermediateSize: 176, layerCount: 2, headCount: 4,
                kvHeadCount: 2, headDim: 16, ropeBase: 10_000, rmsNormEpsilon: 1e-5, contextLength: 64,
                tiedEmbeddings: name == "tied", ropeInterleaved: false)
            batch = try JSONDecoder().decode(Batch.self, from: try TestPaths.referenceData("train/\(name)/batch.json"))
                .input_ids
            results = try JSONDecoder().decode(
                Results.self, from: try TestPaths.referenceData("train/\(name)/results.json"))
        }

        func file(_ name: String) throws -> SafetensorsFile { try SafetensorsFile(path: directory + "/" + name) }

        var inputs: [Int32] { batch.flatMap { $0 } }
        /// HF's shift: position t predicts token t + 1; the last position of each row predicts nothing.
        var targets: [Int32] { batch.flatMap { Array($0.dropFirst()) + [-1] } }
    }

    /// Largest absolute difference, and the largest magnitude of the reference.
    static func compare<S: TrainScalar>(_ ours: [S], _ reference: [Double]) -> (error: Double, scale: Double) {
        precondition(ours.count == reference.count)
        var error = 0.0
        var scale = 0.0
        for (a, b) in zip(ours, reference) {
            error = max(error, abs(Double(a) - b))
            scale = max(scale, abs(b))
        }
        return (error, scale)
    }

    struct Measured {
        var logitScale = 0.0
        /// Cosine between all our gradients and the reference's, flattened.
        var gradientCosine = 0.0
        var logits = 0.0
        var loss = 0.0
        var gradient = 0.0
        var gradientRelative = 0.0
        var norm = 0.0
        var adamW = 0.0
    }

    /// Runs the reference step at precision `S` and returns the worst errors.
    static func run<S: TrainScalar>(
        _: S.Type, _ name: String, threads: Int, precision: ProductPrecision = .native
    ) throws -> Measured {
        let reference = try Reference(name)
        let pool = WorkerPool(threads: threads)
        let model = try TrainableLlama<S>(
            configuration: reference.configuration, pool: pool, path: reference.directory + "/model.safetensors")
        try model.tape.setProductPrecision(precision)
        var measured = Measured()

        let logits = try model.logits(inputs: reference.inputs, batchSize: 2)
        (measured.logits, measured.logitScale) = compare(
            logits, try reference.file("logits.safetensors").doubles(named: "logits"))

        model.zeroGradients()
        let loss = try model.loss(
            inputs: reference.inputs, targets: reference.targets, batchSize: 2, computeGradients: true)
        measured.loss = abs(loss - reference.results.loss_float64)

        let gradients = try reference.file("grads.safetensors")
        #expect(gradients.tensors.count == model.parameters.parameters.count)
        var dot = 0.0
        var oursSquared = 0.0
        var theirsSquared = 0.0
        for parameter in model.parameters.parameters {
            let expected = try gradients.doubles(named: parameter.name)
            let ours = parameter.gradients
            let (error, scale) = compare(ours, expected)
            measured.gradient = max(measured.gradient, error)
            measured.gradientRelative = max(measured.gradientRelative, error / scale)
            for (a, b) in zip(ours, expected) {
                dot += Double(a) * b
                oursSquared += Double(a) * Double(a)
                theirsSquared += b * b
            }
        }
        measured.gradientCosine = dot / (oursSquared * theirsSquared).squareRoot()
        measured.norm = abs(gradientNorm(model.parameters, pool: pool) - reference.results.grad_global_l2_norm)

        let optimizer = try AdamW(
            parameters: model.parameters,
            configuration: AdamWConfiguration(beta1: 0.9, beta2: 0.95, epsilon: 1e-8, weightDecay: 0.1), pool: pool)
        optimizer.step(learningRate: 1e-3)
        let after = try reference.file("weights-after-adamw.safetensors")
        for parameter in model.parameters.parameters {
            measured.adamW = max(
                measured.adamW, compare(parameter.values, try after.doubles(named: parameter.name)).error)
        }
        return measured
    }

    /// Float64 matches to rounding: measured logits 4.4e-16, loss 8.9e-16, gradients 1.1e-16, after-AdamW weights
    /// 1e-14 (the reference's own finite-difference check agrees only to 1e-10, so these bounds are far tighter).
    @Test("float64: logits, loss, gradients and one AdamW step match to ~1e-15", arguments: ["untied", "tied"])
    func float64(name: String) throws {
        let m = try Self.run(Double.self, name, threads: 2)
        print(
            "[\(name) f64] logits \(m.logits) loss \(m.loss) grad \(m.gradient) (rel \(m.gradientRelative)) "
                + "norm \(m.norm) adamw \(m.adamW)")
        #expect(m.logits < 1e-13)
        #expect(m.loss < 1e-13)
        #expect(m.gradient < 1e-14)
        #expect(m.norm < 1e-13)
        #expect(m.adamW < 1e-13)
    }

    /// Float32 tolerances: every value is a sum of tens to hundreds of float32 products, so rounding alone leaves
    /// errors of a few ulp of the largest terms (float32 ulp at 1 is 1.2e-7). PyTorch's own float32 run differs
    /// from the float64 reference by 3.6e-7 in the logits (README). We allow 1e-6 on logits and loss, and per
    /// tensor 2e-6 of the tensor's largest gradient (measured: 3e-7, 3e-7 and 6e-7 respectively).
    @Test("float32: logits, loss and gradients match within float32 rounding", arguments: ["untied", "tied"])
    func float32(name: String) throws {
        let m = try Self.run(Float.self, name, threads: 2)
        print(
            "[\(name) f32] logits \(m.logits) loss \(m.loss) grad \(m.gradient) (rel \(m.gradientRelative)) "
                + "norm \(m.norm) adamw \(m.adamW)")
        #expect(m.logits < 1e-6)
        #expect(m.loss < 1e-6)
        #expect(m.gradientRelative < 2e-6)
        #expect(m.gradient < 2e-7)
        #expect(m.norm < 1e-6)
        // On step 1 the update is lr · g / (|g| + 1e-8): where |g| is near float32's gradient error the sign can
        // differ, so the full chain is only bounded by 2 lr; the optimiser itself is checked exactly below.
        #expect(m.adamW < 2e-3)
    }

    /// bf16 products (``ProductPrecision/bf16``): bf16 keeps 8 significant bits, so rounding an operand costs at most
    /// u = 2⁻⁹ of it and every product term at most 2u = 2⁻⁸; a matmul's output is then off by at most 2⁻⁸ of the
    /// sum of its terms' magnitudes (float32 summation adds ~1e-7). A logit lies behind 9 products in a chain (two
    /// layers of four — attention's projections or the MLP's — plus the head), so we allow 9 · 2⁻⁸ of the largest
    /// logit; the loss moves by at most twice the largest logit error; a gradient lies behind the forward chain
    /// and as many backward products, so per tensor 18 · 2⁻⁸ (7%) of its largest gradient. The errors must also be
    /// well above float32's (the mode is really on), and the gradient as a whole must point the same way
    /// (cosine > 0.999).
    @Test(
        "bf16 products: loss and gradients within bf16's rounding of the float64 reference",
        arguments: ["untied", "tied"])
    func bf16(name: String) throws {
        let m = try Self.run(Float.self, name, threads: 2, precision: .bf16)
        print(
            "[\(name) bf16] logits \(m.logits) (scale \(m.logitScale)) loss \(m.loss) grad \(m.gradient) "
                + "(rel \(m.gradientRelative)) cosine \(m.gradientCosine) norm \(m.norm)")
        let u = 0x1p-9
        #expect(m.logits < 9 * 2 * u * m.logitScale)
        #expect(m.loss < 2 * 9 * 2 * u * m.logitScale)
        #expect(m.gradientRelative < 18 * 2 * u)
        #expect(m.gradientCosine > 0.999)
        // Far from float32's errors (1e-6 on logits, 2e-6 relative on gradients): the bf16 path really ran.
        #expect(m.logits > 1e-5)
        #expect(m.gradientRelative > 2e-5)
    }

    @Test("bf16 products refuse a float64 tape")
    func bf16NeedsFloat() throws {
        let tape = Tape<Double>(pool: WorkerPool(threads: 1))
        #expect(throws: TrainingError.invalidConfiguration("bf16 products need a Float tape, not Double")) {
            try tape.setProductPrecision(.bf16)
        }
        #expect(tape.productPrecision == .native)
    }

    @Test("float32 AdamW on the reference gradients matches the reference weights", arguments: ["untied", "tied"])
    func float32AdamW(name: String) throws {
        let reference = try Reference(name)
        let pool = WorkerPool(threads: 2)
        let model = try TrainableLlama<Float>(
            configuration: reference.configuration, pool: pool, path: reference.directory + "/model.safetensors")
        let gradients = try reference.file("grads.safetensors")
        for parameter in model.parameters.parameters {
            let values = try gradients.floats(named: parameter.name)
            for i in 0..<parameter.count { parameter.gradient[i] = values[i] }
        }
        let optimizer = try AdamW(
            parameters: model.parameters,
            configuration: AdamWConfiguration(beta1: 0.9, beta2: 0.95, epsilon: 1e-8, weightDecay: 0.1), pool: pool)
        optimizer.step(learningRate: 1e-3)
        #expect(optimizer.stepCount == 1)
        let after = try reference.file("weights-after-adamw.safetensors")
        var worst = 0.0
        for parameter in model.parameters.parameters {
            worst = max(worst, Self.compare(parameter.values, try after.doubles(named: parameter.name)).error)
        }
        // Weights are ~0.02-1 and move by ~1e-3: float32 rounding of the result is at most ~6e-8.
        #expect(worst < 2e-7, "worst \(worst)")
    }
}
