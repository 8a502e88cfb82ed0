import SeedFormats
import Testing

@Suite struct GGUFValueTests {
    @Test func intAccessorWidensEveryIntegerType() {
        let values: [GGUFValue] = [
            .uint8(200), .int8(-100), .uint16(60_000), .int16(-30_000), .uint32(4_000_000_000), .int32(-2_000_000_000),
            .uint64(1 << 40), .int64(-(1 << 40)),
        ]
        #expect(values.map(\.int) == [200, -100, 60_000, -30_000, 4_000_000_000, -2_000_000_000, 1 << 40, -(1 << 40)])
        #expect(GGUFValue.uint64(.max).int == nil)
        #expect(GGUFValue.float32(1).int == nil)
        #expect(GGUFValue.string("1").int == nil)
        #expect(GGUFValue.bool(true).int == nil)
    }

    @Test func floatAccessorsAcceptFloatsAndIntegers() {
        #expect(GGUFValue.float32(1e-5).float == 1e-5)
        #expect(GGUFValue.float32(0.1).double == Double(Float(0.1)))
        #expect(GGUFValue.float64(0.1).double == 0.1)
        #expect(GGUFValue.float64(0.1).float == Float(0.1))
        #expect(GGUFValue.uint32(100_000).float == 100_000)
        #expect(GGUFValue.uint64(.max).double == Double(UInt64.max))
        #expect(GGUFValue.string("x").float == nil)
        #expect(GGUFValue.bool(false).double == nil)
    }

    @Test func stringBoolAndArrayAccessors() {
        #expect(GGUFValue.string("llama").string == "llama")
        #expect(GGUFValue.uint8(1).string == nil)
        #expect(GGUFValue.bool(false).bool == false)
        #expect(GGUFValue.uint8(1).bool == nil)

        let strings = GGUFValue.array(.string(["a", "b"]))
        #expect(strings.stringArray == ["a", "b"])
        #expect(strings.intArray == nil)
        #expect(strings.array?.count == 2)
        #expect(strings.array?.elementType == .string)
        #expect(strings.array?[1] == .string("b"))
        #expect(strings.type == .array)

        #expect(GGUFValue.array(.int32([-1, 2])).intArray == [-1, 2])
        #expect(GGUFValue.array(.uint8([7])).intArray == [7])
        #expect(GGUFValue.array(.uint64([.max])).intArray == nil)
        #expect(GGUFValue.array(.float32([0.5, 1.5])).floatArray == [0.5, 1.5])
        #expect(GGUFValue.array(.int16([3])).floatArray == [3])
        #expect(GGUFValue.array(.float64([0.25])).floatArray == [0.25])
        #expect(GGUFValue.array(.uint64([3, 1 << 40])).floatArray == [3, 0x1p40])
        #expect(GGUFValue.array(.bool([true])).floatArray == nil)
        #expect(GGUFValue.string("a").stringArray == nil)
    }

    @Test func arraysKeepTheirElementTypeWhenEmpty() {
        #expect(GGUFArray.float64([]).elementType == .float64)
        #expect(GGUFArray.float64([]).isEmpty)
        #expect(GGUFArray.int8([]) != GGUFArray.uint8([]))
        let nested = GGUFArray.array([.int32([1, 2]), .string(["x"])])
        #expect(nested.count == 2)
        #expect(nested.values == [.array(.int32([1, 2])), .array(.string(["x"]))])
    }

    @Test func descriptionsAreShortAndReadable() {
        #expect(GGUFValue.string("a\nb").description == "\"a\\nb\"")
        #expect(GGUFValue.uint32(30).description == "30")
        let tokens = GGUFValue.array(.string((0..<100).map { "t\($0)" }))
        #expect(tokens.description == "[100 × string] [\"t0\", \"t1\", \"t2\", \"t3\", \"t4\", …]")
        #expect(GGUFValue.array(.int32([])).description == "[0 × int32] []")
        let long = GGUFValue.string(String(repeating: "x", count: 1000)).description
        #expect(long.count < 70)
    }

    @Test func valueTypeTagsMatchTheSpecification() {
        let expected: [(GGUFValueType, UInt32)] = [
            (.uint8, 0), (.int8, 1), (.uint16, 2), (.int16, 3), (.uint32, 4), (.int32, 5), (.float32, 6), (.bool, 7),
            (.string, 8), (.array, 9), (.uint64, 10), (.int64, 11), (.float64, 12),
        ]
        for (type, raw) in expected { #expect(type.rawValue == raw, "\(type)") }
        #expect(GGUFValueType.allCases.count == 13)
    }
}
