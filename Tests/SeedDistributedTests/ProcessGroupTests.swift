import SeedDistributed
import Testing

@Suite struct ProcessGroupTests {
    typealias Launcher = ProcessGroup.Launcher

    @Test func noLauncherVariablesMeanOneRankWithoutMPI() throws {
        #expect(try ProcessGroup.detectLauncher(environment: [:]) == .none)
        let group = try ProcessGroup.fromEnvironment(["HOME": "/root"])
        #expect(group is SingleProcessCollective)
        #expect(group.rank == 0 && group.worldSize == 1)
        #expect(group.timeout == ProcessGroup.defaultTimeout)
    }

    @Test func mpirunVariablesAreRead() throws {
        let environment = ["OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "4", "PMIX_RANK": "1"]
        #expect(try ProcessGroup.detectLauncher(environment: environment) == .mpirun(rank: 1, worldSize: 4))
    }

    @Test func srunWithPMIxIsASlurmLaunch() throws {
        let environment = ["SLURM_PROCID": "1", "SLURM_STEP_NUM_TASKS": "2", "SLURM_NTASKS": "8", "PMIX_RANK": "1"]
        #expect(try ProcessGroup.detectLauncher(environment: environment) == .slurm(rank: 1, worldSize: 2))
        #expect(try ProcessGroup.detectLauncher(environment: ["PMIX_RANK": "3"]) == .pmix(rank: 3))
    }

    @Test func aSingleSlurmTaskOrABatchScriptIsOneRank() throws {
        #expect(try ProcessGroup.detectLauncher(environment: ["SLURM_PROCID": "0", "SLURM_NTASKS": "1"]) == .none)
        let batch = ["SLURM_PROCID": "0", "SLURM_NTASKS": "4", "SLURM_STEP_ID": "batch"]
        #expect(try ProcessGroup.detectLauncher(environment: batch) == .none)
    }

    @Test func srunWithoutPMIxIsRefusedWithTheFix() throws {
        let error = #expect(throws: DistributedError.self) {
            try ProcessGroup.detectLauncher(environment: ["SLURM_PROCID": "0", "SLURM_STEP_NUM_TASKS": "2"])
        }
        #expect(error?.description.contains("srun --mpi=pmix") == true, "\(String(describing: error))")
    }

    @Test(arguments: [
        (
            ["OMPI_COMM_WORLD_RANK": "x", "OMPI_COMM_WORLD_SIZE": "2"],
            "OMPI_COMM_WORLD_RANK=x is not a non-negative integer"
        ),
        (["OMPI_COMM_WORLD_RANK": "-1", "OMPI_COMM_WORLD_SIZE": "2"], "OMPI_COMM_WORLD_RANK=-1 is not a non-negative"),
        (
            ["OMPI_COMM_WORLD_RANK": "2", "OMPI_COMM_WORLD_SIZE": "2"],
            "OMPI_COMM_WORLD_RANK=2 is not below OMPI_COMM_WORLD_SIZE=2"
        ),
        (["OMPI_COMM_WORLD_RANK": "0"], "OMPI_COMM_WORLD_SIZE is not"),
        (["OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "0"], "at least one rank"),
        (["SLURM_PROCID": "5", "SLURM_STEP_NUM_TASKS": "2", "PMIX_RANK": "5"], "SLURM_PROCID=5 is not below"),
        (["SLURM_PROCID": "0", "SLURM_NTASKS": "two"], "SLURM_NTASKS=two"),
        (["PMIX_RANK": "r"], "PMIX_RANK=r"),
    ])
    func inconsistentLauncherVariablesAreNamedInTheError(environment: [String: String], message: String) {
        let error = #expect(throws: DistributedError.self) { try ProcessGroup.detectLauncher(environment: environment) }
        #expect(error?.description.contains(message) == true, "\(String(describing: error))")
    }

    @Test func timeoutComesFromTheEnvironment() throws {
        #expect(try ProcessGroup.timeout(environment: [:]) == ProcessGroup.defaultTimeout)
        #expect(try ProcessGroup.timeout(environment: ["SEED_COLLECTIVE_TIMEOUT": "2.5"]) == .milliseconds(2500))
        #expect(try ProcessGroup.fromEnvironment(["SEED_COLLECTIVE_TIMEOUT": "7"]).timeout == .seconds(7))
        #expect(try ProcessGroup.fromEnvironment([:], timeout: .seconds(3)).timeout == .seconds(3))
        for bad in ["0", "-1", "abc", "inf", "nan", ""] {
            let error = #expect(throws: DistributedError.self, "\(bad)") {
                try ProcessGroup.timeout(environment: ["SEED_COLLECTIVE_TIMEOUT": bad])
            }
            #expect(error?.description.contains("SEED_COLLECTIVE_TIMEOUT=\(bad) is not a positive number") == true)
        }
    }
}
