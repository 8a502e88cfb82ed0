import CBLAS
import SeedKernels
import SeedTensor

/// A tensor recorded on a ``Tape``: a handle that is valid until the tape's next ``Tape/reset()``.
///
/// Every variable is a row-major matrix `[rows, columns]` (a vector is `[1, n]`, a scalar `[1, 1]`). Activations are
/// `[tokens, features]` with the tokens of a whole micro-batch stacked, so each projection is one GEMM.
public struct Variable: Hashable, Sendable {
    /// Position of the variable on its tape.
    public let index: Int
}

/// Reverse-mode automatic differentiation over a tape of recorded operations.
///
/// Usage mirrors eager PyTorch: call ops (``linear(_:weight:bias:)``, ``rmsNorm(_:weight:epsilon:)``,
/// ``causalAttention(query:key:value:layout:)``, ...) on variables to compute values immediately; each op records
/// what its backward pass needs; ``backward(from:seed:)`` walks the record in reverse and accumulates gradients into
/// every variable that requires one, and into each ``Parameter``'s gradient buffer (parameters accumulate across
/// backward passes, as `.grad` does in PyTorch, until ``ParameterStore/zeroGradients()``).
///
/// Memory: values, saved statistics and gradients come from an arena that ``reset()`` rewinds, so a training loop
/// that records the same shapes each step allocates nothing after its first step. Ops save only what backward
/// cannot cheaply recompute: attention keeps a log-sum-exp per query row, not the `[T, T]` probabilities, and the
/// fused output-projection cross-entropy never holds more than a chunk of logits.
///
/// Determinism: every parallel loop either writes disjoint outputs or reduces over a partition that depends only on
/// the shapes (and, for GEMM, the thread count), so the same inputs on the same thread count give bitwise-identical
/// results run to run.
///
/// Not thread-safe: one thread drives a tape; the ops themselves use the tape's ``WorkerPool``.
public final class Tape<Scalar: TrainScalar> {
    /// The pool every op computes on.
    public let pool: WorkerPool
    /// When false, ops compute values only: nothing is recorded, no variable requires a gradient, and the fused
    /// cross-entropy skips its gradient work (evaluation mode, like `torch.no_grad()`).
    public var isRecording = true

    var nodes: [Node] = []
    var operations: [Operation] = []
    /// The parameter leaves recorded since the last reset, in recording order (a parameter used twice, like tied
    /// embeddings, has two leaves).
    var parameterLeaves: [Parameter<Scalar>] = []
    /// Per parameter leaf: the backward step after which its parameter's gradient is final (see
    /// ``onParameterGradientReady``); scratch reused by every backward.
    private var leafReadyAfter: [Int] = []
    /// Per parameter leaf: whether it is the first leaf of its parameter (the one that announces it).
    private var leafAnnounces: [Bool] = []

    /// Called during ``backward(from:seed:)`` once per parameter on the tape, as soon as no remaining op can add to
    /// its gradient (after the backward of the earliest op that reads it; parameters no op reads are announced at
    /// the end). Data-parallel training starts a bucket's gradient all-reduce from here, overlapping the rest of the
    /// backward pass. Parameters are announced in the same order on every run of the same recorded ops.
    public var onParameterGradientReady: ((Parameter<Scalar>) -> Void)?
    /// Token ids and positions referenced by recorded ops.
    var integers: [Int32] = []
    let arena = Arena<Scalar>()
    /// Per-row losses of the fused cross-entropy (summed in order, in `Double`).
    var rowLosses: [Double] = []
    private var backwardDone = false
    /// The bf16 products of ``ProductPrecision/bf16`` (nil in float32 mode), indexed by ``ModelProduct``: each of
    /// the output head's three products has its own, so the two that read the head's weights keep them packed
    /// from one cross-entropy chunk to the next.
    private var bf16Products: [BFloat16Product]?

    /// How the matrix products of ``linear(_:weight:bias:)`` (forward and both backward products) and of
    /// ``linearCrossEntropy(_:weight:targets:normalizer:chunkRows:)`` compute; attention's products stay in
    /// `Scalar`. Default ``ProductPrecision/native``.
    public private(set) var productPrecision: ProductPrecision = .native

