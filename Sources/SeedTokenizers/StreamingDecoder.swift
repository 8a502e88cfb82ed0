/// Turns a stream of token ids into text incrementally, never emitting a partial UTF-8 character.
///
/// A byte-level token can end in the middle of a multi-byte character (an emoji is often split over two or more
/// tokens). The decoder holds back such an incomplete tail until the tokens that complete it arrive, so every string
/// it returns is exactly the text of the bytes so far. Bytes that can never become valid UTF-8 are emitted at once
/// as U+FFFD; ``flush()`` emits whatever is still held back (as U+FFFD) at the end of the stream.
///
/// ```swift
/// var decoder = StreamingDecoder(tokenizer: tokenizer)
/// for id in generated { print(try decoder.append(id), terminator: "") }
/// print(decoder.flush())
/// ```
public struct StreamingDecoder: Sendable {
    /// The tokenizer whose vocabulary the ids refer to.
    public let tokenizer: BPETokenizer
    /// Whether control, unknown and unused tokens are omitted from the text.
    public let skipSpecial: Bool
    private var pending: [UInt8] = []

    /// Creates a decoder for ids of `tokenizer`.
    public init(tokenizer: BPETokenizer, skipSpecial: Bool = false) {
        self.tokenizer = tokenizer
        self.skipSpecial = skipSpecial
    }

    /// Whether bytes of an incomplete character are being held back.
    public var hasPendingBytes: Bool { !pending.isEmpty }

    /// Adds one token and returns the text that became complete (possibly empty).
    /// - Throws: ``TokenizerError/invalidTokenID(_:vocabularySize:)`` for an id outside the vocabulary; the decoder
    ///   state is unchanged in that case.
    public mutating func append(_ id: Int) throws(TokenizerError) -> String {
        try tokenizer.appendBytes(of: id, skipSpecial: skipSpecial, to: &pending)
        let keep = Self.incompleteSuffixLength(pending)
        guard keep < pending.count else { return "" }
        let text = String(decoding: pending[..<(pending.count - keep)], as: UTF8.self)
        pending.removeFirst(pending.count - keep)
        return text
    }

    /// Adds several tokens and returns the text that became complete.
    public mutating func append(contentsOf ids: some Sequence<Int>) throws(TokenizerError) -> String {
        var text = ""
        for id in ids { text += try append(id) }
        return text
    }

    /// Ends the stream: returns the held-back bytes (as U+FFFD replacement characters) and resets the decoder.
    public mutating func flush() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// Length of the trailing bytes that form a proper prefix of a valid UTF-8 sequence (0 to 3), i.e. the bytes
    /// that more input could still complete.
    static func incompleteSuffixLength(_ bytes: [UInt8]) -> Int {
        // Find the last lead byte within the final 3 bytes.
        let count = bytes.count
        var start = count - 1
        while start >= 0 && start >= count - 3 && bytes[start] & 0xC0 == 0x80 { start -= 1 }
        guard start >= 0, start >= count - 3 else { return 0 }
        let lead = bytes[start]
        let needed: Int
        var secondRange: ClosedRange<UInt8> = 0x80...0xBF
        switch lead {
        case 0xC2...0xDF: needed = 2
        case 0xE0:
            needed = 3
            secondRange = 0xA0...0xBF
        case 0xE1...0xEC, 0xEE, 0xEF: needed = 3
        case 0xED:
            needed = 3
            secondRange = 0x80...0x9F
        case 0xF0:
            needed = 4
            secondRange = 0x90...0xBF
        case 0xF1...0xF3: needed = 4
        case 0xF4:
            needed = 4
            secondRange = 0x80...0x8F
        default: return 0  // ASCII or a byte that never starts a sequence
        }
        let have = count - start
        guard have < needed else { return 0 }  // complete (or overlong garbage): emit now
        if have >= 2 && !secondRange.contains(bytes[start + 1]) { return 0 }  // can never become valid
        return have
    }
}
