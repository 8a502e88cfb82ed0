/// Cache of encoded pre-tokenizer pieces (raw UTF-8 bytes → token ids). Cleared wholesale when it grows too large.
struct PieceCache {
    static let maximumEntries = 65_536
    static let maximumPieceLength = 64
    var entries: [[UInt8]: [Int32]] = [:]
}

/// Scratch buffers for one `encode` call.
private struct EncodeWorkspace {
    var scalars: [UInt32] = []
    var classes: [UInt8] = []
    /// UTF-8 offset of each scalar, plus the total length at the end.
    var byteOffsets: [Int] = []
    var pieceEnds: [Int] = []
    var pieceScratch: [Int] = []
    var symbols: [Int32] = []
    var pairs: [UInt64] = []
    var previous: [Int32] = []
    var next: [Int32] = []
    var heap: [UInt64] = []
    var encodedPiece: [UInt8] = []
}

extension BPETokenizer {
    /// Encodes `text` to token ids.
    ///
    /// - Parameters:
    ///   - addSpecial: Add the BOS/EOS tokens the model asks for (``addBOS``/``addEOS``).
    ///   - parseSpecial: Recognize control tokens written in the text (e.g. `<|im_start|>`) as single tokens.
    ///     When false they are encoded as ordinary text. User-defined tokens are recognized either way.
    /// - Returns: Token ids, each in `0..<vocabularySize`. Never fails: any Unicode text is encodable (bytes whose
    ///   byte-level character is missing from the vocabulary are dropped, as llama.cpp does).
    public func encode(_ text: String, addSpecial: Bool = true, parseSpecial: Bool = true) -> [Int] {
        var output: [Int32] = []
        if addSpecial && addBOS, let bosTokenID { output.append(Int32(bosTokenID)) }
        var text = text
        text.withUTF8 { utf8 in
            output.reserveCapacity(output.count + utf8.count / 3 + 2)
            var workspace = EncodeWorkspace()
            for fragment in specialMatcher.fragments(of: utf8, parseSpecial: parseSpecial) {
                switch fragment {
                case .special(let id):
                    output.append(id)
                case .text(let range):
                    encodeRawText(UnsafeBufferPointer(rebasing: utf8[range]), into: &output, workspace: &workspace)
                }
            }
        }
        if addSpecial && addEOS, let eosTokenID { output.append(Int32(eosTokenID)) }
        return output.map(Int.init)
    }

    /// Pre-tokenizes and BPE-encodes text that contains no special tokens.
    private func encodeRawText(
        _ utf8: UnsafeBufferPointer<UInt8>, into output: inout [Int32], workspace: inout EncodeWorkspace
    ) {
        decodeScalars(utf8, into: &workspace)
        workspace.scalars.withUnsafeBufferPointer { scalars in
            workspace.classes.withUnsafeBufferPointer { classes in
                preTokenizer.pieceEnds(
                    scalars: scalars, classes: classes, into: &workspace.pieceEnds, scratch: &workspace.pieceScratch)
            }
        }
        var start = 0
        for end in workspace.pieceEnds {
            let bytes = workspace.byteOffsets[start]..<workspace.byteOffsets[end]
            encodePiece(UnsafeBufferPointer(rebasing: utf8[bytes]), into: &output, workspace: &workspace)
            start = end
        }
    }

    /// Fills the workspace's scalar, class and offset arrays from well-formed UTF-8 (as any `String` provides).
    /// Malformed input is still handled without trapping: each bad byte becomes U+FFFD.
    private func decodeScalars(_ utf8: UnsafeBufferPointer<UInt8>, into workspace: inout EncodeWorkspace) {
        workspace.scalars.removeAll(keepingCapacity: true)
        workspace.classes.removeAll(keepingCapacity: true)
        workspace.byteOffsets.removeAll(keepingCapacity: true)
        var i = 0
        let count = utf8.count
        while i < count {
            let lead = utf8[i]
            var value = UInt32(lead)
            var length = 1
            if lead >= 0xC0 {
                length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2
                if i + length > count {
                    length = 1
                    value = 0xFFFD
                } else {
                    value &= lead >= 0xF0 ? 0x07 : lead >= 0xE0 ? 0x0F : 0x1F
                    for k in 1..<length { value = value << 6 | UInt32(utf8[i + k] & 0x3F) }
                }
            } else if lead >= 0x80 {
                value = 0xFFFD
            }
            workspace.scalars.append(value)
            workspace.classes.append(PreTokenizerScalarClass.of(value))
            workspace.byteOffsets.append(i)
            i += length
        }
        workspace.byteOffsets.append(count)
    }

