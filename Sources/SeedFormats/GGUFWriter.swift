import SeedTensor

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Builds a GGUF version 3 file from ordered metadata and tensors.
///
/// Tensor data is laid out in the order tensors were added, each starting at a multiple of ``alignment`` relative
/// to the data section and padded with zeros. When the alignment is not the default 32, a `general.alignment`
/// entry is added (first) unless the metadata already has one, which must then agree.
///
/// ```swift
/// var writer = GGUFWriter()
/// writer.setMetadata("general.architecture", .string("llama"))
/// try writer.addTensor(name: "output_norm.weight", dimensions: [576], values: weights)
/// try writer.write(to: path)
/// ```
public struct GGUFWriter: Sendable {
    /// Alignment of tensor data (a positive power of two, checked when writing).
    public var alignment: Int
    /// Metadata entries.
    public private(set) var metadata: [String: GGUFValue] = [:]
    /// Metadata keys in the order they will be written.
    public private(set) var metadataKeys: [String] = []
    /// Tensors in the order they will be written (offsets are assigned when writing).
    public private(set) var tensorNames: [String] = []

    private var tensorData: [String: PendingTensor] = [:]

    private struct PendingTensor: Sendable {
        var dimensions: [Int]
        var type: GGMLType
        var bytes: [UInt8]
    }

    /// Creates an empty writer whose tensor data will be aligned to `alignment` bytes.
    public init(alignment: Int = GGUFFile.defaultAlignment) {
        self.alignment = alignment
    }

    /// Sets a metadata entry. A new key goes last; replacing a key keeps its position.
    public mutating func setMetadata(_ key: String, _ value: GGUFValue) {
        if metadata.updateValue(value, forKey: key) == nil { metadataKeys.append(key) }
    }

    /// Adds a tensor from its encoded bytes.
    ///
    /// - Parameters:
    ///   - dimensions: ggml order (first dimension fastest-varying), at most four, each positive; the first must be
    ///     a multiple of the type's block size.
    ///   - data: exactly `type.byteCount(elements:)` bytes for the element count.
    /// - Throws: ``GGUFError/invalidWriterInput(reason:)`` for a duplicate name or inconsistent shape or size.
    public mutating func addTensor(name: String, dimensions: [Int], type: GGMLType, data: [UInt8]) throws(GGUFError) {
        guard tensorData[name] == nil else { throw .invalidWriterInput(reason: "duplicate tensor name '\(name)'") }
        let elements = try Self.elementCount(name: name, dimensions: dimensions, type: type)
        let expected: Int
        do throws(QuantizationError) {
            expected = try type.byteCount(elements: elements)
        } catch {
            throw .invalidWriterInput(reason: "tensor '\(name)': \(error)")
        }
        guard data.count == expected else {
            throw .invalidWriterInput(
                reason: "tensor '\(name)': \(elements) elements of type \(type.name) take \(expected) bytes, "
                    + "got \(data.count)")
        }
        tensorData[name] = PendingTensor(dimensions: dimensions, type: type, bytes: data)
        tensorNames.append(name)
    }

    /// Adds a tensor from float values, encoding them as `type` (one of the types `quantize` supports).
    ///
    /// - Throws: ``GGUFError/invalidWriterInput(reason:)`` for a duplicate name, a shape that does not match the
    ///   value count, or a type that cannot be encoded.
    public mutating func addTensor(
        name: String, dimensions: [Int], values: [Float], type: GGMLType = .f32
    ) throws(GGUFError) {
        let elements = try Self.elementCount(name: name, dimensions: dimensions, type: type)
        guard elements == values.count else {
            throw .invalidWriterInput(
                reason: "tensor '\(name)': dimensions \(dimensions) hold \(elements) elements, got \(values.count)")
        }
        let bytes: [UInt8]
        do throws(QuantizationError) {
            bytes = try quantize(type, values)
        } catch {
            throw .invalidWriterInput(reason: "tensor '\(name)': \(error)")
        }
        try addTensor(name: name, dimensions: dimensions, type: type, data: bytes)
    }

    private static func elementCount(name: String, dimensions: [Int], type: GGMLType) throws(GGUFError) -> Int {
        guard dimensions.count <= 4 else {
            throw .invalidWriterInput(reason: "tensor '\(name)' has \(dimensions.count) dimensions, at most 4")
        }
        var count = 1
        for dimension in dimensions {
            guard dimension > 0 else {
                throw .invalidWriterInput(reason: "tensor '\(name)' has dimension \(dimension), must be positive")
            }
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard !overflow else { throw .invalidWriterInput(reason: "tensor '\(name)' is too large") }
            count = product
        }
        guard (dimensions.first ?? 1) % type.blockSize == 0 else {
            throw .invalidWriterInput(
                reason: "tensor '\(name)': row length \(dimensions.first ?? 1) is not a multiple of the "
                    + "\(type.name) block size \(type.blockSize)")
        }
        return count
    }

    // MARK: Output

    /// The complete file contents.
    ///
    /// - Throws: ``GGUFError/invalidWriterInput(reason:)`` for an invalid alignment or a conflicting
    ///   `general.alignment` entry.
    public func serialized() throws(GGUFError) -> [UInt8] {
        var bytes = try header()
        for name in tensorNames {
            bytes += tensorData[name]!.bytes
            bytes += [UInt8](repeating: 0, count: padding(after: bytes.count))
        }
        return bytes
    }

