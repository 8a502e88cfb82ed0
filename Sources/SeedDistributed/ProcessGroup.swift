import Foundation

/// Finds out how this process was launched and builds the matching collective group.
public enum ProcessGroup {
    /// Default bound on one collective: generous, because the first all-reduce of a training run waits for the
    /// slowest rank to load its model and data. Override with `SEED_COLLECTIVE_TIMEOUT` (seconds).
    public static let defaultTimeout: Duration = .seconds(300)

    /// Environment variable holding the collective timeout in seconds (a positive number).
    public static let timeoutVariable = "SEED_COLLECTIVE_TIMEOUT"

    /// What started this process.
    public enum Launcher: Sendable, Equatable, CustomStringConvertible {
        /// Not launched by an MPI or Slurm launcher (or a single-task Slurm step): one rank, no MPI.
        case none
        /// `mpirun`/`mpiexec` of Open MPI (`OMPI_COMM_WORLD_RANK`, `OMPI_COMM_WORLD_SIZE`).
        case mpirun(rank: Int, worldSize: Int)
        /// `srun --mpi=pmix` under Slurm (`PMIX_RANK` with `SLURM_PROCID`, `SLURM_STEP_NUM_TASKS`).
        case slurm(rank: Int, worldSize: Int)
        /// Another PMIx launcher (`PMIX_RANK` without Open MPI's or Slurm's variables); size known only from MPI.
        case pmix(rank: Int)

        public var description: String {
            switch self {
            case .none: "none"
            case .mpirun(let rank, let size): "mpirun (rank \(rank) of \(size))"
            case .slurm(let rank, let size): "srun (rank \(rank) of \(size))"
            case .pmix(let rank): "PMIx (rank \(rank))"
            }
        }

        /// The world size the launcher announced, when it did.
        public var announcedWorldSize: Int? {
            switch self {
            case .none: 1
            case .mpirun(_, let size), .slurm(_, let size): size
            case .pmix: nil
            }
        }
    }

    /// Reads the launcher from environment variables.
    ///
    /// - `OMPI_COMM_WORLD_RANK`/`OMPI_COMM_WORLD_SIZE` → `mpirun`.
    /// - `SLURM_PROCID` with `SLURM_STEP_NUM_TASKS` (or `SLURM_NTASKS`) above 1 → `srun`; it must also set
    ///   `PMIX_RANK` (`srun --mpi=pmix`), otherwise every task would be a lone MPI singleton: that is an error.
    ///   A Slurm step of one task, or a batch script itself, is `.none`.
    /// - `PMIX_RANK` alone → `.pmix`.
    public static func detectLauncher(environment: [String: String]) throws(DistributedError) -> Launcher {
        if let rankText = environment["OMPI_COMM_WORLD_RANK"] {
            let rank = try integer(rankText, "OMPI_COMM_WORLD_RANK")
            guard let sizeText = environment["OMPI_COMM_WORLD_SIZE"] else {
                throw .launch("OMPI_COMM_WORLD_RANK is set but OMPI_COMM_WORLD_SIZE is not")
            }
            let size = try integer(sizeText, "OMPI_COMM_WORLD_SIZE")
            try check(rank: rank, size: size, "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE")
            return .mpirun(rank: rank, worldSize: size)
        }
        if let procText = environment["SLURM_PROCID"] {
            let rank = try integer(procText, "SLURM_PROCID")
            let sizeName = environment["SLURM_STEP_NUM_TASKS"] != nil ? "SLURM_STEP_NUM_TASKS" : "SLURM_NTASKS"
            var size = 1
            if let sizeText = environment[sizeName] { size = try integer(sizeText, sizeName) }
            try check(rank: rank, size: size, "SLURM_PROCID", sizeName)
            // A batch script runs once however many tasks the job has: it is not a rank.
            if size == 1 || environment["SLURM_STEP_ID"] == "batch" || environment["SLURM_STEPID"] == "batch" {
                return .none
            }
            guard environment["PMIX_RANK"] != nil else {
                throw .launch(
                    "srun started \(size) tasks without PMIx, so MPI cannot connect them: launch with "
                        + "`srun --mpi=pmix` (Debian's Open MPI supports only PMIx under Slurm)")
            }
            return .slurm(rank: rank, worldSize: size)
        }
        if let pmixText = environment["PMIX_RANK"] {
            return .pmix(rank: try integer(pmixText, "PMIX_RANK"))
        }
        return .none
    }

    /// The collective timeout from `SEED_COLLECTIVE_TIMEOUT` (seconds), or `defaultTimeout` when unset.
    public static func timeout(environment: [String: String]) throws(DistributedError) -> Duration {
        guard let text = environment[timeoutVariable] else { return defaultTimeout }
        guard let seconds = Double(text.trimmingSpaces), seconds.isFinite, seconds > 0, seconds < 1e9 else {
            throw .launch("\(timeoutVariable)=\(text) is not a positive number of seconds")
        }
        return .nanoseconds(Int64(seconds * 1e9))
    }

    /// The group this process belongs to: `MPICollective.world()` when a launcher started several ranks (MPI is
    /// initialised here), otherwise a `SingleProcessCollective` (no MPI needed).
    ///
    /// Throws `DistributedError.launch` for inconsistent variables, srun without PMIx, or an MPI world whose size
    /// differs from what the launcher announced.
    public static func fromEnvironment(
        _ environment: [String: String]? = nil, timeout: Duration? = nil
    ) throws(DistributedError) -> any Collective {
        let environment = environment ?? ProcessInfo.processInfo.environment
        let launcher = try detectLauncher(environment: environment)
        var resolvedTimeout = timeout ?? Self.defaultTimeout
        if timeout == nil { resolvedTimeout = try Self.timeout(environment: environment) }
        let timeout = resolvedTimeout
        if case .none = launcher { return SingleProcessCollective(timeout: timeout) }
        let group = try MPICollective.world(timeout: timeout)
        if let announced = launcher.announcedWorldSize, announced != group.worldSize {
            throw .launch(
                "the launcher (\(launcher)) announced \(announced) ranks but MPI sees a world of \(group.worldSize)")
        }
        return group
    }

    private static func integer(_ text: String, _ name: String) throws(DistributedError) -> Int {
        guard let value = Int(text.trimmingSpaces), value >= 0 else {
            throw .launch("\(name)=\(text) is not a non-negative integer")
        }
        return value
    }

    private static func check(rank: Int, size: Int, _ rankName: String, _ sizeName: String) throws(DistributedError) {
        guard size >= 1 else { throw .launch("\(sizeName)=\(size): a job needs at least one rank") }
        guard rank < size else { throw .launch("\(rankName)=\(rank) is not below \(sizeName)=\(size)") }
    }
}

extension String {
    fileprivate var trimmingSpaces: Substring {
        var slice = self[...]
        while slice.first == " " { slice.removeFirst() }
        while slice.last == " " { slice.removeLast() }
        return slice
    }
}
