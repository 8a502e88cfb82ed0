import SeedTensor

/// Everything that can go wrong reading, decoding or writing a GGUF file.
///
/// Each case carries the file path and, where it applies, the absolute byte offset, the metadata key or tensor
/// name, and the offending value; ``description`` renders all of it as one sentence.
public enum GGUFError: Error, Sendable, Equatable, CustomStringConvertible {
    // MARK: File level

    /// The file could not be opened, inspected or mapped (missing, unreadable, a directory, …).
    case cannotOpen(path: String, reason: String)
    /// The file does not start with the magic `GGUF`; `firstBytes` holds up to its first eight bytes.
    case notGGUF(path: String, firstBytes: [UInt8])
    /// The version is neither 2 nor 3.
    case unsupportedVersion(path: String, version: UInt32)
    /// The file is a big-endian GGUF file (its version reads byte-swapped); only little-endian files are supported.
    case bigEndianFile(path: String)

    // MARK: Structure

    /// The file ends before a field that starts at `offset` and needs `needed` bytes; `context` says which.
    case truncated(path: String, offset: Int, needed: Int, context: String)
    /// A count or length read at `offset` is larger than the whole file could hold, even with the smallest
    /// possible encoding of `minimumBytesEach` bytes per item.
    case countTooLarge(path: String, offset: Int, context: String, count: UInt64, minimumBytesEach: Int, fileSize: Int)
    /// A metadata value type tag (or array element type tag) at `offset` is not one GGUF defines.
    case unknownValueType(path: String, offset: Int, key: String, rawType: UInt32)
    /// A key, string value or tensor name at `offset` is not valid UTF-8.
    case invalidUTF8(path: String, offset: Int, context: String)
    /// A bool value at `offset` is neither 0 nor 1.
    case invalidBool(path: String, offset: Int, key: String, byte: UInt8)
    /// Arrays nested deeper than ``GGUFFile/maximumArrayNesting`` levels.
    case nestingTooDeep(path: String, offset: Int, key: String)
    /// The same metadata key appears twice.
    case duplicateKey(path: String, key: String)
    /// `general.alignment` is not a positive power of two, or not an integer; `value` describes what was found.
    case invalidAlignment(path: String, value: String)

    // MARK: Tensor infos

    /// Two tensors have the same name.
    case duplicateTensorName(path: String, name: String)
    /// A tensor has more than four dimensions.
    case invalidDimensionCount(path: String, tensor: String, count: UInt32)
    /// Dimension `index` of a tensor is zero, or negative when read as a signed 64-bit value.
    case invalidDimension(path: String, tensor: String, index: Int, value: UInt64)
    /// The element count (product of dimensions) or the byte size of a tensor does not fit in `Int`.
    case tensorSizeOverflow(path: String, tensor: String, dimensions: [UInt64])
    /// A tensor's ggml type id is not one ggml defines (or one it has retired).
    case unknownTensorType(path: String, tensor: String, rawType: UInt32)
    /// A tensor's row length (its first dimension) is not a whole number of blocks of its type.
    case blockSizeMismatch(path: String, tensor: String, type: GGMLType, rowLength: Int)
    /// A tensor's data offset (relative to the data section) is not a multiple of the file's alignment.
    case misalignedTensorOffset(path: String, tensor: String, offset: UInt64, alignment: Int)
    /// A tensor's data, at absolute `offset` with `byteCount` bytes, does not lie within the file.
    case tensorOutOfBounds(path: String, tensor: String, offset: UInt64, byteCount: Int, fileSize: Int)
    /// The data of two tensors overlap.
    case overlappingTensors(path: String, first: String, second: String)

    // MARK: Access and decoding

    /// No tensor of that name is in the file.
    case tensorNotFound(path: String, name: String)
    /// The tensor's type cannot be dequantized (see `GGMLType.isSupported`).
    case unsupportedTensorType(path: String, tensor: String, type: GGMLType)
    /// A row index outside `0..<rowCount` was requested (a single row `r` is reported as `r..<r` or `r..<r+1`).
    case rowOutOfRange(path: String, tensor: String, rows: Range<Int>, rowCount: Int)

    // MARK: Writing

    /// The writer was given something it cannot encode (bad dimensions, wrong data size, duplicate name, …).
    case invalidWriterInput(reason: String)
    /// Writing or renaming the output file failed.
    case writeFailed(path: String, reason: String)