    /// A tape whose ops run on `pool`.
    ///
    /// Sets OpenBLAS to one thread: parallelism comes from the pool, which runs one BLAS call per block.
    public init(pool: WorkerPool) {
        self.pool = pool
        openblas_set_num_threads(1)
    }

    /// Sets ``productPrecision``.
    ///
    /// - Throws: ``TrainingError/invalidConfiguration(_:)`` for ``ProductPrecision/bf16`` on a tape whose scalar is
    ///   not `Float`.
    public func setProductPrecision(_ precision: ProductPrecision) throws(TrainingError) {
        switch precision {
        case .native:
            bf16Products = nil
        case .bf16:
            guard Scalar.self == Float.self else {
                throw .invalidConfiguration("bf16 products need a Float tape, not \(Scalar.self)")
            }
            bf16Products = ModelProduct.allCases.map { _ in BFloat16Product(pool: pool) }
        }
        productPrecision = precision
    }

    /// Forgets every variable and recorded op and rewinds the arena (earlier values and gradients become invalid).
    public func reset() {
        nodes.removeAll(keepingCapacity: true)
        operations.removeAll(keepingCapacity: true)
        integers.removeAll(keepingCapacity: true)
        parameterLeaves.removeAll(keepingCapacity: true)
        arena.reset()
        backwardDone = false
    }

    /// Bytes the arena holds for values, saved statistics and gradients (its high-water mark after a reset).
    public var arenaBytes: Int { arena.reservedElements * MemoryLayout<Scalar>.stride }

    // MARK: Leaves

    /// A leaf viewing `parameter`'s values; its gradient accumulates into the parameter's gradient buffer.
    ///
    /// 1-D parameters are `[1, n]`; 2-D ones keep their shape.
    public func parameter(_ parameter: Parameter<Scalar>) -> Variable {
        let rows = parameter.shape.count >= 2 ? parameter.shape[0] : 1
        nodes.append(
            Node(
                value: parameter.value, gradient: parameter.gradient, rows: rows,
                columns: parameter.count / max(rows, 1), requiresGradient: isRecording,
                parameterLeaf: parameterLeaves.count))
        parameterLeaves.append(parameter)
        return Variable(index: nodes.count - 1)
    }

    /// A leaf holding a copy of `values` (`[rows, columns]`, row-major).
    ///
    /// - Parameter requiresGradient: whether backward should compute this leaf's gradient (see ``gradient(of:)``).
    public func constant(_ values: [Scalar], rows: Int, columns: Int, requiresGradient: Bool = false) -> Variable {
        precondition(values.count == rows * columns, "constant: \(values.count) values for [\(rows), \(columns)]")
        let v = makeNode(rows: rows, columns: columns, requiresGradient: requiresGradient && isRecording)
        values.withUnsafeBufferPointer { nodes[v.index].value.update(from: $0.baseAddress!, count: values.count) }
        return v
    }

    // MARK: Access

    /// `(rows, columns)` of `variable`.
    public func shape(of variable: Variable) -> (rows: Int, columns: Int) {
        (nodes[variable.index].rows, nodes[variable.index].columns)
    }

    /// The values of `variable` (`rows * columns`, row-major); valid until ``reset()``.
    public func value(of variable: Variable) -> UnsafeMutableBufferPointer<Scalar> {
        let node = nodes[variable.index]
        return UnsafeMutableBufferPointer(start: node.value, count: node.rows * node.columns)
    }

    /// The gradient of the last ``backward(from:seed:)`` root with respect to `variable`, or `nil` if `variable`
    /// does not require a gradient or backward never reached it.
    public func gradient(of variable: Variable) -> UnsafeMutableBufferPointer<Scalar>? {
        let node = nodes[variable.index]
        guard let g = node.gradient, node.requiresGradient else { return nil }
        return UnsafeMutableBufferPointer(start: g, count: node.rows * node.columns)
    }

