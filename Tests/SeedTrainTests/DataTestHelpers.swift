import Foundation
import SeedTrain

/// A fresh directory under the system temporary directory, unique per call.
func makeDataTestDirectory(_ label: String = #function) throws -> String {
    let name =
        "seed-train-tests-\(getpid())-" + label.filter { $0.isLetter || $0.isNumber }.prefix(40) + "-"
        + String(UInt32.random(in: 0...UInt32.max), radix: 16)
    let path = FileManager.default.temporaryDirectory.appendingPathComponent(name).path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Writes `text` to `directory/name` and returns the path.
@discardableResult
func writeDataTestFile(_ directory: String, _ name: String, _ text: String) throws -> String {
    let path = directory + "/" + name
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    return path
}

@discardableResult
func writeDataTestFile(_ directory: String, _ name: String, bytes: [UInt8]) throws -> String {
    let path = directory + "/" + name
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    return path
}

/// A byte-level tokenizer: each UTF-8 byte is its own id; id 256 is the end-of-text token. `offset` shifts every id
/// (and the vocabulary) to exercise uint32 shards.
func byteTokenizer(offset: Int = 0) -> DatasetTokenizer {
    DatasetTokenizer(
        identity: DataManifest.TokenizerIdentity(
            name: "bytes", kind: "test", vocabSize: 257 + offset, vocabularySha256: "bytes-\(offset)",
            endOfTextId: 256 + offset, endOfText: "<eot>"),
        encode: { text in text.utf8.map { Int($0) + offset } })
}

/// The whole split's ids, shard after shard.
func allTokens(_ shards: TokenShardSet) -> [Int32] {
    (0..<shards.shardCount).flatMap { shards.tokens(shard: $0, range: 0..<shards.shardTokenCounts[$0]) }
}

/// Prepares `documents` (one JSONL line each) with the byte tokenizer.
func prepareJSONL(
    _ documents: [String], in directory: String, validationFraction: Double = 0, shardTokens: Int = 1 << 20
) throws -> (output: String, manifest: DataManifest) {
    let lines = try documents.map { text -> String in
        String(decoding: try JSONSerialization.data(withJSONObject: ["text": text]), as: UTF8.self)
    }
    let input = try writeDataTestFile(directory, "corpus.jsonl", lines.joined(separator: "\n") + "\n")
    var options = DatasetPreparationOptions(inputs: [input], output: directory + "/dataset")
    options.validationFraction = validationFraction
    options.shardTokens = shardTokens
    options.threads = 2
    let result = try DatasetPreparer.prepare(tokenizer: byteTokenizer(), options: options)
    return (options.output, result.manifest)
}
