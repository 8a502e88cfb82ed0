import CSeedKernels
import SeedTensor

/// How single-token matrix products (generation) treat the activation vector when the weights are Q4_0, Q4_1 or
/// Q8_0.
public enum ActivationPrecision: String, Sendable, CaseIterable {
    /// Float32 activations against dequantized weights: matches a float32 reference up to summation order.
    case float32 = "f32"
    /// Activations rounded to 8 bits per block of 32 (scale = max|x| / 127), multiplied with integer dot
    /// products, as llama.cpp does. About twice as fast; logits move by up to about one unit (see BENCHMARKS.md).
    case int8
}

/// The instruction sets the integer kernels (`CSeedKernels`) can run on, chosen by cpuid at run time.
public enum KernelInstructionSet: Int, Sendable, Comparable, CaseIterable, CustomStringConvertible {
    /// Portable C.
    case scalar = 0
    /// AVX2 + FMA + F16C (`vpmaddubsw`).
    case avx2 = 1
    /// AVX-512 VNNI (`vpdpbusd`).
    case avx512VNNI = 2

    /// The best set this CPU supports.
    public static var detected: KernelInstructionSet { KernelInstructionSet(seed_kernels_detected_isa()) }

    /// The set the kernels use now (``detected`` unless overridden).
    public static var current: KernelInstructionSet { KernelInstructionSet(seed_kernels_isa()) }

    /// Makes the kernels use `set` (at most ``detected``); returns the set now in use. For tests and benchmarks:
    /// must not be called while kernels run.
    @discardableResult
    public static func use(_ set: KernelInstructionSet) -> KernelInstructionSet {
        KernelInstructionSet(seed_kernels_set_isa(seed_isa(rawValue: UInt32(set.rawValue))))
    }

    public static func < (a: KernelInstructionSet, b: KernelInstructionSet) -> Bool { a.rawValue < b.rawValue }

    public var description: String {
        switch self {
        case .scalar: "scalar"
        case .avx2: "AVX2"
        case .avx512VNNI: "AVX-512 VNNI"
        }
    }

    init(_ isa: seed_isa) { self = KernelInstructionSet(rawValue: Int(isa.rawValue)) ?? .scalar }
}

/// An activation vector `[columns]` quantized to 8 bits per block of 32, in the layout the integer kernels read.
/// Owns its memory; reused across calls (grows, never shrinks).
final class QuantizedActivations {
    private(set) var bytes: UnsafeMutablePointer<Int8>
    private(set) var blocks: UnsafeMutablePointer<seed_q8_block>
    private var capacity: Int
    /// Blocks currently held.
    private(set) var count = 0

    init(columns: Int = 0) {
        capacity = max(32, columns)
        bytes = .allocate(capacity: capacity)
        blocks = .allocate(capacity: capacity / 32)
    }

    deinit {
        bytes.deallocate()
        blocks.deallocate()
    }

    /// Quantizes `x[0 ..< columns]`; `columns` must be a multiple of 32.
    func quantize(_ x: UnsafePointer<Float>, columns: Int) {
        if columns > capacity {
            bytes.deallocate()
            blocks.deallocate()
            capacity = columns
            bytes = .allocate(capacity: capacity)
            blocks = .allocate(capacity: capacity / 32)
        }
        count = columns / 32
        seed_quantize_q8(x, Int64(count), bytes, blocks)
    }

    /// The values the quantized vector stands for, in natural order: `[count * 32]`.
    func dequantized() -> [Float] {
        [Float](unsafeUninitializedCapacity: count * 32) { buffer, initialized in
            seed_dequantize_q8(bytes, blocks, Int64(count), buffer.baseAddress!)
            initialized = count * 32
        }
    }

    /// Scale of block `b` and the sum of the values its bytes stand for (`scale · Σ q`).
    func block(_ b: Int) -> (scale: Float, sum: Float) { (blocks[b].scale, blocks[b].sum) }

    /// Whether `type` has an integer kernel.
    static func supports(_ type: GGMLType) -> Bool {
        switch type {
        case .q4_0, .q4_1, .q8_0: true
        default: false
        }
    }

    /// `y[r] = Σ_c w[r, c] x[c]` for `r` in `rows`, against this quantized vector (which must hold `w.columns`).
    func multiply(_ w: WeightMatrix, rows: Range<Int>, into y: UnsafeMutablePointer<Float>) {
        let begin = Int64(rows.lowerBound)
        let end = Int64(rows.upperBound)
        let n = Int64(count)
        switch w.type {
        case .q4_1: seed_gemv_q4_1_q8(w.data, w.rowBytes, begin, end, n, bytes, blocks, y)
        case .q4_0: seed_gemv_q4_0_q8(w.data, w.rowBytes, begin, end, n, bytes, blocks, y)
        case .q8_0: seed_gemv_q8_0_q8(w.data, w.rowBytes, begin, end, n, bytes, blocks, y)
        default: y.advanced(by: rows.lowerBound).update(repeating: .nan, count: rows.count)  // unreachable: see supports
        }
    }
}
