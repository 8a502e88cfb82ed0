import SeedTensor
import SeedTestSupport
import Synchronization
import Testing

@testable import SeedKernels

/// The integer kernels (8-bit activations, `CSeedKernels`) on every instruction set this CPU has, against naive
/// double-precision references. Switching the instruction set is global, so this suite runs serially, and tests
/// elsewhere that compare runs bit for bit hold `KernelInstructionSetLock` so that it never switches under them.
@Suite(.serialized) struct QuantizedProductTests {
    static let pool = WorkerPool(threads: 2)

    /// Scalar, and every vector set up to the detected one.
    static var instructionSets: [KernelInstructionSet] { KernelInstructionSet.allCases.filter { $0 <= .detected } }

    /// Runs `body` on `set`, holding the lock shared with every test that needs one instruction set throughout (in
    /// this suite and others), so no test ever sees the set switched under it.
    func using<T>(_ set: KernelInstructionSet, _ body: () throws -> T) rethrows -> T {
        try KernelInstructionSetLock.withLock {
            let before = KernelInstructionSet.current
            #expect(KernelInstructionSet.use(set) == set)
            defer { KernelInstructionSet.use(before) }
            return try body()
        }
    }

    /// Random activations with a spread of block magnitudes, an all-zero block and a block with one outlier.
    func activations(columns: Int, using rng: inout SplitMix) -> [Float] {
        var x = (0..<columns).map { i -> Float in
            let magnitude: Float = [0.01, 1, 30][(i / 32) % 3]
            return (rng.nextFloat() * 2 - 1) * magnitude
        }
        if columns >= 64 {
            for j in 32..<64 { x[j] = 0 }
        }
        if columns >= 96 { x[70] = 500 }
        return x
    }

