import Foundation

/// Names of the filters and tests the renderer provides; the parser rejects any other name up front.
enum JinjaBuiltins {
    static let filterNames: Set<String> = [
        "abs", "attr", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "first", "float",
        "indent", "int", "items", "join", "last", "length", "list", "lower", "map", "max", "min", "reject",
        "rejectattr", "replace", "reverse", "round", "safe", "select", "selectattr", "sort", "string", "sum",
        "title", "tojson", "trim", "unique", "upper", "wordcount",
    ]

    static let testNames: Set<String> = [
        "defined", "undefined", "none", "string", "number", "integer", "float", "boolean", "mapping", "iterable",
        "sequence", "true", "false", "odd", "even", "divisibleby", "eq", "equalto", "==", "ne", "!=", "lt", "<",
        "lessthan", "gt", ">", "greaterthan", "le", "<=", "ge", ">=", "in", "lower", "upper", "callable", "sameas",
    ]
}

// MARK: - String helpers (Python semantics over Unicode scalars)

extension String {
    fileprivate func pythonStrip(_ chars: String?, leading: Bool, trailing: Bool) -> String {
        let scalars = Array(unicodeScalars)
        let strip: (Unicode.Scalar) -> Bool
        if let chars {
            let set = Set(chars.unicodeScalars)
            strip = { set.contains($0) }
        } else {
            strip = { $0.properties.isWhitespace }
        }
        var lower = 0
        var upper = scalars.count
        if leading { while lower < upper && strip(scalars[lower]) { lower += 1 } }
        if trailing { while upper > lower && strip(scalars[upper - 1]) { upper -= 1 } }
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars[lower..<upper])
        return String(view)
    }

    /// Python `str.split(sep, maxsplit)`.
    fileprivate func pythonSplit(_ separator: String?, maxSplit: Int) -> [String] {
        guard let separator else {
            var parts: [String] = []
            var current = String.UnicodeScalarView()
            var inWord = false
            var splits = 0
            var scalars = unicodeScalars[...]
            while let scalar = scalars.first {
                if scalar.properties.isWhitespace && (maxSplit < 0 || splits < maxSplit) {
                    if inWord {
                        parts.append(String(current))
                        current = String.UnicodeScalarView()
                        inWord = false
                        splits += 1
                    }
                    scalars = scalars.dropFirst()
                } else if !inWord && maxSplit >= 0 && splits >= maxSplit {
                    let rest = String(String.UnicodeScalarView(scalars))
                        .pythonStrip(nil, leading: false, trailing: true)
                    if !rest.isEmpty { parts.append(rest) }
                    return parts
                } else {
                    current.append(scalar)
                    inWord = true
                    scalars = scalars.dropFirst()
                }
            }
            if inWord { parts.append(String(current)) }
            return parts
        }
        var parts: [String] = []
        var rest = self[...]
        while maxSplit < 0 || parts.count < maxSplit, let range = rest.range(of: separator) {
            parts.append(String(rest[..<range.lowerBound]))
            rest = rest[range.upperBound...]
        }
        parts.append(String(rest))
        return parts
    }

    /// Python `str.title()`: the first cased letter after an uncased character is upper-cased, others lowered.
    fileprivate var pythonTitle: String {
        var out = ""
        var previousCased = false
        for scalar in unicodeScalars {
            let text = String(scalar)
            out += previousCased ? text.lowercased() : text.uppercased()
            previousCased = scalar.properties.isCased
        }
        return out
    }

    /// Python `str.capitalize()`.
    fileprivate var pythonCapitalize: String {
        guard let first = unicodeScalars.first else { return "" }
        return String(first).uppercased() + String(String.UnicodeScalarView(unicodeScalars.dropFirst())).lowercased()
    }

    /// Jinja's `title` filter: words begin after whitespace, `-`, and opening brackets.
    fileprivate var jinjaTitle: String {
        var out = ""
        var atWordStart = true
        for scalar in unicodeScalars {
            let isBoundary = scalar.properties.isWhitespace || "-({[<".unicodeScalars.contains(scalar)
            let text = String(scalar)
            if isBoundary {
                out += text
                atWordStart = true
            } else {
                out += atWordStart ? text.uppercased() : text.lowercased()
                atWordStart = false
            }
        }
        return out
    }

    fileprivate func pythonReplace(_ old: String, _ new: String, count: Int) -> String {
        if old.isEmpty { return pythonReplaceEmpty(new, count: count) }
        if count < 0 { return replacingOccurrences(of: old, with: new) }
        var out = ""
        var rest = self[...]
        var done = 0
        while done < count, let range = rest.range(of: old) {
            out += rest[..<range.lowerBound] + new
            rest = rest[range.upperBound...]
            done += 1
        }
        return out + rest
    }

    private func pythonReplaceEmpty(_ new: String, count: Int) -> String {
        var out = ""
        var done = 0
        for scalar in unicodeScalars {
            if count < 0 || done < count {
                out += new
                done += 1
            }
            out.unicodeScalars.append(scalar)
        }
        if count < 0 || done < count { out += new }
        return out
    }
}

