import CBLAS
import SeedTensor

/// A weight matrix `[rows, columns]` in one of GGML's storage formats: row `r` holds the weights of output `r`,
/// contiguous, `rowBytes` apart. The memory is borrowed (usually a memory-mapped model file) and must outlive it.
public struct WeightMatrix: @unchecked Sendable {
    // @unchecked Sendable: the pointer refers to read-only, immutable weight memory.

    /// Storage format of the weights.
    public let type: GGMLType
    /// Number of outputs.
    public let rows: Int
    /// Number of inputs (the reduction length).
    public let columns: Int
    /// Start of row 0.
    public let data: UnsafeRawPointer
    /// Bytes from one row to the next.
    public let rowBytes: Int

    /// Wraps `data` as a `[rows, columns]` matrix of `type`; fails if the format cannot be multiplied or `columns`
    /// is not a whole number of the format's blocks.
    public init(type: GGMLType, rows: Int, columns: Int, data: UnsafeRawPointer) throws(KernelError) {
        guard rows > 0, columns > 0 else { throw .invalidShape("matrix [\(rows), \(columns)]") }
        guard columns % type.blockSize == 0 else {
            throw .invalidShape("\(columns) columns is not a multiple of \(type.name)'s block size \(type.blockSize)")
        }
        guard MatrixMultiplier.isSupported(type) else { throw .unsupportedType(type.name) }
        self.type = type
        self.rows = rows
        self.columns = columns
        self.data = data
        self.rowBytes = columns / type.blockSize * type.typeSize
    }

    /// The start of row `r`.
    @inline(__always)
    public func row(_ r: Int) -> UnsafeRawPointer { data + r * rowBytes }
}

/// Errors raised by kernels when given shapes or formats they cannot work on.
public enum KernelError: Error, Equatable, CustomStringConvertible {
    case invalidShape(String)
    case unsupportedType(String)

    public var description: String {
        switch self {
        case .invalidShape(let what): "invalid shape: \(what)"
        case .unsupportedType(let name): "tensor type \(name) is not supported by the matrix kernels"
        }
    }
}

/// One matrix of a product that shares its input with others: `output[t, r] = Σ_c weights[r, c] x[t, c]`.
public struct MatrixProduct {
    /// Weights `[rows, columns]`.
    public var weights: WeightMatrix
    /// Output `[tokens, rows]`.
    public var output: UnsafeMutablePointer<Float>
    /// Floats from one output token row to the next (default: `weights.rows`).
    public var outputStride: Int?

    public init(_ weights: WeightMatrix, into output: UnsafeMutablePointer<Float>, outputStride: Int? = nil) {
        self.weights = weights
        self.output = output
        self.outputStride = outputStride
    }
}

/// Multiplies activations by weight matrices in any supported GGML format, using a worker pool.
///
/// One token (generation) with Q4_0/Q4_1/Q8_0 weights: by default the activation vector is quantized to 8 bits
/// per block of 32 once and the C kernels take integer dot products (AVX-512 VNNI or AVX2, by cpuid); with
/// ``singleTokenActivations`` set to `.float32` the float kernels below run instead. Several one-token decodes
/// batched together ask for the integer kernels explicitly (`activations: .int8`): each weight row is read once and
/// dotted with every token's 8-bit activations. Small batches decode each
/// weight block once and apply it to every token in registers (float32); larger batches (prompt processing)
/// dequantize tiles of rows to float32 and hand them to OpenBLAS's sgemm, one tile per thread.
/// Owns per-thread scratch memory, so one multiplier must not be used by two callers at once.
public final class MatrixMultiplier: @unchecked Sendable {
    // @unchecked Sendable: scratch buffers are indexed by pool thread; callers serialise use (documented above).

    /// The pool that runs the work.
    public let pool: WorkerPool
    /// Batches of at least this many tokens go through the dequantize + sgemm path.
    public var gemmThreshold = 8

    /// Float32 batches of at most this many tokens use ``Float32Product`` (weights read once, in place) instead of
    /// sgemm (which packs the whole weight matrix on every call).
    public var broadcastTokenLimit = 128

    /// How one-token products with Q4_0, Q4_1 and Q8_0 weights treat the activations (default `.int8`).
    public var singleTokenActivations: ActivationPrecision = .int8

    private let tileRows = 64
    private let quantized = QuantizedActivations(columns: 4096)
    private var transposed = UnsafeMutablePointer<Float>.allocate(capacity: 0)
    private var transposedCapacity = 0
    private var blockSums: [Float] = []
    private var scratch: [UnsafeMutablePointer<Float>] = []
    private var scratchColumns = 0

