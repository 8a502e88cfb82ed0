import Foundation
import SeedFormats
import SeedTestSupport
import Testing

/// A finished run of an external program (a launcher running `seed train` ranks).
private struct Finished: CustomStringConvertible {
    var status: Int32
    var stdout: String
    var stderr: String
    var seconds: Double
    var killed: Bool

    var description: String {
        "status \(status) after \(String(format: "%.1f", seconds)) s\(killed ? " (killed by the watchdog)" : "")\n"
            + "--- stdout\n\(stdout)--- stderr\n\(stderr)"
    }
}

/// Launchers and helpers for training on several ranks.
private enum Ranks {
    static func findExecutable(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let folders = path.split(separator: ":").map(String.init) + ["/usr/local/bin", "/usr/bin", "/bin"]
        return folders.map { $0 + "/" + name }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    struct MissingTool: Error, CustomStringConvertible {
        var description: String
    }

    static func mpirun() throws -> String {
        guard let path = findExecutable("mpirun") else {
            throw MissingTool(
                description: "mpirun is not installed: run scripts/install-deps.sh (scripts/test.sh does)")
        }
        return path
    }

    static let mpirunFlags = ["--allow-run-as-root", "--oversubscribe"]

    static var slurmConf: String {
        let environment = ProcessInfo.processInfo.environment
        if let conf = environment["SLURM_CONF"], !conf.isEmpty { return conf }
        return (environment["SEED_SLURM_DIR"] ?? "/tmp/seed-slurm") + "/slurm.conf"
    }

    /// Runs `executable`, killing it after `limit` seconds; launcher variables of this process are removed.
    static func run(
        _ executable: String, _ arguments: [String], extraEnvironment: [String: String] = [:], limit: Double,
        whileRunning: ((Process) -> Void)? = nil
    ) throws -> Finished {
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
        nonisolated(unsafe) var outData = Data()
        let reader = Thread { errData = err.fileHandleForReading.readDataToEndOfFile() }
        reader.start()
        let outReader = Thread { outData = out.fileHandleForReading.readDataToEndOfFile() }
        outReader.start()
        whileRunning?(process)
        process.waitUntilExit()
        while !reader.isFinished || !outReader.isFinished || !watchdog.isFinished { usleep(1000) }
        return Finished(
            status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self), seconds: Date().timeIntervalSince(start),
            killed: flag.killed)
    }

    /// `mpirun -np ranks seed ARGUMENTS`.
    static func mpirun(_ ranks: Int, _ arguments: [String], limit: Double = 240) throws -> Finished {
        try run(try mpirun(), mpirunFlags + ["-np", String(ranks), SeedProcess.executable] + arguments, limit: limit)
    }

    /// `seed ARGUMENTS` (one process, no launcher).
    static func single(_ arguments: [String], limit: Double = 240) throws -> Finished {
        try run(SeedProcess.executable, arguments, limit: limit)
    }
}