// MARK: - Filters

extension JinjaRenderer {
    func string(_ value: JinjaValue?, _ what: String) throws(JinjaError) -> String? {
        switch value {
        case nil, .none?, .undefined?: return nil
        case .string(let s)?: return s
        case let other?: throw fail("\(what) must be a string, not \(other.typeName)")
        }
    }

    func integer(_ value: JinjaValue?, _ what: String) throws(JinjaError) -> Int? {
        switch value {
        case nil, .none?, .undefined?: return nil
        case .int(let i)?: return i
        case .bool(let b)?: return b ? 1 : 0
        case let other?: throw fail("\(what) must be an integer, not \(other.typeName)")
        }
    }

    func length(_ value: JinjaValue) throws(JinjaError) -> Int {
        switch value {
        case .undefined: return 0
        case .string(let s): return s.unicodeScalars.count
        case .array(let a): return a.count
        case .object(let o), .namespace(let o): return o.count
        default: throw fail("object of type '\(value.typeName)' has no len()")
        }
    }

    /// Looks up a dotted attribute path (`"a.b"`, or an integer index) as Jinja's `attribute=` arguments do.
    func attributePath(_ value: JinjaValue, _ path: JinjaValue) throws(JinjaError) -> JinjaValue {
        if case .int = path { return try item(value, path) }
        guard case .string(let text) = path else { throw fail("attribute must be a string, not \(path.typeName)") }
        var current = value
        for part in text.split(separator: ".", omittingEmptySubsequences: false) {
            if let index = Int(part), case .array = current {
                current = try item(current, .int(index))
            } else {
                current = attribute(current, String(part))
            }
        }
        return current
    }

