import Foundation
import SeedFormats
import SeedModels
import SeedTensor
import Testing

/// Builds small Llama GGUF files in memory-light form to test the loader's checks.
struct TinyLlama {
    var hidden = 64
    var heads = 4
    var kvHeads = 2
    var ffn = 96
    var layers = 2
    var vocabulary = 40
    var weightType = GGMLType.f32
    var skip: Set<String> = []
    var override: [String: (dimensions: [Int], type: GGMLType)] = [:]
    var architecture = "llama"

    func write() throws -> String {
        var w = GGUFWriter()
        w.setMetadata("general.architecture", .string(architecture))
        w.setMetadata("llama.embedding_length", .uint32(UInt32(hidden)))
        w.setMetadata("llama.feed_forward_length", .uint32(UInt32(ffn)))
        w.setMetadata("llama.block_count", .uint32(UInt32(layers)))
        w.setMetadata("llama.attention.head_count", .uint32(UInt32(heads)))
        w.setMetadata("llama.attention.head_count_kv", .uint32(UInt32(kvHeads)))
        w.setMetadata("llama.context_length", .uint32(128))
        w.setMetadata("llama.rope.freq_base", .float32(10_000))
        w.setMetadata("llama.attention.layer_norm_rms_epsilon", .float32(1e-5))
        w.setMetadata("llama.vocab_size", .uint32(UInt32(vocabulary)))
        var seed: UInt64 = 1
        func add(_ name: String, _ dims: [Int], matrix: Bool) throws {
            if skip.contains(name) { return }
            let (dimensions, type) = override[name] ?? (dims, matrix ? weightType : .f32)
            let count = dimensions.reduce(1, *)
            if type.isQuantizationSupported {
                let values = (0..<count).map { _ -> Float in
                    seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                    return matrix ? Float(Int(seed >> 40) % 2001 - 1000) / 10_000 : 1
                }
                try w.addTensor(name: name, dimensions: dimensions, values: values, type: type)
            } else {
                let bytes = try type.byteCount(elements: count)
                try w.addTensor(
                    name: name, dimensions: dimensions, type: type, data: [UInt8](repeating: 0, count: bytes))
            }
        }
        let headDim = hidden / heads
        try add("token_embd.weight", [hidden, vocabulary], matrix: true)
        try add("output_norm.weight", [hidden], matrix: false)
        for i in 0..<layers {
            let p = "blk.\(i)."
            try add(p + "attn_norm.weight", [hidden], matrix: false)
            try add(p + "attn_q.weight", [hidden, heads * headDim], matrix: true)
            try add(p + "attn_k.weight", [hidden, kvHeads * headDim], matrix: true)
            try add(p + "attn_v.weight", [hidden, kvHeads * headDim], matrix: true)
            try add(p + "attn_output.weight", [heads * headDim, hidden], matrix: true)
            try add(p + "ffn_norm.weight", [hidden], matrix: false)
            try add(p + "ffn_gate.weight", [hidden, ffn], matrix: true)
            try add(p + "ffn_up.weight", [hidden, ffn], matrix: true)
            try add(p + "ffn_down.weight", [ffn, hidden], matrix: true)
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tiny-llama-\(UUID()).gguf").path
        try w.write(to: path)
        return path
    }
}

@Suite struct LlamaLoaderTests {
    func load(_ tiny: TinyLlama) throws -> LlamaModel {
        let path = try tiny.write()
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try LlamaModel(path: path, threads: 1)
    }

    @Test func tinyModelsRunInEveryWeightFormatAndAgree() throws {
        let reference = try load(TinyLlama())
        let ids = [3, 1, 4, 1, 5, 9, 2, 6]
        let expected = Array(try reference.makeSession(contextLength: 16).forward(ids))
        #expect(expected.allSatisfy { $0.isFinite })
        for type in [GGMLType.f16, .bf16, .q8_0, .q4_1, .q4_0] {
            var tiny = TinyLlama()
            tiny.weightType = type
            let logits = Array(try load(tiny).makeSession(contextLength: 16).forward(ids))
            let worst = zip(logits, expected).map { abs($0 - $1) }.max() ?? .infinity
            // Quantization error of the weights, not of the kernels: 4-bit formats move these small logits most.
            let tolerance: Float = type.blockSize == 1 ? 1e-2 : (type == .q8_0 ? 2e-2 : 0.2)
            #expect(worst < tolerance, "\(type.name): worst difference \(worst)")
        }
    }

    @Test func unknownArchitectureIsRejectedByName() throws {
        var tiny = TinyLlama()
        tiny.architecture = "mamba"
        #expect(throws: ModelError.unsupportedArchitecture("mamba")) { try load(tiny) }
    }

    @Test func missingTensorIsNamed() throws {
        var tiny = TinyLlama()
        tiny.skip = ["blk.1.ffn_up.weight"]
        #expect(throws: ModelError.missingTensor("blk.1.ffn_up.weight")) { try load(tiny) }
    }

    @Test func wrongShapeIsNamed() throws {
        var tiny = TinyLlama()
        tiny.override["blk.0.attn_k.weight"] = ([64, 48], .f32)
        #expect(throws: ModelError.tensorShape(name: "blk.0.attn_k.weight", expected: [64, 32], actual: [64, 48])) {
            try load(tiny)
        }
    }

    @Test func unsupportedTensorTypeIsNamed() throws {
        var tiny = TinyLlama()
        tiny.hidden = 256
        tiny.heads = 4
        tiny.override["blk.0.attn_q.weight"] = ([256, 256], .iq2_xxs)
        #expect(throws: ModelError.unsupportedTensorType(name: "blk.0.attn_q.weight", type: GGMLType.iq2_xxs.name)) {
            try load(tiny)
        }
    }

    @Test func inconsistentHeadCountsAreRejected() throws {
        var tiny = TinyLlama()
        tiny.kvHeads = 3
        #expect {
            try load(tiny)
        } throws: { error in
            guard case ModelError.invalidMetadata(let key, _) = error else { return false }
            return key == "num_key_value_heads"
        }
    }
}