    @Test func quantizedActivationsRoundTripWithinHalfAStep() throws {
        var rng = SplitMix(state: 11)
        for columns in [32, 64, 96, 160, 576, 1536] {
            let x = activations(columns: columns, using: &rng)
            var results: [[Float]] = []
            for set in Self.instructionSets {
                let q = QuantizedActivations()
                using(set) { x.withUnsafeBufferPointer { q.quantize($0.baseAddress!, columns: columns) } }
                let restored = q.dequantized()
                for b in 0..<(columns / 32) {
                    let block = x[(b * 32)..<(b * 32 + 32)]
                    let amax = block.map(abs).max()!
                    let (scale, sum) = q.block(b)
                    #expect(scale == amax / 127, "\(set) block \(b): scale \(scale) for max \(amax)")
                    let restoredBlock = restored[(b * 32)..<(b * 32 + 32)]
                    let restoredSum = restoredBlock.reduce(0.0) { $0 + Double($1) }
                    let absSum = restoredBlock.reduce(0.0) { $0 + Double(abs($1)) }
                    #expect(abs(Double(sum) - restoredSum) <= 1e-6 * absSum, "\(set) block \(b) sum")
                    for j in 0..<32 {
                        let error = abs(restored[b * 32 + j] - x[b * 32 + j])
                        #expect(error <= scale / 2 * 1.0001, "\(set) [\(columns)] element \(b * 32 + j)")
                    }
                }
                results.append(restored)
            }
            // Every instruction set rounds the same way (ties to even), so the bytes agree exactly.
            for r in results.dropFirst() { #expect(r == results[0], "[\(columns)] instruction sets disagree") }
        }
    }

    @Test(arguments: [GGMLType.q4_1, .q4_0, .q8_0])
    func integerProductsMatchNaiveReferences(type: GGMLType) throws {
        var rng = SplitMix(state: UInt64(type.rawValue) &+ 101)
        for (rows, columns) in [(1, 32), (3, 64), (17, 96), (64, 576), (33, 160), (130, 224), (5, 1536)] {
            let bytes = randomWeights(type, rows: rows, columns: columns, using: &rng)
            let x = activations(columns: columns, using: &rng)
            var w = [Float](repeating: 0, count: rows * columns)
            try bytes.withUnsafeBytes { raw in
                try dequantize(type, from: raw.baseAddress!, count: rows * columns, into: &w)
            }
            let blocks = columns / 32
            for set in Self.instructionSets {
                let multiplier = MatrixMultiplier(pool: Self.pool)
                var y = [Float](repeating: .nan, count: rows)
                try using(set) {
                    try bytes.withUnsafeBytes { raw in
                        let matrix = try WeightMatrix(type: type, rows: rows, columns: columns, data: raw.baseAddress!)
                        multiplier.multiply(matrix, x, tokens: 1, into: &y)
                    }
                }
                // The activations the kernel saw.
                let q = QuantizedActivations()
                x.withUnsafeBufferPointer { q.quantize($0.baseAddress!, columns: columns) }
                let restored = q.dequantized()
                for r in 0..<rows {
                    // What the kernel computes: the product with the quantized activations x̂, exactly.
                    var expected = 0.0
                    var magnitude = 0.0
                    // Σ |w|·scale/2 ≥ |Σ w (x̂ - x)|: the most 8-bit activations can move the exact product.
                    var quantizationBound = 0.0
                    var exact = 0.0
                    for c in 0..<columns {
                        let weight = Double(w[r * columns + c])
                        expected += weight * Double(restored[c])
                        magnitude += abs(weight * Double(restored[c]))
                        quantizationBound += abs(weight) * Double(q.block(c / 32).scale) / 2
                        exact += weight * Double(x[c])
                    }
                    let got = Double(y[r])
                    #expect(
                        abs(got - expected) <= 1e-5 * magnitude + 1e-6,
                        "\(type.name) \(set) [\(rows)x\(columns)] row \(r): \(got) vs \(expected)")
                    #expect(
                        abs(got - exact) <= quantizationBound * 1.001 + 1e-5 * magnitude + 1e-6,
                        "\(type.name) \(set) [\(rows)x\(columns)] row \(r): \(got) vs exact \(exact)")
                }
            }
        }
    }

    /// The multi-token integer kernels (several sequences' decode steps in one product): per token, exactly the
    /// one-token kernel's result, and the exact product with that token's quantized activations.
    @Test(arguments: [GGMLType.q4_1, .q4_0, .q8_0])
    func multiTokenProductsEqualTheVectorKernelPerTokenAndMatchNaiveReferences(type: GGMLType) throws {
        var rng = SplitMix(state: UInt64(type.rawValue) &+ 707)
        // (rows, columns, tokens): odd and even block counts (the unpaired last block), block counts that are and are
        // not multiples of four, token counts around the kernels' groups of four, up to 32.
        let shapes = [
            (1, 32, 2), (3, 64, 5), (17, 96, 4), (64, 576, 16), (33, 160, 3), (130, 224, 7), (5, 1536, 32),
            (40, 288, 9), (7, 448, 1),
        ]
        for (rows, columns, tokens) in shapes {
            let bytes = randomWeights(type, rows: rows, columns: columns, using: &rng)
            // Token rows `xStride` floats apart (padding filled with garbage the kernels must not read).
            let xStride = columns + 8
            var x = [Float](repeating: .nan, count: tokens * xStride)
            for t in 0..<tokens {
                let row = activations(columns: columns, using: &rng)
                for c in 0..<columns { x[t * xStride + c] = row[c] * Float(t + 1) }
            }
            var w = [Float](repeating: 0, count: rows * columns)
            try bytes.withUnsafeBytes { raw in
                try dequantize(type, from: raw.baseAddress!, count: rows * columns, into: &w)
            }
            let yStride = rows + 3
            for set in Self.instructionSets {
                let multiplier = MatrixMultiplier(pool: Self.pool)
                multiplier.singleTokenActivations = .float32  // the explicit `.int8` must win
                var y = [Float](repeating: -1, count: tokens * yStride)
                var alone = [[Float]](repeating: [], count: tokens)
                try using(set) {
                    try bytes.withUnsafeBytes { raw in
                        let matrix = try WeightMatrix(type: type, rows: rows, columns: columns, data: raw.baseAddress!)
                        multiplier.multiply(
                            matrix, x, xStride: xStride, tokens: tokens, into: &y, yStride: yStride,
                            activations: .int8)
                        for t in 0..<tokens {
                            var one = [Float](repeating: .nan, count: rows)
                            x.withUnsafeBufferPointer { xp in
                                multiplier.multiply(
                                    matrix, xp.baseAddress! + t * xStride, tokens: 1, into: &one, activations: .int8)
                            }
                            alone[t] = one
                        }
                    }
                }
                let label = "\(type.name) \(set) [\(rows)x\(columns)] × \(tokens) tokens"
                for t in 0..<tokens {
                    let got = Array(y[(t * yStride)..<(t * yStride + rows)])
                    // Bit for bit (compared as bit patterns, so that even a NaN would have to match).
                    #expect(got.map(\.bitPattern) == alone[t].map(\.bitPattern), "\(label): token \(t) differs")
                    // The padding between output rows is untouched.
                    #expect(y[(t * yStride + rows)..<(t * yStride + yStride)].allSatisfy { $0 == -1 }, "\(label)")
                    let q = QuantizedActivations()
                    x.withUnsafeBufferPointer { q.quantize($0.baseAddress! + t * xStride, columns: columns) }
                    let restored = q.dequantized()
                    for r in 0..<rows {
                        var expected = 0.0
                        var magnitude = 0.0
                        for c in 0..<columns {
                            let product = Double(w[r * columns + c]) * Double(restored[c])
                            expected += product
                            magnitude += abs(product)
                        }
                        #expect(
                            abs(Double(got[r]) - expected) <= 1e-5 * magnitude + 1e-6,
                            "\(label): token \(t) row \(r): \(got[r]) vs \(expected)")
                    }
                }
            }
        }
    }

    @Test func multiTokenActivationsQuantizeEachRowAsAlone() {
        var rng = SplitMix(state: 21)
        let (columns, tokens, stride) = (160, 5, 200)
        var x = [Float](repeating: 0, count: tokens * stride)
        for i in x.indices { x[i] = (rng.nextFloat() * 2 - 1) * Float(1 + i % 7) }
        let many = QuantizedActivations()
        x.withUnsafeBufferPointer { many.quantize($0.baseAddress!, xStride: stride, tokens: tokens, columns: columns) }
        #expect(many.tokens == tokens && many.count == columns / 32)
        for t in 0..<tokens {
            let one = QuantizedActivations()
            x.withUnsafeBufferPointer { one.quantize($0.baseAddress! + t * stride, columns: columns) }
            #expect(many.dequantized(token: t) == one.dequantized(), "token \(t)")
            for b in 0..<(columns / 32) {
                #expect(many.block(b, token: t) == one.block(b), "token \(t) block \(b)")
            }
        }
    }

    @Test func sharedInputMultiTokenProductsEqualSeparateProducts() throws {
        var rng = SplitMix(state: 55)
        let columns = 128
        let shapes: [(GGMLType, Int)] = [(.q4_1, 40), (.q8_0, 17), (.q4_0, 23)]
        let weights = shapes.map { randomWeights($0.0, rows: $0.1, columns: columns, using: &rng) }
        let tokens = 6
        let x = (0..<(tokens * columns)).map { _ in rng.nextFloat() * 2 - 1 }
        let multiplier = MatrixMultiplier(pool: Self.pool)
        var separate = shapes.map { [Float](repeating: .nan, count: tokens * $0.1) }
        var y0 = separate[0]
        var y1 = separate[1]
        var y2 = separate[2]
        try weights[0].withUnsafeBytes { w0 in
            try weights[1].withUnsafeBytes { w1 in
                try weights[2].withUnsafeBytes { w2 in
                    let m = try zip(shapes, [w0, w1, w2]).map { shape, raw in
                        try WeightMatrix(type: shape.0, rows: shape.1, columns: columns, data: raw.baseAddress!)
                    }
                    for i in 0..<3 {
                        multiplier.multiply(m[i], x, tokens: tokens, into: &separate[i], activations: .int8)
                    }
                    y0.withUnsafeMutableBufferPointer { p0 in
                        y1.withUnsafeMutableBufferPointer { p1 in
                            y2.withUnsafeMutableBufferPointer { p2 in
                                multiplier.multiply(
                                    x, tokens: tokens, MatrixProduct(m[0], into: p0.baseAddress!),
                                    MatrixProduct(m[1], into: p1.baseAddress!),
                                    MatrixProduct(m[2], into: p2.baseAddress!), activations: .int8)
                            }
                        }
                    }
                    // Without `.int8`, several tokens stay float32: a different (not bit-equal) result.
                    var float = [Float](repeating: .nan, count: tokens * shapes[0].1)
                    multiplier.multiply(m[0], x, tokens: tokens, into: &float)
                    #expect(float != separate[0])
                }
            }
        }
        #expect([y0, y1, y2] == separate)
    }

    @Test func sharedInputProductsEqualSeparateProducts() throws {
        var rng = SplitMix(state: 5)
        let columns = 96
        let shapes: [(GGMLType, Int)] = [(.q4_1, 40), (.q8_0, 17), (.q4_0, 23)]
        let weights = shapes.map { randomWeights($0.0, rows: $0.1, columns: columns, using: &rng) }
        for tokens in [1, 3] {
            let x = (0..<(tokens * columns)).map { _ in rng.nextFloat() * 2 - 1 }
            let multiplier = MatrixMultiplier(pool: Self.pool)
            var separate = shapes.map { [Float](repeating: .nan, count: tokens * $0.1) }
            var y0 = separate[0]
            var y1 = separate[1]
            var y2 = separate[2]
            try weights[0].withUnsafeBytes { w0 in
                try weights[1].withUnsafeBytes { w1 in
                    try weights[2].withUnsafeBytes { w2 in
                        let m = try zip(shapes, [w0, w1, w2]).map { shape, raw in
                            try WeightMatrix(type: shape.0, rows: shape.1, columns: columns, data: raw.baseAddress!)
                        }
                        for i in 0..<3 { multiplier.multiply(m[i], x, tokens: tokens, into: &separate[i]) }
                        y0.withUnsafeMutableBufferPointer { p0 in
                            y1.withUnsafeMutableBufferPointer { p1 in
                                y2.withUnsafeMutableBufferPointer { p2 in
                                    multiplier.multiply(
                                        x, tokens: tokens, MatrixProduct(m[0], into: p0.baseAddress!),
                                        MatrixProduct(m[1], into: p1.baseAddress!),
                                        MatrixProduct(m[2], into: p2.baseAddress!))
                                }
                            }
                        }
                    }
                }
            }
            let shared = [y0, y1, y2]
            #expect(shared == separate, "tokens \(tokens)")
        }
    }

    @Test func perCallPrecisionOverridesTheMultipliersDefault() throws {
        var rng = SplitMix(state: 9)
        let (rows, columns) = (24, 128)
        let bytes = randomWeights(.q4_1, rows: rows, columns: columns, using: &rng)
        let x = (0..<columns).map { _ in rng.nextFloat() * 2 - 1 }
        let exact = MatrixMultiplier(pool: Self.pool)
        exact.singleTokenActivations = .float32
        let fast = MatrixMultiplier(pool: Self.pool)
        var expectedExact = [Float](repeating: .nan, count: rows)
        var expectedFast = expectedExact
        var overriddenExact = expectedExact
        var overriddenFast = expectedExact
        try bytes.withUnsafeBytes { raw in
            let w = try WeightMatrix(type: .q4_1, rows: rows, columns: columns, data: raw.baseAddress!)
            exact.multiply(w, x, tokens: 1, into: &expectedExact)
            fast.multiply(w, x, tokens: 1, into: &expectedFast)
            fast.multiply(w, x, tokens: 1, into: &overriddenExact, activations: .float32)
            exact.multiply(w, x, tokens: 1, into: &overriddenFast, activations: .int8)
        }
        #expect(overriddenExact == expectedExact)
        #expect(overriddenFast == expectedFast)
        #expect(expectedExact != expectedFast)
    }

    @Test func instructionSetOverrideIsClampedToTheCPU() {
        using(.scalar) {
            #expect(KernelInstructionSet.current == .scalar)
            #expect(KernelInstructionSet.use(.avx512VNNI) == min(.avx512VNNI, KernelInstructionSet.detected))
            #expect(KernelInstructionSet.use(.avx512BF16) == KernelInstructionSet.detected)
        }
        #if arch(x86_64)
            // Every machine this package targets (x86-64-v4) has AVX-512 VNNI; Zen 4 also has AVX-512 BF16.
            #expect(KernelInstructionSet.detected >= .avx512VNNI)
        #endif
    }
}
