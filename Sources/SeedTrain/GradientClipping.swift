import SeedTensor

/// Elements per partial sum of the gradient norm: the partition depends only on the buffer size, so the norm is
/// bitwise the same for any thread count.
private let normChunk = 1 << 16

/// The global L2 norm of all gradients, `sqrt(Σ g²)` over every parameter, accumulated in `Double`.
@_specialize(exported:true,where Scalar == Float)
@_specialize(exported:true,where Scalar == Double)
public func gradientNorm<Scalar: TrainScalar>(_ parameters: ParameterStore<Scalar>, pool: WorkerPool) -> Double {
    let gradients = parameters.flatGradients
    let count = gradients.count
    let chunks = (count + normChunk - 1) / normChunk
    var partial = [Double](repeating: 0, count: chunks)
    partial.withUnsafeMutableBufferPointer { sums in
        pool.parallelFor(chunks) { chunk in
            let start = chunk * normChunk
            let end = min(count, start + normChunk)
            var lanes = SIMD8<Double>()
            var i = start
            while i + 8 <= end {
                for lane in 0..<8 {
                    let g = Double(gradients[i + lane])
                    lanes[lane] += g * g
                }
                i += 8
            }
            var sum = lanes.sum()
            while i < end {
                let g = Double(gradients[i])
                sum += g * g
                i += 1
            }
            sums[chunk] = sum
        }
    }
    return partial.reduce(0, +).squareRoot()
}

/// Scales all gradients so their global L2 norm is at most `maxNorm` (PyTorch's `clip_grad_norm_`: the factor is
/// `maxNorm / (norm + 1e-6)` when below 1).
///
/// - Returns: the norm before clipping (non-finite if some gradient is; then nothing is scaled).
@discardableResult
@_specialize(exported:true,where Scalar == Float)
@_specialize(exported:true,where Scalar == Double)
public func clipGradientNorm<Scalar: TrainScalar>(
    _ parameters: ParameterStore<Scalar>, maxNorm: Double, pool: WorkerPool
)
    -> Double
{
    let norm = gradientNorm(parameters, pool: pool)
    guard norm.isFinite else { return norm }
    let factor = maxNorm / (norm + 1e-6)
    if factor < 1 {
        let scale = Scalar(factor)
        let gradients = parameters.flatGradients
        pool.parallelRanges(gradients.count, minimumChunk: 1 << 15) { range in
            for i in range { gradients[i] *= scale }
        }
    }
    return norm
}
