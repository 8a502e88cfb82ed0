/// Recursive-descent parser from ``JinjaToken``s to ``JinjaNode``s, following Jinja2's grammar and precedence.
struct JinjaParser {
    /// Nesting deeper than this (parentheses, blocks, unary operators) is rejected rather than risking the stack.
    static let maxNesting = 64

    private let tokens: [JinjaToken]
    private var index = 0
    private var depth = 0
    /// How many `for` bodies enclose the current position (reset inside macros); `break` needs one.
    private var loopDepth = 0

    init(tokens: [JinjaToken]) {
        self.tokens = tokens
    }

    static func parse(_ source: String) throws(JinjaError) -> [JinjaNode] {
        var parser = JinjaParser(tokens: try JinjaLexer.tokenize(source))
        let (nodes, end) = try parser.parseBody(until: [])
        if let end {
            throw parser.error("unexpected '{% \(end) %}' with no open block", at: parser.tokens[parser.index - 1])
        }
        return nodes
    }

    // MARK: Token helpers

    private var current: JinjaToken { tokens[index] }
    private var next: JinjaToken { tokens[min(index + 1, tokens.count - 1)] }

    private mutating func advance() {
        if index < tokens.count - 1 { index += 1 }
    }

    private func error(_ message: String, at token: JinjaToken? = nil) -> JinjaError {
        let token = token ?? current
        return .syntax(message: message, line: token.line, column: token.column)
    }

    private static func describe(_ kind: JinjaToken.Kind) -> String {
        switch kind {
        case .text(let t): return "text \(String(reflecting: String(t.prefix(20))))"
        case .exprOpen: return "'{{'"
        case .exprClose: return "'}}'"
        case .blockOpen: return "'{%'"
        case .blockClose: return "'%}'"
        case .name(let n): return "'\(n)'"
        case .string(let s): return "string \(String(reflecting: s))"
        case .int(let i): return "number \(i)"
        case .double(let d): return "number \(d)"
        case .op(let o): return "'\(o)'"
        case .eof: return "end of template"
        }
    }

    private func isOp(_ op: String) -> Bool { current.kind == .op(op) }
    private func isName(_ name: String) -> Bool { current.kind == .name(name) }

    private mutating func expectOp(_ op: String, _ context: String) throws(JinjaError) {
        guard isOp(op) else {
            throw error("expected '\(op)' \(context), found \(Self.describe(current.kind))")
        }
        advance()
    }

    private mutating func expectName(_ context: String) throws(JinjaError) -> String {
        guard case .name(let name) = current.kind else {
            throw error("expected a name \(context), found \(Self.describe(current.kind))")
        }
        advance()
        return name
    }

    private mutating func expectBlockClose(_ tag: String) throws(JinjaError) {
        guard current.kind == .blockClose else {
            throw error("expected '%}' to end '\(tag)', found \(Self.describe(current.kind))")
        }
        advance()
    }

    private mutating func enter() throws(JinjaError) {
        depth += 1
        if depth > Self.maxNesting {
            throw error("template nesting is deeper than \(Self.maxNesting) levels")
        }
    }

    private mutating func leave() { depth -= 1 }

    // MARK: Statements

    /// Parses nodes until one of the `end` tag names (consumed with its `{%`, returned) or end of input (nil).
    private mutating func parseBody(until end: Set<String>) throws(JinjaError) -> ([JinjaNode], String?) {
        var nodes: [JinjaNode] = []
        while true {
            let token = current
            switch token.kind {
            case .eof:
                return (nodes, nil)
            case .text(let text):
                nodes.append(.text(text))
                advance()
            case .exprOpen:
                advance()
                let expr = try parseExpression()
                guard current.kind == .exprClose else {
                    throw error("expected '}}' to end the expression, found \(Self.describe(current.kind))")
                }
                advance()
                nodes.append(.output(expr, line: token.line))
            case .blockOpen:
                advance()
                guard case .name(let tag) = current.kind else {
                    throw error("expected a tag name after '{%', found \(Self.describe(current.kind))")
                }
                if end.contains(tag) {
                    advance()
                    return (nodes, tag)
                }
                if let node = try parseStatement(tag, openToken: token) {
                    nodes.append(node)
                } else {
                    return (nodes, tag)
                }
            default:
                throw error("unexpected \(Self.describe(token.kind))")
            }
        }
    }

    private static let closingTags: Set<String> = [
        "endfor", "endif", "elif", "else", "endset", "endmacro", "endfilter", "endgeneration",
    ]

