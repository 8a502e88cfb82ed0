import Foundation
import Testing

/// Seed's collectives under Slurm: `srun --mpi=pmix` starts `seed-mpi-selftest` on the single-node cluster that
/// scripts/slurm-local.sh runs (scripts/test.sh starts it before the tests).
@Suite(.serialized) struct SlurmLaunchTests {
    private func srun(_ arguments: [String], limit: Double = 120) throws -> LaunchResult {
        try Launch.run(
            try Launch.srun(), ["--time=5"] + arguments, extraEnvironment: ["SLURM_CONF": Launch.slurmConf],
            limit: limit)
    }

    @Test func twoRanksUnderSrunComputeEveryCollectiveCorrectly() throws {
        let result = try srun([
            "--mpi=pmix", "-n", "2", Launch.selfTest, "--timeout", "60", "--large-count", "1000003",
        ])
        Launch.expectAllChecksPassed(result, worldSize: 2, launcher: "srun")
    }

    @Test func srunWithoutPMIxIsRefusedWithTheFix() throws {
        let result = try srun(["--mpi=none", "-n", "2", Launch.selfTest, "--timeout", "10"], limit: 60)
        #expect(result.status != 0 && !result.killed, "\(result)")
        #expect(result.stderr.contains("srun started 2 tasks without PMIx"), "\(result)")
        #expect(result.stderr.contains("launch with `srun --mpi=pmix`"), "\(result)")
    }

    @Test func aHungRankUnderSrunMakesTheOthersFailWithinTheTimeout() throws {
        let result = try srun(["--mpi=pmix", "-n", "2", Launch.selfTest, "hang", "--timeout", "3"], limit: 90)
        #expect(result.status != 0 && !result.killed, "\(result)")
        #expect(
            result.stderr.contains("all-reduce (sum) of 1024 Float timed out after 3 s on rank 0 of 2"), "\(result)")
        #expect(result.stdout.contains("rank 0 of 2: detected after 3."), "\(result)")
    }

    @Test func aRankThatExitsEarlyUnderSrunEndsTheStep() throws {
        let result = try srun(["--mpi=pmix", "-n", "2", Launch.selfTest, "exit-early", "--timeout", "30"], limit: 90)
        #expect(result.status != 0 && !result.killed, "\(result)")
        #expect(result.stderr.contains("task 1: Exited with exit code 7"), "\(result)")
        // Either Slurm ends the surviving rank at once or its all-reduce times out; it never hangs.
        #expect(result.seconds < 60, "\(result)")
    }
}
