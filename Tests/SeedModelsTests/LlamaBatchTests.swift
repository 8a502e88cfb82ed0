import Foundation
import SeedKernels
import SeedModels
import SeedTestSupport
import Testing

/// The batched, paged forward pass against the single-sequence session on the real model.
@Suite struct LlamaBatchTests {
    /// Gives each sequence fresh blocks in an interleaved order, so neighbouring positions live in scattered blocks.
    final class Tables {
        let pointers: [UnsafeMutablePointer<Int32>]
        init(sequences: Int, blocksEach: Int) {
            pointers = (0..<sequences).map { s in
                let p = UnsafeMutablePointer<Int32>.allocate(capacity: blocksEach)
                for b in 0..<blocksEach { p[b] = Int32(b * sequences + (sequences - 1 - s)) }
                return p
            }
        }
        deinit { pointers.forEach { $0.deallocate() } }
    }

    @Test func oneSequenceInChunksEqualsTheSessionExactly() throws {
        let model = try LlamaModel(path: try TestPaths.smolLM2(), threads: 2)
        let prompt = [1, 504, 3458, 282, 4649, 314, 1345, 30, 216, 57, 28, 284, 29, 33, 8761, 17, 28, 9, 911, 77]
        let session = model.makeSession(contextLength: 64, batchCapacity: 8)
        let expected = Array(try session.forward(prompt))
        let next = Array(try session.forward([42]))

        let cache = PagedKVCache(configuration: model.configuration, blockSize: 4, blockCount: 32)
        let runner = LlamaBatchRunner(model: model, cache: cache, maxTokens: 8, maxLogitRows: 4, maxPositions: 64)
        let tables = Tables(sequences: 2, blocksEach: 16)
        var logits: [Float] = []
        for start in stride(from: 0, to: prompt.count, by: 8) {
            let end = min(start + 8, prompt.count)
            let segment = BatchSegment(
                tokens: prompt[start..<end], startPosition: start, blockTable: tables.pointers[1],
                wantsLogits: end == prompt.count)
            logits = Array(try runner.forward([segment]))
        }
        #expect(logits == expected)
        let step = BatchSegment(
            tokens: [42][...], startPosition: prompt.count, blockTable: tables.pointers[1], wantsLogits: true)
        #expect(Array(try runner.forward([step])) == next)
    }

    @Test func mixedBatchOfPrefillAndDecodeMatchesSeparateRuns() throws {
        let model = try LlamaModel(path: try TestPaths.smolLM2(), threads: 2, activations: .float32)
        let vocabulary = model.configuration.vocabularySize
        let sequences: [[Int]] = [
            [1, 504, 3458, 282, 4649, 314, 1345],
            [28, 284, 29, 33, 8761, 17, 28, 9, 911, 77, 5],
            [216, 57, 28],
        ]
        // Each sequence alone, through the session.
        var expected: [[Float]] = []
        for tokens in sequences {
            let session = model.makeSession(contextLength: 64)
            expected.append(Array(try session.forward(tokens)))
        }
        // All three in one pass: the first two prefilled in full, the third split so that its last token rides in
        // a second pass alongside nothing else.
        let cache = PagedKVCache(configuration: model.configuration, blockSize: 4, blockCount: 48)
        let runner = LlamaBatchRunner(model: model, cache: cache, maxTokens: 32, maxLogitRows: 4, maxPositions: 64)
        let tables = Tables(sequences: 3, blocksEach: 16)
        let first = try runner.forward([
            BatchSegment(
                tokens: sequences[0][...], startPosition: 0, blockTable: tables.pointers[0], wantsLogits: true),
            BatchSegment(
                tokens: sequences[2][0..<2], startPosition: 0, blockTable: tables.pointers[2], wantsLogits: false),
            BatchSegment(
                tokens: sequences[1][...], startPosition: 0, blockTable: tables.pointers[1], wantsLogits: true),
        ])
        #expect(first.count == 2 * vocabulary)
        let rows = [Array(first[0..<vocabulary]), Array(first[vocabulary..<(2 * vocabulary)])]
        let last = Array(
            try runner.forward([
                BatchSegment(
                    tokens: sequences[2][2...], startPosition: 2, blockTable: tables.pointers[2], wantsLogits: true)
            ]))
        // Batching changes which kernel runs (row counts), so compare within float rounding, not bit for bit.
        for (got, want) in [(rows[0], expected[0]), (rows[1], expected[1]), (last, expected[2])] {
            let diff = zip(got, want).map { abs($0 - $1) }.max() ?? .infinity
            #expect(diff < 2e-3, "max |diff| \(diff)")
            #expect(got.indices.max { got[$0] < got[$1] } == want.indices.max { want[$0] < want[$1] })
        }
    }

    @Test func rejectsBatchesItCannotRun() throws {
        let model = try LlamaModel(path: try TestPaths.smolLM2(), threads: 1)
        let cache = PagedKVCache(configuration: model.configuration, blockSize: 4, blockCount: 4)
        let runner = LlamaBatchRunner(model: model, cache: cache, maxTokens: 4, maxLogitRows: 1, maxPositions: 16)
        let tables = Tables(sequences: 2, blocksEach: 2)
        let table = tables.pointers[0]
        #expect(throws: ModelError.self) {
            try runner.forward([
                BatchSegment(tokens: [1, 2, 3, 4, 5][...], startPosition: 0, blockTable: table, wantsLogits: true)
            ])
        }
        #expect(throws: ModelError.self) {
            try runner.forward([BatchSegment(tokens: [-1][...], startPosition: 0, blockTable: table, wantsLogits: true)]
            )
        }
        #expect(throws: ModelError.self) {
            try runner.forward([BatchSegment(tokens: [1][...], startPosition: 16, blockTable: table, wantsLogits: true)]
            )
        }
        #expect(throws: ModelError.self) {
            try runner.forward([
                BatchSegment(tokens: [1][...], startPosition: 0, blockTable: table, wantsLogits: true),
                BatchSegment(tokens: [1][...], startPosition: 0, blockTable: tables.pointers[1], wantsLogits: true),
            ])
        }
        #expect(try runner.forward([]).isEmpty)
    }
}
