#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One trainable tensor: a name, a shape, and views of its values and gradient inside a ``ParameterStore``.
///
/// Values and gradients are row-major; a Linear weight is `[out, in]` (Hugging Face layout, `y = x Wᵀ`).
public final class Parameter<Scalar: TrainScalar>: @unchecked Sendable {
    // @unchecked Sendable: the pointers view memory owned by the store, which outlives every parameter (each
    // parameter holds the store's storage); callers serialise mutation (one training step at a time).

    /// The parameter's name (Hugging Face naming, e.g. `model.layers.0.self_attn.q_proj.weight`).
    public let name: String
    /// Dimensions, outermost first.
    public let shape: [Int]
    /// Number of elements (product of `shape`).
    public let count: Int
    /// Offset of the first element in the store's flat buffers.
    public let offset: Int
    /// The values, `count` elements.
    public let value: UnsafeMutablePointer<Scalar>
    /// The accumulated gradient, `count` elements (see ``ParameterStore/zeroGradients()``).
    public let gradient: UnsafeMutablePointer<Scalar>
    private let storage: FlatStorage<Scalar>

    fileprivate init(name: String, shape: [Int], offset: Int, storage: FlatStorage<Scalar>) {
        self.name = name
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.offset = offset
        self.storage = storage
        value = storage.values + offset
        gradient = storage.gradients + offset
    }

    /// The values, copied.
    public var values: [Scalar] { Array(UnsafeBufferPointer(start: value, count: count)) }
    /// The gradient, copied.
    public var gradients: [Scalar] { Array(UnsafeBufferPointer(start: gradient, count: count)) }
}

/// Memory for all parameters: one 64-byte-aligned buffer of values and one of gradients.
final class FlatStorage<Scalar: TrainScalar>: @unchecked Sendable {
    // @unchecked Sendable: raw memory whose users serialise access (see Parameter).
    let count: Int
    let values: UnsafeMutablePointer<Scalar>
    let gradients: UnsafeMutablePointer<Scalar>

    init(count: Int) {
        self.count = count
        let bytes = max(1, count) * MemoryLayout<Scalar>.stride
        values = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64).bindMemory(
            to: Scalar.self, capacity: max(1, count))
        gradients = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64).bindMemory(
            to: Scalar.self, capacity: max(1, count))
        // All-zero bytes are 0.0 in IEEE formats; a byte fill avoids a per-element generic copy.
        memset(values, 0, bytes)
        memset(gradients, 0, bytes)
    }

    deinit {
        values.deallocate()
        gradients.deallocate()
    }
}

/// All parameters of a model in one flat buffer, in a fixed order, addressable by name.
///
/// The flat layout lets whole-model passes (zeroing gradients, the gradient norm, the optimiser) run as a few long
/// loops; each parameter's tensor starts on a 16-element boundary.
public final class ParameterStore<Scalar: TrainScalar>: @unchecked Sendable {
    // @unchecked Sendable: see Parameter.

    /// The parameters, in creation order.
    public let parameters: [Parameter<Scalar>]
    /// Total elements of the flat buffers (parameter counts plus alignment padding).
    public let flatCount: Int
    let storage: FlatStorage<Scalar>
    private let indexByName: [String: Int]

    /// Lays out parameters with the given names and shapes (names must be unique; shapes non-empty, positive).
    public init(_ specifications: [(name: String, shape: [Int])]) {
        var offsets: [Int] = []
        var total = 0
        for spec in specifications {
            offsets.append(total)
            total += (spec.shape.reduce(1, *) + 15) / 16 * 16
        }
        let storage = FlatStorage<Scalar>(count: total)
        self.storage = storage
        flatCount = total
        parameters = zip(specifications, offsets).map { spec, offset in
            Parameter(name: spec.name, shape: spec.shape, offset: offset, storage: storage)
        }
        var index: [String: Int] = [:]
        for (i, p) in parameters.enumerated() { index[p.name] = i }
        indexByName = index
    }

    /// The parameter called `name`, or `nil`.
    public subscript(name: String) -> Parameter<Scalar>? {
        indexByName[name].map { parameters[$0] }
    }

    /// Total number of trainable elements (without padding).
    public var elementCount: Int { parameters.reduce(0) { $0 + $1.count } }

    /// Sets every gradient to zero (start of an optimiser step, before accumulating micro-batches).
    public func zeroGradients() {
        memset(storage.gradients, 0, flatCount * MemoryLayout<Scalar>.stride)
    }

    /// The flat value buffer (`flatCount` elements, padding included and always zero).
    public var flatValues: UnsafeMutableBufferPointer<Scalar> {
        UnsafeMutableBufferPointer(start: storage.values, count: flatCount)
    }

    /// The flat gradient buffer (`flatCount` elements, padding included and always zero).
    public var flatGradients: UnsafeMutableBufferPointer<Scalar> {
        UnsafeMutableBufferPointer(start: storage.gradients, count: flatCount)
    }
}
