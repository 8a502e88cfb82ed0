import CSeedKernels
import SeedTensor
import SeedTestSupport
import Testing

@testable import SeedKernels

/// The bf16 GEMM (`BFloat16Product`, `seed_bf16_*`) on every instruction set this CPU has: the rounding of inputs
/// is bit-identical across sets, and products match a float64 product of the bf16-rounded inputs within the
/// float32 summation bound. Switching the instruction set is global, so this suite runs serially under
/// `KernelInstructionSetLock`.
@Suite(.serialized) struct BFloat16ProductTests {
    static let pool = WorkerPool(threads: 2)
    static let singleThread = WorkerPool(threads: 1)

    static var instructionSets: [KernelInstructionSet] { KernelInstructionSet.allCases.filter { $0 <= .detected } }

    func using<T>(_ set: KernelInstructionSet, _ body: () throws -> T) rethrows -> T {
        try KernelInstructionSetLock.withLock {
            let before = KernelInstructionSet.current
            #expect(KernelInstructionSet.use(set) == set)
            defer { KernelInstructionSet.use(before) }
            return try body()
        }
    }

    /// Random values over several magnitudes, with exact ties of the bf16 rounding mixed in.
    func randomValues(_ count: Int, using rng: inout SplitMix) -> [Float] {
        (0..<count).map { i in
            let magnitude: Float = [0.001, 1, 40][i % 3]
            var v = (rng.nextFloat() * 2 - 1) * magnitude
            if i % 7 == 0 {  // make the low 16 bits exactly half an ulp of bf16: a tie
                v = Float(bitPattern: (v.bitPattern & 0xFFFF_0000) | 0x8000)
            }
            return v
        }
    }

    @Test func roundingIsNearestEvenWithQuietNaNsAndFlushedSubnormals() {
        let one = Float(1)
        let ulp = Float(0x1p-7)  // bf16 spacing at 1
        #expect(BFloat16Product.rounded(one + ulp / 2) == one)  // tie, to even (1.0)
        #expect(BFloat16Product.rounded(one + 3 * ulp / 2) == one + 2 * ulp)  // tie, to even (1 + 2 ulp)
        #expect(BFloat16Product.rounded(one + ulp / 2 + 0x1p-20) == one + ulp)  // above the tie
        #expect(BFloat16Product.rounded(-(one + ulp * 0.4)) == -one)
        #expect(BFloat16Product.rounded(.greatestFiniteMagnitude) == .infinity)
        #expect(BFloat16Product.rounded(-.infinity) == -.infinity)
        #expect(BFloat16Product.rounded(.nan).isNaN)
        #expect(seed_float_to_bf16(Float(bitPattern: 0x7F80_0001)) == 0x7FC0)  // signalling NaN quieted
        #expect(BFloat16Product.rounded(Float.leastNormalMagnitude / 4) == 0)
        #expect(BFloat16Product.rounded(-Float.leastNormalMagnitude / 4).sign == .minus)
        #expect(BFloat16Product.rounded(Float.leastNormalMagnitude) == Float.leastNormalMagnitude)
    }

    @Test func everyInstructionSetRoundsToTheSameBits() {
        var rng = SplitMix(state: 3)
        var values = randomValues(999, using: &rng)
        values += [
            0, -0, 1, -1, .infinity, -.infinity, .nan, Float(bitPattern: 0x7F80_0001), Float(bitPattern: 0xFFC1_2345),
            .greatestFiniteMagnitude, -.greatestFiniteMagnitude, .leastNormalMagnitude, .leastNonzeroMagnitude,
            -.leastNonzeroMagnitude, Float.leastNormalMagnitude / 3, Float(bitPattern: 0x3F80_8000),
            Float(bitPattern: 0x3F81_8000), Float(bitPattern: 0x7F7F_8000),
        ]
        let expected = values.map { seed_float_to_bf16($0) }
        for set in Self.instructionSets {
            // Every length up to 40 exercises the vector loop and its masked tail.
            for count in [values.count, 1, 15, 16, 17, 31, 32, 33, 40] {
                var bits = [UInt16](repeating: 0xDEAD, count: count)
                using(set) { seed_float_to_bf16_array(values, Int64(count), &bits) }
                #expect(bits == Array(expected[0..<count]), "\(set), \(count) values")
            }
        }
    }