    /// Parses the statement whose tag name is current; returns nil for a stray closing tag (left for the caller).
    private mutating func parseStatement(_ tag: String, openToken: JinjaToken) throws(JinjaError) -> JinjaNode? {
        let line = openToken.line
        switch tag {
        case "for":
            advance()
            return try parseFor(line: line, openToken: openToken)
        case "if":
            advance()
            return try parseIf(line: line, openToken: openToken)
        case "set":
            advance()
            return try parseSet(line: line, openToken: openToken)
        case "macro":
            advance()
            return try parseMacro(line: line, openToken: openToken)
        case "filter":
            advance()
            let filters = try parseFilterChain()
            try expectBlockClose("filter")
            let body = try parseBlockBody(["endfilter"], opened: "filter", openToken: openToken)
            try expectBlockClose("endfilter")
            return .filterBlock(filters: filters, body: body.0, line: line)
        case "generation":
            // transformers' `{% generation %}` marks assistant text for masks; it renders its body unchanged.
            advance()
            try expectBlockClose("generation")
            let body = try parseBlockBody(["endgeneration"], opened: "generation", openToken: openToken)
            try expectBlockClose("endgeneration")
            return .filterBlock(filters: [], body: body.0, line: line)
        case "break", "continue":
            guard loopDepth > 0 else { throw error("'{% \(tag) %}' outside of a loop", at: openToken) }
            advance()
            try expectBlockClose(tag)
            return tag == "break" ? .breakLoop(line: line) : .continueLoop(line: line)
        default:
            if Self.closingTags.contains(tag) {
                advance()
                throw error("unexpected '{% \(tag) %}' with no matching open block", at: openToken)
            }
            throw JinjaError.unknownTag(name: tag, line: current.line, column: current.column)
        }
    }

    private mutating func parseBlockBody(
        _ ends: Set<String>, opened: String,
        openToken: JinjaToken
    ) throws(JinjaError) -> ([JinjaNode], String) {
        try enter()
        defer { leave() }
        let (body, end) = try parseBody(until: ends)
        guard let end else {
            let expected = ends.sorted().map { "'{% \($0) %}'" }.joined(separator: " or ")
            throw error(
                "unclosed '{% \(opened) %}' opened at line \(openToken.line): expected \(expected) "
                    + "before the end of the template", at: openToken)
        }
        return (body, end)
    }

    private mutating func parseFor(line: Int, openToken: JinjaToken) throws(JinjaError) -> JinjaNode {
        var targets = [try expectName("after 'for'")]
        while isOp(",") {
            advance()
            targets.append(try expectName("in the loop target"))
        }
        guard isName("in") else {
            throw error("expected 'in' after the loop variable, found \(Self.describe(current.kind))")
        }
        advance()
        let iterable = try parseTernaryFree()
        var condition: JinjaExpr? = nil
        if isName("if") {
            advance()
            condition = try parseExpression()
        }
        if isName("recursive") {
            throw error("recursive loops are not supported")
        }
        try expectBlockClose("for")
        loopDepth += 1
        var (body, end) = try parseBlockBody(["endfor", "else"], opened: "for", openToken: openToken)
        loopDepth -= 1
        var otherwise: [JinjaNode] = []
        if end == "else" {
            try expectBlockClose("else")
            (otherwise, end) = try parseBlockBody(["endfor"], opened: "for", openToken: openToken)
        }
        try expectBlockClose("endfor")
        return .forLoop(
            JinjaForLoop(
                targets: targets, iterable: iterable, condition: condition, body: body,
                otherwise: otherwise, line: line))
    }

    private mutating func parseIf(line: Int, openToken: JinjaToken) throws(JinjaError) -> JinjaNode {
        var branches: [(condition: JinjaExpr, body: [JinjaNode])] = []
        var condition = try parseExpression()
        try expectBlockClose("if")
        while true {
            let (body, end) = try parseBlockBody(["elif", "else", "endif"], opened: "if", openToken: openToken)
            branches.append((condition, body))
            switch end {
            case "elif":
                condition = try parseExpression()
                try expectBlockClose("elif")
            case "else":
                try expectBlockClose("else")
                let (otherwise, _) = try parseBlockBody(["endif"], opened: "if", openToken: openToken)
                try expectBlockClose("endif")
                return .conditional(branches: branches, otherwise: otherwise, line: line)
            default:
                try expectBlockClose("endif")
                return .conditional(branches: branches, otherwise: [], line: line)
            }
        }
    }

