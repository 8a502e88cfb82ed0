import Foundation
import SeedFormats
import SeedModels
import SeedTensor
import Testing

@testable import SeedTrain

/// A GGUF holding only a tokenizer vocabulary of `count` tokens (what the exporter copies `tokenizer.*` from).
private func tokenizerGGUF(count: Int) throws -> GGUFFile {
    var writer = GGUFWriter()
    writer.setMetadata("general.architecture", .string("llama"))
    writer.setMetadata("tokenizer.ggml.model", .string("gpt2"))
    writer.setMetadata("tokenizer.ggml.tokens", .array(.string((0..<count).map { "t\($0)" })))
    let path = NSTemporaryDirectory() + "seed-export-tokenizer-\(getpid())-\(count).gguf"
    try writer.write(to: path)
    return try GGUFFile(path: path)
}

@Suite struct ModelExportTests {
    /// The rotate-half → interleaved permutation puts row `j·d/2 + i` of each head at row `2i + j`.
    @Test func permutationMatchesLlamaCppConverter() {
        // 2 heads × head dim 4, 1 column: rows 0...7.
        let rows: [Float] = (0..<8).map(Float.init)
        let permuted = TrainedModel.rotateHalfToInterleaved(rows, heads: 2, headDim: 4, columns: 1)
        #expect(permuted == [0, 2, 1, 3, 4, 6, 5, 7])
    }

    /// A model exported to GGUF and loaded by the inference engine gives the training model's logits.
    @Test(arguments: [false, true]) func exportedGGUFGivesTheTrainingModelsLogits(halfPrecision: Bool) throws {
        for tied in [true, false] {
            let configuration = LlamaConfiguration(
                vocabularySize: 96, hiddenSize: 64, intermediateSize: 96, layerCount: 2, headCount: 4, kvHeadCount: 2,
                ropeBase: 10_000, rmsNormEpsilon: 1e-5, contextLength: 32, tiedEmbeddings: tied,
                ropeInterleaved: false)
            let pool = WorkerPool(threads: 2)
            let model = try TrainableLlama<Float>(
                configuration: configuration, pool: pool, seed: 3, initializerRange: 0.2)
            let tokens: [Int32] = [5, 17, 3, 90, 44, 12, 7, 7, 60, 1, 33, 71]
            let expected = try model.logits(inputs: tokens, batchSize: 1)

            var tensors: [String: CheckpointTensor] = [:]
            for parameter in model.parameters.parameters {
                tensors[parameter.name] = CheckpointTensor(shape: parameter.shape, values: parameter.values)
            }
            let trained = TrainedModel(configuration: configuration, tensors: tensors, endOfTextID: 0, source: "test")
            let path = NSTemporaryDirectory() + "seed-export-\(getpid())-\(halfPrecision)-\(tied).gguf"
            try trained.writeGGUF(to: path, tokenizer: try tokenizerGGUF(count: 96), halfPrecision: halfPrecision)

            let inference = try LlamaModel(path: path, threads: 2)
            #expect(inference.configuration.ropeInterleaved)
            #expect(inference.configuration.tiedEmbeddings == tied)
            let session = inference.makeSession()
            let logits = Array(try session.forward(tokens.map(Int.init), logits: .all))
            #expect(logits.count == expected.count)
            var worst: Float = 0
            for i in 0..<expected.count { worst = max(worst, abs(logits[i] - expected[i])) }
            let scale = expected.map(abs).max()!
            // f32: float rounding only; f16 weights: about 1e-3 relative.
            #expect(worst <= (halfPrecision ? 2e-2 : 2e-4) * max(scale, 1), "max difference \(worst), scale \(scale)")
        }
    }

    @Test func tokenizerWithAnotherVocabularyIsRefused() throws {
        let configuration = LlamaConfiguration(
            vocabularySize: 96, hiddenSize: 32, intermediateSize: 64, layerCount: 1, headCount: 2, kvHeadCount: 2)
        let model = try TrainableLlama<Float>(configuration: configuration, pool: WorkerPool(threads: 1), seed: 1)
        var tensors: [String: CheckpointTensor] = [:]
        for parameter in model.parameters.parameters {
            tensors[parameter.name] = CheckpointTensor(shape: parameter.shape, values: parameter.values)
        }
        let trained = TrainedModel(configuration: configuration, tensors: tensors, endOfTextID: 0, source: "test")
        #expect {
            try trained.writeGGUF(
                to: NSTemporaryDirectory() + "seed-export-bad.gguf", tokenizer: try tokenizerGGUF(count: 95),
                halfPrecision: false)
        } throws: { error in
            "\(error)".contains("95 tokens")
        }
    }

    @Test func missingSourceIsNamed() {
        #expect {
            try TrainedModel.open(path: "/nonexistent/run")
        } throws: { error in
            "\(error)".contains("/nonexistent/run")
        }
    }
}