    /// The instruction set the integer kernels run on (chosen by cpuid).
    public var instructionSet: KernelInstructionSet { .current }

    /// Formats the kernels can multiply. Formats with 32-element blocks have fused kernels; the rest (K-quants) are
    /// dequantized row by row.
    public static func isSupported(_ type: GGMLType) -> Bool {
        switch type {
        case .f32, .f16, .bf16, .q4_0, .q4_1, .q8_0: true
        default: type.isSupported
        }
    }

    /// A multiplier that runs on `pool`.
    public init(pool: WorkerPool) {
        self.pool = pool
        CBLASThreads.setSingleThreaded()
    }

    deinit {
        for buffer in scratch { buffer.deallocate() }
        transposed.deallocate()
    }

    private func reserveScratch(columns: Int) {
        if columns <= scratchColumns && scratch.count == pool.threadCount { return }
        for buffer in scratch { buffer.deallocate() }
        scratchColumns = max(columns, scratchColumns)
        scratch = (0..<pool.threadCount).map { _ in
            UnsafeMutablePointer<Float>.allocate(capacity: tileRows * scratchColumns)
        }
    }

    /// Whether a product of `tokens` rows with weights of `type` takes the integer kernels: explicitly asked
    /// (`.int8`, any number of tokens), or one token under the ``singleTokenActivations`` default.
    private func usesIntegerKernels(_ type: GGMLType, tokens: Int, _ activations: ActivationPrecision?) -> Bool {
        guard QuantizedActivations.supports(type) else { return false }
        if let activations { return activations == .int8 }
        return tokens == 1 && singleTokenActivations == .int8
    }

    /// `y[t, r] = sum_c w[r, c] * x[t, c]` for every token `t` and row `r`.
    ///
    /// - Parameters:
    ///   - w: weights `[rows, columns]`.
    ///   - x: activations `[tokens, columns]`, rows `xStride` floats apart.
    ///   - y: output `[tokens, rows]`, rows `yStride` floats apart.
    ///   - activations: how this call treats the activations of Q4_0/Q4_1/Q8_0 products. `nil` (default): one token
    ///     follows ``singleTokenActivations``, more tokens are float32. `.int8`: every token row is quantized to 8
    ///     bits on its own and the integer kernels run, reading each weight row once for all tokens; each token
    ///     gets exactly the result it would get alone (several sequences decoding in one batch). `.float32`:
    ///     float kernels.
    public func multiply(
        _ w: WeightMatrix, _ x: UnsafePointer<Float>, xStride: Int? = nil, tokens: Int,
        into y: UnsafeMutablePointer<Float>, yStride: Int? = nil, activations: ActivationPrecision? = nil
    ) {
        let xs = xStride ?? w.columns
        let ys = yStride ?? w.rows
        if tokens > 0 && usesIntegerKernels(w.type, tokens: tokens, activations) {
            quantized.quantize(x, xStride: xs, tokens: tokens, columns: w.columns)
            let quantized = self.quantized
            pool.parallelRanges(w.rows, minimumChunk: 16, chunksPerThread: 8) { rows in
                quantized.multiply(w, rows: rows, into: y, yStride: ys)
            }
            return
        }
        if tokens >= gemmThreshold {
            if w.type == .f32 && Int(bitPattern: w.data) % MemoryLayout<Float>.alignment == 0 {
                if tokens <= broadcastTokenLimit {
                    multiplyFloat32InPlace(w, x, xs, tokens, y, ys)
                } else {
                    multiplyFloat32(w, x, xs, tokens, y, ys)
                }
            } else {
                multiplyByTiles(w, x, xs, tokens, y, ys)
            }
            return
        }
        switch w.type {
        case .q4_1 where tokens == 1: multiplyQ4_1Vector(w, x, y)
        case .q4_1: multiplySmall(Q4_1Decoder.self, w, x, xs, tokens, y, ys)
        case .q8_0: multiplySmall(Q8_0Decoder.self, w, x, xs, tokens, y, ys)
        case .q4_0: multiplySmall(Q4_0Decoder.self, w, x, xs, tokens, y, ys)
        case .f32 where w.columns % 32 == 0: multiplySmall(F32Decoder.self, w, x, xs, tokens, y, ys)
        case .f16 where w.columns % 32 == 0: multiplySmall(F16Decoder.self, w, x, xs, tokens, y, ys)
        case .bf16 where w.columns % 32 == 0: multiplySmall(BF16Decoder.self, w, x, xs, tokens, y, ys)
        default: multiplyByTiles(w, x, xs, tokens, y, ys)
        }
    }