    /// Whether backward will compute a gradient for `variable`.
    public func requiresGradient(_ variable: Variable) -> Bool { nodes[variable.index].requiresGradient }

    // MARK: Backward

    /// Back-propagates from `root`: `d root / d v` for every recorded variable `v`, accumulated into parameters.
    ///
    /// - Parameters:
    ///   - root: usually the scalar loss.
    ///   - seed: `d L / d root` (`rows * columns` values); `nil` means 1 and requires a scalar root. A seed makes the
    ///     effective loss `L = Σ seed ⊙ root`, which is how gradient checks probe non-scalar ops.
    @_specialize(exported:true,where Scalar == Float)
    @_specialize(exported:true,where Scalar == Double)
    public func backward(from root: Variable, seed: [Scalar]? = nil) {
        precondition(!backwardDone, "backward may run once per recorded pass; call reset() and record again")
        backwardDone = true
        let node = nodes[root.index]
        guard node.requiresGradient else { return }
        let count = node.rows * node.columns
        let target = gradientTarget(root)!
        if let seed {
            precondition(seed.count == count, "backward: seed has \(seed.count) values, root has \(count)")
            for i in 0..<count { target.pointer[i] = (target.accumulate ? target.pointer[i] : 0) + seed[i] }
        } else {
            precondition(count == 1, "backward without a seed needs a scalar root, got [\(node.rows), \(node.columns)]")
            target.pointer[0] = (target.accumulate ? target.pointer[0] : 0) + 1
        }
        guard let announce = onParameterGradientReady else {
            for index in operations.indices.reversed() {
                runBackward(operations[index])
            }
            return
        }
        planParameterAnnouncements()
        let leafCount = parameterLeaves.count
        for index in operations.indices.reversed() {
            runBackward(operations[index])
            for leaf in 0..<leafCount where leafAnnounces[leaf] && leafReadyAfter[leaf] == index {
                announce(parameterLeaves[leaf])
            }
        }
        for leaf in 0..<leafCount where leafAnnounces[leaf] && leafReadyAfter[leaf] == Int.max {
            announce(parameterLeaves[leaf])
        }
    }

    /// Fills ``leafReadyAfter`` (the earliest op reading any leaf of the same parameter; `Int.max` if none) and
    /// ``leafAnnounces`` (first leaf of each parameter). Quadratic in the leaves, which number a few per layer.
    private func planParameterAnnouncements() {
        let leafCount = parameterLeaves.count
        leafReadyAfter.removeAll(keepingCapacity: true)
        leafReadyAfter.append(contentsOf: repeatElement(Int.max, count: leafCount))
        leafAnnounces.removeAll(keepingCapacity: true)
        leafAnnounces.append(contentsOf: repeatElement(true, count: leafCount))
        for index in operations.indices {
            operations[index].forEachOperand { variable in
                let leaf = nodes[variable.index].parameterLeaf
                if leaf >= 0 && leafReadyAfter[leaf] == Int.max { leafReadyAfter[leaf] = index }
            }
        }
        for leaf in 0..<leafCount {
            for other in 0..<leaf where parameterLeaves[other] === parameterLeaves[leaf] {
                leafAnnounces[leaf] = false
                leafReadyAfter[other] = min(leafReadyAfter[other], leafReadyAfter[leaf])
            }
        }
    }

    // MARK: Internals shared by the ops

    struct Node {
        var value: UnsafeMutablePointer<Scalar>
        var gradient: UnsafeMutablePointer<Scalar>?
        var rows: Int
        var columns: Int
        var requiresGradient: Bool
        /// Index into ``parameterLeaves`` for a parameter leaf, -1 otherwise.
        var parameterLeaf: Int = -1
        var count: Int { rows * columns }
    }

    /// Where backward writes a gradient, and whether it must add to what is there.
    struct GradientTarget {
        let pointer: UnsafeMutablePointer<Scalar>
        let accumulate: Bool
    }

    func makeNode(rows: Int, columns: Int, requiresGradient: Bool) -> Variable {
        let value = arena.allocate(rows * columns)
        nodes.append(
            Node(
                value: value, gradient: nil, rows: rows, columns: columns,
                requiresGradient: requiresGradient && isRecording))
        return Variable(index: nodes.count - 1)
    }