    /// One sentence naming the file and, where known, the offset, key or tensor, and the offending value.
    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason):
            return "\(path): cannot open: \(reason)"
        case .notGGUF(let path, let bytes):
            let hex = bytes.map { hexByte($0) }.joined(separator: " ")
            let text = String(decoding: bytes.map { (32..<127).contains($0) ? $0 : UInt8(ascii: ".") }, as: UTF8.self)
            return "\(path): not a GGUF file: it starts with [\(hex)] \"\(text)\", expected \"GGUF\""
        case .unsupportedVersion(let path, let version):
            return "\(path): unsupported GGUF version \(version) (supported: 2, 3)"
        case .bigEndianFile(let path):
            return "\(path): big-endian GGUF files are not supported"
        case .truncated(let path, let offset, let needed, let context):
            return "\(path): truncated: the file ends inside \(context) (\(needed) bytes at offset \(offset))"
        case .countTooLarge(let path, let offset, let context, let count, let each, let fileSize):
            return "\(path): \(context) at offset \(offset) is \(count), more than the \(fileSize)-byte file can hold "
                + "(at least \(each) bytes each)"
        case .unknownValueType(let path, let offset, let key, let rawType):
            return "\(path): metadata '\(key)': unknown value type \(rawType) at offset \(offset)"
        case .invalidUTF8(let path, let offset, let context):
            return "\(path): \(context) at offset \(offset) is not valid UTF-8"
        case .invalidBool(let path, let offset, let key, let byte):
            return "\(path): metadata '\(key)': bool at offset \(offset) is \(byte), expected 0 or 1"
        case .nestingTooDeep(let path, let offset, let key):
            return "\(path): metadata '\(key)': arrays nested more than \(GGUFFile.maximumArrayNesting) deep "
                + "at offset \(offset)"
        case .duplicateKey(let path, let key):
            return "\(path): metadata key '\(key)' appears more than once"
        case .invalidAlignment(let path, let value):
            return "\(path): general.alignment must be a positive power of two, found \(value)"
        case .duplicateTensorName(let path, let name):
            return "\(path): tensor name '\(name)' appears more than once"
        case .invalidDimensionCount(let path, let tensor, let count):
            return "\(path): tensor '\(tensor)' has \(count) dimensions, at most 4 are allowed"
        case .invalidDimension(let path, let tensor, let index, let value):
            let shown = value > UInt64(Int64.max) ? "\(Int64(bitPattern: value))" : "\(value)"
            return "\(path): tensor '\(tensor)' dimension \(index) is \(shown), must be positive"
        case .tensorSizeOverflow(let path, let tensor, let dimensions):
            return "\(path): tensor '\(tensor)' with dimensions \(dimensions) is too large (size overflows)"
        case .unknownTensorType(let path, let tensor, let rawType):
            let retired = GGMLType.retiredName(rawValue: rawType).map { " (ggml's retired type \($0))" } ?? ""
            return "\(path): tensor '\(tensor)' has unknown ggml type id \(rawType)\(retired)"
        case .blockSizeMismatch(let path, let tensor, let type, let rowLength):
            return "\(path): tensor '\(tensor)' of type \(type.name): row length \(rowLength) is not a multiple of "
                + "the block size \(type.blockSize)"
        case .misalignedTensorOffset(let path, let tensor, let offset, let alignment):
            return "\(path): tensor '\(tensor)' data offset \(offset) is not a multiple of the alignment \(alignment)"
        case .tensorOutOfBounds(let path, let tensor, let offset, let byteCount, let fileSize):
            return "\(path): tensor '\(tensor)' data (\(byteCount) bytes at offset \(offset)) extends past the end "
                + "of the \(fileSize)-byte file"
        case .overlappingTensors(let path, let first, let second):
            return "\(path): the data of tensors '\(first)' and '\(second)' overlap"
        case .tensorNotFound(let path, let name):
            return "\(path): no tensor named '\(name)'"
        case .unsupportedTensorType(let path, let tensor, let type):
            return "\(path): tensor '\(tensor)' has type \(type.name) (id \(type.rawValue)), "
                + "which cannot be dequantized yet"
        case .rowOutOfRange(let path, let tensor, let rows, let rowCount):
            let requested = rows.count <= 1 ? "row \(rows.lowerBound) was" : "rows \(rows) were"
            return "\(path): tensor '\(tensor)' has \(rowCount) rows, \(requested) requested"
        case .invalidWriterInput(let reason):
            return "GGUF writer: \(reason)"
        case .writeFailed(let path, let reason):
            return "\(path): cannot write GGUF file: \(reason)"
        }
    }
}

private func hexByte(_ byte: UInt8) -> String {
    let digits = Array("0123456789abcdef")
    return String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
}