    mutating func applyFilter(
        _ name: String, to value: JinjaValue,
        _ arguments: JinjaCallArguments
    ) throws(JinjaError) -> JinjaValue {
        let args = arguments.positional
        switch name {
        case "abs":
            switch value {
            case .int(let i):
                guard i != Int.min else { throw fail("integer overflow in abs") }
                return .int(abs(i))
            case .double(let d): return .double(abs(d))
            case .bool(let b): return .int(b ? 1 : 0)
            default: throw fail("bad operand type for abs(): '\(value.typeName)'")
            }
        case "attr":
            guard let key = args.first else { throw fail("attr filter needs an attribute name") }
            return try attributePath(value, key)
        case "capitalize":
            return .string(value.renderedString.pythonCapitalize)
        case "count", "length":
            return .int(try length(value))
        case "d", "default":
            let fallback = arguments.value(0, "default_value") ?? .string("")
            let boolean = arguments.value(1, "boolean")?.isTruthy ?? false
            if value == .undefined || (boolean && !value.isTruthy) { return fallback }
            return value
        case "dictsort":
            guard case .object(let o) = value else { throw fail("dictsort expects a dict, not \(value.typeName)") }
            let caseSensitive = arguments.value(0, "case_sensitive")?.isTruthy ?? false
            let byValue = (try string(arguments.value(1, "by"), "dictsort 'by'")) == "value"
            let reverse = arguments.value(2, "reverse")?.isTruthy ?? false
            let pairs = o.keys.map { JinjaValue.array([.string($0), o[$0] ?? .none]) }
            return .array(
                try sorted(
                    pairs, attribute: .int(byValue ? 1 : 0), caseSensitive: caseSensitive,
                    reverse: reverse))
        case "e", "escape":
            var out = ""
            for c in value.renderedString {
                switch c {
                case "&": out += "&amp;"
                case "<": out += "&lt;"
                case ">": out += "&gt;"
                case "\"": out += "&#34;"
                case "'": out += "&#39;"
                default: out.append(c)
                }
            }
            return .string(out)
        case "first":
            if case .string(let s) = value { return s.unicodeScalars.first.map { .string(String($0)) } ?? .undefined }
            return try iterate(value).first ?? .undefined
        case "last":
            if case .string(let s) = value { return s.unicodeScalars.last.map { .string(String($0)) } ?? .undefined }
            return try iterate(value).last ?? .undefined
        case "float":
            let fallback = arguments.value(0, "default") ?? .double(0)
            switch value {
            case .int(let i): return .double(Double(i))
            case .double(let d): return .double(d)
            case .bool(let b): return .double(b ? 1 : 0)
            case .string(let s):
                return Double(s.pythonStrip(nil, leading: true, trailing: true)).map { .double($0) } ?? fallback
            default: return fallback
            }
        case "int":
            let fallback = arguments.value(0, "default") ?? .int(0)
            let base = try integer(arguments.value(1, "base"), "int base") ?? 10
            switch value {
            case .int(let i): return .int(i)
            case .double(let d):
                guard d.isFinite, abs(d) < 9.2e18 else { return fallback }
                return .int(Int(d))
            case .bool(let b): return .int(b ? 1 : 0)
            case .string(let s):
                let text = s.pythonStrip(nil, leading: true, trailing: true).replacingOccurrences(of: "_", with: "")
                guard (2...36).contains(base) else { throw fail("int() base must be between 2 and 36") }
                if let i = Int(text, radix: base) { return .int(i) }
                if base == 10, let d = Double(text), d.isFinite, abs(d) < 9.2e18 { return .int(Int(d)) }
                return fallback
            default: return fallback
            }
        case "indent":
            let width: String
            switch arguments.value(0, "width") {
            case .string(let s)?: width = s
            case let other?: width = String(repeating: " ", count: max(0, try integer(other, "indent width") ?? 4))
            case nil: width = "    "
            }
            let first = arguments.value(1, "first")?.isTruthy ?? false
            let blank = arguments.value(2, "blank")?.isTruthy ?? false
            let lines = value.renderedString.components(separatedBy: "\n")
            var out: [String] = []
            for (index, text) in lines.enumerated() {
                if index == 0 && !first {
                    out.append(text)
                    continue
                }
                out.append(text.isEmpty && !blank ? text : width + text)
            }
            return .string(out.joined(separator: "\n"))
        case "items":
            switch value {
            case .undefined: return .array([])
            case .object(let o), .namespace(let o):
                return .array(o.keys.map { .array([.string($0), o[$0] ?? .none]) })
            default: throw fail("items filter expects a dict, not \(value.typeName)")
            }
        case "join":
            let separator = try string(arguments.value(0, "d"), "join separator") ?? ""
            var parts: [String] = []
            for item in try iterate(value) {
                if let attribute = arguments.value(1, "attribute") {
                    parts.append(try attributePath(item, attribute).renderedString)
                } else {
                    parts.append(item.renderedString)
                }
            }
            let text = parts.joined(separator: separator)
            try checkStringSize(text.utf8.count)
            return .string(text)
        case "list":
            return .array(try iterate(value))
        case "lower":
            return .string(value.renderedString.lowercased())
        case "upper":
            return .string(value.renderedString.uppercased())
        case "title":
            return .string(value.renderedString.jinjaTitle)
        case "map":
            var results: [JinjaValue] = []
            let items = try iterate(value)
            if let attribute = arguments.keyword.first(where: { $0.name == "attribute" })?.value {
                let fallback = arguments.keyword.first { $0.name == "default" }?.value
                for item in items {
                    let found = try attributePath(item, attribute)
                    results.append(found == .undefined ? (fallback ?? .undefined) : found)
                }
                return .array(results)
            }
            guard case .string(let filter)? = args.first else {
                throw fail("map needs a filter name or attribute=...")
            }
            guard JinjaBuiltins.filterNames.contains(filter) else {
                throw JinjaError.unknownFilter(name: filter, line: line)
            }
            let rest = JinjaCallArguments(positional: Array(args.dropFirst()), keyword: arguments.keyword)
            for item in items { results.append(try applyFilter(filter, to: item, rest)) }
            return .array(results)
        case "max", "min":
            let items = try iterate(value)
            let attribute = arguments.keyword.first { $0.name == "attribute" }?.value
            let caseSensitive = arguments.keyword.first { $0.name == "case_sensitive" }?.value.isTruthy ?? false
            let ordered = try sorted(items, attribute: attribute, caseSensitive: caseSensitive, reverse: name == "max")
            return ordered.first ?? .undefined
        case "reject", "select":
            var results: [JinjaValue] = []
            for item in try iterate(value) {
                let passes: Bool
                if case .string(let test)? = args.first {
                    passes = try applyTest(test, to: item, Array(args.dropFirst()))
                } else {
                    passes = item.isTruthy
                }
                if passes == (name == "select") { results.append(item) }
            }
            return .array(results)
        case "rejectattr", "selectattr":
            guard let attribute = args.first else { throw fail("\(name) needs an attribute name") }
            var results: [JinjaValue] = []
            for item in try iterate(value) {
                let field = try attributePath(item, attribute)
                let passes: Bool
                if args.count > 1 {
                    guard case .string(let test) = args[1] else { throw fail("\(name) test name must be a string") }
                    passes = try applyTest(test, to: field, Array(args.dropFirst(2)))
                } else {
                    passes = field.isTruthy
                }
                if passes == (name == "selectattr") { results.append(item) }
            }
            return .array(results)
        case "replace":
            guard let old = try string(arguments.value(0, "old"), "replace's first argument"),
                let new = try string(arguments.value(1, "new"), "replace's second argument")
            else { throw fail("replace needs two string arguments") }
            let count = try integer(arguments.value(2, "count"), "replace count") ?? -1
            let text = value.renderedString.pythonReplace(old, new, count: count)
            try checkStringSize(text.utf8.count)
            return .string(text)
        case "reverse":
            if case .string(let s) = value {
                return .string(String(String.UnicodeScalarView(s.unicodeScalars.reversed())))
            }
            return .array(try iterate(value).reversed())
        case "round":
            let precision = try integer(arguments.value(0, "precision"), "round precision") ?? 0
            let method = try string(arguments.value(1, "method"), "round method") ?? "common"
            guard let number = Self.number(value) else { throw fail("round expects a number, not \(value.typeName)") }
            let scale = pow(10.0, Double(precision))
            let rule: FloatingPointRoundingRule
            switch method {
            case "common": rule = .toNearestOrAwayFromZero
            case "ceil": rule = .up
            case "floor": rule = .down
            default: throw fail("round method must be 'common', 'ceil' or 'floor'")
            }
            return .double((number.doubleValue * scale).rounded(rule) / scale)
        case "safe":
            return value
        case "sort":
            let reverse = arguments.value(0, "reverse")?.isTruthy ?? false
            let caseSensitive = arguments.value(1, "case_sensitive")?.isTruthy ?? false
            let attribute = arguments.value(2, "attribute")
            return .array(
                try sorted(
                    try iterate(value), attribute: attribute, caseSensitive: caseSensitive,
                    reverse: reverse))
        case "string":
            return .string(value.renderedString)
        case "sum":
            var total = arguments.value(1, "start") ?? .int(0)
            let attribute = arguments.value(0, "attribute")
            for item in try iterate(value) {
                let term = try attribute.map { (a) throws(JinjaError) in try attributePath(item, a) } ?? item
                total = try binary(.add, total, term)
            }
            return total
        case "tojson":
            let indentArgument = arguments.value(1, "indent") ?? arguments.keyword.first { $0.name == "indent" }?.value
            let indent = try integer(indentArgument, "tojson indent")
            let sortKeys = arguments.keyword.first { $0.name == "sort_keys" }?.value.isTruthy ?? false
            guard let text = value.json(indent: indent, sortKeys: sortKeys) else {
                throw fail("Object of type Undefined is not JSON serializable")
            }
            try checkStringSize(text.utf8.count)
            return .string(text)
        case "trim":
            let chars = try string(arguments.value(0, "chars"), "trim characters")
            return .string(value.renderedString.pythonStrip(chars, leading: true, trailing: true))
        case "unique":
            var results: [JinjaValue] = []
            let caseSensitive = arguments.value(0, "case_sensitive")?.isTruthy ?? false
            for item in try iterate(value) {
                let key = caseSensitive ? item : Self.caseFolded(item)
                if !results.contains(where: { Self.looseEquals(caseSensitive ? $0 : Self.caseFolded($0), key) }) {
                    results.append(item)
                }
            }
            return .array(results)
        case "wordcount":
            return .int(value.renderedString.pythonSplit(nil, maxSplit: -1).count)
        default:
            throw JinjaError.unknownFilter(name: name, line: line)
        }
    }

