/// Errors of the collective layer: bad arguments, ranks that disagree, timeouts, MPI failures, bad launchers.
public enum DistributedError: Error, Equatable, CustomStringConvertible {
    /// `operation` did not complete within `seconds` on `rank`: a peer rank died, hung, or never called it.
    case timedOut(operation: CollectiveOperation, rank: Int, worldSize: Int, seconds: Double)
    /// An earlier failure (a timeout, a mismatch, an MPI error) left the group unusable; `reason` describes it.
    case groupFailed(rank: Int, reason: String)
    /// The arguments are wrong on this rank (buffer sizes, root out of range, counts too large for MPI).
    case invalidArgument(String)
    /// The ranks called different collectives, or the same one with different counts, types or roots.
    case mismatchedCollective(String)
    /// An MPI call returned an error code.
    case mpi(call: String, code: Int32, message: String)
    /// The launch environment is inconsistent (bad rank or size variables, srun without PMIx, MPI unusable).
    case launch(String)
    /// The group was shut down (MPI finalized) before this call.
    case shutDown

    public var description: String {
        switch self {
        case .timedOut(let operation, let rank, let worldSize, let seconds):
            return "\(operation) timed out after \(Self.format(seconds)) s on rank \(rank) of \(worldSize): "
                + "a peer rank did not take part (it may have died, hung, or called a different collective)"
        case .groupFailed(let rank, let reason):
            return "the process group is unusable on rank \(rank) after an earlier failure: \(reason)"
        case .invalidArgument(let message): return "invalid collective argument: \(message)"
        case .mismatchedCollective(let message): return "ranks disagree on the collective: \(message)"
        case .mpi(let call, let code, let message): return "\(call) failed with MPI error \(code): \(message)"
        case .launch(let message): return "distributed launch: \(message)"
        case .shutDown: return "the process group was shut down (MPI finalized); no more collectives can run"
        }
    }

    static func format(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? String(Int(seconds)) : String((seconds * 1000).rounded() / 1000)
    }
}
