import SeedFormats
import SeedTensor
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Checks against the real SmolLM2-135M-Instruct Q4_1 file that `scripts/fetch-models.sh` downloads.
///
/// The file is required: these tests fail (rather than skip) when it is missing, since the test script always fetches
/// it first.
@Suite struct SmolLMFileTests {
    static let fileName = "SmolLM2-135M-Instruct.Q4_1.gguf"

    static var modelPath: String {
        let directory: String
        if let configured = getenv("SEED_MODEL_DIR"), !String(cString: configured).isEmpty {
            directory = String(cString: configured)
        } else {
            directory = (getenv("HOME").map { String(cString: $0) } ?? "/root") + "/.cache/seed/models"
        }
        return directory + "/" + fileName
    }

    func open() throws -> GGUFFile {
        let path = Self.modelPath
        guard access(path, R_OK) == 0 else {
            Issue.record("model file missing: \(path); run scripts/fetch-models.sh first")
            throw GGUFError.cannotOpen(path: path, reason: "missing")
        }
        return try GGUFFile(path: path)
    }

    @Test func headerAndHyperparameters() throws {
        let clock = ContinuousClock()
        var opened: GGUFFile?
        let elapsed = try clock.measure { opened = try open() }
        let file = try #require(opened)
        print(
            "parsed \(Self.fileName) (\(file.fileSize) bytes, \(file.metadataKeys.count) keys, "
                + "\(file.tensors.count) tensors) in \(elapsed)")
        #expect(elapsed < .seconds(2), "parsing must not read tensor data")

        #expect(file.version == 3)
        #expect(file.fileSize == 98_362_432)
        #expect(file.alignment == 32)
        #expect(file.dataOffset == 1_785_664)  // as reported by gguf.GGUFReader
        #expect(file.architecture == "llama")
        #expect(file.metadataKeys.count == 33)
        #expect(file.metadataKeys.first == "general.architecture")
        #expect(file.architectureValue("block_count") == .uint32(30))
        #expect(file["llama.embedding_length"]?.int == 576)
        #expect(file["llama.feed_forward_length"]?.int == 1536)
        #expect(file["llama.attention.head_count"]?.int == 9)
        #expect(file["llama.attention.head_count_kv"]?.int == 3)
        #expect(file["llama.context_length"]?.int == 8192)
        #expect(file["llama.rope.freq_base"] == .float32(100_000))
        let epsilon = try #require(file["llama.attention.layer_norm_rms_epsilon"]?.float)
        #expect(abs(epsilon - 1e-5) < 1e-9)
        #expect(file["general.file_type"]?.int == 3)  // MOSTLY_Q4_1
        #expect(file["tokenizer.ggml.model"]?.string == "gpt2")
        #expect(file["tokenizer.ggml.pre"]?.string == "smollm")
        #expect(file["tokenizer.ggml.add_bos_token"]?.bool == false)
        #expect(file["tokenizer.ggml.bos_token_id"]?.int == 1)
        #expect(file["tokenizer.ggml.eos_token_id"]?.int == 2)
        #expect(file["tokenizer.chat_template"]?.string?.contains("<|im_start|>") == true)
    }

    @Test func tokenizerArrays() throws {
        let file = try open()
        let tokens = try #require(file["tokenizer.ggml.tokens"]?.stringArray)
        #expect(tokens.count == 49152)
        #expect(tokens.prefix(3) == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
        let types = try #require(file["tokenizer.ggml.token_type"]?.array)
        #expect(types.elementType == .int32 && types.count == 49152)
        let merges = try #require(file["tokenizer.ggml.merges"]?.stringArray)
        #expect(merges.count == 48900)
        #expect(merges.allSatisfy { $0.contains(" ") })
    }

    @Test func tensorInventory() throws {
        let file = try open()
        #expect(file.tensors.count == 272)
        let embedding = try #require(file.tensor(named: "token_embd.weight"))
        #expect(embedding.type == .q8_0)
        #expect(embedding.dimensions == [576, 49152])
        #expect(embedding.byteCount == 30_081_024)
        #expect(embedding.offset == file.dataOffset)
        let query = try #require(file.tensor(named: "blk.0.attn_q.weight"))
        #expect(query.type == .q4_1 && query.dimensions == [576, 576] && query.byteCount == 207_360)
        #expect(file.tensor(named: "blk.0.attn_k.weight")?.dimensions == [576, 192])
        #expect(file.tensor(named: "blk.29.ffn_down.weight")?.dimensions == [1536, 576])
        #expect(file.tensor(named: "output.weight") == nil, "SmolLM2 ties the output projection to the embedding")
        for tensor in file.tensors where tensor.name.hasSuffix("norm.weight") {
            #expect(tensor.type == .f32 && tensor.dimensions == [576], "\(tensor.name)")
        }
        var counts: [GGMLType: Int] = [:]
        for tensor in file.tensors { counts[tensor.type, default: 0] += 1 }
        #expect(counts == [.q8_0: 1, .f32: 61, .q4_1: 210])

        let parameters = file.parameterCount
        print("SmolLM2-135M parameter count: \(parameters)")
        #expect(parameters == 134_515_008)
        #expect((130_000_000...140_000_000).contains(parameters))
    }

