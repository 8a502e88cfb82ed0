import Foundation

/// Resource limits applied while rendering, so that no template can run away with time or memory.
public struct JinjaLimits: Sendable, Equatable {
    /// Total loop iterations across the whole render.
    public var maxLoopIterations: Int
    /// Largest number of items `range(...)` may produce (Jinja's sandbox uses 100 000).
    public var maxRangeLength: Int
    /// Largest rendered output, and largest single string value, in UTF-8 bytes.
    public var maxOutputBytes: Int
    /// Deepest nesting of macro calls.
    public var maxCallDepth: Int

    /// Creates limits; the defaults comfortably fit every real chat template.
    public init(
        maxLoopIterations: Int = 1_000_000, maxRangeLength: Int = 100_000, maxOutputBytes: Int = 16 << 20,
        maxCallDepth: Int = 32
    ) {
        self.maxLoopIterations = maxLoopIterations
        self.maxRangeLength = maxRangeLength
        self.maxOutputBytes = maxOutputBytes
        self.maxCallDepth = maxCallDepth
    }
}

/// How a block finished: normally, or through `{% break %}` / `{% continue %}`.
enum JinjaFlow {
    case normal, breakLoop, continueLoop
}

/// Evaluated call arguments.
struct JinjaCallArguments {
    var positional: [JinjaValue]
    var keyword: [(name: String, value: JinjaValue)]

    /// The argument at `position`, or the keyword argument `name`, or nil.
    func value(_ position: Int, _ name: String) -> JinjaValue? {
        if position < positional.count { return positional[position] }
        return keyword.first { $0.name == name }?.value
    }
}

/// Tree-walking evaluator for a parsed template. One instance renders one template once.
struct JinjaRenderer {
    let limits: JinjaLimits
    var frames: [[String: JinjaValue]]
    var macros: [String: JinjaMacro] = [:]
    var output = ""
    var line = 1
    var iterations = 0
    var callDepth = 0

    init(context: [String: JinjaValue], limits: JinjaLimits) {
        self.limits = limits
        frames = [context]
    }

    func fail(_ message: String) -> JinjaError {
        .runtime(message: message, line: line)
    }

    func limit(_ message: String) -> JinjaError {
        .limitExceeded(message: message, line: line)
    }

    // MARK: Statements

    mutating func render(_ nodes: [JinjaNode]) throws(JinjaError) -> JinjaFlow {
        for node in nodes {
            switch node {
            case .text(let text):
                try emit(text)
            case .output(let expr, let line):
                self.line = line
                try emit(try evaluate(expr).renderedString)
            case .conditional(let branches, let otherwise, let line):
                self.line = line
                var chosen = otherwise
                for branch in branches {
                    if try evaluate(branch.condition).isTruthy {
                        chosen = branch.body
                        break
                    }
                }
                let flow = try render(chosen)
                if flow != .normal { return flow }
            case .forLoop(let loop):
                try renderFor(loop)
            case .set(let target, let expr, let line):
                self.line = line
                try assign(target, try evaluate(expr))
            case .setBlock(let name, let body, let filters, let line):
                var value = JinjaValue.string(try capture(body))
                self.line = line
                for filter in filters {
                    value = try applyFilter(filter.name, to: value, try evaluateArguments(filter.arguments))
                }
                frames[frames.count - 1][name] = value
            case .macro(let macro):
                macros[macro.name] = macro
            case .filterBlock(let filters, let body, let line):
                var value = JinjaValue.string(try capture(body))
                self.line = line
                for filter in filters {
                    value = try applyFilter(filter.name, to: value, try evaluateArguments(filter.arguments))
                }
                try emit(value.renderedString)
            case .breakLoop(let line):
                self.line = line
                return .breakLoop
            case .continueLoop(let line):
                self.line = line
                return .continueLoop
            }
        }
        return .normal
    }

    mutating func emit(_ text: String) throws(JinjaError) {
        output += text
        if output.utf8.count > limits.maxOutputBytes {
            throw limit("output is larger than \(limits.maxOutputBytes) bytes")
        }
    }

    /// Renders `nodes` into a separate buffer and returns it.
    mutating func capture(_ nodes: [JinjaNode]) throws(JinjaError) -> String {
        let saved = output
        output = ""
        defer { output = saved }
        frames.append([:])
        defer { frames.removeLast() }
        let flow = try render(nodes)
        if flow != .normal { throw fail("'break' or 'continue' outside of a loop") }
        return output
    }

