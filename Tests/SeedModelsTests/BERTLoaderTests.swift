import Foundation
import SeedFormats
import SeedKernels
import SeedModels
import Testing

/// A small random BERT written to a temporary directory, with knobs for breaking it.
struct TinyBERT {
    var vocabularySize = 50
    var hiddenSize = 32
    var layerCount = 2
    var headCount = 4
    var intermediateSize = 64
    var maxPositions = 16
    var typeCount = 2
    var hiddenActivation = "gelu"
    var modelType = "bert"
    var dtype: SafetensorsDType = .f32
    /// Prefix for every tensor name (`"bert."` as in `BertForMaskedLM` checkpoints).
    var prefix = ""
    /// Round the weights to F16 before writing (so an F32 file holds the same values as an F16 one).
    var roundToF16 = false
    var omitTensor: String?
    var seed: UInt64 = 7

    var config: [String: Any] {
        [
            "model_type": modelType, "vocab_size": vocabularySize, "hidden_size": hiddenSize,
            "num_hidden_layers": layerCount, "num_attention_heads": headCount, "intermediate_size": intermediateSize,
            "hidden_act": hiddenActivation, "max_position_embeddings": maxPositions, "type_vocab_size": typeCount,
            "layer_norm_eps": 1e-12, "architectures": ["BertModel"],
        ]
    }

    var tensorShapes: [(String, [Int])] {
        let h = hiddenSize
        var shapes: [(String, [Int])] = [
            ("embeddings.word_embeddings.weight", [vocabularySize, h]),
            ("embeddings.position_embeddings.weight", [maxPositions, h]),
            ("embeddings.token_type_embeddings.weight", [typeCount, h]),
            ("embeddings.LayerNorm.weight", [h]), ("embeddings.LayerNorm.bias", [h]),
        ]
        for i in 0..<layerCount {
            let p = "encoder.layer.\(i)."
            for part in ["query", "key", "value"] {
                shapes.append((p + "attention.self.\(part).weight", [h, h]))
                shapes.append((p + "attention.self.\(part).bias", [h]))
            }
            shapes += [
                (p + "attention.output.dense.weight", [h, h]), (p + "attention.output.dense.bias", [h]),
                (p + "attention.output.LayerNorm.weight", [h]), (p + "attention.output.LayerNorm.bias", [h]),
                (p + "intermediate.dense.weight", [intermediateSize, h]),
                (p + "intermediate.dense.bias", [intermediateSize]),
                (p + "output.dense.weight", [h, intermediateSize]), (p + "output.dense.bias", [h]),
                (p + "output.LayerNorm.weight", [h]), (p + "output.LayerNorm.bias", [h]),
            ]
        }
        return shapes
    }

    /// Writes `config.json`, `model.safetensors` and the sentence-transformers files; returns the directory.
    func write() throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tiny-bert-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory + "/1_Pooling", withIntermediateDirectories: true)
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: directory + "/config.json"))
        let pooling = #"{"word_embedding_dimension": \#(hiddenSize), "pooling_mode_mean_tokens": true}"#
        try Data(pooling.utf8).write(to: URL(fileURLWithPath: directory + "/1_Pooling/config.json"))
        try Data(#"{"max_seq_length": 12}"#.utf8).write(
            to: URL(fileURLWithPath: directory + "/sentence_bert_config.json"))
        var writer = SafetensorsWriter()
        var state = seed
        for (name, shape) in tensorShapes where name != omitTensor {
            let count = shape.reduce(1, *)
            let isNormWeight = name.hasSuffix("LayerNorm.weight")
            let values: [Float] = (0..<count).map { _ in
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                let r = Float(state >> 40) / Float(1 << 24) - 0.5  // uniform in [-0.5, 0.5)
                let v = isNormWeight ? 1 + 0.2 * r : 0.4 * r
                return roundToF16 ? Float(Float16(v)) : v
            }
            try writer.addTensor(name: prefix + name, shape: shape, floats: values, dtype: dtype)
        }
        try writer.write(to: directory + "/model.safetensors")
        return directory
    }
}

func removeDirectory(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
}

