import CBLAS
import SeedTensor

/// One product shape of ``BFloat16ProductBenchmark``: `C[m, n] = op(A)[m, k] · op(B)[k, n]`.
public struct ProductShape: Sendable, Equatable, CustomStringConvertible {
    public var m: Int
    public var n: Int
    public var k: Int
    public var transposeA: Bool
    public var transposeB: Bool

    public init(m: Int, n: Int, k: Int, transposeA: Bool = false, transposeB: Bool = true) {
        self.m = m
        self.n = n
        self.k = k
        self.transposeA = transposeA
        self.transposeB = transposeB
    }

    /// Parses `MxNxK` with an optional `:XY` suffix, X and Y each `n` (as stored) or `t` (transposed) for A and B;
    /// default `:nt` (a linear layer's forward, `X · Wᵀ`).
    ///
    /// - Throws: ``KernelError/invalidShape(_:)`` naming the text when it is not of that form or a size is not
    ///   positive.
    public init(parsing text: String) throws(KernelError) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        let sizes = parts[0].split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
        guard parts.count <= 2, sizes.count == 3, let m = sizes[0], let n = sizes[1], let k = sizes[2],
            m > 0, n > 0, k > 0
        else {
            throw .invalidShape("'\(text)': expected MxNxK with positive sizes, optionally :nn, :nt, :tn or :tt")
        }
        var transposes = (false, true)
        if parts.count == 2 {
            switch parts[1] {
            case "nn": transposes = (false, false)
            case "nt": transposes = (false, true)
            case "tn": transposes = (true, false)
            case "tt": transposes = (true, true)
            default: throw .invalidShape("'\(text)': the suffix must be :nn, :nt, :tn or :tt")
            }
        }
        self.init(m: m, n: n, k: k, transposeA: transposes.0, transposeB: transposes.1)
    }

    /// Floating-point operations of one product (`2 m n k`).
    public var flops: Double { 2 * Double(m) * Double(n) * Double(k) }

    public var description: String { "\(m)x\(n)x\(k):\(transposeA ? "t" : "n")\(transposeB ? "t" : "n")" }
}

/// GFLOP/s of the bf16 product against float32 OpenBLAS sgemm on the same shapes and threads: the `seed
/// bench-gemm` measurement.
///
/// The sgemm side is what training's float32 mode runs (`Tape.gemm`): C split into one contiguous block of rows or
/// columns per thread, each a single-threaded `cblas_sgemm` call on the pool. Each repeat times both engines in
/// turn (alternating which goes first), each over enough back-to-back products to last about `minimumSeconds`.
public enum BFloat16ProductBenchmark {
    /// One shape's measurements.
    public struct Result: Sendable {
        public var shape: ProductShape
        public var threads: Int
        /// GFLOP/s of each repeat.
        public var bf16: [Double]
        public var sgemm: [Double]

        public var medianBF16: Double { median(bf16) }
        public var medianSgemm: Double { median(sgemm) }
        /// bf16 / sgemm of the medians.
        public var ratio: Double { medianSgemm > 0 ? medianBF16 / medianSgemm : 0 }
    }

    /// Measures `shape` `repeats` times on `pool`.
    public static func run(shape: ProductShape, pool: WorkerPool, repeats: Int, minimumSeconds: Double = 0.2)
        -> Result
    {
        openblas_set_num_threads(1)
        let aCount = shape.m * shape.k
        let bCount = shape.k * shape.n
        var rng: UInt64 = 0x5EED
        func fill(_ count: Int) -> [Float] {
            (0..<count).map { _ in
                rng = rng &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return Float(Int64(bitPattern: rng) >> 40) / Float(1 << 23)
            }
        }
        let a = fill(aCount)
        let b = fill(bCount)
        var c = [Float](repeating: 0, count: shape.m * shape.n)
        let product = BFloat16Product(pool: pool)
        let lda = shape.transposeA ? shape.m : shape.k
        let ldb = shape.transposeB ? shape.k : shape.n
        func runBF16(_ c: UnsafeMutablePointer<Float>) {
            product.multiply(
                transposeA: shape.transposeA, transposeB: shape.transposeB, m: shape.m, n: shape.n, k: shape.k, a: a,
                lda: lda, b: b, ldb: ldb, accumulate: false, c: c, ldc: shape.n)
        }
        func runSgemm(_ c: UnsafeMutablePointer<Float>) {
            splitSgemm(shape: shape, pool: pool, a: a, lda: lda, b: b, ldb: ldb, c: c)
        }
        var result = Result(shape: shape, threads: pool.threadCount, bf16: [], sgemm: [])
        c.withUnsafeMutableBufferPointer { out in
            let pointer = out.baseAddress!
            // Warm-up (and the packing buffers' first allocation), then the iteration count for ~minimumSeconds.
            runBF16(pointer)
            runSgemm(pointer)
            let once = max(time(1) { runSgemm(pointer) }, 1e-6)
            let iterations = max(1, Int((minimumSeconds / once).rounded(.up)))
            for repeatIndex in 0..<repeats {
                let bf16First = repeatIndex % 2 == 0
                for engine in bf16First ? [0, 1] : [1, 0] {
                    if engine == 0 {
                        let seconds = time(iterations) { runBF16(pointer) }
                        result.bf16.append(shape.flops / seconds / 1e9)
                    } else {
                        let seconds = time(iterations) { runSgemm(pointer) }
                        result.sgemm.append(shape.flops / seconds / 1e9)
                    }
                }
            }
        }
        return result
    }

    /// Seconds per call of `body`, averaged over `iterations` calls.
    private static func time(_ iterations: Int, _ body: () -> Void) -> Double {
        let clock = ContinuousClock()
        let start = clock.now
        for _ in 0..<iterations { body() }
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        return seconds / Double(iterations)
    }

    /// `C = op(A) op(B)` as training's float32 `Tape.gemm` computes it: one single-threaded sgemm per thread on a
    /// contiguous block of C's longer dimension (multiples of 16).
    static func splitSgemm(
        shape: ProductShape, pool: WorkerPool, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        c: UnsafeMutablePointer<Float>
    ) {
        let (m, n, k) = (shape.m, shape.n, shape.k)
        let ta = shape.transposeA ? CblasTrans : CblasNoTrans
        let tb = shape.transposeB ? CblasTrans : CblasNoTrans
        let threads = pool.threadCount
        func call(m: Int, n: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>) {
            cblas_sgemm(
                CblasRowMajor, ta, tb, Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), 0, c,
                Int32(shape.n))
        }
        if threads == 1 {
            call(m: m, n: n, a: a, b: b, c: c)
        } else if n >= m {
            let block = ((n + threads - 1) / threads + 15) / 16 * 16
            pool.parallelFor((n + block - 1) / block) { part in
                let n0 = part * block
                call(m: m, n: min(block, n - n0), a: a, b: shape.transposeB ? b + n0 * ldb : b + n0, c: c + n0)
            }
        } else {
            let block = ((m + threads - 1) / threads + 15) / 16 * 16
            pool.parallelFor((m + block - 1) / block) { part in
                let m0 = part * block
                call(
                    m: min(block, m - m0), n: n, a: shape.transposeA ? a + m0 : a + m0 * lda, b: b,
                    c: c + m0 * shape.n)
            }
        }
    }
}

private func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return 0 }
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}
