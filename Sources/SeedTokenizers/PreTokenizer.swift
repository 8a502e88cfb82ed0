/// Splits raw text into the pieces that byte-level BPE then encodes independently, the way llama.cpp does for each
/// `tokenizer.ggml.pre` value.
///
/// The splitting rules are the regular expressions llama.cpp (and Hugging Face `tokenizers`) use, implemented as
/// hand-written scanners over Unicode scalars: `\p{L}` is general category L*, `\p{N}` is N* (Nd, Nl, No) and `\s`
/// is the Unicode `White_Space` property. A pre-tokenizer is a sequence of stages; each stage splits every piece the
/// previous stage produced, so lookaheads such as `(?!\S)` see the end of the current piece as the end of text.
///
/// Supported names (aliases share the rules of the first name in their group):
/// - `smollm` (also `starcoder`, `refact`, `command-r`, `codeshell`, `exaone`, `minerva-7b`): every `\p{N}`
///   scalar is split off on its own, then the GPT-2 expression is applied to the rest.
/// - `gpt2` (also `gpt-2`, `phi-2`, `mpt`, `olmo`):
///   `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
/// - `llama3` (also `llama-bpe`, `llama-v3`): `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|`
///   ` ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`, and a
///   piece that is already a whole vocabulary token is not merged further (llama.cpp's `ignore_merges`).
/// - `qwen2` (also `deepseek-r1-qwen`, `stablelm2`): the Llama-3 expression with `\p{N}` instead of `\p{N}{1,3}`.
/// - `default`: llama.cpp's fallback: `[\p{P}\$\+<=>\^~\|]+`, then GPT-2, then `\p{N}+`, then `[0-9][0-9][0-9]`.
public struct PreTokenizer: Sendable, Equatable {
    /// The canonical name of the rule set (for an alias, the name of its group, e.g. `"llama3"` for `"llama-bpe"`).
    public let name: String
    /// Whether a piece that is itself a vocabulary token is emitted as that token without running BPE merges.
    public let ignoresMerges: Bool
    let stages: [Stage]

    /// Every accepted name, canonical names first.
    public static let supportedNames: [String] = [
        "smollm", "gpt2", "llama3", "qwen2", "default",
        "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b",
        "gpt-2", "phi-2", "mpt", "olmo",
        "llama-bpe", "llama-v3",
        "deepseek-r1-qwen", "stablelm2",
    ]

    enum Stage: Sendable, Equatable {
        /// `\p{N}`: each number scalar on its own; the text between matches is kept as pieces.
        case eachNumber
        /// `\p{N}+`.
        case numberRuns
        /// `[\p{P}\$\+<=>\^~\|]+`.
        case punctuationRuns
        /// `[0-9][0-9][0-9]`.
        case asciiDigitTriples
        /// The GPT-2 expression (covers all text).
        case gpt2
        /// The Llama-3 expression with `\p{N}{1,maxDigits}` (covers all text).
        case llama3(maxDigits: Int)
    }

    /// Creates the pre-tokenizer for a `tokenizer.ggml.pre` name.
    /// - Throws: `TokenizerError.unknownPreTokenizer` naming the value and listing the supported names.
    public init(name: String) throws(TokenizerError) {
        switch name {
        case "smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b":
            self.init(canonical: "smollm", stages: [.eachNumber, .gpt2])
        case "gpt2", "gpt-2", "phi-2", "mpt", "olmo":
            self.init(canonical: "gpt2", stages: [.gpt2])
        case "llama3", "llama-bpe", "llama-v3":
            self.init(canonical: "llama3", stages: [.llama3(maxDigits: 3)], ignoresMerges: true)
        case "qwen2", "deepseek-r1-qwen", "stablelm2":
            self.init(canonical: "qwen2", stages: [.llama3(maxDigits: 1)])
        case "default":
            self.init(canonical: "default", stages: [.punctuationRuns, .gpt2, .numberRuns, .asciiDigitTriples])
        default:
            throw .unknownPreTokenizer(name: name, supported: Self.supportedNames)
        }
    }

