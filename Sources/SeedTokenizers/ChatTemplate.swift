/// One message of a conversation, as passed to a chat template.
public struct ChatMessage: Sendable, Codable, Equatable {
    /// The speaker: `system`, `user`, `assistant`, or whatever the template understands.
    public var role: String
    /// The message text.
    public var content: String

    /// Creates a message.
    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// A model's chat template (the `tokenizer.chat_template` Jinja source), rendered the way Hugging Face
/// transformers' `apply_chat_template` does.
public struct ChatTemplate: Sendable {
    private let template: JinjaTemplate

    /// Parses the template source once.
    public init(_ source: String) throws(JinjaError) {
        template = try JinjaTemplate(source)
    }

    /// Renders a conversation to prompt text.
    ///
    /// The template sees `messages` (a list of `{role, content}` dicts), `add_generation_prompt`, `bos_token`
    /// and `eos_token`, plus every entry of `extra` (which may override them).
    public func render(
        messages: [ChatMessage], addGenerationPrompt: Bool, bosToken: String, eosToken: String,
        extra: [String: JinjaValue] = [:]
    ) throws(JinjaError) -> String {
        var context: [String: JinjaValue] = [
            "messages": .array(
                messages.map {
                    .dictionary([("role", .string($0.role)), ("content", .string($0.content))])
                }),
            "add_generation_prompt": .bool(addGenerationPrompt),
            "bos_token": .string(bosToken),
            "eos_token": .string(eosToken),
        ]
        for (key, value) in extra { context[key] = value }
        return try template.render(context)
    }
}
