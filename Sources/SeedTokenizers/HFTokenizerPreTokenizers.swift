/// What a splitting pre-tokenizer does with the delimiters it finds (`tokenizers`' `SplitDelimiterBehavior`).
enum HFSplitBehavior: String, Sendable, Equatable {
    case removed = "Removed"
    case isolated = "Isolated"
    case mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext"
    case contiguous = "Contiguous"

    init(json: HFJSONObject, default fallback: HFSplitBehavior) throws(TokenizerError) {
        guard let name = try json.optionalString("behavior") else {
            self = fallback
            return
        }
        guard let behavior = HFSplitBehavior(rawValue: name) else {
            throw .invalidTokenizerJSON("\(json.path).behavior has unknown value \(String(reflecting: name))")
        }
        self = behavior
    }
}

/// A `tokenizer.json` pre-tokenizer: splits normalized text into the words the model encodes independently.
enum HFPreTokenizer: Sendable, Equatable {
    /// Split on whitespace (dropped) and on every punctuation character (kept as its own word).
    case bert
    /// `\w+|[^\w\s]+`.
    case whitespace
    /// Split on whitespace, dropping it.
    case whitespaceSplit
    case punctuation(HFSplitBehavior)
    case digits(individual: Bool)
    /// GPT-2 byte-level splitting (`addPrefixSpace` prepends a space to text that does not start with one).
    /// The pieces stay raw text; the byte-level mapping is done by the model.
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool, splitter: PreTokenizer)
    /// SentencePiece-style: spaces become `replacement`, which is prepended per `prependScheme`; optionally split
    /// before each `replacement`.
    case metaspace(replacement: Unicode.Scalar, prependScheme: PrependScheme, split: Bool)
    /// Split on a literal string.
    case split(pattern: String, behavior: HFSplitBehavior, invert: Bool)
    /// Split on the matches of a regular expression that ``PreTokenizer/init(expression:)`` implements.
    case regexSplit(expression: PreTokenizer, behavior: HFSplitBehavior, invert: Bool)
    case sequence([HFPreTokenizer])

    enum PrependScheme: String, Sendable, Equatable {
        case always, first, never
    }

    init(json: HFJSONObject) throws(TokenizerError) {
        let type = try json.type()
        switch type {
        case "BertPreTokenizer": self = .bert
        case "Whitespace": self = .whitespace
        case "WhitespaceSplit": self = .whitespaceSplit
        case "Punctuation": self = .punctuation(try HFSplitBehavior(json: json, default: .isolated))
        case "Digits": self = .digits(individual: try json.bool("individual_digits", default: false))
        case "ByteLevel":
            self = .byteLevel(
                addPrefixSpace: try json.bool("add_prefix_space", default: true),
                useRegex: try json.bool("use_regex", default: true),
                splitter: try PreTokenizer(name: "gpt2"))
        case "Metaspace":
            let replacement = try json.optionalString("replacement") ?? "\u{2581}"
            guard replacement.unicodeScalars.count == 1, let scalar = replacement.unicodeScalars.first else {
                throw .invalidTokenizerJSON("\(json.path).replacement must be one character")
            }
            var scheme: PrependScheme
            if let name = try json.optionalString("prepend_scheme") {
                guard let parsed = PrependScheme(rawValue: name) else {
                    throw .invalidTokenizerJSON("\(json.path).prepend_scheme has unknown value \(name)")
                }
                scheme = parsed
            } else {
                scheme = try json.bool("add_prefix_space", default: true) ? .always : .never
            }
            self = .metaspace(replacement: scalar, prependScheme: scheme, split: try json.bool("split", default: true))
        case "Split":
            let pattern = try json.object("pattern")
            guard let literal = try pattern.optionalString("String") else {
                guard let expression = try pattern.optionalString("Regex") else {
                    throw .invalidTokenizerJSON("\(json.path).pattern has neither \"String\" nor \"Regex\"")
                }
                guard let splitter = PreTokenizer(expression: expression) else {
                    throw .unsupportedComponent(
                        kind: "pre-tokenizer",
                        type: "Split with regex \(String(reflecting: expression)) (supported: the GPT-2, Llama 3 and "
                            + "Qwen 2 expressions)")
                }
                self = .regexSplit(
                    expression: splitter, behavior: try HFSplitBehavior(json: json, default: .removed),
                    invert: try json.bool("invert", default: false))
                return
            }
            guard !literal.isEmpty else { throw .invalidTokenizerJSON("\(json.path).pattern.String is empty") }
            self = .split(
                pattern: literal, behavior: try HFSplitBehavior(json: json, default: .removed),
                invert: try json.bool("invert", default: false))
        case "Sequence":
            var steps: [HFPreTokenizer] = []
            for element in try json.objects("pretokenizers") { steps.append(try HFPreTokenizer(json: element)) }
            self = .sequence(steps)
        default:
            throw .unsupportedComponent(kind: "pre-tokenizer", type: type)
        }
    }

    /// Whether this pre-tokenizer (or a step of a sequence) is byte-level.
    var isByteLevel: Bool {
        switch self {
        case .byteLevel: return true
        case .sequence(let steps): return steps.contains { $0.isByteLevel }
        default: return false
        }
    }

    /// Splits `text` into words. `isFirstSegment` is false for text that follows an added token (it matters for
    /// Metaspace's `first` prepend scheme).
    func split(_ text: String, isFirstSegment: Bool) -> [String] {
        split([text], isFirstSegment: isFirstSegment)
    }

    func split(_ pieces: [String], isFirstSegment: Bool) -> [String] {
        if case .sequence(let steps) = self {
            return steps.reduce(pieces) { $1.split($0, isFirstSegment: isFirstSegment) }
        }
        var result: [String] = []
        for (index, piece) in pieces.enumerated() {
            splitPiece(piece, isFirst: isFirstSegment && index == 0, into: &result)
        }
        return result
    }

    private func splitPiece(_ piece: String, isFirst: Bool, into result: inout [String]) {
        let scalars = Array(piece.unicodeScalars)
        switch self {
        case .bert:
            var words: [String] = []
            Self.splitByPredicate(scalars, behavior: .removed, into: &words) { HFUnicode.isWhitespace($0) }
            for word in words {
                Self.splitByPredicate(Array(word.unicodeScalars), behavior: .isolated, into: &result) {
                    HFUnicode.isBertPunctuation($0)
                }
            }
        case .whitespace:
            // Runs of word characters and runs of other non-space characters; whitespace is dropped.
            var start = 0
            while start < scalars.count {
                if HFUnicode.isWhitespace(scalars[start]) {
                    start += 1
                    continue
                }
                let word = HFUnicode.isWordCharacter(scalars[start])
                var end = start + 1
                while end < scalars.count, !HFUnicode.isWhitespace(scalars[end]),
                    HFUnicode.isWordCharacter(scalars[end]) == word
                {
                    end += 1
                }
                result.append(Self.string(scalars[start..<end]))
                start = end
            }
        case .whitespaceSplit:
            Self.splitByPredicate(scalars, behavior: .removed, into: &result) { HFUnicode.isWhitespace($0) }
        case .punctuation(let behavior):
            Self.splitByPredicate(scalars, behavior: behavior, into: &result) { HFUnicode.isBertPunctuation($0) }
        case .digits(let individual):
            Self.splitByPredicate(scalars, behavior: individual ? .isolated : .contiguous, into: &result) {
                HFUnicode.isNumeric($0)
            }
        case .byteLevel(let addPrefixSpace, let useRegex, let splitter):
            var text = piece
            if addPrefixSpace && !text.hasPrefix(" ") { text = " " + text }
            if useRegex {
                result.append(contentsOf: splitter.split(text).filter { !$0.isEmpty })
            } else if !text.isEmpty {
                result.append(text)
            }
        case .metaspace(let replacement, let prependScheme, let split):
            var replaced = scalars.map { $0 == " " ? replacement : $0 }
            let prepend = prependScheme == .always || (prependScheme == .first && isFirst)
            if prepend, replaced.first != replacement { replaced.insert(replacement, at: 0) }
            if split {
                Self.splitByPredicate(replaced, behavior: .mergedWithNext, into: &result) { $0 == replacement }
            } else if !replaced.isEmpty {
                result.append(Self.string(replaced[...]))
            }
        case .split(let pattern, let behavior, let invert):
            let needle = Array(pattern.unicodeScalars)
            var matches: [Range<Int>] = []
            var i = 0
            while i + needle.count <= scalars.count {
                if scalars[i..<(i + needle.count)].elementsEqual(needle) {
                    matches.append(i..<(i + needle.count))
                    i += needle.count
                } else {
                    i += 1
                }
            }
            Self.splitByMatches(scalars, matches: matches, behavior: behavior, invert: invert, into: &result)
        case .regexSplit(let expression, let behavior, let invert):
            Self.splitByMatches(
                scalars, matches: expression.pieceRanges(scalars), behavior: behavior, invert: invert, into: &result)
        case .sequence:
            result.append(contentsOf: split([piece], isFirstSegment: isFirst))
        }
    }

    static func string(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }

    /// Splits where single scalars satisfy `isDelimiter` (each delimiter scalar is one match; `contiguous` joins
    /// adjacent ones).
    static func splitByPredicate(
        _ scalars: [Unicode.Scalar], behavior: HFSplitBehavior, into result: inout [String],
        _ isDelimiter: (Unicode.Scalar) -> Bool
    ) {
        var matches: [Range<Int>] = []
        for (index, scalar) in scalars.enumerated() where isDelimiter(scalar) {
            if behavior == .contiguous, let last = matches.last, last.upperBound == index {
                matches[matches.count - 1] = last.lowerBound..<(index + 1)
            } else {
                matches.append(index..<(index + 1))
            }
        }
        splitByMatches(scalars, matches: matches, behavior: behavior, into: &result)
    }

    /// Splits around sorted, non-overlapping `matches` according to `behavior`; empty pieces are dropped.
    ///
    /// The matches are the delimiters, or with `invert` the pieces, each match its own piece, while the text between
    /// matches becomes the delimiters (as in `tokenizers`' `Split`). With `contiguous`, adjacent delimiters join.
    static func splitByMatches(
        _ scalars: [Unicode.Scalar], matches: [Range<Int>], behavior: HFSplitBehavior, invert: Bool = false,
        into result: inout [String]
    ) {
        // Piece boundaries as (range, isDelimiter) in order.
        var segments: [(Range<Int>, Bool)] = []
        func add(_ range: Range<Int>, isDelimiter: Bool) {
            if behavior == .contiguous, isDelimiter, let last = segments.last, last.1,
                last.0.upperBound == range.lowerBound
            {
                segments[segments.count - 1] = (last.0.lowerBound..<range.upperBound, true)
            } else {
                segments.append((range, isDelimiter))
            }
        }
        var previous = 0
        for match in matches {
            if match.lowerBound > previous { add(previous..<match.lowerBound, isDelimiter: invert) }
            add(match, isDelimiter: !invert)
            previous = match.upperBound
        }
        if previous < scalars.count { add(previous..<scalars.count, isDelimiter: invert) }

        var pieces: [Range<Int>] = []
        var pendingStart: Int? = nil  // start of a delimiter waiting to be merged into the next piece
        var previousWasDelimiter = false
        for (range, isDelimiter) in segments {
            defer { previousWasDelimiter = isDelimiter }
            switch behavior {
            case .removed:
                if !isDelimiter { pieces.append(range) }
            case .isolated, .contiguous:
                pieces.append(range)
            case .mergedWithPrevious:
                if isDelimiter, !previousWasDelimiter, let last = pieces.last {
                    pieces[pieces.count - 1] = last.lowerBound..<range.upperBound
                } else {
                    pieces.append(range)
                }
            case .mergedWithNext:
                if isDelimiter {
                    if let start = pendingStart { pieces.append(start..<range.lowerBound) }
                    pendingStart = range.lowerBound
                } else if let start = pendingStart {
                    pieces.append(start..<range.upperBound)
                    pendingStart = nil
                } else {
                    pieces.append(range)
                }
            }
        }
        if let start = pendingStart { pieces.append(start..<scalars.count) }
        for range in pieces where !range.isEmpty { result.append(string(scalars[range])) }
    }
}
