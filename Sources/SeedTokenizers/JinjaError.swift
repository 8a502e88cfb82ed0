/// Errors thrown while parsing or rendering a Jinja template (see ``JinjaTemplate`` and ``ChatTemplate``).
///
/// Every case says where the problem is (a 1-based line, and for syntax errors a 1-based column counted in
/// UTF-8 bytes) and what was expected; `description` renders a one-line human-readable message.
public enum JinjaError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The template text is malformed: an unterminated tag or string, an unexpected token, a missing `end…` tag.
    case syntax(message: String, line: Int, column: Int)
    /// A `{% … %}` tag whose name is not a supported statement.
    case unknownTag(name: String, line: Int, column: Int)
    /// A `|name` filter that this implementation does not provide.
    case unknownFilter(name: String, line: Int)
    /// An `is name` test that this implementation does not provide.
    case unknownTest(name: String, line: Int)
    /// A value had the wrong type for an operation, a function received bad arguments, or a name is not callable.
    case runtime(message: String, line: Int)
    /// Division or modulo by zero.
    case divisionByZero(line: Int)
    /// The template called `raise_exception(message)`.
    case raised(String)
    /// Rendering exceeded a resource limit (loop iterations, output size, range size, recursion depth).
    case limitExceeded(message: String, line: Int)

    public var description: String {
        switch self {
        case .syntax(let message, let line, let column):
            return "template syntax error at line \(line), column \(column): \(message)"
        case .unknownTag(let name, let line, let column):
            return "unknown tag '\(name)' at line \(line), column \(column)"
        case .unknownFilter(let name, let line):
            return "unknown filter '\(name)' at line \(line)"
        case .unknownTest(let name, let line):
            return "unknown test '\(name)' at line \(line)"
        case .runtime(let message, let line):
            return "template error at line \(line): \(message)"
        case .divisionByZero(let line):
            return "division by zero at line \(line)"
        case .raised(let message):
            return "template raised an exception: \(message)"
        case .limitExceeded(let message, let line):
            return "template limit exceeded at line \(line): \(message)"
        }
    }
}
