import SeedFormats

extension BPETokenizer {
    /// Builds the tokenizer a GGUF file describes in its `tokenizer.ggml.*` metadata.
    ///
    /// Supports `tokenizer.ggml.model = "gpt2"` (byte-level BPE) with the pre-tokenizer named by
    /// `tokenizer.ggml.pre`; other tokenizer models are rejected by name.
    public convenience init(gguf: GGUFFile) throws(TokenizerError) {
        let m = gguf.metadata
        let model = m["tokenizer.ggml.model"]?.string ?? "(missing)"
        guard model == "gpt2" else {
            throw .metadata(key: "tokenizer.ggml.model", reason: "'\(model)' is not supported (supported: gpt2)")
        }
        guard let tokens = m["tokenizer.ggml.tokens"]?.stringArray else {
            throw .metadata(key: "tokenizer.ggml.tokens", reason: "missing or not an array of strings")
        }
        guard let merges = m["tokenizer.ggml.merges"]?.stringArray else {
            throw .metadata(key: "tokenizer.ggml.merges", reason: "missing or not an array of strings")
        }
        var types: [Int32]?
        if let value = m["tokenizer.ggml.token_type"] {
            guard let ints = value.intArray else {
                throw .metadata(key: "tokenizer.ggml.token_type", reason: "not an array of integers")
            }
            types = ints.map { Int32(clamping: $0) }
        }
        try self.init(
            tokens: tokens, tokenTypes: types, merges: merges,
            preTokenizer: m["tokenizer.ggml.pre"]?.string ?? "default",
            bosTokenID: m["tokenizer.ggml.bos_token_id"]?.int, eosTokenID: m["tokenizer.ggml.eos_token_id"]?.int,
            addBOS: m["tokenizer.ggml.add_bos_token"]?.bool ?? false,
            addEOS: m["tokenizer.ggml.add_eos_token"]?.bool ?? false)
    }
}
