import Foundation

/// A child process (a code node, pip, the bubblewrap probe) whose exit is pushed to its supervisor, never polled.
///
/// A thin layer over Foundation's `Process`, which already watches its children without polling: the child inherits
/// one end of a socket pair, and when that end closes Foundation's monitor thread reaps it with `waitpid` and calls
/// `terminationHandler`. Here that handler marks an `AsyncLatch` (for tasks, with a time limit) and signals a
/// semaphore (for the one thread that may block on `waitUntilExit()`). Foundation's own `waitUntilExit` spins a run
/// loop every 50 ms, and `isRunning` invites polling, so neither is used.
///
/// The exit is observed when every process holding that socket end has closed it: under `bwrap`, the program it
/// runs too (and any child of the program that kept it), which is also when the program's connection is gone.
package final class ChildProcess: Sendable {
    /// The process; configure it before `run()`, and do not set its `terminationHandler`.
    package let process: Process
    private let exited = AsyncLatch()
    private let exitedForThread = DispatchSemaphore(value: 0)

    package init(_ process: Process) {
        self.process = process
        process.terminationHandler = { [exited, exitedForThread] _ in
            exited.set()
            exitedForThread.signal()
        }
    }

    /// Starts the process.
    package func run() throws { try process.run() }

    /// The process ID (of `bwrap` when the program runs in a mount namespace).
    package var processIdentifier: Int32 { process.processIdentifier }

    /// Whether the process has exited (and was reaped): its status can be read.
    package var hasExited: Bool { exited.isSet }

    /// Waits until the process exited.
    package func waitForExit() async { await exited.wait() }

    /// Waits until the process exited or `limit` passed. Returns whether it exited.
    package func waitForExit(upTo limit: Duration) async -> Bool { await exited.wait(upTo: limit) }

    /// Blocks the calling thread until the process exited: for code that runs on a thread of its own (Python
    /// environments are prepared on dedicated threads), never on the cooperative pool.
    package func waitUntilExit() {
        exitedForThread.wait()
        exitedForThread.signal()  // a later call returns at once
    }

    /// The exit status, or the signal that killed it; only once it exited.
    package var terminationStatus: Int32 { process.terminationStatus }

    /// Whether it exited or was killed by a signal; only once it exited.
    package var terminationReason: Process.TerminationReason { process.terminationReason }
}
