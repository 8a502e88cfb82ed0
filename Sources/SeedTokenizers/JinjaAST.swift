/// An expression node of a parsed template.
indirect enum JinjaExpr: Sendable {
    case literal(JinjaValue)
    case name(String)
    /// A list or tuple display.
    case list([JinjaExpr])
    case dict([(key: JinjaExpr, value: JinjaExpr)])
    case attribute(JinjaExpr, String)
    case index(JinjaExpr, JinjaExpr)
    case slice(JinjaExpr, start: JinjaExpr?, stop: JinjaExpr?, step: JinjaExpr?)
    case call(JinjaExpr, JinjaArguments)
    case filter(JinjaExpr, name: String, JinjaArguments)
    case test(JinjaExpr, name: String, JinjaArguments, negated: Bool)
    case negate(JinjaExpr)
    case plus(JinjaExpr)
    case not(JinjaExpr)
    case and(JinjaExpr, JinjaExpr)
    case or(JinjaExpr, JinjaExpr)
    case binary(JinjaBinaryOperator, JinjaExpr, JinjaExpr)
    /// A comparison chain `a < b <= c`, evaluated like Python.
    case compare(JinjaExpr, [(op: JinjaCompareOperator, rhs: JinjaExpr)])
    /// `then if condition else otherwise`; a missing `else` yields undefined.
    case conditional(condition: JinjaExpr, then: JinjaExpr, otherwise: JinjaExpr?)
}

/// Positional and keyword arguments of a call, filter or test.
struct JinjaArguments: Sendable {
    var positional: [JinjaExpr] = []
    var keyword: [(name: String, value: JinjaExpr)] = []
}

enum JinjaBinaryOperator: String, Sendable {
    case add = "+"
    case subtract = "-"
    case multiply = "*"
    case divide = "/"
    case floorDivide = "//"
    case modulo = "%"
    case power = "**"
    case concat = "~"
}

enum JinjaCompareOperator: String, Sendable {
    case equal = "=="
    case notEqual = "!="
    case less = "<"
    case lessEqual = "<="
    case greater = ">"
    case greaterEqual = ">="
    case contains = "in"
    case notContains = "not in"
}

/// The left-hand side of `{% set %}`.
enum JinjaSetTarget: Sendable {
    /// One name, or several for tuple unpacking.
    case names([String])
    /// `namespace.attribute`.
    case attribute(String, String)
}

/// A statement node of a parsed template.
indirect enum JinjaNode: Sendable {
    case text(String)
    case output(JinjaExpr, line: Int)
    case conditional(branches: [(condition: JinjaExpr, body: [JinjaNode])], otherwise: [JinjaNode], line: Int)
    case forLoop(JinjaForLoop)
    case set(JinjaSetTarget, JinjaExpr, line: Int)
    /// `{% set name %}…{% endset %}`, optionally filtered.
    case setBlock(String, body: [JinjaNode], filters: [(name: String, arguments: JinjaArguments)], line: Int)
    case macro(JinjaMacro)
    case filterBlock(filters: [(name: String, arguments: JinjaArguments)], body: [JinjaNode], line: Int)
    case breakLoop(line: Int)
    case continueLoop(line: Int)
}

struct JinjaForLoop: Sendable {
    var targets: [String]
    var iterable: JinjaExpr
    var condition: JinjaExpr?
    var body: [JinjaNode]
    var otherwise: [JinjaNode]
    var line: Int
}

struct JinjaMacro: Sendable {
    var name: String
    var parameters: [(name: String, defaultValue: JinjaExpr?)]
    var body: [JinjaNode]
    var line: Int
}
