/// A ggml storage type, numbered exactly as ggml's `enum ggml_type` (and therefore as GGUF tensor infos store it).
///
/// Every type stores its elements in fixed-size blocks: `blockSize` elements occupy `typeSize` bytes. Plain types
/// (`f32`, `f16`, `bf16`, `f64`, and the integer types) have one element per block.
///
/// Some types are *known but unsupported*: their layout sizes are known, so tensors of those types can be listed
/// and their byte ranges validated, but ``isSupported`` is `false` and ``dequantize(_:from:count:into:)`` rejects
/// them. Identifiers that ggml has retired (4, 5, 31–33, 36–38) have no case here.
public enum GGMLType: UInt32, Sendable, CaseIterable {
    case f32 = 0
    case f16 = 1
    case q4_0 = 2
    case q4_1 = 3
    case q5_0 = 6
    case q5_1 = 7
    case q8_0 = 8
    case q8_1 = 9
    case q2_K = 10
    case q3_K = 11
    case q4_K = 12
    case q5_K = 13
    case q6_K = 14
    case q8_K = 15
    case iq2_xxs = 16
    case iq2_xs = 17
    case iq3_xxs = 18
    case iq1_s = 19
    case iq4_nl = 20
    case iq3_s = 21
    case iq2_s = 22
    case iq4_xs = 23
    case i8 = 24
    case i16 = 25
    case i32 = 26
    case i64 = 27
    case f64 = 28
    case iq1_m = 29
    case bf16 = 30
    case tq1_0 = 34
    case tq2_0 = 35
    case mxfp4 = 39
    case nvfp4 = 40
    case q1_0 = 41

    /// Elements per super-block of the k-quant types (ggml's `QK_K`).
    public static let superBlockSize = 256

