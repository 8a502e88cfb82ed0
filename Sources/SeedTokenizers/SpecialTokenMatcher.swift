/// Finds special tokens (control, unknown and user-defined tokens) literally in raw UTF-8 text, the way llama.cpp's
/// `tokenizer_st_partition` does: tokens are taken longest first, and each token claims its occurrences left to
/// right in the text not yet claimed by a longer token. Control and unknown tokens are only matched when parsing
/// special tokens; user-defined tokens are always matched.
struct SpecialTokenMatcher: Sendable {
    /// A stretch of the input: either raw text to pre-tokenize or one special token.
    enum Fragment: Equatable {
        case text(Range<Int>)
        case special(Int32)
    }

    private struct Candidate: Sendable {
        let id: Int32
        let start: Int
        let length: Int
        let isAlwaysMatched: Bool
    }

    /// Candidates by first byte, each bucket longest first (then lowest id).
    private let buckets: [[Candidate]]
    private let storage: [UInt8]
    let isEmpty: Bool

    init(types: [BPETokenizer.TokenType], textIndex: TokenTextIndex) {
        var buckets = [[Candidate]](repeating: [], count: 256)
        var any = false
        for (index, type) in types.enumerated() {
            let alwaysMatched: Bool
            switch type {
            case .control, .unknown: alwaysMatched = false
            case .userDefined: alwaysMatched = true
            default: continue
            }
            let start = Int(textIndex.offsets[index])
            let length = textIndex.length(of: index)
            guard length > 0 else { continue }  // an empty text would match everywhere
            buckets[Int(textIndex.storage[start])].append(
                Candidate(id: Int32(index), start: start, length: length, isAlwaysMatched: alwaysMatched))
            any = true
        }
        for i in buckets.indices {
            buckets[i].sort { $0.length != $1.length ? $0.length > $1.length : $0.id < $1.id }
        }
        self.buckets = buckets
        self.storage = textIndex.storage
        self.isEmpty = !any
    }

    /// Splits `text` into raw-text and special-token fragments, in order.
    func fragments(of text: UnsafeBufferPointer<UInt8>, parseSpecial: Bool) -> [Fragment] {
        guard !text.isEmpty else { return [] }
        guard !isEmpty else { return [.text(0..<text.count)] }
        // (length, id, start) of every occurrence of every candidate.
        var occurrences: [(length: Int, id: Int32, start: Int)] = []
        storage.withUnsafeBytes { stored in
            let base = UnsafeRawPointer(text.baseAddress!)
            for position in 0..<text.count {
                for candidate in buckets[Int(text[position])] {
                    guard parseSpecial || candidate.isAlwaysMatched, candidate.length <= text.count - position else {
                        continue
                    }
                    if bytesEqual(stored.baseAddress! + candidate.start, base + position, candidate.length) {
                        occurrences.append((candidate.length, candidate.id, position))
                    }
                }
            }
        }
        guard !occurrences.isEmpty else { return [.text(0..<text.count)] }
        occurrences.sort { a, b in
            if a.length != b.length { return a.length > b.length }
            if a.id != b.id { return a.id < b.id }
            return a.start < b.start
        }
        var claimed = [Bool](repeating: false, count: text.count)
        var accepted: [(start: Int, length: Int, id: Int32)] = []
        for occurrence in occurrences {
            let range = occurrence.start..<(occurrence.start + occurrence.length)
            if range.contains(where: { claimed[$0] }) { continue }
            for i in range { claimed[i] = true }
            accepted.append((occurrence.start, occurrence.length, occurrence.id))
        }
        accepted.sort { $0.start < $1.start }
        var fragments: [Fragment] = []
        var position = 0
        for match in accepted {
            if match.start > position { fragments.append(.text(position..<match.start)) }
            fragments.append(.special(match.id))
            position = match.start + match.length
        }
        if position < text.count { fragments.append(.text(position..<text.count)) }
        return fragments
    }
}
