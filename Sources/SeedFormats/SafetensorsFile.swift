/// One tensor of a safetensors file: its name, element type, shape and where its bytes lie.
public struct SafetensorsTensorInfo: Sendable, Equatable {
    /// The tensor's name, the header key (e.g. `model.embed_tokens.weight`).
    public let name: String
    /// Element type.
    public let dtype: SafetensorsDType
    /// Dimensions, outermost first (row-major, C order); `[]` is a scalar. `[256, 64]` is 256 rows of 64.
    public let shape: [Int]
    /// Byte range of the data relative to the start of the data section (the byte after the header);
    /// `dataRange.count == elementCount * dtype.byteSize`.
    public let dataRange: Range<Int>
    /// Product of `shape` (1 for a scalar, 0 if any dimension is 0).
    public let elementCount: Int

    /// Creates a tensor description; ``SafetensorsFile`` makes these after validating the header.
    public init(name: String, dtype: SafetensorsDType, shape: [Int], dataRange: Range<Int>, elementCount: Int) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.dataRange = dataRange
        self.elementCount = elementCount
    }
}

/// A safetensors file, memory-mapped read-only and validated on open.
///
/// Layout: an 8-byte little-endian u64 `N`, `N` bytes of UTF-8 JSON header, then the data section. The header is
/// an object mapping each tensor name to `{"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}` (offsets
/// relative to the data section), plus an optional `"__metadata__"` object of string values.
///
/// What `init` enforces (the same rules as the reference Rust implementation): the header is at most
/// ``maximumHeaderLength`` bytes, valid UTF-8 and a JSON object, possibly followed by padding whitespace; every
/// entry has a known dtype, a shape of non-negative integers and `data_offsets` `[begin, end]` with `begin <= end`
/// and `end - begin == elementCount * byteSize`; names are unique; and the tensors tile the data section exactly:
/// sorted by offset, the first starts at 0, each starts where the previous ends (no overlap, no gap) and the last
/// ends at the end of the file. A file with unused bytes between or after tensors is rejected with
/// ``SafetensorsError/uncoveredData(path:range:)``.
///
/// Data is not copied: ``rawPointer(for:)`` and ``withData(_:_:)`` expose the mapped bytes, which may be unaligned
/// (the header length need not be a multiple of 8); ``floats(named:)`` and ``doubles(named:)`` copy and convert.
public final class SafetensorsFile: Sendable {
    /// The largest header accepted, 100 MB (as in the reference implementation).
    public static let maximumHeaderLength = 100_000_000

    /// The path the file was opened from.
    public let path: String
    /// The `__metadata__` entries (empty if absent).
    public let metadata: [String: String]
    /// All tensors, sorted by data offset (ties, which only zero-size tensors can have, by name).
    public let tensors: [SafetensorsTensorInfo]
    /// Byte offset of the data section within the file: `8 + N`.
    public let dataOffset: Int

    private let file: MappedFile
    private let indexByName: [String: Int]

    /// Opens, maps and validates the file at `path`.
    ///
    /// - Throws: ``SafetensorsError`` naming the file and, where it applies, the tensor and the problem.
    public init(path: String) throws(SafetensorsError) {
        self.path = path
        do {
            file = try MappedFile(path: path)
        } catch {
            if case .cannotOpen(_, let reason) = error { throw .cannotOpen(path: path, reason: reason) }
            throw .cannotOpen(path: path, reason: error.description)
        }
        let size = file.size
        guard size >= 8 else { throw .fileTooSmall(path: path, size: size) }
        let headerLength = UInt64(littleEndian: file.base.loadUnaligned(as: UInt64.self))
        guard headerLength <= UInt64(Self.maximumHeaderLength) else {
            throw .headerTooLarge(path: path, headerLength: headerLength, limit: Self.maximumHeaderLength)
        }
        guard headerLength <= UInt64(size - 8) else {
            throw .headerLengthExceedsFile(path: path, headerLength: headerLength, fileSize: size)
        }
        let length = Int(headerLength)
        dataOffset = 8 + length
        let header = UnsafeRawBufferPointer(start: file.base + 8, count: length)
        let parsed = try Self.parseHeader(header, path: path, dataSize: size - dataOffset)
        metadata = parsed.metadata
        tensors = parsed.tensors
        var index: [String: Int] = [:]
        for (i, tensor) in parsed.tensors.enumerated() { index[tensor.name] = i }
        indexByName = index
    }

    /// The size of the data section in bytes.
    public var dataSize: Int { file.size - dataOffset }

    /// The tensor called `name`, or `nil`.
    public func tensor(named name: String) -> SafetensorsTensorInfo? {
        indexByName[name].map { tensors[$0] }
    }

