import SeedTensor

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// AdamW hyperparameters other than the learning rate (which the schedule supplies per step).
public struct AdamWConfiguration: Codable, Sendable, Equatable {
    /// Decay rate of the first moment (`beta1`).
    public var beta1: Double
    /// Decay rate of the second moment (`beta2`).
    public var beta2: Double
    /// Added to the bias-corrected root second moment (`eps`).
    public var epsilon: Double
    /// Decoupled weight decay: each step multiplies decayed parameters by `1 - lr * weightDecay`.
    public var weightDecay: Double

    enum CodingKeys: String, CodingKey {
        case beta1 = "beta1"
        case beta2 = "beta2"
        case epsilon = "eps"
        case weightDecay = "weight_decay"
    }

    public init(beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8, weightDecay: Double = 0.01) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    /// Checks the ranges PyTorch checks: `0 <= beta < 1`, `eps >= 0`, `weight_decay >= 0`.
    public func validate() throws(TrainingError) {
        for (name, beta) in [("beta1", beta1), ("beta2", beta2)] where !(beta >= 0 && beta < 1) {
            throw .invalidHyperparameter(name: name, reason: "\(beta) is not in [0, 1)")
        }
        guard epsilon >= 0, epsilon.isFinite else {
            throw .invalidHyperparameter(name: "eps", reason: "\(epsilon) must be a finite value >= 0")
        }
        guard weightDecay >= 0, weightDecay.isFinite else {
            throw .invalidHyperparameter(name: "weight_decay", reason: "\(weightDecay) must be a finite value >= 0")
        }
    }
}

/// A named tensor of optimiser state (`shape` row-major, `values.count` = product of `shape`).
public struct NamedTensor<Scalar: Sendable>: Sendable {
    public var name: String
    public var shape: [Int]
    public var values: [Scalar]

    public init(name: String, shape: [Int], values: [Scalar]) {
        self.name = name
        self.shape = shape
        self.values = values
    }
}

/// AdamW (Loshchilov & Hutter), step for step the arithmetic of `torch.optim.AdamW` (single-tensor path):
///
/// ```
/// p *= 1 - lr * weight_decay                      (decayed parameters only)
/// m += (g - m) * (1 - beta1)
/// v = v * beta2 + (1 - beta2) * g * g
/// p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
/// ```
///
/// The state is a first moment `m` and second moment `v` per parameter element plus the step count `t`; it is
/// exported and restored as named tensors (``stateTensors()``, ``loadState(_:stepCount:)``) so a checkpoint can
/// hold it and a resumed run continues bit for bit.
public final class AdamW<Scalar: TrainScalar> {
    /// The hyperparameters.
    public let configuration: AdamWConfiguration
    /// The parameters updated.
    public let parameters: ParameterStore<Scalar>
    /// Steps taken (the `t` of the bias correction after the next step is `stepCount + 1`).
    public private(set) var stepCount = 0
    /// Whether parameter `i` (in ``ParameterStore/parameters`` order) is weight-decayed.
    public let decays: [Bool]

    private let pool: WorkerPool
    private let firstMoment: UnsafeMutablePointer<Scalar>
    private let secondMoment: UnsafeMutablePointer<Scalar>

