import Foundation
import SeedTestSupport
import Testing

@testable import SeedTokenizers

/// `../shared/reference/smollm2/chat-template.json`, produced with transformers' `apply_chat_template`.
private struct SmolLMReference: Decodable {
    struct Case: Decodable {
        var name: String
        var messages: [ChatMessage]
        var add_generation_prompt: Bool
        var rendered: String
    }

    var template: String
    var bos_token: String
    var eos_token: String
    var cases: [Case]
}

private func render(_ source: String, _ context: [String: JinjaValue] = [:]) throws(JinjaError) -> String {
    try JinjaTemplate(source).render(context)
}

/// The error thrown by parsing or rendering `source`, or nil if it succeeded.
private func failure(
    _ source: String, _ context: [String: JinjaValue] = [:],
    limits: JinjaLimits = JinjaLimits()
) -> JinjaError? {
    do {
        _ = try JinjaTemplate(source, limits: limits).render(context)
        return nil
    } catch {
        return error
    }
}

@Suite("ChatTemplate SmolLM2 reference")
struct ChatTemplateSmolLMTests {
    @Test("every reference case renders to transformers' exact text")
    func smolLM2ReferenceCases() throws {
        let data = try TestPaths.referenceData("smollm2/chat-template.json")
        let reference = try JSONDecoder().decode(SmolLMReference.self, from: data)
        #expect(reference.cases.count >= 8)
        let template = try ChatTemplate(reference.template)
        for test in reference.cases {
            let rendered = try template.render(
                messages: test.messages, addGenerationPrompt: test.add_generation_prompt,
                bosToken: reference.bos_token, eosToken: reference.eos_token)
            #expect(rendered == test.rendered, "case \(test.name)")
        }
    }

    @Test("extra variables reach the template and can override the defaults")
    func extraVariables() throws {
        let template = try ChatTemplate("{{ bos_token }}{{ date }}{% for t in tools %}[{{ t.name }}]{% endfor %}")
        let tools: JinjaValue = [["name": "search"], ["name": "calc"]]
        let rendered = try template.render(
            messages: [], addGenerationPrompt: false, bosToken: "<s>", eosToken: "",
            extra: ["date": "1 Jan", "tools": tools])
        #expect(rendered == "<s>1 Jan[search][calc]")
    }
}

@Suite("ChatTemplate whitespace control")
struct ChatTemplateWhitespaceTests {
    @Test("trim_blocks removes the newline after a block tag, not after an expression")
    func trimBlocks() throws {
        #expect(try render("{% if true %}\nyes\n{% endif %}\n{{ 'x' }}\nend") == "yes\nx\nend")
    }

    @Test("lstrip_blocks strips indentation before block tags and comments only")
    func lstripBlocks() throws {
        #expect(
            try render("a\n    {% if true %}\n    b\n    {# c #}\n    {{ 'd' }}\n    {% endif %}\n")
                == "a\n    b\n    d\n")
    }

    @Test("'-' strips all whitespace on that side; '+' keeps it")
    func stripModifiers() throws {
        #expect(try render("a  \n {{- 'b' -}} \n\n c") == "abc")
        #expect(try render("x {%- if true -%} \n y {%- endif %}") == "xy")
        #expect(try render("  {%+ if true %}k{% endif +%}\nz") == "  k\nz")
        #expect(try render("a {#- note -#} b") == "ab")
    }

    @Test("one trailing newline is dropped and CRLF becomes LF, as with keep_trailing_newline=False")
    func newlines() throws {
        #expect(try render("a\r\nb\n") == "a\nb")
        #expect(try render("a\n\n") == "a\n")
    }

    @Test("raw blocks are emitted verbatim")
    func rawBlocks() throws {
        #expect(try render("{% raw %}{{ not parsed }}{% endraw %}") == "{{ not parsed }}")
    }
}

