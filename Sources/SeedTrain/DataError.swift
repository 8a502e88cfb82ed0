/// Why preparing, opening or reading a token dataset failed. Every case names the file (and, where it helps, the
/// line) and what to do about it.
public enum DataError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A preparation option is out of range (`option` is the CLI spelling, e.g. `--validation-fraction`).
    case invalidOption(option: String, reason: String)
    /// An input path does not exist.
    case missingInput(path: String)
    /// No input files were given, or the given directories hold none.
    case noInputs(reason: String)
    /// An input file exists but cannot be read.
    case unreadableInput(path: String, reason: String)
    /// An input holds no document (it is empty, or only whitespace/separators).
    case emptyInput(path: String)
    /// An input is not valid UTF-8; `line` and `column` (1-based, column in bytes) locate the first bad byte.
    case invalidUTF8(path: String, line: Int, column: Int)
    /// A JSONL line is not a JSON object with a string field of the expected name.
    case badJSONLine(path: String, line: Int, reason: String)
    /// An input changed between the two passes of preparation.
    case inputChanged(path: String)
    /// The tokenizer cannot be loaded or lacks something preparation needs (such as an end-of-text token).
    case tokenizer(reason: String)
    /// The output directory already holds something other than this dataset.
    case outputConflict(path: String, reason: String)
    /// Writing the dataset failed.
    case writeFailed(path: String, reason: String)
    /// `manifest.json` is missing, unreadable or malformed.
    case badManifest(path: String, reason: String)
    /// A shard's size or checksum does not match the manifest.
    case corruptShard(path: String, reason: String)
    /// The shards were made with a different tokenizer than the model expects.
    case tokenizerMismatch(reason: String)
    /// The requested split has no shards or too few tokens for one batch.
    case notEnoughData(reason: String)
    /// A loader position (usually from a checkpoint) does not fit this loader.
    case invalidPosition(reason: String)

    public var description: String {
        switch self {
        case .invalidOption(let option, let reason): "\(option): \(reason)"
        case .missingInput(let path): "input \(path) does not exist"
        case .noInputs(let reason): "no input files: \(reason)"
        case .unreadableInput(let path, let reason): "cannot read input \(path): \(reason)"
        case .emptyInput(let path): "input \(path) is empty: it holds no document"
        case .invalidUTF8(let path, let line, let column):
            "\(path):\(line):\(column): invalid UTF-8 (inputs must be UTF-8 text)"
        case .badJSONLine(let path, let line, let reason): "\(path):\(line): \(reason)"
        case .inputChanged(let path): "input \(path) changed while the dataset was being prepared"
        case .tokenizer(let reason): "tokenizer: \(reason)"
        case .outputConflict(let path, let reason): "output directory \(path) \(reason)"
        case .writeFailed(let path, let reason): "cannot write \(path): \(reason)"
        case .badManifest(let path, let reason): "bad dataset manifest \(path): \(reason)"
        case .corruptShard(let path, let reason): "corrupt shard \(path): \(reason)"
        case .tokenizerMismatch(let reason): "tokenizer does not match shards: \(reason)"
        case .notEnoughData(let reason): "not enough data: \(reason)"
        case .invalidPosition(let reason): "invalid data loader position: \(reason)"
        }
    }
}