    /// Writes the file atomically: into a temporary file next to `path`, flushed to disk, then renamed over `path`.
    /// On failure `path` is untouched and the temporary file removed.
    ///
    /// - Throws: ``GGUFError/writeFailed(path:reason:)``, or the errors of ``serialized()``.
    public func write(to path: String) throws(GGUFError) {
        let head = try header()
        do throws(AtomicWriteFailure) {
            try writeFileAtomically(path) { sink throws(AtomicWriteFailure) in
                try sink.write(head)
                var written = head.count
                for name in tensorNames {
                    let bytes = tensorData[name]!.bytes
                    try sink.write(bytes)
                    written += bytes.count
                    let zeros = [UInt8](repeating: 0, count: padding(after: written))
                    try sink.write(zeros)
                    written += zeros.count
                }
            }
        } catch {
            throw .writeFailed(path: path, reason: error.reason)
        }
    }

    /// Levels of array nesting in a value: 0 for a scalar, 1 for an array of scalars.
    private static func nesting(of value: GGUFValue) -> Int {
        guard case .array(let array) = value else { return 0 }
        return nesting(of: array)
    }

    private static func nesting(of array: GGUFArray) -> Int {
        guard case .array(let inner) = array else { return 1 }
        return 1 + (inner.map { nesting(of: $0) }.max() ?? 0)
    }

    private func padding(after length: Int) -> Int {
        (alignment - length % alignment) % alignment
    }

    /// Header, metadata, tensor infos and the padding up to the data section.
    private func header() throws(GGUFError) -> [UInt8] {
        guard alignment > 0, alignment & (alignment - 1) == 0, alignment <= 1 << 31 else {
            throw .invalidWriterInput(reason: "alignment \(alignment) is not a power of two between 1 and 2^31")
        }
        for key in metadataKeys where Self.nesting(of: metadata[key]!) > GGUFFile.maximumArrayNesting {
            throw .invalidWriterInput(
                reason: "metadata '\(key)' nests arrays deeper than \(GGUFFile.maximumArrayNesting) levels")
        }
        var keys = metadataKeys
        var entries = metadata
        if let stated = metadata["general.alignment"] {
            guard stated.int == alignment else {
                throw .invalidWriterInput(
                    reason: "metadata general.alignment is \(stated) but the writer aligns to \(alignment)")
            }
        } else if alignment != GGUFFile.defaultAlignment {
            keys.insert("general.alignment", at: 0)
            entries["general.alignment"] = .uint32(UInt32(alignment))
        }

        var out = ByteSink()
        out.bytes += GGUFParser.magic
        out.append(UInt32(3))
        out.append(UInt64(tensorNames.count))
        out.append(UInt64(keys.count))
        for key in keys {
            let value = entries[key]!
            out.appendString(key)
            out.append(value.type.rawValue)
            out.appendValue(value)
        }
        var relativeOffset = 0
        for name in tensorNames {
            let tensor = tensorData[name]!
            out.appendString(name)
            out.append(UInt32(tensor.dimensions.count))
            for dimension in tensor.dimensions { out.append(UInt64(dimension)) }
            out.append(tensor.type.rawValue)
            out.append(UInt64(relativeOffset))
            relativeOffset += tensor.bytes.count
            relativeOffset += padding(after: relativeOffset)
        }
        out.bytes += [UInt8](repeating: 0, count: padding(after: out.bytes.count))
        return out.bytes
    }
}

/// `write(2)`, named so as not to clash with ``GGUFWriter/write(to:)``.

/// Little-endian encoder for GGUF fields.
private struct ByteSink {
    var bytes: [UInt8] = []

    mutating func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
    }

    mutating func appendString(_ string: String) {
        append(UInt64(string.utf8.count))
        bytes += string.utf8
    }

    mutating func appendValue(_ value: GGUFValue) {
        switch value {
        case .uint8(let v): append(v)
        case .int8(let v): append(v)
        case .uint16(let v): append(v)
        case .int16(let v): append(v)
        case .uint32(let v): append(v)
        case .int32(let v): append(v)
        case .uint64(let v): append(v)
        case .int64(let v): append(v)
        case .float32(let v): append(v.bitPattern)
        case .float64(let v): append(v.bitPattern)
        case .bool(let v): append(UInt8(v ? 1 : 0))
        case .string(let v): appendString(v)
        case .array(let v): appendArray(v)
        }
    }

    mutating func appendArray(_ array: GGUFArray) {
        append(array.elementType.rawValue)
        append(UInt64(array.count))
        switch array {
        case .uint8(let v): bytes += v
        case .int8(let v): for x in v { append(x) }
        case .uint16(let v): for x in v { append(x) }
        case .int16(let v): for x in v { append(x) }
        case .uint32(let v): for x in v { append(x) }
        case .int32(let v): for x in v { append(x) }
        case .uint64(let v): for x in v { append(x) }
        case .int64(let v): for x in v { append(x) }
        case .float32(let v): for x in v { append(x.bitPattern) }
        case .float64(let v): for x in v { append(x.bitPattern) }
        case .bool(let v): for x in v { append(UInt8(x ? 1 : 0)) }
        case .string(let v): for x in v { appendString(x) }
        case .array(let v): for x in v { appendArray(x) }
        }
    }
}
