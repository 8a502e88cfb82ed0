import SeedFormats
import SeedTensor
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A fresh directory under the system temporary directory, removed with its files when released.
final class TemporaryDirectory {
    let path: String

    init() {
        var template = Array("/tmp/seed-gguf-tests-XXXXXX".utf8CString)
        let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(created != nil, "cannot create a temporary directory")
        path = String(cString: created!)
    }

    func file(_ name: String) -> String { "\(path)/\(name)" }

    /// Names of the entries in the directory.
    var entries: [String] {
        guard let directory = opendir(path) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    deinit {
        for name in entries { unlink(file(name)) }
        rmdir(path)
    }
}

/// Writes `bytes` to `path`, replacing it.
func writeBytes(_ bytes: [UInt8], to path: String) {
    guard let stream = fopen(path, "wb") else { preconditionFailure("cannot create \(path)") }
    let written = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, stream) }
    fclose(stream)
    precondition(written == bytes.count, "short write to \(path)")
}

/// Reads the whole file at `path`.
func readBytes(_ path: String) -> [UInt8] {
    guard let stream = fopen(path, "rb") else { return [] }
    defer { fclose(stream) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let count = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, stream) }
        if count == 0 { break }
        bytes += chunk[0..<count]
    }
    return bytes
}

/// Writes `bytes` to a file and opens it, returning the error (nil if the file opened).
func openingError(_ bytes: [UInt8], in directory: TemporaryDirectory, name: String = "test.gguf") -> GGUFError? {
    let path = directory.file(name)
    writeBytes(bytes, to: path)
    do {
        _ = try GGUFFile(path: path)
        return nil
    } catch {
        return error
    }
}

extension Array where Element == UInt8 {
    /// Offset of the first occurrence of `pattern`.
    func offset(of pattern: [UInt8]) -> Int? {
        guard pattern.count <= count else { return nil }
        for start in 0...(count - pattern.count) where self[start..<start + pattern.count].elementsEqual(pattern) {
            return start
        }
        return nil
    }

    /// Offset of the first occurrence of the GGUF string encoding (u64 length + bytes) of `string`.
    func offset(ofGGUFString string: String) -> Int? {
        var pattern: [UInt8] = []
        Swift.withUnsafeBytes(of: UInt64(string.utf8.count).littleEndian) { pattern += $0 }
        pattern += string.utf8
        return offset(of: pattern)
    }

    mutating func patch<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        Swift.withUnsafeBytes(of: value.littleEndian) { raw in
            for (index, byte) in raw.enumerated() { self[offset + index] = byte }
        }
    }

    func read<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        var value: T = 0
        for index in 0..<MemoryLayout<T>.size { value |= T(self[offset + index]) << (8 * index) }
        return value
    }
}

/// Deterministic test values: a smooth pattern with varying sign and magnitude.
func patternValues(_ count: Int, seed: Int = 0) -> [Float] {
    (0..<count).map { index in
        let x = Float(index &* 37 &+ seed &* 101)
        return (x * 0.618).truncatingRemainder(dividingBy: 2) - 1 + Float(index % 7) * 0.01
    }
}

/// A small file exercising every metadata type and several tensor types.
struct Fixture {
    static let tokens = ["<unk>", "<s>", "</s>", "héllo", "世界", ""]

    static func writer(alignment: Int = 32) throws -> GGUFWriter {
        var writer = GGUFWriter(alignment: alignment)
        writer.setMetadata("general.architecture", .string("llama"))
        writer.setMetadata("general.name", .string("tiny test model"))
        writer.setMetadata("llama.block_count", .uint32(2))
        writer.setMetadata("llama.embedding_length", .uint32(64))
        writer.setMetadata("llama.rope.freq_base", .float32(10_000))
        writer.setMetadata("llama.attention.layer_norm_rms_epsilon", .float32(1e-5))
        writer.setMetadata("test.flag", .bool(true))
        writer.setMetadata("tokenizer.ggml.tokens", .array(.string(tokens)))
        writer.setMetadata("tokenizer.ggml.token_type", .array(.int32([2, 3, 3, 1, 1, 1])))
        writer.setMetadata("tokenizer.ggml.bos_token_id", .uint32(1))
        try writer.addTensor(name: "token_embd.weight", dimensions: [64, 6], values: patternValues(384), type: .q8_0)
        try writer.addTensor(name: "output_norm.weight", dimensions: [64], values: patternValues(64, seed: 1))
        try writer.addTensor(
            name: "blk.0.attn_q.weight", dimensions: [64, 3], values: patternValues(192, seed: 2), type: .q4_1)
        try writer.addTensor(
            name: "blk.0.ffn_down.weight", dimensions: [32, 2, 2], values: patternValues(128, seed: 3), type: .f16)
        return writer
    }

    static func bytes() throws -> [UInt8] { try writer().serialized() }
}
