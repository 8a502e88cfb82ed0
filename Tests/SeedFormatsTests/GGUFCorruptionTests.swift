import SeedFormats
import SeedTensor
import Testing

/// Damaged files must be rejected with the specific error, naming file, offset, key or tensor; never a crash.
@Suite struct GGUFCorruptionTests {
    let directory = TemporaryDirectory()
    var path: String { directory.file("test.gguf") }

    /// Offset of the u32 type field of tensor info `name` (after its name, dimension count and dimensions).
    func tensorTypeOffset(_ bytes: [UInt8], _ name: String, dimensions: Int) throws -> Int {
        let start = try #require(bytes.offset(ofGGUFString: name))
        return start + 8 + name.utf8.count + 4 + 8 * dimensions
    }

    // MARK: Opening

    @Test func missingEmptyAndNonRegularFiles() {
        let missing = directory.file("absent.gguf")
        #expect {
            try GGUFFile(path: missing)
        } throws: { error in
            guard case .cannotOpen(let failed, let reason) = error as? GGUFError else { return false }
            return failed == missing && reason.contains("No such file")
        }
        #expect {
            try GGUFFile(path: directory.path)
        } throws: { error in
            guard case .cannotOpen(_, let reason) = error as? GGUFError else { return false }
            return reason.contains("directory")
        }
        #expect(openingError([], in: directory) == .truncated(path: path, offset: 0, needed: 4, context: "magic"))
        #expect(
            openingError(Array("GG".utf8), in: directory)
                == .truncated(
                    path: path, offset: 0, needed: 4, context: "magic"))
    }

    @Test func badMagicReportsTheFirstBytes() {
        let error = openingError(Array("GGML\u{1}\u{0}\u{0}\u{0}rest of file".utf8), in: directory)
        #expect(error == .notGGUF(path: path, firstBytes: [0x47, 0x47, 0x4D, 0x4C, 1, 0, 0, 0]))
        #expect(error?.description.contains("47 47 4d 4c 01 00 00 00") == true)
        #expect(error?.description.contains("\"GGML....\"") == true)
        #expect(openingError([0x7F, 0x45], in: directory) == .notGGUF(path: path, firstBytes: [0x7F, 0x45]))
    }

    @Test func unsupportedVersionsAndByteOrder() throws {
        var bytes = try Fixture.bytes()
        bytes.patch(UInt32(1), at: 4)
        #expect(openingError(bytes, in: directory) == .unsupportedVersion(path: path, version: 1))
        bytes.patch(UInt32(4), at: 4)
        #expect(openingError(bytes, in: directory) == .unsupportedVersion(path: path, version: 4))
        bytes.patch(UInt32(3).byteSwapped, at: 4)
        #expect(openingError(bytes, in: directory) == .bigEndianFile(path: path))
    }

    // MARK: Truncation

    @Test func truncationAtEveryOffsetIsReported() throws {
        let bytes = try Fixture.bytes()
        writeBytes(bytes, to: path)
        let complete = try GGUFFile(path: path)
        let dataEnd = complete.tensors.map { $0.offset + $0.byteCount }.max()!
        // The last tensor info ends with its type and offset fields.
        let infosEnd = try tensorTypeOffset(bytes, "blk.0.ffn_down.weight", dimensions: 3) + 4 + 8
        #expect(infosEnd <= complete.dataOffset && complete.dataOffset - infosEnd < 32)

        for cut in 0..<bytes.count {
            let error = openingError(Array(bytes[..<cut]), in: directory)
            if cut >= dataEnd {
                #expect(error == nil, "only trailing padding is missing at \(cut)")
                continue
            }
            if cut >= infosEnd {
                guard case .tensorOutOfBounds = error else {
                    Issue.record("cut at \(cut) inside the data: unexpected \(String(describing: error))")
                    continue
                }
            }
            switch error {
            case .truncated(_, let offset, let needed, _):
                #expect(offset <= cut && offset + needed > cut, "cut at \(cut): reported at \(offset)+\(needed)")
            case .countTooLarge(_, let offset, _, let count, let each, let fileSize):
                // A count that does not fit in what is left of the shortened file.
                #expect(offset < cut && fileSize == cut && count * UInt64(each) > UInt64(cut), "cut at \(cut)")
            case .tensorOutOfBounds(_, _, let offset, let byteCount, let fileSize):
                #expect(cut >= infosEnd && Int(offset) + byteCount > fileSize, "cut at \(cut)")
                continue
            default:
                Issue.record("cut at \(cut): unexpected \(String(describing: error))")
            }
        }
    }

    @Test func truncationInsideAStringNamesIt() throws {
        let bytes = try Fixture.bytes()
        let start = try #require(bytes.offset(ofGGUFString: "héllo"))
        let error = openingError(Array(bytes[..<(start + 10)]), in: directory)
        #expect(
            error
                == .truncated(
                    path: path, offset: start + 8, needed: 6, context: "string 3 of array 'tokenizer.ggml.tokens'"))
    }

    @Test func truncationInsideTensorDataNamesTheTensor() throws {
        let bytes = try Fixture.bytes()
        writeBytes(bytes, to: path)
        let info = try #require(try GGUFFile(path: path).tensor(named: "blk.0.ffn_down.weight"))
        let cut = info.offset + 10
        let error = openingError(Array(bytes[..<cut]), in: directory)
        #expect(
            error
                == .tensorOutOfBounds(
                    path: path, tensor: info.name, offset: UInt64(info.offset), byteCount: 256, fileSize: cut))
    }

    // MARK: Counts and lengths

    @Test func absurdCountsAreRejectedBeforeAllocating() throws {
        let original = try Fixture.bytes()
        var bytes = original
        bytes.patch(UInt64.max, at: 8)
        #expect(
            openingError(bytes, in: directory)
                == .countTooLarge(
                    path: path, offset: 8, context: "tensor count", count: .max, minimumBytesEach: 24,
                    fileSize: bytes.count))

        bytes = original
        bytes.patch(UInt64(1) << 40, at: 16)
        #expect(
            openingError(bytes, in: directory)
                == .countTooLarge(
                    path: path, offset: 16, context: "metadata entry count", count: 1 << 40, minimumBytesEach: 13,
                    fileSize: bytes.count))

        // Key length of the first entry.
        bytes = original
        bytes.patch(UInt64(bytes.count + 1), at: 24)
        #expect(
            openingError(bytes, in: directory)
                == .countTooLarge(
                    path: path, offset: 24, context: "length of key of metadata entry 0",
                    count: UInt64(bytes.count + 1),
                    minimumBytesEach: 1, fileSize: bytes.count))

        // A string value's length.
        bytes = original
        let name = try #require(bytes.offset(ofGGUFString: "tiny test model"))
        bytes.patch(UInt64.max - 3, at: name)
        #expect(
            openingError(bytes, in: directory)
                == .countTooLarge(
                    path: path, offset: name, context: "length of string value of metadata 'general.name'",
                    count: .max - 3, minimumBytesEach: 1, fileSize: bytes.count))

        // Array length: the count field follows the key, the value type (9) and the element type.
        bytes = original
        let tokensKey = try #require(bytes.offset(ofGGUFString: "tokenizer.ggml.tokens"))
        let tokensCount = tokensKey + 8 + 21 + 4 + 4
        #expect(bytes.read(UInt64.self, at: tokensCount) == 6)
        bytes.patch(UInt64(1) << 62, at: tokensCount)
        #expect(
            openingError(bytes, in: directory)
                == .countTooLarge(
                    path: path, offset: tokensCount, context: "element count of array 'tokenizer.ggml.tokens'",
                    count: 1 << 62,
                    minimumBytesEach: 8, fileSize: bytes.count))
    }

    @Test func plausibleButWrongArrayLengthRunsOffTheEnd() throws {
        var bytes = try Fixture.bytes()
        let key = try #require(bytes.offset(ofGGUFString: "tokenizer.ggml.token_type"))
        let countOffset = key + 8 + 25 + 4 + 4
        #expect(bytes.read(UInt64.self, at: countOffset) == 6)
        let count = bytes.count / 4 - 1  // fits in the file as a whole, but not in what is left of it
        bytes.patch(UInt64(count), at: countOffset)
        #expect(
            openingError(bytes, in: directory)
                == .truncated(
                    path: path, offset: countOffset + 8, needed: 4 * count,
                    context: "\(count) int32 elements of array 'tokenizer.ggml.token_type'"))
    }

    // MARK: Metadata content

    @Test func unknownValueTypesAreNamed() throws {
        var bytes = try Fixture.bytes()
        let key = try #require(bytes.offset(ofGGUFString: "test.flag"))
        let typeOffset = key + 8 + 9
        #expect(bytes.read(UInt32.self, at: typeOffset) == 7)
        bytes.patch(UInt32(13), at: typeOffset)
        #expect(
            openingError(bytes, in: directory)
                == .unknownValueType(
                    path: path, offset: typeOffset, key: "test.flag", rawType: 13))

        bytes = try Fixture.bytes()
        let tokens = try #require(bytes.offset(ofGGUFString: "tokenizer.ggml.tokens"))
        let elementType = tokens + 8 + 21 + 4
        bytes.patch(UInt32(0xDEAD), at: elementType)
        #expect(
            openingError(bytes, in: directory)
                == .unknownValueType(
                    path: path, offset: elementType, key: "tokenizer.ggml.tokens", rawType: 0xDEAD))
    }

    @Test func invalidBoolByte() throws {
        var bytes = try Fixture.bytes()
        let key = try #require(bytes.offset(ofGGUFString: "test.flag"))
        bytes[key + 8 + 9 + 4] = 2
        #expect(
            openingError(bytes, in: directory)
                == .invalidBool(
                    path: path, offset: key + 21, key: "test.flag", byte: 2))
    }

    @Test func invalidUTF8IsRejectedInKeysValuesAndNames() throws {
        let original = try Fixture.bytes()
        var bytes = original
        let key = try #require(bytes.offset(ofGGUFString: "test.flag"))
        bytes[key + 8] = 0xFF
        #expect(
            openingError(bytes, in: directory)
                == .invalidUTF8(
                    path: path, offset: key + 8, context: "key of metadata entry 6"))

        bytes = original
        let token = try #require(bytes.offset(ofGGUFString: "héllo"))
        bytes[token + 9] = 0xC0  // 'é' is C3 A9; C0 A9 is an overlong, invalid sequence
        #expect(
            openingError(bytes, in: directory)
                == .invalidUTF8(
                    path: path, offset: token + 8, context: "string 3 of array 'tokenizer.ggml.tokens'"))

        bytes = original
        let tensor = try #require(bytes.offset(ofGGUFString: "output_norm.weight"))
        bytes[tensor + 8] = 0x80
        #expect(
            openingError(bytes, in: directory)
                == .invalidUTF8(
                    path: path, offset: tensor + 8, context: "name of tensor 1"))
    }

    @Test func duplicateKeysAndTensorNames() throws {
        var writer = GGUFWriter()
        writer.setMetadata("key.a", .uint8(1))
        writer.setMetadata("key.b", .uint8(2))
        try writer.addTensor(name: "tensor.a", dimensions: [2], values: [1, 2])
        try writer.addTensor(name: "tensor.b", dimensions: [2], values: [3, 4])
        let original = try writer.serialized()

        var bytes = original
        bytes[try #require(bytes.offset(ofGGUFString: "key.b")) + 8 + 4] = UInt8(ascii: "a")
        #expect(openingError(bytes, in: directory) == .duplicateKey(path: path, key: "key.a"))

        bytes = original
        bytes[try #require(bytes.offset(ofGGUFString: "tensor.b")) + 8 + 7] = UInt8(ascii: "a")
        #expect(openingError(bytes, in: directory) == .duplicateTensorName(path: path, name: "tensor.a"))
    }

    @Test func invalidAlignmentValues() throws {
        var writer = GGUFWriter(alignment: 64)
        try writer.addTensor(name: "t", dimensions: [4], values: [1, 2, 3, 4])
        let original = try writer.serialized()
        let valueOffset = try #require(original.offset(ofGGUFString: "general.alignment")) + 8 + 17 + 4
        #expect(original.read(UInt32.self, at: valueOffset) == 64)

        for bad: UInt32 in [0, 48, 3] {
            var bytes = original
            bytes.patch(bad, at: valueOffset)
            #expect(openingError(bytes, in: directory) == .invalidAlignment(path: path, value: "\(bad) (uint32)"))
        }

        // The writer refuses a textual general.alignment, so write another key and rename it in place.
        var textual = GGUFWriter()
        textual.setMetadata("general.alignmenX", .string("32"))
        var bytes = try textual.serialized()
        bytes[try #require(bytes.offset(ofGGUFString: "general.alignmenX")) + 8 + 16] = UInt8(ascii: "t")
        #expect(openingError(bytes, in: directory) == .invalidAlignment(path: path, value: "\"32\" (string)"))
    }

    @Test func deeplyNestedArraysAreRejected() throws {
        /// A file with one entry "deep" holding `levels` nested arrays around a one-byte array, encoded by hand.
        func nestedFile(levels: Int) -> [UInt8] {
            var bytes = Array("GGUF".utf8)
            bytes += [3, 0, 0, 0] + [0, 0, 0, 0, 0, 0, 0, 0] + [1, 0, 0, 0, 0, 0, 0, 0]
            bytes += [4, 0, 0, 0, 0, 0, 0, 0] + Array("deep".utf8) + [9, 0, 0, 0]
            for _ in 1..<levels { bytes += [9, 0, 0, 0] + [1, 0, 0, 0, 0, 0, 0, 0] }
            return bytes + [0, 0, 0, 0] + [1, 0, 0, 0, 0, 0, 0, 0] + [42]
        }
        let limit = GGUFFile.maximumArrayNesting
        let tooDeep = nestedFile(levels: limit + 1)
        let innermost = tooDeep.count - 13
        #expect(openingError(tooDeep, in: directory) == .nestingTooDeep(path: path, offset: innermost, key: "deep"))
        #expect(openingError(nestedFile(levels: limit), in: directory) == nil)

        // The writer refuses to produce what the reader would reject.
        var nested = GGUFArray.uint8([42])
        for _ in 0..<limit { nested = .array([nested]) }
        var writer = GGUFWriter()
        writer.setMetadata("deep", .array(nested))
        #expect(throws: GGUFError.invalidWriterInput(reason: "metadata 'deep' nests arrays deeper than 64 levels")) {
            try writer.serialized()
        }
        var allowed = GGUFArray.uint8([42])
        for _ in 1..<limit { allowed = .array([allowed]) }
        writer.setMetadata("deep", .array(allowed))
        let written = try writer.serialized()
        let expected = nestedFile(levels: limit)
        #expect(Array(written.prefix(expected.count)) == expected)
        #expect(written.dropFirst(expected.count).allSatisfy { $0 == 0 } && written.count % 32 == 0)
    }

    // MARK: Tensor infos

    @Test func tooManyDimensions() throws {
        var bytes = try Fixture.bytes()
        let start = try #require(bytes.offset(ofGGUFString: "output_norm.weight"))
        bytes.patch(UInt32(5), at: start + 8 + 18)
        #expect(
            openingError(bytes, in: directory)
                == .invalidDimensionCount(
                    path: path, tensor: "output_norm.weight", count: 5))
    }

    @Test func zeroNegativeAndOverflowingDimensions() throws {
        let original = try Fixture.bytes()
        let start = try #require(original.offset(ofGGUFString: "token_embd.weight"))
        let firstDimension = start + 8 + 17 + 4

        var bytes = original
        bytes.patch(UInt64(0), at: firstDimension + 8)
        #expect(
            openingError(bytes, in: directory)
                == .invalidDimension(
                    path: path, tensor: "token_embd.weight", index: 1, value: 0))

        bytes = original
        bytes.patch(UInt64.max, at: firstDimension)
        let error = openingError(bytes, in: directory)
        #expect(error == .invalidDimension(path: path, tensor: "token_embd.weight", index: 0, value: .max))
        #expect(error?.description.contains("dimension 0 is -1") == true)

        bytes = original
        bytes.patch(UInt64(1) << 32, at: firstDimension)
        bytes.patch(UInt64(1) << 32, at: firstDimension + 8)
        #expect(
            openingError(bytes, in: directory)
                == .tensorSizeOverflow(
                    path: path, tensor: "token_embd.weight", dimensions: [1 << 32, 1 << 32]))

        // The element count fits, the byte size does not: 2^62 f32 elements.
        bytes = original
        let norm = try #require(bytes.offset(ofGGUFString: "output_norm.weight"))
        bytes.patch(UInt64(1) << 62, at: norm + 8 + 18 + 4)
        #expect(
            openingError(bytes, in: directory)
                == .tensorSizeOverflow(
                    path: path, tensor: "output_norm.weight", dimensions: [1 << 62]))
    }

    @Test func unknownAndRetiredTensorTypes() throws {
        var bytes = try Fixture.bytes()
        let typeOffset = try tensorTypeOffset(bytes, "blk.0.attn_q.weight", dimensions: 2)
        #expect(bytes.read(UInt32.self, at: typeOffset) == GGMLType.q4_1.rawValue)
        bytes.patch(UInt32(200), at: typeOffset)
        #expect(
            openingError(bytes, in: directory)
                == .unknownTensorType(
                    path: path, tensor: "blk.0.attn_q.weight", rawType: 200))
        bytes.patch(UInt32(4), at: typeOffset)
        let retired = openingError(bytes, in: directory)
        #expect(retired == .unknownTensorType(path: path, tensor: "blk.0.attn_q.weight", rawType: 4))
        #expect(retired?.description.contains("q4_2") == true)
    }

    @Test func rowLengthMustBeWholeBlocks() throws {
        var bytes = try Fixture.bytes()
        let start = try #require(bytes.offset(ofGGUFString: "token_embd.weight"))
        let firstDimension = start + 8 + 17 + 4
        bytes.patch(UInt64(16), at: firstDimension)  // [16, 24]: same element count, but rows of half a block
        bytes.patch(UInt64(24), at: firstDimension + 8)
        let error = openingError(bytes, in: directory)
        #expect(error == .blockSizeMismatch(path: path, tensor: "token_embd.weight", type: .q8_0, rowLength: 16))
        #expect(error?.description.contains("block size 32") == true)
    }

    @Test func misalignedOutOfBoundsAndOverlappingOffsets() throws {
        let original = try Fixture.bytes()
        let normOffsetField = try tensorTypeOffset(original, "output_norm.weight", dimensions: 1) + 4
        let qOffsetField = try tensorTypeOffset(original, "blk.0.attn_q.weight", dimensions: 2) + 4
        #expect(original.read(UInt64.self, at: normOffsetField) == 416)  // 408 bytes of q8_0, padded to 32

        var bytes = original
        bytes.patch(UInt64(420), at: normOffsetField)
        #expect(
            openingError(bytes, in: directory)
                == .misalignedTensorOffset(
                    path: path, tensor: "output_norm.weight", offset: 420, alignment: 32))

        bytes = original
        bytes.patch(UInt64(1) << 20, at: normOffsetField)
        writeBytes(original, to: path)
        let dataOffset = try GGUFFile(path: path).dataOffset
        #expect(
            openingError(bytes, in: directory)
                == .tensorOutOfBounds(
                    path: path, tensor: "output_norm.weight", offset: UInt64(dataOffset + (1 << 20)), byteCount: 256,
                    fileSize: bytes.count))

        bytes = original
        bytes.patch(UInt64.max - 31, at: normOffsetField)  // aligned, but the absolute offset overflows
        guard case .tensorOutOfBounds(_, let tensor, _, _, _) = openingError(bytes, in: directory) else {
            Issue.record("expected tensorOutOfBounds")
            return
        }
        #expect(tensor == "output_norm.weight")

        bytes = original
        bytes.patch(UInt64(384), at: qOffsetField)  // inside token_embd.weight's 408 bytes
        #expect(
            openingError(bytes, in: directory)
                == .overlappingTensors(
                    path: path, first: "token_embd.weight", second: "blk.0.attn_q.weight"))
    }

    // MARK: Fuzzing

    @Test func randomCorruptionNeverCrashes() throws {
        let original = try Fixture.bytes()
        writeBytes(original, to: path)
        let headerEnd = try GGUFFile(path: path).dataOffset
        var state: UInt64 = 0x5EED
        func next() -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int(truncatingIfNeeded: state >> 33)
        }
        var rejected = 0
        for _ in 0..<1500 {
            var bytes = original
            for _ in 0...(next() % 4) {
                let position = next() % headerEnd
                switch next() % 3 {
                case 0: bytes[position] = UInt8(truncatingIfNeeded: next())
                case 1: bytes[position] ^= 0x80
                default: bytes[position] = 0xFF
                }
            }
            if openingError(bytes, in: directory) != nil { rejected += 1 }
        }
        #expect(rejected > 500, "most header corruptions should be detected (\(rejected) of 1500)")
    }
}