@Suite("ChatTemplate language")
struct ChatTemplateLanguageTests {
    @Test("macros with defaults and keyword arguments")
    func macros() throws {
        let source = "{% macro m(a, b='B') %}{{ a }}-{{ b }}{% endmacro %}{{ m(1) }} {{ m(2, b=3) }} {{ m(b=4, a=5) }}"
        #expect(try render(source) == "1-B 2-3 5-4")
    }

    @Test("namespace survives loop scopes; plain set does not leak out of a loop")
    func scoping() throws {
        let source =
            "{% set ns = namespace(n=0) %}{% set x = 1 %}{% for i in range(3) %}{% set ns.n = ns.n + i %}"
            + "{% set x = 99 %}{% endfor %}{{ ns.n }} {{ x }}"
        #expect(try render(source) == "3 1")
    }

    @Test("loop helpers: cycle, previtem, nextitem, revindex0, filtered loops")
    func loopHelpers() throws {
        let source =
            "{% for i in [1, 2, 3, 4] if i is even %}{{ loop.cycle('a', 'b') }}{{ loop.previtem }}"
            + "{{ loop.nextitem }}{{ loop.revindex0 }};{% endfor %}"
        #expect(try render(source) == "a41;b20;")
    }

    @Test("undefined values render empty, are falsy and iterate as empty")
    func undefinedValues() throws {
        #expect(
            try render(
                "[{{ nope }}][{{ nope.deeper }}][{% for x in nope %}x{% else %}empty{% endfor %}]"
                    + "[{{ 'y' if nope else 'n' }}][{{ nope|length }}]") == "[][][empty][n][0]")
    }

    @Test("values render like Python str()")
    func pythonRendering() throws {
        let context: [String: JinjaValue] = ["v": ["a": [1, 2.5, nil, true, "it's"]]]
        #expect(
            try render("{{ v }} {{ 1.0 }} {{ 1e20 }} {{ -0.5 }} {{ none }}", context)
                == #"{'a': [1, 2.5, None, True, "it's"]} 1.0 1e+20 -0.5 None"#)
    }

    @Test("string literal escapes")
    func stringEscapes() throws {
        #expect(try render(#"{{ 'a\nb\t\'c\' \"d\" \\ \u00e9' }}"#) == "a\nb\t'c' \"d\" \\ é")
    }

    @Test("the generation tag renders its body")
    func generationTag() throws {
        #expect(try render("{% generation %}answer{% endgeneration %}") == "answer")
    }
}

@Suite("ChatTemplate errors")
struct ChatTemplateErrorTests {
    @Test("an unclosed for loop names the tag and where it was opened")
    func unclosedFor() {
        let error = failure("line one\n{% for m in messages %}{{ m }}")
        guard case .syntax(let message, let line, _)? = error else {
            Issue.record("expected a syntax error, got \(String(describing: error))")
            return
        }
        #expect(line == 2)
        #expect(message.contains("endfor"))
        #expect(error?.description.contains("line 2") == true)
    }

    @Test("unknown tags, filters and tests are reported by name")
    func unknownNames() {
        #expect(failure("{% include 'x.html' %}") == .unknownTag(name: "include", line: 1, column: 4))
        #expect(failure("\n{{ x | frobnicate }}") == .unknownFilter(name: "frobnicate", line: 2))
        #expect(failure("{{ x is frobbed }}") == .unknownTest(name: "frobbed", line: 1))
        #expect(JinjaError.unknownFilter(name: "frobnicate", line: 2).description.contains("'frobnicate'"))
    }

    @Test(
        "malformed expressions and tags are syntax errors",
        arguments: [
            "{{ 1 + }}", "{{ (1 }}", "{{ 'unterminated }}", "{{ x", "{% if %}{% endif %}", "{% endif %}",
            "{% for in x %}{% endfor %}", "{{ a b }}", "{% set = 1 %}", "{# never closed", "{{ [1, 2 }}",
            "{% if x %}{% else %}{% else %}{% endif %}", "{% break %}", "{% if x %}{% continue %}{% endif %}",
            "{{ f(a=1, 2) }}", "{{ x[] }}", "{{ 1 ? 2 }}",
        ])
    func syntaxErrors(_ source: String) {
        let error = failure(source, ["x": 1])
        guard case .syntax? = error else {
            Issue.record("expected a syntax error for \(source), got \(String(describing: error))")
            return
        }
    }

