/// The type tag of a GGUF metadata value, as stored in the file (`gguf_metadata_value_type`).
public enum GGUFValueType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case uint8 = 0
    case int8 = 1
    case uint16 = 2
    case int16 = 3
    case uint32 = 4
    case int32 = 5
    case float32 = 6
    case bool = 7
    case string = 8
    case array = 9
    case uint64 = 10
    case int64 = 11
    case float64 = 12

    /// Bytes a value of this type occupies in a file at the very least: the fixed size of scalars, the length
    /// field of a string, and the element-type and count fields of an array.
    public var minimumEncodedSize: Int {
        switch self {
        case .uint8, .int8, .bool: 1
        case .uint16, .int16: 2
        case .uint32, .int32, .float32: 4
        case .uint64, .int64, .float64, .string: 8
        case .array: 12
        }
    }

    /// The specification's name for the type, e.g. `uint32`.
    public var description: String {
        switch self {
        case .uint8: "uint8"
        case .int8: "int8"
        case .uint16: "uint16"
        case .int16: "int16"
        case .uint32: "uint32"
        case .int32: "int32"
        case .float32: "float32"
        case .bool: "bool"
        case .string: "string"
        case .array: "array"
        case .uint64: "uint64"
        case .int64: "int64"
        case .float64: "float64"
        }
    }
}

/// One GGUF metadata value.
///
/// Scalars keep their exact stored type, so a file read and written back is unchanged. The accessors (``int``,
/// ``float``, ``string``, …) give a convenient view regardless of the stored width.
public enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8)
    case int8(Int8)
    case uint16(UInt16)
    case int16(Int16)
    case uint32(UInt32)
    case int32(Int32)
    case float32(Float)
    case bool(Bool)
    case string(String)
    case array(GGUFArray)
    case uint64(UInt64)
    case int64(Int64)
    case float64(Double)

    /// The stored type tag.
    public var type: GGUFValueType {
        switch self {
        case .uint8: .uint8
        case .int8: .int8
        case .uint16: .uint16
        case .int16: .int16
        case .uint32: .uint32
        case .int32: .int32
        case .float32: .float32
        case .bool: .bool
        case .string: .string
        case .array: .array
        case .uint64: .uint64
        case .int64: .int64
        case .float64: .float64
        }
    }

    /// The value of any integer type as `Int`; `nil` for non-integers and for a `uint64` above `Int.max`.
    public var int: Int? {
        switch self {
        case .uint8(let v): Int(v)
        case .int8(let v): Int(v)
        case .uint16(let v): Int(v)
        case .int16(let v): Int(v)
        case .uint32(let v): Int(v)
        case .int32(let v): Int(v)
        case .uint64(let v): Int(exactly: v)
        case .int64(let v): Int(v)
        default: nil
        }
    }

    /// The value of a float or integer type as `Double`; `nil` for strings, bools and arrays.
    public var double: Double? {
        switch self {
        case .float32(let v): Double(v)
        case .float64(let v): v
        case .uint64(let v): Double(v)
        default: int.map { Double($0) }
        }
    }

    /// The value of a float or integer type as `Float` (a `float64` is rounded); `nil` otherwise.
    public var float: Float? {
        switch self {
        case .float32(let v): v
        default: double.map { Float($0) }
        }
    }

    /// The string, if this is a string value.
    public var string: String? {
        if case .string(let v) = self { v } else { nil }
    }

    /// The flag, if this is a bool value.
    public var bool: Bool? {
        if case .bool(let v) = self { v } else { nil }
    }

    /// The array, if this is an array value.
    public var array: GGUFArray? {
        if case .array(let v) = self { v } else { nil }
    }

    /// The elements of a string array.
    public var stringArray: [String]? {
        if case .array(.string(let v)) = self { v } else { nil }
    }

    /// The elements of an array of any integer type as `Int`; `nil` if any `uint64` element exceeds `Int.max`.
    public var intArray: [Int]? { array?.intValues }

    /// The elements of an array of any float or integer type as `Float`.
    public var floatArray: [Float]? { array?.floatValues }

}

/// A GGUF metadata array: a count of elements that all share one type.
///
/// Elements are kept in typed Swift arrays (an array of 49 152 token ids is one `[Int32]`, not 49 152 enum values),
/// and the element type survives even when the array is empty.
public enum GGUFArray: Sendable, Equatable {
    case uint8([UInt8])
    case int8([Int8])
    case uint16([UInt16])
    case int16([Int16])
    case uint32([UInt32])
    case int32([Int32])
    case float32([Float])
    case bool([Bool])
    case string([String])
    /// An array of arrays; each inner array has its own element type.
    case array([GGUFArray])
    case uint64([UInt64])
    case int64([Int64])
    case float64([Double])