    /// Packs `op(X)` of `[extent, k]` panels with `pack`, on `set`.
    func packed(
        _ set: KernelInstructionSet, operandA: Bool, transpose: Bool, extent: Int, k: Int, values: [Float], ld: Int
    ) -> [UInt16] {
        let width = operandA ? BFloat16Product.tileRows : BFloat16Product.tileColumns
        let panels = (extent + width - 1) / width
        let depth = (k + 1) / 2 * 2
        var out = [UInt16](repeating: 0xBEEF, count: panels * width * depth)
        using(set) {
            if operandA {
                seed_bf16_pack_a(values, Int64(ld), transpose ? 1 : 0, Int64(extent), Int64(k), 0, Int64(panels), &out)
            } else {
                seed_bf16_pack_b(values, Int64(ld), transpose ? 1 : 0, Int64(k), Int64(extent), 0, Int64(panels), &out)
            }
        }
        return out
    }

    @Test func everyInstructionSetPacksTheSameLayout() {
        var rng = SplitMix(state: 5)
        for operandA in [true, false] {
            for transpose in [false, true] {
                for (extent, k) in [(1, 1), (13, 3), (12, 32), (40, 33), (33, 70), (70, 65)] {
                    // The stored matrix: [extent, k] when the pairs are contiguous, else [k, extent]; 3 spare
                    // columns per row check that the leading dimension is honoured.
                    let contiguous = operandA != transpose
                    let storedRows = contiguous ? extent : k
                    let ld = (contiguous ? k : extent) + 3
                    let values = randomValues(storedRows * ld, using: &rng)
                    let reference = packed(
                        .scalar, operandA: operandA, transpose: transpose, extent: extent, k: k, values: values, ld: ld)
                    // The layout itself: element (i, kk) of op(X) at panel i / width, pair kk / 2.
                    let width = operandA ? BFloat16Product.tileRows : BFloat16Product.tileColumns
                    let depth = (k + 1) / 2 * 2
                    for (i, kk) in [(0, 0), (extent - 1, k - 1), (extent / 2, k / 2)] {
                        let element = contiguous ? values[i * ld + kk] : values[kk * ld + i]
                        let position = (i / width) * width * depth + 2 * ((kk / 2) * width + i % width) + kk % 2
                        #expect(reference[position] == seed_float_to_bf16(element))
                    }
                    if k % 2 == 1 { #expect(reference[2 * (k / 2) * width + 1] == 0, "K padding") }
                    for set in Self.instructionSets where set != .scalar {
                        let vector = packed(
                            set, operandA: operandA, transpose: transpose, extent: extent, k: k, values: values, ld: ld)
                        #expect(vector == reference, "\(set) A=\(operandA) T=\(transpose) [\(extent), \(k)]")
                    }
                }
            }
        }
    }

    /// `op(A) · op(B)` in float64 on bf16-rounded inputs, plus `c` when accumulating; also `Σ |a b| + |c|` per
    /// element for the error bound.
    func reference(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, a: [Float], lda: Int, b: [Float], ldb: Int,
        c: [Float], ldc: Int, accumulate: Bool
    ) -> (values: [Double], magnitudes: [Double]) {
        var values = [Double](repeating: 0, count: m * n)
        var magnitudes = [Double](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var sum = accumulate ? Double(c[i * ldc + j]) : 0
                var magnitude = abs(sum)
                for kk in 0..<k {
                    let x = Double(BFloat16Product.rounded(transposeA ? a[kk * lda + i] : a[i * lda + kk]))
                    let y = Double(BFloat16Product.rounded(transposeB ? b[j * ldb + kk] : b[kk * ldb + j]))
                    sum += x * y
                    magnitude += abs(x * y)
                }
                values[i * n + j] = sum
                magnitudes[i * n + j] = magnitude
            }
        }
        return (values, magnitudes)
    }