    /// The mapped bytes of tensor `name` (`elementCount * dtype.byteSize` bytes, possibly unaligned).
    ///
    /// The buffer points into the mapping and stays valid only while this `SafetensorsFile` is alive; prefer
    /// ``withData(_:_:)``, which guarantees that.
    public func rawPointer(for name: String) throws(SafetensorsError) -> UnsafeRawBufferPointer {
        let info = try requireTensor(name)
        return UnsafeRawBufferPointer(
            start: file.base + dataOffset + info.dataRange.lowerBound,
            count: info.dataRange.count)
    }

    /// Calls `body` with the mapped bytes of tensor `name` (see ``rawPointer(for:)``), keeping the file alive.
    ///
    /// - Throws: ``SafetensorsError/tensorNotFound(path:name:)``, or whatever `body` throws.
    public func withData<Result>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> Result) throws -> Result {
        let buffer = try rawPointer(for: name)
        return try withExtendedLifetime(self) { try body(buffer) }
    }

    /// The elements of tensor `name` as `Float`, flattened in row-major order (`elementCount` values).
    ///
    /// Every dtype converts: floats exactly where `Float` can hold them (F8, F16, BF16, F32), F64 and large
    /// integers rounded to nearest, BOOL as 0 or 1.
    public func floats(named name: String) throws(SafetensorsError) -> [Float] {
        let info = try requireTensor(name)
        let base = file.base + dataOffset + info.dataRange.lowerBound
        let dtype = info.dtype
        return withExtendedLifetime(self) {
            [Float](unsafeUninitializedCapacity: info.elementCount) { buffer, initialized in
                if dtype == .f32 {
                    // Fast path: a plain copy (the file is little-endian, as are all supported hosts).
                    UnsafeMutableRawBufferPointer(buffer).copyMemory(
                        from: UnsafeRawBufferPointer(start: base, count: info.dataRange.count))
                } else {
                    for i in 0..<info.elementCount { buffer[i] = dtype.loadFloat(base, i) }
                }
                initialized = info.elementCount
            }
        }
    }

    /// The elements of tensor `name` as `Double`, flattened in row-major order (`elementCount` values).
    ///
    /// Exact for every dtype except I64/U64 values beyond 2^53; BOOL is 0 or 1.
    public func doubles(named name: String) throws(SafetensorsError) -> [Double] {
        let info = try requireTensor(name)
        let base = file.base + dataOffset + info.dataRange.lowerBound
        let dtype = info.dtype
        return withExtendedLifetime(self) {
            [Double](unsafeUninitializedCapacity: info.elementCount) { buffer, initialized in
                for i in 0..<info.elementCount { buffer[i] = dtype.loadDouble(base, i) }
                initialized = info.elementCount
            }
        }
    }

    /// The raw bytes of tensor `name`, copied.
    public func bytes(named name: String) throws(SafetensorsError) -> [UInt8] {
        let buffer = try rawPointer(for: name)
        return withExtendedLifetime(self) { Array(buffer) }
    }

    private func requireTensor(_ name: String) throws(SafetensorsError) -> SafetensorsTensorInfo {
        guard let index = indexByName[name] else { throw .tensorNotFound(path: path, name: name) }
        return tensors[index]
    }

    // MARK: - Header validation

    private static func parseHeader(_ header: UnsafeRawBufferPointer, path: String, dataSize: Int)
        throws(SafetensorsError) -> (metadata: [String: String], tensors: [SafetensorsTensorInfo])
    {
        guard String(validating: header, as: UTF8.self) != nil else {
            throw .invalidHeader(path: path, reason: "the \(header.count)-byte header is not valid UTF-8")
        }
        let json: SafetensorsJSON
        do {
            json = try SafetensorsJSONParser.parse(header)
        } catch {
            throw .invalidHeader(path: path, reason: "not valid JSON: \(error.message) at header byte \(error.offset)")
        }
        guard case .object(let entries) = json else {
            throw .invalidHeader(path: path, reason: "the header is \(json.typeName), expected a JSON object")
        }

        var metadata: [String: String] = [:]
        var seen: Set<String> = []
        var tensors: [SafetensorsTensorInfo] = []
        tensors.reserveCapacity(entries.count)
        for entry in entries {
            let (name, value) = (entry.key, entry.value)
            guard seen.insert(name).inserted else { throw .duplicateName(path: path, name: name) }
            if name == "__metadata__" {
                metadata = try parseMetadata(value, path: path)
            } else {
                tensors.append(try parseTensor(name: name, value, path: path, dataSize: dataSize))
            }
        }

        tensors.sort { a, b in
            (a.dataRange.lowerBound, a.dataRange.upperBound, a.name) < (
                b.dataRange.lowerBound, b.dataRange.upperBound,
                b.name
            )
        }
        var covered = 0
        var previous: String?
        for tensor in tensors {
            if tensor.dataRange.lowerBound < covered, let previous {
                throw .overlappingTensors(path: path, first: previous, second: tensor.name)
            }
            if tensor.dataRange.lowerBound > covered {
                throw .uncoveredData(path: path, range: covered..<tensor.dataRange.lowerBound)
            }
            covered = tensor.dataRange.upperBound
            previous = tensor.name
        }
        if covered < dataSize { throw .uncoveredData(path: path, range: covered..<dataSize) }
        return (metadata, tensors)
    }

    private static func parseMetadata(_ value: SafetensorsJSON, path: String) throws(SafetensorsError)
        -> [String: String]
    {
        guard case .object(let entries) = value else {
            throw .invalidMetadata(path: path, key: "", reason: "is \(value.typeName), expected an object of strings")
        }
        var metadata: [String: String] = [:]
        for member in entries {
            let (key, entry) = (member.key, member.value)
            guard case .string(let string) = entry else {
                throw .invalidMetadata(path: path, key: key, reason: "is \(entry.typeName), expected a string")
            }
            guard metadata.updateValue(string, forKey: key) == nil else {
                throw .invalidMetadata(path: path, key: key, reason: "appears more than once")
            }
        }
        return metadata
    }

    private static func parseTensor(name: String, _ value: SafetensorsJSON, path: String, dataSize: Int)
        throws(SafetensorsError) -> SafetensorsTensorInfo
    {
        guard case .object(let fields) = value else {
            throw .invalidTensorEntry(
                path: path, tensor: name,
                reason: "entry is \(value.typeName), expected an object")
        }
        func field(_ key: String) throws(SafetensorsError) -> SafetensorsJSON {
            let matches = fields.filter { $0.key == key }
            guard let match = matches.first else {
                throw .invalidTensorEntry(path: path, tensor: name, reason: "missing \"\(key)\"")
            }
            guard matches.count == 1 else {
                throw .invalidTensorEntry(path: path, tensor: name, reason: "\"\(key)\" appears more than once")
            }
            return match.value
        }

        guard case .string(let dtypeName) = try field("dtype") else {
            throw .invalidTensorEntry(
                path: path, tensor: name,
                reason: "\"dtype\" is \(try field("dtype").typeName), expected a string")
        }
        guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
            throw .unknownDType(path: path, tensor: name, dtype: dtypeName)
        }

        let shapeValue = try field("shape")
        guard case .array(let dimensions) = shapeValue else {
            throw .invalidTensorEntry(
                path: path, tensor: name,
                reason: "\"shape\" is \(shapeValue.typeName), expected an array of integers")
        }
        var shape: [Int] = []
        shape.reserveCapacity(dimensions.count)
        var elementCount = 1
        var overflow = false
        for (index, dimension) in dimensions.enumerated() {
            guard let size = dimension.integer, size >= 0 else {
                throw .invalidDimension(path: path, tensor: name, index: index, value: dimension.brief)
            }
            shape.append(size)
            let (product, overflowed) = elementCount.multipliedReportingOverflow(by: size)
            overflow = overflow || overflowed
            elementCount = product
        }
        // A zero dimension makes the count 0 even after an overflowing prefix, but such a shape is still rejected:
        // the product of the other dimensions must be representable for strides to be.
        let (byteCount, byteOverflow) = elementCount.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow, !byteOverflow else { throw .tensorSizeOverflow(path: path, tensor: name, shape: shape) }

        let offsetsValue = try field("data_offsets")
        guard case .array(let offsets) = offsetsValue else {
            throw .invalidTensorEntry(
                path: path, tensor: name,
                reason: "\"data_offsets\" is \(offsetsValue.typeName), expected an array of two integers")
        }
        guard offsets.count == 2, let begin = offsets[0].integer, let end = offsets[1].integer, begin >= 0,
            begin <= end
        else {
            throw .invalidDataOffsets(path: path, tensor: name, value: offsetsValue.brief)
        }
        guard end - begin == byteCount else {
            throw .dataSizeMismatch(
                path: path, tensor: name, dtype: dtype, shape: shape, byteCount: end - begin,
                expected: byteCount)
        }
        guard end <= dataSize else {
            throw .tensorOutOfBounds(path: path, tensor: name, dataRange: begin..<end, dataSize: dataSize)
        }
        return SafetensorsTensorInfo(
            name: name, dtype: dtype, shape: shape, dataRange: begin..<end,
            elementCount: elementCount)
    }
}
