/// Everything that can go wrong reading, decoding or writing a safetensors file.
///
/// Each case carries the file path and, where it applies, the tensor name, the metadata key and the offending
/// value; ``description`` renders all of it as one sentence.
public enum SafetensorsError: Error, Sendable, Equatable, CustomStringConvertible {
    // MARK: File level

    /// The file could not be opened, inspected or mapped (missing, unreadable, a directory, …).
    case cannotOpen(path: String, reason: String)
    /// The file is shorter than the 8-byte header length field.
    case fileTooSmall(path: String, size: Int)
    /// The header length (the first 8 bytes, little-endian u64) is more than the rest of the file holds.
    case headerLengthExceedsFile(path: String, headerLength: UInt64, fileSize: Int)
    /// The header length is larger than ``SafetensorsFile/maximumHeaderLength``.
    case headerTooLarge(path: String, headerLength: UInt64, limit: Int)
    /// The header is not valid UTF-8, not valid JSON, or not a JSON object; `reason` says which and where.
    case invalidHeader(path: String, reason: String)

    // MARK: Header entries

    /// `__metadata__` is not an object of strings; `key` is the offending entry (empty for the whole value).
    case invalidMetadata(path: String, key: String, reason: String)
    /// A tensor entry is not an object, lacks `dtype`, `shape` or `data_offsets`, or one of them has the wrong
    /// JSON type.
    case invalidTensorEntry(path: String, tensor: String, reason: String)
    /// A tensor's `dtype` is not one ``SafetensorsDType`` knows.
    case unknownDType(path: String, tensor: String, dtype: String)
    /// A dimension of a tensor's shape is negative, not an integer, or too large; `value` is its JSON text.
    case invalidDimension(path: String, tensor: String, index: Int, value: String)
    /// A tensor's element count or byte count does not fit in `Int`.
    case tensorSizeOverflow(path: String, tensor: String, shape: [Int])
    /// A tensor's `data_offsets` are not two non-negative integers with `begin <= end`; `value` is their JSON text.
    case invalidDataOffsets(path: String, tensor: String, value: String)
    /// `end - begin` of a tensor's data is not `elementCount * dtype.byteSize`.
    case dataSizeMismatch(
        path: String, tensor: String, dtype: SafetensorsDType, shape: [Int], byteCount: Int,
        expected: Int)
    /// A tensor's data range (relative to the data section) reaches past the end of the data section.
    case tensorOutOfBounds(path: String, tensor: String, dataRange: Range<Int>, dataSize: Int)
    /// The data of two tensors overlap.
    case overlappingTensors(path: String, first: String, second: String)
    /// Bytes `range` of the data section (relative to its start) belong to no tensor.
    case uncoveredData(path: String, range: Range<Int>)
    /// Two header entries have the same name (or `__metadata__` appears twice).
    case duplicateName(path: String, name: String)

    // MARK: Access

    /// No tensor of that name is in the file.
    case tensorNotFound(path: String, name: String)

    // MARK: Writing

    /// The writer was given something it cannot encode (bad shape, wrong byte count, duplicate name, …).
    case invalidWriterInput(reason: String)
    /// Writing, flushing or renaming the output file failed.
    case writeFailed(path: String, reason: String)

    /// One sentence naming the file and, where known, the tensor or key and the offending value.
    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason):
            return "\(path): cannot open: \(reason)"
        case .fileTooSmall(let path, let size):
            return "\(path): not a safetensors file: it has \(size) bytes, fewer than the 8-byte header length"
        case .headerLengthExceedsFile(let path, let length, let fileSize):
            return "\(path): header length \(length) is more than the \(fileSize)-byte file holds after its "
                + "8-byte length field"
        case .headerTooLarge(let path, let length, let limit):
            return "\(path): header length \(length) exceeds the limit of \(limit) bytes"
        case .invalidHeader(let path, let reason):
            return "\(path): invalid header: \(reason)"
        case .invalidMetadata(let path, let key, let reason):
            let which = key.isEmpty ? "__metadata__" : "__metadata__ entry '\(key)'"
            return "\(path): \(which): \(reason)"
        case .invalidTensorEntry(let path, let tensor, let reason):
            return "\(path): tensor '\(tensor)': \(reason)"
        case .unknownDType(let path, let tensor, let dtype):
            let known = SafetensorsDType.allCases.map(\.rawValue).joined(separator: ", ")
            return "\(path): tensor '\(tensor)' has unknown dtype '\(dtype)' (known: \(known))"
        case .invalidDimension(let path, let tensor, let index, let value):
            return "\(path): tensor '\(tensor)' shape dimension \(index) is \(value), "
                + "must be a non-negative integer"
        case .tensorSizeOverflow(let path, let tensor, let shape):
            return "\(path): tensor '\(tensor)' with shape \(shape) is too large (size overflows)"
        case .invalidDataOffsets(let path, let tensor, let value):
            return "\(path): tensor '\(tensor)' data_offsets \(value) must be two non-negative integers "
                + "[begin, end] with begin <= end"
        case .dataSizeMismatch(let path, let tensor, let dtype, let shape, let byteCount, let expected):
            return "\(path): tensor '\(tensor)' (\(dtype.rawValue), shape \(shape)) has \(byteCount) data bytes, "
                + "expected \(expected)"
        case .tensorOutOfBounds(let path, let tensor, let range, let dataSize):
            return "\(path): tensor '\(tensor)' data_offsets [\(range.lowerBound), \(range.upperBound)] reach past "
                + "the end of the \(dataSize)-byte data section"
        case .overlappingTensors(let path, let first, let second):
            return "\(path): the data of tensors '\(first)' and '\(second)' overlap"
        case .uncoveredData(let path, let range):
            return "\(path): data bytes \(range.lowerBound)..<\(range.upperBound) (relative to the data section) "
                + "belong to no tensor"
        case .duplicateName(let path, let name):
            return "\(path): header entry '\(name)' appears more than once"
        case .tensorNotFound(let path, let name):
            return "\(path): no tensor named '\(name)'"
        case .invalidWriterInput(let reason):
            return "safetensors writer: \(reason)"
        case .writeFailed(let path, let reason):
            return "\(path): cannot write safetensors file: \(reason)"
        }
    }
}