    static func caseFolded(_ value: JinjaValue) -> JinjaValue {
        if case .string(let s) = value { return .string(s.lowercased()) }
        return value
    }

    func sorted(
        _ items: [JinjaValue], attribute: JinjaValue?, caseSensitive: Bool,
        reverse: Bool
    ) throws(JinjaError) -> [JinjaValue] {
        var keyed: [(key: JinjaValue, value: JinjaValue)] = []
        for item in items {
            var key = item
            if let attribute { key = try attributePath(item, attribute) }
            if !caseSensitive { key = Self.caseFolded(key) }
            keyed.append((key, item))
        }
        // Insertion-stable merge sort with a throwing comparison.
        var failure: JinjaError?
        let result = keyed.enumerated().sorted { a, b in
            if failure != nil { return false }
            do throws(JinjaError) {
                let order = try ordering(a.element.key, b.element.key, "<")
                if order == 0 { return a.offset < b.offset }
                return reverse ? order > 0 : order < 0
            } catch {
                failure = error
                return false
            }
        }
        if let failure { throw failure }
        return result.map { $0.element.value }
    }

    // MARK: Tests

    mutating func applyTest(_ name: String, to value: JinjaValue, _ args: [JinjaValue]) throws(JinjaError) -> Bool {
        func argument() throws(JinjaError) -> JinjaValue {
            guard let first = args.first else { throw fail("test '\(name)' needs an argument") }
            return first
        }
        switch name {
        case "defined": return value != .undefined
        case "undefined": return value == .undefined
        case "none": return value == .none
        case "string": if case .string = value { return true } else { return false }
        case "number": return Self.number(value) != nil
        case "integer": if case .int = value { return true } else { return false }
        case "float": if case .double = value { return true } else { return false }
        case "boolean": if case .bool = value { return true } else { return false }
        case "true": return value == .bool(true)
        case "false": return value == .bool(false)
        case "mapping": if case .object = value { return true } else { return false }
        case "iterable", "sequence":
            switch value {
            case .array, .object, .string, .undefined: return true
            default: return false
            }
        case "callable": return false
        case "odd", "even":
            guard case .int(let i) = value else { throw fail("test '\(name)' needs an integer, not \(value.typeName)") }
            return (i % 2 != 0) == (name == "odd")
        case "divisibleby":
            guard case .int(let i) = value, case .int(let d) = try argument() else {
                throw fail("divisibleby needs integers")
            }
            guard d != 0 else { throw JinjaError.divisionByZero(line: line) }
            return i % d == 0
        case "eq", "equalto", "==": return Self.looseEquals(value, try argument())
        case "ne", "!=": return !Self.looseEquals(value, try argument())
        case "lt", "<", "lessthan": return try ordering(value, try argument(), "<") < 0
        case "gt", ">", "greaterthan": return try ordering(value, try argument(), ">") > 0
        case "le", "<=": return try ordering(value, try argument(), "<=") <= 0
        case "ge", ">=": return try ordering(value, try argument(), ">=") >= 0
        case "in": return try contains(try argument(), value)
        case "sameas": return value == (try argument())
        case "lower":
            guard case .string(let s) = value else { return false }
            return s == s.lowercased()
        case "upper":
            guard case .string(let s) = value else { return false }
            return s == s.uppercased()
        default:
            throw JinjaError.unknownTest(name: name, line: line)
        }
    }

