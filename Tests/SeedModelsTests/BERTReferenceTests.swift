import Foundation
import SeedModels
import SeedTestSupport
import Testing

/// One line of `../shared/reference/minilm/embeddings.json`.
struct MiniLMReference: Decodable {
    let text: String
    let ids: [Int]
    let embedding: [Float]
    let l2_norm_before_normalize: Double

    static func load() throws -> [MiniLMReference] {
        try JSONDecoder().decode([MiniLMReference].self, from: TestPaths.referenceData("minilm/embeddings.json"))
    }
}

/// Loads all-MiniLM-L6-v2 once per test run.
enum SharedMiniLM {
    static let directory = TestPaths.modelDirectory + "/all-MiniLM-L6-v2"
    static let embedder: Result<SentenceEmbedder, any Error> = Result {
        guard FileManager.default.fileExists(atPath: directory + "/model.safetensors") else {
            throw MissingMiniLM(message: "\(directory) is missing: run scripts/fetch-models.sh")
        }
        return try SentenceEmbedder(directory: directory)
    }
    static func get() throws -> SentenceEmbedder { try embedder.get() }
}

struct MissingMiniLM: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

func cosine(_ a: [Float], _ b: [Float]) -> Double {
    var dot = 0.0
    var na = 0.0
    var nb = 0.0
    for (x, y) in zip(a, b) {
        dot += Double(x) * Double(y)
        na += Double(x) * Double(x)
        nb += Double(y) * Double(y)
    }
    return dot / (na.squareRoot() * nb.squareRoot())
}

/// all-MiniLM-L6-v2 sentence embeddings against sentence-transformers (float32 PyTorch on CPU).
///
/// Both sides compute in float32 and differ only by summation order, so the cosine with the reference must be
/// essentially 1 and the pooled norm must agree to float32 rounding.
@Suite(.serialized) struct BERTReferenceTests {
    @Test func embeddingsMatchSentenceTransformers() throws {
        let embedder = try SharedMiniLM.get()
        let references = try MiniLMReference.load()
        #expect(references.count == 25)
        #expect(embedder.maxSequenceLength == 256)
        #expect(embedder.dimension == 384)
        var worst = (cosine: 1.0, text: "")
        var worstNormError = 0.0
        let start = ContinuousClock.now
        var single: [[Float]] = []
        for reference in references {
            let pooled = try embedder.pooledEmbeddings(ids: [reference.ids])[0]
            let embedding = try embedder.embed(ids: [reference.ids])[0]
            single.append(embedding)
            #expect(embedding.count == 384)
            let c = cosine(embedding, reference.embedding)
            #expect(c >= 0.9999, "cosine \(c) for \"\(reference.text)\"")
            if c < worst.cosine { worst = (c, reference.text) }
            let norm = Double(pooled.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot())
            let relative = abs(norm - reference.l2_norm_before_normalize) / reference.l2_norm_before_normalize
            #expect(relative < 1e-4, "norm \(norm) vs \(reference.l2_norm_before_normalize) for \"\(reference.text)\"")
            worstNormError = max(worstNormError, relative)
            let length = Double(embedding.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot())
            #expect(abs(length - 1) < 1e-5)
        }
        print(
            "BERT: worst cosine \(worst.cosine) (text \"\(worst.text.prefix(40))\"), "
                + "worst relative norm error \(worstNormError)")

        // Timing: every sentence on its own, then all 25 in one batch.
        let ids = references.map(\.ids)
        let singleStart = ContinuousClock.now
        for sequence in ids { _ = try embedder.embed(ids: [sequence]) }
        let singleTime = ContinuousClock.now - singleStart
        let batchStart = ContinuousClock.now
        let batched = try embedder.embed(ids: ids)
        let batchTime = ContinuousClock.now - batchStart
        print(
            "BERT timing: 25 sentences (\(ids.map(\.count).reduce(0, +)) tokens) batch-1 \(singleTime), "
                + "one batch \(batchTime) (first pass with checks \(ContinuousClock.now - start))")

        // A batch of mixed lengths gives the same vectors as one sentence at a time.
        #expect(batched.count == single.count)
        var worstDifference: Float = 0
        for (a, b) in zip(batched, single) {
            for (x, y) in zip(a, b) { worstDifference = max(worstDifference, abs(x - y)) }
        }
        print("BERT: batched vs batch-1 max difference \(worstDifference)")
        #expect(worstDifference <= 1e-5)
    }
}
