import CSeedKernels
import SeedTensor

/// Mixed-precision matrix products for training: `C (+)= op(A) · op(B)` with float32 operands rounded to bfloat16
/// (round to nearest even) while they are packed, products summed in float32, float32 output, as PyTorch's CPU
/// autocast computes a bf16 matmul.
///
/// Each call packs both operands into panel layouts (see `CSeedKernels.h`) in parallel on the pool, then computes
/// blocks of C in parallel: on CPUs with AVX-512 BF16 with a 12 × 32 `vdpbf16ps` micro-kernel, elsewhere with
/// portable C that rounds the inputs identically (the float32 sums may differ in order). Every element of C is one
/// task's sum over K in a fixed order, so the result does not depend on the thread count.
///
/// Owns its packing buffers (grown on demand, never shrunk): after the first call with the largest shapes, calls
/// allocate nothing. Not thread-safe: one caller at a time; the work itself runs on ``pool``.
public final class BFloat16Product {
    /// The threads the products run on.
    public let pool: WorkerPool

    private var packedA = PackingBuffer()
    private var packedB = PackingBuffer()
    /// What ``packedB`` holds: B's address, `k`, `n` and transposition (nil before the first product).
    private var packedBSource: (b: UnsafePointer<Float>, k: Int, n: Int, transposed: Bool)?

    /// Rows of C per micro-kernel tile.
    public static var tileRows: Int { Int(SEED_BF16_TILE_ROWS) }
    /// Columns of C per micro-kernel tile.
    public static var tileColumns: Int { Int(SEED_BF16_TILE_COLUMNS) }

    /// Row panels per compute task: an A block of 192 rows × 256 K is 96 KiB, resident in L2.
    static let rowPanelsPerTask = 16
    /// Column panels per compute task (256 columns).
    static let columnPanelsPerTask = 8
    /// Panels per packing task.
    static let packPanelsPerTask = 8

    public init(pool: WorkerPool) {
        self.pool = pool
    }

    /// `C = op(A) · op(B)`, or `C += op(A) · op(B)` when `accumulate`, row-major.
    ///
    /// - Parameters:
    ///   - transposeA: `op(A) = Aᵀ`; `A` is then `[k, m]`, else `[m, k]`, rows `lda` floats apart.
    ///   - transposeB: `op(B) = Bᵀ`; `B` is then `[n, k]`, else `[k, n]`, rows `ldb` floats apart.
    ///   - c: `[m, n]`, rows `ldc` floats apart.
    ///   - reusePackedB: skip packing B and use the previous call's packed B. The caller promises that B's values
    ///     have not changed since that call (the output head's weights across the chunks of one cross-entropy);
    ///     its address, `k`, `n` and `transposeB` must be the same (checked).
    public func multiply(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int, accumulate: Bool, c: UnsafeMutablePointer<Float>, ldc: Int,
        reusePackedB: Bool = false
    ) {
        precondition(m >= 0 && n >= 0 && k >= 0, "bf16 product: negative shape [\(m), \(k)] x [\(k), \(n)]")
        if m == 0 || n == 0 { return }
        if k == 0 {
            if !accumulate { for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) } }
            return
        }
        let depth = (k + 1) / 2 * 2
        let rowPanels = (m + Self.tileRows - 1) / Self.tileRows
        let columnPanels = (n + Self.tileColumns - 1) / Self.tileColumns
        let pa = packedA.reserve(rowPanels * Self.tileRows * depth)
        let pb: UnsafeMutablePointer<UInt16>
        let group = Self.packPanelsPerTask
        let aTasks = (rowPanels + group - 1) / group
        let bTasks: Int
        if reusePackedB {
            let source = packedBSource
            precondition(
                source?.b == b && source?.k == k && source?.n == n && source?.transposed == transposeB,
                "bf16 product: reusePackedB with a different B than the previous call's")
            pb = packedB.reserve(0)
            bTasks = 0
        } else {
            pb = packedB.reserve(columnPanels * Self.tileColumns * depth)
            packedBSource = (b, k, n, transposeB)
            bTasks = (columnPanels + group - 1) / group
        }
        let m64 = Int64(m)
        let n64 = Int64(n)
        let k64 = Int64(k)
        pool.parallelFor(aTasks + bTasks) { task in
            if task < aTasks {
                let p0 = task * group
                let p1 = min(rowPanels, p0 + group)
                seed_bf16_pack_a(a, Int64(lda), transposeA ? 1 : 0, m64, k64, Int64(p0), Int64(p1), pa)
            } else {
                let p0 = (task - aTasks) * group
                let p1 = min(columnPanels, p0 + group)
                seed_bf16_pack_b(b, Int64(ldb), transposeB ? 1 : 0, k64, n64, Int64(p0), Int64(p1), pb)
            }
        }
        // Smaller blocks when the default ones would leave threads idle (fewer than four tasks per thread).
        let wanted = 4 * pool.threadCount
        var rowBlock = Self.rowPanelsPerTask
        var columnBlock = Self.columnPanelsPerTask
        func tasks() -> Int {
            ((rowPanels + rowBlock - 1) / rowBlock) * ((columnPanels + columnBlock - 1) / columnBlock)
        }
        while pool.threadCount > 1 && tasks() < wanted && (columnBlock > 2 || rowBlock > 4) {
            if columnBlock > 2 { columnBlock /= 2 } else { rowBlock /= 2 }
        }
        let rowBlocks = (rowPanels + rowBlock - 1) / rowBlock
        let columnBlocks = (columnPanels + columnBlock - 1) / columnBlock
        pool.parallelFor(rowBlocks * columnBlocks) { task in
            // Consecutive tasks share their A block (handed out in order, they run back to back on one thread).
            let r0 = (task / columnBlocks) * rowBlock
            let c0 = (task % columnBlocks) * columnBlock
            seed_bf16_gemm_packed(
                pa, pb, m64, n64, Int64(depth), Int64(r0), Int64(min(rowPanels, r0 + rowBlock)), Int64(c0),
                Int64(min(columnPanels, c0 + columnBlock)), c, Int64(ldc), accumulate ? 1 : 0)
        }
    }

    /// `x` rounded to bfloat16 (round to nearest even, as the packing does), back in float32.
    public static func rounded(_ x: Float) -> Float {
        Float(bitPattern: UInt32(seed_float_to_bf16(x)) << 16)
    }
}

/// A 64-byte-aligned buffer of bf16 elements that grows on demand.
private struct PackingBuffer: ~Copyable {
    private var pointer: UnsafeMutablePointer<UInt16>?
    private var capacity = 0

    /// A buffer of at least `count` elements (contents unspecified).
    mutating func reserve(_ count: Int) -> UnsafeMutablePointer<UInt16> {
        if let pointer, count <= capacity { return pointer }
        pointer?.deallocate()
        let grown = max(count, capacity + capacity / 2)
        let fresh = UnsafeMutableRawPointer.allocate(byteCount: grown * 2, alignment: 64)
            .bindMemory(to: UInt16.self, capacity: grown)
        pointer = fresh
        capacity = grown
        return fresh
    }

    deinit { pointer?.deallocate() }
}