    private mutating func parseSet(line: Int, openToken: JinjaToken) throws(JinjaError) -> JinjaNode {
        let first = try expectName("after 'set'")
        if isOp(".") {
            advance()
            let attribute = try expectName("after '.' in 'set'")
            try expectOp("=", "in 'set'")
            let value = try parseExpression()
            try expectBlockClose("set")
            return .set(.attribute(first, attribute), value, line: line)
        }
        var names = [first]
        while isOp(",") {
            advance()
            names.append(try expectName("in the 'set' target"))
        }
        if isOp("=") {
            advance()
            var value = try parseExpression()
            if isOp(",") {
                var items = [value]
                while isOp(",") {
                    advance()
                    items.append(try parseExpression())
                }
                value = .list(items)
            }
            try expectBlockClose("set")
            return .set(.names(names), value, line: line)
        }
        guard names.count == 1 else { throw error("expected '=' in 'set', found \(Self.describe(current.kind))") }
        var filters: [(name: String, arguments: JinjaArguments)] = []
        if isOp("|") {
            advance()
            filters = try parseFilterChain()
        }
        guard current.kind == .blockClose else {
            throw error("expected '=' or '%}' in 'set', found \(Self.describe(current.kind))")
        }
        advance()
        let (body, _) = try parseBlockBody(["endset"], opened: "set", openToken: openToken)
        try expectBlockClose("endset")
        return .setBlock(first, body: body, filters: filters, line: line)
    }

    private mutating func parseMacro(line: Int, openToken: JinjaToken) throws(JinjaError) -> JinjaNode {
        let name = try expectName("after 'macro'")
        try expectOp("(", "after the macro name")
        var parameters: [(name: String, defaultValue: JinjaExpr?)] = []
        while !isOp(")") {
            let parameter = try expectName("as a macro parameter")
            var defaultValue: JinjaExpr? = nil
            if isOp("=") {
                advance()
                defaultValue = try parseExpression()
            } else if parameters.last?.defaultValue != nil {
                throw error("macro parameter '\(parameter)' without a default follows one with a default")
            }
            parameters.append((parameter, defaultValue))
            if !isOp(",") { break }
            advance()
        }
        try expectOp(")", "to end the macro parameters")
        try expectBlockClose("macro")
        let savedLoopDepth = loopDepth
        loopDepth = 0
        let (body, _) = try parseBlockBody(["endmacro"], opened: "macro", openToken: openToken)
        loopDepth = savedLoopDepth
        if case .name = current.kind { advance() }  // `{% endmacro name %}`
        try expectBlockClose("endmacro")
        return .macro(JinjaMacro(name: name, parameters: parameters, body: body, line: line))
    }

    /// Parses `name(args) | name2 …` after a `|` (or at the start of a filter block).
    private mutating func parseFilterChain() throws(JinjaError) -> [(name: String, arguments: JinjaArguments)] {
        var filters: [(name: String, arguments: JinjaArguments)] = []
        repeat {
            if !filters.isEmpty { advance() }  // the '|'
            let token = current
            let name = try parseDottedName("after '|'")
            guard JinjaBuiltins.filterNames.contains(name) else {
                throw JinjaError.unknownFilter(name: name, line: token.line)
            }
            var arguments = JinjaArguments()
            if isOp("(") { arguments = try parseCallArguments() }
            filters.append((name, arguments))
        } while isOp("|")
        return filters
    }

    private mutating func parseDottedName(_ context: String) throws(JinjaError) -> String {
        var name = try expectName(context)
        while isOp("."), case .name(let part) = next.kind {
            advance()
            advance()
            name += "." + part
        }
        return name
    }

    // MARK: Expressions

    /// A full expression, including the inline `a if b else c` form.
    mutating func parseExpression() throws(JinjaError) -> JinjaExpr {
        try enter()
        defer { leave() }
        let value = try parseOr()
        guard isName("if") else { return value }
        advance()
        let condition = try parseOr()
        var otherwise: JinjaExpr? = nil
        if isName("else") {
            advance()
            otherwise = try parseExpression()
        }
        return .conditional(condition: condition, then: value, otherwise: otherwise)
    }

    /// An expression without a trailing inline `if`, as used for a loop's iterable (`for x in y if cond`).
    private mutating func parseTernaryFree() throws(JinjaError) -> JinjaExpr {
        try enter()
        defer { leave() }
        return try parseOr()
    }

    private mutating func parseOr() throws(JinjaError) -> JinjaExpr {
        var lhs = try parseAnd()
        while isName("or") {
            advance()
            lhs = .or(lhs, try parseAnd())
        }
        return lhs
    }

