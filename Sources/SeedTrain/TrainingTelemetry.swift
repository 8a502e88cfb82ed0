import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One rank's liveness file, `directory/ranks/rank-R`: `pid host step unix-seconds`, rewritten after every step.
///
/// When a collective fails, the surviving ranks read their peers' files to say which rank is gone (its process no
/// longer exists, for ranks on the same host) or stuck (alive, but its step stopped advancing), instead of only
/// "a peer did not take part".
final class RankHeartbeat {
    let directory: String
    let rank: Int
    let worldSize: Int
    private let host: String
    private let descriptor: Int32

    init?(directory: String, rank: Int, worldSize: Int) {
        self.directory = directory + "/ranks"
        self.rank = rank
        self.worldSize = worldSize
        host = ProcessInfo.processInfo.hostName
        try? DataFileSystem.createDirectories(self.directory)
        descriptor = open(Self.path(self.directory, rank), O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard descriptor >= 0 else { return nil }
    }

    deinit {
        close(descriptor)
    }

    static func path(_ directory: String, _ rank: Int) -> String { directory + "/rank-\(rank)" }

    /// Records that this rank has completed `step` steps.
    func beat(step: Int) {
        let line = "\(getpid()) \(host) \(step) \(Int(Date().timeIntervalSince1970))\n"
        let bytes = Array(line.utf8)
        _ = ftruncate(descriptor, 0)
        _ = bytes.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
    }

    /// What the other ranks' files say: for each peer, gone, stuck, or last seen when.
    func diagnosePeers() -> String {
        let now = Int(Date().timeIntervalSince1970)
        var notes: [String] = []
        for peer in 0..<worldSize where peer != rank {
            guard let bytes = try? DataFileSystem.readFile(Self.path(directory, peer)) else {
                notes.append("rank \(peer) never reported")
                continue
            }
            let fields = String(decoding: bytes, as: UTF8.self).split(separator: " ").map {
                $0.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            guard fields.count == 4, let pid = Int32(fields[0]), let step = Int(fields[2]), let time = Int(fields[3])
            else {
                notes.append("rank \(peer)'s heartbeat file is unreadable")
                continue
            }
            let age = max(0, now - time)
            if fields[1] == host {
                if kill(pid, 0) != 0 && errno == ESRCH {
                    notes.append("rank \(peer) (pid \(pid)) is gone: it died after step \(step)")
                } else {
                    notes.append(
                        "rank \(peer) (pid \(pid)) is alive but has not finished a step for \(age) s "
                            + "(last: step \(step)): it is hung or much slower")
                }
            } else {
                notes.append("rank \(peer) on \(fields[1]) last finished step \(step) \(age) s ago")
            }
        }
        return notes.joined(separator: "; ")
    }
}

extension Trainer {
    /// Writes `metrics.prom` (Prometheus text format, for node-exporter's textfile collector or a scrape by file):
    /// the step, loss, throughput and, with several ranks, each rank's compute and communication seconds and the
    /// straggler ratio of the last step. Failures are reported, not fatal.
    func writeMetrics(_ record: TrainingStepRecord, stepSeconds: Double) {
        var text = ""
        func metric(_ name: String, _ help: String, _ samples: [(String, Double)]) {
            text += "# HELP \(name) \(help)\n# TYPE \(name) gauge\n"
            for (labels, value) in samples { text += "\(name)\(labels) \(value)\n" }
        }
        metric("seed_train_step", "Optimizer steps completed.", [("", Double(record.step))])
        metric("seed_train_loss", "Training loss of the last step (nats per token).", [("", record.loss)])
        metric(
            "seed_train_tokens_per_second", "Training tokens per second of the last step.",
            [("", record.tokensPerSecond)])
        metric("seed_train_step_seconds", "Wall seconds of the last step on rank 0.", [("", stepSeconds)])
        if let compute = record.rankComputeSeconds, let communication = record.rankCommunicationSeconds {
            metric(
                "seed_train_rank_compute_seconds", "Forward and backward seconds of the last step, per rank.",
                compute.enumerated().map { ("{rank=\"\($0.offset)\"}", $0.element) })
            metric(
                "seed_train_rank_communication_seconds",
                "Seconds blocked on gradient and parameter collectives in the last step, per rank.",
                communication.enumerated().map { ("{rank=\"\($0.offset)\"}", $0.element) })
            metric(
                "seed_train_straggler_ratio", "Slowest rank's compute time over the median rank's.",
                [("", record.stragglerRatio ?? 1)])
            metric(
                "seed_train_straggler_rank", "The rank with the longest compute time.",
                [("", Double(record.stragglerRank ?? 0))])
        }
        do {
            try DataFileSystem.writeAtomically(metricsPath, Array(text.utf8))
        } catch {
            onMessage("warning: cannot write \(metricsPath): \(error.reason)")
        }
    }
}
