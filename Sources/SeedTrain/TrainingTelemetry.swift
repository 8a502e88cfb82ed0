import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One rank's liveness file, `directory/ranks/rank-R`: `pid host step step-time refresh-time phase`, where `step` is
/// the number of finished steps, `step-time` when the last one finished, `refresh-time` when a background thread
/// last rewrote the file (every ``refreshInterval`` seconds while the process runs), and `phase` is `computing` or
/// `waiting` (inside a collective) or `failed` (a collective failed here). Times are Unix seconds with milliseconds.
///
/// When a collective fails, the surviving ranks read their peers' files to say which rank is gone (its process no
/// longer exists, for ranks on the same host), stuck (its refreshes stopped: hung or stopped), slower (running and
/// computing), or unreachable (running and waiting in a collective too, so the ranks do not hear each other),
/// instead of only "a peer did not take part". Across hosts this needs the run directory on a shared file system
/// and clocks that agree to about a second.
final class RankHeartbeat {
    /// Seconds between the background rewrites of the file.
    static let refreshInterval = 0.5
    /// A file not rewritten for this long belongs to a process that is stopped, hung in the kernel, or dead.
    static let staleAfter = 4 * refreshInterval

    enum Phase: String, Sendable {
        case computing
        /// Inside a collective.
        case waiting
        /// A collective failed on this rank (it timed out or the group broke); the process is about to exit.
        case failed
    }

    /// The file and what it says; shared with the refresh thread.
    private final class Shared: Sendable {
        struct State {
            var step = 0
            var stepTime = 0.0
            var phase = Phase.computing
            var stopped = false
        }
        let descriptor: Int32
        let host: String
        let state = Mutex<State>(State())

        init(descriptor: Int32, host: String) {
            self.descriptor = descriptor
            self.host = host
        }

        deinit { close(descriptor) }

        /// Rewrites the file from the current state; returns false once the owner has gone.
        @discardableResult
        func write() -> Bool {
            let snapshot = state.withLock { $0 }
            guard !snapshot.stopped else { return false }
            let now = Date().timeIntervalSince1970
            let line =
                "\(getpid()) \(host) \(snapshot.step) \(RankHeartbeat.seconds(snapshot.stepTime)) "
                + "\(RankHeartbeat.seconds(now)) \(snapshot.phase.rawValue)\n"
            let bytes = Array(line.utf8)
            _ = ftruncate(descriptor, 0)
            _ = bytes.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
            return true
        }
    }

    let directory: String
    let rank: Int
    let worldSize: Int
    private let shared: Shared

    init?(directory: String, rank: Int, worldSize: Int) {
        self.directory = directory + "/ranks"
        self.rank = rank
        self.worldSize = worldSize
        try? DataFileSystem.createDirectories(self.directory)
        let descriptor = open(Self.path(self.directory, rank), O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard descriptor >= 0 else { return nil }
        let shared = Shared(descriptor: descriptor, host: ProcessInfo.processInfo.hostName)
        self.shared = shared
        shared.state.withLock { $0.stepTime = Date().timeIntervalSince1970 }
        shared.write()
        // A plain thread, not the cooperative pool: it must keep beating while the training thread is blocked.
        let thread = Thread {
            while shared.write() {
                Thread.sleep(forTimeInterval: Self.refreshInterval)
            }
        }
        thread.name = "seed-heartbeat"
        thread.start()
    }

    deinit {
        shared.state.withLock { $0.stopped = true }
    }

    static func path(_ directory: String, _ rank: Int) -> String { directory + "/rank-\(rank)" }

    static func seconds(_ time: Double) -> String { String(format: "%.3f", time) }

    /// Records that this rank has completed `step` steps.
    func beat(step: Int) {
        shared.state.withLock {
            $0.step = step
            $0.stepTime = Date().timeIntervalSince1970
        }
        shared.write()
    }

    /// Records whether this rank is inside a collective (`waiting`) or computing.
    func enter(_ phase: Phase) {
        shared.state.withLock { $0.phase = phase }
        shared.write()
    }

    /// One peer's file, parsed.
    struct PeerState {
        var pid: Int32
        var host: String
        var step: Int
        var stepTime: Double
        var refreshTime: Double
        var phase: Phase

        init?(_ text: String) {
            let fields = text.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
            guard fields.count == 6, let pid = Int32(fields[0]), let step = Int(fields[2]),
                let stepTime = Double(fields[3]), let refreshTime = Double(fields[4]),
                let phase = Phase(rawValue: fields[5])
            else { return nil }
            self.pid = pid
            host = fields[1]
            self.step = step
            self.stepTime = stepTime
            self.refreshTime = refreshTime
            self.phase = phase
        }
    }

    /// What the other ranks' files say: for each peer, gone, stuck, slower, or unreachable.
    func diagnosePeers() -> String {
        let now = Date().timeIntervalSince1970
        let host = shared.host
        let ownStep = shared.state.withLock { $0.step }
        var notes: [String] = []
        for peer in 0..<worldSize where peer != rank {
            guard let bytes = try? DataFileSystem.readFile(Self.path(directory, peer)) else {
                notes.append("rank \(peer) never reported")
                continue
            }
            guard let state = PeerState(String(decoding: bytes, as: UTF8.self)) else {
                notes.append("rank \(peer)'s heartbeat file is unreadable")
                continue
            }
            let stepAge = Int(max(0, now - state.stepTime).rounded())
            let refreshAge = max(0, now - state.refreshTime)
            let sameHost = state.host == host
            let who = sameHost ? "rank \(peer) (pid \(state.pid))" : "rank \(peer) (pid \(state.pid) on \(state.host))"
            if sameHost && kill(state.pid, 0) != 0 && errno == ESRCH {
                notes.append("\(who) is gone: it died after step \(state.step)")
            } else if refreshAge > Self.staleAfter {
                let alive = sameHost ? "is alive but " : ""
                notes.append(
                    "\(who) \(alive)has not finished a step for \(stepAge) s and stopped beating "
                        + "\(Int(refreshAge.rounded())) s ago (last: step \(state.step)): it is hung, stopped or dead")
            } else if state.phase != .computing && state.step >= ownStep {
                let doing = state.phase == .waiting ? "is running and waiting in" : "gave up on"
                notes.append(
                    "\(who) \(doing) a collective of step \(state.step + 1) too, so the ranks do "
                        + "not hear each other: the network between \(host) and \(state.host) is down or blocked "
                        + "(check the interfaces given to btl_tcp_if_include), or the ranks called different "
                        + "collectives")
            } else {
                notes.append(
                    "\(who) is running but has not finished a step for \(stepAge) s (last: step \(state.step), "
                        + "now \(state.phase.rawValue)): it is much slower than this rank")
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
