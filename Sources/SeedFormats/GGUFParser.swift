import SeedTensor

#if _endian(big)
    #error("The GGUF reader loads little-endian fields directly and needs a little-endian host")
#endif

/// Everything the header, metadata and tensor-info sections of a GGUF file say, validated.
struct ParsedGGUF {
    var version: UInt32
    var metadata: [String: GGUFValue]
    var metadataKeys: [String]
    var tensors: [GGUFTensorInfo]
    var alignment: Int
    var dataOffset: Int
}

/// Reads a GGUF file's header, metadata and tensor infos from memory, checking every length against the bytes
/// that remain, so that corrupt input yields a ``GGUFError`` rather than a crash or a file-driven huge allocation.
///
/// Layout (little-endian): magic `GGUF`, `u32` version, `u64` tensor count, `u64` metadata count; each metadata
/// entry is a string key, a `u32` value type and the value; each tensor info is a string name, `u32` dimension
/// count, `u64` dimensions, `u32` ggml type and `u64` offset relative to the data section, which starts at the
/// next multiple of the alignment after the infos. Strings are a `u64` byte length and UTF-8 bytes; arrays a `u32`
/// element type, a `u64` count and the elements.
struct GGUFParser {
    static let magic: [UInt8] = Array("GGUF".utf8)
    /// Minimum bytes of one metadata entry: empty key length, type tag, one-byte value.
    static let minimumEntrySize = 8 + 4 + 1
    /// Minimum bytes of one tensor info: empty name length, dimension count, type, offset.
    static let minimumTensorInfoSize = 8 + 4 + 4 + 8

    let base: UnsafeRawPointer
    let size: Int
    let path: String
    private(set) var offset = 0

    init(base: UnsafeRawPointer, size: Int, path: String) {
        self.base = base
        self.size = size
        self.path = path
    }

    // MARK: Primitive reads

    private var remaining: Int { size - offset }

    /// Capacity to reserve for `count` items of at least `each` bytes: never more than the remaining bytes could
    /// hold, nor more than a modest cap, so that a corrupt count cannot trigger a large allocation by itself.
    private func reservation(_ count: Int, each: Int) -> Int {
        min(count, remaining / each, 1 << 16)
    }

    /// Ensures `count` more bytes exist at the current offset.
    @inline(__always)
    private func require(_ count: Int, _ context: @autoclosure () -> String) throws(GGUFError) {
        if count > remaining { throw .truncated(path: path, offset: offset, needed: count, context: context()) }
    }

    @inline(__always)
    private mutating func read<T: FixedWidthInteger>(
        _: T.Type, _ context: @autoclosure () -> String
    ) throws(GGUFError) -> T {
        try require(MemoryLayout<T>.size, context())
        let value = base.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += MemoryLayout<T>.size
        return value
    }

    /// Reads a `u64` count of items that take at least `minimumEach` bytes each, rejecting counts that the whole file
    /// could not hold. Whether enough bytes *remain* is left to the reads that follow, so a file that merely ends
    /// early is reported as truncated where it ends.
    private mutating func readCount(minimumEach: Int, _ context: @autoclosure () -> String) throws(GGUFError) -> Int {
        let countOffset = offset
        let raw = try read(UInt64.self, context())
        guard raw <= UInt64(size / minimumEach) else {
            throw .countTooLarge(
                path: path, offset: countOffset, context: context(), count: raw, minimumBytesEach: minimumEach,
                fileSize: size)
        }
        return Int(raw)
    }

    private mutating func readString(_ context: @autoclosure () -> String) throws(GGUFError) -> String {
        let length = try readCount(minimumEach: 1, "length of \(context())")
        try require(length, context())
        let bytes = UnsafeBufferPointer(start: (base + offset).assumingMemoryBound(to: UInt8.self), count: length)
        guard let string = String(validating: bytes, as: UTF8.self) else {
            throw .invalidUTF8(path: path, offset: offset, context: context())
        }
        offset += length
        return string
    }

    /// Copies `count` little-endian scalars; the caller has checked that they fit in the remaining bytes.
    private mutating func readScalars<T: BitwiseCopyable>(_: T.Type, count: Int) -> [T] {
        let byteCount = count * MemoryLayout<T>.size
        let source = UnsafeRawBufferPointer(start: base + offset, count: byteCount)
        offset += byteCount
        return [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0 { UnsafeMutableRawBufferPointer(buffer).copyMemory(from: source) }
            initialized = count
        }
    }

    // MARK: Metadata values

    private mutating func readValueType(key: String) throws(GGUFError) -> GGUFValueType {
        let typeOffset = offset
        let raw = try read(UInt32.self, "value type of metadata '\(key)'")
        guard let type = GGUFValueType(rawValue: raw) else {
            throw .unknownValueType(path: path, offset: typeOffset, key: key, rawType: raw)
        }
        return type
    }