@Suite struct BERTLoaderTests {
    @Test func tinyModelLoadsWithAndWithoutPrefixAndInF16() throws {
        let plain = try TinyBERT(roundToF16: true).write()
        let prefixed = try TinyBERT(prefix: "bert.", roundToF16: true).write()
        let half = try TinyBERT(dtype: .f16).write()
        defer { for d in [plain, prefixed, half] { removeDirectory(d) } }
        let ids = [[1, 5, 9, 2], [1, 7, 2]]
        let a = try BERTModel(directory: plain, threads: 2).encode(ids: ids)
        let b = try BERTModel(directory: prefixed, threads: 2).encode(ids: ids)
        let c = try BERTModel(directory: half, threads: 1).encode(ids: ids)
        #expect(a.map(\.count) == [4 * 32, 3 * 32])
        #expect(a == b)
        for (x, y) in zip(a.joined(), c.joined()) { #expect(abs(x - y) < 1e-5) }
        #expect(a.joined().allSatisfy { $0.isFinite })
        // Every token state is LayerNorm output: per-token outputs differ between tokens.
        #expect(a[0][0..<32] != a[0][32..<64])
    }

    @Test func batchingAndTokenTypesDoNotLeakBetweenSequences() throws {
        let directory = try TinyBERT().write()
        defer { removeDirectory(directory) }
        let model = try BERTModel(directory: directory, threads: 2)
        let ids = [[1, 5, 9, 2], [1, 7, 2], Array(repeating: 3, count: 16), [4]]
        let types = [[0, 0, 1, 1], [0, 1, 1], Array(repeating: 0, count: 16), [1]]
        let batched = try model.encode(ids: ids, typeIDs: types)
        for i in ids.indices {
            let single = try model.encode(ids: [ids[i]], typeIDs: [types[i]])[0]
            #expect(batched[i].count == single.count)
            for (x, y) in zip(batched[i], single) { #expect(abs(x - y) <= 1e-5) }
        }
        // Token types change the result; default types are all zero.
        let zeros = try model.encode(ids: [ids[0]], typeIDs: [[0, 0, 0, 0]])[0]
        #expect(try model.encode(ids: [ids[0]])[0] == zeros)
        #expect(zeros != batched[0])
        #expect(try model.encode(ids: []).isEmpty)
    }

    @Test func tanhGELUModelRuns() throws {
        let exact = try TinyBERT().write()
        let tanh = try TinyBERT(hiddenActivation: "gelu_new").write()
        defer { for d in [exact, tanh] { removeDirectory(d) } }
        let a = try BERTModel(directory: exact, threads: 1).encode(ids: [[1, 2, 3]])[0]
        let b = try BERTModel(directory: tanh, threads: 1).encode(ids: [[1, 2, 3]])[0]
        // The two GELUs differ by at most ~1e-3, so the states are close but not identical.
        #expect(a != b)
        for (x, y) in zip(a, b) { #expect(abs(x - y) < 0.05) }
    }

    @Test func missingDirectoryAndFiles() throws {
        let missing = "/nonexistent/bert-\(UUID())"
        #expect(throws: ModelError.missingFile(path: missing)) { try BERTModel(directory: missing) }
        let directory = try TinyBERT().write()
        defer { removeDirectory(directory) }
        try FileManager.default.removeItem(atPath: directory + "/1_Pooling/config.json")
        #expect(throws: ModelError.missingFile(path: directory + "/1_Pooling/config.json")) {
            try SentenceEmbedder(directory: directory)
        }
        try FileManager.default.removeItem(atPath: directory + "/model.safetensors")
        #expect(throws: ModelError.missingFile(path: directory + "/model.safetensors")) {
            try BERTModel(directory: directory)
        }
    }

    @Test func badConfigurationsAreNamed() throws {
        let directory = try TinyBERT().write()
        defer { removeDirectory(directory) }
        let path = directory + "/config.json"
        func loadError(_ json: String) -> ModelError? {
            try? Data(json.utf8).write(to: URL(fileURLWithPath: path))
            do {
                _ = try BERTModel(directory: directory)
                return nil
            } catch {
                return error
            }
        }
        let malformed = loadError("{\"model_type\": \"bert\", ")
        guard case .invalidConfiguration(path, "", _) = malformed else {
            Issue.record("malformed JSON gave \(String(describing: malformed))")
            return
        }
        var config = TinyBERT().config
        func json(_ change: (inout [String: Any]) -> Void) throws -> String {
            var c = config
            change(&c)
            return String(decoding: try JSONSerialization.data(withJSONObject: c), as: UTF8.self)
        }
        let roberta = loadError(try json { $0["model_type"] = "roberta" })
        #expect(roberta?.description.contains("roberta") == true)
        guard case .invalidConfiguration(path, "model_type", _) = roberta else {
            Issue.record("wrong model_type gave \(String(describing: roberta))")
            return
        }
        let relu = loadError(try json { $0["hidden_act"] = "relu" })
        #expect(relu?.description.contains("'relu'") == true)
        guard case .invalidConfiguration(path, "hidden_act", _) = relu else {
            Issue.record("unknown hidden_act gave \(String(describing: relu))")
            return
        }
        let missingKey = loadError(try json { $0["hidden_size"] = nil })
        #expect(missingKey?.description.contains("hidden_size") == true)
        let heads = loadError(try json { $0["num_attention_heads"] = 5 })
        guard case .invalidConfiguration(path, "num_attention_heads", _) = heads else {
            Issue.record("5 heads for 32 channels gave \(String(describing: heads))")
            return
        }
        config["hidden_size"] = "32"
        let wrongType = loadError(try json { _ in })
        #expect(wrongType?.description.contains("hidden_size") == true)
    }

    @Test func missingOrMisshapenTensorIsNamed() throws {
        let name = "encoder.layer.1.attention.self.key.bias"
        let missing = try TinyBERT(omitTensor: name).write()
        defer { removeDirectory(missing) }
        #expect(throws: ModelError.missingTensor(name)) { try BERTModel(directory: missing) }

        // A config that disagrees with the weights: the first tensor checked reports the mismatch.
        let directory = try TinyBERT().write()
        defer { removeDirectory(directory) }
        var config = TinyBERT().config
        config["vocab_size"] = 60
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: directory + "/config.json"))
        let shapeError = ModelError.tensorShape(
            name: "embeddings.word_embeddings.weight", expected: [60, 32], actual: [50, 32])
        #expect(throws: shapeError) { try BERTModel(directory: directory) }