    mutating func assign(_ target: JinjaSetTarget, _ value: JinjaValue) throws(JinjaError) {
        switch target {
        case .names(let names):
            if names.count == 1 {
                frames[frames.count - 1][names[0]] = value
                return
            }
            let items = try unpack(value, count: names.count)
            for (name, item) in zip(names, items) { frames[frames.count - 1][name] = item }
        case .attribute(let name, let attribute):
            for index in frames.indices.reversed() {
                guard let holder = frames[index][name] else { continue }
                guard case .namespace(var object) = holder else {
                    throw fail(
                        "cannot set attribute '\(attribute)' on '\(name)' of type \(holder.typeName); "
                            + "only namespace() objects can be assigned to")
                }
                object[attribute] = value
                frames[index][name] = .namespace(object)
                return
            }
            throw fail("cannot set '\(name).\(attribute)': '\(name)' is undefined")
        }
    }

    func unpack(_ value: JinjaValue, count: Int) throws(JinjaError) -> [JinjaValue] {
        let items = try iterate(value)
        guard items.count == count else {
            throw fail("cannot unpack \(items.count) value(s) into \(count) variable(s)")
        }
        return items
    }

    mutating func renderFor(_ loop: JinjaForLoop) throws(JinjaError) {
        line = loop.line
        var items = try iterate(try evaluate(loop.iterable))
        if let condition = loop.condition {
            var kept: [JinjaValue] = []
            for item in items {
                try countIteration()
                frames.append(try bindTargets(loop.targets, item))
                let keep = try evaluate(condition).isTruthy
                frames.removeLast()
                if keep { kept.append(item) }
            }
            items = kept
        }
        if items.isEmpty {
            _ = try render(loop.otherwise)
            return
        }
        let length = items.count
        for (index, item) in items.enumerated() {
            try countIteration()
            var frame = try bindTargets(loop.targets, item)
            frame["loop"] = .object(
                JinjaObject([
                    ("index", .int(index + 1)), ("index0", .int(index)),
                    ("revindex", .int(length - index)), ("revindex0", .int(length - index - 1)),
                    ("first", .bool(index == 0)), ("last", .bool(index == length - 1)),
                    ("length", .int(length)), ("depth", .int(1)), ("depth0", .int(0)),
                    ("previtem", index > 0 ? items[index - 1] : .undefined),
                    ("nextitem", index + 1 < length ? items[index + 1] : .undefined),
                ]))
            frames.append(frame)
            let flow = try render(loop.body)
            frames.removeLast()
            if flow == .breakLoop { break }
        }
    }

    mutating func countIteration() throws(JinjaError) {
        iterations += 1
        if iterations > limits.maxLoopIterations {
            throw limit("more than \(limits.maxLoopIterations) loop iterations")
        }
    }

    func bindTargets(_ targets: [String], _ item: JinjaValue) throws(JinjaError) -> [String: JinjaValue] {
        if targets.count == 1 { return [targets[0]: item] }
        var frame: [String: JinjaValue] = [:]
        for (name, value) in zip(targets, try unpack(item, count: targets.count)) { frame[name] = value }
        return frame
    }

    /// The items a `for` loop visits: list items, dict keys, string characters; undefined iterates as empty.
    func iterate(_ value: JinjaValue) throws(JinjaError) -> [JinjaValue] {
        switch value {
        case .undefined: return []
        case .array(let items): return items
        case .object(let o): return o.keys.map { .string($0) }
        case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
        default: throw fail("'\(value.typeName)' object is not iterable")
        }
    }

    // MARK: Expressions

    func lookup(_ name: String) -> JinjaValue {
        for frame in frames.reversed() {
            if let value = frame[name] { return value }
        }
        return .undefined
    }