    private mutating func parseAnd() throws(JinjaError) -> JinjaExpr {
        var lhs = try parseNot()
        while isName("and") {
            advance()
            lhs = .and(lhs, try parseNot())
        }
        return lhs
    }

    private mutating func parseNot() throws(JinjaError) -> JinjaExpr {
        if isName("not") {
            advance()
            try enter()
            defer { leave() }
            return .not(try parseNot())
        }
        return try parseCompare()
    }

    private mutating func parseCompare() throws(JinjaError) -> JinjaExpr {
        let lhs = try parseMath1()
        var chain: [(op: JinjaCompareOperator, rhs: JinjaExpr)] = []
        while true {
            var op: JinjaCompareOperator?
            if case .op(let symbol) = current.kind, let compare = JinjaCompareOperator(rawValue: symbol) {
                op = compare
                advance()
            } else if isName("in") {
                op = .contains
                advance()
            } else if isName("not"), next.kind == .name("in") {
                op = .notContains
                advance()
                advance()
            }
            guard let op else { break }
            chain.append((op, try parseMath1()))
        }
        return chain.isEmpty ? lhs : .compare(lhs, chain)
    }

    private mutating func parseMath1() throws(JinjaError) -> JinjaExpr {
        var lhs = try parseConcat()
        while isOp("+") || isOp("-") {
            let op: JinjaBinaryOperator = isOp("+") ? .add : .subtract
            advance()
            lhs = .binary(op, lhs, try parseConcat())
        }
        return lhs
    }

    private mutating func parseConcat() throws(JinjaError) -> JinjaExpr {
        var lhs = try parseMath2()
        while isOp("~") {
            advance()
            lhs = .binary(.concat, lhs, try parseMath2())
        }
        return lhs
    }

    private mutating func parseMath2() throws(JinjaError) -> JinjaExpr {
        var lhs = try parsePow()
        while true {
            let op: JinjaBinaryOperator
            if isOp("*") {
                op = .multiply
            } else if isOp("/") {
                op = .divide
            } else if isOp("//") {
                op = .floorDivide
            } else if isOp("%") {
                op = .modulo
            } else {
                break
            }
            advance()
            lhs = .binary(op, lhs, try parsePow())
        }
        return lhs
    }

    private mutating func parsePow() throws(JinjaError) -> JinjaExpr {
        var lhs = try parseUnary(withFilter: true)
        while isOp("**") {
            advance()
            lhs = .binary(.power, lhs, try parseUnary(withFilter: true))
        }
        return lhs
    }

    private mutating func parseUnary(withFilter: Bool) throws(JinjaError) -> JinjaExpr {
        var node: JinjaExpr
        if isOp("-") || isOp("+") {
            let negative = isOp("-")
            advance()
            try enter()
            defer { leave() }
            let operand = try parseUnary(withFilter: false)
            node = negative ? .negate(operand) : .plus(operand)
        } else {
            node = try parsePrimary()
        }
        node = try parsePostfix(node)
        if withFilter { node = try parseFilterExpression(node) }
        return node
    }

    private mutating func parsePrimary() throws(JinjaError) -> JinjaExpr {
        let token = current
        switch token.kind {
        case .name(let name):
            advance()
            switch name {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default: return .name(name)
            }
        case .string(let s):
            advance()
            var value = s
            while case .string(let more) = current.kind {  // adjacent literals concatenate
                value += more
                advance()
            }
            return .literal(.string(value))
        case .int(let i):
            advance()
            return .literal(.int(i))
        case .double(let d):
            advance()
            return .literal(.double(d))
        case .op("("):
            advance()
            if isOp(")") {
                advance()
                return .list([])
            }
            let first = try parseExpression()
            if isOp(")") {
                advance()
                return first
            }
            var items = [first]
            while isOp(",") {
                advance()
                if isOp(")") { break }
                items.append(try parseExpression())
            }
            try expectOp(")", "to close '('")
            return .list(items)
        case .op("["):
            advance()
            var items: [JinjaExpr] = []
            while !isOp("]") {
                items.append(try parseExpression())
                if !isOp(",") { break }
                advance()
            }
            try expectOp("]", "to close the list")
            return .list(items)
        case .op("{"):
            advance()
            var pairs: [(key: JinjaExpr, value: JinjaExpr)] = []
            while !isOp("}") {
                let key = try parseExpression()
                try expectOp(":", "after a dictionary key")
                pairs.append((key, try parseExpression()))
                if !isOp(",") { break }
                advance()
            }
            try expectOp("}", "to close the dictionary")
            return .dict(pairs)
        default:
            throw error("expected an expression, found \(Self.describe(token.kind))")
        }
    }