    /// BPE-encodes one piece (its raw UTF-8 bytes) and appends the token ids.
    private func encodePiece(
        _ piece: UnsafeBufferPointer<UInt8>, into output: inout [Int32], workspace: inout EncodeWorkspace
    ) {
        if piece.count == 1 {
            appendSymbol(byteSymbols[Int(piece[0])], to: &output)
            return
        }
        if preTokenizer.ignoresMerges {
            workspace.encodedPiece.removeAll(keepingCapacity: true)
            for byte in piece { workspace.encodedPiece.append(contentsOf: ByteLevel.byteToUTF8[Int(byte)]) }
            if let id = textIndex.id(for: workspace.encodedPiece) {
                output.append(id)
                return
            }
        }
        let cacheable = piece.count <= PieceCache.maximumPieceLength
        var key: [UInt8] = []
        if cacheable {
            key = Array(piece)
            if let cached = pieceCache.withLock({ $0.entries[key] }) {
                output.append(contentsOf: cached)
                return
            }
        }
        let firstOutput = output.count
        workspace.symbols.removeAll(keepingCapacity: true)
        for byte in piece { workspace.symbols.append(byteSymbols[Int(byte)]) }
        if workspace.symbols.count <= 48 {
            mergeByScanning(&workspace)
            for symbol in workspace.symbols { appendSymbol(symbol, to: &output) }
        } else {
            mergeWithHeap(&workspace)
            var position: Int32 = 0
            while position >= 0 {
                appendSymbol(workspace.symbols[Int(position)], to: &output)
                position = workspace.next[Int(position)]
            }
        }
        if cacheable {
            let ids = Array(output[firstOutput...])
            pieceCache.withLock { cache in
                if cache.entries.count >= PieceCache.maximumEntries { cache.entries.removeAll(keepingCapacity: true) }
                cache.entries[key] = ids
            }
        }
    }

    @inline(__always)
    private func appendSymbol(_ symbol: Int32, to output: inout [Int32]) {
        if Int(symbol) < vocabularySize {
            output.append(symbol)
        } else {
            output.append(contentsOf: virtualFallbacks[Int(symbol) - vocabularySize])
        }
    }

    /// Merges `workspace.symbols` in place, lowest rank first and leftmost first among equal ranks, by scanning the
    /// pair values each step. Quadratic, but fastest for the short pieces that make up almost all text.
    private func mergeByScanning(_ workspace: inout EncodeWorkspace) {
        let symbolCount = workspace.symbols.count
        guard symbolCount >= 2 else { return }
        workspace.pairs.removeAll(keepingCapacity: true)
        for i in 0..<(symbolCount - 1) {
            workspace.pairs.append(merges.value(for: PairTable.key(workspace.symbols[i], workspace.symbols[i + 1])))
        }
        while true {
            // Pair values are `rank << 32 | merged`: the smallest value is the lowest rank.
            var best = PairTable.absent
            var bestIndex = -1
            for (i, value) in workspace.pairs.enumerated() where value < best {
                best = value
                bestIndex = i
            }
            guard bestIndex >= 0 else { return }
            workspace.symbols[bestIndex] = Int32(truncatingIfNeeded: best & 0xFFFF_FFFF)
            workspace.symbols.remove(at: bestIndex + 1)
            workspace.pairs.remove(at: bestIndex)
            if bestIndex > 0 {
                workspace.pairs[bestIndex - 1] = merges.value(
                    for: PairTable.key(workspace.symbols[bestIndex - 1], workspace.symbols[bestIndex]))
            }
            if bestIndex < workspace.pairs.count {
                workspace.pairs[bestIndex] = merges.value(
                    for: PairTable.key(workspace.symbols[bestIndex], workspace.symbols[bestIndex + 1]))
            }
        }
    }