    mutating func evaluate(_ expr: JinjaExpr) throws(JinjaError) -> JinjaValue {
        switch expr {
        case .literal(let value):
            return value
        case .name(let name):
            return lookup(name)
        case .list(let items):
            var values: [JinjaValue] = []
            values.reserveCapacity(items.count)
            for item in items { values.append(try evaluate(item)) }
            return .array(values)
        case .dict(let pairs):
            var object = JinjaObject()
            for pair in pairs {
                let key = try evaluate(pair.key)
                guard case .string(let k) = key else {
                    object[key.renderedString] = try evaluate(pair.value)
                    continue
                }
                object[k] = try evaluate(pair.value)
            }
            return .object(object)
        case .attribute(let base, let name):
            return attribute(try evaluate(base), name)
        case .index(let base, let key):
            return try item(try evaluate(base), try evaluate(key))
        case .slice(let base, let start, let stop, let step):
            let value = try evaluate(base)
            return try slice(
                value, try evaluateOptional(start), try evaluateOptional(stop),
                try evaluateOptional(step))
        case .call(let callee, let arguments):
            return try call(callee, try evaluateArguments(arguments))
        case .filter(let base, let name, let arguments):
            let value = try evaluate(base)
            return try applyFilter(name, to: value, try evaluateArguments(arguments))
        case .test(let base, let name, let arguments, let negated):
            let value = try evaluate(base)
            let result = try applyTest(name, to: value, try evaluateArguments(arguments).positional)
            return .bool(result != negated)
        case .negate(let operand):
            switch try evaluate(operand) {
            case .int(let i):
                guard i != Int.min else { throw fail("integer overflow in negation") }
                return .int(-i)
            case .double(let d): return .double(-d)
            case .bool(let b): return .int(b ? -1 : 0)
            case let other: throw fail("bad operand type for unary -: '\(other.typeName)'")
            }
        case .plus(let operand):
            let value = try evaluate(operand)
            switch value {
            case .int, .double: return value
            case .bool(let b): return .int(b ? 1 : 0)
            default: throw fail("bad operand type for unary +: '\(value.typeName)'")
            }
        case .not(let operand):
            return .bool(!(try evaluate(operand).isTruthy))
        case .and(let lhs, let rhs):
            let left = try evaluate(lhs)
            return left.isTruthy ? try evaluate(rhs) : left
        case .or(let lhs, let rhs):
            let left = try evaluate(lhs)
            return left.isTruthy ? left : try evaluate(rhs)
        case .binary(let op, let lhs, let rhs):
            return try binary(op, try evaluate(lhs), try evaluate(rhs))
        case .compare(let first, let chain):
            var left = try evaluate(first)
            for link in chain {
                let right = try evaluate(link.rhs)
                if !(try compare(link.op, left, right)) { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .conditional(let condition, let then, let otherwise):
            if try evaluate(condition).isTruthy { return try evaluate(then) }
            guard let otherwise else { return .undefined }
            return try evaluate(otherwise)
        }
    }

    mutating func evaluateOptional(_ expr: JinjaExpr?) throws(JinjaError) -> JinjaValue? {
        guard let expr else { return nil }
        return try evaluate(expr)
    }

    mutating func evaluateArguments(_ arguments: JinjaArguments) throws(JinjaError) -> JinjaCallArguments {
        var positional: [JinjaValue] = []
        for argument in arguments.positional { positional.append(try evaluate(argument)) }
        var keyword: [(name: String, value: JinjaValue)] = []
        for argument in arguments.keyword { keyword.append((argument.name, try evaluate(argument.value))) }
        return JinjaCallArguments(positional: positional, keyword: keyword)
    }

    /// `value.name`: dict keys (and namespace attributes); undefined for anything missing.
    func attribute(_ value: JinjaValue, _ name: String) -> JinjaValue {
        switch value {
        case .object(let o), .namespace(let o): return o[name] ?? .undefined
        default: return .undefined
        }
    }

    /// `value[key]`: list/string indexing (negative from the end), dict lookup; undefined when missing.
    func item(_ value: JinjaValue, _ key: JinjaValue) throws(JinjaError) -> JinjaValue {
        switch (value, key) {
        case (.object(let o), .string(let k)), (.namespace(let o), .string(let k)):
            return o[k] ?? .undefined
        case (.object, _), (.namespace, _):
            return .undefined
        case (.array(let items), .int(let i)):
            let index = i < 0 ? items.count + i : i
            return items.indices.contains(index) ? items[index] : .undefined
        case (.string(let s), .int(let i)):
            let scalars = Array(s.unicodeScalars)
            let index = i < 0 ? scalars.count + i : i
            return scalars.indices.contains(index) ? .string(String(scalars[index])) : .undefined
        case (.array, .bool(let b)):
            return try item(value, .int(b ? 1 : 0))
        case (.undefined, _):
            return .undefined
        case (.array, _), (.string, _):
            throw fail("\(value.typeName) indices must be integers, not \(key.typeName)")
        default:
            throw fail("'\(value.typeName)' object is not subscriptable")
        }
    }

    func slice(
        _ value: JinjaValue, _ start: JinjaValue?, _ stop: JinjaValue?,
        _ step: JinjaValue?
    ) throws(JinjaError) -> JinjaValue {
        func bound(_ v: JinjaValue?) throws(JinjaError) -> Int? {
            switch v {
            case nil, .none?: return nil
            case .int(let i)?: return i
            case let other?: throw fail("slice indices must be integers or None, not \(other.typeName)")
            }
        }
        let stepValue = try bound(step) ?? 1
        guard stepValue != 0 else { throw fail("slice step cannot be zero") }
        func indices(_ count: Int) throws(JinjaError) -> [Int] {
            func clamp(_ i: Int?, _ defaultValue: Int) -> Int {
                guard let i else { return defaultValue }
                var index = i < 0 ? i + count : i
                if stepValue > 0 {
                    index = min(max(index, 0), count)
                } else {
                    index = min(max(index, -1), count - 1)
                }
                return index
            }
            let lower = clamp(try bound(start), stepValue > 0 ? 0 : count - 1)
            let upper = clamp(try bound(stop), stepValue > 0 ? count : -1)
            return Array(stride(from: lower, to: upper, by: stepValue))
        }
        switch value {
        case .array(let items):
            return .array(try indices(items.count).map { items[$0] })
        case .string(let s):
            let scalars = Array(s.unicodeScalars)
            var out = String.UnicodeScalarView()
            for index in try indices(scalars.count) { out.append(scalars[index]) }
            return .string(String(out))
        case .undefined:
            return .undefined
        default:
            throw fail("'\(value.typeName)' object is not subscriptable")
        }
    }

    // MARK: Operators

    func binary(_ op: JinjaBinaryOperator, _ lhs: JinjaValue, _ rhs: JinjaValue) throws(JinjaError) -> JinjaValue {
        if op == .concat {
            let text = lhs.renderedString + rhs.renderedString
            try checkStringSize(text.utf8.count)
            return .string(text)
        }
        switch (op, lhs, rhs) {
        case (.add, .string(let a), .string(let b)):
            try checkStringSize(a.utf8.count + b.utf8.count)
            return .string(a + b)
        case (.add, .array(let a), .array(let b)):
            return .array(a + b)
        case (.multiply, .string(let s), .int(let n)), (.multiply, .int(let n), .string(let s)):
            let (size, overflow) = s.utf8.count.multipliedReportingOverflow(by: max(n, 0))
            if overflow { throw limit("string repetition is too large") }
            try checkStringSize(size)
            return .string(String(repeating: s, count: max(n, 0)))
        case (.multiply, .array(let a), .int(let n)), (.multiply, .int(let n), .array(let a)):
            let (size, overflow) = a.count.multipliedReportingOverflow(by: max(n, 0))
            if overflow || size > limits.maxRangeLength { throw limit("list repetition is too large") }
            var out: [JinjaValue] = []
            for _ in 0..<max(n, 0) { out += a }
            return .array(out)
        default:
            break
        }
        guard let a = Self.number(lhs), let b = Self.number(rhs) else {
            throw fail("unsupported operand types for \(op.rawValue): '\(lhs.typeName)' and '\(rhs.typeName)'")
        }
        switch (a, b) {
        case (.int(let x), .int(let y)):
            return try integerArithmetic(op, x, y)
        default:
            return try floatArithmetic(op, a.doubleValue, b.doubleValue)
        }
    }

    func checkStringSize(_ size: Int) throws(JinjaError) {
        if size > limits.maxOutputBytes { throw limit("string value is larger than \(limits.maxOutputBytes) bytes") }
    }

    enum Number {
        case int(Int)
        case double(Double)
        var doubleValue: Double {
            switch self {
            case .int(let i): return Double(i)
            case .double(let d): return d
            }
        }
    }

    static func number(_ value: JinjaValue) -> Number? {
        switch value {
        case .int(let i): return .int(i)
        case .double(let d): return .double(d)
        case .bool(let b): return .int(b ? 1 : 0)
        default: return nil
        }
    }

    func integerArithmetic(_ op: JinjaBinaryOperator, _ x: Int, _ y: Int) throws(JinjaError) -> JinjaValue {
        func checked(_ result: (partialValue: Int, overflow: Bool)) throws(JinjaError) -> JinjaValue {
            if result.overflow { throw fail("integer overflow in '\(op.rawValue)'") }
            return .int(result.partialValue)
        }
        switch op {
        case .add: return try checked(x.addingReportingOverflow(y))
        case .subtract: return try checked(x.subtractingReportingOverflow(y))
        case .multiply: return try checked(x.multipliedReportingOverflow(by: y))
        case .divide:
            guard y != 0 else { throw JinjaError.divisionByZero(line: line) }
            return .double(Double(x) / Double(y))
        case .floorDivide, .modulo:
            guard y != 0 else { throw JinjaError.divisionByZero(line: line) }
            if x == Int.min && y == -1 { throw fail("integer overflow in '\(op.rawValue)'") }
            var quotient = x / y
            var remainder = x % y
            if remainder != 0 && ((remainder < 0) != (y < 0)) {
                quotient -= 1
                remainder += y
            }
            return .int(op == .floorDivide ? quotient : remainder)
        case .power:
            if y < 0 { return .double(pow(Double(x), Double(y))) }
            var result = 1
            var base = x
            var exponent = y
            while exponent > 0 {
                if exponent & 1 == 1 {
                    let (r, o) = result.multipliedReportingOverflow(by: base)
                    if o { throw fail("integer overflow in '**'") }
                    result = r
                }
                exponent >>= 1
                if exponent > 0 {
                    let (b, o) = base.multipliedReportingOverflow(by: base)
                    if o { throw fail("integer overflow in '**'") }
                    base = b
                }
            }
            return .int(result)
        case .concat:
            return .string(String(x) + String(y))
        }
    }

    func floatArithmetic(_ op: JinjaBinaryOperator, _ x: Double, _ y: Double) throws(JinjaError) -> JinjaValue {
        switch op {
        case .add: return .double(x + y)
        case .subtract: return .double(x - y)
        case .multiply: return .double(x * y)
        case .divide:
            guard y != 0 else { throw JinjaError.divisionByZero(line: line) }
            return .double(x / y)
        case .floorDivide:
            guard y != 0 else { throw JinjaError.divisionByZero(line: line) }
            return .double((x / y).rounded(.down))
        case .modulo:
            guard y != 0 else { throw JinjaError.divisionByZero(line: line) }
            let r = x.truncatingRemainder(dividingBy: y)
            return .double(r != 0 && ((r < 0) != (y < 0)) ? r + y : r)
        case .power: return .double(pow(x, y))
        case .concat: return .string(JinjaValue.pythonFloat(x) + JinjaValue.pythonFloat(y))
        }
    }

    /// Python `==`: numbers compare by value (including booleans), containers element-wise.
    static func looseEquals(_ lhs: JinjaValue, _ rhs: JinjaValue) -> Bool {
        switch (lhs, rhs) {
        case (.array(let a), .array(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { looseEquals($0, $1) }
        case (.object(let a), .object(let b)):
            return a.count == b.count
                && a.keys.allSatisfy { key in
                    guard let x = a[key], let y = b[key] else { return false }
                    return looseEquals(x, y)
                }
        default:
            if let x = number(lhs), let y = number(rhs) {
                if case .int(let i) = x, case .int(let j) = y { return i == j }
                return x.doubleValue == y.doubleValue
            }
            return lhs == rhs
        }
    }

    func compare(_ op: JinjaCompareOperator, _ lhs: JinjaValue, _ rhs: JinjaValue) throws(JinjaError) -> Bool {
        switch op {
        case .equal: return Self.looseEquals(lhs, rhs)
        case .notEqual: return !Self.looseEquals(lhs, rhs)
        case .contains: return try contains(rhs, lhs)
        case .notContains: return !(try contains(rhs, lhs))
        case .less, .lessEqual, .greater, .greaterEqual:
            let order = try ordering(lhs, rhs, op.rawValue)
            switch op {
            case .less: return order < 0
            case .lessEqual: return order <= 0
            case .greater: return order > 0
            default: return order >= 0
            }
        }
    }

    /// -1, 0 or 1 for orderable pairs (numbers, strings, lists); a type error otherwise.
    func ordering(_ lhs: JinjaValue, _ rhs: JinjaValue, _ symbol: String) throws(JinjaError) -> Int {
        if let x = Self.number(lhs), let y = Self.number(rhs) {
            if case .int(let i) = x, case .int(let j) = y { return i < j ? -1 : (i == j ? 0 : 1) }
            let a = x.doubleValue
            let b = y.doubleValue
            return a < b ? -1 : (a == b ? 0 : 1)
        }
        switch (lhs, rhs) {
        case (.string(let a), .string(let b)):
            if a == b { return 0 }
            return a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars) ? -1 : 1
        case (.array(let a), .array(let b)):
            for (x, y) in zip(a, b) where !Self.looseEquals(x, y) {
                return try ordering(x, y, symbol)
            }
            return a.count < b.count ? -1 : (a.count == b.count ? 0 : 1)
        default:
            throw fail("'\(symbol)' not supported between instances of '\(lhs.typeName)' and '\(rhs.typeName)'")
        }
    }

    /// Python `needle in container`.
    func contains(_ container: JinjaValue, _ needle: JinjaValue) throws(JinjaError) -> Bool {
        switch container {
        case .array(let items): return items.contains { Self.looseEquals($0, needle) }
        case .object(let o), .namespace(let o):
            guard case .string(let key) = needle else { return false }
            return o[key] != nil
        case .string(let s):
            guard case .string(let sub) = needle else {
                throw fail("'in <string>' requires string as left operand, not \(needle.typeName)")
            }
            return sub.isEmpty || s.contains(sub)
        case .undefined: return false
        default: throw fail("argument of type '\(container.typeName)' is not iterable")
        }
    }

    // MARK: Calls

    mutating func call(_ callee: JinjaExpr, _ arguments: JinjaCallArguments) throws(JinjaError) -> JinjaValue {
        switch callee {
        case .attribute(let base, let name):
            let receiver = try evaluate(base)
            return try callMethod(receiver, name, arguments)
        case .name(let name):
            let bound = lookup(name)
            if bound == .undefined, let macro = macros[name] {
                return try callMacro(macro, arguments)
            }
            if bound == .undefined {
                return try callGlobal(name, arguments)
            }
            throw fail("'\(name)' of type \(bound.typeName) is not callable")
        default:
            let value = try evaluate(callee)
            throw fail("'\(value.typeName)' object is not callable")
        }
    }

    mutating func callMacro(_ macro: JinjaMacro, _ arguments: JinjaCallArguments) throws(JinjaError) -> JinjaValue {
        guard callDepth < limits.maxCallDepth else {
            throw limit("macro calls nested deeper than \(limits.maxCallDepth) (runaway recursion in '\(macro.name)'?)")
        }
        guard arguments.positional.count <= macro.parameters.count else {
            throw fail(
                "macro '\(macro.name)' takes \(macro.parameters.count) argument(s), "
                    + "got \(arguments.positional.count)")
        }
        for keyword in arguments.keyword where !macro.parameters.contains(where: { $0.name == keyword.name }) {
            throw fail("macro '\(macro.name)' has no parameter named '\(keyword.name)'")
        }
        let callerLine = line
        let savedFrames = frames
        let savedOutput = output
        frames = [frames[0], [:]]
        for (index, parameter) in macro.parameters.enumerated() {
            var value: JinjaValue = .undefined
            if let given = arguments.value(index, parameter.name) {
                value = given
            } else if let defaultValue = parameter.defaultValue {
                value = try evaluate(defaultValue)
            }
            frames[1][parameter.name] = value
        }
        output = ""
        callDepth += 1
        defer { callDepth -= 1 }
        let flow: JinjaFlow
        do {
            flow = try render(macro.body)
        } catch {
            frames = savedFrames
            output = savedOutput
            throw error
        }
        let result = output
        let global = frames[0]
        frames = savedFrames
        frames[0] = global
        output = savedOutput
        line = callerLine
        if flow != .normal { throw fail("'break' or 'continue' outside of a loop in macro '\(macro.name)'") }
        return .string(result)
    }
}