    // MARK: Methods

    mutating func callMethod(
        _ receiver: JinjaValue, _ name: String,
        _ arguments: JinjaCallArguments
    ) throws(JinjaError) -> JinjaValue {
        let args = arguments.positional
        switch receiver {
        case .string(let s):
            return try stringMethod(s, name, arguments)
        case .object(let o):
            switch name {
            case "items": return .array(o.keys.map { .array([.string($0), o[$0] ?? .none]) })
            case "keys": return .array(o.keys.map { .string($0) })
            case "values": return .array(o.values)
            case "get":
                guard case .string(let key)? = args.first else {
                    return args.count > 1 ? args[1] : .none
                }
                return o[key] ?? (args.count > 1 ? args[1] : .none)
            case "cycle" where o["index0"] != nil && o["revindex0"] != nil:
                guard !args.isEmpty, case .int(let index)? = o["index0"] else {
                    throw fail("loop.cycle needs at least one argument")
                }
                return args[index % args.count]
            case "update", "pop", "popitem", "setdefault", "clear":
                throw fail("dict.\(name)() is not allowed: template values are immutable")
            default:
                if let member = o[name] { throw fail("'\(member.typeName)' object '\(name)' is not callable") }
                throw fail("dict has no method '\(name)'")
            }
        case .array:
            switch name {
            case "append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse":
                throw fail("list.\(name)() is not allowed: template values are immutable")
            case "index":
                let items = try iterate(receiver)
                guard let needle = args.first, let found = items.firstIndex(where: { Self.looseEquals($0, needle) })
                else { throw fail("value is not in list") }
                return .int(found)
            case "count":
                guard let needle = args.first else { throw fail("list.count() needs an argument") }
                return .int(try iterate(receiver).filter { Self.looseEquals($0, needle) }.count)
            default:
                throw fail("list has no method '\(name)'")
            }
        case .undefined:
            throw fail("cannot call '\(name)()' on an undefined value")
        default:
            throw fail("'\(receiver.typeName)' object has no method '\(name)'")
        }
    }