    /// The type tag of the elements.
    public var elementType: GGUFValueType {
        switch self {
        case .uint8: .uint8
        case .int8: .int8
        case .uint16: .uint16
        case .int16: .int16
        case .uint32: .uint32
        case .int32: .int32
        case .float32: .float32
        case .bool: .bool
        case .string: .string
        case .array: .array
        case .uint64: .uint64
        case .int64: .int64
        case .float64: .float64
        }
    }

    /// Number of elements.
    public var count: Int {
        switch self {
        case .uint8(let v): v.count
        case .int8(let v): v.count
        case .uint16(let v): v.count
        case .int16(let v): v.count
        case .uint32(let v): v.count
        case .int32(let v): v.count
        case .float32(let v): v.count
        case .bool(let v): v.count
        case .string(let v): v.count
        case .array(let v): v.count
        case .uint64(let v): v.count
        case .int64(let v): v.count
        case .float64(let v): v.count
        }
    }

    /// Whether the array has no elements.
    public var isEmpty: Bool { count == 0 }

    /// Element `index` as a ``GGUFValue``. `index` must be in `0..<count`.
    public subscript(index: Int) -> GGUFValue {
        switch self {
        case .uint8(let v): .uint8(v[index])
        case .int8(let v): .int8(v[index])
        case .uint16(let v): .uint16(v[index])
        case .int16(let v): .int16(v[index])
        case .uint32(let v): .uint32(v[index])
        case .int32(let v): .int32(v[index])
        case .float32(let v): .float32(v[index])
        case .bool(let v): .bool(v[index])
        case .string(let v): .string(v[index])
        case .array(let v): .array(v[index])
        case .uint64(let v): .uint64(v[index])
        case .int64(let v): .int64(v[index])
        case .float64(let v): .float64(v[index])
        }
    }

    /// All elements as ``GGUFValue``s.
    public var values: [GGUFValue] { (0..<count).map { self[$0] } }

    /// Integer elements as `Int`; `nil` for non-integer arrays or a `uint64` element above `Int.max`.
    public var intValues: [Int]? {
        switch self {
        case .uint8(let v): v.map { Int($0) }
        case .int8(let v): v.map { Int($0) }
        case .uint16(let v): v.map { Int($0) }
        case .int16(let v): v.map { Int($0) }
        case .uint32(let v): v.map { Int($0) }
        case .int32(let v): v.map { Int($0) }
        case .int64(let v): v.map { Int($0) }
        case .uint64(let v):
            v.allSatisfy { $0 <= UInt64(Int.max) } ? v.map { Int($0) } : nil
        case .float32, .float64, .bool, .string, .array: nil
        }
    }

    /// Float or integer elements as `Float`; `nil` for strings, bools and nested arrays.
    public var floatValues: [Float]? {
        switch self {
        case .float32(let v): v
        case .float64(let v): v.map { Float($0) }
        case .uint64(let v): v.map { Float($0) }
        default: intValues?.map { Float($0) }
        }
    }
}

extension GGUFValue: CustomStringConvertible {
    /// A short human-readable rendering: strings quoted, long arrays abbreviated after a few elements.
    public var description: String {
        switch self {
        case .uint8(let v): "\(v)"
        case .int8(let v): "\(v)"
        case .uint16(let v): "\(v)"
        case .int16(let v): "\(v)"
        case .uint32(let v): "\(v)"
        case .int32(let v): "\(v)"
        case .float32(let v): "\(v)"
        case .bool(let v): "\(v)"
        case .string(let v): quoted(v)
        case .array(let v): v.description
        case .uint64(let v): "\(v)"
        case .int64(let v): "\(v)"
        case .float64(let v): "\(v)"
        }
    }
}

extension GGUFArray: CustomStringConvertible {
    /// `[count × type] [first elements, …]`.
    public var description: String {
        let shown = (0..<Swift.min(count, 5)).map { self[$0].description }
        let more = count > shown.count ? ", …" : ""
        return "[\(count) × \(elementType)] [\(shown.joined(separator: ", "))\(more)]"
    }
}

/// Quotes a string for display, escaping control characters and cutting it after 60 characters.
private func quoted(_ text: String) -> String {
    var result = "\""
    for (index, character) in text.enumerated() {
        if index == 60 {
            result += "…"
            break
        }
        switch character {
        case "\n": result += "\\n"
        case "\t": result += "\\t"
        case "\r": result += "\\r"
        case "\"": result += "\\\""
        case "\\": result += "\\\\"
        default: result.append(character)
        }
    }
    return result + "\""
}
