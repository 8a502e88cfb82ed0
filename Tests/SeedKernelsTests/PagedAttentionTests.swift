import Foundation
import SeedTensor
import Testing

@testable import SeedKernels

@Suite struct PagedAttentionTests {
    /// Several sequences whose positions are scattered over shuffled blocks must attend exactly as if each sequence's
    /// keys and values were contiguous.
    @Test(arguments: [1, 2])
    func pagedEqualsContiguousForScatteredBlocks(threads: Int) {
        let shape = AttentionShape(heads: 6, kvHeads: 2, headDim: 32)
        let kvDim = shape.kvHeads * shape.headDim
        let qDim = shape.heads * shape.headDim
        let blockSize = 4
        let lengths = [1, 7, 16, 23]
        let blockCount = lengths.map { ($0 + blockSize - 1) / blockSize }.reduce(0, +) + 3
        var rng = SplitMix(state: 11)
        // Shuffled block ids handed out to the sequences in turn.
        var ids = Array(0..<Int32(blockCount))
        for i in stride(from: ids.count - 1, to: 0, by: -1) { ids.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        var paged = [Float](repeating: .nan, count: blockCount * blockSize * kvDim)
        var pagedValues = paged
        let pool = WorkerPool(threads: threads)
        let scratch = AttentionScratch(threads: threads, capacity: 64)
        var tables: [[Int32]] = []
        var contiguous: [(keys: [Float], values: [Float], q: [Float])] = []
        var next = 0
        for length in lengths {
            let keys = (0..<(length * kvDim)).map { _ in rng.nextFloat() * 2 - 1 }
            let values = (0..<(length * kvDim)).map { _ in rng.nextFloat() * 2 - 1 }
            let q = (0..<(length * qDim)).map { _ in rng.nextFloat() * 2 - 1 }
            var table: [Int32] = []
            for b in 0..<((length + blockSize - 1) / blockSize) {
                table.append(ids[next])
                next += 1
                for i in 0..<blockSize where b * blockSize + i < length {
                    let p = b * blockSize + i
                    let slot = (Int(table[b]) * blockSize + i) * kvDim
                    for d in 0..<kvDim {
                        paged[slot + d] = keys[p * kvDim + d]
                        pagedValues[slot + d] = values[p * kvDim + d]
                    }
                }
            }
            tables.append(table)
            contiguous.append((keys, values, q))
        }
        // Every position of every sequence as one batch of query rows.
        var allQ: [Float] = []
        var expected: [Float] = []
        for (s, length) in lengths.enumerated() {
            allQ += contiguous[s].q
            var out = [Float](repeating: 0, count: length * qDim)
            causalAttention(
                q: contiguous[s].q, qStride: qDim, keys: contiguous[s].keys, values: contiguous[s].values,
                kvStride: kvDim, tokens: length, start: 0, shape: shape, out: &out, outStride: qDim,
                scratch: scratch, pool: pool)
            expected += out
        }
        var actual = [Float](repeating: 0, count: expected.count)
        let tablePointers = tables.map { table -> UnsafeMutablePointer<Int32> in
            let p = UnsafeMutablePointer<Int32>.allocate(capacity: table.count)
            p.initialize(from: table, count: table.count)
            return p
        }
        defer { tablePointers.forEach { $0.deallocate() } }
        var rows: [PagedAttentionRow] = []
        for (s, length) in lengths.enumerated() {
            for p in 0..<length { rows.append(PagedAttentionRow(position: Int32(p), blockTable: tablePointers[s])) }
        }
        pagedCausalAttention(
            q: allQ, qStride: qDim, rows: rows, rowCount: rows.count, keys: paged, values: pagedValues,
            blockSize: blockSize, shape: shape, out: &actual, outStride: qDim, scratch: scratch, pool: pool)
        #expect(actual == expected)
        #expect(!actual.contains { $0.isNaN })
    }
}
