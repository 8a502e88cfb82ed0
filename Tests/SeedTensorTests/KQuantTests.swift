import SeedTensor
import Testing

/// A block under construction, written field by field and bit by bit from the layouts in ggml's `ggml-common.h`
/// (bits numbered from the least significant bit of each byte). Deliberately naive, so that it shares no logic with
/// the decoders under test.
struct BlockBuilder {
    var bytes: [UInt8]

    init(size: Int) { bytes = [UInt8](repeating: 0, count: size) }

    /// Stores the low `width` bits of `value` starting at bit `bit` of byte `byteIndex`, one bit at a time.
    mutating func set(byte byteIndex: Int, bit: Int, width: Int, _ value: Int) {
        precondition(value >= 0 && value < 1 << width, "test bug: \(value) does not fit in \(width) bits")
        for i in 0..<width {
            let absolute = byteIndex * 8 + bit + i
            let mask = UInt8(1) << UInt8(absolute % 8)
            if (value >> i) & 1 == 1 {
                bytes[absolute / 8] |= mask
            } else {
                bytes[absolute / 8] &= ~mask
            }
        }
    }

    mutating func setHalf(at offset: Int, _ value: Float16) {
        set(byte: offset, bit: 0, width: 16, Int(value.bitPattern))
    }

    func decoded(_ type: GGMLType) throws -> [Float] {
        try bytes.withUnsafeBytes { try dequantize(type, bytes: $0, count: type.blockSize) }
    }
}

@Suite struct KQuantTests {
    // Scales, mins and quants are small integers and d, dmin powers of two, so every expected value below is exact in
    // Float whatever the evaluation order: decoded values must match bit for bit.

    @Test func q4_KMatchesDocumentedLayout() throws {
        let d: Float16 = 0.25
        let dmin: Float16 = 0.125
        let scales = [1, 63, 17, 40, 5, 33, 62, 48]
        let mins = [0, 7, 63, 21, 60, 2, 36, 19]
        let quants = (0..<256).map { ($0 * 7 + $0 / 32) % 16 }
        var block = BlockBuilder(size: 144)
        block.setHalf(at: 0, d)
        block.setHalf(at: 2, dmin)
        writeK4ScalesAndMins(&block, at: 4, scales: scales, mins: mins)
        for e in 0..<256 {
            let (sub, l) = (e / 32, e % 32)
            block.set(byte: 16 + 32 * (sub / 2) + l, bit: 4 * (sub % 2), width: 4, quants[e])
        }
        let expected = (0..<256).map { e in
            Float(d) * Float(scales[e / 32]) * Float(quants[e]) - Float(dmin) * Float(mins[e / 32])
        }
        #expect(try block.decoded(.q4_K) == expected)
    }

    @Test func q5_KMatchesDocumentedLayout() throws {
        let d: Float16 = 0.5
        let dmin: Float16 = 0.25
        let scales = [9, 2, 63, 31, 16, 47, 1, 58]
        let mins = [50, 3, 0, 63, 17, 44, 29, 5]
        let quants = (0..<256).map { ($0 * 13 + 5) % 32 }
        var block = BlockBuilder(size: 176)
        block.setHalf(at: 0, d)
        block.setHalf(at: 2, dmin)
        writeK4ScalesAndMins(&block, at: 4, scales: scales, mins: mins)
        for e in 0..<256 {
            let (sub, l) = (e / 32, e % 32)
            block.set(byte: 48 + 32 * (sub / 2) + l, bit: 4 * (sub % 2), width: 4, quants[e] & 15)
            block.set(byte: 16 + l, bit: sub, width: 1, quants[e] >> 4)
        }
        let expected = (0..<256).map { e in
            Float(d) * Float(scales[e / 32]) * Float(quants[e]) - Float(dmin) * Float(mins[e / 32])
        }
        #expect(try block.decoded(.q5_K) == expected)
    }

    @Test func q6_KMatchesDocumentedLayout() throws {
        let d: Float16 = 0.5
        let scales = [127, -128, 1, -1, 64, -33, 0, 12, 5, -7, 100, -100, 3, 2, -2, 90]
        let quants = (0..<256).map { ($0 * 29 + 11) % 64 }
        var block = BlockBuilder(size: 210)
        block.setHalf(at: 208, d)
        for (g, scale) in scales.enumerated() {
            block.set(byte: 192 + g, bit: 0, width: 8, Int(UInt8(bitPattern: Int8(scale))))
        }
        for e in 0..<256 {
            let (half, k, l) = (e / 128, (e % 128) / 32, e % 32)
            block.set(byte: 64 * half + l + 32 * (k % 2), bit: 4 * (k / 2), width: 4, quants[e] & 15)
            block.set(byte: 128 + 32 * half + l, bit: 2 * k, width: 2, quants[e] >> 4)
        }
        let expected = (0..<256).map { e in Float(d) * Float(scales[e / 16]) * Float(quants[e] - 32) }
        #expect(try block.decoded(.q6_K) == expected)
    }

