import SeedFormats
import SeedTensor
import Testing

@Suite struct GGUFRoundTripTests {
    @Test func fixtureRoundTripsThroughWriterAndReader() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("fixture.gguf")
        let writer = try Fixture.writer()
        try writer.write(to: path)
        #expect(directory.entries == ["fixture.gguf"], "the temporary file must be renamed away")
        #expect(readBytes(path) == (try writer.serialized()))

        let file = try GGUFFile(path: path)
        #expect(file.version == 3)
        #expect(file.path == path)
        #expect(file.metadataKeys == writer.metadataKeys)
        #expect(file.metadata == writer.metadata)
        #expect(file.architecture == "llama")
        #expect(file.modelName == "tiny test model")
        #expect(file.architectureValue("block_count")?.int == 2)
        #expect(file["llama.rope.freq_base"]?.float == 10_000)
        #expect(file["tokenizer.ggml.tokens"]?.stringArray == Fixture.tokens)
        #expect(file["test.flag"]?.bool == true)
        #expect(file.alignment == 32)
        #expect(file.fileSize == readBytes(path).count)

        #expect(file.tensors.map(\.name) == writer.tensorNames)
        #expect(file.parameterCount == 384 + 64 + 192 + 128)
        let embedding = try #require(file.tensor(named: "token_embd.weight"))
        #expect(embedding.dimensions == [64, 6])
        #expect(embedding.type == .q8_0)
        #expect(embedding.elementCount == 384)
        #expect(embedding.byteCount == 12 * 34)
        #expect(embedding.rowLength == 64 && embedding.rowCount == 6 && embedding.rowByteCount == 68)
        #expect(embedding.offset == file.dataOffset)
        #expect(file.dataOffset % 32 == 0)
        for tensor in file.tensors {
            #expect((tensor.offset - file.dataOffset) % 32 == 0, "\(tensor.name) offset")
            #expect(tensor.offset + tensor.byteCount <= file.fileSize)
        }
        let cube = try #require(file.tensor(named: "blk.0.ffn_down.weight"))
        #expect(cube.dimensions == [32, 2, 2] && cube.rowCount == 4 && cube.type == .f16)
        #expect(file.tensor(named: "missing") == nil)
    }

    @Test func tensorDataAndDequantizationMatchWhatWasWritten() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("fixture.gguf")
        try Fixture.writer().write(to: path)
        let file = try GGUFFile(path: path)

        // F32 survives exactly.
        #expect(try file.dequantizedTensor(named: "output_norm.weight") == patternValues(64, seed: 1))

        // Quantized tensors decode to what quantize→dequantize gives directly, and their raw bytes are unchanged.
        let cases: [(String, GGMLType, [Float])] = [
            ("token_embd.weight", .q8_0, patternValues(384)),
            ("blk.0.attn_q.weight", .q4_1, patternValues(192, seed: 2)),
            ("blk.0.ffn_down.weight", .f16, patternValues(128, seed: 3)),
        ]
        for (name, type, values) in cases {
            let encoded = try quantize(type, values)
            let expected = try encoded.withUnsafeBytes { try dequantize(type, bytes: $0, count: values.count) }
            let info = try #require(file.tensor(named: name))
            #expect(file.withTensorData(info) { Array($0) } == encoded, "\(name) bytes")
            #expect(try file.dequantize(info) == expected, "\(name) values")
            let row = info.rowLength
            #expect(try file.dequantizedRow(1, of: info) == Array(expected[row..<2 * row]), "\(name) row 1")
            #expect(try file.dequantizedRows(1..<3, of: info) == Array(expected[row..<3 * row]), "\(name) rows 1-2")
            let maxError = zip(values, expected).map { abs($0 - $1) }.max()!
            #expect(maxError < 0.1, "\(name) is close to the original values")
        }
    }

    @Test func rowAccessRejectsOutOfRangeRows() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("fixture.gguf")
        try Fixture.writer().write(to: path)
        let file = try GGUFFile(path: path)
        let info = try #require(file.tensor(named: "token_embd.weight"))
        #expect(throws: GGUFError.rowOutOfRange(path: path, tensor: info.name, rows: 6..<6, rowCount: 6)) {
            try file.dequantizedRow(6, of: info)
        }
        #expect(throws: GGUFError.rowOutOfRange(path: path, tensor: info.name, rows: Int.max..<Int.max, rowCount: 6)) {
            try file.dequantizedRow(Int.max, of: info)
        }
        #expect(throws: GGUFError.rowOutOfRange(path: path, tensor: info.name, rows: 4..<8, rowCount: 6)) {
            try file.dequantizedRows(4..<8, of: info)
        }
        #expect(throws: GGUFError.tensorNotFound(path: path, name: "nope")) {
            try file.dequantizedTensor(named: "nope")
        }
        let message = GGUFError.rowOutOfRange(path: path, tensor: info.name, rows: 6..<6, rowCount: 6).description
        #expect(message.contains("row 6") && message.contains("6 rows") && message.contains("token_embd.weight"))
    }

    @Test func everyMetadataTypeRoundTrips() throws {
        let values: [(String, GGUFValue)] = [
            ("u8", .uint8(255)), ("i8", .int8(-128)), ("u16", .uint16(65_535)), ("i16", .int16(-32_768)),
            ("u32", .uint32(.max)), ("i32", .int32(.min)), ("u64", .uint64(.max)), ("i64", .int64(.min)),
            ("f32", .float32(-1.5e-7)), ("f64", .float64(.pi)), ("yes", .bool(true)), ("no", .bool(false)),
            ("empty string", .string("")), ("unicode", .string("Grüße, 世界 🚀\n\u{0}")),
            ("a.u8", .array(.uint8([0, 1, 255]))), ("a.i8", .array(.int8([-1, 1]))),
            ("a.u16", .array(.uint16([1, 2]))), ("a.i16", .array(.int16([-3]))),
            ("a.u32", .array(.uint32([7]))), ("a.i32", .array(.int32([-7, 8]))),
            ("a.u64", .array(.uint64([.max]))), ("a.i64", .array(.int64([.min, 0]))),
            ("a.f32", .array(.float32([0.5, -.infinity]))), ("a.f64", .array(.float64([1e300]))),
            ("a.bool", .array(.bool([true, false, true]))), ("a.string", .array(.string(["", "x", "yz"]))),
            ("a.empty", .array(.float64([]))), ("a.empty strings", .array(.string([]))),
            (
                "a.nested",
                .array(.array([.int32([1, 2, 3]), .string(["in", "ner"]), .array([.bool([true])]), .uint8([])]))
            ),
        ]
        var writer = GGUFWriter()
        for (key, value) in values { writer.setMetadata(key, value) }
        writer.setMetadata("u8", .uint8(254))  // replacing keeps the position
        let directory = TemporaryDirectory()
        let path = directory.file("values.gguf")
        try writer.write(to: path)
        let file = try GGUFFile(path: path)
        #expect(file.metadataKeys == values.map(\.0))
        #expect(file["u8"] == .uint8(254))
        for (key, value) in values.dropFirst() {
            #expect(file[key] == value, "\(key)")
            #expect(file[key]?.type == value.type, "\(key) type")
        }
        #expect(file.tensors.isEmpty)
        #expect(file.parameterCount == 0)
        #expect(file.architecture == nil)
        #expect(file.architectureValue("block_count") == nil)
    }

    @Test func customAlignmentIsRecordedAndApplied() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("aligned.gguf")
        try Fixture.writer(alignment: 256).write(to: path)
        let file = try GGUFFile(path: path)
        #expect(file.alignment == 256)
        #expect(file.metadataKeys.first == "general.alignment")
        #expect(file["general.alignment"] == .uint32(256))
        #expect(file.dataOffset % 256 == 0)
        for tensor in file.tensors { #expect(tensor.offset % 256 == 0, "\(tensor.name)") }
        #expect(try file.dequantizedTensor(named: "output_norm.weight") == patternValues(64, seed: 1))

        // An explicit, agreeing general.alignment is kept where it was put.
        var writer = GGUFWriter(alignment: 64)
        writer.setMetadata("a", .uint8(1))
        writer.setMetadata("general.alignment", .uint32(64))
        try writer.addTensor(name: "t", dimensions: [3], values: [1, 2, 3])
        try writer.write(to: path)
        let second = try GGUFFile(path: path)
        #expect(second.metadataKeys == ["a", "general.alignment"])
        #expect(second.alignment == 64)
        #expect(second.tensors[0].offset % 64 == 0)
    }

    @Test func version2FilesAndScalarsAndKnownUnsupportedTypesLoad() throws {
        var writer = GGUFWriter()
        try writer.addTensor(name: "scalar", dimensions: [], values: [42])
        try writer.addTensor(name: "iq", dimensions: [256], type: .iq2_xxs, data: [UInt8](repeating: 0, count: 66))
        var bytes = try writer.serialized()
        bytes.patch(UInt32(2), at: 4)  // v2 has the same layout as v3 for little-endian files
        let directory = TemporaryDirectory()
        let path = directory.file("v2.gguf")
        writeBytes(bytes, to: path)
        let file = try GGUFFile(path: path)
        #expect(file.version == 2)
        let scalar = try #require(file.tensor(named: "scalar"))
        #expect(scalar.dimensions == [] && scalar.elementCount == 1 && scalar.rowLength == 1 && scalar.rowCount == 1)
        #expect(try file.dequantize(scalar) == [42])
        let iq = try #require(file.tensor(named: "iq"))
        #expect(iq.type == .iq2_xxs && iq.byteCount == 66)
        #expect(throws: GGUFError.unsupportedTensorType(path: path, tensor: "iq", type: .iq2_xxs)) {
            try file.dequantize(iq)
        }
        let message = GGUFError.unsupportedTensorType(path: path, tensor: "iq", type: .iq2_xxs).description
        #expect(message.contains("iq2_xxs") && message.contains("'iq'"))
    }

    @Test func writeReplacesExistingFilesAtomically() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("model.gguf")
        writeBytes(Array("old contents".utf8), to: path)
        try Fixture.writer().write(to: path)
        #expect(directory.entries == ["model.gguf"])
        #expect(try GGUFFile(path: path).tensors.count == 4)

        // A failing write leaves nothing behind and reports the path.
        let missing = directory.file("no/such/dir/model.gguf")
        #expect {
            try Fixture.writer().write(to: missing)
        } throws: { error in
            guard case .writeFailed(let failedPath, _) = error as? GGUFError else { return false }
            return failedPath == missing
        }
        #expect(directory.entries == ["model.gguf"])
    }

    @Test func writerRejectsInvalidInput() throws {
        var writer = GGUFWriter()
        try writer.addTensor(name: "a", dimensions: [32], values: [Float](repeating: 1, count: 32), type: .q8_0)
        func rejects(_ body: (inout GGUFWriter) throws -> Void, _ fragment: String) {
            var copy = writer
            do {
                try body(&copy)
                Issue.record("expected the writer to reject input mentioning '\(fragment)'")
            } catch let error as GGUFError {
                guard case .invalidWriterInput(let reason) = error else {
                    Issue.record("unexpected error \(error)")
                    return
                }
                #expect(reason.contains(fragment), "\(reason)")
            } catch {
                Issue.record("unexpected error \(error)")
            }
        }
        rejects({ try $0.addTensor(name: "a", dimensions: [4], values: [1, 2, 3, 4]) }, "duplicate tensor name 'a'")
        rejects({ try $0.addTensor(name: "b", dimensions: [1, 1, 1, 1, 1], values: [1]) }, "5 dimensions")
        rejects({ try $0.addTensor(name: "b", dimensions: [4, 0], values: []) }, "dimension 0")
        rejects({ try $0.addTensor(name: "b", dimensions: [4], values: [1, 2]) }, "hold 4 elements, got 2")
        rejects(
            { try $0.addTensor(name: "b", dimensions: [16, 2], values: patternValues(32), type: .q8_0) },
            "not a multiple of the q8_0 block size 32")
        rejects(
            { try $0.addTensor(name: "b", dimensions: [256], values: patternValues(256), type: .q4_K) },
            "cannot quantize ggml type q4_K")
        rejects(
            { try $0.addTensor(name: "b", dimensions: [32], type: .q4_0, data: [1, 2, 3]) },
            "take 18 bytes, got 3")
        rejects(
            {
                $0.alignment = 24
                _ = try $0.serialized()
            }, "alignment 24")
        rejects(
            {
                $0.setMetadata("general.alignment", .uint32(64))
                _ = try $0.serialized()
            },
            "general.alignment is 64 but the writer aligns to 32")
    }
}
