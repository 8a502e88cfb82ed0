import SeedFormats
import Testing

/// Malformed files: each must fail with the specific ``SafetensorsError``, never crash.
@Suite("Safetensors corruption")
struct SafetensorsCorruptionTests {
    let directory = TemporaryDirectory()

    /// Opens `bytes` written to a file; returns the error, or records an issue if the file opened.
    func error(opening bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) -> SafetensorsError? {
        let path = directory.file("bad.safetensors")
        writeBytes(bytes, to: path)
        do {
            _ = try SafetensorsFile(path: path)
            Issue.record("file opened, expected an error", sourceLocation: sourceLocation)
            return nil
        } catch {
            // The message always names the file.
            #expect(error.description.hasPrefix(path), sourceLocation: sourceLocation)
            return error
        }
    }

    /// A file with header `json` (length field exact, no padding) followed by `dataSize` data bytes.
    func file(_ json: String, dataSize: Int = 0) -> [UInt8] {
        let header = Array(json.utf8)
        return withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) } + header
            + [UInt8](repeating: 0xAB, count: dataSize)
    }

    var path: String { directory.file("bad.safetensors") }

    /// A valid small file with metadata, two tensors and an odd header length.
    func validFile() throws -> [UInt8] {
        var writer = SafetensorsWriter()
        writer.setMetadata("k", "v")
        try writer.addTensor(name: "a", shape: [2, 3], floats: [1, 2, 3, 4, 5, 6])
        try writer.addTensor(name: "b", shape: [4], floats: [1, 2, 3, 4], dtype: .bf16)
        return writer.serialized()
    }

    @Test("Missing file, directory, empty file and files shorter than 8 bytes")
    func fileLevel() {
        do {
            _ = try SafetensorsFile(path: directory.file("nope.safetensors"))
            Issue.record("opened a missing file")
        } catch {
            guard case .cannotOpen(let path, _) = error else {
                Issue.record("wrong error \(error)")
                return
            }
            #expect(path == directory.file("nope.safetensors"))
        }
        #expect(throws: SafetensorsError.self) { try SafetensorsFile(path: directory.path) }
        #expect(error(opening: []) == .fileTooSmall(path: path, size: 0))
        #expect(error(opening: [1, 0, 0]) == .fileTooSmall(path: path, size: 3))
    }

    @Test("Truncating a valid file at every offset fails cleanly with the expected error")
    func truncation() throws {
        let bytes = try validFile()
        let headerLength = Int(bytes[0]) | Int(bytes[1]) << 8
        let dataStart = 8 + headerLength
        for cut in 0..<bytes.count {
            let failure = error(opening: Array(bytes.prefix(cut)))
            if cut < 8 {
                #expect(failure == .fileTooSmall(path: path, size: cut))
            } else if cut < dataStart {
                #expect(
                    failure
                        == .headerLengthExceedsFile(
                            path: path, headerLength: UInt64(headerLength),
                            fileSize: cut))
            } else {
                // The data section is short: a (24 bytes at 0) or else b (8 bytes at 24) reaches past the end.
                let dataSize = cut - dataStart
                let (tensor, range) = dataSize < 24 ? ("a", 0..<24) : ("b", 24..<32)
                #expect(failure == .tensorOutOfBounds(path: path, tensor: tensor, dataRange: range, dataSize: dataSize))
            }
        }
        // And the untruncated file opens.
        writeBytes(bytes, to: path)
        #expect(try SafetensorsFile(path: path).tensors.map(\.name) == ["a", "b"])
    }

    @Test("Overwriting any header byte with a few values never crashes; files that still open are consistent")
    func headerByteFlips() throws {
        let bytes = try validFile()
        let headerEnd = 8 + (Int(bytes[0]) | Int(bytes[1]) << 8)
        var opened = 0
        for position in 0..<headerEnd {
            for value: UInt8 in [0x00, 0x22, 0x2D, 0x31, 0x5B, 0x7B, 0x7D, 0xFF] where value != bytes[position] {
                var mutated = bytes
                mutated[position] = value
                writeBytes(mutated, to: path)
                guard let file = try? SafetensorsFile(path: path) else { continue }
                opened += 1
                let dataSize = mutated.count - file.dataOffset
                #expect(file.tensors.map(\.dataRange.count).reduce(0, +) == dataSize)
                for tensor in file.tensors {
                    #expect(tensor.dataRange.upperBound <= dataSize)
                    #expect(try file.floats(named: tensor.name).count == tensor.elementCount)
                }
            }
        }
        // Some mutations (inside names or metadata strings, or harmless digits) leave a valid file.
        #expect(opened > 0)
    }

    @Test("Header length field: huge, larger than the file, zero")
    func headerLength() throws {
        var bytes = try validFile()
        for i in 0..<8 { bytes[i] = 0xFF }
        #expect(error(opening: bytes) == .headerTooLarge(path: path, headerLength: .max, limit: 100_000_000))
        bytes.replaceSubrange(0..<8, with: [0x00, 0xE1, 0xF5, 0x05, 0, 0, 0, 0])  // 100_000_000: allowed size,
        #expect(
            error(opening: bytes)
                == .headerLengthExceedsFile(
                    path: path, headerLength: 100_000_000,
                    fileSize: bytes.count))  // but not in this file
        bytes.replaceSubrange(0..<8, with: [0, 0, 0, 0, 0, 0, 0, 0])
        guard case .invalidHeader(_, let reason) = error(opening: bytes) else {
            Issue.record("zero header length should be invalid JSON")
            return
        }
        #expect(reason.contains("end of header"))
    }

    @Test(
        "Header that is not UTF-8, not JSON, or not an object",
        arguments: [
            "{\"a\": ", "{\"a\" 1}", "{'a': 1}", "{\"a\": {}} x", "[1, 2]", "\"text\"", "42", "", "   ",
            "{\"a\": \"\\x\"}", "{\"a\": \"\u{01}\"}", "{\"a\": tru}", "{\"a\": 01}", "{\"a\": \"\\ud800\"}",
            String(repeating: "[", count: 1000) + String(repeating: "]", count: 1000),
            "{\"x\":" + String(repeating: "{\"x\":", count: 100_000),
        ])
    func invalidJSON(json: String) {
        let failure = error(opening: file(json))
        guard case .invalidHeader = failure else {
            Issue.record("wrong error \(String(describing: failure))")
            return
        }
    }

    @Test("Header bytes that are not valid UTF-8")
    func invalidUTF8() {
        let header: [UInt8] = Array("{\"a".utf8) + [0xC3, 0x28] + Array("\": 1}".utf8)
        let bytes = withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) } + header
        guard case .invalidHeader(_, let reason) = error(opening: bytes) else {
            Issue.record("accepted")
            return
        }
        #expect(reason.contains("UTF-8"))
    }

    @Test("Tensor entries with missing fields or wrong JSON types")
    func badEntries() {
        let cases: [String] = [
            #"{"t": 5}"#,
            #"{"t": {"shape": [1], "data_offsets": [0, 4]}}"#,
            #"{"t": {"dtype": "F32", "data_offsets": [0, 4]}}"#,
            #"{"t": {"dtype": "F32", "shape": [1]}}"#,
            #"{"t": {"dtype": 1, "shape": [1], "data_offsets": [0, 4]}}"#,
            #"{"t": {"dtype": "F32", "shape": "1", "data_offsets": [0, 4]}}"#,
            #"{"t": {"dtype": "F32", "shape": [1], "data_offsets": {"begin": 0}}}"#,
            #"{"t": {"dtype": "F32", "dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#,
        ]
        for json in cases {
            let failure = error(opening: file(json, dataSize: 4))
            guard case .invalidTensorEntry(_, let tensor, _) = failure else {
                Issue.record("\(json): wrong error \(String(describing: failure))")
                continue
            }
            #expect(tensor == "t")
        }
    }

    @Test("Unknown dtype is named")
    func unknownDType() {
        let json = #"{"t": {"dtype": "F4", "shape": [2], "data_offsets": [0, 1]}}"#
        let failure = error(opening: file(json, dataSize: 1))
        #expect(failure == .unknownDType(path: path, tensor: "t", dtype: "F4"))
        #expect(failure?.description.contains("'F4'") == true)
    }

    @Test("Negative, fractional, non-numeric and too-large dimensions")
    func badDimensions() {
        let cases: [(String, Int, String)] = [
            ("[-1]", 0, "-1"), ("[2, 1.5]", 1, "1.5"), ("[2e0]", 0, "2e0"), ("[\"2\"]", 0, "\"2\""),
            ("[null]", 0, "null"), ("[99999999999999999999]", 0, "99999999999999999999"),
        ]
        for (shape, index, value) in cases {
            let json = #"{"t": {"dtype": "F32", "shape": \#(shape), "data_offsets": [0, 4]}}"#
            #expect(
                error(opening: file(json, dataSize: 4))
                    == .invalidDimension(path: path, tensor: "t", index: index, value: value))
        }
    }

    @Test("Element or byte count overflow")
    func overflow() {
        for shape in [[4_294_967_296, 4_294_967_296], [Int.max / 2], [3_037_000_500, 3_037_000_500, 0]] {
            let json = #"{"t": {"dtype": "F32", "shape": \#(shape), "data_offsets": [0, 4]}}"#
            #expect(
                error(opening: file(json, dataSize: 4))
                    == .tensorSizeOverflow(
                        path: path, tensor: "t",
                        shape: shape))
        }
    }

    @Test("Lying data offsets: malformed, mismatched with the shape, past the end, overlapping, gaps")
    func lyingOffsets() {
        func entry(_ name: String, _ shape: String, _ offsets: String) -> String {
            #""\#(name)": {"dtype": "F32", "shape": \#(shape), "data_offsets": \#(offsets)}"#
        }
        for offsets in ["[0]", "[0, 4, 8]", "[-4, 0]", "[8, 4]", "[0, 4.0]", "[0, null]"] {
            #expect(
                error(opening: file("{" + entry("t", "[1]", offsets) + "}", dataSize: 4))
                    == .invalidDataOffsets(path: path, tensor: "t", value: offsets))
        }
        #expect(
            error(opening: file("{" + entry("t", "[2]", "[0, 4]") + "}", dataSize: 4))
                == .dataSizeMismatch(path: path, tensor: "t", dtype: .f32, shape: [2], byteCount: 4, expected: 8))
        #expect(
            error(opening: file("{" + entry("t", "[2]", "[0, 8]") + "}", dataSize: 4))
                == .tensorOutOfBounds(path: path, tensor: "t", dataRange: 0..<8, dataSize: 4))
        #expect(
            error(
                opening: file(
                    "{" + entry("t", "[1]", "[9223372036854775803, 9223372036854775807]") + "}",
                    dataSize: 4))
                == .tensorOutOfBounds(
                    path: path, tensor: "t",
                    dataRange: 9_223_372_036_854_775_803..<Int.max, dataSize: 4))
        #expect(
            error(
                opening: file(
                    "{" + entry("a", "[2]", "[0, 8]") + ", " + entry("b", "[1]", "[4, 8]") + "}",
                    dataSize: 8)) == .overlappingTensors(path: path, first: "a", second: "b"))
        #expect(
            error(
                opening: file(
                    "{" + entry("a", "[1]", "[0, 4]") + ", " + entry("b", "[1]", "[0, 4]") + "}",
                    dataSize: 4)) == .overlappingTensors(path: path, first: "a", second: "b"))
        #expect(
            error(
                opening: file(
                    "{" + entry("a", "[1]", "[0, 4]") + ", " + entry("b", "[1]", "[8, 12]") + "}",
                    dataSize: 12)) == .uncoveredData(path: path, range: 4..<8))
        #expect(
            error(opening: file("{" + entry("a", "[1]", "[4, 8]") + "}", dataSize: 8))
                == .uncoveredData(path: path, range: 0..<4))
        #expect(
            error(opening: file("{" + entry("a", "[1]", "[0, 4]") + "}", dataSize: 6))
                == .uncoveredData(path: path, range: 4..<6))
        #expect(error(opening: file("{}", dataSize: 1)) == .uncoveredData(path: path, range: 0..<1))
    }

    @Test("Metadata must be an object of strings; names must be unique")
    func metadataAndDuplicates() {
        #expect(
            error(opening: file(#"{"__metadata__": {"a": "x", "n": 1}}"#))
                == .invalidMetadata(path: path, key: "n", reason: "is a number, expected a string"))
        #expect(
            error(opening: file(#"{"__metadata__": ["a"]}"#))
                == .invalidMetadata(path: path, key: "", reason: "is an array, expected an object of strings"))
        #expect(
            error(opening: file(#"{"__metadata__": {"a": "x", "a": "y"}}"#))
                == .invalidMetadata(path: path, key: "a", reason: "appears more than once"))
        #expect(
            error(opening: file(#"{"__metadata__": {}, "__metadata__": {}}"#))
                == .duplicateName(path: path, name: "__metadata__"))
        let t = #""t": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}"#
        #expect(error(opening: file("{" + t + ", " + t + "}", dataSize: 1)) == .duplicateName(path: path, name: "t"))
    }

    @Test("Accepted quirks: padding whitespace, unknown entry fields, escaped names, zero-size tensors")
    func acceptedQuirks() throws {
        let json =
            "{\"na\\u00efve \\\"w\\\"\": {\"dtype\": \"I8\", \"shape\": [2], \"data_offsets\": [0, 2], "
            + "\"extra\": [1, {\"x\": null}]}, \"z\": {\"dtype\": \"F64\", \"shape\": [0, 3], \"data_offsets\": "
            + "[2, 2]}}\n\t   "
        writeBytes(file(json, dataSize: 2), to: path)
        let opened = try SafetensorsFile(path: path)
        #expect(opened.tensors.map(\.name) == ["naïve \"w\"", "z"])
        #expect(try opened.floats(named: "naïve \"w\"") == [-85, -85])
        #expect(opened.tensor(named: "z")?.elementCount == 0)
        #expect(throws: SafetensorsError.tensorNotFound(path: path, name: "nope")) {
            try opened.floats(named: "nope")
        }
    }
}
