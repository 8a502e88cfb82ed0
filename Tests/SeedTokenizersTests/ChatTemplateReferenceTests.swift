import Testing

@testable import SeedTokenizers

// Expected outputs below were produced by Python jinja2 3.1.6 configured exactly like Hugging Face transformers:
//
//   import json
//   from jinja2.sandbox import ImmutableSandboxedEnvironment
//   from jinja2.exceptions import TemplateError
//   def raise_exception(message): raise TemplateError(message)
//   def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
//       return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
//   env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
//                                       extensions=["jinja2.ext.loopcontrols"])
//   env.filters["tojson"] = tojson
//   env.globals["raise_exception"] = raise_exception
//   env.from_string(TEMPLATE).render(messages=MESSAGES, add_generation_prompt=AGP,
//                                    bos_token="<s>", eos_token="</s>")
//
// (a raised TemplateError's message becomes `.raised(...)`). The templates are the published chat templates of
// Llama 3 Instruct, Llama 3.1 Instruct, Mistral Instruct v0.1, Qwen2 Instruct, Gemma Instruct, Zephyr, Llama 2
// Chat and Phi-3, plus `features`, a synthetic template that exercises most of the supported language.

/// One rendering of a reference template and what jinja2 produced for it.
struct ReferenceCase: Sendable, CustomTestStringConvertible {
    enum Expected: Sendable {
        case rendered(String)
        case raised(String)
    }

    var template: String
    var name: String
    var addGenerationPrompt: Bool
    var messages: [ChatMessage]
    var expected: Expected

    var testDescription: String { "\(template): \(name)" }
}

@Suite("ChatTemplate reference templates")
struct ChatTemplateReferenceTests {
    @Test("renders exactly like jinja2", arguments: ChatTemplateReferenceData.cases)
    func rendersLikeJinja2(_ reference: ReferenceCase) throws {
        let source = try #require(ChatTemplateReferenceData.templates[reference.template])
        let template = try ChatTemplate(source)
        let result = Result { () throws(JinjaError) -> String in
            try template.render(
                messages: reference.messages, addGenerationPrompt: reference.addGenerationPrompt,
                bosToken: "<s>", eosToken: "</s>")
        }
        switch reference.expected {
        case .rendered(let expected):
            let rendered = try result.get()
            #expect(rendered == expected)
        case .raised(let message):
            #expect(throws: JinjaError.raised(message)) { try result.get() }
        }
    }
}

