import SeedTensor

/// Where one tensor's data lies in a GGUF file and how it is shaped.
public struct GGUFTensorInfo: Sendable, Equatable, Hashable {
    /// The tensor name, e.g. `blk.0.attn_q.weight`.
    public var name: String
    /// Dimensions in ggml order: `dimensions[0]` (ggml's `ne[0]`) varies fastest, so a weight matrix with `n` rows
    /// of length `k` is `[k, n]`. Empty for a scalar. Every dimension is positive.
    public var dimensions: [Int]
    /// Storage type.
    public var type: GGMLType
    /// Absolute byte offset of the data in the file.
    public var offset: Int
    /// Bytes of data.
    public var byteCount: Int
    /// Number of elements (product of `dimensions`).
    public var elementCount: Int

    /// Creates a tensor description; ``GGUFFile`` makes these for you.
    public init(name: String, dimensions: [Int], type: GGMLType, offset: Int, byteCount: Int, elementCount: Int) {
        self.name = name
        self.dimensions = dimensions
        self.type = type
        self.offset = offset
        self.byteCount = byteCount
        self.elementCount = elementCount
    }

    /// Elements per row: the fastest-varying dimension (1 for a scalar). Always a whole number of blocks.
    public var rowLength: Int { dimensions.first ?? 1 }
    /// Number of rows: the product of all dimensions but the first.
    public var rowCount: Int { elementCount / rowLength }
    /// Bytes per row.
    public var rowByteCount: Int { byteCount / rowCount }
}

/// A GGUF file (versions 2 and 3), memory-mapped read-only and fully validated on opening.
///
/// Opening parses the header, all metadata and all tensor infos, and checks that every tensor's data lies inside
/// the file, aligned and without overlap; tensor data itself is neither read nor copied until asked for. Pointers
/// handed out by ``rawPointer(for:)`` and ``withTensorData(_:_:)`` stay valid as long as this object lives.
///
/// ```swift
/// let file = try GGUFFile(path: path)
/// let layers = file.architectureValue("block_count")?.int
/// let embedding = try file.dequantizedTensor(named: "token_embd.weight")
/// ```
public final class GGUFFile: Sendable {
    /// Alignment of tensor data when `general.alignment` is absent.
    public static let defaultAlignment = 32
    /// Deepest nesting of metadata arrays accepted (an array of arrays is depth 2).
    public static let maximumArrayNesting = 64

    /// Path the file was opened from.
    public let path: String
    /// GGUF version (2 or 3).
    public let version: UInt32
    /// All metadata entries.
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    /// Tensor infos in file order.
    public let tensors: [GGUFTensorInfo]
    /// Alignment of tensor data: `general.alignment`, or ``defaultAlignment``.
    public let alignment: Int
    /// Absolute offset of the tensor data section. May equal or exceed ``fileSize`` when there are no tensors.
    public let dataOffset: Int
    /// Size of the file in bytes.
    public let fileSize: Int

    private let tensorIndex: [String: Int]
    private let mapping: MappedFile

    /// Opens, maps and validates the GGUF file at `path`.
    ///
    /// - Throws: a ``GGUFError`` naming the file and, for structural problems, the offset and the key or tensor
    ///   concerned. Corrupt files never crash the process.
    public init(path: String) throws(GGUFError) {
        let mapping = try MappedFile(path: path)
        var parser = GGUFParser(base: mapping.base, size: mapping.size, path: path)
        let parsed = try parser.parse()
        self.path = path
        self.mapping = mapping
        self.fileSize = mapping.size
        self.version = parsed.version
        self.metadata = parsed.metadata
        self.metadataKeys = parsed.metadataKeys
        self.tensors = parsed.tensors
        self.alignment = parsed.alignment
        self.dataOffset = parsed.dataOffset
        var index: [String: Int] = [:]
        index.reserveCapacity(parsed.tensors.count)
        for (position, tensor) in parsed.tensors.enumerated() { index[tensor.name] = position }
        self.tensorIndex = index
    }

    // MARK: Metadata

    /// The metadata value for `key`, if present.
    public subscript(key: String) -> GGUFValue? { metadata[key] }

    /// `general.architecture`, e.g. `"llama"`.
    public var architecture: String? { metadata["general.architecture"]?.string }

    /// `general.name`, the model's display name.
    public var modelName: String? { metadata["general.name"]?.string }

    /// The architecture-specific value `<general.architecture>.<suffix>`, e.g. `architectureValue("block_count")`
    /// reads `llama.block_count` in a llama file.
    public func architectureValue(_ suffix: String) -> GGUFValue? {
        guard let architecture else { return nil }
        return metadata["\(architecture).\(suffix)"]
    }

    // MARK: Tensors

    /// Total number of tensor elements (model parameters).
    public var parameterCount: Int { tensors.reduce(0) { $0 + $1.elementCount } }

