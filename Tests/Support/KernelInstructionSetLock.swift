import Foundation
import Synchronization

/// Serialises the tests that switch the integer kernels' instruction set (a process-wide setting, see
/// `KernelInstructionSet.use`) with the tests whose assertions need one instruction set from start to end, such as
/// bit-for-bit comparisons of two runs of the model: the vector implementations agree with each other only within
/// rounding, so a switch in the middle of such a test would fail it.
///
/// Waiting polls and blocks the calling thread: hold it only in synchronous tests (an async test holding it across
/// awaits can deadlock the cooperative pool while synchronous tests wait for it).
public enum KernelInstructionSetLock {
    private static let held = Mutex(false)

    /// Waits until the lock is free and takes it.
    public static func acquire() {
        while !held.withLock({ taken in
            if taken { return false }
            taken = true
            return true
        }) {
            usleep(1000)
        }
    }

    /// Frees the lock taken by ``acquire()``.
    public static func release() {
        held.withLock { $0 = false }
    }

    /// Runs `body` holding the lock.
    public static func withLock<T>(_ body: () throws -> T) rethrows -> T {
        acquire()
        defer { release() }
        return try body()
    }
}
