import ArgumentParser
import CMPI
import Foundation
import SeedDistributed

/// Runs Seed's collectives under a real launcher (`mpirun -np N` or `srun --mpi=pmix -n N`) and checks the results
/// on every rank; also the failure drills (a hung rank, a rank that exits) and the all-reduce bandwidth benchmark.
@main
struct SelfTest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seed-mpi-selftest",
        abstract: "Check and measure Seed's collectives under mpirun or srun.",
        discussion: """
            Run it under a launcher, e.g. `mpirun --allow-run-as-root --oversubscribe -np 2 seed-mpi-selftest` \
            or `srun --mpi=pmix -n 2 seed-mpi-selftest`. Every rank prints `rank R of N: ...` lines; each exits 0 \
            only if all its checks passed.
            """,
        subcommands: [Check.self, Hang.self, ExitEarly.self, Bench.self],
        defaultSubcommand: Check.self)
}

struct CommonOptions: ParsableArguments {
    @Option(help: "Seconds a collective may take before it fails with a timeout.")
    var timeout: Double = 60

    func validate() throws {
        guard timeout > 0, timeout.isFinite else {
            throw ValidationError("--timeout must be a positive number of seconds")
        }
    }

    var duration: Duration { .nanoseconds(Int64(timeout * 1e9)) }

    /// The process group from the environment; fails unless a launcher started at least two ranks.
    func group(requireRanks: Bool = true) throws -> any Collective {
        let collective = try ProcessGroup.fromEnvironment(timeout: duration)
        if requireRanks && collective.worldSize < 2 {
            throw ValidationError(
                "run under a launcher with at least 2 ranks (mpirun -np 2 ... or srun --mpi=pmix -n 2 ...); "
                    + "this process is a group of \(collective.worldSize)")
        }
        return collective
    }
}

/// Writes one line to standard output or standard error, unbuffered, so interleaved rank output stays whole.
func say(_ line: String, error: Bool = false) {
    let data = Array((line + "\n").utf8)
    data.withUnsafeBytes { bytes in _ = write(error ? 2 : 1, bytes.baseAddress, bytes.count) }
}

/// Ends the job after a collective failure: MPI_Abort for MPI groups (every rank stops), exit otherwise.
func failAndAbort(_ collective: any Collective, _ error: any Error, exitCode: Int32) -> Never {
    say("rank \(collective.rank) of \(collective.worldSize): error: \(error)", error: true)
    if let mpi = collective as? MPICollective { mpi.abort(exitCode: exitCode) }
    exit(exitCode)
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run every collective on known inputs and check the results against naive sums (the default).")

    @OptionGroup var options: CommonOptions

    @Option(help: "Elements of the large all-reduce.")
    var largeCount: Int = 4_000_037

    func validate() throws {
        guard largeCount >= 1 else { throw ValidationError("--large-count must be at least 1") }
    }

    func run() throws {
        let collective = try options.group()
        let launcher = (try? ProcessGroup.detectLauncher(environment: ProcessInfo.processInfo.environment))
        let prefix = "rank \(collective.rank) of \(collective.worldSize)"
        say(
            "\(prefix): launcher \(launcher.map { "\($0)" } ?? "unknown"), host \(ProcessInfo.processInfo.hostName), "
                + "timeout \(options.timeout) s")
        var checks = CollectiveChecks(collective: collective, largeCount: largeCount)
        do {
            try checks.runAll()
        } catch {
            failAndAbort(collective, error, exitCode: 2)
        }
        for line in checks.report { say("\(prefix): \(line)") }
        do { try collective.shutdown() } catch { failAndAbort(collective, error, exitCode: 2) }
        if checks.failures > 0 {
            say("\(prefix): \(checks.failures) of \(checks.count) checks FAILED", error: true)
            throw ExitCode(1)
        }
        say("\(prefix): all \(checks.count) checks passed")
    }
}

struct Hang: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Failure drill: the last rank never joins an all-reduce; the others must time out and abort.")

    @OptionGroup var options: CommonOptions

    func run() throws {
        let collective = try options.group()
        let prefix = "rank \(collective.rank) of \(collective.worldSize)"
        do { try collective.barrier() } catch { failAndAbort(collective, error, exitCode: 2) }
        if collective.rank == collective.worldSize - 1 {
            say("\(prefix): hanging (never joining the all-reduce)")
            Thread.sleep(forTimeInterval: options.timeout * 10 + 30)
            say("\(prefix): still alive after the others should have aborted", error: true)
            Foundation.exit(4)
        }
        var buffer = [Float](repeating: 1, count: 1024)
        let start = Date()
        do {
            try collective.allReduce(&buffer)
            say("\(prefix): the all-reduce completed without the hung rank", error: true)
            Foundation.exit(5)
        } catch {
            say("\(prefix): detected after \(String(format: "%.2f", Date().timeIntervalSince(start))) s")
            failAndAbort(collective, error, exitCode: 3)
        }
    }
}

struct ExitEarly: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exit-early",
        abstract: "Failure drill: the last rank exits after the first barrier; the others must fail, not hang.")

    @OptionGroup var options: CommonOptions

    func run() throws {
        let collective = try options.group()
        let prefix = "rank \(collective.rank) of \(collective.worldSize)"
        do { try collective.barrier() } catch { failAndAbort(collective, error, exitCode: 2) }
        if collective.rank == collective.worldSize - 1 {
            say("\(prefix): exiting early with status 7")
            Foundation.exit(7)
        }
        var buffer = [Float](repeating: 1, count: 1024)
        let start = Date()
        do {
            for _ in 0..<3 { try collective.allReduce(&buffer) }
            say("\(prefix): all-reduces completed without the exited rank", error: true)
            Foundation.exit(5)
        } catch {
            say("\(prefix): detected after \(String(format: "%.2f", Date().timeIntervalSince(start))) s")
            failAndAbort(collective, error, exitCode: 3)
        }
    }
}
