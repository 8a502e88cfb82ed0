import SeedTensor
import Testing

/// Deterministic pseudo-random floats (SplitMix64) so failures reproduce.
struct TestRandom {
    var state: UInt64

    init(state: UInt64) { self.state = state }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in `range`.
    mutating func float(in range: ClosedRange<Float>) -> Float {
        let unit = Float(next() >> 40) / Float(1 << 24)
        return range.lowerBound + unit * (range.upperBound - range.lowerBound)
    }

    /// Values with varying magnitudes per 32-element block, some blocks all-positive or all-negative.
    mutating func weights(_ count: Int) -> [Float] {
        var values: [Float] = []
        values.reserveCapacity(count)
        for i in 0..<count {
            if i % 32 == 0 {
                scale = float(in: 0.001...4)
                offset = (i / 32) % 3 == 0 ? float(in: -2...2) : 0
            }
            values.append(float(in: -1...1) * scale + offset)
        }
        return values
    }

    private var scale: Float = 1
    private var offset: Float = 0
}

@Suite struct QuantizeTests {
    static let count = 32 * 64

    /// Quantizes `values`, dequantizes them back, and returns the result.
    func roundTrip(_ type: GGMLType, _ values: [Float]) throws -> [Float] {
        let bytes = try quantize(type, values)
        #expect(bytes.count == (try type.byteCount(elements: values.count)))
        return try bytes.withUnsafeBytes { raw in try dequantize(type, bytes: raw, count: values.count) }
    }

    /// Checks every 32-element block of `decoded` against `original` with a per-block error bound.
    func expectBlockwiseError(
        _ type: GGMLType, _ original: [Float], _ decoded: [Float],
        bound: (_ block: ArraySlice<Float>) -> Float
    ) {
        #expect(decoded.count == original.count)
        for start in stride(from: 0, to: original.count, by: 32) {
            let block = original[start..<start + 32]
            let limit = bound(block)
            let worst = (start..<start + 32).map { abs(original[$0] - decoded[$0]) }.max()!
            #expect(worst <= limit, "\(type) block at \(start): error \(worst) exceeds \(limit)")
        }
    }

    @Test func f32AndF64RoundTripExactly() throws {
        var random = TestRandom(state: 1)
        let values = random.weights(Self.count) + [0, -0.0, .infinity, -.infinity, .leastNonzeroMagnitude] + [1, 2, 3]
        #expect(try roundTrip(.f32, values) == values)
        #expect(try roundTrip(.f64, values) == values)
    }

    @Test func f16RoundTripWithinHalfPrecision() throws {
        var random = TestRandom(state: 2)
        let values = random.weights(Self.count)
        let decoded = try roundTrip(.f16, values)
        for (x, y) in zip(values, decoded) {
            // 11 significant bits: relative error ≤ 2^-11 for normal halves, absolute 2^-25 below 2^-14.
            #expect(abs(x - y) <= max(abs(x) * 0x1p-11, 0x1p-25), "\(x) -> \(y)")
        }
        let exact: [Float] = [0, 1, -2, 0.5, 65504, 0x1p-24]
        #expect(try roundTrip(.f16, exact) == exact)
        #expect(try roundTrip(.f16, [1e6]) == [.infinity])
    }

    @Test func bf16RoundTripWithinBFloatPrecision() throws {
        var random = TestRandom(state: 3)
        let values = random.weights(Self.count)
        let decoded = try roundTrip(.bf16, values)
        for (x, y) in zip(values, decoded) {
            #expect(abs(x - y) <= abs(x) * 0x1p-8, "\(x) -> \(y)")
        }
        // Round to nearest, ties to even: 1 + 2^-8 lies halfway between 1 and 1 + 2^-7.
        #expect(floatToBF16(1) == 0x3F80)
        #expect(floatToBF16(1 + 0x1p-8) == 0x3F80)
        #expect(floatToBF16(1 + 3 * 0x1p-8) == 0x3F82)
        #expect(floatToBF16(-2) == 0xC000)
        #expect(bf16ToFloat(0x3F80) == 1)
        #expect(bf16ToFloat(floatToBF16(.nan)).isNaN)
        #expect(bf16ToFloat(floatToBF16(.infinity)) == .infinity)
    }