    /// Merges `workspace.symbols` using a linked list and a binary heap of `rank << 32 | position`, for long pieces.
    /// On return the surviving symbols are reachable from position 0 through `workspace.next` (-1 ends the list).
    private func mergeWithHeap(_ workspace: inout EncodeWorkspace) {
        let rankMask: UInt64 = 0xFFFF_FFFF_0000_0000
        let count = workspace.symbols.count
        workspace.previous.removeAll(keepingCapacity: true)
        workspace.next.removeAll(keepingCapacity: true)
        workspace.pairs.removeAll(keepingCapacity: true)
        workspace.heap.removeAll(keepingCapacity: true)
        for i in 0..<count {
            workspace.previous.append(Int32(i - 1))
            workspace.next.append(i + 1 < count ? Int32(i + 1) : -1)
            let value =
                i + 1 < count
                ? merges.value(for: PairTable.key(workspace.symbols[i], workspace.symbols[i + 1]))
                : PairTable.absent
            workspace.pairs.append(value)
            if value != PairTable.absent { heapPush(&workspace.heap, value & rankMask | UInt64(i)) }
        }
        while let entry = heapPop(&workspace.heap) {
            let position = Int(entry & 0xFFFF_FFFF)
            let value = workspace.pairs[position]
            // Stale entry: the pair at this position changed (or the position was merged away) since the push.
            guard value != PairTable.absent, value >> 32 == entry >> 32 else { continue }
            let right = Int(workspace.next[position])
            workspace.symbols[position] = Int32(truncatingIfNeeded: value & 0xFFFF_FFFF)
            let afterRight = workspace.next[right]
            workspace.next[position] = afterRight
            if afterRight >= 0 { workspace.previous[Int(afterRight)] = Int32(position) }
            workspace.pairs[right] = PairTable.absent
            let before = Int(workspace.previous[position])
            if before >= 0 {
                let pair = merges.value(for: PairTable.key(workspace.symbols[before], workspace.symbols[position]))
                workspace.pairs[before] = pair
                if pair != PairTable.absent { heapPush(&workspace.heap, pair & rankMask | UInt64(before)) }
            }
            if afterRight >= 0 {
                let pair = merges.value(
                    for: PairTable.key(workspace.symbols[position], workspace.symbols[Int(afterRight)]))
                workspace.pairs[position] = pair
                if pair != PairTable.absent { heapPush(&workspace.heap, pair & rankMask | UInt64(position)) }
            } else {
                workspace.pairs[position] = PairTable.absent
            }
        }
    }

    /// BPE-merges one already pre-tokenized piece (its raw UTF-8 bytes) and returns its ids, through the same
    /// path and piece cache as ``encode(_:addSpecial:parseSpecial:)``. Used by `tokenizer.json` byte-level BPE models.
    func encodePreTokenizedPiece(_ piece: [UInt8]) -> [Int] {
        guard !piece.isEmpty else { return [] }
        var workspace = EncodeWorkspace()
        var output: [Int32] = []
        piece.withUnsafeBufferPointer { encodePiece($0, into: &output, workspace: &workspace) }
        return output.map(Int.init)
    }

    /// Test hook: BPE-merges the bytes of `piece` with the requested strategy and returns the ids (no cache,
    /// no pre-tokenization, no `ignoresMerges` shortcut).
    func mergeForTesting(_ piece: [UInt8], useHeap: Bool) -> [Int] {
        var workspace = EncodeWorkspace()
        var output: [Int32] = []
        workspace.symbols = piece.map { byteSymbols[Int($0)] }
        if piece.isEmpty { return [] }
        if useHeap {
            mergeWithHeap(&workspace)
            var position: Int32 = 0
            while position >= 0 {
                appendSymbol(workspace.symbols[Int(position)], to: &output)
                position = workspace.next[Int(position)]
            }
        } else {
            mergeByScanning(&workspace)
            for symbol in workspace.symbols { appendSymbol(symbol, to: &output) }
        }
        return output.map(Int.init)
    }
}

// MARK: - Binary min-heap of UInt64

@inline(__always)
private func heapPush(_ heap: inout [UInt64], _ element: UInt64) {
    heap.append(element)
    var child = heap.count - 1
    while child > 0 {
        let parent = (child - 1) / 2
        if heap[parent] <= element { break }
        heap[child] = heap[parent]
        child = parent
    }
    heap[child] = element
}

@inline(__always)
private func heapPop(_ heap: inout [UInt64]) -> UInt64? {
    guard let last = heap.popLast() else { return nil }
    guard !heap.isEmpty else { return last }
    let top = heap[0]
    var parent = 0
    let count = heap.count
    while true {
        var child = 2 * parent + 1
        if child >= count { break }
        if child + 1 < count && heap[child + 1] < heap[child] { child += 1 }
        if heap[child] >= last { break }
        heap[parent] = heap[child]
        parent = child
    }
    heap[parent] = last
    return top
}