    @Test func matchesFloat64OnRoundedInputsForEveryTransposeAndInstructionSet() {
        var rng = SplitMix(state: 17)
        // Odd sizes, edges of both tile dimensions, and K past one cache block (256) so blocks accumulate.
        let shapes = [(1, 1, 1), (5, 7, 3), (12, 32, 2), (13, 33, 31), (37, 70, 64), (25, 40, 300), (100, 65, 257)]
        for set in Self.instructionSets {
            for (m, n, k) in shapes {
                for (transposeA, transposeB) in [(false, true), (false, false), (true, false), (true, true)] {
                    for accumulate in [false, true] {
                        let lda = (transposeA ? m : k) + 1
                        let ldb = (transposeB ? k : n) + 2
                        let ldc = n + 3
                        let a = randomValues((transposeA ? k : m) * lda, using: &rng)
                        let b = randomValues((transposeB ? n : k) * ldb, using: &rng)
                        let initial = randomValues(m * ldc, using: &rng)
                        var c = initial
                        using(set) {
                            BFloat16Product(pool: Self.pool).multiply(
                                transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, a: a, lda: lda,
                                b: b, ldb: ldb, accumulate: accumulate, c: &c, ldc: ldc)
                        }
                        let expected = reference(
                            transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, a: a, lda: lda, b: b,
                            ldb: ldb, c: initial, ldc: ldc, accumulate: accumulate)
                        var worst = 0.0
                        var padding = true
                        for i in 0..<m {
                            for j in 0..<n {
                                // Float32 summation of k + 1 exact products: |error| <= (k + 1) u Σ|terms|.
                                let bound = Double(k + 2) * 0x1p-24 * expected.magnitudes[i * n + j] + 1e-30
                                worst = max(worst, abs(Double(c[i * ldc + j]) - expected.values[i * n + j]) / bound)
                            }
                            for j in n..<ldc where c[i * ldc + j] != initial[i * ldc + j] { padding = false }
                        }
                        #expect(
                            worst <= 1, "\(set) [\(m), \(n), \(k)] tA \(transposeA) tB \(transposeB) acc \(accumulate)")
                        #expect(padding, "\(set): wrote outside [\(m), \(n)] of C")
                    }
                }
            }
        }
    }

    @Test func resultDoesNotDependOnTheThreadCount() {
        var rng = SplitMix(state: 23)
        let (m, n, k) = (203, 300, 333)
        let a = randomValues(m * k, using: &rng)
        let b = randomValues(n * k, using: &rng)
        var one = [Float](repeating: 0, count: m * n)
        var two = [Float](repeating: 1, count: m * n)
        KernelInstructionSetLock.withLock {
            BFloat16Product(pool: Self.singleThread).multiply(
                transposeA: false, transposeB: true, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: k, accumulate: false,
                c: &one, ldc: n)
            BFloat16Product(pool: Self.pool).multiply(
                transposeA: false, transposeB: true, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: k, accumulate: false,
                c: &two, ldc: n)
        }
        #expect(one == two)
        #expect(one.contains { $0 != 0 })
    }

    @Test func emptyDepthZeroesOrKeepsTheOutput() {
        let product = BFloat16Product(pool: Self.pool)
        let a: [Float] = [1]
        var c: [Float] = [5, 6, 7, 8]
        product.multiply(
            transposeA: false, transposeB: false, m: 2, n: 2, k: 0, a: a, lda: 1, b: a, ldb: 2, accumulate: true,
            c: &c, ldc: 2)
        #expect(c == [5, 6, 7, 8])
        product.multiply(
            transposeA: false, transposeB: false, m: 2, n: 2, k: 0, a: a, lda: 1, b: a, ldb: 2, accumulate: false,
            c: &c, ldc: 2)
        #expect(c == [0, 0, 0, 0])
    }
}