    @Test func q8_0RoundTripWithinHalfAStep() throws {
        var random = TestRandom(state: 4)
        let values = random.weights(Self.count)
        let decoded = try roundTrip(.q8_0, values)
        expectBlockwiseError(.q8_0, values, decoded) { block in
            let amax = block.map(abs).max()!
            // Half a quantization step, plus the effect of storing the scale as f16 (at most 127 steps of 2^-11 d).
            return amax / 127 * 0.5 + amax * 0x1p-10
        }
    }

    @Test func q4_0RoundTripWithinOneStep() throws {
        var random = TestRandom(state: 5)
        let values = random.weights(Self.count)
        let decoded = try roundTrip(.q4_0, values)
        expectBlockwiseError(.q4_0, values, decoded) { block in
            let amax = block.map(abs).max()!
            // The element of largest magnitude is exact; the opposite end may be clipped by one full step amax/8.
            return amax / 8 + amax * 0x1p-9
        }
    }

    @Test func q4_1RoundTripWithinHalfAStep() throws {
        var random = TestRandom(state: 6)
        let values = random.weights(Self.count)
        let decoded = try roundTrip(.q4_1, values)
        expectBlockwiseError(.q4_1, values, decoded) { block in
            let (low, high) = (block.min()!, block.max()!)
            return (high - low) / 15 * 0.5 + (abs(low) + abs(high)) * 0x1p-9
        }
    }

    @Test func q5_0RoundTripWithinOneStep() throws {
        var random = TestRandom(state: 7)
        let values = random.weights(Self.count)
        let decoded = try roundTrip(.q5_0, values)
        expectBlockwiseError(.q5_0, values, decoded) { block in
            let amax = block.map(abs).max()!
            return amax / 16 + amax * 0x1p-9
        }
    }

    @Test func q5_1RoundTripWithinHalfAStep() throws {
        var random = TestRandom(state: 8)
        let values = random.weights(Self.count)
        let decoded = try roundTrip(.q5_1, values)
        expectBlockwiseError(.q5_1, values, decoded) { block in
            let (low, high) = (block.min()!, block.max()!)
            return (high - low) / 31 * 0.5 + (abs(low) + abs(high)) * 0x1p-9
        }
    }

    @Test func q8_0EncodesKnownBlockExactly() throws {
        // amax = 127 gives d = 1 exactly, so every integer input is its own quant.
        let values = (0..<32).map { Float($0 * 8 - 121) }  // -121 ... 127
        let bytes = try quantize(.q8_0, values)
        #expect(bytes[0] == 0x00 && bytes[1] == 0x3C)  // f16 1.0, little-endian
        #expect(bytes[2...].map { Int8(bitPattern: $0) } == values.map { Int8($0) })
        #expect(try roundTrip(.q8_0, values) == values)
    }

    @Test func q4_0EncodesKnownBlockExactly() throws {
        // Largest magnitude is -8 at index 0, so d = -8 / -8 = 1 and quant = value + 8, clamped to 15.
        let values = (0..<32).map { Float($0 % 16) - 8 }  // -8 ... 7, twice
        let bytes = try quantize(.q4_0, values)
        #expect(bytes[0] == 0x00 && bytes[1] == 0x3C)
        for j in 0..<16 {
            #expect(bytes[2 + j] == UInt8(j | j << 4), "byte \(j)")
        }
        #expect(try roundTrip(.q4_0, values) == values)
    }

    @Test func q4_1EncodesKnownBlockExactly() throws {
        // min 10, max 25: d = 1, m = 10, quant = value - 10.
        let values = (0..<32).map { Float(10 + $0 % 16) }
        let bytes = try quantize(.q4_1, values)
        #expect(Array(bytes[0..<4]) == [0x00, 0x3C, 0x00, 0x49])  // f16 1.0, f16 10.0
        #expect(try roundTrip(.q4_1, values) == values)
    }