    @Test func q3_KMatchesDocumentedLayout() throws {
        let d: Float16 = 0.25
        let scales = [-32, 31, 0, 1, -1, 15, -16, 17, 7, -20, 30, -31, 2, 9, -5, 24]
        let quants = (0..<256).map { ($0 * 5 + $0 / 16) % 8 }
        var block = BlockBuilder(size: 110)
        block.setHalf(at: 108, d)
        for (g, scale) in scales.enumerated() {
            let stored = scale + 32
            block.set(byte: 96 + g % 8, bit: g < 8 ? 0 : 4, width: 4, stored & 15)
            block.set(byte: 96 + 8 + g % 4, bit: 2 * (g / 4), width: 2, stored >> 4)
        }
        for e in 0..<256 {
            let (half, shift, l) = (e / 128, (e % 128) / 32, e % 32)
            block.set(byte: 32 + 32 * half + l, bit: 2 * shift, width: 2, quants[e] & 3)
            block.set(byte: l, bit: 4 * half + shift, width: 1, quants[e] >> 2)
        }
        let expected = (0..<256).map { e in Float(d) * Float(scales[e / 16]) * Float(quants[e] - 4) }
        #expect(try block.decoded(.q3_K) == expected)
    }

    @Test func q2_KMatchesDocumentedLayout() throws {
        let d: Float16 = 0.5
        let dmin: Float16 = 0.25
        let scales = (0..<16).map { ($0 * 7 + 3) % 16 }
        let mins = (0..<16).map { ($0 * 11 + 1) % 16 }
        let quants = (0..<256).map { ($0 * 3 + $0 / 64) % 4 }
        var block = BlockBuilder(size: 84)
        block.setHalf(at: 80, d)
        block.setHalf(at: 82, dmin)
        for g in 0..<16 {
            block.set(byte: g, bit: 0, width: 4, scales[g])
            block.set(byte: g, bit: 4, width: 4, mins[g])
        }
        for e in 0..<256 {
            let (half, shift, l) = (e / 128, (e % 128) / 32, e % 32)
            block.set(byte: 16 + 32 * half + l, bit: 2 * shift, width: 2, quants[e])
        }
        let expected = (0..<256).map { e in
            Float(d) * Float(scales[e / 16]) * Float(quants[e]) - Float(dmin) * Float(mins[e / 16])
        }
        #expect(try block.decoded(.q2_K) == expected)
    }

    @Test func q8_KMatchesDocumentedLayout() throws {
        var block = BlockBuilder(size: 292)
        block.set(byte: 0, bit: 0, width: 32, Int(Float(0.75).bitPattern))
        let quants = (0..<256).map { ($0 * 37) % 256 - 128 }
        for e in 0..<256 { block.set(byte: 4 + e, bit: 0, width: 8, Int(UInt8(bitPattern: Int8(quants[e])))) }
        for i in 0..<32 { block.set(byte: 260 + i, bit: 0, width: 8, 0xEE) }  // bsums: not used for values
        #expect(try block.decoded(.q8_K) == quants.map { 0.75 * Float($0) })
    }

    /// Writes the 12-byte packed 6-bit scales and mins shared by Q4_K and Q5_K: sub-blocks 0-3 keep theirs in the low
    /// six bits of bytes 0-3 (scales) and 4-7 (mins); sub-blocks 4-7 keep their low four bits in the low (scale) and
    /// high (min) nibble of bytes 8-11 and their top two bits in the top bits of bytes 0-3 (scale) and 4-7 (min).
    func writeK4ScalesAndMins(_ block: inout BlockBuilder, at base: Int, scales: [Int], mins: [Int]) {
        for s in 0..<4 {
            block.set(byte: base + s, bit: 0, width: 6, scales[s])
            block.set(byte: base + 4 + s, bit: 0, width: 6, mins[s])
        }
        for s in 4..<8 {
            block.set(byte: base + s + 4, bit: 0, width: 4, scales[s] & 15)
            block.set(byte: base + s + 4, bit: 4, width: 4, mins[s] & 15)
            block.set(byte: base + s - 4, bit: 6, width: 2, scales[s] >> 4)
            block.set(byte: base + s, bit: 6, width: 2, mins[s] >> 4)
        }
    }