    /// Number of elements stored in one block.
    public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16, .f64, .i8, .i16, .i32, .i64:
            1
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q8_1, .iq4_nl, .mxfp4:
            32
        case .nvfp4:
            64
        case .q1_0:
            128
        case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .q8_K, .iq2_xxs, .iq2_xs, .iq3_xxs, .iq1_s, .iq3_s, .iq2_s,
            .iq4_xs, .iq1_m, .tq1_0, .tq2_0:
            Self.superBlockSize
        }
    }

    /// Number of bytes one block occupies (ggml's `type_size`).
    public var typeSize: Int {
        switch self {
        case .f32: 4
        case .f16: 2
        case .bf16: 2
        case .f64: 8
        case .i8: 1
        case .i16: 2
        case .i32: 4
        case .i64: 8
        case .q4_0: 2 + 16  // f16 d, 32 nibbles
        case .q4_1: 2 + 2 + 16  // f16 d, f16 m, 32 nibbles
        case .q5_0: 2 + 4 + 16  // f16 d, 32 high bits, 32 nibbles
        case .q5_1: 2 + 2 + 4 + 16  // f16 d, f16 m, 32 high bits, 32 nibbles
        case .q8_0: 2 + 32  // f16 d, 32 int8
        case .q8_1: 2 + 2 + 32  // f16 d, f16 s, 32 int8
        case .q2_K: 16 + 64 + 2 + 2  // scales, 2-bit quants, f16 d, f16 dmin
        case .q3_K: 32 + 64 + 12 + 2  // high-bit mask, 2-bit quants, 6-bit scales, f16 d
        case .q4_K: 2 + 2 + 12 + 128  // f16 d, f16 dmin, 6-bit scales/mins, nibbles
        case .q5_K: 2 + 2 + 12 + 32 + 128  // f16 d, f16 dmin, 6-bit scales/mins, high bits, nibbles
        case .q6_K: 128 + 64 + 16 + 2  // low nibbles, high 2 bits, int8 scales, f16 d
        case .q8_K: 4 + 256 + 32  // f32 d, 256 int8, 16 int16 block sums
        case .iq2_xxs: 2 + 64
        case .iq2_xs: 2 + 64 + 8
        case .iq3_xxs: 2 + 64 + 32
        case .iq1_s: 2 + 32 + 16
        case .iq4_nl: 2 + 16
        case .iq3_s: 2 + 64 + 32 + 8 + 4
        case .iq2_s: 2 + 64 + 16
        case .iq4_xs: 2 + 2 + 128 + 4
        case .iq1_m: 32 + 16 + 8
        case .tq1_0: 2 + 4 * 13
        case .tq2_0: 2 + 64
        case .mxfp4: 1 + 16
        case .nvfp4: 4 + 32
        case .q1_0: 2 + 16
        }
    }

    /// ggml's name for the type (`ggml_type_name`): lowercase, except the `K` of the k-quants, e.g. `"q4_1"`,
    /// `"q4_K"`, `"bf16"`, `"iq2_xxs"`.
    public var name: String {
        switch self {
        case .f32: "f32"
        case .f16: "f16"
        case .q4_0: "q4_0"
        case .q4_1: "q4_1"
        case .q5_0: "q5_0"
        case .q5_1: "q5_1"
        case .q8_0: "q8_0"
        case .q8_1: "q8_1"
        case .q2_K: "q2_K"
        case .q3_K: "q3_K"
        case .q4_K: "q4_K"
        case .q5_K: "q5_K"
        case .q6_K: "q6_K"
        case .q8_K: "q8_K"
        case .iq2_xxs: "iq2_xxs"
        case .iq2_xs: "iq2_xs"
        case .iq3_xxs: "iq3_xxs"
        case .iq1_s: "iq1_s"
        case .iq4_nl: "iq4_nl"
        case .iq3_s: "iq3_s"
        case .iq2_s: "iq2_s"
        case .iq4_xs: "iq4_xs"
        case .i8: "i8"
        case .i16: "i16"
        case .i32: "i32"
        case .i64: "i64"
        case .f64: "f64"
        case .iq1_m: "iq1_m"
        case .bf16: "bf16"
        case .tq1_0: "tq1_0"
        case .tq2_0: "tq2_0"
        case .mxfp4: "mxfp4"
        case .nvfp4: "nvfp4"
        case .q1_0: "q1_0"
        }
    }

    /// Whether ``dequantize(_:from:count:into:)`` can decode this type.
    public var isSupported: Bool {
        switch self {
        case .f32, .f16, .bf16, .f64, .i8, .i16, .i32, .i64,
            .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q8_1,
            .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .q8_K:
            true
        case .iq2_xxs, .iq2_xs, .iq3_xxs, .iq1_s, .iq4_nl, .iq3_s, .iq2_s, .iq4_xs, .iq1_m,
            .tq1_0, .tq2_0, .mxfp4, .nvfp4, .q1_0:
            false
        }
    }

    /// Whether ``quantize(_:from:count:into:)`` can encode this type.
    public var isQuantizationSupported: Bool {
        switch self {
        case .f32, .f16, .bf16, .f64, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1:
            true
        default:
            false
        }
    }

    /// Whether the type is block-quantized (more than a plain per-element encoding).
    public var isQuantized: Bool {
        switch self {
        case .f32, .f16, .bf16, .f64, .i8, .i16, .i32, .i64: false
        default: true
        }
    }

    /// Looks a type up by its ggml name (``name``), case-insensitively: `"Q4_K"`, `"q4_k"` and `"q4_K"` all match.
    public init?(name: String) {
        let wanted = name.lowercased()
        guard let match = Self.allCases.first(where: { $0.name.lowercased() == wanted }) else { return nil }
        self = match
    }

    /// Number of bytes needed to store `elements` elements of this type.
    ///
    /// - Throws: ``QuantizationError/negativeCount(_:)`` for a negative count,
    ///   ``QuantizationError/countNotMultipleOfBlockSize(type:count:)`` when `elements` does not fill whole blocks,
    ///   ``QuantizationError/byteCountOverflow(type:elements:)`` when the size does not fit in `Int`.
    public func byteCount(elements: Int) throws(QuantizationError) -> Int {
        guard elements >= 0 else { throw .negativeCount(elements) }
        guard elements % blockSize == 0 else { throw .countNotMultipleOfBlockSize(type: self, count: elements) }
        let (bytes, overflow) = (elements / blockSize).multipliedReportingOverflow(by: typeSize)
        guard !overflow else { throw .byteCountOverflow(type: self, elements: elements) }
        return bytes
    }

    /// ggml type identifiers that ggml once used and has since removed, with their former names.
    ///
    /// Useful to explain why a file's tensor type cannot be loaded.
    public static func retiredName(rawValue: UInt32) -> String? {
        switch rawValue {
        case 4: "q4_2"
        case 5: "q4_3"
        case 31: "q4_0_4_4"
        case 32: "q4_0_4_8"
        case 33: "q4_0_8_8"
        case 36: "iq4_nl_4_4"
        case 37: "iq4_nl_4_8"
        case 38: "iq4_nl_8_8"
        default: nil
        }
    }
}

extension GGMLType: CustomStringConvertible {
    /// The ggml name, e.g. `q4_K`.
    public var description: String { name }
}

/// Errors from encoding or decoding ggml-typed data.
public enum QuantizationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The type cannot be decoded (or, for `quantize`, encoded) by this implementation.
    case unsupportedType(GGMLType, operation: Operation)
    /// The element count is not a whole number of blocks of the type.
    case countNotMultipleOfBlockSize(type: GGMLType, count: Int)
    /// The byte size of `elements` elements does not fit in `Int`.
    case byteCountOverflow(type: GGMLType, elements: Int)
    /// A negative element count was given.
    case negativeCount(Int)
    /// A source buffer holds fewer bytes than the requested elements need.
    case bufferTooSmall(type: GGMLType, needed: Int, available: Int)

    /// The direction of a conversion.
    public enum Operation: String, Sendable, Equatable {
        case dequantize
        case quantize
    }

    /// One sentence naming the type and the problem.
    public var description: String {
        switch self {
        case .unsupportedType(let type, let operation):
            "cannot \(operation.rawValue) ggml type \(type.name) (id \(type.rawValue)): not supported"
        case .countNotMultipleOfBlockSize(let type, let count):
            "element count \(count) is not a multiple of the \(type.name) block size \(type.blockSize)"
        case .byteCountOverflow(let type, let elements):
            "byte size of \(elements) elements of type \(type.name) overflows"
        case .negativeCount(let count):
            "element count \(count) is negative"
        case .bufferTooSmall(let type, let needed, let available):
            "\(type.name) data needs \(needed) bytes but the buffer holds only \(available)"
        }
    }
}
