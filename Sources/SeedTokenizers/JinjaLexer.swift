/// One lexical token of a template.
struct JinjaToken: Sendable, Equatable {
    enum Kind: Sendable, Equatable {
        /// Literal template text between tags, after whitespace control.
        case text(String)
        /// `{{`
        case exprOpen
        /// `}}`
        case exprClose
        /// `{%`
        case blockOpen
        /// `%}`
        case blockClose
        case name(String)
        case string(String)
        case int(Int)
        case double(Double)
        /// An operator or punctuation mark such as `+`, `//`, `==`, `(`, `.`, `|`.
        case op(String)
        case eof
    }

    var kind: Kind
    var line: Int
    var column: Int
}

/// Splits template source into text and tag tokens, applying Jinja's whitespace control as configured by
/// Hugging Face: `trim_blocks` and `lstrip_blocks` on, plus the `-` / `+` tag modifiers.
struct JinjaLexer {
    private let bytes: [UInt8]
    private var pos = 0
    private var line = 1
    private var lineStart = 0
    private(set) var tokens: [JinjaToken] = []

    /// Like Jinja, normalises `\r\n` and `\r` to `\n` and drops one trailing newline
    /// (`keep_trailing_newline=False`).
    init(_ source: String) {
        var normalized: [UInt8] = []
        normalized.reserveCapacity(source.utf8.count)
        var previousCR = false
        for b in source.utf8 {
            if b == 0x0D {
                normalized.append(0x0A)
                previousCR = true
                continue
            }
            if !(b == 0x0A && previousCR) { normalized.append(b) }
            previousCR = false
        }
        if normalized.last == 0x0A { normalized.removeLast() }
        bytes = normalized
    }

    static func tokenize(_ source: String) throws(JinjaError) -> [JinjaToken] {
        var lexer = JinjaLexer(source)
        try lexer.run()
        return lexer.tokens
    }

    private var column: Int { pos - lineStart + 1 }

    private func syntax(_ message: String, line: Int? = nil, column: Int? = nil) -> JinjaError {
        .syntax(message: message, line: line ?? self.line, column: column ?? self.column)
    }

    private mutating func advance(_ count: Int = 1) {
        for _ in 0..<count where pos < bytes.count {
            if bytes[pos] == UInt8(ascii: "\n") {
                line += 1
                lineStart = pos + 1
            }
            pos += 1
        }
    }

    private func peek(_ offset: Int = 0) -> UInt8? {
        let index = pos + offset
        return index < bytes.count ? bytes[index] : nil
    }

    private static func isSpaceOrTab(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 }
    private static func isWhitespace(_ b: UInt8) -> Bool {
        b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D || b == 0x0B || b == 0x0C
    }

    private mutating func run() throws(JinjaError) {
        /// Whether the text that follows the previous tag should lose its leading whitespace (`-%}`).
        var stripLeading = false
        while pos < bytes.count {
            // Find the next tag opener.
            var scan = pos
            var opener: UInt8? = nil
            while scan + 1 < bytes.count {
                if bytes[scan] == UInt8(ascii: "{") {
                    let next = bytes[scan + 1]
                    if next == UInt8(ascii: "{") || next == UInt8(ascii: "%") || next == UInt8(ascii: "#") {
                        opener = next
                        break
                    }
                }
                scan += 1
            }
            let textEnd = opener == nil ? bytes.count : scan
            var textStart = pos
            if stripLeading {
                while textStart < textEnd && Self.isWhitespace(bytes[textStart]) { textStart += 1 }
                stripLeading = false
            }
            var text = Array(bytes[textStart..<textEnd])
            let atLineStart = textStart == 0 || bytes[textStart - 1] == UInt8(ascii: "\n")
            advance(textEnd - pos)
            guard let opener else {
                appendText(text)
                break
            }
            let tagLine = line
            let tagColumn = column
            let modifier = peek(2)
            let isBlockLike = opener != UInt8(ascii: "{")
            if modifier == UInt8(ascii: "-") {
                while let last = text.last, Self.isWhitespace(last) { text.removeLast() }
            } else if modifier != UInt8(ascii: "+") && isBlockLike {
                // lstrip_blocks: drop spaces/tabs between the start of the line and the tag.
                var cut = text.count
                while cut > 0 && Self.isSpaceOrTab(text[cut - 1]) { cut -= 1 }
                let lineBegins = cut > 0 ? text[cut - 1] == UInt8(ascii: "\n") : atLineStart
                if lineBegins { text.removeLast(text.count - cut) }
            }
            appendText(text)
            advance(2)
            if modifier == UInt8(ascii: "-") || modifier == UInt8(ascii: "+") { advance() }

            var rightModifier: UInt8? = nil
            if opener == UInt8(ascii: "#") {
                // Comment: skip to `#}`.
                while true {
                    guard pos + 1 < bytes.count else {
                        throw syntax("unterminated comment: expected '#}'", line: tagLine, column: tagColumn)
                    }
                    if bytes[pos] == UInt8(ascii: "#") && bytes[pos + 1] == UInt8(ascii: "}") { break }
                    advance()
                }
                if pos > 0, bytes[pos - 1] == UInt8(ascii: "-") || bytes[pos - 1] == UInt8(ascii: "+") {
                    rightModifier = bytes[pos - 1]
                }
                advance(2)
            } else {
                let isExpr = opener == UInt8(ascii: "{")
                tokens.append(JinjaToken(kind: isExpr ? .exprOpen : .blockOpen, line: tagLine, column: tagColumn))
                if !isExpr, try lexRawBlockIfPresent(tagLine: tagLine, tagColumn: tagColumn) {
                    continue
                }
                rightModifier = try lexTagBody(
                    closer: isExpr ? UInt8(ascii: "}") : UInt8(ascii: "%"),
                    tagLine: tagLine, tagColumn: tagColumn)
            }
            if rightModifier == UInt8(ascii: "-") {
                stripLeading = true
            } else if rightModifier != UInt8(ascii: "+") && isBlockLike {
                // trim_blocks: remove the first newline after a block or comment tag.
                if peek() == UInt8(ascii: "\n") {
                    advance()
                } else if peek() == UInt8(ascii: "\r") && peek(1) == UInt8(ascii: "\n") {
                    advance(2)
                }
            }
        }
        tokens.append(JinjaToken(kind: .eof, line: line, column: column))
    }

