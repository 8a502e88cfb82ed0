import Foundation
import SeedFormats
import SeedModels
import SeedTensor

/// Why an export failed.
public enum ExportError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The source is not a run directory, checkpoint or `final/` directory.
    case badSource(path: String, reason: String)
    /// The tokenizer GGUF cannot be used (unreadable, or its vocabulary does not fit the model).
    case badTokenizer(path: String, reason: String)
    /// Writing the output failed.
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case .badSource(let path, let reason): "cannot export \(path): \(reason)"
        case .badTokenizer(let path, let reason): "tokenizer \(path): \(reason)"
        case .writeFailed(let path, let reason): "cannot write \(path): \(reason)"
        }
    }
}

/// Output formats of `seed export`.
public enum ExportFormat: String, Sendable, CaseIterable {
    /// GGUF, every tensor float32.
    case ggufF32 = "gguf-f32"
    /// GGUF, matrices float16, norm weights float32 (as llama.cpp's converter does).
    case ggufF16 = "gguf-f16"
    /// A directory with Hugging Face `model.safetensors` + `config.json`.
    case hf
}

/// A trained model read back from a run: its architecture and float32 tensors with Hugging Face names.
public struct TrainedModel: Sendable {
    /// The architecture (Hugging Face rotate-half RoPE).
    public var configuration: LlamaConfiguration
    /// Tensors by Hugging Face name, row-major as PyTorch stores them.
    public var tensors: [String: CheckpointTensor]
    /// The end-of-text token id of the training data.
    public var endOfTextID: Int
    /// Where it was read from.
    public var source: String

    /// Reads a model from `path`: a `final/` directory (or any directory with `model.safetensors` + a Llama
    /// `config.json`), a checkpoint directory (`…/checkpoints/step-NNNNNNNN`, verified), or a run directory (its
    /// `final/` if present, else its newest valid checkpoint).
    ///
    /// - Throws: ``ExportError/badSource(path:reason:)``.
    public static func open(path: String) throws(ExportError) -> TrainedModel {
        let trimmed = path.hasSuffix("/") && path.count > 1 ? String(path.dropLast()) : path
        func exists(_ p: String) -> Bool { DataFileSystem.kind(of: p) == .file }
        if exists(trimmed + "/model.safetensors") && exists(trimmed + "/config.json") {
            return try openHuggingFace(trimmed)
        }
        if exists(trimmed + "/" + CheckpointStore.stateFileName) {
            let name = DataFileSystem.baseName(of: trimmed)
            guard let step = CheckpointStore.step(fromName: name) else {
                throw .badSource(path: path, reason: "a checkpoint directory is named step-NNNNNNNN")
            }
            let run = DataFileSystem.parent(of: DataFileSystem.parent(of: trimmed))
            return try openCheckpoint(CheckpointStore(directory: run), step: step, source: path)
        }
        if exists(trimmed + "/final/model.safetensors") && exists(trimmed + "/final/config.json") {
            return try openHuggingFace(trimmed + "/final")
        }
        let store = CheckpointStore(directory: trimmed)
        for step in store.steps().reversed() {
            if let model = try? openCheckpoint(store, step: step, source: path) { return model }
        }
        throw .badSource(
            path: path,
            reason: "no final/model.safetensors + config.json and no valid checkpoint found (give a run directory, "
                + "its final/ directory or a checkpoint directory)")
    }

    private static func openCheckpoint(_ store: CheckpointStore, step: Int, source: String) throws(ExportError)
        -> TrainedModel
    {
        let loaded: LoadedCheckpoint<TrainingState>
        do {
            loaded = try store.load(step: step, as: TrainingState.self)
        } catch {
            throw .badSource(path: source, reason: error.description)
        }
        let configuration = loaded.state.configuration
        let endOfText = (try? DataManifest.read(directory: configuration.data.dir))?.tokenizer.endOfTextId ?? 0
        return TrainedModel(
            configuration: Trainer.modelConfiguration(configuration), tensors: loaded.model, endOfTextID: endOfText,
            source: loaded.directory)
    }

