/// Open-addressing hash table from a packed pair of 32-bit symbol ids to a packed 64-bit value.
///
/// Used for BPE merge ranks: key `left << 32 | right`, value `rank << 32 | mergedID`. Lookups do no allocation and
/// no SipHash, which keeps both construction (about 50k merges) and encoding fast.
struct PairTable: Sendable {
    static let absent = UInt64.max
    private var keys: [UInt64]
    private var values: [UInt64]
    private let mask: Int
    private let shift: UInt64
    private(set) var count = 0

    init(minimumCapacity: Int) {
        var capacity = 16
        var bits: UInt64 = 4
        while capacity < minimumCapacity * 2 {
            capacity <<= 1
            bits += 1
        }
        keys = [UInt64](repeating: Self.absent, count: capacity)
        values = [UInt64](repeating: Self.absent, count: capacity)
        mask = capacity - 1
        shift = 64 - bits
    }

    @inline(__always) static func key(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    @inline(__always) private func slot(for key: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift) & mask
    }

    /// Inserts `value` for `key` unless the key is present; returns whether it was inserted.
    @discardableResult
    mutating func insertIfAbsent(_ key: UInt64, _ value: UInt64) -> Bool {
        precondition(key != Self.absent, "reserved key")
        var index = slot(for: key)
        while keys[index] != Self.absent {
            if keys[index] == key { return false }
            index = (index + 1) & mask
        }
        keys[index] = key
        values[index] = value
        count += 1
        return true
    }

    /// The value stored for `key`, or `PairTable.absent`.
    @inline(__always)
    func value(for key: UInt64) -> UInt64 {
        keys.withUnsafeBufferPointer { keys in
            var index = slot(for: key)
            while true {
                let stored = keys[index]
                if stored == key { return values[index] }
                if stored == Self.absent { return Self.absent }
                index = (index + 1) & mask
            }
        }
    }
}

/// Exact-byte index from token text to token id.
///
/// Swift `String` equality and hashing follow canonical equivalence (NFC "é" equals NFD "e\u{301}"), which is wrong
/// for a vocabulary whose entries must be distinguished byte for byte, so the index works on UTF-8 bytes: all token
/// texts are stored back to back and an open-addressing table of ids is keyed by a 64-bit FNV-1a hash.
struct TokenTextIndex: Sendable {
    /// UTF-8 bytes of all token texts, back to back.
    let storage: [UInt8]
    /// `offsets[id] ..< offsets[id + 1]` is the text of token `id` in `storage`.
    let offsets: [Int32]
    private var slots: [Int32]
    private let mask: Int

    init(tokens: [String]) {
        var storage: [UInt8] = []
        storage.reserveCapacity(tokens.count * 8)
        var offsets: [Int32] = [0]
        offsets.reserveCapacity(tokens.count + 1)
        for token in tokens {
            storage.append(contentsOf: token.utf8)
            offsets.append(Int32(storage.count))
        }
        var capacity = 16
        while capacity < tokens.count * 2 { capacity <<= 1 }
        self.storage = storage
        self.offsets = offsets
        self.slots = [Int32](repeating: -1, count: capacity)
        self.mask = capacity - 1
        for id in tokens.indices {
            insert(Int32(id))
        }
    }

    @inline(__always) static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in bytes {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
        return hash ^ (hash >> 29)
    }

    /// Byte length of the text of token `id`.
    @inline(__always) func length(of id: Int) -> Int { Int(offsets[id + 1] - offsets[id]) }

    @inline(__always) private func equals(_ id: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        let start = Int(offsets[Int(id)])
        let length = Int(offsets[Int(id) + 1]) - start
        guard length == bytes.count else { return false }
        return storage.withUnsafeBytes { stored in
            length == 0 || bytesEqual(stored.baseAddress! + start, bytes.baseAddress!, length)
        }
    }

    /// Inserts token `id`; a later duplicate text replaces the earlier id (as in llama.cpp).
    private mutating func insert(_ id: Int32) {
        let start = Int(offsets[Int(id)])
        let end = Int(offsets[Int(id) + 1])
        let found: (index: Int, existing: Bool) = storage.withUnsafeBytes { all in
            let bytes = UnsafeRawBufferPointer(rebasing: all[start..<end])
            var index = Int(truncatingIfNeeded: Self.hash(bytes)) & mask
            while slots[index] >= 0 {
                if equals(slots[index], bytes) { return (index, true) }
                index = (index + 1) & mask
            }
            return (index, false)
        }
        slots[found.index] = id
    }

    /// The id whose text is exactly `bytes`, or `nil`.
    func id(for bytes: UnsafeRawBufferPointer) -> Int32? {
        var index = Int(truncatingIfNeeded: Self.hash(bytes)) & mask
        while true {
            let id = slots[index]
            if id < 0 { return nil }
            if equals(id, bytes) { return id }
            index = (index + 1) & mask
        }
    }

    func id(for bytes: [UInt8]) -> Int32? {
        bytes.withUnsafeBytes { id(for: $0) }
    }
}

/// Byte-wise equality of two raw memory ranges of `count` bytes.
@inline(__always)
func bytesEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ count: Int) -> Bool {
    var i = 0
    while i + 8 <= count {
        if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) {
            return false
        }
        i += 8
    }
    while i < count {
        if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
        i += 1
    }
    return true
}
