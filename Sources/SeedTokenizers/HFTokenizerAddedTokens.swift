/// One entry of `added_tokens`.
struct HFAddedToken: Sendable, Equatable {
    let id: Int
    let content: String
    let special: Bool
    let normalized: Bool
    let singleWord: Bool
    let lstrip: Bool
    let rstrip: Bool

    init(json: HFJSONObject) throws(TokenizerError) {
        id = try json.int("id")
        guard id >= 0, id < BPETokenizer.maximumVocabularySize else {
            throw .invalidTokenizerJSON("\(json.path).id \(id) is out of range")
        }
        content = try json.string("content")
        special = try json.bool("special", default: false)
        // `tokenizers` defaults `normalized` to true for non-special tokens.
        normalized = try json.bool("normalized", default: !special)
        singleWord = try json.bool("single_word", default: false)
        lstrip = try json.bool("lstrip", default: false)
        rstrip = try json.bool("rstrip", default: false)
    }
}

/// Finds added tokens in text, leftmost first and longest first at a position (as `tokenizers` does with its
/// leftmost-longest automaton). `lstrip`/`rstrip` tokens swallow the whitespace beside them; `single_word` tokens
/// only match when not adjacent to word characters.
struct HFAddedTokenMatcher: Sendable {
    enum Segment: Equatable {
        case text(Range<Int>)
        case token(Int)
    }

    private struct Candidate: Sendable {
        let scalars: [Unicode.Scalar]
        let token: HFAddedToken
    }

    /// Candidates by first scalar, longest first.
    private let candidates: [Unicode.Scalar: [Candidate]]

    var isEmpty: Bool { candidates.isEmpty }

    /// - Parameter contentTransform: applied to each token's content before matching (the normalizer, for
    ///   `normalized` tokens).
    init(tokens: [HFAddedToken], contentTransform: (String) -> String = { $0 }) {
        var candidates: [Unicode.Scalar: [Candidate]] = [:]
        for token in tokens {
            let scalars = Array(contentTransform(token.content).unicodeScalars)
            guard let first = scalars.first else { continue }
            candidates[first, default: []].append(Candidate(scalars: scalars, token: token))
        }
        for key in candidates.keys {
            candidates[key]?.sort { $0.scalars.count > $1.scalars.count }
        }
        self.candidates = candidates
    }

    /// Splits `scalars` into text ranges and matched tokens, in order. Empty text ranges are omitted.
    func segments(of scalars: [Unicode.Scalar]) -> [Segment] {
        guard !candidates.isEmpty else { return scalars.isEmpty ? [] : [.text(0..<scalars.count)] }
        var result: [Segment] = []
        var textStart = 0
        var i = 0
        while i < scalars.count {
            guard let bucket = candidates[scalars[i]],
                let match = bucket.first(where: { matches($0, in: scalars, at: i) })
            else {
                i += 1
                continue
            }
            var start = i
            var end = i + match.scalars.count
            if match.token.lstrip {
                while start > textStart && HFUnicode.isWhitespace(scalars[start - 1]) { start -= 1 }
            }
            if match.token.rstrip {
                while end < scalars.count && HFUnicode.isWhitespace(scalars[end]) { end += 1 }
            }
            if start > textStart { result.append(.text(textStart..<start)) }
            result.append(.token(match.token.id))
            textStart = end
            i = end
        }
        if textStart < scalars.count { result.append(.text(textStart..<scalars.count)) }
        return result
    }

    private func matches(_ candidate: Candidate, in scalars: [Unicode.Scalar], at position: Int) -> Bool {
        let length = candidate.scalars.count
        guard position + length <= scalars.count,
            scalars[position..<(position + length)].elementsEqual(candidate.scalars)
        else { return false }
        if candidate.token.singleWord {
            if position > 0 && HFUnicode.isWordCharacter(scalars[position - 1]) { return false }
            if position + length < scalars.count && HFUnicode.isWordCharacter(scalars[position + length]) {
                return false
            }
        }
        return true
    }
}
