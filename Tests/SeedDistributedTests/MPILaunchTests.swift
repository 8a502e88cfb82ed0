import Foundation
import Testing

/// Seed's collectives over real Open MPI: `mpirun` starts `seed-mpi-selftest` on several ranks.
@Suite(.serialized) struct MPILaunchTests {
    @Test func twoRanksComputeEveryCollectiveCorrectly() throws {
        let result = try Launch.run(
            try Launch.mpirun(),
            Launch.mpirunFlags + ["-np", "2", Launch.selfTest, "--timeout", "60", "--large-count", "1000003"],
            limit: 120)
        Launch.expectAllChecksPassed(result, worldSize: 2, launcher: "mpirun")
    }

    @Test(arguments: [3, 4])
    func moreRanksThanCoresHandleUnevenShards(worldSize: Int) throws {
        let result = try Launch.run(
            try Launch.mpirun(),
            Launch.mpirunFlags + [
                "-np", "\(worldSize)", Launch.selfTest, "--timeout", "60", "--large-count", "100003",
            ],
            limit: 180)
        Launch.expectAllChecksPassed(result, worldSize: worldSize, launcher: "mpirun")
        // 1001 elements over 3 ranks: 334, 334, 333; over 4: 251, 250, 250, 250.
        let lastShard = worldSize == 3 ? 333 : 250
        let last = "rank \(worldSize - 1) of \(worldSize)"
        #expect(
            result.lines(startingWith: "\(last): reduce-scatter sum Float x1001 (shard \(lastShard)): ok").count == 1)
    }

    @Test func aHungRankMakesTheOthersFailWithinTheTimeout() throws {
        let result = try Launch.run(
            try Launch.mpirun(), Launch.mpirunFlags + ["-np", "2", Launch.selfTest, "hang", "--timeout", "3"],
            limit: 60)
        // The selftest aborts the job with MPI_Abort(3) after the timeout; mpirun returns that code.
        #expect(result.status == 3 && !result.killed, "\(result)")
        #expect(
            result.stderr.contains(
                "rank 0 of 2: error: all-reduce (sum) of 1024 Float timed out after 3 s on rank 0 of 2"),
            "\(result)")
        #expect(result.seconds >= 3 && result.seconds < 40, "\(result)")
    }

    @Test func aRankThatExitsEarlyEndsTheJobWithAClearError() throws {
        // mpirun itself ends the job when a rank exits non-zero, naming the rank and its exit code.
        let result = try Launch.run(
            try Launch.mpirun(), Launch.mpirunFlags + ["-np", "2", Launch.selfTest, "exit-early", "--timeout", "30"],
            limit: 60)
        #expect(result.status != 0 && !result.killed, "\(result)")
        #expect(result.stdout.contains("rank 1 of 2: exiting early with status 7"), "\(result)")
        #expect(result.stderr.contains("exited with non-zero status"), "\(result)")
        #expect(result.stderr.contains("Exit code:    7"), "\(result)")
        #expect(result.seconds < 30, "\(result)")
    }

    @Test func aRankThatExitsEarlyIsCaughtByTheTimeoutWhenTheLauncherKeepsTheOthersRunning() throws {
        // Like srun's default, keep the surviving rank running: Seed's own timeout must end it.
        let result = try Launch.run(
            try Launch.mpirun(),
            Launch.mpirunFlags + [
                "--mca", "orte_abort_on_non_zero_status", "0", "-np", "2", Launch.selfTest, "exit-early",
                "--timeout", "3",
            ],
            limit: 60)
        #expect(result.status != 0 && !result.killed, "\(result)")
        #expect(
            result.stderr.contains("all-reduce (sum) of 1024 Float timed out after 3 s on rank 0 of 2"), "\(result)")
        #expect(result.seconds >= 3 && result.seconds < 40, "\(result)")
    }

    @Test func withoutALauncherTheSelftestSaysHowToRunIt() throws {
        let result = try Launch.run(Launch.selfTest, ["--timeout", "5"], limit: 30)
        #expect(result.status != 0, "\(result)")
        #expect(result.stderr.contains("run under a launcher with at least 2 ranks"), "\(result)")
    }

    @Test(arguments: [
        (["--timeout", "0"], "--timeout must be a positive number of seconds"),
        (["--timeout", "soon"], "--timeout"),
        (["bench", "--min-mib", "8", "--max-mib", "4"], "need 1 <= --min-mib <= --max-mib <= 4096"),
        (["scatter"], "Unexpected argument 'scatter'"),
    ])
    func badArgumentsAreRefused(arguments: [String], message: String) throws {
        let result = try Launch.run(Launch.selfTest, arguments, limit: 30)
        #expect(result.status != 0, "\(result)")
        #expect(result.stderr.contains(message), "\(result)")
    }
}
