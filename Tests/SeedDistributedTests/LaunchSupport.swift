import Foundation
import Synchronization
import Testing

/// A finished launch of an external program.
struct LaunchResult: CustomStringConvertible {
    var status: Int32
    var stdout: String
    var stderr: String
    var seconds: Double
    /// True when the watchdog had to kill the program.
    var killed: Bool

    var description: String {
        "status \(status) after \(String(format: "%.1f", seconds)) s\(killed ? " (killed by the watchdog)" : "")\n"
            + "--- stdout\n\(stdout)--- stderr\n\(stderr)"
    }

    /// Lines of standard output that start with `prefix`.
    func lines(startingWith prefix: String) -> [String] {
        stdout.split(separator: "\n").map(String.init).filter { $0.hasPrefix(prefix) }
    }
}

/// A program the tests need that is not installed.
struct MissingTool: Error, CustomStringConvertible {
    var description: String
}

enum Launch {
    /// Finds `name` on `PATH` (and in the usual system folders).
    static func findExecutable(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let folders = path.split(separator: ":").map(String.init) + ["/usr/local/bin", "/usr/bin", "/bin"]
        return folders.map { $0 + "/" + name }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Open MPI's `mpirun`, or an error that says how to install it.
    static func mpirun() throws -> String {
        guard let path = findExecutable("mpirun") else {
            throw MissingTool(
                description: "mpirun is not installed: run scripts/install-deps.sh (scripts/test.sh does)")
        }
        return path
    }

    /// Slurm's client configuration: `$SLURM_CONF`, else `slurm.conf` in `$SEED_SLURM_DIR` (default /tmp/seed-slurm),
    /// where scripts/slurm-local.sh writes it.
    static var slurmConf: String {
        let environment = ProcessInfo.processInfo.environment
        if let conf = environment["SLURM_CONF"], !conf.isEmpty { return conf }
        return (environment["SEED_SLURM_DIR"] ?? "/tmp/seed-slurm") + "/slurm.conf"
    }

    /// A failed readiness check, kept so later tests fail at once instead of waiting for Slurm again.
    private static let slurmFailure = Mutex<MissingTool?>(nil)

    /// `srun`, once a Slurm node answers as usable; otherwise an error that says how to start one.
    static func srun() throws -> String {
        if let failure = slurmFailure.withLock({ $0 }) { throw failure }
        do {
            return try findUsableSlurm()
        } catch let failure as MissingTool {
            slurmFailure.withLock { $0 = failure }
            throw failure
        }
    }

    private static func findUsableSlurm() throws -> String {
        let howTo = "run scripts/slurm-local.sh up (scripts/test.sh does)"
        guard let srun = findExecutable("srun"), let sinfo = findExecutable("sinfo") else {
            throw MissingTool(description: "Slurm's clients (srun, sinfo) are not installed: \(howTo)")
        }
        // A node finishing the previous test's job reads `completing` for a moment: wait for it, not for idle.
        let usable = ["idle", "mixed", "allocated", "completing"]
        var result = try run(sinfo, ["-h", "-N", "-o", "%T"], extraEnvironment: ["SLURM_CONF": slurmConf], limit: 20)
        let start = Date()
        while result.status != 0
            || !result.stdout.split(separator: "\n").contains(where: { state in
                usable.contains { state.hasPrefix($0) }
            })
        {
            guard Date().timeIntervalSince(start) < 30 else {
                throw MissingTool(description: "no usable Slurm node (SLURM_CONF=\(slurmConf)): \(howTo)\n\(result)")
            }
            usleep(500_000)
            result = try run(sinfo, ["-h", "-N", "-o", "%T"], extraEnvironment: ["SLURM_CONF": slurmConf], limit: 20)
        }
        return srun
    }

    /// The `mpirun` arguments every test uses: root is allowed (CI runs as root), ranks may outnumber cores.
    static let mpirunFlags = ["--allow-run-as-root", "--oversubscribe"]

    /// The built `seed-mpi-selftest`, which sits beside the test bundle.
    static var selfTest: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("seed-mpi-selftest").path
    }

    /// Runs `executable` with `arguments`, killing it (SIGTERM, then SIGKILL) if it outlives `limit` seconds.
    /// The launcher variables of the test process itself (if it runs under one) are removed, so the child sees
    /// only what its own launcher sets; `extraEnvironment` is added.
    static func run(
        _ executable: String, _ arguments: [String], extraEnvironment: [String: String] = [:], limit: Double
    ) throws -> LaunchResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        for key in environment.keys
        where key.hasPrefix("OMPI_") || key.hasPrefix("PMIX_") || (key.hasPrefix("SLURM_") && key != "SLURM_CONF") {
            environment[key] = nil
        }
        environment.merge(extraEnvironment) { _, new in new }
        process.environment = environment
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        let start = Date()
        try process.run()

        final class Flag: @unchecked Sendable {
            // @unchecked Sendable: written by the watchdog before it kills the process, read after the process ends.
            var killed = false
        }
        let flag = Flag()
        let watchdog = Thread {
            while process.isRunning {
                if Date().timeIntervalSince(start) > limit {
                    flag.killed = true
                    process.terminate()
                    let grace = Date()
                    while process.isRunning && Date().timeIntervalSince(grace) < 5 { usleep(50_000) }
                    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
                    return
                }
                usleep(50_000)
            }
        }
        watchdog.start()
        nonisolated(unsafe) var errData = Data()
        let reader = Thread { errData = err.fileHandleForReading.readDataToEndOfFile() }
        reader.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while !reader.isFinished || !watchdog.isFinished { usleep(1000) }
        return LaunchResult(
            status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self), seconds: Date().timeIntervalSince(start),
            killed: flag.killed)
    }

    /// Checks the output of `seed-mpi-selftest check` on `worldSize` ranks: every rank ran under `launcher` and
    /// passed every check.
    static func expectAllChecksPassed(_ result: LaunchResult, worldSize: Int, launcher: String) {
        #expect(result.status == 0 && !result.killed, "\(result)")
        #expect(!result.stdout.contains("FAILED") && !result.stderr.contains("FAILED"), "\(result)")
        for rank in 0..<worldSize {
            let prefix = "rank \(rank) of \(worldSize): "
            #expect(
                result.lines(startingWith: prefix + "launcher \(launcher) (rank \(rank) of \(worldSize))").count == 1,
                "\(result)")
            let oks = result.lines(startingWith: prefix).filter { $0.hasSuffix(": ok") }
            #expect(oks.count == 23, "rank \(rank): \(oks.count) checks ok\n\(result)")
            #expect(result.lines(startingWith: prefix + "all 23 checks passed").count == 1, "\(result)")
        }
    }
}