    /// Multiplies the same activations `x: [tokens, columns]` (rows `xStride` floats apart) by two or three weight
    /// matrices with `columns` inputs each, such as the query, key and value projections. With integer kernels
    /// (`activations` as in ``multiply(_:_:xStride:tokens:into:yStride:activations:)``), `x` is quantized once and
    /// all rows of all matrices run in one parallel region; otherwise this is one product per matrix.
    public func multiply(
        _ x: UnsafePointer<Float>, xStride: Int? = nil, tokens: Int, _ a: MatrixProduct, _ b: MatrixProduct,
        _ c: MatrixProduct? = nil, activations: ActivationPrecision? = nil
    ) {
        let columns = a.weights.columns
        let shared =
            tokens > 0 && b.weights.columns == columns && (c?.weights.columns ?? columns) == columns
            && usesIntegerKernels(a.weights.type, tokens: tokens, activations)
            && usesIntegerKernels(b.weights.type, tokens: tokens, activations)
            && (c.map { usesIntegerKernels($0.weights.type, tokens: tokens, activations) } ?? true)
        guard shared else {
            multiply(
                a.weights, x, xStride: xStride, tokens: tokens, into: a.output, yStride: a.outputStride,
                activations: activations)
            multiply(
                b.weights, x, xStride: xStride, tokens: tokens, into: b.output, yStride: b.outputStride,
                activations: activations)
            if let c {
                multiply(
                    c.weights, x, xStride: xStride, tokens: tokens, into: c.output, yStride: c.outputStride,
                    activations: activations)
            }
            return
        }
        quantized.quantize(x, xStride: xStride ?? columns, tokens: tokens, columns: columns)
        let quantized = self.quantized
        let rowsA = a.weights.rows
        let rowsAB = rowsA + b.weights.rows
        let third = c ?? b
        let total = rowsAB + (c?.weights.rows ?? 0)
        pool.parallelRanges(total, minimumChunk: 16, chunksPerThread: 8) { rows in
            var r = rows.lowerBound
            while r < rows.upperBound {
                let (p, first) = r < rowsA ? (a, 0) : r < rowsAB ? (b, rowsA) : (third, rowsAB)
                let end = min(rows.upperBound, first + p.weights.rows)
                quantized.multiply(
                    p.weights, rows: (r - first)..<(end - first), into: p.output,
                    yStride: p.outputStride ?? p.weights.rows)
                r = end
            }
        }
    }

    // MARK: Small batches: fused decode and dot product.

    private func multiplySmall<D: Block32Decoder>(
        _ decoder: D.Type, _ w: WeightMatrix, _ x: UnsafePointer<Float>, _ xs: Int, _ tokens: Int,
        _ y: UnsafeMutablePointer<Float>, _ ys: Int
    ) {
        let blocks = w.columns / 32
        pool.parallelRanges(w.rows, minimumChunk: 16, chunksPerThread: 8) { rows in
            for r in rows {
                let row = w.row(r)
                var t = 0
                while t + 4 <= tokens {
                    let d = dot4(D.self, row, blocks, x + t * xs, xs)
                    y[t * ys + r] = d.0
                    y[(t + 1) * ys + r] = d.1
                    y[(t + 2) * ys + r] = d.2
                    y[(t + 3) * ys + r] = d.3
                    t += 4
                }
                while t < tokens {
                    y[t * ys + r] = dot1(D.self, row, blocks, x + t * xs)
                    t += 1
                }
            }
        }
    }

