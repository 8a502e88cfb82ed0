import Foundation
import SeedTensor
import Testing

@testable import SeedTrain

@Suite("AdamW, gradient clipping, learning-rate schedule")
struct OptimizerTests {
    static func store(seed: UInt64 = 1) -> ParameterStore<Double> {
        let store = ParameterStore<Double>([("a.weight", [3, 5]), ("a.norm.weight", [5]), ("b.weight", [70_000])])
        var sampler = NormalSampler(seed: seed)
        for p in store.parameters { sampler.fill(p.value, count: p.count, standardDeviation: 0.5) }
        return store
    }

    static func fillGradients(_ store: ParameterStore<Double>, step: Int) {
        var sampler = NormalSampler(seed: UInt64(100 + step))
        for p in store.parameters { sampler.fill(p.gradient, count: p.count, standardDeviation: 0.1) }
    }

    /// `torch.optim.AdamW`'s single-tensor update written out naively.
    struct NaiveAdamW {
        var m: [[Double]]
        var v: [[Double]]
        var t = 0

        init(_ store: ParameterStore<Double>) {
            m = store.parameters.map { [Double](repeating: 0, count: $0.count) }
            v = m
        }

        mutating func step(_ values: inout [[Double]], _ gradients: [[Double]], lr: Double, decays: [Bool]) {
            t += 1
            let (b1, b2, eps, wd) = (0.9, 0.95, 1e-8, 0.1)
            for p in values.indices {
                for i in values[p].indices {
                    let g = gradients[p][i]
                    if decays[p] { values[p][i] *= 1 - lr * wd }
                    m[p][i] = b1 * m[p][i] + (1 - b1) * g
                    v[p][i] = b2 * v[p][i] + (1 - b2) * g * g
                    let mHat = m[p][i] / (1 - pow(b1, Double(t)))
                    let vHat = v[p][i] / (1 - pow(b2, Double(t)))
                    values[p][i] -= lr * mHat / (vHat.squareRoot() + eps)
                }
            }
        }
    }

    static let configuration = AdamWConfiguration(beta1: 0.9, beta2: 0.95, epsilon: 1e-8, weightDecay: 0.1)

    @Test("AdamW matches the textbook update over several steps, with a weight-decay mask")
    func adamWSteps() throws {
        let store = Self.store()
        let optimizer = try AdamW(
            parameters: store, configuration: Self.configuration, pool: WorkerPool(threads: 2),
            decay: { !$0.name.hasSuffix("norm.weight") })
        #expect(optimizer.decays == [true, false, true])
        var naive = NaiveAdamW(store)
        var values = store.parameters.map(\.values)
        for step in 0..<4 {
            Self.fillGradients(store, step: step)
            let lr = 1e-3 * Double(step + 1)
            optimizer.step(learningRate: lr)
            naive.step(&values, store.parameters.map(\.gradients), lr: lr, decays: optimizer.decays)
        }
        #expect(optimizer.stepCount == 4)
        var worst = 0.0
        for (p, expected) in zip(store.parameters, values) {
            worst = max(worst, zip(p.values, expected).map { abs($0 - $1) }.max()!)
        }
        #expect(worst < 1e-15, "worst \(worst)")
    }

    @Test("AdamW state exported after 2 steps and restored continues bit for bit")
    func adamWResume() throws {
        let pool = WorkerPool(threads: 2)
        let uninterrupted = Self.store()
        let optimizer = try AdamW(parameters: uninterrupted, configuration: Self.configuration, pool: pool)
        for step in 0..<2 {
            Self.fillGradients(uninterrupted, step: step)
            optimizer.step(learningRate: 1e-3)
        }
        let state = optimizer.stateTensors()
        #expect(state.count == 6)
        #expect(state[0].name == "a.weight.exp_avg" && state[0].shape == [3, 5])
        #expect(state[1].name == "a.weight.exp_avg_sq")
        let savedValues = uninterrupted.parameters.map(\.values)

        for step in 2..<4 {
            Self.fillGradients(uninterrupted, step: step)
            optimizer.step(learningRate: 1e-3)
        }

        let resumed = Self.store(seed: 99)
        for (p, values) in zip(resumed.parameters, savedValues) { p.value.update(from: values, count: p.count) }
        let restored = try AdamW(parameters: resumed, configuration: Self.configuration, pool: pool)
        try restored.loadState(Dictionary(uniqueKeysWithValues: state.map { ($0.name, $0.values) }), stepCount: 2)
        for step in 2..<4 {
            Self.fillGradients(resumed, step: step)
            restored.step(learningRate: 1e-3)
        }
        #expect(restored.stepCount == 4)
        for (a, b) in zip(uninterrupted.parameters, resumed.parameters) {
            #expect(a.values.map(\.bitPattern) == b.values.map(\.bitPattern), "\(a.name)")
        }
    }