    private mutating func parsePostfix(_ base: JinjaExpr) throws(JinjaError) -> JinjaExpr {
        var node = base
        while true {
            if isOp(".") {
                advance()
                switch current.kind {
                case .name(let name):
                    advance()
                    node = .attribute(node, name)
                case .int(let i):
                    advance()
                    node = .index(node, .literal(.int(i)))
                default:
                    throw error("expected an attribute name after '.', found \(Self.describe(current.kind))")
                }
            } else if isOp("[") {
                advance()
                node = try parseSubscript(node)
            } else if isOp("(") {
                node = .call(node, try parseCallArguments())
            } else {
                return node
            }
        }
    }

    private mutating func parseSubscript(_ base: JinjaExpr) throws(JinjaError) -> JinjaExpr {
        var parts: [JinjaExpr?] = [nil]
        var sawColon = false
        while !isOp("]") {
            if isOp(":") {
                sawColon = true
                guard parts.count < 3 else { throw error("too many ':' in a slice") }
                parts.append(nil)
                advance()
            } else {
                guard parts[parts.count - 1] == nil else {
                    throw error("expected ']' or ':' in a subscript, found \(Self.describe(current.kind))")
                }
                parts[parts.count - 1] = try parseExpression()
            }
        }
        advance()
        if !sawColon {
            guard let key = parts[0] else { throw error("empty subscript '[]'") }
            return .index(base, key)
        }
        while parts.count < 3 { parts.append(nil) }
        return .slice(base, start: parts[0], stop: parts[1], step: parts[2])
    }

    private mutating func parseCallArguments() throws(JinjaError) -> JinjaArguments {
        try expectOp("(", "to start the arguments")
        var arguments = JinjaArguments()
        while !isOp(")") {
            if case .name(let name) = current.kind, next.kind == .op("=") {
                advance()
                advance()
                arguments.keyword.append((name, try parseExpression()))
            } else {
                guard arguments.keyword.isEmpty else {
                    throw error("positional argument follows keyword argument")
                }
                arguments.positional.append(try parseExpression())
            }
            if !isOp(",") { break }
            advance()
        }
        try expectOp(")", "to close the argument list")
        return arguments
    }

    private mutating func parseFilterExpression(_ base: JinjaExpr) throws(JinjaError) -> JinjaExpr {
        var node = base
        while true {
            if isOp("|") {
                advance()
                let token = current
                let name = try parseDottedName("after '|'")
                guard JinjaBuiltins.filterNames.contains(name) else {
                    throw JinjaError.unknownFilter(name: name, line: token.line)
                }
                let arguments = isOp("(") ? try parseCallArguments() : JinjaArguments()
                node = .filter(node, name: name, arguments)
            } else if isName("is") {
                advance()
                var negated = false
                if isName("not") {
                    negated = true
                    advance()
                }
                let token = current
                let name: String
                switch current.kind {
                case .name(let n):
                    name = n
                    advance()
                case .op("=="):
                    name = "=="
                    advance()
                case .op("!="):
                    name = "!="
                    advance()
                case .op("<"):
                    name = "<"
                    advance()
                case .op(">"):
                    name = ">"
                    advance()
                case .op("<="):
                    name = "<="
                    advance()
                case .op(">="):
                    name = ">="
                    advance()
                default:
                    throw error("expected a test name after 'is', found \(Self.describe(current.kind))")
                }
                guard JinjaBuiltins.testNames.contains(name) else {
                    throw JinjaError.unknownTest(name: name, line: token.line)
                }
                var arguments = JinjaArguments()
                if isOp("(") {
                    arguments = try parseCallArguments()
                } else if startsBareTestArgument() {
                    arguments.positional = [try parseUnary(withFilter: false)]
                }
                node = .test(node, name: name, arguments, negated: negated)
            } else if isOp("(") {
                node = .call(node, try parseCallArguments())
            } else {
                return node
            }
        }
    }

    /// Whether the current token can start the single argument of a test written without parentheses.
    private func startsBareTestArgument() -> Bool {
        switch current.kind {
        case .string, .int, .double: return true
        case .op("["), .op("{"): return true
        case .name(let n): return !["and", "or", "if", "else", "in", "not", "is"].contains(n)
        default: return false
        }
    }
}
