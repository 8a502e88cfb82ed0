import Foundation
import Testing

@testable import SeedTrain

/// The liveness files ranks write (`RUN/ranks/rank-R`) and what a rank whose collective failed says about its peers.
@Suite("Rank heartbeat")
struct RankHeartbeatTests {
    private func runDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("seed-heartbeat-\(UInt64.random(in: 0...UInt64.max))").path
        try FileManager.default.createDirectory(atPath: path + "/ranks", withIntermediateDirectories: true)
        return path
    }

    /// Writes rank `rank`'s file as a peer would have.
    private func writePeer(
        _ directory: String, rank: Int, pid: Int32, host: String, step: Int, stepAge: Double, refreshAge: Double,
        phase: String
    ) throws {
        let now = Date().timeIntervalSince1970
        let line =
            "\(pid) \(host) \(step) \(String(format: "%.3f", now - stepAge)) "
            + "\(String(format: "%.3f", now - refreshAge)) \(phase)\n"
        try line.write(toFile: directory + "/ranks/rank-\(rank)", atomically: true, encoding: .utf8)
    }

    @Test func theFileIsRefreshedWhileTheRankIsBlockedAndCarriesStepAndPhase() throws {
        let directory = try runDirectory()
        let heartbeat = try #require(RankHeartbeat(directory: directory, rank: 0, worldSize: 2))
        heartbeat.beat(step: 7)
        heartbeat.enter(.waiting)
        let first = try #require(
            RankHeartbeat.PeerState(try String(contentsOfFile: directory + "/ranks/rank-0", encoding: .utf8)))
        #expect(first.pid == getpid() && first.step == 7 && first.phase == .waiting)
        // No beat for a while (as when blocked in a collective): the background thread keeps the refresh time fresh.
        Thread.sleep(forTimeInterval: 3 * RankHeartbeat.refreshInterval)
        let later = try #require(
            RankHeartbeat.PeerState(try String(contentsOfFile: directory + "/ranks/rank-0", encoding: .utf8)))
        #expect(later.step == 7 && later.stepTime == first.stepTime)
        #expect(later.refreshTime > first.refreshTime)
        #expect(Date().timeIntervalSince1970 - later.refreshTime < RankHeartbeat.staleAfter)
    }

    @Test func eachPeerStateGetsItsOwnDiagnosis() throws {
        let directory = try runDirectory()
        let heartbeat = try #require(RankHeartbeat(directory: directory, rank: 0, worldSize: 7))
        heartbeat.beat(step: 5)
        let host = ProcessInfo.processInfo.hostName
        // A pid that cannot exist (above the kernel's pid_max limit of 2^22).
        let deadPID: Int32 = 9_999_999
        try writePeer(
            directory, rank: 1, pid: deadPID, host: host, step: 4, stepAge: 9, refreshAge: 9, phase: "waiting")
        try writePeer(
            directory, rank: 2, pid: getpid(), host: host, step: 5, stepAge: 30, refreshAge: 20, phase: "waiting")
        try writePeer(
            directory, rank: 3, pid: 42, host: "node-b", step: 5, stepAge: 6, refreshAge: 0.2, phase: "waiting")
        try writePeer(
            directory, rank: 4, pid: 43, host: "node-c", step: 5, stepAge: 6, refreshAge: 0.1, phase: "failed")
        try writePeer(
            directory, rank: 5, pid: 44, host: "node-d", step: 4, stepAge: 12, refreshAge: 0.3, phase: "computing")
        try "garbage\n".write(toFile: directory + "/ranks/rank-6", atomically: true, encoding: .utf8)
        let notes = heartbeat.diagnosePeers().components(separatedBy: "; ")
        #expect(notes.count == 6, "\(notes)")
        #expect(notes[0] == "rank 1 (pid \(deadPID)) is gone: it died after step 4")
        #expect(notes[1].hasPrefix("rank 2 (pid \(getpid())) is alive but has not finished a step for 30 s"))
        #expect(notes[1].contains("stopped beating 20 s ago (last: step 5): it is hung, stopped or dead"))
        #expect(
            notes[2].hasPrefix(
                "rank 3 (pid 42 on node-b) is running and waiting in a collective of step 6 too, so the ranks do not "
                    + "hear each other: the network between \(host) and node-b is down or blocked"))
        #expect(notes[3].hasPrefix("rank 4 (pid 43 on node-c) gave up on a collective of step 6 too"))
        #expect(
            notes[4]
                == "rank 5 (pid 44 on node-d) is running but has not finished a step for 12 s (last: step 4, now "
                + "computing): it is much slower than this rank")
        #expect(notes[5] == "rank 6's heartbeat file is unreadable")
    }

    @Test func aMissingPeerFileSaysTheRankNeverReported() throws {
        let directory = try runDirectory()
        let heartbeat = try #require(RankHeartbeat(directory: directory, rank: 1, worldSize: 2))
        #expect(heartbeat.diagnosePeers() == "rank 0 never reported")
    }
}
