import SeedTensor
import Testing

@Suite struct GGMLTypeTests {
    /// ggml's `enum ggml_type` numbering, written out independently of the enum under test.
    static let ggmlNumbering: [(String, UInt32)] = [
        ("f32", 0), ("f16", 1), ("q4_0", 2), ("q4_1", 3), ("q5_0", 6), ("q5_1", 7), ("q8_0", 8), ("q8_1", 9),
        ("q2_K", 10), ("q3_K", 11), ("q4_K", 12), ("q5_K", 13), ("q6_K", 14), ("q8_K", 15),
        ("iq2_xxs", 16), ("iq2_xs", 17), ("iq3_xxs", 18), ("iq1_s", 19), ("iq4_nl", 20), ("iq3_s", 21),
        ("iq2_s", 22), ("iq4_xs", 23), ("i8", 24), ("i16", 25), ("i32", 26), ("i64", 27), ("f64", 28),
        ("iq1_m", 29), ("bf16", 30), ("tq1_0", 34), ("tq2_0", 35), ("mxfp4", 39), ("nvfp4", 40), ("q1_0", 41),
    ]

    @Test func numberingAndNamesMatchGGML() throws {
        #expect(GGMLType.allCases.count == Self.ggmlNumbering.count)
        for (name, id) in Self.ggmlNumbering {
            let type = try #require(GGMLType(rawValue: id), "missing ggml type id \(id)")
            #expect(type.name == name)
            #expect(type.description == name)
            #expect(GGMLType(name: name) == type)
            #expect(GGMLType(name: name.uppercased()) == type)
        }
        #expect(GGMLType(rawValue: 4) == nil)
        #expect(GGMLType(rawValue: 31) == nil)
        #expect(GGMLType.retiredName(rawValue: 4) == "q4_2")
        #expect(GGMLType.retiredName(rawValue: 36) == "iq4_nl_4_4")
        #expect(GGMLType.retiredName(rawValue: 2) == nil)
        #expect(GGMLType(name: "q9_9") == nil)
    }

    @Test func blockAndTypeSizes() {
        let expected: [GGMLType: (Int, Int)] = [
            .f32: (1, 4), .f16: (1, 2), .bf16: (1, 2), .f64: (1, 8), .i8: (1, 1), .i16: (1, 2), .i32: (1, 4),
            .i64: (1, 8), .q4_0: (32, 18), .q4_1: (32, 20), .q5_0: (32, 22), .q5_1: (32, 24), .q8_0: (32, 34),
            .q8_1: (32, 36), .q2_K: (256, 84), .q3_K: (256, 110), .q4_K: (256, 144), .q5_K: (256, 176),
            .q6_K: (256, 210), .q8_K: (256, 292), .iq2_xxs: (256, 66), .iq4_nl: (32, 18), .iq4_xs: (256, 136),
            .iq1_m: (256, 56), .tq1_0: (256, 54), .mxfp4: (32, 17),
        ]
        for (type, (block, size)) in expected {
            #expect(type.blockSize == block, "block size of \(type)")
            #expect(type.typeSize == size, "type size of \(type)")
        }
        for type in GGMLType.allCases {
            #expect(type.blockSize > 0 && type.typeSize > 0)
            #expect(type.isQuantized == (type.blockSize > 1), "\(type)")
        }
    }

    @Test func supportFlags() {
        let decodable: [GGMLType] = [.f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q6_K]
        for type in decodable {
            #expect(type.isSupported, "\(type) should be decodable")
        }
        for type: GGMLType in [.iq2_xxs, .iq2_xs, .iq3_xxs, .iq1_s, .iq4_nl, .iq3_s, .iq2_s, .iq4_xs, .iq1_m, .tq1_0] {
            #expect(!type.isSupported, "\(type) is known but not decodable")
        }
        for type in GGMLType.allCases where type.isQuantizationSupported {
            #expect(type.isSupported, "\(type) can be encoded, so it must also decode")
        }
    }

    @Test func byteCountComputesWholeBlocks() throws {
        #expect(try GGMLType.q4_0.byteCount(elements: 64) == 36)
        #expect(try GGMLType.q4_K.byteCount(elements: 512) == 288)
        #expect(try GGMLType.f32.byteCount(elements: 10) == 40)
        #expect(try GGMLType.q8_0.byteCount(elements: 0) == 0)
        #expect(try GGMLType.q4_1.byteCount(elements: 576 * 576) == 576 * 18 * 20)
    }

    @Test func byteCountRejectsPartialBlocksOverflowAndNegatives() {
        #expect(throws: QuantizationError.countNotMultipleOfBlockSize(type: .q4_0, count: 33)) {
            try GGMLType.q4_0.byteCount(elements: 33)
        }
        #expect(throws: QuantizationError.byteCountOverflow(type: .f32, elements: Int.max)) {
            try GGMLType.f32.byteCount(elements: Int.max)
        }
        #expect(throws: QuantizationError.negativeCount(-1)) {
            try GGMLType.f16.byteCount(elements: -1)
        }
        let message = QuantizationError.countNotMultipleOfBlockSize(type: .q6_K, count: 100).description
        #expect(message.contains("q6_K") && message.contains("100") && message.contains("256"))
    }
}