    /// Q4_1 matrix × one vector, with the block offsets factored out: `Σ (d·q + m)·x = d·(q·x) + m·Σx`, where the
    /// per-block sums `Σx` are computed once for all rows.
    private func multiplyQ4_1Vector(_ w: WeightMatrix, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        let blocks = w.columns / 32
        if blockSums.count < blocks { blockSums = [Float](repeating: 0, count: blocks) }
        for b in 0..<blocks {
            let v = UnsafeRawPointer(x + b * 32)
            blockSums[b] = horizontalSum(
                v.loadUnaligned(as: SIMD16<Float>.self) + v.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self))
        }
        blockSums.withUnsafeBufferPointer { sums in
            let sums = sums.baseAddress!
            pool.parallelRanges(w.rows, minimumChunk: 16, chunksPerThread: 8) { rows in
                let xr = UnsafeRawPointer(x)
                for r in rows {
                    let row = w.row(r)
                    var acc = SIMD16<Float>()
                    var offsets: Float = 0
                    for b in 0..<blocks {
                        let p = row + b * 20
                        let q = p.loadUnaligned(fromByteOffset: 4, as: SIMD16<UInt8>.self)
                        var t = widen(q & 0x0F) * xr.loadUnaligned(fromByteOffset: b * 128, as: SIMD16<Float>.self)
                        t = t.addingProduct(
                            widen(q &>> 4), xr.loadUnaligned(fromByteOffset: b * 128 + 64, as: SIMD16<Float>.self))
                        acc = acc.addingProduct(t, loadHalf(p, 0))
                        offsets += loadHalf(p, 2) * sums[b]
                    }
                    y[r] = horizontalSum(acc) + offsets
                }
            }
        }
    }

    // MARK: Large batches: sgemm, straight on float32 weights or on dequantized tiles.

    /// Float32 weights, batches up to ``broadcastTokenLimit``: ``Float32Product`` over blocks of 8 rows per thread.
    private func multiplyFloat32InPlace(
        _ w: WeightMatrix, _ x: UnsafePointer<Float>, _ xs: Int, _ tokens: Int,
        _ y: UnsafeMutablePointer<Float>, _ ys: Int
    ) {
        let padded = (tokens + 15) / 16 * 16
        if padded * w.columns > transposedCapacity {
            transposed.deallocate()
            transposedCapacity = padded * w.columns
            transposed = .allocate(capacity: transposedCapacity)
        }
        let xt = transposed
        Float32Product.transpose(x, xStride: xs, tokens: tokens, columns: w.columns, paddedTokens: padded, into: xt)
        let weights = w.data.assumingMemoryBound(to: Float.self)
        let blockRows = Float32Product.tileRows
        let blocks = (w.rows + blockRows - 1) / blockRows
        pool.parallelRanges(blocks, chunksPerThread: 4) { range in
            Float32Product.rows(
                range.lowerBound * blockRows..<min(w.rows, range.upperBound * blockRows), w: weights,
                columns: w.columns, xt: xt, tokens: tokens, paddedTokens: padded, y: y, yStride: ys)
        }
    }

    /// Float32 weights need no conversion: one sgemm per thread on a contiguous share of the rows, read in place
    /// (a memory-mapped file), so OpenBLAS packs the activations once per thread rather than once per tile.
    private func multiplyFloat32(
        _ w: WeightMatrix, _ x: UnsafePointer<Float>, _ xs: Int, _ tokens: Int,
        _ y: UnsafeMutablePointer<Float>, _ ys: Int
    ) {
        let weights = w.data.assumingMemoryBound(to: Float.self)
        let threads = pool.threadCount
        // Shares are whole multiples of 16 rows (OpenBLAS's AVX-512 register tile).
        let share = ((w.rows + threads - 1) / threads + 15) / 16 * 16
        let shares = (w.rows + share - 1) / share
        pool.parallelFor(shares) { part, _ in
            let r0 = part * share
            let n = min(share, w.rows - r0)
            cblas_sgemm(
                CblasRowMajor, CblasNoTrans, CblasTrans, Int32(tokens), Int32(n), Int32(w.columns),
                1, x, Int32(xs), weights + r0 * w.columns, Int32(w.columns), 0, y + r0, Int32(ys))
        }
    }

    private func multiplyByTiles(
        _ w: WeightMatrix, _ x: UnsafePointer<Float>, _ xs: Int, _ tokens: Int,
        _ y: UnsafeMutablePointer<Float>, _ ys: Int
    ) {
        reserveScratch(columns: w.columns)
        let tiles = (w.rows + tileRows - 1) / tileRows
        let scratch = self.scratch
        let tileRows = self.tileRows
        pool.parallelFor(tiles) { tile, thread in
            let r0 = tile * tileRows
            let n = min(tileRows, w.rows - r0)
            let buffer = scratch[thread]
            dequantizeRows(w, from: r0, count: n, into: buffer)
            cblas_sgemm(
                CblasRowMajor, CblasNoTrans, CblasTrans, Int32(tokens), Int32(n), Int32(w.columns),
                1, x, Int32(xs), buffer, Int32(w.columns), 0, y + r0, Int32(ys))
        }
    }
}