    @Test("AdamW refuses bad hyperparameters and state that does not fit")
    func adamWErrors() throws {
        let pool = WorkerPool(threads: 1)
        let store = Self.store()
        #expect(throws: TrainingError.invalidHyperparameter(name: "beta1", reason: "1.0 is not in [0, 1)")) {
            try AdamW(parameters: store, configuration: AdamWConfiguration(beta1: 1), pool: pool)
        }
        #expect(throws: TrainingError.self) {
            try AdamW(parameters: store, configuration: AdamWConfiguration(epsilon: -1), pool: pool)
        }
        #expect(throws: TrainingError.self) {
            try AdamW(parameters: store, configuration: AdamWConfiguration(weightDecay: .nan), pool: pool)
        }
        let optimizer = try AdamW(parameters: store, configuration: Self.configuration, pool: pool)
        var state = Dictionary(uniqueKeysWithValues: optimizer.stateTensors().map { ($0.name, $0.values) })
        #expect(throws: TrainingError.invalidOptimizerState("step count -1 is negative")) {
            try optimizer.loadState(state, stepCount: -1)
        }
        state["b.weight.exp_avg"] = [1, 2]
        #expect(
            throws: TrainingError.invalidOptimizerState("tensor 'b.weight.exp_avg' has 2 values, parameter has 70000")
        ) {
            try optimizer.loadState(state, stepCount: 1)
        }
        state["b.weight.exp_avg"] = nil
        #expect(throws: TrainingError.invalidOptimizerState("missing tensor 'b.weight.exp_avg'")) {
            try optimizer.loadState(state, stepCount: 1)
        }
        state = Dictionary(uniqueKeysWithValues: optimizer.stateTensors().map { ($0.name, $0.values) })
        state["c.weight.exp_avg"] = [0]
        #expect(throws: TrainingError.invalidOptimizerState("unexpected tensor 'c.weight.exp_avg'")) {
            try optimizer.loadState(state, stepCount: 1)
        }
        #expect(optimizer.stepCount == 0)
    }

    @Test("global gradient norm and clipping follow clip_grad_norm_")
    func clipping() {
        let pool = WorkerPool(threads: 2)
        let store = Self.store()
        Self.fillGradients(store, step: 0)
        let naive = store.parameters.flatMap(\.gradients).reduce(0) { $0 + $1 * $1 }.squareRoot()
        #expect(abs(gradientNorm(store, pool: pool) - naive) < 1e-12)
        // Under the limit: nothing changes.
        let before = store.parameters.flatMap(\.gradients)
        #expect(clipGradientNorm(store, maxNorm: naive * 2, pool: pool) == gradientNorm(store, pool: pool))
        #expect(store.parameters.flatMap(\.gradients) == before)
        // Over the limit: scaled by maxNorm / (norm + 1e-6).
        let norm = clipGradientNorm(store, maxNorm: 1, pool: pool)
        #expect(abs(norm - naive) < 1e-12)
        #expect(abs(gradientNorm(store, pool: pool) - naive / (naive + 1e-6)) < 1e-12)
        // Independent of the thread count, bit for bit.
        #expect(gradientNorm(store, pool: WorkerPool(threads: 1)) == gradientNorm(store, pool: pool))
    }

    @Test("warm-up then cosine decay to the minimum")
    func schedule() throws {
        let schedule = LearningRateSchedule(
            peakLearningRate: 1e-3, minimumLearningRate: 1e-4, warmupSteps: 10, totalSteps: 110)
        try schedule.validate()
        #expect(abs(schedule.learningRate(atStep: 0) - 1e-4) < 1e-18)
        #expect(abs(schedule.learningRate(atStep: 4) - 5e-4) < 1e-18)
        #expect(schedule.learningRate(atStep: 9) == 1e-3)
        #expect(abs(schedule.learningRate(atStep: 10) - 1e-3) < 1e-18)
        #expect(abs(schedule.learningRate(atStep: 60) - 5.5e-4) < 1e-15)
        #expect(schedule.learningRate(atStep: 110) == 1e-4)
        #expect(schedule.learningRate(atStep: 1000) == 1e-4)
        let rates = (10...110).map(schedule.learningRate(atStep:))
        #expect(zip(rates, rates.dropFirst()).allSatisfy { $0 >= $1 }, "monotone after warm-up")
        let flat = LearningRateSchedule(peakLearningRate: 0.1, totalSteps: 5)
        #expect(flat.learningRate(atStep: 0) == 0.1)
        let decoded = try JSONDecoder().decode(
            LearningRateSchedule.self,
            from: Data(#"{"lr": 0.001, "min_lr": 0.0001, "warmup_steps": 10, "total_steps": 110}"#.utf8))
        #expect(decoded == schedule)
    }

    @Test("schedule validation names the bad field")
    func scheduleErrors() {
        let cases: [(LearningRateSchedule, String)] = [
            (LearningRateSchedule(peakLearningRate: -1, totalSteps: 10), "lr"),
            (LearningRateSchedule(peakLearningRate: .infinity, totalSteps: 10), "lr"),
            (LearningRateSchedule(peakLearningRate: 1e-3, minimumLearningRate: 1e-2, totalSteps: 10), "min_lr"),
            (LearningRateSchedule(peakLearningRate: 1e-3, totalSteps: 0), "total_steps"),
            (LearningRateSchedule(peakLearningRate: 1e-3, warmupSteps: 11, totalSteps: 10), "warmup_steps"),
            (LearningRateSchedule(peakLearningRate: 1e-3, warmupSteps: -1, totalSteps: 10), "warmup_steps"),
        ]
        for (schedule, field) in cases {
            #expect {
                try schedule.validate()
            } throws: { error in
                guard case TrainingError.invalidHyperparameter(let name, _) = error else { return false }
                return name == field
            }
        }
    }

    @Test("seeded normals: reproducible, mean 0, variance 1")
    func normalSampler() {
        var a = NormalSampler(seed: 123)
        var b = NormalSampler(seed: 123)
        let xs = (0..<100_000).map { _ in a.next() }
        #expect(xs == (0..<100_000).map { _ in b.next() })
        let mean = xs.reduce(0, +) / Double(xs.count)
        let variance = xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(xs.count)
        #expect(abs(mean) < 0.01)
        #expect(abs(variance - 1) < 0.02)
        #expect(derivedSeed(1, name: "a") != derivedSeed(1, name: "b"))
        #expect(derivedSeed(1, name: "a") != derivedSeed(2, name: "a"))
    }

    @Test("vectorised float exp and sigmoid agree with libm")
    func vectorExponential() {
        var inputs: [Float] = stride(from: -100, through: 88, by: 0.0137).map { Float($0) }
        inputs += [-.infinity, 0, -0.0, 1e-30, -87.3, 87.9]
        let count = inputs.count
        var values = inputs
        _ = values.withUnsafeMutableBufferPointer {
            Float.exponentiateShifted($0.baseAddress!, count: count, subtracting: 0)
        }
        var worst: Float = 0
        for (x, y) in zip(inputs, values) {
            let expected = Foundation.exp(Double(x))
            if x >= -87.33 {
                worst = max(worst, Float(abs(Double(y) - expected) / expected))
            } else {
                #expect(y == 0, "exp(\(x)) flushes to 0 below the smallest normal")
            }
        }
        #expect(worst < 3e-7, "relative error \(worst)")
        // As softmax uses it: shifted by the maximum, the returned sum matches.
        values = inputs
        let sum = values.withUnsafeMutableBufferPointer {
            Float.exponentiateShifted($0.baseAddress!, count: count, subtracting: 88)
        }
        let reference = inputs.reduce(0.0) { $0 + Foundation.exp(Double($1) - 88) }
        #expect(abs(Double(sum) - reference) / reference < 1e-5)
        var sigmoids = [Float](repeating: 0, count: count)
        Float.sigmoid(inputs, into: &sigmoids, count: count)
        for (x, s) in zip(inputs, sigmoids) {
            #expect(abs(Double(s) - 1 / (1 + Foundation.exp(-Double(x)))) < 1e-6)
        }
    }
}