    /// The regular expressions `tokenizer.json` files spell out in `Split` pre-tokenizers that this type implements,
    /// with the rule set that implements each: GPT-2's, Llama 3's and Qwen 2's (Llama 3's with single digits).
    public static let knownExpressions: [(pattern: String, name: String)] = [
        (#"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#, "gpt2"),
        (
            #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
            "llama3"
        ),
        (
            #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
            "qwen2"
        ),
    ]

    /// The pre-tokenizer whose matches are those of the regular expression `pattern` (one of ``knownExpressions``,
    /// character for character), or `nil`. Its pieces tile the text: every scalar belongs to exactly one match.
    /// Merge shortcuts are off (`tokenizer.json` says `ignore_merges` on the model, not here).
    public init?(expression pattern: String) {
        guard let known = Self.knownExpressions.first(where: { $0.pattern == pattern }) else { return nil }
        switch known.name {
        case "gpt2": self.init(canonical: "gpt2", stages: [.gpt2])
        case "llama3": self.init(canonical: "llama3", stages: [.llama3(maxDigits: 3)])
        default: self.init(canonical: "qwen2", stages: [.llama3(maxDigits: 1)])
        }
    }

    /// The scalar ranges of the pieces of `scalars` (in order, tiling `0..<scalars.count`).
    func pieceRanges(_ scalars: [Unicode.Scalar]) -> [Range<Int>] {
        let values = scalars.map(\.value)
        let classes = values.map(PreTokenizerScalarClass.of)
        var ends: [Int] = []
        var scratch: [Int] = []
        values.withUnsafeBufferPointer { scalarBuffer in
            classes.withUnsafeBufferPointer { classBuffer in
                pieceEnds(scalars: scalarBuffer, classes: classBuffer, into: &ends, scratch: &scratch)
            }
        }
        var ranges: [Range<Int>] = []
        ranges.reserveCapacity(ends.count)
        var start = 0
        for end in ends {
            ranges.append(start..<end)
            start = end
        }
        return ranges
    }

    private init(canonical: String, stages: [Stage], ignoresMerges: Bool = false) {
        self.name = canonical
        self.stages = stages
        self.ignoresMerges = ignoresMerges
    }

    /// Splits `text` into pieces (their concatenation is `text`). Useful for inspection and tests; the tokenizer
    /// itself works on scalar buffers without building strings.
    public func split(_ text: String) -> [String] {
        let scalars = text.unicodeScalars.map(\.value)
        let classes = scalars.map(PreTokenizerScalarClass.of)
        var ends: [Int] = []
        var scratch: [Int] = []
        scalars.withUnsafeBufferPointer { scalarBuffer in
            classes.withUnsafeBufferPointer { classBuffer in
                pieceEnds(scalars: scalarBuffer, classes: classBuffer, into: &ends, scratch: &scratch)
            }
        }
        var pieces: [String] = []
        pieces.reserveCapacity(ends.count)
        var start = 0
        for end in ends {
            var view = String.UnicodeScalarView()
            for value in scalars[start..<end] {
                view.append(Unicode.Scalar(value) ?? "\u{FFFD}")
            }
            pieces.append(String(view))
            start = end
        }
        return pieces
    }

    /// Computes the exclusive end index of every piece of `scalars` (in order; the first piece starts at 0).
    /// `classes[i]` must be `PreTokenizerScalarClass.of(scalars[i])`. `scratch` is working storage that callers may
    /// reuse.
    func pieceEnds(
        scalars: UnsafeBufferPointer<UInt32>, classes: UnsafeBufferPointer<UInt8>,
        into ends: inout [Int], scratch: inout [Int]
    ) {
        ends.removeAll(keepingCapacity: true)
        guard !scalars.isEmpty else { return }
        ends.append(scalars.count)
        for stage in stages {
            swap(&ends, &scratch)
            ends.removeAll(keepingCapacity: true)
            var start = 0
            for end in scratch {
                let scanner = PreTokenizerScanner(scalars: scalars, classes: classes, end: end)
                switch stage {
                case .eachNumber, .numberRuns, .punctuationRuns, .asciiDigitTriples:
                    scanner.splitMatches(stage, from: start, into: &ends)
                case .gpt2:
                    scanner.splitGPT2(from: start, into: &ends)
                case .llama3(let maxDigits):
                    scanner.splitLlama3(from: start, maxDigits: maxDigits, into: &ends)
                }
                start = end
            }
        }
    }
}

/// Character classes used by the pre-tokenizer expressions, as bit flags.
enum PreTokenizerScalarClass {
    static let letter: UInt8 = 1
    static let number: UInt8 = 2
    static let whitespace: UInt8 = 4
    static let punctuation: UInt8 = 8