    func allocate(_ count: Int) -> UnsafeMutablePointer<Scalar> { arena.allocate(count) }

    /// The gradient buffer of `variable` for an op's backward, or `nil` if it needs none.
    ///
    /// An activation's buffer is allocated on first use and that first writer overwrites it (`accumulate` false),
    /// which saves zeroing; later writers and parameters accumulate.
    func gradientTarget(_ variable: Variable) -> GradientTarget? {
        let node = nodes[variable.index]
        guard node.requiresGradient else { return nil }
        if let g = node.gradient { return GradientTarget(pointer: g, accumulate: true) }
        let g = arena.allocate(node.count)
        nodes[variable.index].gradient = g
        return GradientTarget(pointer: g, accumulate: false)
    }

    /// The gradient flowing into an op's output, or `nil` when backward never reached it.
    func outputGradient(_ variable: Variable) -> UnsafeMutablePointer<Scalar>? {
        nodes[variable.index].gradient
    }

    func storeIntegers(_ values: UnsafeBufferPointer<Int32>) -> Range<Int> {
        let start = integers.count
        integers.append(contentsOf: values)
        return start..<integers.count
    }

    func record(_ operation: Operation, output: Variable) {
        if nodes[output.index].requiresGradient { operations.append(operation) }
    }

    /// Runs `body` over `0..<count` in contiguous chunks of at least `grain` elements (the chunking depends only
    /// on `count`, `grain` and the thread count; each chunk must write disjoint outputs).
    func parallelChunks(_ count: Int, grain: Int, _ body: (Range<Int>) -> Void) {
        if count <= grain || pool.threadCount == 1 {
            if count > 0 { body(0..<count) }
            return
        }
        pool.parallelRanges(count, minimumChunk: grain, chunksPerThread: 4, body)
    }

    /// `gradient (+)= source` elementwise over `count` values.
    func write(_ target: GradientTarget, from source: UnsafePointer<Scalar>, count: Int, scale: Scalar = 1) {
        let destination = target.pointer
        parallelChunks(count, grain: 1 << 15) { range in
            if target.accumulate {
                for i in range { destination[i] += scale * source[i] }
            } else if scale == 1 {
                (destination + range.lowerBound).update(from: source + range.lowerBound, count: range.count)
            } else {
                for i in range { destination[i] = scale * source[i] }
            }
        }
    }

    /// Which product of the model a ``modelProduct(_:transposeA:transposeB:m:n:k:a:lda:b:ldb:beta:c:ldc:)`` is.
    enum ModelProduct: Int, CaseIterable {
        /// Every product of ``linear(_:weight:bias:)`` and its backward.
        case linear
        /// The output head's logits of one cross-entropy chunk, `x Wᵀ`.
        case headLogits
        /// The chunk's hidden-state gradient, `dlogits W`.
        case headInputGradient
        /// The chunk's head weight gradient, `dlogitsᵀ x`.
        case headWeightGradient
    }

    /// `C = op(A) op(B) + beta C` for the products ``productPrecision`` governs: ``gemm(transposeA:transposeB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:)``
    /// in ``ProductPrecision/native`` mode, else the bf16 product (`beta` must be 0 or 1; `sameB` says B is the
    /// previous call's of this site, unchanged, so its packing is reused).
    func modelProduct(
        _ site: ModelProduct, transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Scalar>,
        lda: Int, b: UnsafePointer<Scalar>, ldb: Int, beta: Scalar, c: UnsafeMutablePointer<Scalar>, ldc: Int,
        sameB: Bool = false
    ) {
        guard let products = bf16Products else {
            gemm(
                transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                beta: beta, c: c, ldc: ldc)
            return
        }
        precondition(beta == 0 || beta == 1, "bf16 product: beta \(beta)")
        // bf16Products is only set on Float tapes (setProductPrecision).
        products[site.rawValue].multiply(
            transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
            a: UnsafeRawPointer(a).assumingMemoryBound(to: Float.self), lda: lda,
            b: UnsafeRawPointer(b).assumingMemoryBound(to: Float.self), ldb: ldb, accumulate: beta == 1,
            c: UnsafeMutableRawPointer(c).assumingMemoryBound(to: Float.self), ldc: ldc, reusePackedB: sameB)
    }