        // Garbage instead of safetensors.
        try Data("not a safetensors file".utf8).write(to: URL(fileURLWithPath: directory + "/model.safetensors"))
        #expect(throws: ModelError.self) { try BERTModel(directory: directory) }
    }

    @Test func truncatedWeightsAndLyingHeaderNameTheFileAndTensor() throws {
        let directory = try TinyBERT().write()
        defer { removeDirectory(directory) }
        let path = directory + "/model.safetensors"
        let url = URL(fileURLWithPath: path)
        let original = try Data(contentsOf: url)
        func loadError() -> String? {
            do {
                _ = try BERTModel(directory: directory)
                return nil
            } catch {
                guard case .file(let message) = error else { return "wrong case: \(error)" }
                return message
            }
        }
        let headerLength = Int(original.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let header = try #require(
            try JSONSerialization.jsonObject(with: original.subdata(in: 8..<(8 + headerLength))) as? [String: Any])
        // The tensor stored last: cutting the file 100 bytes short leaves it reaching past the end.
        let last = try #require(
            header.filter { $0.key != "__metadata__" }.max { a, b in
                ((a.value as? [String: Any])?["data_offsets"] as? [Int] ?? [0, 0])[1]
                    < ((b.value as? [String: Any])?["data_offsets"] as? [Int] ?? [0, 0])[1]
            }?.key)
        try original.prefix(original.count - 100).write(to: url)
        let truncated = try #require(loadError())
        #expect(truncated.hasPrefix(path), "\(truncated)")
        #expect(truncated.contains("'\(last)'") && truncated.contains("past the end"), "\(truncated)")
        // Cut inside the header.
        try original.prefix(8 + headerLength / 2).write(to: url)
        #expect(try #require(loadError()).contains("header length \(headerLength)"))

        // A header that lies: one tensor's end offset moved 4 bytes further than its shape needs.
        let name = "encoder.layer.0.attention.self.query.bias"
        var lying = header
        var entry = try #require(lying[name] as? [String: Any])
        let offsets = try #require(entry["data_offsets"] as? [Int])
        entry["data_offsets"] = [offsets[0], offsets[1] + 4]
        lying[name] = entry
        let json = try JSONSerialization.data(withJSONObject: lying)
        var bytes = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { bytes.append(contentsOf: $0) }
        try (bytes + json + original.suffix(from: 8 + headerLength)).write(to: url)
        let lie = try #require(loadError())
        #expect(lie.contains("'\(name)'") && lie.contains("has 132 data bytes, expected 128"), "\(lie)")
    }

    @Test func badInputIsRejected() throws {
        let directory = try TinyBERT().write()
        defer { removeDirectory(directory) }
        let model = try BERTModel(directory: directory, threads: 1)
        #expect(throws: ModelError.tokenOutOfRange(id: 50, vocabularySize: 50)) { try model.encode(ids: [[1, 50]]) }
        #expect(throws: ModelError.tokenOutOfRange(id: -1, vocabularySize: 50)) { try model.encode(ids: [[-1]]) }
        #expect(throws: ModelError.invalidInput("sequence 1 is empty")) { try model.encode(ids: [[1], []]) }
        #expect(throws: ModelError.contextOverflow(needed: 17, capacity: 16)) {
            try model.encode(ids: [Array(repeating: 1, count: 17)])
        }
        #expect(throws: ModelError.self) { try model.encode(ids: [[1, 2]], typeIDs: [[0]]) }
        #expect(throws: ModelError.self) { try model.encode(ids: [[1, 2]], typeIDs: [[0, 2]]) }
        #expect(throws: ModelError.self) { try model.encode(ids: [[1, 2]], typeIDs: []) }

        let embedder = try SentenceEmbedder(directory: directory, threads: 1)
        #expect(embedder.maxSequenceLength == 12)
        #expect(throws: ModelError.contextOverflow(needed: 13, capacity: 12)) {
            try embedder.embed(ids: [Array(repeating: 1, count: 13)])
        }
        let vectors = try embedder.embed(ids: [[1, 2, 3], [4]])
        #expect(vectors.count == 2)
        for v in vectors {
            #expect(v.count == 32)
            #expect(abs(v.reduce(0) { $0 + $1 * $1 } - 1) < 1e-5)
        }
    }
}

