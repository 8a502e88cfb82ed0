import ArgumentParser
import CMPI
import Foundation
import SeedDistributed

#if canImport(Glibc)
    import Glibc
#endif

/// All-reduce bandwidth in the nccl-tests convention, beside the memory-copy bandwidth measured in the same run.
///
/// For each size: `repeats` interleaved rounds of (Seed's all-reduce — its segmented ring over point-to-point
/// messages — polled by the calling thread alone, the same with the progress thread, Open MPI's `MPI_Allreduce`
/// called directly, `memcpy` of the same bytes on every rank at once), each timed as the slowest rank's time,
/// median over rounds. The main comparison uses one thread per rank on both sides: on a busy machine a second
/// polling thread also buys a second share of the CPU.
/// algbw = bytes / time; busbw = algbw × 2(n−1)/n (the per-rank traffic of a ring all-reduce); memcpy bandwidth =
/// bytes copied / time (each byte is read once and written once).
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure all-reduce bus bandwidth against memcpy bandwidth; rank 0 prints a Markdown table.")

    @OptionGroup var options: CommonOptions

    @Option(help: "Smallest message in MiB (sizes double up to --max-mib).")
    var minMib: Int = 1

    @Option(help: "Largest message in MiB.")
    var maxMib: Int = 256

    @Option(help: "Timed rounds per size (after one warm-up round).")
    var repeats: Int = 7

    @Flag(help: "Also measure how far a started all-reduce progresses while the caller computes without MPI calls.")
    var overlap = false

    func validate() throws {
        guard minMib >= 1, maxMib >= minMib, maxMib <= 4096 else {
            throw ValidationError("need 1 <= --min-mib <= --max-mib <= 4096")
        }
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1") }
    }

    func run() throws {
        let collective = try options.group()
        guard let mpi = collective as? MPICollective else {
            throw ValidationError("the benchmark needs MPI ranks (mpirun or srun --mpi=pmix)")
        }
        do {
            // One polling thread per rank, like MPI_Allreduce: the fair comparison (on a busy machine a second
            // thread also buys a second share of the CPU).
            let quiet = try MPICollective.world(timeout: mpi.timeout, progressInterval: nil)
            try measure(quiet: quiet, progressed: mpi)
            if overlap { try measureOverlap(progressed: mpi, quiet: quiet) }
            try mpi.shutdown()
        } catch {
            failAndAbort(collective, error, exitCode: 2)
        }
    }

    /// Slowest rank's seconds for `body`, after a barrier.
    private func timed(_ mpi: MPICollective, _ body: () throws(DistributedError) -> Void) throws(DistributedError)
        -> Double
    {
        try mpi.barrier()
        let start = monotonicSeconds()
        try body()
        var elapsed = [monotonicSeconds() - start]
        try mpi.allReduce(&elapsed, .max)
        return elapsed[0]
    }

    private func measure(quiet mpi: MPICollective, progressed: MPICollective) throws(DistributedError) {
        let n = Double(mpi.worldSize)
        var rows: [String] = []
        var mib = minMib
        while mib <= maxMib {
            let bytes = mib << 20
            let count = bytes / MemoryLayout<Float>.stride
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
            let source = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
            let destination = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
            defer {
                buffer.deallocate()
                source.deallocate()
                destination.deallocate()
            }
            buffer.initialize(repeating: 1)
            source.initializeMemory(as: UInt8.self, repeating: 1, count: bytes)
            destination.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
            var seedTimes: [Double] = []
            var progressedTimes: [Double] = []
            var mpiTimes: [Double] = []
            var copyTimes: [Double] = []
            for round in 0...repeats {
                let seed = try timed(mpi) { () throws(DistributedError) in try mpi.allReduce(buffer, .sum) }
                let withThread = try timed(progressed) { () throws(DistributedError) in
                    try progressed.allReduce(buffer, .sum)
                }
                let native = try timed(mpi) { () throws(DistributedError) in
                    let code = MPI_Allreduce(
                        seed_mpi_in_place(), buffer.baseAddress, Int32(count), seed_mpi_float(), seed_mpi_sum(),
                        seed_mpi_comm_world())
                    if code != MPI_SUCCESS { throw .mpi(call: "MPI_Allreduce", code: code, message: "benchmark") }
                }
                let copy = try timed(mpi) { memcpy(destination, source, bytes) }
                if round > 0 {  // round 0 warms up
                    seedTimes.append(seed)
                    progressedTimes.append(withThread)
                    mpiTimes.append(native)
                    copyTimes.append(copy)
                }
            }
            let seed = median(seedTimes)
            let withThread = median(progressedTimes)
            let native = median(mpiTimes)
            let copy = median(copyTimes)
            let algbw = Double(bytes) / seed / 1e9
            let busbw = algbw * 2 * (n - 1) / n
            let nativeBusbw = Double(bytes) / native / 1e9 * 2 * (n - 1) / n
            let copyBandwidth = Double(bytes) / copy / 1e9
            rows.append(
                "| \(mib) MiB | \(format(seed * 1e3)) | \(format(algbw)) | \(format(busbw)) | "
                    + "\(format(native * 1e3)) | \(format(nativeBusbw)) | \(format(native / seed)) | "
                    + "\(format(copyBandwidth)) | \(format(busbw / copyBandwidth)) | \(format(withThread * 1e3)) |")
            mib *= 2
        }
        if mpi.rank == 0 {
            say("ranks: \(mpi.worldSize), float32 sum, median of \(repeats) rounds (slowest rank per round)")
            say(
                "Seed all-reduce: one polling thread per rank, like MPI_Allreduce; the last column adds the "
                    + "progress thread (a second thread per rank)")
            say("")
            say(
                "| size | Seed all-reduce ms | algbw GB/s | busbw GB/s | MPI_Allreduce ms | MPI busbw GB/s | "
                    + "MPI time / Seed time | memcpy GB/s | Seed busbw / memcpy | Seed + progress thread ms |")
            say("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
            for row in rows { say(row) }
        }
    }

    /// Starts a 64 MiB all-reduce, computes for as long as the all-reduce takes alone without calling MPI, then
    /// waits: with a progress thread the wait should be short; without one, the all-reduce only starts moving at
    /// the wait.
    private func measureOverlap(progressed mpi: MPICollective, quiet: MPICollective) throws(DistributedError) {
        let count = (64 << 20) / MemoryLayout<Float>.stride
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
        defer { buffer.deallocate() }
        buffer.initialize(repeating: 1)
        let alone = try timed(mpi) { () throws(DistributedError) in try mpi.allReduce(buffer, .sum) }
        var lines: [String] = []
        for (name, group) in [("progress thread (200 us)", mpi), ("no progress thread", quiet)] {
            var waits: [Double] = []
            var totals: [Double] = []
            for _ in 0..<repeats {
                try group.barrier()
                let start = monotonicSeconds()
                let request = try group.startAllReduce(buffer, .sum)
                spin(seconds: alone)
                let waitStart = monotonicSeconds()
                try request.wait()
                var times = [monotonicSeconds() - waitStart, monotonicSeconds() - start]
                try group.allReduce(&times, .max)
                waits.append(times[0])
                totals.append(times[1])
            }
            lines.append(
                "| \(name) | \(format(alone * 1e3)) | \(format(median(waits) * 1e3)) | "
                    + "\(format(median(totals) * 1e3)) |"
            )
        }
        try quiet.barrier()
        if mpi.rank == 0 {
            say("")
            say("Overlap: 64 MiB all-reduce started, then \(format(alone * 1e3)) ms of computation without MPI calls")
            say("")
            say("| mode | all-reduce alone ms | wait after compute ms | start to done ms |")
            say("|---|---:|---:|---:|")
            for line in lines { say(line) }
        }
    }

    /// Busy computation standing in for a backward pass.
    private func spin(seconds: Double) {
        let end = monotonicSeconds() + seconds
        var x: Double = 1
        while monotonicSeconds() < end {
            for _ in 0..<1000 { x = x * 1.000001 + 1e-9 }
        }
        if x == 0 { say("") }
    }
}

func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) * 1e-9
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.count % 2 == 1
        ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

func format(_ value: Double) -> String {
    value >= 100
        ? String(format: "%.0f", value) : value >= 10 ? String(format: "%.1f", value) : String(format: "%.2f", value)
}