// swiftlint:disable line_length
enum ChatTemplateReferenceData {
    static let templates: [String: String] = [
        "llama3": #"""
        {% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}
        """#,
        "mistral": #"""
        {{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}
        """#,
        "qwen2": #"""
        {% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}
        """#,
        "gemma": #"""
        {{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}
        """#,
        "zephyr": #"""
        {% for message in messages %}
        {% if message['role'] == 'user' %}
        {{ '<|user|>\n' + message['content'] + eos_token }}
        {% elif message['role'] == 'system' %}
        {{ '<|system|>\n' + message['content'] + eos_token }}
        {% elif message['role'] == 'assistant' %}
        {{ '<|assistant|>\n'  + message['content'] + eos_token }}
        {% endif %}
        {% if loop.last and add_generation_prompt %}
        {{ '<|assistant|>' }}
        {% endif %}
        {% endfor %}
        """#,
        "llama2": #"""
        {% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}
        """#,
        "phi3": #"""
        {% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>
        ' + message['content'] + '<|end|>
        '}}{% elif message['role'] == 'user' %}{{'<|user|>
        ' + message['content'] + '<|end|>
        '}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>
        ' + message['content'] + '<|end|>
        '}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>
        ' }}{% else %}{{ eos_token }}{% endif %}
        """#,
        "llama31": #"""
        {{- bos_token }}
        {%- if custom_tools is defined %}
            {%- set tools = custom_tools %}
        {%- endif %}
        {%- if not tools_in_user_message is defined %}
            {%- set tools_in_user_message = true %}
        {%- endif %}
        {%- if not date_string is defined %}
            {%- set date_string = "26 Jul 2024" %}
        {%- endif %}
        {%- if not tools is defined %}
            {%- set tools = none %}
        {%- endif %}

        {#- This block extracts the system message, so we can slot it into the right place. #}
        {%- if messages[0]['role'] == 'system' %}
            {%- set system_message = messages[0]['content']|trim %}
            {%- set messages = messages[1:] %}
        {%- else %}
            {%- set system_message = "" %}
        {%- endif %}

        {#- System message + builtin tools #}
        {{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
        {%- if builtin_tools is defined or tools is not none %}
            {{- "Environment: ipython\n" }}
        {%- endif %}
        {{- "Cutting Knowledge Date: December 2023\n" }}
        {{- "Today Date: " + date_string + "\n\n" }}
        {%- if tools is not none and not tools_in_user_message %}
            {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
            {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
            {{- "Do not use variables.\n\n" }}
            {%- for t in tools %}
                {{- t | tojson(indent=4) }}
                {{- "\n\n" }}
            {%- endfor %}
        {%- endif %}
        {{- system_message }}
        {{- "<|eot_id|>" }}

        {%- for message in messages %}
            {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
                {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
            {%- elif message.role in ["ipython", "tool"] %}
                {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
                {%- if message.content is mapping or message.content is iterable %}
                    {{- message.content | tojson }}
                {%- else %}
                    {{- message.content }}
                {%- endif %}
                {{- "<|eot_id|>" }}
            {%- endif %}
        {%- endfor %}
        {%- if add_generation_prompt %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
        {%- endif %}

        """#,
        "features": #"""
        {#- A template exercising many features at once. -#}
        {% set ns = namespace(count=0, roles=[], last='') %}
        {% macro tag(name, body='-') -%}
        <{{ name|upper }}>{{ body }}</{{ name }}>
        {%- endmacro %}
        {% for m in messages if m.role != 'system' %}
            {% set ns.count = ns.count + 1 %}
            {% set ns.roles = ns.roles + [m['role']] %}
            {% if m.content.startswith('skip') %}{% continue %}{% endif %}
            {% if m.content == 'stop' %}{% break %}{% endif %}
            {{ loop.index }}/{{ loop.length }} {{ loop.index0 }} {{ loop.revindex }} {{ 'F' if loop.first else '' }}{{ 'L' if loop.last }}: {{ tag(m.role, m.content|title) }}
        {% else %}
            no messages
        {% endfor %}
        count={{ ns.count }} roles={{ ns.roles|join(',') }} {{ ns.roles }}
        {{ messages|length }} {{ messages|map(attribute='role')|list|tojson }} {{ messages|selectattr('role', 'equalto', 'user')|list|length }}
        {{ messages|rejectattr('role', 'eq', 'user')|map(attribute='content')|join('|') }}
        {% set d = {'b': 1, 'a': [1, 2.5, none, true, "q\"x"], 'c': {'k': 'v'}} %}
        {{ d|tojson }} {{ d|tojson(indent=2) }} {{ d.items()|list|length }} {{ d.keys()|list }} {{ d.get('z', 'dflt') }} {{ d['c'].k }}
        {% for k, v in d|dictsort %}{{ k }}={{ v }};{% endfor %}
        {% for k, v in d.items() %}{{ k }}:{{ v is mapping }},{% endfor %}
        {{ [3, 1, 2]|sort }} {{ [3, 1, 2]|sort(reverse=true)|first }} {{ 'abc'[::-1] }} {{ [1,2,3,4,5][1:4] }} {{ [1,2,3,4,5][-2:] }} {{ 'hello'[1:-1] }}
        {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 1 + 2 * 3 - 4 }} {{ 10 / 4 * 2 }} {{ 1.5 + 1 }} {{ 3 - 0.5 }}
        {{ 'a' ~ 1 ~ none ~ true }} {{ 'x' * 3 }} {{ 'abc' in 'xabcx' }} {{ 2 not in [1, 3] }} {{ 1 < 2 < 3 }} {{ 'b' > 'a' }} {{ 1 == 1.0 }}
        {{ undefined_thing }}|{{ undefined_thing is defined }}|{{ undefined_thing|default('fallback') }}|{{ ''|default('e', true) }}
        {{ "  padded  "|trim }}|{{ " x "|length }}|{{ "Hello World"|lower }}|{{ "hello wORLD"|capitalize }}|{{ "it's a-b (c)"|title }}|{{ "it's"|title }}
        {{ "a,b,,c".split(",") }} {{ " a  b ".split() }} {{ "xxhixx".strip("x") }} {{ "  l".lstrip() }}|{{ "r  ".rstrip() }}| {{ "abc".upper() }} {{ "a-b-c".replace("-", "+") }} {{ "a-b-c"|replace("-", "", 1) }}
        {{ "hello world".title() }} {{ "they're bill's".title() }} {{ "abc".endswith(("x", "c")) }} {{ "3"|int + 1 }} {{ "2.5"|float * 2 }} {{ 3|string ~ "!" }} {{ 3.7|int }} {{ 2.0 }} {{ 1e3 }}
        {{ range(5)|list }} {{ range(2, 10, 3)|list }} {{ range(5, 0, -2)|list }} {{ [1, 2, 3]|sum }} {{ [4, 9, 2]|max }} {{ [4, 9, 2]|min }} {{ [1, 1, 2]|unique|list }} {{ [1, 2]|reverse|list }}
        {{ none is none }} {{ 1 is number }} {{ 'x' is string }} {{ [] is iterable }} {{ {} is mapping }} {{ [] is sequence }} {{ true is true }} {{ 0 is false }} {{ 4 is even }} {{ 3 is odd }} {{ 9 is divisibleby 3 }} {{ 1 is not none }}
        {{ True and False }} {{ None or 'x' }} {{ not 0 }} {{ [1, [2, 'x']] }} {{ {'a': None} }} {{ 'y' if 0 else 'n' }} {{ -(3) }} {{ "tab\there" }}
        {%- set captured %}Captured {{ 1 + 1 }}{% endset %}
        {{ captured|upper }}
        {%- filter upper %} filtered {{ 'text' }}{% endfilter %}
        {%+ if true %}  kept-indent{% endif +%}
        end

        """#,
    ]

    static let cases: [ReferenceCase] = [
        ReferenceCase(
            template: "llama3", name: "user-only", addGenerationPrompt: true,
            messages: [
                ChatMessage(role: "user", content: "Hello!")
            ],
            expected: .rendered(
                "<s><|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
            )
        ),
        ReferenceCase(
            template: "llama3", name: "system-user", addGenerationPrompt: true,
            messages: [
                ChatMessage(role: "system", content: "  Be brief.  "),
                ChatMessage(role: "user", content: "What is 2+2?"),
            ],
            expected: .rendered(
                "<s><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
            )
        ),
        ReferenceCase(
            template: "llama3", name: "multi-turn", addGenerationPrompt: false,
            messages: [
                ChatMessage(role: "user", content: "Hi"),
                ChatMessage(role: "assistant", content: " Hello! How can I help? "),
                ChatMessage(role: "user", content: "Tell me a joke.\nPlease."),
            ],
            expected: .rendered(
                "<s><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello! How can I help?<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nTell me a joke.\nPlease.<|eot_id|>"
            )
        ),
        ReferenceCase(
            template: "qwen2", name: "user-only", addGenerationPrompt: true,
            messages: [
                ChatMessage(role: "user", content: "Hello!")
            ],
            expected: .rendered(
                "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n"
            )
        ),
        ReferenceCase(
            template: "qwen2", name: "system-user", addGenerationPrompt: true,
            messages: [
                ChatMessage(role: "system", content: "  Be brief.  "),
                ChatMessage(role: "user", content: "What is 2+2?"),
            ],
            expected: .rendered(
                "<|im_start|>system\n  Be brief.  <|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
            )
        ),
        ReferenceCase(
            template: "qwen2", name: "multi-turn", addGenerationPrompt: false,
            messages: [
                ChatMessage(role: "user", content: "Hi"),
                ChatMessage(role: "assistant", content: " Hello! How can I help? "),
                ChatMessage(role: "user", content: "Tell me a joke.\nPlease."),
            ],
            expected: .rendered(
                "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n Hello! How can I help? <|im_end|>\n<|im_start|>user\nTell me a joke.\nPlease.<|im_end|>\n"
            )
        ),
        ReferenceCase(
            template: "zephyr", name: "user-only", addGenerationPrompt: true,
            messages: [
                ChatMessage(role: "user", content: "Hello!")
            ],
            expected: .rendered("<|user|>\nHello!</s>\n<|assistant|>\n")
        ),
        ReferenceCase(
            template: "zephyr", name: "system-user", addGenerationPrompt: true,
            messages: [
                ChatMessage(role: "system", content: "  Be brief.  "),
                ChatMessage(role: "user", content: "What is 2+2?"),
            ],
            expected: .rendered("<|system|>\n  Be brief.  </s>\n<|user|>\nWhat is 2+2?</s>\n<|assistant|>\n")
        ),
        ReferenceCase(
            template: "zephyr", name: "multi-turn", addGenerationPrompt: false,
            messages: [
                ChatMessage(role: "user", content: "Hi"),
                ChatMessage(role: "assistant", content: " Hello! How can I help? "),
                ChatMessage(role: "user", content: "Tell me a joke.\nPlease."),
            ],
            expected: .rendered(
                "<|user|>\nHi</s>\n<|assistant|>\n Hello! How can I help? </s>\n<|user|>\nTell me a joke.\nPlease.</s>\n"
            )
        ),
        ReferenceCase(
            template: "llama2", name: "user-only", addGenerationPrompt: true,
            messages: [
                ChatMessage(role: "user", content: "Hello!")
            ],
            expected: .rendered("<s>[INST] Hello! [/INST]")
        ),
        ReferenceCase(
            template: "llama2", name: "system-user", addGenerationPrompt: true,
            messages: [
                ChatMessage(role: "system", content: "  Be brief.  "),
                ChatMessage(role: "user", content: "What is 2+2?"),
            ],
            expected: .rendered("<s>[INST] <<SYS>>\n  Be brief.  \n<</SYS>>\n\nWhat is 2+2? [/INST]")
        ),
        ReferenceCase(
            template: "llama2", name: "multi-turn", addGenerationPrompt: false,
            messages: [
                ChatMessage(role: "user", content: "Hi"),
                ChatMessage(role: "assistant", content: " Hello! How can I help? "),
                ChatMessage(role: "user", content: "Tell me a joke.\nPlease."),
            ],
            expected: .rendered(
                "<s>[INST] Hi [/INST] Hello! How can I help? </s><s>[INST] Tell me a joke.\nPlease. [/INST]")
        ),
        ReferenceCase(
            template: "phi3", name: "user-only", addGenerationPrompt: true,
            messages: [
                ChatMessage(role: "user", content: "Hello!")
            ],
            expected: .rendered("<|user|>\nHello!<|end|>\n<|assistant|>\n")
        ),
        ReferenceCase(
            template: "phi3", name: "system-user", addGenerationPrompt: true,
            messages: [
                ChatMessage(role: "system", content: "  Be brief.  "),
                ChatMessage(role: "user", content: "What is 2+2?"),
            ],
            expected: .rendered("<|system|>\n  Be brief.  <|end|>\n<|user|>\nWhat is 2+2?<|end|>\n<|assistant|>\n")
        ),
        ReferenceCase(
            template: "phi3", name: "multi-turn", addGenerationPrompt: false,
            messages: [
                ChatMessage(role: "user", content: "Hi"),
                ChatMessage(role: "assistant", content: " Hello! How can I help? "),
                ChatMessage(role: "user", content: "Tell me a joke.\nPlease."),
            ],
            expected: .rendered(
                "<|user|>\nHi<|end|>\n<|assistant|>\n Hello! How can I help? <|end|>\n<|user|>\nTell me a joke.\nPlease.<|end|>\n</s>"
            )
        ),
        ReferenceCase(
            template: "llama31", name: "user-only", addGenerationPrompt: true,
            messages: [
                ChatMessage(role: "user", content: "Hello!")
            ],
            expected: .rendered(
                "<s><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
            )
        ),
        ReferenceCase(
            template: "llama31", name: "system-user", addGenerationPrompt: true,
            messages: [
                ChatMessage(role: "system", content: "  Be brief.  "),
                ChatMessage(role: "user", content: "What is 2+2?"),
            ],
            expected: .rendered(
                "<s><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
            )
        ),
        ReferenceCase(
            template: "llama31", name: "multi-turn", addGenerationPrompt: false,
            messages: [
                ChatMessage(role: "user", content: "Hi"),
                ChatMessage(role: "assistant", content: " Hello! How can I help? "),
                ChatMessage(role: "user", content: "Tell me a joke.\nPlease."),
            ],
            expected: .rendered(
                "<s><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello! How can I help?<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nTell me a joke.\nPlease.<|eot_id|>"
            )
        ),
        ReferenceCase(
            template: "mistral", name: "user-only", addGenerationPrompt: true,
            messages: [
                ChatMessage(role: "user", content: "Hello!")
            ],
            expected: .rendered("<s>[INST] Hello! [/INST]")
        ),
        ReferenceCase(
            template: "mistral", name: "multi-turn", addGenerationPrompt: false,
            messages: [
                ChatMessage(role: "user", content: "Hi"),
                ChatMessage(role: "assistant", content: " Hello! How can I help? "),
                ChatMessage(role: "user", content: "Tell me a joke.\nPlease."),
            ],
            expected: .rendered(
                "<s>[INST] Hi [/INST] Hello! How can I help? </s>[INST] Tell me a joke.\nPlease. [/INST]")
        ),
        ReferenceCase(
            template: "mistral", name: "bad-alternation", addGenerationPrompt: true,
            messages: [
                ChatMessage(role: "user", content: "a"),
                ChatMessage(role: "user", content: "b"),
            ],
            expected: .raised("Conversation roles must alternate user/assistant/user/assistant/...")
        ),
        ReferenceCase(
            template: "mistral", name: "system-rejected", addGenerationPrompt: true,
            messages: [
                ChatMessage(role: "system", content: "s")
            ],
            expected: .raised("Conversation roles must alternate user/assistant/user/assistant/...")
        ),
        ReferenceCase(
            template: "gemma", name: "user-only", addGenerationPrompt: true,
            messages: [
                ChatMessage(role: "user", content: "Hello!")
            ],
            expected: .rendered("<s><start_of_turn>user\nHello!<end_of_turn>\n<start_of_turn>model\n")
        ),
        ReferenceCase(
            template: "gemma", name: "multi-turn", addGenerationPrompt: false,
            messages: [
                ChatMessage(role: "user", content: "Hi"),
                ChatMessage(role: "assistant", content: " Hello! How can I help? "),
                ChatMessage(role: "user", content: "Tell me a joke.\nPlease."),
            ],
            expected: .rendered(
                "<s><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello! How can I help?<end_of_turn>\n<start_of_turn>user\nTell me a joke.\nPlease.<end_of_turn>\n"
            )
        ),
        ReferenceCase(
            template: "gemma", name: "system-rejected", addGenerationPrompt: true,
            messages: [
                ChatMessage(role: "system", content: "  Be brief.  "),
                ChatMessage(role: "user", content: "What is 2+2?"),
            ],
            expected: .raised("System role not supported")
        ),
        ReferenceCase(
            template: "features", name: "mixed", addGenerationPrompt: true,
            messages: [
                ChatMessage(role: "system", content: "sys"),
                ChatMessage(role: "user", content: "hello there"),
                ChatMessage(role: "assistant", content: "skip me"),
                ChatMessage(role: "user", content: "ünïcode ✓"),
                ChatMessage(role: "assistant", content: "stop"),
                ChatMessage(role: "user", content: "never"),
            ],
            expected: .rendered(
                "    1/5 0 5 F: <USER>Hello There</user>\n    3/5 2 3 : <USER>Ünïcode ✓</user>\ncount=4 roles=user,assistant,user,assistant ['user', 'assistant', 'user', 'assistant']\n6 [\"system\", \"user\", \"assistant\", \"user\", \"assistant\", \"user\"] 3\nsys|skip me|stop\n{\"b\": 1, \"a\": [1, 2.5, null, true, \"q\\\"x\"], \"c\": {\"k\": \"v\"}} {\n  \"b\": 1,\n  \"a\": [\n    1,\n    2.5,\n    null,\n    true,\n    \"q\\\"x\"\n  ],\n  \"c\": {\n    \"k\": \"v\"\n  }\n} 3 ['b', 'a', 'c'] dflt v\na=[1, 2.5, None, True, 'q\"x'];b=1;c={'k': 'v'};b:False,a:False,c:True,[1, 2, 3] 3 cba [2, 3, 4] [4, 5] ell\n3 -4 1 2 3.5 1024 3 5.0 2.5 2.5\na1NoneTrue xxx True True True True True\n|False|fallback|e\npadded|3|hello world|Hello world|It's A-B (C)|It's\n['a', 'b', '', 'c'] ['a', 'b'] hi l|r| ABC a+b+c ab-c\nHello World They'Re Bill'S True 4 5.0 3! 3 2.0 1000.0\n[0, 1, 2, 3, 4] [2, 5, 8] [5, 3, 1] 6 9 2 [1, 2] [2, 1]\nTrue True True True True True True False True True True True\nFalse x True [1, [2, 'x']] {'a': None} n -3 tab\thereCAPTURED 2 FILTERED TEXT  kept-indent\nend"
            )
        ),
        ReferenceCase(
            template: "features", name: "empty", addGenerationPrompt: false,
            messages: [],
            expected: .rendered(
                "    no messages\ncount=0 roles= []\n0 [] 0\n\n{\"b\": 1, \"a\": [1, 2.5, null, true, \"q\\\"x\"], \"c\": {\"k\": \"v\"}} {\n  \"b\": 1,\n  \"a\": [\n    1,\n    2.5,\n    null,\n    true,\n    \"q\\\"x\"\n  ],\n  \"c\": {\n    \"k\": \"v\"\n  }\n} 3 ['b', 'a', 'c'] dflt v\na=[1, 2.5, None, True, 'q\"x'];b=1;c={'k': 'v'};b:False,a:False,c:True,[1, 2, 3] 3 cba [2, 3, 4] [4, 5] ell\n3 -4 1 2 3.5 1024 3 5.0 2.5 2.5\na1NoneTrue xxx True True True True True\n|False|fallback|e\npadded|3|hello world|Hello world|It's A-B (C)|It's\n['a', 'b', '', 'c'] ['a', 'b'] hi l|r| ABC a+b+c ab-c\nHello World They'Re Bill'S True 4 5.0 3! 3 2.0 1000.0\n[0, 1, 2, 3, 4] [2, 5, 8] [5, 3, 1] 6 9 2 [1, 2] [2, 1]\nTrue True True True True True True False True True True True\nFalse x True [1, [2, 'x']] {'a': None} n -3 tab\thereCAPTURED 2 FILTERED TEXT  kept-indent\nend"
            )
        ),
    ]

}