@Suite struct BERTKernelTests {
    @Test func geluMatchesKnownValues() {
        var exact: [Float] = [-3, -1, 0, 1, 3]
        var tanh = exact
        gelu(&exact, count: exact.count, kind: .exact)
        gelu(&tanh, count: tanh.count, kind: .tanh)
        // torch.nn.functional.gelu(x) and gelu(x, approximate="tanh").
        let expectedExact: [Float] = [-0.0040496, -0.1586553, 0, 0.8413447, 2.9959502]
        let expectedTanh: [Float] = [-0.0036374, -0.1588080, 0, 0.8411920, 2.9963627]
        for i in 0..<5 {
            #expect(abs(exact[i] - expectedExact[i]) < 1e-6)
            #expect(abs(tanh[i] - expectedTanh[i]) < 1e-6)
        }
    }

    @Test func layerNormNormalisesEachRow() {
        // Two rows of 20 (exercises the SIMD body and the scalar tail).
        let dim = 20
        let x: [Float] = (0..<2 * dim).map { Float($0 % dim) * ($0 < dim ? 1 : -3) + 5 }
        let weight: [Float] = (0..<dim).map { 1 + Float($0) / 10 }
        let bias: [Float] = (0..<dim).map { Float($0) / 100 }
        var y = [Float](repeating: 0, count: 2 * dim)
        layerNorm(x, weight: weight, bias: bias, rows: 2, dim: dim, eps: 1e-12, into: &y)
        for r in 0..<2 {
            let row = x[r * dim..<(r + 1) * dim].map(Double.init)
            let mean = row.reduce(0, +) / Double(dim)
            let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(dim)
            for i in 0..<dim {
                let expected = (row[i] - mean) / variance.squareRoot() * Double(weight[i]) + Double(bias[i])
                #expect(abs(Double(y[r * dim + i]) - expected) < 1e-5)
            }
        }
    }
}
