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
        try KernelInstructionSetLock.withLock { try oneSequenceInChunksEqualsTheSession() }
    }

    func oneSequenceInChunksEqualsTheSession() throws {
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
        let samePrompt = logits == expected
        #expect(samePrompt)
        let step = BatchSegment(
            tokens: [42][...], startPosition: prompt.count, blockTable: tables.pointers[1], wantsLogits: true)
        let sameStep = Array(try runner.forward([step])) == next
        #expect(sameStep)
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

    /// A sequence's greedy run alone through a session: its prompt's logits, then the logits of each generation step.
    struct SoloRun {
        var tokens: [Int] = []
        var logits: [[Float]] = []
    }

    func argmax(_ row: [Float]) -> Int {
        var best = 0
        for i in row.indices where row[i] > row[best] { best = i }
        return best
    }

    func solo(_ model: LlamaModel, prompt: [Int], steps: Int, chunk: Int) throws -> SoloRun {
        let session = model.makeSession(contextLength: 64, batchCapacity: chunk)
        var run = SoloRun()
        var logits = Array(try session.forward(prompt))
        for _ in 0..<steps {
            run.logits.append(logits)
            let next = argmax(logits)
            run.tokens.append(next)
            logits = Array(try session.forward([next]))
        }
        return run
    }

    /// With the default int8 activations, sequences decoding together (their rows through the multi-token integer
    /// kernel) produce exactly the logits, hence exactly the greedy tokens, of each sequence decoding alone — also
    /// in the passes where another sequence's prompt chunk is prefilled alongside them, listed between them.
    @Test func decodingTogetherWithInt8ActivationsEqualsDecodingAloneExactly() throws {
        try KernelInstructionSetLock.withLock { try decodingTogetherEqualsDecodingAlone() }
    }

    func decodingTogetherEqualsDecodingAlone() throws {
        let model = try LlamaModel(path: try TestPaths.smolLM2(), threads: 2)
        #expect(model.multiplier.singleTokenActivations == .int8)
        let chunk = 8
        let steps = 6
        let prompts: [[Int]] = [
            [1, 504, 3458, 282, 4649, 314, 1345],
            [28, 284, 29, 33, 8761],
            [216, 57, 28, 9, 911, 77],
            [1, 9690, 314, 260, 2114, 282, 4649, 30, 216, 57, 28, 284, 29, 33, 17, 5, 42, 911],  // joins later
        ]
        let expected = try prompts.map { try solo(model, prompt: $0, steps: steps, chunk: chunk) }
        // Different tokens at some step, or the comparison would prove little.
        #expect(Set(expected.map(\.tokens)).count == prompts.count)

        let cache = PagedKVCache(configuration: model.configuration, blockSize: 4, blockCount: 80)
        let runner = LlamaBatchRunner(model: model, cache: cache, maxTokens: 16, maxLogitRows: 4, maxPositions: 64)
        let tables = Tables(sequences: 4, blocksEach: 16)
        let vocabulary = model.configuration.vocabularySize
        var got = [SoloRun](repeating: SoloRun(), count: prompts.count)
        // The first three prompts, each in a pass of its own (as the session prefills them).
        var lastLogits: [[Float]] = Array(repeating: [], count: prompts.count)
        var computed = [Int](repeating: 0, count: prompts.count)
        for s in 0..<3 {
            lastLogits[s] = Array(
                try runner.forward([
                    BatchSegment(
                        tokens: prompts[s][...], startPosition: 0, blockTable: tables.pointers[s], wantsLogits: true)
                ]))
            computed[s] = prompts[s].count
        }
        // Then passes of one generation step per decoding sequence, with the fourth prompt's chunks in between until
        // it too decodes.
        while got.contains(where: { $0.tokens.count < steps }) {
            var segments: [BatchSegment] = []
            var owners: [Int] = []
            for s in 0..<prompts.count where got[s].tokens.count < steps {
                if computed[s] < prompts[s].count {  // prefilling: one chunk
                    let end = min(computed[s] + chunk, prompts[s].count)
                    let at = min(1, segments.count)
                    segments.insert(
                        BatchSegment(
                            tokens: prompts[s][computed[s]..<end], startPosition: computed[s],
                            blockTable: tables.pointers[s], wantsLogits: end == prompts[s].count), at: at)
                    owners.insert(s, at: at)
                    computed[s] = end
                    continue
                }
                got[s].logits.append(lastLogits[s])
                let next = argmax(lastLogits[s])
                got[s].tokens.append(next)
                guard got[s].tokens.count < steps else { continue }
                segments.append(
                    BatchSegment(
                        tokens: [next][...], startPosition: computed[s], blockTable: tables.pointers[s],
                        wantsLogits: true))
                owners.append(s)
                computed[s] += 1
            }
            if segments.isEmpty { continue }
            let logits = try runner.forward(segments)
            var row = 0
            for (segment, s) in zip(segments, owners) where segment.wantsLogits {
                lastLogits[s] = Array(logits[(row * vocabulary)..<((row + 1) * vocabulary)])
                row += 1
            }
            #expect(row * vocabulary == logits.count)
        }
        for s in prompts.indices {
            #expect(got[s].tokens == expected[s].tokens, "sequence \(s): batched tokens differ from the solo run")
            for step in 0..<steps {
                // Compared as a Bool: a failing `==` on two 49152-element arrays makes Testing diff them (minutes).
                let a = got[s].logits[step]
                let b = expected[s].logits[step]
                let same = a == b
                let worst = zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
                #expect(same, "sequence \(s), step \(step): logits differ by up to \(worst)")
            }
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
