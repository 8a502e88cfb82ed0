/// GPT-2's reversible byte ↔ Unicode mapping ("byte-level" encoding).
///
/// Byte-level BPE vocabularies store every token as text in which each byte of the original UTF-8 is replaced by
/// one printable Unicode scalar: the printable bytes `!`...`~`, `¡`...`¬` and `®`...`ÿ` stand for themselves,
/// and the remaining 68 bytes (controls, space, DEL, NBSP, soft hyphen, ...) are mapped in increasing order to
/// U+0100, U+0101, ... (so a space is `Ġ` U+0120 and a newline `Ċ` U+010A).
public enum ByteLevel {
    /// The scalar that stands for each byte, indexed by byte value.
    public static let byteToScalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: "\0", count: 256)
        var extra: UInt32 = 256
        for byte in 0..<256 {
            if isPrintable(UInt8(byte)) {
                table[byte] = Unicode.Scalar(UInt8(byte))
            } else {
                // 256 + n is always a valid scalar (below U+0144).
                table[byte] = Unicode.Scalar(extra) ?? "\0"
                extra += 1
            }
        }
        return table
    }()

    /// Reverse table indexed by scalar value (all mapped scalars are below U+0144); -1 where unmapped.
    static let scalarToByteTable: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x144)
        for (byte, scalar) in byteToScalar.enumerated() {
            table[Int(scalar.value)] = Int16(byte)
        }
        return table
    }()

    /// UTF-8 encoding of each byte's stand-in scalar (1 or 2 bytes), indexed by byte value.
    static let byteToUTF8: [[UInt8]] = byteToScalar.map { Array(String($0).utf8) }

    /// The byte a byte-level scalar stands for, or `nil` if the scalar is not part of the mapping.
    @inline(__always)
    public static func byte(for scalar: Unicode.Scalar) -> UInt8? {
        let value = scalar.value
        guard value < 0x144 else { return nil }
        let byte = scalarToByteTable[Int(value)]
        return byte < 0 ? nil : UInt8(byte)
    }

    /// Encodes raw bytes as byte-level text (e.g. `" hi"` → `"Ġhi"`).
    public static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var result = String.UnicodeScalarView()
        for byte in bytes {
            result.append(byteToScalar[Int(byte)])
        }
        return String(result)
    }

    /// Decodes byte-level text back to raw bytes. Scalars outside the mapping are kept as their own UTF-8 bytes.
    public static func decode(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        appendDecoded(text, to: &bytes)
        return bytes
    }

    static func appendDecoded(_ text: String, to bytes: inout [UInt8]) {
        for scalar in text.unicodeScalars {
            if let byte = byte(for: scalar) {
                bytes.append(byte)
            } else {
                bytes.append(contentsOf: String(scalar).utf8)
            }
        }
    }

    private static func isPrintable(_ byte: UInt8) -> Bool {
        (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
    }
}