    private static func openHuggingFace(_ directory: String) throws(ExportError) -> TrainedModel {
        let configPath = directory + "/config.json"
        let object: [String: Any]
        do {
            let bytes = try DataFileSystem.readFile(configPath)
            guard let parsed = try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
                throw ExportError.badSource(path: configPath, reason: "not a JSON object")
            }
            object = parsed
        } catch let error as ExportError {
            throw error
        } catch let error as DataFileSystem.Failure {
            throw .badSource(path: configPath, reason: error.reason)
        } catch {
            throw .badSource(path: configPath, reason: "malformed JSON: \(error)")
        }
        func int(_ key: String) throws(ExportError) -> Int {
            guard let value = object[key] as? Int else {
                throw .badSource(path: configPath, reason: "missing integer '\(key)'")
            }
            return value
        }
        let heads = try int("num_attention_heads")
        let configuration = LlamaConfiguration(
            vocabularySize: try int("vocab_size"), hiddenSize: try int("hidden_size"),
            intermediateSize: try int("intermediate_size"), layerCount: try int("num_hidden_layers"),
            headCount: heads, kvHeadCount: (object["num_key_value_heads"] as? Int) ?? heads,
            headDim: object["head_dim"] as? Int, ropeBase: Float((object["rope_theta"] as? Double) ?? 10_000),
            rmsNormEpsilon: Float((object["rms_norm_eps"] as? Double) ?? 1e-5),
            contextLength: (object["max_position_embeddings"] as? Int) ?? 2048,
            tiedEmbeddings: (object["tie_word_embeddings"] as? Bool) ?? true,
            ropeInterleaved: (object["rope_interleaved"] as? Bool) ?? false)
        do {
            try configuration.validate()
        } catch {
            throw .badSource(path: configPath, reason: "\(error)")
        }
        let weightsPath = directory + "/model.safetensors"
        var tensors: [String: CheckpointTensor] = [:]
        do {
            let file = try SafetensorsFile(path: weightsPath)
            for info in file.tensors {
                tensors[info.name] = CheckpointTensor(shape: info.shape, values: try file.floats(named: info.name))
            }
        } catch {
            throw .badSource(path: weightsPath, reason: "\(error)")
        }
        for (name, shape) in TrainableLlama<Float>.parameterSpecifications(for: configuration) {
            guard let tensor = tensors[name] else { throw .badSource(path: weightsPath, reason: "no tensor '\(name)'") }
            guard tensor.shape == shape else {
                throw .badSource(
                    path: weightsPath, reason: "tensor '\(name)' has shape \(tensor.shape), expected \(shape)")
            }
        }
        let endOfText = (object["eos_token_id"] as? Int) ?? 0
        return TrainedModel(
            configuration: configuration, tensors: tensors, endOfTextID: endOfText, source: directory)
    }

    // MARK: Writing

    /// Writes `model.safetensors` (float32, Hugging Face names) and `config.json` into the directory `path`.
    public func writeHuggingFace(to path: String) throws(ExportError) {
        do {
            try DataFileSystem.createDirectories(path)
        } catch {
            throw .writeFailed(path: path, reason: error.reason)
        }
        var writer = SafetensorsWriter()
        writer.setMetadata("format", "pt")
        do {
            for (name, _) in TrainableLlama<Float>.parameterSpecifications(for: configuration) {
                let tensor = tensors[name]!
                try writer.addTensor(name: name, shape: tensor.shape, floats: tensor.values)
            }
            try writer.write(to: path + "/model.safetensors")
        } catch {
            throw .writeFailed(path: path + "/model.safetensors", reason: "\(error)")
        }
        do {
            try DataFileSystem.writeAtomically(
                path + "/config.json",
                Array(Trainer.huggingFaceConfig(configuration, endOfTextID: endOfTextID).utf8))
        } catch {
            throw .writeFailed(path: path + "/config.json", reason: error.reason)
        }
    }

    /// Writes a GGUF file (architecture `llama`) that ``SeedModels/LlamaModel`` and llama.cpp load.
    ///
    /// Tensor names follow llama.cpp (`token_embd.weight`, `blk.N.attn_q.weight`, …, `output_norm.weight`,
    /// `output.weight` unless tied). GGUF's llama RoPE rotates adjacent pairs, while the training model uses Hugging
    /// Face rotate-half, so the rows of every head of `attn_q` and `attn_k` are permuted as llama.cpp's converter
    /// does: new row `2i + j` of a head is old row `j·d/2 + i`. The tokenizer (`tokenizer.*` metadata) is copied
    /// from `tokenizer`, a GGUF whose vocabulary has exactly the model's size.
    ///
    /// - Parameter halfPrecision: store matrices as F16 (norm weights stay F32).
    /// - Throws: ``ExportError``.
    public func writeGGUF(to path: String, tokenizer: GGUFFile, halfPrecision: Bool, name: String = "seed-trained")
        throws(ExportError)
    {
        let c = configuration
        let tokens = tokenizer.metadata["tokenizer.ggml.tokens"]?.array?.count ?? 0
        guard tokens == c.vocabularySize else {
            throw .badTokenizer(
                path: tokenizer.path,
                reason: "its vocabulary has \(tokens) tokens, the model \(c.vocabularySize); use the tokenizer the "
                    + "training data was prepared with")
        }
        var writer = GGUFWriter()
        writer.setMetadata("general.architecture", .string("llama"))
        writer.setMetadata("general.name", .string(name))
        writer.setMetadata("general.file_type", .uint32(halfPrecision ? 1 : 0))
        writer.setMetadata("llama.vocab_size", .uint32(UInt32(c.vocabularySize)))
        writer.setMetadata("llama.context_length", .uint32(UInt32(c.contextLength)))
        writer.setMetadata("llama.embedding_length", .uint32(UInt32(c.hiddenSize)))
        writer.setMetadata("llama.block_count", .uint32(UInt32(c.layerCount)))
        writer.setMetadata("llama.feed_forward_length", .uint32(UInt32(c.intermediateSize)))
        writer.setMetadata("llama.rope.dimension_count", .uint32(UInt32(c.headDim)))
        writer.setMetadata("llama.attention.head_count", .uint32(UInt32(c.headCount)))
        writer.setMetadata("llama.attention.head_count_kv", .uint32(UInt32(c.kvHeadCount)))
        writer.setMetadata("llama.attention.key_length", .uint32(UInt32(c.headDim)))
        writer.setMetadata("llama.attention.value_length", .uint32(UInt32(c.headDim)))
        writer.setMetadata("llama.rope.freq_base", .float32(c.ropeBase))
        writer.setMetadata("llama.attention.layer_norm_rms_epsilon", .float32(c.rmsNormEpsilon))
        for key in tokenizer.metadataKeys where key.hasPrefix("tokenizer.") {
            if let value = tokenizer.metadata[key] { writer.setMetadata(key, value) }
        }

        func add(_ ggufName: String, _ hfName: String, permuteHeads: Int? = nil) throws(ExportError) {
            let tensor = tensors[hfName]!
            var values = tensor.values
            if let heads = permuteHeads, !c.ropeInterleaved {
                values = Self.rotateHalfToInterleaved(
                    values, heads: heads, headDim: c.headDim, columns: tensor.shape[1])
            }
            let type: GGMLType = halfPrecision && tensor.shape.count == 2 ? .f16 : .f32
            do {
                try writer.addTensor(name: ggufName, dimensions: tensor.shape.reversed(), values: values, type: type)
            } catch {
                throw .writeFailed(path: path, reason: "\(error)")
            }
        }
        try add("token_embd.weight", "model.embed_tokens.weight")
        for i in 0..<c.layerCount {
            let hf = "model.layers.\(i)."
            let g = "blk.\(i)."
            try add(g + "attn_norm.weight", hf + "input_layernorm.weight")
            try add(g + "attn_q.weight", hf + "self_attn.q_proj.weight", permuteHeads: c.headCount)
            try add(g + "attn_k.weight", hf + "self_attn.k_proj.weight", permuteHeads: c.kvHeadCount)
            try add(g + "attn_v.weight", hf + "self_attn.v_proj.weight")
            try add(g + "attn_output.weight", hf + "self_attn.o_proj.weight")
            try add(g + "ffn_norm.weight", hf + "post_attention_layernorm.weight")
            try add(g + "ffn_gate.weight", hf + "mlp.gate_proj.weight")
            try add(g + "ffn_up.weight", hf + "mlp.up_proj.weight")
            try add(g + "ffn_down.weight", hf + "mlp.down_proj.weight")
        }
        try add("output_norm.weight", "model.norm.weight")
        if !c.tiedEmbeddings { try add("output.weight", "lm_head.weight") }
        do {
            try writer.write(to: path)
        } catch {
            throw .writeFailed(path: path, reason: "\(error)")
        }
    }

    /// Reorders the rows of a `[heads·headDim, columns]` projection from rotate-half pairs `(i, i + d/2)` to
    /// adjacent pairs `(2i, 2i + 1)`: new row `2i + j` of each head is old row `j·d/2 + i`.
    public static func rotateHalfToInterleaved(_ values: [Float], heads: Int, headDim: Int, columns: Int) -> [Float] {
        var result = values
        let half = headDim / 2
        for head in 0..<heads {
            for i in 0..<half {
                for j in 0..<2 {
                    let source = (head * headDim + j * half + i) * columns
                    let destination = (head * headDim + 2 * i + j) * columns
                    for column in 0..<columns { result[destination + column] = values[source + column] }
                }
            }
        }
        return result
    }
}