    private mutating func appendText(_ text: [UInt8]) {
        guard !text.isEmpty else { return }
        tokens.append(JinjaToken(kind: .text(String(decoding: text, as: UTF8.self)), line: line, column: column))
    }

    /// Handles `{% raw %}…{% endraw %}`: if the block tag just opened is `raw`, emits its body as text.
    private mutating func lexRawBlockIfPresent(tagLine: Int, tagColumn: Int) throws(JinjaError) -> Bool {
        var probe = pos
        if probe < bytes.count, bytes[probe] == UInt8(ascii: "-") || bytes[probe] == UInt8(ascii: "+") {
            probe += 1
        }
        while probe < bytes.count && Self.isWhitespace(bytes[probe]) { probe += 1 }
        guard bytes[probe...].starts(with: Array("raw".utf8)) else { return false }
        var after = probe + 3
        while after < bytes.count && Self.isWhitespace(bytes[after]) { after += 1 }
        var rightStrip = false
        if after < bytes.count && bytes[after] == UInt8(ascii: "-") {
            rightStrip = true
            after += 1
        }
        guard after + 1 < bytes.count, bytes[after] == UInt8(ascii: "%"), bytes[after + 1] == UInt8(ascii: "}") else {
            return false
        }
        tokens.removeLast()  // the blockOpen
        advance(after + 2 - pos)
        // Find `{% endraw %}` (with optional modifiers).
        var scan = pos
        while scan + 1 < bytes.count {
            if bytes[scan] == UInt8(ascii: "{") && bytes[scan + 1] == UInt8(ascii: "%") {
                var p = scan + 2
                let leftStrip = p < bytes.count && bytes[p] == UInt8(ascii: "-")
                if p < bytes.count, bytes[p] == UInt8(ascii: "-") || bytes[p] == UInt8(ascii: "+") { p += 1 }
                while p < bytes.count && Self.isWhitespace(bytes[p]) { p += 1 }
                if bytes[p...].starts(with: Array("endraw".utf8)) {
                    p += 6
                    while p < bytes.count && Self.isWhitespace(bytes[p]) { p += 1 }
                    var endStrip = false
                    if p < bytes.count, bytes[p] == UInt8(ascii: "-") || bytes[p] == UInt8(ascii: "+") {
                        endStrip = bytes[p] == UInt8(ascii: "-")
                        p += 1
                    }
                    if p + 1 < bytes.count && bytes[p] == UInt8(ascii: "%") && bytes[p + 1] == UInt8(ascii: "}") {
                        var body = Array(bytes[pos..<scan])
                        if rightStrip { while let f = body.first, Self.isWhitespace(f) { body.removeFirst() } }
                        if leftStrip { while let l = body.last, Self.isWhitespace(l) { body.removeLast() } }
                        appendText(body)
                        advance(p + 2 - pos)
                        if endStrip {
                            while let b = peek(), Self.isWhitespace(b) { advance() }
                        } else if peek() == UInt8(ascii: "\n") {
                            advance()
                        }
                        return true
                    }
                }
            }
            scan += 1
        }
        throw syntax("unterminated raw block: expected '{% endraw %}'", line: tagLine, column: tagColumn)
    }

