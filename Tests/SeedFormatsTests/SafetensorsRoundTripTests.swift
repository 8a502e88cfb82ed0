import SeedFormats
import Testing

/// Interoperability was checked by hand once (the tests do not need Python): a file from `SafetensorsWriter` with
/// metadata (non-ASCII, quotes, newline), every dtype, F16/BF16 from floats, a scalar and a [0, 3] tensor was opened
/// with Python `safetensors` 0.8.0 `safe_open(..., framework="numpy")`, which accepted it and returned the same
/// metadata, shapes and values as `SafetensorsFile.doubles(named:)` for every numpy dtype; BF16 and both F8 types
/// were compared through `ml_dtypes` (bfloat16, float8_e4m3fn, float8_e5m2) on the raw bytes, all equal, NaNs
/// included. The files read in `SafetensorsReferenceTests` were written by Python `safetensors` 0.8.0.
@Suite("Safetensors round trip")
struct SafetensorsRoundTripTests {
    /// Deterministic bytes 0, 37, 74, ... (mod 251) of the given count.
    static func pattern(_ count: Int, seed: Int = 0) -> [UInt8] {
        (0..<count).map { UInt8((($0 + seed) * 37) % 251) }
    }

    @Test("Every dtype round-trips its raw bytes, shape and offsets", arguments: SafetensorsDType.allCases)
    func everyDType(dtype: SafetensorsDType) throws {
        let directory = TemporaryDirectory()
        let path = directory.file("one.safetensors")
        var writer = SafetensorsWriter()
        let bytes = Self.pattern(2 * 3 * dtype.byteSize)
        try writer.addTensor(name: "t", dtype: dtype, shape: [2, 3], bytes: bytes)
        try writer.write(to: path)

        let file = try SafetensorsFile(path: path)
        let info = try #require(file.tensor(named: "t"))
        #expect(
            info
                == SafetensorsTensorInfo(
                    name: "t", dtype: dtype, shape: [2, 3], dataRange: 0..<bytes.count,
                    elementCount: 6))
        #expect(try file.bytes(named: "t") == bytes)
        #expect(try file.withData("t") { Array($0) } == bytes)
        #expect(file.dataOffset % 8 == 0)
        #expect(try file.floats(named: "t").count == 6)
        #expect(try file.doubles(named: "t").count == 6)
    }

    @Test("All dtypes in one file: laid out by descending size then name, each naturally aligned")
    func allDTypesTogether() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("all.safetensors")
        var writer = SafetensorsWriter()
        for (i, dtype) in SafetensorsDType.allCases.enumerated() {
            try writer.addTensor(
                name: "t_\(dtype.rawValue)", dtype: dtype, shape: [i % 3 + 1, 5],
                bytes: Self.pattern((i % 3 + 1) * 5 * dtype.byteSize, seed: i))
        }
        try writer.write(to: path)
        let file = try SafetensorsFile(path: path)
        #expect(file.tensors.count == SafetensorsDType.allCases.count)
        let sizes = file.tensors.map(\.dtype.byteSize)
        #expect(sizes == sizes.sorted(by: >))
        for (i, dtype) in SafetensorsDType.allCases.enumerated() {
            let info = try #require(file.tensor(named: "t_\(dtype.rawValue)"))
            #expect(info.dtype == dtype)
            #expect(info.shape == [i % 3 + 1, 5])
            #expect((file.dataOffset + info.dataRange.lowerBound) % dtype.byteSize == 0)
            #expect(try file.bytes(named: info.name) == Self.pattern((i % 3 + 1) * 5 * dtype.byteSize, seed: i))
        }
        #expect(readBytes(path) == writer.serialized())
    }

    @Test("Typed values convert to Float and Double exactly")
    func typedConversions() throws {
        func littleEndian<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
            values.flatMap { value in withUnsafeBytes(of: value.littleEndian) { Array($0) } }
        }
        let directory = TemporaryDirectory()
        let path = directory.file("typed.safetensors")
        var writer = SafetensorsWriter()
        try writer.addTensor(name: "bool", dtype: .bool, shape: [3], bytes: [0, 1, 2])
        try writer.addTensor(name: "u8", dtype: .u8, shape: [2], bytes: [0, 255])
        try writer.addTensor(name: "i8", dtype: .i8, shape: [2], bytes: littleEndian([Int8(-128), 127]))
        try writer.addTensor(name: "i16", dtype: .i16, shape: [2], bytes: littleEndian([Int16(-32768), 5]))
        try writer.addTensor(name: "u16", dtype: .u16, shape: [1], bytes: littleEndian([UInt16(65535)]))
        try writer.addTensor(name: "i32", dtype: .i32, shape: [2], bytes: littleEndian([Int32.min, 7]))
        try writer.addTensor(name: "u32", dtype: .u32, shape: [1], bytes: littleEndian([UInt32.max]))
        try writer.addTensor(name: "i64", dtype: .i64, shape: [2], bytes: littleEndian([Int64(-3), 1 << 40]))
        try writer.addTensor(name: "u64", dtype: .u64, shape: [1], bytes: littleEndian([UInt64(1) << 63]))
        try writer.addTensor(
            name: "f64", dtype: .f64, shape: [2],
            bytes: littleEndian([(0.1 as Double).bitPattern, (-2.5 as Double).bitPattern]))
        // F8_E5M2: 0x3C = 1.0, 0xC0 = -2.0, 0x7C = +inf. F8_E4M3: 0x38 = 1.0, 0x7E = 448, 0x01 = 2^-9, 0x7F = NaN.
        try writer.addTensor(name: "e5m2", dtype: .f8E5M2, shape: [3], bytes: [0x3C, 0xC0, 0x7C])
        try writer.addTensor(name: "e4m3", dtype: .f8E4M3, shape: [4], bytes: [0x38, 0x7E, 0x01, 0x7F])
        // A scalar and an empty tensor.
        try writer.addTensor(name: "scalar", shape: [], floats: [3.25])
        try writer.addTensor(name: "empty", shape: [4, 0], floats: [])
        try writer.write(to: path)

        let file = try SafetensorsFile(path: path)
        #expect(try file.floats(named: "bool") == [0, 1, 1])
        #expect(try file.floats(named: "u8") == [0, 255])
        #expect(try file.floats(named: "i8") == [-128, 127])
        #expect(try file.floats(named: "i16") == [-32768, 5])
        #expect(try file.floats(named: "u16") == [65535])
        #expect(try file.doubles(named: "i32") == [Double(Int32.min), 7])
        #expect(try file.doubles(named: "u32") == [Double(UInt32.max)])
        #expect(try file.doubles(named: "i64") == [-3, Double(1 << 40)])
        #expect(try file.floats(named: "u64") == [0x1p63])
        #expect(try file.doubles(named: "f64") == [0.1, -2.5])
        #expect(try file.floats(named: "f64") == [Float(0.1), -2.5])
        #expect(try file.floats(named: "e5m2") == [1, -2, .infinity])
        let e4m3 = try file.floats(named: "e4m3")
        #expect(Array(e4m3.prefix(3)) == [1, 448, 0x1p-9])
        #expect(e4m3[3].isNaN)
        #expect(file.tensor(named: "scalar")?.shape == [])
        #expect(file.tensor(named: "scalar")?.elementCount == 1)
        #expect(try file.floats(named: "scalar") == [3.25])
        #expect(file.tensor(named: "empty")?.elementCount == 0)
        #expect(try file.floats(named: "empty") == [])
    }

    @Test("Float writer: F32 exact, F16 and BF16 round to nearest even, F64 exact")
    func floatWriter() throws {
        let values: [Float] = [0, -0.0, 1, -1.5, 65504, 1e-8, 3.14159265, 1.00390625, .infinity, -.infinity]
        let directory = TemporaryDirectory()
        let path = directory.file("floats.safetensors")
        var writer = SafetensorsWriter()
        for dtype in [SafetensorsDType.f32, .f16, .bf16, .f64] {
            try writer.addTensor(name: dtype.rawValue, shape: [2, 5], floats: values, dtype: dtype)
        }
        try writer.addTensor(name: "nan", shape: [1], floats: [.nan], dtype: .bf16)
        try writer.write(to: path)
        let file = try SafetensorsFile(path: path)
        #expect(try file.floats(named: "F32") == values)
        #expect(try file.floats(named: "F64") == values)
        #expect(try file.doubles(named: "F64") == values.map(Double.init))
        #expect(try file.floats(named: "F16") == values.map { Float(Float16($0)) })
        let bf16 = try file.floats(named: "BF16")
        #expect(bf16[3] == -1.5)
        #expect(bf16[6] == 3.140625)
        #expect(bf16[7] == 1.0, "1 + 2^-8 is a tie between 1 and 1 + 2^-7 and rounds to even")
        #expect(bf16[8] == .infinity)
        #expect(try file.floats(named: "nan")[0].isNaN)
        #expect(try file.bytes(named: "BF16").count == 20)
    }

    @Test("Metadata round-trips, including quotes, backslashes, control characters and non-ASCII")
    func metadata() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("meta.safetensors")
        var writer = SafetensorsWriter()
        let tricky = "quote \" backslash \\ newline \n tab \t bell \u{07} é 日本 🦙"
        writer.setMetadata("format", "pt")
        writer.setMetadata("tricky \"key\"", tricky)
        writer.setMetadata("format", "seed")
        try writer.addTensor(name: "w", shape: [2], floats: [1, 2])
        try writer.write(to: path)
        let file = try SafetensorsFile(path: path)
        #expect(file.metadata == ["format": "seed", "tricky \"key\"": tricky])

        // No metadata: no __metadata__ entry at all.
        var plain = SafetensorsWriter()
        try plain.addTensor(name: "w", shape: [1], floats: [1])
        let text = String(decoding: plain.serialized().dropFirst(8), as: UTF8.self)
        #expect(!text.contains("__metadata__"))
    }

    @Test("Header layout: length field, JSON padded with spaces to a multiple of 8, deterministic")
    func headerLayout() throws {
        var writer = SafetensorsWriter()
        writer.setMetadata("b", "2")
        writer.setMetadata("a", "1")
        try writer.addTensor(name: "zeta", shape: [1], floats: [1])
        try writer.addTensor(name: "alpha", shape: [1], floats: [2])
        try writer.addTensor(name: "half", shape: [1], floats: [3], dtype: .f16)
        let bytes = writer.serialized()
        let length = bytes.prefix(8).reversed().reduce(0) { $0 << 8 | Int($1) }
        #expect(length % 8 == 0)
        #expect(bytes.count == 8 + length + 4 + 4 + 2)
        let header = String(decoding: bytes[8..<(8 + length)], as: UTF8.self)
        let expected =
            #"{"__metadata__":{"a":"1","b":"2"},"alpha":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"#
            + #""zeta":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"#
            + #""half":{"dtype":"F16","shape":[1],"data_offsets":[8,10]}}"#
        #expect(header.hasPrefix(expected))
        #expect(header.dropFirst(expected.utf8.count).allSatisfy { $0 == " " })

        // Insertion order does not matter.
        var other = SafetensorsWriter()
        try other.addTensor(name: "half", shape: [1], floats: [3], dtype: .f16)
        try other.addTensor(name: "alpha", shape: [1], floats: [2])
        other.setMetadata("a", "1")
        try other.addTensor(name: "zeta", shape: [1], floats: [1])
        other.setMetadata("b", "2")
        #expect(other.serialized() == bytes)
    }

    @Test("An empty writer produces a valid file with no tensors")
    func emptyFile() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("empty.safetensors")
        try SafetensorsWriter().write(to: path)
        #expect(readBytes(path) == [8, 0, 0, 0, 0, 0, 0, 0] + Array("{}      ".utf8))
        let file = try SafetensorsFile(path: path)
        #expect(file.tensors.isEmpty)
        #expect(file.metadata.isEmpty)
        #expect(file.dataSize == 0)
    }

    @Test("write(to:) replaces an existing file and leaves no temporary files")
    func atomicReplace() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("model.safetensors")
        writeBytes(Array("old contents".utf8), to: path)
        var writer = SafetensorsWriter()
        try writer.addTensor(name: "w", shape: [3], floats: [1, 2, 3])
        try writer.write(to: path)
        #expect(directory.entries == ["model.safetensors"])
        #expect(try SafetensorsFile(path: path).floats(named: "w") == [1, 2, 3])

        #expect(throws: SafetensorsError.self) { try writer.write(to: directory.file("missing-dir/x.safetensors")) }
        #expect(directory.entries == ["model.safetensors"])
    }

    @Test("rawPointer(for:) addresses the tensor's bytes; one file is shared by concurrent readers")
    func rawAccessAndSharing() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("shared.safetensors")
        var writer = SafetensorsWriter()
        let values = (0..<1000).map { Float($0 % 128) * 0.25 - 16 }  // at most 7 significant bits: exact in BF16
        try writer.addTensor(name: "a", shape: [10, 100], floats: values)
        try writer.addTensor(name: "b", shape: [1000], floats: values, dtype: .bf16)
        try writer.write(to: path)
        let file = try SafetensorsFile(path: path)
        let raw = try file.rawPointer(for: "a")
        #expect(raw.count == 4000)
        #expect(raw.loadUnaligned(fromByteOffset: 4 * 3, as: Float.self) == values[3])
        #expect(try file.withData("b") { $0.count } == 2000)
        #expect(try file.floats(named: "b") == values)
        let sums = await withTaskGroup(of: Float.self) { group in
            for name in ["a", "b", "a", "b"] {
                group.addTask { (try? file.floats(named: name).reduce(0, +)) ?? .nan }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(sums.count == 4)
        #expect(sums.allSatisfy { $0 == values.reduce(0, +) })
    }

    @Test("Writer rejects bad input with invalidWriterInput")
    func writerInput() throws {
        var writer = SafetensorsWriter()
        try writer.addTensor(name: "w", shape: [2], floats: [1, 2])
        func rejects(_ body: (inout SafetensorsWriter) throws -> Void) {
            var copy = writer
            do {
                try body(&copy)
                Issue.record("expected invalidWriterInput")
            } catch let error as SafetensorsError {
                guard case .invalidWriterInput = error else {
                    Issue.record("wrong error \(error)")
                    return
                }
            } catch {
                Issue.record("unexpected error \(error)")
            }
        }
        rejects { try $0.addTensor(name: "w", shape: [1], floats: [1]) }
        rejects { try $0.addTensor(name: "", shape: [1], floats: [1]) }
        rejects { try $0.addTensor(name: "__metadata__", shape: [1], floats: [1]) }
        rejects { try $0.addTensor(name: "x", shape: [-1], floats: []) }
        rejects { try $0.addTensor(name: "x", shape: [3], floats: [1, 2]) }
        rejects { try $0.addTensor(name: "x", shape: [Int.max, 2], floats: []) }
        rejects { try $0.addTensor(name: "x", shape: [1], floats: [1], dtype: .i32) }
        rejects { try $0.addTensor(name: "x", dtype: .f16, shape: [2], bytes: [0, 0, 0]) }
    }
}
