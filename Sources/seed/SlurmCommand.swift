import ArgumentParser
import Foundation
import SeedTrain

struct SlurmCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slurm",
        abstract: "Submit a training run to Slurm and report its state.",
        subcommands: [SlurmSubmitCommand.self, SlurmStatusCommand.self])
}

/// Runs a Slurm client and returns its exit status, standard output and standard error.
private func runClient(_ name: String, _ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String)
{
    guard let path = TrainCommand.findExecutable(name) else {
        throw SlurmFailure(message: "\(name) is not installed or not on PATH (Slurm's client commands are needed)")
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    nonisolated(unsafe) var errData = Data()
    let reader = Thread { errData = err.fileHandleForReading.readDataToEndOfFile() }
    reader.start()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    while !reader.isFinished { usleep(1000) }
    return (
        process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self)
    )
}

struct SlurmFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

struct SlurmSubmitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Submit `seed train CONFIG` as a Slurm batch job of N tasks (srun --mpi=pmix); prints the job id.",
        discussion: """
            Writes RUN/slurm-job.sh and submits it with `sbatch --parsable`. The job is requeueable and always \
            starts with --resume, so a requeued job (scontrol requeue, or a node failure) continues from the last \
            checkpoint. The job's output goes to RUN/slurm-JOBID.out. Follow it with `seed slurm status JOBID`.
            """)

    @Argument(help: ArgumentHelp("Training configuration (.toml, .yaml, .yml or .json).", valueName: "config"))
    var config: String

    @Option(help: "Ranks (Slurm tasks); the global batch must be a multiple of ranks × micro_batch_size.")
    var ranks = 1

    @Option(help: ArgumentHelp("Run directory (overrides output.dir).", valueName: "dir"))
    var output: String?

    @Option(help: ArgumentHelp("Slurm time limit in minutes.", valueName: "minutes"))
    var time: Int?

    @Option(help: "Slurm partition (default: the cluster's default).")
    var partition: String?

    @Option(help: "Job name.")
    var jobName = "seed-train"

    @Option(
        name: .customLong("set"),
        help: ArgumentHelp("Override a configuration key (repeatable), as for seed train.", valueName: "key=value"))
    var overrides: [String] = []

    func run() throws {
        guard ranks >= 1 else { throw ValidationError("--ranks must be at least 1, got \(ranks)") }
        if let time, time < 1 { throw ValidationError("--time must be at least 1 minute, got \(time)") }
        // Check the configuration and the rank count here, before anything waits in a queue.
        var parsed: [TrainingConfiguration.Override] = []
        let configuration: TrainingConfiguration
        do {
            for text in overrides { parsed.append(try TrainingConfiguration.Override(parsing: text)) }
            if let output { parsed.append(try TrainingConfiguration.Override(key: "output.dir", text: output)) }
            configuration = try TrainingConfiguration.load(path: config, overrides: parsed)
        } catch {
            throw ValidationError(error.description)
        }
        let t = configuration.training
        guard t.batchSize % (ranks * t.microBatchSize) == 0 else {
            throw ValidationError(
                "training.batch_size \(t.batchSize) (the global batch) cannot be split over \(ranks) ranks in "
                    + "micro-batches of \(t.microBatchSize): it must be a multiple of \(ranks * t.microBatchSize)")
        }
        let run = URL(fileURLWithPath: configuration.output.dir).standardizedFileURL.path
        let configPath = URL(fileURLWithPath: config).standardizedFileURL.path
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
        func quoted(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        var command = [executable, "train", configPath, "--output", run, "--resume", "--quiet"]
        for text in overrides { command += ["--set", text] }
        var script = "#!/bin/sh\n"
        script += "#SBATCH --job-name=\(jobName)\n#SBATCH --ntasks=\(ranks)\n#SBATCH --requeue\n"
        script += "#SBATCH --output=\(run)/slurm-%j.out\n"
        if let time { script += "#SBATCH --time=\(time)\n" }
        if let partition { script += "#SBATCH --partition=\(partition)\n" }
        script += "exec srun --mpi=pmix " + command.map(quoted).joined(separator: " ") + "\n"
        let scriptPath = run + "/slurm-job.sh"
        try Data(script.utf8).write(to: URL(fileURLWithPath: scriptPath))
        let result = try runClient("sbatch", ["--parsable", scriptPath])
        guard result.status == 0 else {
            throw SlurmFailure(message: "sbatch failed (exit \(result.status)): \(result.stderr)")
        }
        let id =
            result.stdout.split(separator: ";").first.map(String.init)?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        guard !id.isEmpty, id.allSatisfy(\.isNumber) else {
            throw SlurmFailure(message: "sbatch printed no job id: \(result.stdout)\(result.stderr)")
        }
        printError("submitted \(scriptPath) as job \(id); output in \(run)/slurm-\(id).out")
        writeOut(id + "\n")
    }
}

struct SlurmStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Print a Slurm job's state (PENDING, RUNNING, COMPLETED, FAILED, ...).",
        discussion: """
            Asks squeue, then scontrol (which remembers finished jobs for a while), then sacct (when accounting \
            is on). Exits with 0 once it has an answer, 1 if no source knows the job.
            """)

    @Argument(help: "The job id `seed slurm submit` printed.")
    var job: String

    func run() throws {
        guard !job.isEmpty, job.allSatisfy({ $0.isNumber || $0 == "_" }) else {
            throw ValidationError("'\(job)' is not a Slurm job id")
        }
        if let state = try Self.state(of: job) {
            writeOut(state + "\n")
            return
        }
        throw SlurmFailure(message: "Slurm does not know job \(job) (squeue, scontrol and sacct have no record)")
    }

    /// The job's state from squeue, scontrol or sacct, whichever answers first.
    static func state(of job: String) throws -> String? {
        let queue = try runClient("squeue", ["-h", "-j", job, "-o", "%T"])
        if queue.status == 0, let line = queue.stdout.split(separator: "\n").first, !line.isEmpty {
            return String(line).trimmingCharacters(in: .whitespaces)
        }
        let control = try runClient("scontrol", ["show", "job", job])
        if control.status == 0, let range = control.stdout.range(of: "JobState=") {
            return String(control.stdout[range.upperBound...].prefix { !$0.isWhitespace })
        }
        if TrainCommand.findExecutable("sacct") != nil {
            let accounting = try runClient("sacct", ["-n", "-X", "-j", job, "-o", "State"])
            if accounting.status == 0, let line = accounting.stdout.split(separator: "\n").first {
                let state = line.trimmingCharacters(in: .whitespaces)
                if !state.isEmpty { return state }
            }
        }
        return nil
    }
}