    /// Literal values from the `gguf` Python package (0.19, numpy 2.4), produced with:
    ///
    ///     r = gguf.GGUFReader(path); t = {x.name: x for x in r.tensors}
    ///     e = gguf.quants.dequantize(t[name].data, t[name].tensor_type).reshape(-1, int(t[name].shape[0]))
    ///     print(e[row, [0, 1, 2, 575]], np.sum(e[row].astype(np.float64)))
    static let pythonRows: [(String, Int, [Float], Double)] = [
        (
            "token_embd.weight", 0,
            [-0.10654449462890625, 0.032978057861328125, 0.048198699951171875, 0.029754638671875], -2.2541093826293945
        ),
        (
            "token_embd.weight", 1, [-0.0238037109375, -0.015869140625, -0.0396728515625, -0.12843704223632812],
            0.35922718048095703
        ),
        (
            "token_embd.weight", 49151,
            [0.011505126953125, 0.0057525634765625, 0.0977935791015625, -0.0417022705078125], -0.4662208557128906
        ),
        (
            "blk.0.attn_q.weight", 0, [-0.0963134765625, 0.1573486328125, -0.0963134765625, 0.12353515625],
            1.00726318359375
        ),
        (
            "blk.0.attn_q.weight", 575, [-0.15679931640625, 0.154327392578125, 0.34100341796875, -0.255859375],
            -4.734954833984375
        ),
    ]

    @Test func dequantizedRowsMatchPythonReference() throws {
        let file = try open()
        for (name, row, samples, sum) in Self.pythonRows {
            let info = try #require(file.tensor(named: name))
            let values = try file.dequantizedRow(row, of: info)
            #expect(values.count == 576)
            #expect(values.allSatisfy { $0.isFinite && abs($0) < 10 }, "\(name) row \(row) magnitude")
            #expect([values[0], values[1], values[2], values[575]] == samples, "\(name) row \(row)")
            let total = values.reduce(0.0) { $0 + Double($1) }
            #expect(abs(total - sum) < 1e-9, "\(name) row \(row) sum \(total)")
        }
        let norm = try file.dequantizedTensor(named: "blk.0.attn_norm.weight")
        #expect(norm.count == 576)
        #expect([norm[0], norm[1], norm[575]] == [0.01397705078125, 0.0238037109375, -0.038330078125])
    }

    @Test func wholeTensorsDecodeToPlausibleValues() throws {
        let file = try open()
        for name in ["blk.0.attn_q.weight", "blk.15.ffn_gate.weight", "output_norm.weight"] {
            let info = try #require(file.tensor(named: name))
            let values = try file.dequantize(info)
            #expect(values.count == info.elementCount)
            let finite = values.allSatisfy(\.isFinite)
            let largest = values.map(abs).max() ?? 0
            let meanSquare = values.reduce(0.0) { $0 + Double($1 * $1) } / Double(values.count)
            #expect(finite && largest > 0 && largest < 20, "\(name): largest magnitude \(largest)")
            #expect(meanSquare > 1e-6, "\(name) is not all zeros")
        }
        // Every tensor of the model decodes to finite values.
        let clock = ContinuousClock()
        var nonFinite: [String] = []
        var decoding = Duration.zero
        for info in file.tensors {
            var values: [Float] = []
            decoding += try clock.measure { values = try file.dequantize(info) }
            // Summing propagates any NaN or infinity, and is cheap even in an unoptimised test build.
            if !values.withUnsafeBufferPointer({ $0.reduce(0, +) }).isFinite { nonFinite.append(info.name) }
        }
        print("dequantized all \(file.parameterCount) parameters in \(decoding)")
        #expect(nonFinite.isEmpty, "non-finite values in \(nonFinite)")

        // Raw access: the first Q8_0 block scale of the embedding is a sane half float.
        let embedding = try #require(file.tensor(named: "token_embd.weight"))
        let scale = file.withTensorData(embedding) { Float(Float16(bitPattern: $0.load(as: UInt16.self))) }
        #expect(scale > 0 && scale < 1)
    }
}
