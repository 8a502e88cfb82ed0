import CSeedKernels
import SeedTensor

/// How generation steps (one token per sequence, alone or several sequences batched) treat the activations of
/// matrix products whose weights are Q4_0, Q4_1 or Q8_0.
public enum ActivationPrecision: String, Sendable, CaseIterable {
    /// Float32 activations against dequantized weights: matches a float32 reference up to summation order.
    case float32 = "f32"
    /// Activations rounded to 8 bits per block of 32 (scale = max|x| / 127), multiplied with integer dot
    /// products, as llama.cpp does. About twice as fast; logits move by up to about one unit (see BENCHMARKS.md).
    case int8
}

/// The instruction sets the C kernels (`CSeedKernels`) can run on, chosen by cpuid at run time.
public enum KernelInstructionSet: Int, Sendable, Comparable, CaseIterable, CustomStringConvertible {
    /// Portable C.
    case scalar = 0
    /// AVX2 + FMA + F16C (`vpmaddubsw`).
    case avx2 = 1
    /// AVX-512 VNNI (`vpdpbusd`).
    case avx512VNNI = 2
    /// AVX-512 VNNI plus AVX-512 BF16 (`vdpbf16ps`): the integer kernels run as at ``avx512VNNI``, the bf16 GEMM
    /// (``BFloat16Product``) uses its vector micro-kernel (below this level it runs portable C).
    case avx512BF16 = 3

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
        case .avx512BF16: "AVX-512 BF16"
        }
    }

    init(_ isa: seed_isa) { self = KernelInstructionSet(rawValue: Int(isa.rawValue)) ?? .scalar }
}

/// Activation rows `[tokens, columns]` quantized to 8 bits per block of 32, in the layout the integer kernels read:
/// token `t`'s bytes start at `bytes + t * columns`, its block scales at `blocks + t * columns / 32`. Owns its
/// memory; reused across calls (grows, never shrinks).
final class QuantizedActivations {
    private(set) var bytes: UnsafeMutablePointer<Int8>
    private(set) var blocks: UnsafeMutablePointer<seed_q8_block>
    /// Elements (bytes) the buffers hold.
    private var capacity: Int
    /// Blocks per token currently held.
    private(set) var count = 0
    /// Token rows currently held.
    private(set) var tokens = 0

    init(columns: Int = 0) {
        capacity = max(32, columns)
        bytes = .allocate(capacity: capacity)
        blocks = .allocate(capacity: capacity / 32)
    }

    deinit {
        bytes.deallocate()
        blocks.deallocate()
    }

    /// Quantizes one vector `x[0 ..< columns]`; `columns` must be a multiple of 32.
    func quantize(_ x: UnsafePointer<Float>, columns: Int) {
        quantize(x, xStride: columns, tokens: 1, columns: columns)
    }

    /// Quantizes `tokens` rows of `columns` floats, `xStride` floats apart; `columns` must be a multiple of 32. Each
    /// row is quantized on its own, exactly as ``quantize(_:columns:)`` would quantize it alone.
    func quantize(_ x: UnsafePointer<Float>, xStride: Int, tokens: Int, columns: Int) {
        let needed = tokens * columns
        if needed > capacity {
            bytes.deallocate()
            blocks.deallocate()
            capacity = needed
            bytes = .allocate(capacity: capacity)
            blocks = .allocate(capacity: capacity / 32)
        }
        count = columns / 32
        self.tokens = tokens
        for t in 0..<tokens {
            seed_quantize_q8(x + t * xStride, Int64(count), bytes + t * columns, blocks + t * count)
        }
    }

    /// The values token `token`'s quantized row stands for, in natural order: `[count * 32]`.
    func dequantized(token: Int = 0) -> [Float] {
        [Float](unsafeUninitializedCapacity: count * 32) { buffer, initialized in
            seed_dequantize_q8(bytes + token * count * 32, blocks + token * count, Int64(count), buffer.baseAddress!)
            initialized = count * 32
        }
    }

    /// Scale of block `b` of token `token` and the sum of the values its bytes stand for (`scale · Σ q`).
    func block(_ b: Int, token: Int = 0) -> (scale: Float, sum: Float) {
        let block = blocks[token * count + b]
        return (block.scale, block.sum)
    }

    /// Whether `type` has an integer kernel.
    static func supports(_ type: GGMLType) -> Bool {
        switch type {
        case .q4_0, .q4_1, .q8_0: true
        default: false
        }
    }

    /// `y[t * yStride + r] = Σ_c w[r, c] x_t[c]` for `r` in `rows` and every token row `t` held (which must have
    /// `w.columns` columns). One token takes the matrix-vector kernel; more take the multi-token kernel, which reads
    /// each weight row once for all of them and gives each token exactly the matrix-vector kernel's result.
    func multiply(_ w: WeightMatrix, rows: Range<Int>, into y: UnsafeMutablePointer<Float>, yStride: Int) {
        let begin = Int64(rows.lowerBound)
        let end = Int64(rows.upperBound)
        let n = Int64(count)
        if tokens == 1 {
            switch w.type {
            case .q4_1: seed_gemv_q4_1_q8(w.data, w.rowBytes, begin, end, n, bytes, blocks, y)
            case .q4_0: seed_gemv_q4_0_q8(w.data, w.rowBytes, begin, end, n, bytes, blocks, y)
            case .q8_0: seed_gemv_q8_0_q8(w.data, w.rowBytes, begin, end, n, bytes, blocks, y)
            default: y.advanced(by: rows.lowerBound).update(repeating: .nan, count: rows.count)  // see supports
            }
            return
        }
        let k = Int64(tokens)
        let stride = Int64(yStride)
        switch w.type {
        case .q4_1: seed_gemm_q4_1_q8(w.data, w.rowBytes, begin, end, n, k, bytes, blocks, y, stride)
        case .q4_0: seed_gemm_q4_0_q8(w.data, w.rowBytes, begin, end, n, k, bytes, blocks, y, stride)
        case .q8_0: seed_gemm_q8_0_q8(w.data, w.rowBytes, begin, end, n, k, bytes, blocks, y, stride)
        default:  // unreachable: see supports
            for t in 0..<tokens { (y + t * yStride + rows.lowerBound).update(repeating: .nan, count: rows.count) }
        }
    }
}
