import SeedFormats
import SeedTestSupport
import Testing

/// Reads files written by the Python `safetensors` package (the shared reference outputs).
@Suite("Safetensors reference files")
struct SafetensorsReferenceTests {
    @Test("SmolLM2 first-token logits: three float32 [49152] tensors, argmax 7042")
    func smolLM2Logits() throws {
        let file = try SafetensorsFile(path: TestPaths.reference("smollm2/logits-first.safetensors"))
        #expect(file.tensors.map(\.name) == ["llamacpp", "llamacpp_kv_f32_no_flash_attn", "transformers_f32"])
        #expect(file.metadata["prompt"] == "The capital of France is")
        #expect(file.metadata["prompt_ids"] == "[504, 3575, 282, 4649, 314]")
        #expect(file.dataOffset == 8 + 432)
        var previousEnd = 0
        for info in file.tensors {
            #expect(info.dtype == .f32)
            #expect(info.shape == [49152])
            #expect(info.elementCount == 49152)
            #expect(info.dataRange == previousEnd..<(previousEnd + 49152 * 4))
            previousEnd = info.dataRange.upperBound
            let logits = try file.floats(named: info.name)
            #expect(logits.count == 49152)
            let argmax = logits.indices.max { logits[$0] < logits[$1] }
            #expect(argmax == 7042, "argmax of \(info.name)")
        }
        let llamacpp = try file.floats(named: "llamacpp")
        #expect(abs(llamacpp[7042] - 17.5692139) < 1e-5)
        #expect(llamacpp[0] == 1.7608833312988281)
        // doubles() widens float32 exactly.
        let widened = try file.doubles(named: "llamacpp")
        #expect(widened.elementsEqual(llamacpp.map(Double.init)))
    }

    @Test("Tied training model: 20 float32 tensors in HF naming, norms initialised to 1")
    func tiedTrainingModel() throws {
        let file = try SafetensorsFile(path: TestPaths.reference("train/tied/model.safetensors"))
        #expect(file.metadata == ["format": "pt"])
        #expect(file.tensors.count == 20)
        #expect(file.tensor(named: "lm_head.weight") == nil)
        #expect(file.tensors.allSatisfy { $0.dtype == .f32 })

        let embed = try #require(file.tensor(named: "model.embed_tokens.weight"))
        #expect(embed.shape == [256, 64])
        #expect(embed.dataRange == 0..<65536)
        #expect(file.tensor(named: "model.layers.0.self_attn.k_proj.weight")?.shape == [32, 64])
        #expect(file.tensor(named: "model.layers.1.mlp.down_proj.weight")?.shape == [64, 176])
        #expect(file.tensor(named: "model.layers.1.mlp.gate_proj.weight")?.shape == [176, 64])

        let weights = try file.floats(named: "model.embed_tokens.weight")
        #expect(
            Array(weights.prefix(4)) == [
                -0.0049370527267456055, -0.01832684688270092, -0.010356232523918152,
                0.022419795393943787,
            ])
        let mean = weights.reduce(0, +) / Float(weights.count)
        let std = (weights.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(weights.count)).squareRoot()
        #expect(std > 0.018 && std < 0.022, "README: init normal(0, 0.02), measured std 0.019-0.021")
        #expect(try file.floats(named: "model.norm.weight") == [Float](repeating: 1, count: 64))

        // The tensors tile the data section exactly, in offset order.
        #expect(file.tensors.first?.dataRange.lowerBound == 0)
        #expect(file.tensors.last?.dataRange.upperBound == file.dataSize)
        #expect(
            zip(file.tensors, file.tensors.dropFirst()).allSatisfy {
                $0.dataRange.upperBound == $1.dataRange.lowerBound
            })
        let total = file.tensors.map(\.elementCount).reduce(0, +)
        #expect(total * 4 == file.dataSize)
    }

    @Test("Tied training logits are float64 [2, 16, 256]")
    func tiedLogitsFloat64() throws {
        let file = try SafetensorsFile(path: TestPaths.reference("train/tied/logits.safetensors"))
        let info = try #require(file.tensor(named: "logits"))
        #expect(info.dtype == .f64)
        #expect(info.shape == [2, 16, 256])
        let logits = try file.doubles(named: "logits")
        #expect(logits.count == 2 * 16 * 256)
        #expect(logits.allSatisfy { $0.isFinite })
        let asFloats = try file.floats(named: "logits")
        #expect(asFloats.elementsEqual(logits.map(Float.init)))
    }
}