private func makeDirectory(_ label: String) throws -> String {
    let path = FileManager.default.temporaryDirectory
        .appendingPathComponent("seed-dist-train-\(getpid())-\(label)-\(UInt32.random(in: 0...UInt32.max))").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// The same small corpus as the single-process training tests (240 short documents, SmolLM2 tokenizer).
private func preparedCorpus(in directory: String) throws -> String {
    let subjects = ["The cat", "A dog", "My friend", "The old man", "Every child", "The teacher", "A bird", "The king"]
    let verbs = ["sees", "likes", "finds", "remembers", "paints", "carries"]
    let objects = ["the red ball", "a small house", "the blue sea", "an apple tree", "the quiet river"]
    var documents: [String] = []
    for i in 0..<240 {
        let s = subjects[i % subjects.count]
        let v = verbs[(i / 3) % verbs.count]
        let o = objects[(i / 7) % objects.count]
        documents.append("\(s) \(v) \(o). \(s) is happy today.")
    }
    let corpus = directory + "/corpus"
    try Data((documents.joined(separator: "\n%\n") + "\n").utf8).write(to: URL(fileURLWithPath: corpus))
    let output = directory + "/data"
    let r = try SeedProcess.run([
        "data", "prepare", "--tokenizer", try TestPaths.smolLM2(), "--input", corpus, "--output", output,
        "--validation-fraction", "0.1",
    ])
    #expect(r.status == 0, "\(r.stderr)")
    return output
}

/// A tiny model trained for 20 steps on a global batch of 4 sequences in micro-batches of 1, so 1 rank accumulates
/// 4 micro-batches and each of 2 ranks accumulates 2. Small buckets (64 KiB) give the model several buckets.
private func tinyConfig(data: String, steps: Int = 20, batch: Int = 4, extra: String = "") -> String {
    """
    [model]
    vocab_size = 49152
    hidden_size = 32
    intermediate_size = 64
    layers = 2
    heads = 4
    kv_heads = 2
    context_length = 64

    [data]
    dir = "\(data)"

    [training]
    steps = \(steps)
    batch_size = \(batch)
    micro_batch_size = 1
    seq_len = 32
    seed = 7
    threads = 1

    [optimizer]
    lr = 3e-3
    warmup_steps = 4

    [checkpoint]
    interval = 5
    keep_last = 4

    [eval]
    interval = 10
    batches = 2

    [output]
    dir = "unused"
    log_interval = 5

    [distributed]
    bucket_mb = 0.0625
    timeout = 20
    \(extra)
    """
}

private func writeFile(_ path: String, _ text: String) throws {
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
}

private func logRecords(_ run: String) throws -> [[String: Any]] {
    let text = try String(contentsOfFile: run + "/log.jsonl", encoding: .utf8)
    return try text.split(separator: "\n").map {
        try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
    }
}

private func losses(_ run: String) throws -> [Double] {
    try logRecords(run).map { $0["loss"] as! Double }
}

/// Every parameter of `run`'s final model.
private func finalWeights(_ run: String) throws -> [String: [Float]] {
    let file = try SafetensorsFile(path: run + "/final/model.safetensors")
    var weights: [String: [Float]] = [:]
    for info in file.tensors { weights[info.name] = try file.floats(named: info.name) }
    return weights
}

/// Largest relative difference of two loss curves of the same length.
private func maxRelativeDifference(_ a: [Double], _ b: [Double]) -> Double {
    zip(a, b).map { abs($0 - $1) / abs($0) }.max() ?? .infinity
}

/// Largest absolute difference of two models' weights (infinity when they do not have the same tensors).
private func maxWeightDifference(_ a: [String: [Float]], _ b: [String: [Float]]) -> Float {
    guard Set(a.keys) == Set(b.keys), !a.isEmpty else { return .infinity }
    var largest: Float = 0
    for (name, values) in a {
        guard let other = b[name], other.count == values.count else { return .infinity }
        for (x, y) in zip(values, other) { largest = max(largest, abs(x - y)) }
    }
    return largest
}

/// Tolerances for a 2-rank run against a 1-rank run of the same global batch. The ranks compute bitwise the same
/// per-micro-batch gradients as one rank does; only the order of the float32 sums differs (one rank adds four
/// micro-batch gradients in turn, two ranks add two each and then sum the pairs), about one rounding (6e-8
/// relative) per gradient element per step. AdamW divides by sqrt(v), so a rounding difference moves a weight by at
/// most a few ulps of the step (lr = 3e-3) and the loss, a mean over 128 tokens, by far less. Measured: losses within
/// 3e-8 relative, weights within 2e-7 absolute after 20 steps; the bounds leave a wide margin (>100×) while still
/// failing on any real error (a wrong average or a skipped bucket changes losses by 1e-3 and more).
private let lossTolerance = 1e-5
private let weightTolerance: Float = 1e-4

@Suite(.serialized) struct DistributedTrainCLITests {
    @Test func twoRanksMatchOneRankWithAndWithoutZeRO1AndResumeAcrossRankCounts() throws {
        let directory = try makeDirectory("equal")
        let data = try preparedCorpus(in: directory)
        let config = directory + "/tiny.toml"
        try writeFile(config, tinyConfig(data: data))

        let one = directory + "/one"
        let a = try Ranks.single(["train", config, "--output", one, "--quiet"])
        #expect(a.status == 0, "\(a)")
        let two = directory + "/two"
        let b = try Ranks.mpirun(2, ["train", config, "--output", two, "--quiet"])
        #expect(b.status == 0 && !b.killed, "\(b)")
        #expect(b.stdout == two + "/final\n", "only rank 0 prints the result: \(b)")
        let zero = directory + "/zero"
        let c = try Ranks.mpirun(2, ["train", config, "--output", zero, "--quiet", "--set", "distributed.zero1=true"])
        #expect(c.status == 0 && !c.killed, "\(c)")

        let reference = try losses(one)
        #expect(reference.count == 20)
        #expect(reference.last! < reference.first! - 1, "the loss falls: \(reference)")
        let referenceWeights = try finalWeights(one)
        for run in [two, zero] {
            let curve = try losses(run)
            #expect(curve.count == 20)
            let lossDifference = maxRelativeDifference(reference, curve)
            let weightDifference = maxWeightDifference(referenceWeights, try finalWeights(run))
            print("\(run): max relative loss difference \(lossDifference), max weight difference \(weightDifference)")
            #expect(lossDifference <= lossTolerance, "\(run): \(reference) vs \(curve)")
            #expect(weightDifference <= weightTolerance, "\(run)")
        }

        // Telemetry: per-rank times and the straggler in the log and in metrics.prom.
        let last = try logRecords(two).last!
        #expect((last["rank_compute_s"] as? [Double])?.count == 2)
        #expect((last["rank_comm_s"] as? [Double])?.allSatisfy { $0 >= 0 } == true)
        #expect((last["straggler_ratio"] as? Double).map { $0 >= 1 } == true)
        #expect([0, 1].contains(last["straggler_rank"] as? Int ?? -1))
        let metrics = try String(contentsOfFile: two + "/metrics.prom", encoding: .utf8)
        #expect(metrics.contains("seed_train_step 20.0"))
        #expect(metrics.contains("seed_train_rank_compute_seconds{rank=\"1\"}"))
        #expect(metrics.contains("seed_train_straggler_ratio"))

        // ZeRO-1 checkpoints: one optimizer shard per rank plus the manifest.
        let zeroCheckpoint = zero + "/checkpoints/step-00000010"
        let files = try FileManager.default.contentsOfDirectory(atPath: zeroCheckpoint)
        #expect(files.contains("optimizer-rank-00000-of-00002.safetensors"))
        #expect(files.contains("optimizer-rank-00001-of-00002.safetensors"))
        let state = try String(contentsOfFile: zeroCheckpoint + "/state.json", encoding: .utf8)
        #expect(state.contains("\"world_size\" : 2"))

        // Resume 2 ranks (ZeRO-1 shards) → 1 rank, and 1 rank → 2 ranks with ZeRO-1, from step 10.
        for (label, source, ranks, extra) in [
            ("2to1", zero, 1, [String]()), ("1to2", one, 2, ["--set", "distributed.zero1=true"]),
        ] {
            let run = directory + "/" + label
            try FileManager.default.createDirectory(atPath: run + "/checkpoints", withIntermediateDirectories: true)
            try FileManager.default.copyItem(
                atPath: source + "/checkpoints/step-00000010", toPath: run + "/checkpoints/step-00000010")
            let arguments = ["train", config, "--output", run, "--resume"] + extra
            let result = ranks == 1 ? try Ranks.single(arguments) : try Ranks.mpirun(ranks, arguments)
            #expect(result.status == 0 && !result.killed, "\(label): \(result)")
            #expect(result.stderr.contains("resumed from \(run)/checkpoints/step-00000010 (step 10)"), "\(result)")
            let weightDifference = maxWeightDifference(referenceWeights, try finalWeights(run))
            print("\(label): max weight difference to the 1-rank run \(weightDifference)")
            #expect(weightDifference <= weightTolerance, "\(label)")
            // Only the checkpoint was copied, so the log holds the resumed steps 11-20.
            let resumed = try logRecords(run)
            #expect(resumed.map { $0["step"] as? Int } == Array(11...20), "\(label)")
            let curve = resumed.map { $0["loss"] as! Double }
            #expect(maxRelativeDifference(Array(reference[10...]), curve) <= lossTolerance, "\(label)")
        }
    }

    @Test func badInputFailsClearlyWithoutHanging() throws {
        let directory = try makeDirectory("bad")
        let data = try preparedCorpus(in: directory)
        let config = directory + "/tiny.toml"
        try writeFile(config, tinyConfig(data: data, steps: 4))

        // 3 ranks cannot split a global batch of 4.
        let three = try Ranks.mpirun(3, ["train", config, "--output", directory + "/three"], limit: 120)
        #expect(three.status != 0 && !three.killed, "\(three)")
        #expect(
            three.stderr.contains("training.batch_size 4 (the global batch) cannot be split over 3 ranks"), "\(three)")

        // Two ranks started with different configurations (MPMD): every rank names rank 1.
        let other = directory + "/other.toml"
        try writeFile(
            other, tinyConfig(data: data, steps: 4, extra: "").replacingOccurrences(of: "lr = 3e-3", with: "lr = 1e-3"))
        let mismatched = try Ranks.run(
            try Ranks.mpirun(),
            Ranks.mpirunFlags + [
                "-np", "1", SeedProcess.executable, "train", config, "--output", directory + "/mm", ":", "-np", "1",
                SeedProcess.executable, "train", other, "--output", directory + "/mm",
            ], limit: 120)
        #expect(mismatched.status != 0 && !mismatched.killed, "\(mismatched)")
        #expect(mismatched.stderr.contains("the configurations of rank 1 differ from rank 0's"), "\(mismatched)")

        // A hung peer (rank 1 stopped with SIGSTOP after step 2): rank 0 fails within the timeout, naming rank 1.
        let hungRun = directory + "/hang"
        let hangConfig = directory + "/hang.toml"
        try writeFile(hangConfig, tinyConfig(data: data, steps: 40))
        nonisolated(unsafe) var stopped: Int32 = 0
        let hang = try Ranks.run(
            try Ranks.mpirun(),
            Ranks.mpirunFlags + [
                "-np", "2", "-x", "SEED_COLLECTIVE_TIMEOUT=3", SeedProcess.executable, "train", hangConfig,
                "--output", hungRun,
            ], limit: 120
        ) { _ in
            let start = Date()
            while Date().timeIntervalSince(start) < 60 {
                if let text = try? String(contentsOfFile: hungRun + "/ranks/rank-1", encoding: .utf8) {
                    let fields = text.split(separator: " ")
                    if fields.count == 6, let pid = Int32(fields[0]), let step = Int(fields[2]), step >= 2 {
                        kill(pid, SIGSTOP)
                        stopped = pid
                        break
                    }
                }
                usleep(20_000)
            }
            // Rank 0 gives up after 3 s; end the stopped rank after that in case the launcher leaves it.
            usleep(10_000_000)
            if stopped > 0 { kill(stopped, SIGKILL) }
        }
        #expect(stopped > 0, "rank 1 never finished step 2: \(hang)")
        #expect(hang.status != 0 && !hang.killed, "\(hang)")
        #expect(hang.stderr.contains("timed out after 3 s on rank 0 of 2"), "\(hang)")
        #expect(hang.stderr.contains("rank 1 (pid \(stopped)) is alive but has not finished a step"), "\(hang)")
        #expect(hang.seconds < 60, "\(hang)")

        // --launch without --auto-restart, and a launcher that does not exist.
        let stray = try SeedProcess.run(["train", config, "--launch", "mpirun -np 2"])
        #expect(stray.status != 0 && stray.stderr.contains("--launch is only used with --auto-restart"))
        let missing = try SeedProcess.run(["train", config, "--auto-restart", "1", "--launch", "no-such-launcher -n 2"])
        #expect(missing.status != 0 && missing.stderr.contains("cannot find 'no-such-launcher'"), "\(missing.stderr)")
    }

    @Test func aKilledRankIsDetectedAndTheSupervisedRunEndsWithTheSameWeights() throws {
        let directory = try makeDirectory("kill")
        let data = try preparedCorpus(in: directory)
        let config = directory + "/tiny.toml"
        try writeFile(config, tinyConfig(data: data, steps: 30, extra: ""))
        let clean = directory + "/clean"
        let reference = try Ranks.mpirun(2, ["train", config, "--output", clean, "--quiet"])
        #expect(reference.status == 0, "\(reference)")

        let run = directory + "/killed"
        let launch = ([try Ranks.mpirun()] + Ranks.mpirunFlags + ["-np", "2"]).joined(separator: " ")
        nonisolated(unsafe) var killedPID: Int32 = 0
        let supervised = try Ranks.run(
            SeedProcess.executable,
            ["train", config, "--output", run, "--quiet", "--auto-restart", "2", "--launch", launch],
            extraEnvironment: ["SEED_COLLECTIVE_TIMEOUT": "5"], limit: 300
        ) { _ in
            // Once rank 1 has finished step 12 (past the checkpoint at 10), SIGKILL it.
            let start = Date()
            while Date().timeIntervalSince(start) < 120 {
                if let text = try? String(contentsOfFile: run + "/ranks/rank-1", encoding: .utf8) {
                    let fields = text.split(separator: " ")
                    if fields.count == 6, let pid = Int32(fields[0]), let step = Int(fields[2]), step >= 12 {
                        kill(pid, SIGKILL)
                        killedPID = pid
                        return
                    }
                }
                usleep(20_000)
            }
        }
        #expect(killedPID > 0, "rank 1 never reached step 12: \(supervised)")
        #expect(supervised.status == 0 && !supervised.killed, "\(supervised)")
        #expect(supervised.stderr.contains("supervisor: the run failed"), "\(supervised)")
        #expect(supervised.stderr.contains("resumed from \(run)/checkpoints/step-000000"), "\(supervised)")
        #expect(supervised.stderr.contains("supervisor: the run finished after 1 restart(s)"), "\(supervised)")
        // Same world size, same data order from the checkpoint on: the very same bits as the run without a kill.
        let a = try Data(contentsOf: URL(fileURLWithPath: clean + "/final/model.safetensors"))
        let b = try Data(contentsOf: URL(fileURLWithPath: run + "/final/model.safetensors"))
        #expect(a == b, "final weights differ from the uninterrupted run")
        #expect(try losses(run) == losses(clean), "no lost or repeated steps in the log")
    }

    @Test func twoRanksUnderSrunMatchOneRank() throws {
        guard let srun = Ranks.findExecutable("srun") else {
            throw Ranks.MissingTool(description: "srun is not installed: run scripts/slurm-local.sh up")
        }
        let directory = try makeDirectory("srun")
        let data = try preparedCorpus(in: directory)
        let config = directory + "/tiny.toml"
        try writeFile(config, tinyConfig(data: data))
        let one = directory + "/one"
        let a = try Ranks.single(["train", config, "--output", one, "--quiet"])
        #expect(a.status == 0, "\(a)")
        let two = directory + "/two"
        let b = try Ranks.run(
            srun,
            ["--time=5", "--mpi=pmix", "-n", "2", SeedProcess.executable, "train", config, "--output", two, "--quiet"],
            extraEnvironment: ["SLURM_CONF": Ranks.slurmConf], limit: 240)
        #expect(b.status == 0 && !b.killed, "\(b)")
        let difference = maxRelativeDifference(try losses(one), try losses(two))
        print("srun: max relative loss difference \(difference)")
        #expect(try losses(two).count == 20)
        #expect(difference <= lossTolerance)
        #expect(maxWeightDifference(try finalWeights(one), try finalWeights(two)) <= weightTolerance)
    }

    /// Two "hosts": scripts/mpi-two-hosts.sh puts one rank in each of two network namespaces joined by a veth pair
    /// (own hostnames, Open MPI over TCP between 10.200.0.1 and 10.200.0.2) and removes them afterwards.
    @Test func twoRanksOnTwoHostsMatchOneRank() throws {
        guard getuid() == 0 else {
            throw Ranks.MissingTool(description: "the two-host test needs root for ip netns (CI runs as root)")
        }
        let directory = try makeDirectory("hosts")
        let data = try preparedCorpus(in: directory)
        let config = directory + "/tiny.toml"
        try writeFile(config, tinyConfig(data: data))
        let one = directory + "/one"
        let a = try Ranks.single(["train", config, "--output", one, "--quiet"])
        #expect(a.status == 0, "\(a)")
        let two = directory + "/two"
        let b = try Ranks.run(
            "/bin/bash",
            [TestPaths.packageRoot() + "/scripts/mpi-two-hosts.sh", "train", config, "--output", two, "--quiet"],
            extraEnvironment: ["SEED_SELFTEST": SeedProcess.executable], limit: 300)
        #expect(b.status == 0 && !b.killed, "\(b)")
        let hosts = try ["0", "1"].map {
            try String(contentsOfFile: two + "/ranks/rank-\($0)", encoding: .utf8).split(separator: " ")[1]
        }
        #expect(hosts == ["seed-host-a", "seed-host-b"], "one rank per namespace")
        let difference = maxRelativeDifference(try losses(one), try losses(two))
        print("two hosts: max relative loss difference \(difference)")
        #expect(try losses(two).count == 20)
        #expect(difference <= lossTolerance)
        #expect(maxWeightDifference(try finalWeights(one), try finalWeights(two)) <= weightTolerance)
        #expect(b.stderr.contains("mpi-two-hosts: exit 0"), "\(b)")
    }

    /// An unreachable peer: two "hosts" whose data network (Open MPI's TCP BTL) is cut after rank 1 has finished step
    /// 2, while the launcher's control network stays up. Both ranks wait in the same collective and never hear each
    /// other; the job must end within the collective timeout with a message naming the peer and the network, and the
    /// namespaces must be gone afterwards.
    @Test func anUnreachablePeerEndsTheRunWithAClearErrorInsteadOfAHang() throws {
        guard getuid() == 0 else {
            throw Ranks.MissingTool(description: "the two-host test needs root for ip netns (CI runs as root)")
        }
        let directory = try makeDirectory("unreachable")
        let data = try preparedCorpus(in: directory)
        let config = directory + "/tiny.toml"
        try writeFile(config, tinyConfig(data: data, steps: 200))
        let run = directory + "/run"
        let cut = directory + "/cut-now"
        nonisolated(unsafe) var cutAtStep = -1
        let result = try Ranks.run(
            "/bin/bash",
            [TestPaths.packageRoot() + "/scripts/mpi-two-hosts.sh", "train", config, "--output", run, "--quiet"],
            extraEnvironment: [
                "SEED_SELFTEST": SeedProcess.executable, "SEED_COLLECTIVE_TIMEOUT": "4",
                "SEED_TWO_HOSTS_CUT_DATA": cut,
            ], limit: 240
        ) { _ in
            let start = Date()
            while Date().timeIntervalSince(start) < 180 {
                if let text = try? String(contentsOfFile: run + "/ranks/rank-1", encoding: .utf8) {
                    let fields = text.split(separator: " ")
                    if fields.count == 6, let step = Int(fields[2]), step >= 2 {
                        FileManager.default.createFile(atPath: cut, contents: Data())
                        cutAtStep = step
                        return
                    }
                }
                usleep(20_000)
            }
        }
        #expect(cutAtStep >= 2, "rank 1 never finished step 2: \(result)")
        #expect(result.stderr.contains("mpi-two-hosts: data network cut"), "\(result)")
        #expect(result.status != 0 && !result.killed, "\(result)")
        // The first rank to give up names the other one, on the other host, and the network.
        #expect(result.stderr.contains("timed out after 4 s on rank"), "\(result)")
        // Whichever rank times out first sees the other still waiting; the second sees that the first gave up in
        // the same collective. Both blame the network between the two hosts, never a slow or dead peer.
        let views = [("0", "b", "a"), ("1", "a", "b")].map { rank, peerHost, ownHost in
            result.stderr.range(
                of:
                    "Error: rank \(rank) of 2: .* timed out after 4 s on rank \(rank) of 2: .*on seed-host-\(peerHost)[)] "
                    + "(is running and waiting in|gave up on) a collective of step [0-9]+ too, so the ranks do "
                    + "not hear each other: the network between seed-host-\(ownHost) and seed-host-\(peerHost) is "
                    + "down or blocked",
                options: .regularExpression) != nil
        }
        #expect(views.contains(true), "\(result)")
        #expect(!result.stderr.contains("much slower") && !result.stderr.contains("is gone"), "\(result)")
        // Bounded: the timeout plus the launcher's teardown, not TCP's minutes of retransmission.
        #expect(result.seconds < 120, "\(result)")
        // The run stopped where the network went: no step after the cut completed on both ranks.
        let logged = try logRecords(run).compactMap { $0["step"] as? Int }
        #expect(logged.count < 200 && (logged.last ?? 0) <= cutAtStep + 2, "\(logged)")

        // Unreachable from the start (the data network is down before the ranks first talk): Open MPI's TCP transport
        // itself fails the connection at once ("Network is unreachable"); either way the job ends, it does not hang.
        let early = try Ranks.run(
            "/bin/bash",
            [
                TestPaths.packageRoot() + "/scripts/mpi-two-hosts.sh", "train", config, "--output",
                directory + "/early",
                "--quiet",
            ],
            extraEnvironment: [
                "SEED_SELFTEST": SeedProcess.executable, "SEED_COLLECTIVE_TIMEOUT": "4", "SEED_TWO_HOSTS_CUT_DATA": cut,
            ], limit: 120)
        #expect(early.status != 0 && !early.killed && early.seconds < 60, "\(early)")
        #expect(
            early.stderr.contains("Unable to connect to the peer 10.201.0.1")
                || early.stderr.contains("Unable to connect to the peer 10.201.0.2")
                || early.stderr.contains("timed out after 4 s"), "\(early)")
        // The script removed its namespaces.
        let namespaces = try Ranks.run("/bin/sh", ["-c", "ip netns list"], limit: 10)
        #expect(!namespaces.stdout.contains("seed-host-"), "\(namespaces.stdout)")
    }

    /// `seed slurm submit` puts a 2-rank run in the local Slurm's queue; `seed slurm status` follows it to COMPLETED.
    @Test func slurmSubmitAndStatusFollowARunToCompletion() throws {
        guard Ranks.findExecutable("sbatch") != nil else {
            throw Ranks.MissingTool(description: "sbatch is not installed: run scripts/slurm-local.sh up")
        }
        let directory = try makeDirectory("sbatch")
        let data = try preparedCorpus(in: directory)
        let config = directory + "/tiny.toml"
        try writeFile(config, tinyConfig(data: data, steps: 6))
        let environment = ["SLURM_CONF": Ranks.slurmConf]
        let run = directory + "/run"

        let refused = try Ranks.run(
            SeedProcess.executable, ["slurm", "submit", config, "--ranks", "3", "--output", run],
            extraEnvironment: environment, limit: 60)
        #expect(refused.status != 0 && refused.stderr.contains("cannot be split over 3 ranks"), "\(refused)")
        let unknown = try Ranks.run(
            SeedProcess.executable, ["slurm", "status", "99999999"], extraEnvironment: environment, limit: 60)
        #expect(unknown.status != 0 && unknown.stderr.contains("Slurm does not know job 99999999"), "\(unknown)")

        let submitted = try Ranks.run(
            SeedProcess.executable, ["slurm", "submit", config, "--ranks", "2", "--output", run, "--time", "5"],
            extraEnvironment: environment, limit: 60)
        // Without a running Slurm (scripts/test.sh starts one) nothing below can work: stop at the first failure.
        try #require(submitted.status == 0, "is the local Slurm up (scripts/slurm-local.sh up)? \(submitted)")
        let job = submitted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try #require(!job.isEmpty && job.allSatisfy(\.isNumber), "\(submitted)")
        var states: [String] = []
        let start = Date()
        while Date().timeIntervalSince(start) < 180 {
            let status = try Ranks.run(
                SeedProcess.executable, ["slurm", "status", job], extraEnvironment: environment, limit: 60)
            try #require(status.status == 0, "\(status)")
            let state = status.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            if states.last != state { states.append(state) }
            if ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL"].contains(state) { break }
            usleep(500_000)
        }
        #expect(states.last == "COMPLETED", "states seen: \(states)")
        #expect(FileManager.default.fileExists(atPath: run + "/final/model.safetensors"))
        #expect(try logRecords(run).count == 6)
        let output = try String(contentsOfFile: run + "/slurm-\(job).out", encoding: .utf8)
        #expect(output.contains("rank 0 of 2: final model"), "\(output)")
    }
}