    /// Cross-check against the `gguf` Python package on blocks of pseudo-random bytes `(i * 73 + 41) & 0xFF` with
    /// their f16 scale fields overwritten. Produced with gguf 0.19 / numpy by:
    ///
    ///     b = [(i * 73 + 41) & 0xFF for i in range(size)]; b[off:off+2] = f16 bytes of each scale below
    ///     y = gguf.quants.dequantize(np.array(b, dtype=np.uint8), qtype).astype(np.float32)
    ///     print(np.sum(y.astype(np.float64)), y[[0, 1, 5, 17, n // 2 + 3, n - 1]])
    static let pythonReference: [(GGMLType, [(Int, Float16)], Double, [Float])] = [
        (
            .q4_0, [(0, 0.0123)], -0.405853271484375,
            [0.036895751953125, -0.0491943359375, 0.0, -0.098388671875, 0.012298583984375, -0.098388671875]
        ),
        (
            .q4_1, [(0, 0.0123), (2, -0.1)], -0.432037353515625,
            [
                0.059906005859375, -0.02618408203125, 0.02301025390625, 0.010711669921875, -0.07537841796875,
                0.010711669921875,
            ]
        ),
        (
            .q5_0, [(0, 0.0123)], -0.553436279296875,
            [
                0.184478759765625, 0.098388671875, 0.1475830078125, -0.17218017578125, 0.135284423828125,
                0.02459716796875,
            ]
        ),
        (
            .q5_1, [(0, 0.0123), (2, -0.1)], 2.962371826171875,
            [
                0.109100341796875, 0.02301025390625, 0.07220458984375, 0.232086181640625, 0.14599609375,
                0.035308837890625,
            ]
        ),
        (
            .q8_0, [(0, 0.0123)], -0.59033203125,
            [
                -0.848602294921875, 0.0491943359375, 0.491943359375, -1.3282470703125, 0.46734619140625,
                -1.35284423828125,
            ]
        ),
        (
            .q2_K, [(80, 0.0123), (82, 0.0071)], 23.591033935546875,
            [
                0.09648895263671875, 0.20717620849609375, 0.20717620849609375, -0.000499725341796875,
                -0.049694061279296875, -0.049694061279296875,
            ]
        ),
        (
            .q3_K, [(108, 0.0123)], 2.87786865234375,
            [
                -0.086090087890625, 0.17218017578125, 0.17218017578125, -0.0491943359375, 0.3935546875,
                -0.295166015625,
            ]
        ),
        (
            .q4_K, [(0, 0.0123), (2, 0.0071)], 649.5582275390625,
            [
                1.0910758972167969, -0.028095245361328125, 0.6114311218261719, -0.028095245361328125,
                0.8556022644042969, -0.16328048706054688,
            ]
        ),
        (
            .q5_K, [(0, 0.0123), (2, 0.0071)], 1347.1339111328125,
            [
                3.649181365966797, -0.028095245361328125, 0.6114311218261719, -0.028095245361328125,
                4.987926483154297, -0.16328048706054688,
            ]
        ),
        (
            .q6_K, [(208, 0.0123)], -182.5601806640625,
            [
                1.980072021484375, -0.56573486328125, -1.69720458984375, 1.2298583984375, -16.8736572265625,
                3.5419921875,
            ]
        ),
    ]

    @Test(arguments: 0..<pythonReference.count)
    func matchesPythonGGUFPackage(_ index: Int) throws {
        let (type, halves, sum, samples) = Self.pythonReference[index]
        var block = BlockBuilder(size: type.typeSize)
        for i in 0..<type.typeSize { block.bytes[i] = UInt8((i * 73 + 41) & 0xFF) }
        for (offset, value) in halves { block.setHalf(at: offset, value) }
        let decoded = try block.decoded(type)
        let n = type.blockSize
        let indices = [0, 1, 5, 17, n / 2 + 3, n - 1]
        for (i, expected) in zip(indices, samples) {
            // The Python code may evaluate d * scale * q in another order: allow a couple of ulps.
            #expect(abs(decoded[i] - expected) <= abs(expected) * 1e-6, "\(type) element \(i)")
        }
        let total = decoded.reduce(0.0) { $0 + Double($1) }
        #expect(abs(total - sum) <= max(abs(sum), 1) * 1e-6, "\(type) sum")
    }
}