    @Test func q5EncodeHighBitsInTheRightPlace() throws {
        // Q5_0: largest magnitude -16 at index 0, d = 1, quant = value + 16: element j has quant j.
        let values = (0..<32).map { Float($0 - 16) }
        let bytes = try quantize(.q5_0, values)
        let qh = UInt32(bytes[2]) | UInt32(bytes[3]) << 8 | UInt32(bytes[4]) << 16 | UInt32(bytes[5]) << 24
        #expect(qh == 0xFFFF_0000)  // quants 16...31 have bit 4 set
        #expect(try roundTrip(.q5_0, values) == values)
        let shifted = values.map { $0 + 100 }  // Q5_1: min 84, d = 1
        #expect(try roundTrip(.q5_1, shifted) == shifted)
    }

    @Test func constantAndZeroBlocksDecodeExactly() throws {
        let zeros = [Float](repeating: 0, count: 64)
        for type: GGMLType in [.q8_0, .q4_0, .q4_1, .q5_0, .q5_1] {
            #expect(try roundTrip(type, zeros) == zeros, "\(type)")
        }
        let constant = [Float](repeating: 1.5, count: 32)
        #expect(try roundTrip(.q4_1, constant) == constant)
        #expect(try roundTrip(.q5_1, constant) == constant)
    }

    @Test func nonFiniteInputsDoNotTrap() throws {
        var values = [Float](repeating: 0.25, count: 32)
        values[3] = .nan
        values[7] = .infinity
        values[9] = -.infinity
        for type: GGMLType in [.f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1] {
            let decoded = try roundTrip(type, values)
            #expect(decoded.count == 32, "\(type)")
        }
    }

    @Test func decodesHandBuiltLegacyBlocks() throws {
        // Q4_0 block with d = 0.5 and nibbles (j, 15 - j): element j = (j - 8) / 2, element j + 16 = (7 - j) / 2.
        var q4 = [UInt8](repeating: 0, count: 18)
        q4[1] = 0x38  // f16 0.5
        for j in 0..<16 { q4[2 + j] = UInt8(j | (15 - j) << 4) }
        let decoded = try q4.withUnsafeBytes { try dequantize(.q4_0, bytes: $0, count: 32) }
        let expected = (0..<16).map { Float($0 - 8) / 2 } + (0..<16).map { Float(7 - $0) / 2 }
        #expect(decoded == expected)

        // Q8_1 block: d = 2, s ignored, qs = -16 ... 15.
        var q8 = [UInt8](repeating: 0, count: 36)
        q8[1] = 0x40  // f16 2.0
        q8[3] = 0x7C  // s = +inf, must not leak into the values
        for j in 0..<32 { q8[4 + j] = UInt8(bitPattern: Int8(j - 16)) }
        let decoded8 = try q8.withUnsafeBytes { try dequantize(.q8_1, bytes: $0, count: 32) }
        #expect(decoded8 == (0..<32).map { Float(2 * ($0 - 16)) })
    }

    @Test func decodesIntegerAndHalfTypes() throws {
        let halves: [UInt16] = [0x3C00, 0xC000, 0x7C00, 0x0001, 0x7BFF]
        let decodedHalves = try halves.withUnsafeBytes { try dequantize(.f16, bytes: $0, count: 5) }
        #expect(decodedHalves == [1, -2, .infinity, 0x1p-24, 65504])

        let ints: [Int32] = [-5, 0, 1 << 20]
        #expect(try ints.withUnsafeBytes { try dequantize(.i32, bytes: $0, count: 3) } == [-5, 0, 1_048_576])
        let bytes: [Int8] = [-128, 127]
        #expect(try bytes.withUnsafeBytes { try dequantize(.i8, bytes: $0, count: 2) } == [-128, 127])
        let shorts: [Int16] = [-300, 300]
        #expect(try shorts.withUnsafeBytes { try dequantize(.i16, bytes: $0, count: 2) } == [-300, 300])
        let longs: [Int64] = [-7, 1 << 40]
        #expect(try longs.withUnsafeBytes { try dequantize(.i64, bytes: $0, count: 2) } == [-7, 0x1p40])
    }