    /// `C = alpha op(A) op(B) + beta C` (row-major), split over the pool's threads by contiguous blocks of rows or
    /// columns of `C`; each block is one single-threaded BLAS call, so the partition depends only on the shapes and
    /// the thread count.
    func gemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Scalar = 1, a: UnsafePointer<Scalar>,
        lda: Int, b: UnsafePointer<Scalar>, ldb: Int, beta: Scalar, c: UnsafeMutablePointer<Scalar>, ldc: Int
    ) {
        let threads = pool.threadCount
        if threads == 1 || m * n * k < 1 << 18 || max(m, n) < 64 {
            Scalar.gemm(
                transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b,
                ldb: ldb, beta: beta, c: c, ldc: ldc)
            return
        }
        if n >= m {
            let block = ((n + threads - 1) / threads + 15) / 16 * 16
            let parts = (n + block - 1) / block
            pool.parallelFor(parts) { part in
                let n0 = part * block
                Scalar.gemm(
                    transposeA: transposeA, transposeB: transposeB, m: m, n: min(block, n - n0), k: k, alpha: alpha,
                    a: a, lda: lda, b: transposeB ? b + n0 * ldb : b + n0, ldb: ldb, beta: beta, c: c + n0, ldc: ldc)
            }
        } else {
            let block = ((m + threads - 1) / threads + 15) / 16 * 16
            let parts = (m + block - 1) / block
            pool.parallelFor(parts) { part in
                let m0 = part * block
                Scalar.gemm(
                    transposeA: transposeA, transposeB: transposeB, m: min(block, m - m0), n: n, k: k, alpha: alpha,
                    a: transposeA ? a + m0 : a + m0 * lda, lda: lda, b: b, ldb: ldb, beta: beta, c: c + m0 * ldc,
                    ldc: ldc)
            }
        }
    }
}

/// The arithmetic of a tape's model products (see ``Tape/setProductPrecision(_:)``).
public enum ProductPrecision: Sendable, Equatable {
    /// The tape's scalar type (BLAS sgemm / dgemm).
    case native
    /// Operands rounded to bfloat16, float32 sums and output (PyTorch's CPU bf16 autocast for matmuls).
    case bf16
}

/// A bump allocator of 64-byte-aligned blocks that ``reset()`` rewinds.
///
/// Requests that do not fit the current slab get their own allocation; at the next reset those are freed and the
/// slab grows to the whole demand, so a loop whose steps make the same requests allocates only during its first
/// step.
final class Arena<Scalar> {
    private var slab: UnsafeMutablePointer<Scalar>?
    private var capacity = 0
    private var used = 0
    private var overflow: [UnsafeMutablePointer<Scalar>] = []
    private var overflowCount = 0

    var reservedElements: Int { capacity + overflowCount }

    deinit {
        slab?.deallocate()
        for block in overflow { block.deallocate() }
    }

    func allocate(_ count: Int) -> UnsafeMutablePointer<Scalar> {
        let rounded = max(16, (count + 15) / 16 * 16)
        if let slab, used + rounded <= capacity {
            used += rounded
            return slab + (used - rounded)
        }
        let block = Self.allocateAligned(rounded)
        overflow.append(block)
        overflowCount += rounded
        return block
    }

    func reset() {
        if !overflow.isEmpty {
            let demand = used + overflowCount
            for block in overflow { block.deallocate() }
            overflow.removeAll(keepingCapacity: true)
            overflowCount = 0
            slab?.deallocate()
            slab = Self.allocateAligned(demand)
            capacity = demand
        }
        used = 0
    }

    private static func allocateAligned(_ count: Int) -> UnsafeMutablePointer<Scalar> {
        UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Scalar>.stride, alignment: 64)
            .bindMemory(to: Scalar.self, capacity: count)
    }
}
