import SeedTensor

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Builds a safetensors file in memory and writes it atomically.
///
/// Output is deterministic: the header is `{"__metadata__": {...}, tensors...}` with the metadata keys sorted and
/// `__metadata__` omitted when empty; tensors are laid out (and listed in the header) by descending element size,
/// then by name in UTF-8 byte order. Because the header is padded with spaces to a multiple of 8 bytes, that order
/// leaves every tensor's data naturally aligned for its dtype in the file. The header JSON has no whitespace other
/// than the trailing padding.
public struct SafetensorsWriter {
    private var metadata: [String: String] = [:]
    private var entries: [Entry] = []
    private var names: Set<String> = []

    private struct Entry {
        var name: String
        var dtype: SafetensorsDType
        var shape: [Int]
        var bytes: [UInt8]
    }

    /// An empty file: no metadata, no tensors.
    public init() {}

    /// Sets the `__metadata__` entry `key` to `value`, replacing any earlier value.
    public mutating func setMetadata(_ key: String, _ value: String) {
        metadata[key] = value
    }

    /// Adds a tensor with raw little-endian element bytes.
    ///
    /// - Parameters:
    ///   - shape: dimensions, outermost first; `[]` is a scalar. Every dimension must be `>= 0`.
    ///   - bytes: exactly `shape.product * dtype.byteSize` bytes.
    /// - Throws: ``SafetensorsError/invalidWriterInput(reason:)`` for an empty, reserved (`__metadata__`) or
    ///   duplicate name, a negative dimension, an overflowing size, or a wrong byte count.
    public mutating func addTensor(name: String, dtype: SafetensorsDType, shape: [Int], bytes: [UInt8])
        throws(SafetensorsError)
    {
        guard !name.isEmpty else { throw .invalidWriterInput(reason: "a tensor name must not be empty") }
        guard name != "__metadata__" else {
            throw .invalidWriterInput(reason: "'__metadata__' is reserved and cannot name a tensor")
        }
        guard !names.contains(name) else { throw .invalidWriterInput(reason: "tensor '\(name)' is added twice") }
        var count = 1
        for (index, dimension) in shape.enumerated() {
            guard dimension >= 0 else {
                throw .invalidWriterInput(reason: "tensor '\(name)' dimension \(index) is \(dimension), must be >= 0")
            }
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard !overflow else { throw .invalidWriterInput(reason: "tensor '\(name)' shape \(shape) overflows") }
            count = product
        }
        let (expected, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow else { throw .invalidWriterInput(reason: "tensor '\(name)' shape \(shape) overflows") }
        guard bytes.count == expected else {
            throw .invalidWriterInput(
                reason: "tensor '\(name)' (\(dtype.rawValue), shape \(shape)) needs \(expected) "
                    + "bytes, got \(bytes.count)")
        }
        names.insert(name)
        entries.append(Entry(name: name, dtype: dtype, shape: shape, bytes: bytes))
    }

    /// Adds a tensor from `Float` values (row-major, `shape.product` of them), stored as `dtype`.
    ///
    /// F16 and BF16 round to nearest, ties to even (NaN stays NaN); F64 is exact.
    ///
    /// - Throws: ``SafetensorsError/invalidWriterInput(reason:)`` if `dtype` is not F32, F16, BF16 or F64, or as
    ///   ``addTensor(name:dtype:shape:bytes:)``.
    public mutating func addTensor(name: String, shape: [Int], floats: [Float], dtype: SafetensorsDType = .f32)
        throws(SafetensorsError)
    {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(floats.count * dtype.byteSize)
        switch dtype {
        case .f32: for value in floats { appendLittleEndian(value.bitPattern, to: &bytes) }
        case .f16: for value in floats { appendLittleEndian(Float16(value).bitPattern, to: &bytes) }
        case .bf16: for value in floats { appendLittleEndian(floatToBF16(value), to: &bytes) }
        case .f64: for value in floats { appendLittleEndian(Double(value).bitPattern, to: &bytes) }
        default:
            throw .invalidWriterInput(
                reason: "tensor '\(name)': floats cannot be stored as \(dtype.rawValue) "
                    + "(use F32, F16, BF16 or F64, or pass raw bytes)")
        }
        try addTensor(name: name, dtype: dtype, shape: shape, bytes: bytes)
    }

    /// The tensors in file order: descending element size, then name by UTF-8 bytes.
    private var ordered: [Entry] {
        entries.sorted { a, b in
            if a.dtype.byteSize != b.dtype.byteSize { return a.dtype.byteSize > b.dtype.byteSize }
            return a.name.utf8.lexicographicallyPrecedes(b.name.utf8)
        }
    }

    /// The header length field and the padded JSON header (everything before the data section).
    private func header(for tensors: [Entry]) -> [UInt8] {
        var json: [UInt8] = [UInt8(ascii: "{")]
        var first = true
        func separator() {
            if !first { json.append(UInt8(ascii: ",")) }
            first = false
        }
        if !metadata.isEmpty {
            separator()
            appendJSONString("__metadata__", to: &json)
            json += Array(":{".utf8)
            let keys = metadata.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            for (i, key) in keys.enumerated() {
                if i > 0 { json.append(UInt8(ascii: ",")) }
                appendJSONString(key, to: &json)
                json.append(UInt8(ascii: ":"))
                appendJSONString(metadata[key]!, to: &json)
            }
            json.append(UInt8(ascii: "}"))
        }
        var offset = 0
        for tensor in tensors {
            separator()
            appendJSONString(tensor.name, to: &json)
            json += Array(":{\"dtype\":\"\(tensor.dtype.rawValue)\",\"shape\":[".utf8)
            json += Array(tensor.shape.map(String.init).joined(separator: ",").utf8)
            json += Array("],\"data_offsets\":[\(offset),\(offset + tensor.bytes.count)]}".utf8)
            offset += tensor.bytes.count
        }
        json.append(UInt8(ascii: "}"))
        json += [UInt8](repeating: UInt8(ascii: " "), count: (8 - json.count % 8) % 8)
        var out: [UInt8] = []
        out.reserveCapacity(8 + json.count)
        appendLittleEndian(UInt64(json.count), to: &out)
        return out + json
    }

    /// The complete file contents.
    public func serialized() -> [UInt8] {
        let tensors = ordered
        var out = header(for: tensors)
        for tensor in tensors { out += tensor.bytes }
        return out
    }

    /// Writes the file atomically: into a temporary file in the same directory, flushed with `fsync`, renamed over
    /// `path`, then the directory flushed. On failure `path` is untouched and the temporary file removed.
    ///
    /// - Throws: ``SafetensorsError/writeFailed(path:reason:)``.
    public func write(to path: String) throws(SafetensorsError) {
        let tensors = ordered
        let head = header(for: tensors)
        do throws(AtomicWriteFailure) {
            try writeFileAtomically(path) { sink throws(AtomicWriteFailure) in
                try sink.write(head)
                for tensor in tensors { try sink.write(tensor.bytes) }
            }
        } catch {
            throw .writeFailed(path: path, reason: error.reason)
        }
    }
}

private func appendLittleEndian<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
    withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
}
