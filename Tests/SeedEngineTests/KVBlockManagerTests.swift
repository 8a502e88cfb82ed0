import Testing

@testable import SeedEngine

@Suite struct KVBlockManagerTests {
    @Test func allocatesEveryBlockOnceAndReturnsThemOnRelease() {
        let manager = KVBlockManager(blockSize: 4, blockCount: 5)
        var taken: [Int32] = []
        while let block = manager.allocate() { taken.append(block) }
        #expect(Set(taken) == Set(0..<5))
        #expect(manager.availableBlocks == 0 && manager.usedBlocks == 5)
        manager.release(blocks: taken)
        #expect(manager.freeBlockCount == 5 && manager.usedBlocks == 0)
    }

    @Test func sharesFullBlocksOfACommonPrefixAndLeavesOneTokenToCompute() {
        let manager = KVBlockManager(blockSize: 4, blockCount: 8)
        let prompt = Array(100..<110)  // 10 tokens: two full blocks and a partial one
        let first = (0..<3).map { _ in manager.allocate()! }
        manager.register(first[0], parent: -1, tokens: prompt[0..<4])
        manager.register(first[1], parent: first[0], tokens: prompt[4..<8])

        // Same prefix, different tail: both full blocks are shared.
        let matched = manager.matchPrefix(Array(prompt[0..<8]) + [7, 7, 7])
        #expect(matched == [first[0], first[1]])
        #expect(manager.referenceCount(first[0]) == 2)
        // Exactly 8 tokens: only the first block may match (the last token must be computed).
        let exact = manager.matchPrefix(Array(prompt[0..<8]))
        #expect(exact == [first[0]])
        // A different first block matches nothing, even if the second block's tokens agree.
        #expect(manager.matchPrefix([1, 2, 3, 4] + Array(prompt[4..<10])).isEmpty)
        #expect(manager.hitTokens == 12)

        manager.release(blocks: matched)
        manager.release(blocks: exact)
        manager.release(blocks: first)
        // The registered blocks stay cached (idle), the partial one is free.
        #expect(manager.usedBlocks == 0)
        #expect(manager.cachedIdleBlocks == 2)
        #expect(manager.availableBlocks == 8)
        #expect(manager.matchPrefix(prompt) == [first[0], first[1]])
    }

    @Test func evictsIdleCachedBlocksLeastRecentlyUsedFirstAndTheirDescendants() {
        let manager = KVBlockManager(blockSize: 2, blockCount: 4)
        let a = manager.allocate()!
        let b = manager.allocate()!
        manager.register(a, parent: -1, tokens: [1, 2][...])
        manager.register(b, parent: a, tokens: [3, 4][...])
        let c = manager.allocate()!
        manager.register(c, parent: -1, tokens: [9, 9][...])
        manager.release(blocks: [a, b])
        manager.release(c)
        #expect(manager.cachedIdleBlocks == 3)
        // One free block, then evictions: the oldest idle block is `b` (released before `a`), then `a`, then `c`.
        let d = manager.allocate()!
        #expect(manager.cachedIdleBlocks == 3 && manager.freeBlockCount == 0)
        let e = manager.allocate()!
        #expect(e == b)
        #expect(manager.matchPrefix([1, 2, 3, 4, 5]) == [a])
        manager.release(a)
        // `a` was just released, so `c` is now the least recently used idle block.
        let f = manager.allocate()!
        #expect(f == c)
        #expect(manager.matchPrefix([9, 9, 1]).isEmpty)
        manager.release(blocks: [d, e, f])
        manager.dropIdleCache()
        #expect(manager.freeBlockCount == 4)
    }

    @Test func evictingAParentForgetsItsCachedChildren() {
        let manager = KVBlockManager(blockSize: 1, blockCount: 3)
        let a = manager.allocate()!
        let b = manager.allocate()!
        manager.register(a, parent: -1, tokens: [5][...])
        manager.register(b, parent: a, tokens: [6][...])
        // Release the child after the parent so the parent is the least recently used.
        manager.release(a)
        manager.release(b)
        _ = manager.allocate()!  // the free block
        let reused = manager.allocate()!  // evicts `a` and, with it, `b`
        #expect(reused == a)
        #expect(manager.freeBlockCount == 1)
        #expect(manager.matchPrefix([5, 6, 7]).isEmpty)
        #expect(!manager.isRegistered(b))
    }
}