    @Test("raise_exception surfaces the template's message")
    func raiseException() {
        let source =
            "{% if messages[0]['role'] == 'system' %}"
            + "{{ raise_exception('System role not supported') }}{% endif %}"
        #expect(
            failure(source, ["messages": [["role": "system", "content": "x"]]])
                == .raised("System role not supported"))
    }

    @Test("division and modulo by zero")
    func divisionByZero() {
        #expect(failure("{{ 1 / 0 }}") == .divisionByZero(line: 1))
        #expect(failure("\n{{ 5 // 0 }}") == .divisionByZero(line: 2))
        #expect(failure("{{ 5 % 0.0 }}") == .divisionByZero(line: 1))
    }

    @Test(
        "type errors are runtime errors, not crashes",
        arguments: [
            "{% for x in 42 %}{% endfor %}", "{{ 'a' + 1 }}", "{{ [1] < 'a' }}", "{{ 1 in 2 }}", "{{ none.x() }}",
            "{{ 'abc'.nosuch() }}", "{{ foo() }}", "{{ [1, 2].append(3) }}", "{{ 9223372036854775807 + 1 }}",
            "{{ 2 ** 64 }}", "{% set a, b = [1] %}", "{{ {'a': 1}.update({}) }}", "{% set s = 'x' %}{% set s.y = 1 %}",
            "{{ range(1, 2, 0) }}", "{{ 'x'[1.5] }}",
        ])
    func runtimeErrors(_ source: String) {
        let error = failure(source)
        guard case .runtime? = error else {
            Issue.record("expected a runtime error for \(source), got \(String(describing: error))")
            return
        }
    }

    @Test("resource limits: huge ranges, long loops, output size, recursion")
    func limits() {
        guard case .limitExceeded? = failure("{% for i in range(10**9) %}{% endfor %}") else {
            Issue.record("range(10**9) should hit the range limit")
            return
        }
        let nested =
            "{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(10) %}"
            + "{% endfor %}{% endfor %}{% endfor %}"
        guard case .limitExceeded? = failure(nested, limits: JinjaLimits(maxLoopIterations: 50_000)) else {
            Issue.record("10^7 iterations should hit a 50 000-iteration loop limit")
            return
        }
        let big = "{% for i in range(100) %}{{ 'x' * 100000 }}{% endfor %}"
        guard case .limitExceeded? = failure(big, limits: JinjaLimits(maxOutputBytes: 1_000_000)) else {
            Issue.record("a 10 MB output should hit a 1 MB limit")
            return
        }
        guard case .limitExceeded? = failure("{{ 'x' * (10 ** 12) }}") else {
            Issue.record("a terabyte string should hit the size limit")
            return
        }
        guard case .limitExceeded? = failure("{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}") else {
            Issue.record("unbounded macro recursion should hit the call-depth limit")
            return
        }
    }

    @Test("deeply nested input is rejected instead of overflowing the stack")
    func deepNesting() {
        let parens = "{{ " + String(repeating: "(", count: 10_000) + "1" + String(repeating: ")", count: 10_000) + " }}"
        guard case .syntax? = failure(parens) else {
            Issue.record("10 000 nested parentheses should be a syntax error")
            return
        }
        let blocks = String(repeating: "{% if true %}", count: 5_000) + String(repeating: "{% endif %}", count: 5_000)
        guard case .syntax? = failure(blocks) else {
            Issue.record("5 000 nested blocks should be a syntax error")
            return
        }
        let nots = "{{ " + String(repeating: "not ", count: 10_000) + "x }}"
        guard case .syntax? = failure(nots) else {
            Issue.record("10 000 chained 'not' should be a syntax error")
            return
        }
    }
}