    /// Total bytes of tensor data.
    public var tensorDataByteCount: Int { tensors.reduce(0) { $0 + $1.byteCount } }

    /// The info of the tensor named `name`, if present.
    public func tensor(named name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The address of a tensor's data inside the mapping, valid while this file object lives.
    ///
    /// - Precondition: `info` describes a tensor of this file (as returned by ``tensors`` or ``tensor(named:)``).
    public func rawPointer(for info: GGUFTensorInfo) -> UnsafeRawPointer {
        precondition(
            info.offset >= dataOffset && info.byteCount >= 0 && info.offset <= fileSize - info.byteCount,
            "tensor info '\(info.name)' does not belong to \(path)")
        return mapping.base + info.offset
    }

    /// Calls `body` with a tensor's raw data (no copy), valid only during the call.
    ///
    /// - Precondition: `info` describes a tensor of this file.
    public func withTensorData<R, E: Error>(
        _ info: GGUFTensorInfo, _ body: (UnsafeRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: rawPointer(for: info), count: info.byteCount))
    }

    /// All elements of a tensor as floats, in ggml order (`dimensions[0]` fastest).
    ///
    /// - Throws: ``GGUFError/unsupportedTensorType(path:tensor:type:)`` when its type cannot be dequantized.
    public func dequantize(_ info: GGUFTensorInfo) throws(GGUFError) -> [Float] {
        try dequantizedRows(0..<info.rowCount, of: info)
    }

    /// All elements of the tensor named `name` as floats.
    ///
    /// - Throws: ``GGUFError/tensorNotFound(path:name:)``, ``GGUFError/unsupportedTensorType(path:tensor:type:)``.
    public func dequantizedTensor(named name: String) throws(GGUFError) -> [Float] {
        guard let info = tensor(named: name) else { throw .tensorNotFound(path: path, name: name) }
        return try dequantize(info)
    }

    /// Row `row` of a tensor (``GGUFTensorInfo/rowLength`` floats), e.g. one token's embedding.
    ///
    /// - Throws: ``GGUFError/rowOutOfRange(path:tensor:rows:rowCount:)``,
    ///   ``GGUFError/unsupportedTensorType(path:tensor:type:)``.
    public func dequantizedRow(_ row: Int, of info: GGUFTensorInfo) throws(GGUFError) -> [Float] {
        guard row >= 0, row < info.rowCount else {
            throw .rowOutOfRange(path: path, tensor: info.name, rows: row..<row, rowCount: info.rowCount)
        }
        return try dequantizedRows(row..<row + 1, of: info)
    }

    /// Rows `rows` of a tensor, concatenated.
    ///
    /// - Throws: ``GGUFError/rowOutOfRange(path:tensor:rows:rowCount:)``,
    ///   ``GGUFError/unsupportedTensorType(path:tensor:type:)``.
    public func dequantizedRows(_ rows: Range<Int>, of info: GGUFTensorInfo) throws(GGUFError) -> [Float] {
        try checkDecodable(rows, of: info)
        let count = rows.count * info.rowLength
        var failure: GGUFError?
        let values = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            do throws(GGUFError) {
                if let destination = buffer.baseAddress { try dequantizeRows(rows, of: info, into: destination) }
                initialized = count
            } catch {
                failure = error
                initialized = 0
            }
        }
        if let failure { throw failure }
        return values
    }

    /// Decodes rows `rows` of a tensor into `destination`, which must have room for `rows.count * info.rowLength`
    /// floats.
    ///
    /// - Throws: ``GGUFError/rowOutOfRange(path:tensor:rows:rowCount:)``,
    ///   ``GGUFError/unsupportedTensorType(path:tensor:type:)``.
    public func dequantizeRows(
        _ rows: Range<Int>, of info: GGUFTensorInfo, into destination: UnsafeMutablePointer<Float>
    ) throws(GGUFError) {
        try checkDecodable(rows, of: info)
        let source = rawPointer(for: info) + rows.lowerBound * info.rowByteCount
        do throws(QuantizationError) {
            try SeedTensor.dequantize(info.type, from: source, count: rows.count * info.rowLength, into: destination)
        } catch {
            // Sizes were validated when the file was opened, so the type is the only thing that can be wrong.
            throw .unsupportedTensorType(path: path, tensor: info.name, type: info.type)
        }
    }

    private func checkDecodable(_ rows: Range<Int>, of info: GGUFTensorInfo) throws(GGUFError) {
        guard info.type.isSupported else {
            throw .unsupportedTensorType(path: path, tensor: info.name, type: info.type)
        }
        guard rows.lowerBound >= 0, rows.upperBound <= info.rowCount else {
            throw .rowOutOfRange(path: path, tensor: info.name, rows: rows, rowCount: info.rowCount)
        }
    }
}
