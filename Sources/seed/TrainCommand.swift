import ArgumentParser
import Foundation
import SeedDistributed
import SeedTrain

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a Llama-style model from scratch on prepared token shards.",
        discussion: """
            CONFIG is a TOML, YAML or JSON file (see examples/tiny.toml). Flags override the file. The run \
            directory gets log.jsonl (one JSON object per step), loss.svg, checkpoints/step-NNNNNNNN/ and, at the \
            end, final/model.safetensors + final/config.json. --resume continues bit for bit from the newest valid \
            checkpoint (damaged ones are skipped with a warning). Export the result for `seed generate` with \
            `seed export`.

            Distributed: start the same command under `mpirun -np N` or `srun --mpi=pmix -n N`; training.batch_size \
            is the global batch, split over the ranks (it must be a multiple of N × micro_batch_size). Rank 0 \
            writes the log, metrics.prom and final files. A rank that dies or hangs makes the others fail within \
            distributed.timeout seconds (or $SEED_COLLECTIVE_TIMEOUT), naming the rank. `--auto-restart K` \
            supervises the run: it starts `--launch` (e.g. "mpirun -np 2") with this command, and after a failure \
            restarts it with --resume, up to K times.
            """)

    @Argument(help: ArgumentHelp("Training configuration (.toml, .yaml, .yml or .json).", valueName: "config"))
    var config: String

    @Option(help: ArgumentHelp("Run directory (overrides output.dir).", valueName: "dir"))
    var output: String?

    @Option(help: "Optimizer steps (overrides training.steps).")
    var steps: Int?

    @Flag(help: "Continue from the newest valid checkpoint in the run directory.")
    var resume = false

    @Option(
        name: .customLong("set"),
        help: ArgumentHelp(
            "Override a configuration key, e.g. --set optimizer.lr=1e-3 (repeatable).", valueName: "key=value"))
    var overrides: [String] = []

    @Flag(help: "No progress line (messages still go to standard error).")
    var quiet = false

    @Option(
        name: .customLong("auto-restart"),
        help: ArgumentHelp(
            "Supervise the run: restart it from the last checkpoint after a failure, at most this many times.",
            valueName: "count"))
    var autoRestart: Int?

    @Option(
        help: ArgumentHelp(
            "With --auto-restart: the launcher command the run is started under, split at spaces, e.g. "
                + "\"mpirun -np 2 --oversubscribe\" or \"srun --mpi=pmix -n 2\" (default: none, one process).",
            valueName: "command"))
    var launch: String?

    func run() throws {
        if let autoRestart {
            try supervise(restarts: autoRestart)
            return
        }
        guard launch == nil else { throw ValidationError("--launch is only used with --auto-restart") }
        var parsed: [TrainingConfiguration.Override] = []
        do {
            for text in overrides { parsed.append(try TrainingConfiguration.Override(parsing: text)) }
            if let output { parsed.append(try TrainingConfiguration.Override(key: "output.dir", text: output)) }
            if let steps {
                parsed.append(try TrainingConfiguration.Override(key: "training.steps", text: String(steps)))
            }
        } catch {
            throw ValidationError(error.description)
        }
        let configuration: TrainingConfiguration
        do {
            configuration = try TrainingConfiguration.load(path: config, overrides: parsed)
        } catch {
            throw ValidationError(error.description)
        }
        let environment = ProcessInfo.processInfo.environment
        let group: any Collective
        do {
            let timeout =
                environment[ProcessGroup.timeoutVariable] != nil
                ? try ProcessGroup.timeout(environment: environment)
                : .nanoseconds(Int64(configuration.distributed.timeout * 1e9))
            group = try ProcessGroup.fromEnvironment(environment, timeout: timeout)
        } catch {
            throw ValidationError(error.description)
        }
        let prefix = group.worldSize > 1 ? "rank \(group.rank) of \(group.worldSize): " : ""
        let trainer: Trainer
        do {
            trainer = try Trainer(configuration: configuration, collective: group)
        } catch {
            throw TrainFailure(message: prefix + error.description)
        }
        let leader = group.rank == 0
        let live = isatty(STDERR_FILENO) != 0 && !quiet && leader
        let logInterval = configuration.output.logInterval
        var lastLine = ""
        trainer.onProgress = { line in
            guard leader else { return }
            if live {
                FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
                lastLine = line
            } else if !quiet, trainer.step % logInterval == 0 || trainer.step == configuration.training.steps {
                printError(line)
            }
        }
        trainer.onMessage = { message in
            guard leader || message.hasPrefix("warning") else { return }
            if live && !lastLine.isEmpty {
                FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
                printError(prefix + message)
                FileHandle.standardError.write(Data(lastLine.utf8))
            } else {
                printError(prefix + message)
            }
        }
        do {
            try trainer.run(resume: resume)
        } catch {
            if live { printError("") }
            throw TrainFailure(message: prefix + error.description)
        }
        if live { printError("") }
        do {
            try group.shutdown()
        } catch {
            throw TrainFailure(message: prefix + error.description)
        }
        if leader { writeOut("\(trainer.finalDirectory)\n") }
    }

    /// `--auto-restart`: runs the training command (under `--launch`) as a child, and after a failure runs it
    /// again with `--resume`, up to `restarts` times. Exact resume makes the result equal to an uninterrupted run.
    private func supervise(restarts: Int) throws {
        guard restarts >= 0 else { throw ValidationError("--auto-restart must be >= 0, got \(restarts)") }
        let environment = ProcessInfo.processInfo.environment
        let outer = (try? ProcessGroup.detectLauncher(environment: environment)) ?? ProcessGroup.Launcher.none
        if outer != ProcessGroup.Launcher.none {
            throw ValidationError(
                "--auto-restart supervises the launcher, so it must not run under mpirun or srun itself: run "
                    + "`seed train CONFIG --auto-restart K --launch \"mpirun -np N\"` directly")
        }
        let launcher = (launch ?? "").split(separator: " ").map(String.init)
        if let first = launcher.first, Self.findExecutable(first) == nil {
            throw ValidationError("--launch: cannot find '\(first)' on PATH")
        }
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
        var base = [executable, "train", config]
        if let output { base += ["--output", output] }
        if let steps { base += ["--steps", String(steps)] }
        for text in overrides { base += ["--set", text] }
        if quiet { base.append("--quiet") }
        var attempt = 0
        while true {
            let arguments = launcher + base + (resume || attempt > 0 ? ["--resume"] : [])
            printError("supervisor: attempt \(attempt + 1) of \(restarts + 1): \(arguments.joined(separator: " "))")
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Self.findExecutable(arguments[0]) ?? arguments[0])
            process.arguments = Array(arguments.dropFirst())
            do {
                try process.run()
            } catch {
                throw TrainFailure(message: "supervisor: cannot start \(arguments[0]): \(error)")
            }
            process.waitUntilExit()
            let status = process.terminationStatus
            let how = process.terminationReason == .uncaughtSignal ? "signal \(status)" : "exit status \(status)"
            if process.terminationReason == .exit && status == 0 {
                if attempt > 0 { printError("supervisor: the run finished after \(attempt) restart(s)") }
                return
            }
            guard attempt < restarts else {
                throw TrainFailure(
                    message: "supervisor: the run failed (\(how)) and all \(restarts) restart(s) are used up")
            }
            attempt += 1
            printError(
                "supervisor: the run failed (\(how)); restarting from the last checkpoint (\(attempt)/\(restarts))")
        }
    }

    static func findExecutable(_ name: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let folders = path.split(separator: ":").map(String.init) + ["/usr/local/bin", "/usr/bin", "/bin"]
        return folders.map { $0 + "/" + name }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}

/// A training run that failed after it started; the message names the rank when there are several.
struct TrainFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