/// Dequantizes rows `from ..< from + count` of `w` into `out` (`[count, w.columns]` float32).
public func dequantizeRows(_ w: WeightMatrix, from: Int, count: Int, into out: UnsafeMutablePointer<Float>) {
    switch w.type {
    case .q4_1: decodeRows(Q4_1Decoder.self, w, from, count, out)
    case .q8_0: decodeRows(Q8_0Decoder.self, w, from, count, out)
    case .q4_0: decodeRows(Q4_0Decoder.self, w, from, count, out)
    case .f32:
        (out).update(from: w.row(from).assumingMemoryBound(to: Float.self), count: count * w.columns)
    default:
        for r in 0..<count {
            do {
                try dequantize(w.type, from: w.row(from + r), count: w.columns, into: out + r * w.columns)
            } catch {
                // Unreachable: WeightMatrix.init only admits formats that dequantize.
                (out + r * w.columns).update(repeating: .nan, count: w.columns)
            }
        }
    }
}

@inline(__always)
private func decodeRows<D: Block32Decoder>(
    _: D.Type, _ w: WeightMatrix, _ from: Int, _ count: Int, _ out: UnsafeMutablePointer<Float>
) {
    let blocks = w.columns / 32
    let o = UnsafeMutableRawPointer(out)
    for r in 0..<count {
        let row = w.row(from + r)
        let base = r * w.columns * 4
        for b in 0..<blocks {
            let (a, c) = D.decode(row + b * D.bytesPer32)
            o.storeBytes(of: a, toByteOffset: base + b * 128, as: SIMD16<Float>.self)
            o.storeBytes(of: c, toByteOffset: base + b * 128 + 64, as: SIMD16<Float>.self)
        }
    }
}

@inline(__always)
private func dot1<D: Block32Decoder>(
    _: D.Type, _ row: UnsafeRawPointer, _ blocks: Int, _ x: UnsafePointer<Float>
) -> Float {
    let xr = UnsafeRawPointer(x)
    var a0 = SIMD16<Float>()
    var a1 = SIMD16<Float>()
    for b in 0..<blocks {
        let (w0, w1) = D.decode(row + b * D.bytesPer32)
        a0 = a0.addingProduct(w0, xr.loadUnaligned(fromByteOffset: b * 128, as: SIMD16<Float>.self))
        a1 = a1.addingProduct(w1, xr.loadUnaligned(fromByteOffset: b * 128 + 64, as: SIMD16<Float>.self))
    }
    return horizontalSum(a0 + a1)
}

@inline(__always)
private func dot4<D: Block32Decoder>(
    _: D.Type, _ row: UnsafeRawPointer, _ blocks: Int, _ x: UnsafePointer<Float>, _ xs: Int
) -> (Float, Float, Float, Float) {
    let x0 = UnsafeRawPointer(x)
    let x1 = UnsafeRawPointer(x + xs)
    let x2 = UnsafeRawPointer(x + 2 * xs)
    let x3 = UnsafeRawPointer(x + 3 * xs)
    var a0 = SIMD16<Float>()
    var a1 = SIMD16<Float>()
    var a2 = SIMD16<Float>()
    var a3 = SIMD16<Float>()
    for b in 0..<blocks {
        let (w0, w1) = D.decode(row + b * D.bytesPer32)
        let o = b * 128
        a0 = a0.addingProduct(w0, x0.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self))
        a0 = a0.addingProduct(w1, x0.loadUnaligned(fromByteOffset: o + 64, as: SIMD16<Float>.self))
        a1 = a1.addingProduct(w0, x1.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self))
        a1 = a1.addingProduct(w1, x1.loadUnaligned(fromByteOffset: o + 64, as: SIMD16<Float>.self))
        a2 = a2.addingProduct(w0, x2.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self))
        a2 = a2.addingProduct(w1, x2.loadUnaligned(fromByteOffset: o + 64, as: SIMD16<Float>.self))
        a3 = a3.addingProduct(w0, x3.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self))
        a3 = a3.addingProduct(w1, x3.loadUnaligned(fromByteOffset: o + 64, as: SIMD16<Float>.self))
    }
    return (horizontalSum(a0), horizontalSum(a1), horizontalSum(a2), horizontalSum(a3))
}

/// Keeps OpenBLAS single-threaded: parallelism comes from the worker pool, which calls sgemm on separate tiles.
public enum CBLASThreads {
    /// Sets OpenBLAS to one thread (idempotent).
    public static func setSingleThreaded() {
        openblas_set_num_threads(1)
    }
}
