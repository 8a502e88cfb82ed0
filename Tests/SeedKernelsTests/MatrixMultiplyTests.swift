import SeedTensor
import Testing

@testable import SeedKernels

/// Random weights in a GGML block format: random quant bytes with small, valid half-precision scales.
func randomWeights(_ type: GGMLType, rows: Int, columns: Int, using rng: inout SplitMix) -> [UInt8] {
    let blocks = rows * columns / type.blockSize
    var bytes = [UInt8](repeating: 0, count: blocks * type.typeSize)
    func half(_ v: Float) -> (UInt8, UInt8) {
        let bits = Float16(v).bitPattern
        return (UInt8(bits & 0xFF), UInt8(bits >> 8))
    }
    switch type {
    case .f32:
        for i in 0..<(rows * columns) {
            withUnsafeBytes(of: rng.nextFloat() * 2 - 1) { b in for j in 0..<4 { bytes[i * 4 + j] = b[j] } }
        }
    case .f16, .bf16:
        for i in 0..<(rows * columns) {
            let v = rng.nextFloat() * 2 - 1
            let bits: UInt16 = type == .f16 ? Float16(v).bitPattern : UInt16(v.bitPattern >> 16)
            bytes[2 * i] = UInt8(bits & 0xFF)
            bytes[2 * i + 1] = UInt8(bits >> 8)
        }
    default:
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: rng.next()) }
        for b in 0..<blocks {
            let base = b * type.typeSize
            switch type {
            case .q4_0, .q8_0:
                (bytes[base], bytes[base + 1]) = half(rng.nextFloat() * 0.1)
            case .q4_1, .q4_K, .q5_K:
                (bytes[base], bytes[base + 1]) = half(rng.nextFloat() * 0.1)
                (bytes[base + 2], bytes[base + 3]) = half(rng.nextFloat() * 0.2 - 0.1)
            case .q6_K:
                (bytes[base + 208], bytes[base + 209]) = half(rng.nextFloat() * 0.01)
            default:
                break
            }
        }
    }
    return bytes
}

struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func nextFloat() -> Float { Float(next() >> 40) / Float(1 << 24) }
}

@Suite struct MatrixMultiplyTests {
    static let pool = WorkerPool(threads: 2)

    @Test(arguments: [GGMLType.q4_1, .q8_0, .q4_0, .f32, .f16, .bf16])
    func matchesNaiveProductOnRandomShapes(type: GGMLType) throws {
        var rng = SplitMix(state: UInt64(type.rawValue) &+ 7)
        let multiplier = MatrixMultiplier(pool: Self.pool)
        // The float kernels for every batch size; the integer (int8-activation) path has its own tests.
        multiplier.singleTokenActivations = .float32
        for (rows, columns, tokens) in [
            (1, 32, 1), (17, 64, 3), (64, 576, 1), (130, 96, 5), (96, 160, 9), (33, 64, 20),
        ] {
            let bytes = randomWeights(type, rows: rows, columns: columns, using: &rng)
            let x = (0..<(tokens * columns)).map { _ in rng.nextFloat() * 2 - 1 }
            var reference = [Float](repeating: 0, count: rows * columns)
            try bytes.withUnsafeBytes { raw in
                try dequantize(type, from: raw.baseAddress!, count: rows * columns, into: &reference)
            }
            var y = [Float](repeating: .nan, count: tokens * rows)
            try bytes.withUnsafeBytes { raw in
                let w = try WeightMatrix(type: type, rows: rows, columns: columns, data: raw.baseAddress!)
                multiplier.multiply(w, x, tokens: tokens, into: &y)
            }
            for t in 0..<tokens {
                for r in 0..<rows {
                    var expected: Double = 0
                    var magnitude: Double = 0
                    for c in 0..<columns {
                        let term = Double(reference[r * columns + c]) * Double(x[t * columns + c])
                        expected += term
                        magnitude += abs(term)
                    }
                    let got = Double(y[t * rows + r])
                    #expect(
                        abs(got - expected) <= 1e-5 * magnitude + 1e-6,
                        "\(type.name) [\(rows)x\(columns)] tokens \(tokens) row \(r) token \(t): \(got) vs \(expected)")
                }
            }
        }
    }

    @Test func rejectsColumnsThatAreNotWholeBlocks() {
        let bytes = [UInt8](repeating: 0, count: 64)
        bytes.withUnsafeBytes { raw in
            #expect(throws: KernelError.self) {
                _ = try WeightMatrix(type: .q4_1, rows: 1, columns: 48, data: raw.baseAddress!)
            }
        }
    }
}

/// Float32 weights at every batch size path: fused small batches, the in-place broadcast kernel (edges of 8 rows
/// and 16/32 tokens included) and sgemm, against a Double reference.
@Suite struct Float32ProductTests {
    static let pool = WorkerPool(threads: 2)

    @Test(arguments: [1, 7, 8, 15, 16, 17, 31, 32, 33, 48, 50, 128, 129, 300])
    func float32ProductMatchesNaiveAtEveryBatchSize(tokens: Int) throws {
        var rng = SplitMix(state: UInt64(tokens) &+ 99)
        let multiplier = MatrixMultiplier(pool: Self.pool)
        for (rows, columns) in [(19, 40), (64, 96)] {
            let w = (0..<(rows * columns)).map { _ in rng.nextFloat() * 2 - 1 }
            // Activations with a row stride wider than the row, outputs with a wider stride too.
            let xStride = columns + 3
            let yStride = rows + 5
            let x = (0..<(tokens * xStride)).map { _ in rng.nextFloat() * 2 - 1 }
            var y = [Float](repeating: .nan, count: tokens * yStride)
            try w.withUnsafeBytes { raw in
                let matrix = try WeightMatrix(type: .f32, rows: rows, columns: columns, data: raw.baseAddress!)
                multiplier.multiply(matrix, x, xStride: xStride, tokens: tokens, into: &y, yStride: yStride)
            }
            for t in 0..<tokens {
                for r in 0..<rows {
                    var expected = 0.0
                    for c in 0..<columns { expected += Double(w[r * columns + c]) * Double(x[t * xStride + c]) }
                    #expect(abs(Double(y[t * yStride + r]) - expected) < 1e-4, "token \(t) row \(r)")
                }
                // Padding between output rows is untouched.
                for r in rows..<yStride where t * yStride + r < y.count { #expect(y[t * yStride + r].isNaN) }
            }
        }
    }
}
