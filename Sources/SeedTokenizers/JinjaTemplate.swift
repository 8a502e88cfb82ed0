/// A parsed Jinja2 template, rendered with the semantics Hugging Face transformers uses for chat templates:
/// a sandboxed environment with `trim_blocks` and `lstrip_blocks` on, the `loopcontrols` extension
/// (`break`/`continue`), and the `raise_exception`, `tojson`, `namespace`, `range` and `strftime_now` helpers.
///
/// Parsing happens once in ``init(_:limits:)``; ``render(_:)`` can then be called any number of times,
/// from any thread. Rendering never traps: malformed templates, type errors, undefined callables, runaway
/// loops and recursion all surface as ``JinjaError``.
public struct JinjaTemplate: Sendable {
    private let nodes: [JinjaNode]
    /// The resource limits applied by ``render(_:)``.
    public let limits: JinjaLimits

    /// Parses `source`, throwing ``JinjaError/syntax(message:line:column:)``,
    /// ``JinjaError/unknownTag(name:line:column:)``, ``JinjaError/unknownFilter(name:line:)`` or
    /// ``JinjaError/unknownTest(name:line:)`` for invalid templates.
    public init(_ source: String, limits: JinjaLimits = JinjaLimits()) throws(JinjaError) {
        nodes = try JinjaParser.parse(source)
        self.limits = limits
    }

    /// Renders the template with `context` as its variables.
    public func render(_ context: [String: JinjaValue]) throws(JinjaError) -> String {
        var renderer = JinjaRenderer(context: context, limits: limits)
        let flow = try renderer.render(nodes)
        if flow != .normal {
            throw JinjaError.runtime(message: "'break' or 'continue' outside of a loop", line: renderer.line)
        }
        return renderer.output
    }
}
