/// Hands out the blocks of a paged KV cache to sequences and shares the full blocks of common prefixes.
///
/// A block is either free, in use (reference count > 0: held by one or more sequences), or cached (reference count
/// 0 but still holding the keys and values of a known token prefix, ready to be reused; evicted least recently
/// used first when free blocks run out). Only full blocks are shared, and shared blocks are never written again,
/// so sequences need no copy-on-write. A cached block is identified by its parent block and its own tokens, so a
/// match means the whole prefix up to and including the block is identical.
///
/// Not thread-safe: the scheduler's thread owns it.
public final class KVBlockManager {
    /// Positions per block.
    public let blockSize: Int
    /// Blocks managed.
    public let blockCount: Int

    private struct PrefixKey: Hashable {
        var parent: Int32
        var tokens: [Int32]
    }

    private var freeBlocks: [Int32]
    private var referenceCounts: [Int32]
    private var keys: [PrefixKey?]
    private var lookup: [PrefixKey: Int32] = [:]
    private var children: [[Int32]]
    /// Cached blocks with no users, with the tick they were last released at.
    private var evictable: [Int32: UInt64] = [:]
    private var tick: UInt64 = 0

    /// Prompt tokens looked up in the prefix cache, and how many were found there.
    public private(set) var queriedTokens = 0
    public private(set) var hitTokens = 0

    public init(blockSize: Int, blockCount: Int) {
        self.blockSize = max(1, blockSize)
        self.blockCount = max(1, blockCount)
        freeBlocks = (0..<Int32(self.blockCount)).reversed()
        referenceCounts = Array(repeating: 0, count: self.blockCount)
        keys = Array(repeating: nil, count: self.blockCount)
        children = Array(repeating: [], count: self.blockCount)
    }

    /// Blocks that can be handed out now: free ones plus cached ones nobody uses.
    public var availableBlocks: Int { freeBlocks.count + evictable.count }
    /// Blocks on the free list (holding nothing).
    public var freeBlockCount: Int { freeBlocks.count }
    /// Blocks held by at least one sequence.
    public var usedBlocks: Int { blockCount - freeBlocks.count - evictable.count }
    /// Blocks that hold a cached prefix and have no users.
    public var cachedIdleBlocks: Int { evictable.count }

    /// Blocks needed to hold `positions` positions.
    public func blocksNeeded(forPositions positions: Int) -> Int {
        (positions + blockSize - 1) / blockSize
    }

    /// Takes a block for a sequence (reference count 1), evicting the least recently used idle cached block when
    /// the free list is empty. Returns `nil` when every block is in use.
    public func allocate() -> Int32? {
        if freeBlocks.isEmpty { evictLeastRecentlyUsed() }
        guard let block = freeBlocks.popLast() else { return nil }
        referenceCounts[Int(block)] = 1
        return block
    }

    /// Drops one reference to `block`; with no references left it becomes free, or idle cached if it holds a
    /// known prefix.
    public func release(_ block: Int32) {
        let b = Int(block)
        precondition(referenceCounts[b] > 0, "releasing block \(block), which is not in use")
        referenceCounts[b] -= 1
        guard referenceCounts[b] == 0 else { return }
        if keys[b] != nil {
            tick += 1
            evictable[block] = tick
        } else {
            freeBlocks.append(block)
        }
    }

    /// Releases a sequence's blocks, last block first (so that, among idle cached blocks, a prefix's later blocks
    /// are older than its earlier ones and are evicted first).
    public func release<C: BidirectionalCollection>(blocks: C) where C.Element == Int32 {
        for block in blocks.reversed() { release(block) }
    }

    /// Finds the longest run of cached full blocks that starts `tokens`, takes a reference to each, and returns
    /// them. At most `(tokens.count - 1) / blockSize` blocks match, so at least one token is left to compute.
    public func matchPrefix(_ tokens: [Int]) -> [Int32] {
        var matched: [Int32] = []
        let limit = max(0, (tokens.count - 1) / blockSize)
        queriedTokens += tokens.count
        var parent: Int32 = -1
        var key = PrefixKey(parent: -1, tokens: [])
        key.tokens.reserveCapacity(blockSize)
        for i in 0..<limit {
            key.parent = parent
            key.tokens.removeAll(keepingCapacity: true)
            for t in tokens[(i * blockSize)..<((i + 1) * blockSize)] { key.tokens.append(Int32(truncatingIfNeeded: t)) }
            guard let block = lookup[key] else { break }
            let b = Int(block)
            if referenceCounts[b] == 0 { evictable[block] = nil }
            referenceCounts[b] += 1
            matched.append(block)
            parent = block
        }
        hitTokens += matched.count * blockSize
        return matched
    }

    /// Records that `block` (in use) now holds the full block `tokens` following the block `parent` (-1 for the
    /// first block of a sequence), so later prompts can reuse it. Does nothing if that prefix is already cached
    /// in another block, or if `block` is already registered.
    public func register(_ block: Int32, parent: Int32, tokens: ArraySlice<Int>) {
        precondition(tokens.count == blockSize, "only full blocks are shared")
        let b = Int(block)
        guard keys[b] == nil, parent < 0 || keys[Int(parent)] != nil else { return }
        let key = PrefixKey(parent: parent, tokens: tokens.map { Int32(truncatingIfNeeded: $0) })
        guard lookup[key] == nil else { return }
        keys[b] = key
        lookup[key] = block
        if parent >= 0 { children[Int(parent)].append(block) }
    }

    /// Whether `block` holds a registered prefix.
    public func isRegistered(_ block: Int32) -> Bool { keys[Int(block)] != nil }

    /// The reference count of `block` (for tests and invariants).
    public func referenceCount(_ block: Int32) -> Int { Int(referenceCounts[Int(block)]) }

    /// Empties the prefix cache: idle cached blocks go back to the free list.
    public func dropIdleCache() {
        while !evictable.isEmpty { evictLeastRecentlyUsed() }
    }

    private func evictLeastRecentlyUsed() {
        guard let victim = evictable.min(by: { $0.value < $1.value })?.key else { return }
        evict(victim)
    }

    /// Forgets the prefix held by idle `block` and its cached descendants (which are idle too: a sequence that
    /// uses a block also holds its parent) and frees them.
    private func evict(_ block: Int32) {
        let b = Int(block)
        for child in children[b] { evict(child) }
        children[b].removeAll()
        if let key = keys[b] {
            lookup[key] = nil
            if key.parent >= 0 { children[Int(key.parent)].removeAll { $0 == block } }
        }
        keys[b] = nil
        // A block still in use only loses its cache entry; it returns to the free list when released.
        if evictable.removeValue(forKey: block) != nil { freeBlocks.append(block) }
    }
}