    private mutating func readValue(_ type: GGUFValueType, key: String) throws(GGUFError) -> GGUFValue {
        let context = { "\(type) value of metadata '\(key)'" }
        switch type {
        case .uint8: return .uint8(try read(UInt8.self, context()))
        case .int8: return .int8(try read(Int8.self, context()))
        case .uint16: return .uint16(try read(UInt16.self, context()))
        case .int16: return .int16(try read(Int16.self, context()))
        case .uint32: return .uint32(try read(UInt32.self, context()))
        case .int32: return .int32(try read(Int32.self, context()))
        case .uint64: return .uint64(try read(UInt64.self, context()))
        case .int64: return .int64(try read(Int64.self, context()))
        case .float32: return .float32(Float(bitPattern: try read(UInt32.self, context())))
        case .float64: return .float64(Double(bitPattern: try read(UInt64.self, context())))
        case .bool: return .bool(try readBool(key: key, context()))
        case .string: return .string(try readString(context()))
        case .array: return .array(try readArray(key: key, depth: 1))
        }
    }

    private mutating func readBool(key: String, _ context: @autoclosure () -> String) throws(GGUFError) -> Bool {
        let byteOffset = offset
        let byte = try read(UInt8.self, context())
        guard byte <= 1 else { throw .invalidBool(path: path, offset: byteOffset, key: key, byte: byte) }
        return byte == 1
    }

    private mutating func readArray(key: String, depth: Int) throws(GGUFError) -> GGUFArray {
        let arrayOffset = offset
        guard depth <= GGUFFile.maximumArrayNesting else {
            throw .nestingTooDeep(path: path, offset: arrayOffset, key: key)
        }
        let elementType = try readValueType(key: key)
        let each = elementType.minimumEncodedSize
        let count = try readCount(minimumEach: each, "element count of array '\(key)'")
        let context = { "\(count) \(elementType) elements of array '\(key)'" }

        switch elementType {
        case .uint8, .int8, .uint16, .int16, .uint32, .int32, .uint64, .int64, .float32, .float64:
            try require(count * each, context())
        case .bool, .string, .array:
            break
        }
        switch elementType {
        case .uint8: return .uint8(readScalars(UInt8.self, count: count))
        case .int8: return .int8(readScalars(Int8.self, count: count))
        case .uint16: return .uint16(readScalars(UInt16.self, count: count))
        case .int16: return .int16(readScalars(Int16.self, count: count))
        case .uint32: return .uint32(readScalars(UInt32.self, count: count))
        case .int32: return .int32(readScalars(Int32.self, count: count))
        case .uint64: return .uint64(readScalars(UInt64.self, count: count))
        case .int64: return .int64(readScalars(Int64.self, count: count))
        case .float32: return .float32(readScalars(Float.self, count: count))
        case .float64: return .float64(readScalars(Double.self, count: count))
        case .bool:
            var flags: [Bool] = []
            flags.reserveCapacity(reservation(count, each: each))
            for index in 0..<count { flags.append(try readBool(key: key, "element \(index) of array '\(key)'")) }
            return .bool(flags)
        case .string:
            var strings: [String] = []
            strings.reserveCapacity(reservation(count, each: each))
            for index in 0..<count { strings.append(try readString("string \(index) of array '\(key)'")) }
            return .string(strings)
        case .array:
            var arrays: [GGUFArray] = []
            arrays.reserveCapacity(reservation(count, each: each))
            for _ in 0..<count { arrays.append(try readArray(key: key, depth: depth + 1)) }
            return .array(arrays)
        }
    }

    // MARK: File structure

    mutating func parse() throws(GGUFError) -> ParsedGGUF {
        let version = try readHeaderStart()
        let tensorCount = try readCount(minimumEach: Self.minimumTensorInfoSize, "tensor count")
        let entryCount = try readCount(minimumEach: Self.minimumEntrySize, "metadata entry count")

        var metadata: [String: GGUFValue] = [:]
        var keys: [String] = []
        metadata.reserveCapacity(reservation(entryCount, each: Self.minimumEntrySize))
        keys.reserveCapacity(reservation(entryCount, each: Self.minimumEntrySize))
        for index in 0..<entryCount {
            let key = try readString("key of metadata entry \(index)")
            let type = try readValueType(key: key)
            let value = try readValue(type, key: key)
            guard metadata.updateValue(value, forKey: key) == nil else { throw .duplicateKey(path: path, key: key) }
            keys.append(key)
        }

        let alignment = try alignment(from: metadata)
        let infos = try readTensorInfos(count: tensorCount)
        let (dataOffset, overflow) = offset.addingReportingOverflow((alignment - offset % alignment) % alignment)
        let tensors = try validate(infos, dataOffset: overflow ? Int.max : dataOffset, alignment: alignment)
        return ParsedGGUF(
            version: version, metadata: metadata, metadataKeys: keys, tensors: tensors, alignment: alignment,
            dataOffset: overflow ? Int.max : dataOffset)
    }

    /// Checks the magic and returns the version.
    private mutating func readHeaderStart() throws(GGUFError) -> UInt32 {
        let head = Array(UnsafeRawBufferPointer(start: base, count: min(size, 8)))
        guard head.starts(with: Self.magic) else {
            // A file shorter than the magic but consistent with it was cut off; anything else is not GGUF.
            if head.count < 4, Self.magic.starts(with: head) {
                throw .truncated(path: path, offset: 0, needed: 4, context: "magic")
            }
            throw .notGGUF(path: path, firstBytes: head)
        }
        offset = 4
        let version = try read(UInt32.self, "version")
        switch version {
        case 2, 3:
            return version
        case _ where (1...3).contains(version.byteSwapped):
            throw .bigEndianFile(path: path)
        default:
            throw .unsupportedVersion(path: path, version: version)
        }
    }