    func stringMethod(_ s: String, _ name: String, _ arguments: JinjaCallArguments) throws(JinjaError) -> JinjaValue {
        let args = arguments.positional
        switch name {
        case "strip", "lstrip", "rstrip":
            let chars = try string(arguments.value(0, "chars"), "\(name) characters")
            return .string(s.pythonStrip(chars, leading: name != "rstrip", trailing: name != "lstrip"))
        case "split":
            let separator = try string(arguments.value(0, "sep"), "split separator")
            if separator == "" { throw fail("empty separator in split()") }
            let maxSplit = try integer(arguments.value(1, "maxsplit"), "maxsplit") ?? -1
            return .array(s.pythonSplit(separator, maxSplit: maxSplit).map { .string($0) })
        case "splitlines":
            var lines = s.components(separatedBy: "\n")
            if lines.last == "" { lines.removeLast() }
            return .array(lines.map { .string($0.hasSuffix("\r") ? String($0.dropLast()) : $0) })
        case "startswith", "endswith":
            var candidates: [String] = []
            switch args.first {
            case .string(let p)?: candidates = [p]
            case .array(let items)?:
                for item in items {
                    guard case .string(let p) = item else { throw fail("\(name) tuple must hold strings") }
                    candidates.append(p)
                }
            default: throw fail("\(name)() needs a string or a tuple of strings")
            }
            let scalars = Array(s.unicodeScalars)
            return .bool(
                candidates.contains { candidate in
                    let c = Array(candidate.unicodeScalars)
                    return name == "startswith"
                        ? scalars.starts(with: c) : scalars.reversed().starts(with: c.reversed())
                })
        case "upper": return .string(s.uppercased())
        case "lower": return .string(s.lowercased())
        case "title": return .string(s.pythonTitle)
        case "capitalize": return .string(s.pythonCapitalize)
        case "replace":
            guard let old = try string(arguments.value(0, "old"), "replace argument"),
                let new = try string(arguments.value(1, "new"), "replace argument")
            else { throw fail("replace() needs two string arguments") }
            let count = try integer(arguments.value(2, "count"), "replace count") ?? -1
            let text = s.pythonReplace(old, new, count: count)
            try checkStringSize(text.utf8.count)
            return .string(text)
        case "find":
            guard let needle = try string(args.first, "find argument") else { throw fail("find() needs a string") }
            guard let range = s.range(of: needle) else { return .int(-1) }
            return .int(s.unicodeScalars.distance(from: s.startIndex, to: range.lowerBound))
        case "count":
            guard let needle = try string(args.first, "count argument"), !needle.isEmpty else {
                throw fail("count() needs a non-empty string")
            }
            return .int(s.components(separatedBy: needle).count - 1)
        case "join":
            var parts: [String] = []
            for item in try iterate(args.first ?? .array([])) {
                guard case .string(let p) = item else {
                    throw fail("join() items must be strings, not \(item.typeName)")
                }
                parts.append(p)
            }
            return .string(parts.joined(separator: s))
        case "isdigit":
            return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.numericType == .decimal })
        case "isalpha": return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.isAlphabetic })
        case "isspace": return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.isWhitespace })
        case "islower": return .bool(s.contains { $0.isCased } && s == s.lowercased())
        case "isupper": return .bool(s.contains { $0.isCased } && s == s.uppercased())
        default:
            throw fail("str has no method '\(name)'")
        }
    }

    // MARK: Globals

    mutating func callGlobal(_ name: String, _ arguments: JinjaCallArguments) throws(JinjaError) -> JinjaValue {
        let args = arguments.positional
        switch name {
        case "range":
            var bounds: [Int] = []
            for arg in args {
                guard let i = try integer(arg, "range argument") else {
                    throw fail("range() arguments must be integers")
                }
                bounds.append(i)
            }
            let start: Int
            let stop: Int
            let step: Int
            switch bounds.count {
            case 1: (start, stop, step) = (0, bounds[0], 1)
            case 2: (start, stop, step) = (bounds[0], bounds[1], 1)
            case 3: (start, stop, step) = (bounds[0], bounds[1], bounds[2])
            default: throw fail("range() takes 1 to 3 integer arguments, got \(bounds.count)")
            }
            guard step != 0 else { throw fail("range() step must not be zero") }
            let span = step > 0 ? Double(stop) - Double(start) : Double(start) - Double(stop)
            let count = span <= 0 ? 0 : (span / Double(abs(step))).rounded(.up)
            if count > Double(limits.maxRangeLength) {
                throw limit("range() would produce \(Int(count)) items; the limit is \(limits.maxRangeLength)")
            }
            return .array(stride(from: start, to: stop, by: step).map { .int($0) })
        case "raise_exception":
            throw JinjaError.raised(args.first?.renderedString ?? "")
        case "namespace", "dict":
            var object = JinjaObject()
            for arg in args {
                guard case .object(let o) = arg else { throw fail("\(name)() positional argument must be a dict") }
                for key in o.keys { object[key] = o[key] }
            }
            for keyword in arguments.keyword { object[keyword.name] = keyword.value }
            return name == "namespace" ? .namespace(object) : .object(object)
        case "strftime_now":
            guard let format = try string(args.first, "strftime_now format") else {
                throw fail("strftime_now() needs a format string")
            }
            var now = time(nil)
            var parts = tm()
            localtime_r(&now, &parts)
            var buffer = [CChar](repeating: 0, count: 256)
            let written = strftime(&buffer, buffer.count, format, &parts)
            return .string(String(decoding: buffer[0..<written].map { UInt8(bitPattern: $0) }, as: UTF8.self))
        default:
            throw fail("'\(name)' is undefined or not callable")
        }
    }
}