    /// An optimiser with zero moments.
    ///
    /// - Parameter decay: which parameters get weight decay (default all, like one PyTorch parameter group; a
    ///   common choice is to exempt norms and biases: `{ !$0.name.hasSuffix("norm.weight") }`).
    /// - Throws: ``TrainingError/invalidHyperparameter(name:reason:)``.
    public init(
        parameters: ParameterStore<Scalar>, configuration: AdamWConfiguration, pool: WorkerPool,
        decay: (Parameter<Scalar>) -> Bool = { _ in true }
    ) throws(TrainingError) {
        try configuration.validate()
        self.parameters = parameters
        self.configuration = configuration
        self.pool = pool
        decays = parameters.parameters.map(decay)
        let count = max(parameters.flatCount, 1)
        firstMoment = UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Scalar>.stride, alignment: 64)
            .bindMemory(to: Scalar.self, capacity: count)
        secondMoment = UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Scalar>.stride, alignment: 64)
            .bindMemory(to: Scalar.self, capacity: count)
        memset(firstMoment, 0, count * MemoryLayout<Scalar>.stride)
        memset(secondMoment, 0, count * MemoryLayout<Scalar>.stride)
    }

    deinit {
        firstMoment.deallocate()
        secondMoment.deallocate()
    }

    /// Applies one update with learning rate `learningRate` to every parameter from its accumulated gradient.
    @_specialize(exported:true,where Scalar == Float)
    @_specialize(exported:true,where Scalar == Double)
    public func step(learningRate: Double) {
        stepCount += 1
        let c = configuration
        let t = Double(stepCount)
        let stepSize = Scalar(learningRate / (1 - pow(c.beta1, t)))
        let correction2 = Scalar((1 - pow(c.beta2, t)).squareRoot())
        let beta1Complement = Scalar(1 - c.beta1)
        let beta2 = Scalar(c.beta2)
        let beta2Complement = Scalar(1 - c.beta2)
        let epsilon = Scalar(c.epsilon)
        let m = firstMoment
        let v = secondMoment
        for (index, parameter) in parameters.parameters.enumerated() {
            let decay = decays[index] ? Scalar(1 - learningRate * c.weightDecay) : 1
            let p = parameter.value
            let g = parameter.gradient
            let m = m + parameter.offset
            let v = v + parameter.offset
            func update(_ range: Range<Int>) {
                for i in range {
                    p[i] *= decay
                    m[i] += (g[i] - m[i]) * beta1Complement
                    v[i] = v[i] * beta2 + beta2Complement * g[i] * g[i]
                    p[i] -= stepSize * (m[i] / (v[i].squareRoot() / correction2 + epsilon))
                }
            }
            if parameter.count >= 1 << 16 {
                pool.parallelRanges(parameter.count, minimumChunk: 1 << 14, update)
            } else {
                update(0..<parameter.count)
            }
        }
    }

    /// The moments as tensors named `<parameter>.exp_avg` and `<parameter>.exp_avg_sq` (PyTorch's state keys),
    /// shaped like their parameters; the step count is ``stepCount``.
    public func stateTensors() -> [NamedTensor<Scalar>] {
        var tensors: [NamedTensor<Scalar>] = []
        for parameter in parameters.parameters {
            for (suffix, buffer) in [("exp_avg", firstMoment), ("exp_avg_sq", secondMoment)] {
                tensors.append(
                    NamedTensor(
                        name: parameter.name + "." + suffix, shape: parameter.shape,
                        values: Array(UnsafeBufferPointer(start: buffer + parameter.offset, count: parameter.count))))
            }
        }
        return tensors
    }

    /// Restores state exported by ``stateTensors()``.
    ///
    /// - Parameters:
    ///   - tensors: values by name; every `<parameter>.exp_avg` and `.exp_avg_sq` must be present with the
    ///     parameter's element count, and no other names.
    ///   - stepCount: the saved ``stepCount`` (>= 0).
    /// - Throws: ``TrainingError/invalidOptimizerState(_:)`` naming the problem; the state is unchanged on error.
    public func loadState(_ tensors: [String: [Scalar]], stepCount: Int) throws(TrainingError) {
        guard stepCount >= 0 else { throw .invalidOptimizerState("step count \(stepCount) is negative") }
        var expected: Set<String> = []
        for parameter in parameters.parameters {
            for suffix in ["exp_avg", "exp_avg_sq"] {
                let name = parameter.name + "." + suffix
                expected.insert(name)
                guard let values = tensors[name] else { throw .invalidOptimizerState("missing tensor '\(name)'") }
                guard values.count == parameter.count else {
                    throw .invalidOptimizerState(
                        "tensor '\(name)' has \(values.count) values, parameter has \(parameter.count)")
                }
            }
        }
        if let extra = tensors.keys.sorted().first(where: { !expected.contains($0) }) {
            throw .invalidOptimizerState("unexpected tensor '\(extra)'")
        }
        for parameter in parameters.parameters {
            for (suffix, buffer) in [("exp_avg", firstMoment), ("exp_avg_sq", secondMoment)] {
                tensors[parameter.name + "." + suffix]!.withUnsafeBufferPointer {
                    (buffer + parameter.offset).update(from: $0.baseAddress!, count: parameter.count)
                }
            }
        }
        self.stepCount = stepCount
    }
}
