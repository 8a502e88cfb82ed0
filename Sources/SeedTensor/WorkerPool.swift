import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A persistent pool of compute threads for data-parallel loops.
///
/// Workers spin briefly on a generation counter after each job (so back-to-back parallel regions cost well under a
/// microsecond to start), then park on a condition variable so an idle pool costs nothing and an oversubscribed
/// machine is not starved by spinning. The calling thread always takes part in the work, so a pool of `n` threads
/// owns `n - 1` background threads.
///
/// Never use Swift's cooperative pool or `DispatchQueue.concurrentPerform` for compute: on these machines they rarely
/// use the second core (see DESIGN §3).
///
/// One job runs at a time; `parallelFor` may be called from any thread, and concurrent callers are serialised.
public final class WorkerPool: @unchecked Sendable {
    // @unchecked Sendable: the job slot is written only by the submitting thread while `submitLock` is held and
    // workers are idle, and read by workers only after they observe the new generation (acquire ordering).

    /// Number of threads that run work, including the calling thread.
    public let threadCount: Int

    private let generation = Atomic<Int>(0)
    private let nextIndex = Atomic<Int>(0)
    private let finishedWorkers = Atomic<Int>(0)
    private let parkedWorkers = Atomic<Int>(0)
    private let shuttingDown = Atomic<Bool>(false)
    private let submitLock = Mutex<Void>(())

    private var parkMutex = pthread_mutex_t()
    private var parkCondition = pthread_cond_t()
    private var workerThreads: [pthread_t] = []

    private var jobCount = 0
    private var jobBody: ((Int, Int) -> Void)?

    /// Spin iterations before a worker parks (each iteration is a relaxed load plus a pause hint).
    private let spinIterations: Int

    /// A pool sized to the machine's online CPUs.
    public static let shared = WorkerPool(threads: WorkerPool.onlineCPUCount)

    /// The number of CPUs the OS reports online.
    public static var onlineCPUCount: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// Creates a pool with `threads` threads in all (the caller counts as one).
    public init(threads: Int, spinIterations: Int = 20_000) {
        self.threadCount = max(1, threads)
        self.spinIterations = spinIterations
        pthread_mutex_init(&parkMutex, nil)
        pthread_cond_init(&parkCondition, nil)
        for index in 1..<threadCount {
            // Workers borrow the pool unretained: `deinit` joins them before the pool's memory goes away.
            let start = Unmanaged.passRetained(WorkerStart(pool: Unmanaged.passUnretained(self), index: index))
            var thread = pthread_t()
            let created = pthread_create(
                &thread, nil,
                { raw in
                    let start = Unmanaged<WorkerStart>.fromOpaque(raw!).takeRetainedValue()
                    start.pool.takeUnretainedValue().workerLoop(threadIndex: start.index)
                    return nil
                }, start.toOpaque())
            if created == 0 { workerThreads.append(thread) } else { start.release() }
        }
    }

    deinit {
        shuttingDown.store(true, ordering: .releasing)
        generation.wrappingAdd(1, ordering: .releasing)
        pthread_mutex_lock(&parkMutex)
        pthread_cond_broadcast(&parkCondition)
        pthread_mutex_unlock(&parkMutex)
        for thread in workerThreads { pthread_join(thread, nil) }
        pthread_cond_destroy(&parkCondition)
        pthread_mutex_destroy(&parkMutex)
    }

    /// Runs `body(i)` for every `i` in `0..<count`, spread over the pool's threads; returns when all are done.
    ///
    /// Indices are handed out dynamically, so uneven work balances itself. `body` must be safe to call
    /// concurrently for different indices.
    public func parallelFor(_ count: Int, _ body: (Int) -> Void) {
        parallelFor(count) { index, _ in body(index) }
    }

    /// Runs `body(i, thread)` for every `i` in `0..<count`; `thread` is in `0..<threadCount` and names the thread
    /// running that index (0 is the caller), so callers can give each thread its own scratch memory.
    public func parallelFor(_ count: Int, _ body: (_ index: Int, _ thread: Int) -> Void) {
        if count <= 0 { return }
        if count == 1 || workerThreads.isEmpty {
            for i in 0..<count { body(i, 0) }
            return
        }
        submitLock.withLock { _ in
            withoutActuallyEscaping(body) { escapable in
                jobBody = escapable
                jobCount = count
                nextIndex.store(0, ordering: .relaxed)
                finishedWorkers.store(0, ordering: .relaxed)
                generation.wrappingAdd(1, ordering: .sequentiallyConsistent)
                if parkedWorkers.load(ordering: .sequentiallyConsistent) > 0 {
                    pthread_mutex_lock(&parkMutex)
                    pthread_cond_broadcast(&parkCondition)
                    pthread_mutex_unlock(&parkMutex)
                }
                runIndices(escapable, count: count, thread: 0)
                var spins = 0
                while finishedWorkers.load(ordering: .acquiring) < workerThreads.count {
                    spins += 1
                    if spins > 1_000 { sched_yield() } else { spinPause() }
                }
                jobBody = nil
            }
        }
    }

    /// Splits `0..<count` into contiguous ranges (about `chunksPerThread` per thread, each at least `minimumChunk`
    /// long) and runs `body` on each range in parallel.
    public func parallelRanges(
        _ count: Int, minimumChunk: Int = 1, chunksPerThread: Int = 4, _ body: (Range<Int>) -> Void
    ) {
        if count <= 0 { return }
        let wanted = max(1, threadCount * chunksPerThread)
        let chunk = max(minimumChunk, (count + wanted - 1) / wanted)
        let chunks = (count + chunk - 1) / chunk
        parallelFor(chunks) { c in
            let start = c * chunk
            body(start..<min(count, start + chunk))
        }
    }

    private func runIndices(_ body: (Int, Int) -> Void, count: Int, thread: Int) {
        while true {
            let i = nextIndex.wrappingAdd(1, ordering: .relaxed).oldValue
            if i >= count { break }
            body(i, thread)
        }
    }

    fileprivate func workerLoop(threadIndex: Int) {
        // Start from generation 0, not from whatever is current: a job may already have been published before
        // this thread got to run, and it must not be missed.
        var seen = 0
        while true {
            // Spin, then park, until a new generation is published.
            var spins = 0
            while generation.load(ordering: .acquiring) == seen {
                spins += 1
                if spins < spinIterations {
                    spinPause()
                    continue
                }
                pthread_mutex_lock(&parkMutex)
                parkedWorkers.wrappingAdd(1, ordering: .sequentiallyConsistent)
                while generation.load(ordering: .sequentiallyConsistent) == seen {
                    pthread_cond_wait(&parkCondition, &parkMutex)
                }
                parkedWorkers.wrappingSubtract(1, ordering: .sequentiallyConsistent)
                pthread_mutex_unlock(&parkMutex)
            }
            seen = generation.load(ordering: .acquiring)
            if shuttingDown.load(ordering: .acquiring) { return }
            if let body = jobBody {
                runIndices(body, count: jobCount, thread: threadIndex)
            }
            finishedWorkers.wrappingAdd(1, ordering: .releasing)
        }
    }
}

private final class WorkerStart {
    let pool: Unmanaged<WorkerPool>
    let index: Int
    init(pool: Unmanaged<WorkerPool>, index: Int) {
        self.pool = pool
        self.index = index
    }
}

@inline(__always)
private func spinPause() {
    // Swift has no portable pause intrinsic; the loop body's atomic load is the throttle.
}