    /// The class flags of one scalar value.
    @inline(__always)
    static func of(_ value: UInt32) -> UInt8 {
        if value < 0x80 {
            switch value {
            case 0x41...0x5A, 0x61...0x7A: return letter
            case 0x30...0x39: return number
            case 0x09...0x0D, 0x20: return whitespace
            // ASCII characters in general category P*: ! " # % & ' ( ) * , - . / : ; ? @ [ \ ] _ { }
            case 0x21...0x23, 0x25...0x2A, 0x2C...0x2F, 0x3A, 0x3B, 0x3F, 0x40, 0x5B...0x5D, 0x5F, 0x7B, 0x7D:
                return punctuation
            default: return 0
            }
        }
        return ofNonASCII(value)
    }

    private static func ofNonASCII(_ value: UInt32) -> UInt8 {
        guard let scalar = Unicode.Scalar(value) else { return 0 }
        let properties = scalar.properties
        if properties.isWhitespace { return whitespace }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return number
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
            .finalPunctuation, .otherPunctuation:
            return punctuation
        default:
            return 0
        }
    }
}

/// Scans one piece `[start, end)` of a scalar buffer and appends the end index of each sub-piece.
private struct PreTokenizerScanner {
    let scalars: UnsafeBufferPointer<UInt32>
    let classes: UnsafeBufferPointer<UInt8>
    let end: Int

    private static let apostrophe: UInt32 = 0x27
    private static let space: UInt32 = 0x20

    @inline(__always) private func isLetter(_ i: Int) -> Bool { classes[i] & PreTokenizerScalarClass.letter != 0 }
    @inline(__always) private func isNumber(_ i: Int) -> Bool { classes[i] & PreTokenizerScalarClass.number != 0 }
    @inline(__always) private func isSpace(_ i: Int) -> Bool { classes[i] & PreTokenizerScalarClass.whitespace != 0 }
    /// `[^\s\p{L}\p{N}]`.
    @inline(__always) private func isOther(_ i: Int) -> Bool {
        classes[i]
            & (PreTokenizerScalarClass.letter | PreTokenizerScalarClass.number
                | PreTokenizerScalarClass.whitespace) == 0
    }
    @inline(__always) private func isNewline(_ i: Int) -> Bool { scalars[i] == 0x0A || scalars[i] == 0x0D }

    /// Index just past the run of scalars from `i` satisfying `predicate`.
    @inline(__always) private func run(from i: Int, _ predicate: (Int) -> Bool) -> Int {
        var j = i
        while j < end && predicate(j) { j += 1 }
        return j
    }

    /// Length (2 or 3) of an English contraction (`'s 't 're 've 'm 'll 'd`) at `i`, or 0.
    @inline(__always) private func contractionLength(at i: Int, caseInsensitive: Bool) -> Int {
        guard scalars[i] == Self.apostrophe, i + 1 < end else { return 0 }
        func lower(_ value: UInt32) -> UInt32 {
            caseInsensitive && (0x41...0x5A).contains(value) ? value + 0x20 : value
        }
        switch lower(scalars[i + 1]) {
        case 0x73, 0x74, 0x6D, 0x64:  // s t m d
            return 2
        case let first where i + 2 < end:
            let second = lower(scalars[i + 2])
            // re ve ll
            if (first == 0x72 && second == 0x65) || (first == 0x76 && second == 0x65)
                || (first == 0x6C && second == 0x6C)
            {
                return 3
            }
            return 0
        default:
            return 0
        }
    }

    /// Whitespace rules shared by both expressions: `\s+(?!\S)|\s+` for a run starting at `i`.
    @inline(__always) private func whitespaceEnd(from i: Int) -> Int {
        let runEnd = run(from: i, isSpace)
        // A run followed by a non-space scalar gives its last scalar to the next piece, unless it is that scalar.
        if runEnd < end && runEnd - i > 1 { return runEnd - 1 }
        return max(runEnd, i + 1)
    }