    @Test func unalignedSourcesDecode() throws {
        let values: [Float] = (0..<32).map { Float($0) * 0.25 }
        let encoded = try quantize(.q8_0, values)
        let shifted = [0xAA] + encoded
        let decoded = try shifted.withUnsafeBytes { raw in
            try dequantize(.q8_0, bytes: UnsafeRawBufferPointer(rebasing: raw[1...]), count: 32)
        }
        #expect(decoded == (try roundTrip(.q8_0, values)))
        let f32 = [0xAA] + (try quantize(.f32, values))
        #expect(try f32.withUnsafeBytes { try dequantize(.f32, bytes: .init(rebasing: $0[1...]), count: 32) } == values)
    }

    /// 4096 values with varied block ranges, an exact-tie block and a block containing 0 and -3.5.
    static func crossCheckValues() -> [Float] {
        var values = (0..<4096).map { i -> Float in
            let x = Float((i &* 2_654_435_761) % 100_003) / 100_003 * 2 - 1
            return x * Float(1 + (i / 32) % 5) + ((i / 32) % 3 == 0 ? 0.7 : 0)
        }
        values[100] = 0
        values[101] = -3.5
        for j in 0..<32 { values[3200 + j] = Float(j % 16) - 8 }
        return values
    }

    static func fnv1a(_ bytes: [UInt8]) -> UInt64 {
        bytes.reduce(0xCBF2_9CE4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01B3 }
    }

    /// Encoded bytes must be identical to those of the `gguf` Python package's reference quantizers (which follow
    /// ggml's `quantize_row_*_ref`). FNV-1a hashes of its output for `crossCheckValues()`, produced with gguf 0.19 by
    /// `fnv1a(gguf.quants.quantize(values.reshape(1, -1), qtype).view(np.uint8))`; the f32 hash pins the input.
    @Test func encodingsMatchPythonGGUFPackageByteForByte() throws {
        let values = Self.crossCheckValues()
        let expected: [(GGMLType, UInt64)] = [
            (.f32, 0xBE6F_5AE9_9998_9930), (.q8_0, 0x69D6_2D59_840C_0AF3), (.q4_0, 0x42B1_C8EE_54EA_62F6),
            (.q4_1, 0xFE26_01AF_E89A_B91C), (.q5_0, 0xA938_CAA6_B6B7_7E11), (.q5_1, 0xFA11_B80D_D805_F896),
            (.bf16, 0x95AE_EFFB_6BF2_DB65), (.f16, 0x4FEE_A675_137F_F490),
        ]
        for (type, hash) in expected {
            #expect(Self.fnv1a(try quantize(type, values)) == hash, "\(type) encoding differs from gguf-py")
        }
    }

    @Test func errorsNameTheProblem() {
        let block = [UInt8](repeating: 0, count: 66)
        #expect(throws: QuantizationError.unsupportedType(.iq2_xxs, operation: .dequantize)) {
            try block.withUnsafeBytes { try dequantize(.iq2_xxs, bytes: $0, count: 256) }
        }
        let message = QuantizationError.unsupportedType(.iq2_xxs, operation: .dequantize).description
        #expect(message.contains("iq2_xxs") && message.contains("16"))
        #expect(throws: QuantizationError.unsupportedType(.q4_K, operation: .quantize)) {
            try quantize(.q4_K, [Float](repeating: 0, count: 256))
        }
        #expect(throws: QuantizationError.countNotMultipleOfBlockSize(type: .q8_0, count: 33)) {
            try quantize(.q8_0, [Float](repeating: 0, count: 33))
        }
        #expect(throws: QuantizationError.bufferTooSmall(type: .q8_0, needed: 68, available: 66)) {
            try block.withUnsafeBytes { try dequantize(.q8_0, bytes: $0, count: 64) }
        }
    }
}
