import Foundation
import Testing
import VantageCore

@testable import VantageRuntime

@Suite("Child processes: exits are pushed, not polled")
struct ChildProcessTests {
    static func start(_ script: String) throws -> ChildProcess {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script]
        let child = ChildProcess(process)
        try child.run()
        return child
    }

    @Test("a wait with a time limit returns at the exit, or when the time is up, with the exit status")
    func waitWithLimit() async throws {
        let quick = try Self.start("exit 3")
        let started = ContinuousClock.now
        #expect(await quick.waitForExit(upTo: .seconds(10)))
        #expect(ContinuousClock.now - started < .seconds(5), "the exit ends the wait, not the limit")
        #expect(quick.hasExited)
        #expect(quick.terminationStatus == 3)
        #expect(quick.terminationReason == .exit)

        let slow = try Self.start("exec sleep 30")
        #expect(await !slow.waitForExit(upTo: .milliseconds(200)))
        #expect(!slow.hasExited)
        kill(slow.processIdentifier, SIGKILL)
        await slow.waitForExit()
        #expect(slow.terminationReason == .uncaughtSignal)
        #expect(slow.terminationStatus == SIGKILL)
    }

    @Test("a cancelled supervisor still gives its child the whole grace period")
    func graceSurvivesCancellation() async throws {
        let child = try Self.start("exec sleep 30")
        defer { kill(child.processIdentifier, SIGKILL) }
        let waiting = Task { () -> (Bool, Duration) in
            let started = ContinuousClock.now
            let exited = await child.waitForExit(upTo: .milliseconds(500))
            return (exited, ContinuousClock.now - started)
        }
        waiting.cancel()
        let (exited, waited) = await waiting.value
        #expect(!exited)
        #expect(waited >= .milliseconds(450))
    }

    @Test("a thread can block until the exit; the latch wakes every waiter once")
    func blockingWaitAndLatch() async throws {
        let child = try Self.start("sleep 0.2")
        child.waitUntilExit()
        #expect(child.hasExited)
        child.waitUntilExit()  // a second wait returns at once

        let latch = AsyncLatch()
        async let first = latch.wait(upTo: .seconds(10))
        async let second = latch.wait(upTo: .seconds(10))
        try await Task.sleep(for: .milliseconds(50))
        latch.set()
        latch.set()
        #expect(await first)
        #expect(await second)
        #expect(await latch.wait(upTo: .milliseconds(1)), "a wait after the event returns at once")
    }
}
