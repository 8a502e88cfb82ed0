#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// xoshiro256** seeded through SplitMix64: a small, fast generator whose stream depends only on the seed, so weight
/// initialisation is reproducible on every platform.
public struct Xoshiro256StarStar: RandomNumberGenerator, Sendable {
    private var s0: UInt64
    private var s1: UInt64
    private var s2: UInt64
    private var s3: UInt64

    /// A generator whose four state words are successive SplitMix64 outputs from `seed`.
    public init(seed: UInt64) {
        var x = seed
        func splitMix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitMix()
        s1 = splitMix()
        s2 = splitMix()
        s3 = splitMix()
    }

    /// The four state words, to save in a checkpoint (``init(stateWords:)`` restores them).
    public var stateWords: [UInt64] { [s0, s1, s2, s3] }

    /// A generator continuing from saved ``stateWords``; nil unless there are exactly four words, not all zero.
    public init?(stateWords words: [UInt64]) {
        guard words.count == 4, words.contains(where: { $0 != 0 }) else { return nil }
        s0 = words[0]
        s1 = words[1]
        s2 = words[2]
        s3 = words[3]
    }

    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = s3 << 45 | s3 >> 19
        return result
    }

    /// A uniform `Double` in `[0, 1)` with 53 random bits.
    public mutating func nextUnitDouble() -> Double {
        Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }
}

/// Standard normal samples by the Box-Muller transform (both outputs of each pair are used, in order).
public struct NormalSampler: Sendable {
    private var generator: Xoshiro256StarStar
    private var spare: Double?

    /// Samples driven by a generator seeded with `seed`.
    public init(seed: UInt64) {
        generator = Xoshiro256StarStar(seed: seed)
    }

    /// The next N(0, 1) sample.
    public mutating func next() -> Double {
        if let spare {
            self.spare = nil
            return spare
        }
        // u1 in (0, 1] so the logarithm is finite.
        let u1 = 1 - generator.nextUnitDouble()
        let u2 = generator.nextUnitDouble()
        let radius = (-2 * log(u1)).squareRoot()
        let angle = 2 * Double.pi * u2
        spare = radius * sin(angle)
        return radius * cos(angle)
    }

    /// Fills `count` elements at `destination` with N(`mean`, `standardDeviation`²) samples.
    @_specialize(exported:true,where S == Float)
    @_specialize(exported:true,where S == Double)
    public mutating func fill<S: TrainScalar>(
        _ destination: UnsafeMutablePointer<S>, count: Int, mean: Double = 0, standardDeviation: Double
    ) {
        for i in 0..<count { destination[i] = S(mean + standardDeviation * next()) }
    }
}

/// A seed for one named stream derived from a run seed: SplitMix64 of the seed mixed with the FNV-1a hash of
/// `name`, so each parameter's initial values depend only on the run seed and its own name.
public func derivedSeed(_ seed: UInt64, name: String) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in name.utf8 {
        hash ^= UInt64(byte)
        hash &*= 0x0000_0100_0000_01B3
    }
    var z = seed ^ hash
    z &+= 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}
