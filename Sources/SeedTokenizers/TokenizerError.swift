/// Errors thrown by the SeedTokenizers module.
///
/// Every case carries enough context to say what was wrong without looking at the input again;
/// `description` renders a one-line human-readable message.
public enum TokenizerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The vocabulary has no tokens.
    case emptyVocabulary
    /// The vocabulary has more tokens than the tokenizer supports (2^30).
    case vocabularyTooLarge(Int)
    /// The token-type array does not have one entry per token.
    case tokenTypeCountMismatch(tokens: Int, tokenTypes: Int)
    /// A token type outside llama.cpp's range 0...6.
    case invalidTokenType(tokenID: Int, type: Int32)
    /// A merge rule is not of the form `"left right"` (two non-empty parts separated by a space).
    case malformedMerge(rank: Int, rule: String)
    /// The pre-tokenizer name is not one this module implements.
    case unknownPreTokenizer(name: String, supported: [String])
    /// A configured special token id (BOS/EOS) is outside the vocabulary.
    case specialTokenOutOfRange(role: String, tokenID: Int, vocabularySize: Int)
    /// `addBOS`/`addEOS` is set but no id was given for that token.
    case missingSpecialToken(role: String)
    /// A token id passed to a decoding function is outside the vocabulary.
    case invalidTokenID(Int, vocabularySize: Int)
    /// The model file's tokenizer metadata is missing, of the wrong type, or names an unsupported tokenizer model.
    case metadata(key: String, reason: String)
    /// A Hugging Face `tokenizer.json` is not valid JSON or lacks a required field, or a field has the wrong type.
    case invalidTokenizerJSON(String)
    /// A `tokenizer.json` component (`kind`: normalizer, pre-tokenizer, model, post-processor, decoder) has a `type`
    /// this module does not implement.
    case unsupportedComponent(kind: String, type: String)
    /// The model needs an unknown token (e.g. WordPiece's `unk_token`) that is not in its vocabulary.
    case missingUnknownToken(String)
    /// A tokenizer file could not be read.
    case unreadableFile(path: String)

    public var description: String {
        switch self {
        case .emptyVocabulary:
            return "tokenizer vocabulary is empty"
        case .vocabularyTooLarge(let count):
            return "vocabulary has \(count) tokens; at most \(1 << 30) are supported"
        case .tokenTypeCountMismatch(let tokens, let tokenTypes):
            return "token type count (\(tokenTypes)) does not match token count (\(tokens))"
        case .invalidTokenType(let tokenID, let type):
            return "token \(tokenID) has invalid token type \(type) (expected 0...6)"
        case .malformedMerge(let rank, let rule):
            return "merge rule \(rank) is malformed: \(String(reflecting: rule)) "
                + "(expected two non-empty symbols separated by one space)"
        case .unknownPreTokenizer(let name, let supported):
            return "unknown pre-tokenizer \(String(reflecting: name)); supported: "
                + supported.joined(separator: ", ")
        case .specialTokenOutOfRange(let role, let tokenID, let vocabularySize):
            return "\(role) token id \(tokenID) is outside the vocabulary (size \(vocabularySize))"
        case .missingSpecialToken(let role):
            return "the tokenizer is configured to add a \(role) token but no \(role) token id was given"
        case .metadata(let key, let reason):
            return "tokenizer metadata '\(key)': \(reason)"
        case .invalidTokenizerJSON(let reason):
            return "invalid tokenizer.json: \(reason)"
        case .unsupportedComponent(let kind, let type):
            return "unsupported \(kind) type \(String(reflecting: type)) in tokenizer.json"
        case .missingUnknownToken(let token):
            return "unknown token \(String(reflecting: token)) is not in the vocabulary"
        case .unreadableFile(let path):
            return "cannot read tokenizer file \(path)"
        case .invalidTokenID(let tokenID, let vocabularySize):
            return "token id \(tokenID) is outside the vocabulary (valid ids are 0..<\(vocabularySize))"
        }
    }
}
