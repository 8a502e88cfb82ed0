import Foundation

/// How an input file is cut into documents.
public enum DocumentFormat: String, Sendable, CaseIterable {
    /// `.jsonl`/`.ndjson` files are JSONL; files with a line holding only `%` are fortunes; others are text.
    case auto
    /// The whole file is one document.
    case text
    /// Debian fortune files: documents are separated by lines holding only `%`.
    case fortunes
    /// One JSON object per line; the document is the string in the configured field. Blank lines are skipped.
    case jsonl
}

/// One input file read into memory and checked: valid UTF-8, format resolved, documents located.
struct DocumentFile {
    let path: String
    let format: DocumentFormat
    let digest: FileDigest
    /// Each document's text.
    let documents: [String]

    /// Reads and splits `path`.
    ///
    /// - Throws: ``DataError`` for an unreadable file, invalid UTF-8 (with line and column), a bad JSONL line (with
    ///   its number), or a file without any non-blank document.
    init(path: String, format requested: DocumentFormat, jsonlField: String) throws(DataError) {
        var bytes: [UInt8]
        do {
            bytes = try DataFileSystem.readFile(path)
        } catch {
            throw .unreadableInput(path: path, reason: error.reason)
        }
        self.path = path
        self.digest = FileDigest(sha256: DataFileSystem.sha256Hex(bytes), bytes: bytes.count)
        if let bad = Self.firstInvalidUTF8Offset(bytes) {
            let (line, column) = Self.lineAndColumn(of: bad, in: bytes)
            throw .invalidUTF8(path: path, line: line, column: column)
        }
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }

        var format = requested
        if format == .auto {
            let lower = path.lowercased()
            if lower.hasSuffix(".jsonl") || lower.hasSuffix(".ndjson") {
                format = .jsonl
            } else if Self.hasFortuneSeparator(bytes) {
                format = .fortunes
            } else {
                format = .text
            }
        }
        self.format = format
        switch format {
        case .auto, .text:
            documents = Self.isBlank(bytes[...]) ? [] : [String(decoding: bytes, as: UTF8.self)]
        case .fortunes:
            documents = Self.fortunes(bytes)
        case .jsonl:
            documents = try Self.jsonLines(bytes, path: path, field: jsonlField)
        }
        guard !documents.isEmpty else { throw .emptyInput(path: path) }
    }

    // MARK: - Formats

    /// Lines of `bytes` as ranges without their terminator (`\n`, or `\r\n`).
    static func lines(_ bytes: [UInt8]) -> [Range<Int>] {
        var result: [Range<Int>] = []
        var start = 0
        for index in bytes.indices where bytes[index] == UInt8(ascii: "\n") {
            var end = index
            if end > start && bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            result.append(start..<end)
            start = index + 1
        }
        if start < bytes.count {
            var end = bytes.count
            if bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            result.append(start..<end)
        }
        return result
    }

    static func isSeparator(_ line: ArraySlice<UInt8>) -> Bool {
        line.count == 1 && line.first == UInt8(ascii: "%")
    }

    static func isBlank(_ bytes: ArraySlice<UInt8>) -> Bool {
        bytes.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D || $0 == 0x0B || $0 == 0x0C }
    }

    static func hasFortuneSeparator(_ bytes: [UInt8]) -> Bool {
        lines(bytes).contains { isSeparator(bytes[$0]) }
    }

    /// The `%`-separated documents, each with its lines' original terminators; blank ones are dropped.
    static func fortunes(_ bytes: [UInt8]) -> [String] {
        var documents: [String] = []
        var start = 0
        func close(at end: Int) {
            let text = bytes[start..<end]
            if !isBlank(text) { documents.append(String(decoding: text, as: UTF8.self)) }
        }
        var lineStart = 0
        while lineStart < bytes.count {
            let newline = bytes[lineStart...].firstIndex(of: UInt8(ascii: "\n"))
            let next = newline.map { $0 + 1 } ?? bytes.count
            var lineEnd = newline ?? bytes.count
            if lineEnd > lineStart && bytes[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
            if isSeparator(bytes[lineStart..<lineEnd]) {
                close(at: lineStart)
                start = next
            }
            lineStart = next
        }
        close(at: bytes.count)
        return documents
    }

    /// The `field` string of each non-blank line; an empty string is skipped like a blank line.
    static func jsonLines(_ bytes: [UInt8], path: String, field: String) throws(DataError) -> [String] {
        var documents: [String] = []
        for (number, range) in lines(bytes).enumerated() {
            let line = bytes[range]
            if isBlank(line) { continue }
            let object: Any
            do {
                object = try JSONSerialization.jsonObject(with: Data(line), options: [.fragmentsAllowed])
            } catch {
                throw .badJSONLine(path: path, line: number + 1, reason: "not valid JSON")
            }
            guard let dictionary = object as? [String: Any] else {
                throw .badJSONLine(path: path, line: number + 1, reason: "expected a JSON object")
            }
            guard let value = dictionary[field] else {
                let keys = dictionary.keys.sorted().prefix(8).joined(separator: ", ")
                throw .badJSONLine(
                    path: path, line: number + 1,
                    reason: "no field '\(field)' (the object has: \(keys.isEmpty ? "no keys" : keys); "
                        + "choose the field with --jsonl-field)")
            }
            guard let text = value as? String else {
                throw .badJSONLine(path: path, line: number + 1, reason: "field '\(field)' is not a string")
            }
            if !text.isEmpty { documents.append(text) }
        }
        return documents
    }

    // MARK: - UTF-8

    /// The offset of the first byte that is not part of a well-formed UTF-8 sequence (no overlong forms, no
    /// surrogates, nothing above U+10FFFF), or nil if all of `bytes` is valid.
    static func firstInvalidUTF8Offset(_ bytes: [UInt8]) -> Int? {
        var index = 0
        let count = bytes.count
        while index < count {
            let lead = bytes[index]
            if lead < 0x80 {
                index += 1
                continue
            }
            let length: Int
            var lowest: UInt8 = 0x80
            var highest: UInt8 = 0xBF
            switch lead {
            case 0xC2...0xDF: length = 2
            case 0xE0:
                length = 3
                lowest = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED:
                length = 3
                highest = 0x9F
            case 0xF0:
                length = 4
                lowest = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4:
                length = 4
                highest = 0x8F
            default: return index
            }
            guard index + length <= count else { return index }
            guard (lowest...highest).contains(bytes[index + 1]) else { return index }
            for offset in 2..<max(2, length) where bytes[index + offset] & 0xC0 != 0x80 { return index }
            index += length
        }
        return nil
    }

    /// 1-based line and byte column of `offset`.
    static func lineAndColumn(of offset: Int, in bytes: [UInt8]) -> (line: Int, column: Int) {
        var line = 1
        var lineStart = 0
        for index in 0..<offset where bytes[index] == UInt8(ascii: "\n") {
            line += 1
            lineStart = index + 1
        }
        return (line, offset - lineStart + 1)
    }

    // MARK: - Inputs

    /// Expands the given paths into input files: files as given; directories into their regular files (sorted,
    /// not recursive), skipping hidden files, symbolic links (Debian's fortunes ship `NAME.u8 -> NAME`) and `NAME.dat`
    /// strfile indexes that sit beside `NAME`. A file named twice (or through a symbolic link) is read once, and a
    /// `NAME.dat` named together with `NAME` (as `fortunes/*` does) is skipped.
    ///
    /// - Throws: ``DataError/missingInput(path:)``, ``DataError/unreadableInput(path:reason:)`` or
    ///   ``DataError/noInputs(reason:)``.
    static func expandInputs(_ paths: [String]) throws(DataError) -> [String] {
        guard !paths.isEmpty else { throw .noInputs(reason: "give at least one --input file or directory") }
        var files: [String] = []
        var seen = Set<String>()
        func add(_ path: String) {
            if seen.insert(DataFileSystem.canonicalPath(path)).inserted { files.append(path) }
        }
        for path in paths {
            switch DataFileSystem.kind(of: path) {
            case .missing:
                throw DataFileSystem.isSymbolicLink(path)
                    ? .unreadableInput(path: path, reason: "it is a broken symbolic link") : .missingInput(path: path)
            case .other:
                throw .unreadableInput(path: path, reason: "not a regular file or directory")
            case .file:
                add(path)
            case .directory:
                let names: [String]
                do {
                    names = try DataFileSystem.listDirectory(path)
                } catch {
                    throw .unreadableInput(path: path, reason: error.reason)
                }
                let nameSet = Set(names)
                let prefix = path.hasSuffix("/") ? path : path + "/"
                for name in names where !name.hasPrefix(".") {
                    let child = prefix + name
                    if DataFileSystem.isSymbolicLink(child) || DataFileSystem.kind(of: child) != .file { continue }
                    if name.hasSuffix(".dat") && nameSet.contains(String(name.dropLast(4))) { continue }
                    add(child)
                }
            }
        }
        // `fortunes/*` names the strfile indexes too: drop NAME.dat when NAME is an input as well.
        let canonical = Set(files.map(DataFileSystem.canonicalPath))
        files.removeAll { path in
            path.hasSuffix(".dat") && canonical.contains(DataFileSystem.canonicalPath(String(path.dropLast(4))))
        }
        guard !files.isEmpty else { throw .noInputs(reason: "the given directories hold no regular files") }
        return files
    }
}

/// Stable hashes for data decisions (split membership, shuffles). They decide which document lands where, so they
/// must never change between versions.
enum DataHashing {
    /// A stable 64-bit hash of a document mixed with a seed: FNV-1a over the UTF-8 bytes, then the SplitMix64
    /// finaliser.
    static func document(_ text: String, seed: UInt64) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return mix(hash ^ mix(seed &+ 0x9E37_79B9_7F4A_7C15))
    }

    /// SplitMix64's output function (a bijective 64-bit mixer).
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