    /// Lexes expression tokens up to the closing `}}` or `%}`; returns the modifier before it (`-`, `+` or nil).
    private mutating func lexTagBody(closer: UInt8, tagLine: Int, tagColumn: Int) throws(JinjaError) -> UInt8? {
        var depth = 0
        while true {
            while let b = peek(), Self.isWhitespace(b) { advance() }
            guard let b = peek() else {
                let expected = closer == UInt8(ascii: "}") ? "'}}'" : "'%}'"
                throw syntax(
                    "unterminated tag: expected \(expected) before the end of the template",
                    line: tagLine, column: tagColumn)
            }
            // Closing delimiter, possibly with a modifier.
            if depth == 0 {
                var modifier: UInt8? = nil
                var offset = 0
                if b == UInt8(ascii: "-") || b == UInt8(ascii: "+") {
                    modifier = b
                    offset = 1
                }
                if peek(offset) == closer && peek(offset + 1) == UInt8(ascii: "}") {
                    let startColumn = column
                    advance(offset + 2)
                    let kind: JinjaToken.Kind = closer == UInt8(ascii: "}") ? .exprClose : .blockClose
                    tokens.append(JinjaToken(kind: kind, line: line, column: startColumn))
                    return modifier
                }
            }
            let startLine = line
            let startColumn = column
            if b == UInt8(ascii: "'") || b == UInt8(ascii: "\"") {
                let value = try lexString(quote: b)
                tokens.append(JinjaToken(kind: .string(value), line: startLine, column: startColumn))
            } else if Self.isDigit(b) {
                tokens.append(JinjaToken(kind: try lexNumber(), line: startLine, column: startColumn))
            } else if Self.isIdentifierStart(b) {
                let start = pos
                while let c = peek(), Self.isIdentifierStart(c) || Self.isDigit(c) { advance() }
                let name = String(decoding: bytes[start..<pos], as: UTF8.self)
                tokens.append(JinjaToken(kind: .name(name), line: startLine, column: startColumn))
            } else {
                let two = peek(1).map { String(decoding: [b, $0], as: UTF8.self) } ?? ""
                let op: String
                if ["//", "**", "==", "!=", "<=", ">="].contains(two) {
                    op = two
                } else if "+-*/%~<>=()[]{},.:|!".utf8.contains(b) {
                    op = String(decoding: [b], as: UTF8.self)
                } else {
                    let scalarText = String(decoding: bytes[pos..<min(pos + 4, bytes.count)], as: UTF8.self)
                    let shown = scalarText.first.map { String($0) } ?? "?"
                    throw syntax("unexpected character '\(shown)' in tag")
                }
                if op == "(" || op == "[" || op == "{" { depth += 1 }
                if op == ")" || op == "]" || op == "}" { depth = max(0, depth - 1) }
                advance(op.utf8.count)
                tokens.append(JinjaToken(kind: .op(op), line: startLine, column: startColumn))
            }
        }
    }

    private static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
    private static func isIdentifierStart(_ b: UInt8) -> Bool {
        (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F || b >= 0x80
    }

    private mutating func lexNumber() throws(JinjaError) -> JinjaToken.Kind {
        let start = pos
        var isFloat = false
        while let c = peek(), Self.isDigit(c) || c == UInt8(ascii: "_") { advance() }
        if peek() == UInt8(ascii: "."), let next = peek(1), Self.isDigit(next) {
            isFloat = true
            advance()
            while let c = peek(), Self.isDigit(c) || c == UInt8(ascii: "_") { advance() }
        }
        if let e = peek(), e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            var offset = 1
            if let sign = peek(1), sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") { offset = 2 }
            if let digit = peek(offset), Self.isDigit(digit) {
                isFloat = true
                advance(offset)
                while let c = peek(), Self.isDigit(c) { advance() }
            }
        }
        let text = String(decoding: bytes[start..<pos], as: UTF8.self).replacingOccurrences(of: "_", with: "")
        if isFloat {
            guard let value = Double(text) else { throw syntax("invalid number literal '\(text)'") }
            return .double(value)
        }
        guard let value = Int(text) else { throw syntax("integer literal '\(text)' is too large") }
        return .int(value)
    }

    private mutating func lexString(quote: UInt8) throws(JinjaError) -> String {
        let startLine = line
        let startColumn = column
        advance()
        var out: [UInt8] = []
        while true {
            guard let b = peek() else {
                throw syntax("unterminated string literal", line: startLine, column: startColumn)
            }
            if b == quote {
                advance()
                break
            }
            if b != UInt8(ascii: "\\") {
                out.append(b)
                advance()
                continue
            }
            guard let e = peek(1) else {
                throw syntax("unterminated string literal", line: startLine, column: startColumn)
            }
            advance(2)
            switch e {
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "0"): out.append(0x00)
            case UInt8(ascii: "a"): out.append(0x07)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "v"): out.append(0x0B)
            case UInt8(ascii: "\\"), UInt8(ascii: "'"), UInt8(ascii: "\""): out.append(e)
            case UInt8(ascii: "\n"): break
            case UInt8(ascii: "x"), UInt8(ascii: "u"), UInt8(ascii: "U"):
                let width = e == UInt8(ascii: "x") ? 2 : (e == UInt8(ascii: "u") ? 4 : 8)
                guard pos + width <= bytes.count,
                    let code = UInt32(String(decoding: bytes[pos..<pos + width], as: UTF8.self), radix: 16),
                    let scalar = Unicode.Scalar(code)
                else {
                    throw syntax("invalid \\\(Character(Unicode.Scalar(e))) escape in string literal")
                }
                advance(width)
                out.append(contentsOf: Array(String(Character(scalar)).utf8))
            default:
                out.append(UInt8(ascii: "\\"))
                out.append(e)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
