#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Linear warm-up to a peak learning rate, then cosine decay to a minimum.
///
/// For step `s` (0-based, the number of optimiser steps already taken):
/// - `s < warmupSteps`: `peak * (s + 1) / warmupSteps` (the first step already moves; step `warmupSteps - 1` is at
///   the peak);
/// - `warmupSteps <= s < totalSteps`: `minimum + (peak - minimum) * (1 + cos(π p)) / 2` with
///   `p = (s - warmupSteps) / (totalSteps - warmupSteps)`;
/// - `s >= totalSteps`: `minimum`.
public struct LearningRateSchedule: Codable, Sendable, Equatable {
    /// The learning rate at the end of warm-up.
    public var peakLearningRate: Double
    /// The learning rate the cosine decays to.
    public var minimumLearningRate: Double
    /// Steps of linear warm-up (0 for none).
    public var warmupSteps: Int
    /// Steps in the whole schedule (warm-up included).
    public var totalSteps: Int

    enum CodingKeys: String, CodingKey {
        case peakLearningRate = "lr"
        case minimumLearningRate = "min_lr"
        case warmupSteps = "warmup_steps"
        case totalSteps = "total_steps"
    }

    /// A schedule; see ``validate()`` for the accepted ranges.
    public init(peakLearningRate: Double, minimumLearningRate: Double = 0, warmupSteps: Int = 0, totalSteps: Int) {
        self.peakLearningRate = peakLearningRate
        self.minimumLearningRate = minimumLearningRate
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
    }

    /// Checks `0 <= minimum <= peak` (finite), `0 <= warmupSteps <= totalSteps` and `totalSteps > 0`.
    public func validate() throws(TrainingError) {
        guard peakLearningRate.isFinite, peakLearningRate >= 0 else {
            throw .invalidHyperparameter(name: "lr", reason: "\(peakLearningRate) must be a finite value >= 0")
        }
        guard minimumLearningRate.isFinite, minimumLearningRate >= 0, minimumLearningRate <= peakLearningRate else {
            throw .invalidHyperparameter(
                name: "min_lr", reason: "\(minimumLearningRate) must be between 0 and lr (\(peakLearningRate))")
        }
        guard totalSteps > 0 else {
            throw .invalidHyperparameter(name: "total_steps", reason: "\(totalSteps) must be positive")
        }
        guard warmupSteps >= 0, warmupSteps <= totalSteps else {
            throw .invalidHyperparameter(
                name: "warmup_steps", reason: "\(warmupSteps) must be between 0 and total_steps (\(totalSteps))")
        }
    }

    /// The learning rate for optimiser step `step` (0-based).
    public func learningRate(atStep step: Int) -> Double {
        if step < warmupSteps {
            return peakLearningRate * Double(step + 1) / Double(warmupSteps)
        }
        if step >= totalSteps || totalSteps == warmupSteps { return minimumLearningRate }
        let progress = Double(step - warmupSteps) / Double(totalSteps - warmupSteps)
        return minimumLearningRate + (peakLearningRate - minimumLearningRate) * (1 + cos(Double.pi * progress)) / 2
    }
}