    private func alignment(from metadata: [String: GGUFValue]) throws(GGUFError) -> Int {
        guard let value = metadata["general.alignment"] else { return GGUFFile.defaultAlignment }
        guard let alignment = value.int, alignment > 0, alignment & (alignment - 1) == 0 else {
            throw .invalidAlignment(path: path, value: "\(value) (\(value.type))")
        }
        return alignment
    }

    /// A tensor info as read, before its placement is checked.
    private struct RawTensorInfo {
        var name: String
        var dimensions: [Int]
        var elementCount: Int
        var type: GGMLType
        var relativeOffset: UInt64
    }

    private mutating func readTensorInfos(count: Int) throws(GGUFError) -> [RawTensorInfo] {
        var infos: [RawTensorInfo] = []
        infos.reserveCapacity(reservation(count, each: Self.minimumTensorInfoSize))
        var names = Set<String>(minimumCapacity: reservation(count, each: Self.minimumTensorInfoSize))
        for index in 0..<count {
            let name = try readString("name of tensor \(index)")
            guard names.insert(name).inserted else { throw .duplicateTensorName(path: path, name: name) }
            let dimensionCount = try read(UInt32.self, "dimension count of tensor '\(name)'")
            guard dimensionCount <= 4 else {
                throw .invalidDimensionCount(path: path, tensor: name, count: dimensionCount)
            }
            var raw: [UInt64] = []
            for axis in 0..<Int(dimensionCount) {
                raw.append(try read(UInt64.self, "dimension \(axis) of tensor '\(name)'"))
            }
            var elementCount = 1
            for (axis, value) in raw.enumerated() {
                guard value > 0, value <= UInt64(Int64.max) else {
                    throw .invalidDimension(path: path, tensor: name, index: axis, value: value)
                }
                let (product, overflow) = elementCount.multipliedReportingOverflow(by: Int(value))
                guard !overflow else { throw .tensorSizeOverflow(path: path, tensor: name, dimensions: raw) }
                elementCount = product
            }
            let typeID = try read(UInt32.self, "type of tensor '\(name)'")
            guard let type = GGMLType(rawValue: typeID) else {
                throw .unknownTensorType(path: path, tensor: name, rawType: typeID)
            }
            let relativeOffset = try read(UInt64.self, "data offset of tensor '\(name)'")
            infos.append(
                RawTensorInfo(
                    name: name, dimensions: raw.map { Int($0) }, elementCount: elementCount, type: type,
                    relativeOffset: relativeOffset))
        }
        return infos
    }

    /// Checks block divisibility, alignment, bounds and overlap, and computes absolute offsets and sizes.
    private func validate(
        _ infos: [RawTensorInfo], dataOffset: Int, alignment: Int
    ) throws(GGUFError) -> [GGUFTensorInfo] {
        var tensors: [GGUFTensorInfo] = []
        tensors.reserveCapacity(infos.count)
        for info in infos {
            let rowLength = info.dimensions.first ?? 1
            guard rowLength % info.type.blockSize == 0 else {
                throw .blockSizeMismatch(path: path, tensor: info.name, type: info.type, rowLength: rowLength)
            }
            let byteCount: Int
            do throws(QuantizationError) {
                byteCount = try info.type.byteCount(elements: info.elementCount)
            } catch {
                throw .tensorSizeOverflow(path: path, tensor: info.name, dimensions: info.dimensions.map { UInt64($0) })
            }
            guard info.relativeOffset % UInt64(alignment) == 0 else {
                throw .misalignedTensorOffset(
                    path: path, tensor: info.name, offset: info.relativeOffset, alignment: alignment)
            }
            let (start, startOverflow) = UInt64(dataOffset).addingReportingOverflow(info.relativeOffset)
            let (end, endOverflow) = start.addingReportingOverflow(UInt64(byteCount))
            guard !startOverflow, !endOverflow, end <= UInt64(size) else {
                let shownStart = startOverflow ? info.relativeOffset : start
                throw .tensorOutOfBounds(
                    path: path, tensor: info.name, offset: shownStart, byteCount: byteCount, fileSize: size)
            }
            tensors.append(
                GGUFTensorInfo(
                    name: info.name, dimensions: info.dimensions, type: info.type, offset: Int(start),
                    byteCount: byteCount, elementCount: info.elementCount))
        }
        let byPosition = tensors.indices.sorted { tensors[$0].offset < tensors[$1].offset }
        for (previous, next) in zip(byPosition, byPosition.dropFirst()) {
            let first = tensors[previous]
            let second = tensors[next]
            if first.offset + first.byteCount > second.offset {
                throw .overlappingTensors(path: path, first: first.name, second: second.name)
            }
        }
        return tensors
    }
}