    /// Pieces from an expression that does not cover all text: matches and the gaps between them are pieces.
    func splitMatches(_ stage: PreTokenizer.Stage, from start: Int, into ends: inout [Int]) {
        var pos = start
        var gapStart = start
        while pos < end {
            let matchEnd: Int
            switch stage {
            case .eachNumber:
                matchEnd = isNumber(pos) ? pos + 1 : pos
            case .numberRuns:
                matchEnd = run(from: pos, isNumber)
            case .punctuationRuns:
                matchEnd = run(from: pos) { i in
                    if classes[i] & PreTokenizerScalarClass.punctuation != 0 { return true }
                    switch scalars[i] {
                    case 0x24, 0x2B, 0x3C, 0x3D, 0x3E, 0x5E, 0x7E, 0x7C: return true  // $ + < = > ^ ~ |
                    default: return false
                    }
                }
            case .asciiDigitTriples:
                var isTriple = pos + 3 <= end
                if isTriple {
                    for i in pos..<(pos + 3) where !(0x30...0x39).contains(scalars[i]) { isTriple = false }
                }
                matchEnd = isTriple ? pos + 3 : pos
            case .gpt2, .llama3:
                matchEnd = pos
            }
            if matchEnd > pos {
                if gapStart < pos { ends.append(pos) }
                ends.append(matchEnd)
                pos = matchEnd
                gapStart = pos
            } else {
                pos += 1
            }
        }
        if gapStart < end { ends.append(end) }
    }

    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    func splitGPT2(from start: Int, into ends: inout [Int]) {
        var pos = start
        while pos < end {
            let contraction = contractionLength(at: pos, caseInsensitive: false)
            if contraction > 0 {
                pos += contraction
                ends.append(pos)
                continue
            }
            // The optional leading space of the three class rules.
            let body = scalars[pos] == Self.space && pos + 1 < end ? pos + 1 : pos
            let pieceEnd: Int
            if isLetter(body) {
                pieceEnd = run(from: body, isLetter)
            } else if isNumber(body) {
                pieceEnd = run(from: body, isNumber)
            } else if isOther(body) {
                pieceEnd = run(from: body, isOther)
            } else {
                pieceEnd = whitespaceEnd(from: pos)
            }
            pos = pieceEnd
            ends.append(pos)
        }
    }

    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|`
    /// `\s+(?!\S)|\s+`
    func splitLlama3(from start: Int, maxDigits: Int, into ends: inout [Int]) {
        var pos = start
        while pos < end {
            let contraction = contractionLength(at: pos, caseInsensitive: true)
            if contraction > 0 {
                pos += contraction
                ends.append(pos)
                continue
            }
            // [^\r\n\p{L}\p{N}]?\p{L}+
            if isLetter(pos) {
                pos = run(from: pos, isLetter)
                ends.append(pos)
                continue
            }
            if !isNumber(pos) && !isNewline(pos) && pos + 1 < end && isLetter(pos + 1) {
                pos = run(from: pos + 1, isLetter)
                ends.append(pos)
                continue
            }
            // \p{N}{1,max}
            if isNumber(pos) {
                var j = pos + 1
                while j < end && j - pos < maxDigits && isNumber(j) { j += 1 }
                pos = j
                ends.append(pos)
                continue
            }
            // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
            let body = scalars[pos] == Self.space && pos + 1 < end ? pos + 1 : pos
            if isOther(body) {
                pos = run(from: run(from: body, isOther), isNewline)
                ends.append(pos)
                continue
            }
            // \s*[\r\n]+ : the match ends just after the last newline of the whitespace run.
            let runEnd = run(from: pos, isSpace)
            var lastNewlineEnd = -1
            for i in pos..<runEnd where isNewline(i) { lastNewlineEnd = i + 1 }
            if lastNewlineEnd > 0 {
                pos = lastNewlineEnd
            } else {
                pos = whitespaceEnd(from: pos)
            }
            ends.append(pos)
        }
    }
}
