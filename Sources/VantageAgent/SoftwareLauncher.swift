import Dispatch
import Foundation
import VantageAPI
import VantageCore

/// The first thing `vantage agent` does: decide which release runs. The installed binary (the unit's ExecStart)
/// is always the entry point. With no release selected in `DATA/software/state.json` it runs the agent itself;
/// with one, it runs that release's `bin/vantage` with the same arguments as a child (marked by
/// `VANTAGE_AGENT_LAUNCHED`, so it does not launch again) and watches it: a release on trial that exits before it is
/// healthy is started again up to its `maxStarts`, and one that is not healthy by its deadline (it hangs, or cannot
/// connect) is stopped; either way the previous release is selected again and the outcome saved for the server.
/// The watcher is the old, proven binary, because a hung new version rolls nothing back.
public enum SoftwareLauncher {
    /// Set in a launched release's environment: it runs the agent rather than launch again.
    public static let launchedVariable = "VANTAGE_AGENT_LAUNCHED"
    /// The launched release's version, which its heartbeats report.
    public static let versionVariable = "VANTAGE_RELEASE_VERSION"
    /// The exit status by which a launched agent asks to be started again: another release is selected.
    public static let switchStatus: Int32 = 75

    /// What the caller does next.
    public enum Outcome: Sendable, Equatable {
        /// Run the agent in this process; `version` is the release's when a launcher started this process.
        case run(version: String?)
        /// The launched agent ended for good (stopped, or failed outside a trial): exit with this status.
        case exit(Int32)
    }

    /// Decides, launches and watches, as described above; returns when this process must run the agent or exit.
    public static func launch(
        dataDirectory: URL, arguments: [String] = CommandLine.arguments,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) async -> Outcome {
        if environment[launchedVariable] != nil { return .run(version: environment[versionVariable]) }
        while true {
            let state: SoftwareState
            do {
                state = try SoftwareState.load(from: dataDirectory)
            } catch {
                say("\(error); running the installed version")
                return .run(version: nil)
            }
            switch state.decide(now: Date(), executable: { SoftwareState.executable(of: $0, in: dataDirectory) }) {
            case .runInstalled:
                return .run(version: nil)
            case .rollBack(let previous, let reason):
                say(reason)
                // The failed release's files go; its digest stays refused in the state.
                if let failed = state.trial?.version, failed != previous {
                    try? FileManager.default.removeItem(
                        at: SoftwareState.folder(in: dataDirectory).appending(path: failed))
                }
                do {
                    try state.rolledBack(to: previous, reason: reason).save(in: dataDirectory)
                } catch {
                    say("cannot save the rollback (\(error)); running the installed version")
                    return .run(version: nil)
                }
            case .runRelease(let version, let executable):
                var state = state
                let onTrial = state.trial?.version == version
                if onTrial {
                    state.trial?.starts += 1
                    do { try state.save(in: dataDirectory) } catch {
                        say("cannot save the trial's start (\(error)); running the installed version")
                        return .run(version: nil)
                    }
                }
                say("running release \(version)\(onTrial ? " on trial (start \(state.trial?.starts ?? 0))" : "")")
                var childEnvironment = environment
                childEnvironment[launchedVariable] = "1"
                childEnvironment[versionVariable] = version
                let ended = await run(
                    executable, withoutEnrollment(Array(arguments.dropFirst())), environment: childEnvironment,
                    trial: onTrial ? version : nil, dataDirectory: dataDirectory)
                switch ended {
                case .stopped(let status):
                    return .exit(status)
                case .switchRequested:
                    continue
                case .deadlinePassed:
                    continue
                case .failed(let how):
                    var now = (try? SoftwareState.load(from: dataDirectory)) ?? state
                    if now.trial?.version == version {
                        now.trial?.lastExit = how
                        try? now.save(in: dataDirectory)
                        continue
                    }
                    say("release \(version) \(how)")
                    return .exit(1)
                }
            }
        }
    }

    /// How a launched release ended.
    enum Ending: Equatable {
        /// This process was asked to stop (SIGTERM, SIGINT), passed it on, and the child exited with this status.
        case stopped(Int32)
        /// The child exited with ``switchStatus``.
        case switchRequested
        /// On trial, it was not healthy by its deadline and was stopped.
        case deadlinePassed
        /// It exited by itself (`exited with status 1`, `killed by signal 11`).
        case failed(String)
    }

    private enum Event: Sendable {
        case exited(Process.TerminationReason, Int32)
        case signal(Int32)
        case tick
    }

    /// Runs the child, passing on SIGTERM and SIGINT; while `trial` is set, checks once a second whether the trial
    /// is over (the child cleared it once healthy) or past its deadline.
    private static func run(
        _ executable: URL, _ arguments: [String], environment: [String: String], trial: String?, dataDirectory: URL
    ) async -> Ending {
        let (events, sink) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .unbounded)
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = environment
        process.terminationHandler = { sink.yield(.exited($0.terminationReason, $0.terminationStatus)) }
        var sources: [any DispatchSourceSignal] = []
        for number in [SIGTERM, SIGINT] {
            #if canImport(Darwin)
                // Darwin's signal sources use kqueue, which sees a signal only when its default action is off.
                signal(number, SIG_IGN)
            #endif
            let source = DispatchSource.makeSignalSource(signal: number)
            source.setEventHandler { sink.yield(.signal(number)) }
            source.resume()
            sources.append(source)
        }
        defer {
            for source in sources { source.cancel() }
            #if canImport(Darwin)
                signal(SIGTERM, SIG_DFL)
                signal(SIGINT, SIG_DFL)
            #endif
        }
        do {
            try process.run()
        } catch {
            return .failed("could not be started: \(error.localizedDescription)")
        }
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                sink.yield(.tick)
            }
        }
        defer { ticker.cancel() }
        var stopping = false
        var pastDeadline = false
        var watching = trial != nil
        for await event in events {
            switch event {
            case .exited(let reason, let status):
                if stopping { return .stopped(reason == .exit ? status : 0) }
                if pastDeadline { return .deadlinePassed }
                if reason == .exit && status == switchStatus { return .switchRequested }
                if reason == .exit && status == 0 { return .stopped(0) }
                return .failed(reason == .exit ? "exited with status \(status)" : "was killed by signal \(status)")
            case .signal(let number):
                stopping = true
                kill(process.processIdentifier, number)
            case .tick:
                guard watching, !stopping, !pastDeadline else { continue }
                let state = try? SoftwareState.load(from: dataDirectory)
                guard let current = state?.trial, current.version == trial else {
                    // Healthy (the child cleared its trial): from now on it is the running release.
                    watching = false
                    continue
                }
                if Date() >= current.deadline {
                    say("release \(current.version) is not healthy by its deadline: stopping it")
                    pastDeadline = true
                    kill(process.processIdentifier, SIGTERM)
                    let pid = process.processIdentifier
                    // A hung process may ignore SIGTERM: ten seconds later it is killed.
                    Task {
                        try? await Task.sleep(for: .seconds(10))
                        if process.isRunning { kill(pid, SIGKILL) }
                    }
                }
            }
        }
        return .failed("ended without an exit status")
    }

    /// The flags that enroll the device (`--server`, `--token`, `--ca-hash`, `--ca-file`, with their values), left
    /// out when the agent starts again for a release: it enrolled already (a release is only ever installed by an
    /// enrolled agent), and its one-time token is spent.
    public static func withoutEnrollment(_ arguments: [String]) -> [String] {
        let flags: Set<String> = ["--server", "--token", "--ca-hash", "--ca-file"]
        var kept: [String] = []
        var skipValue = false
        for argument in arguments {
            if skipValue {
                skipValue = false
                continue
            }
            if flags.contains(argument) {
                skipValue = true
                continue
            }
            if let equals = argument.firstIndex(of: "="), flags.contains(String(argument[..<equals])) { continue }
            kept.append(argument)
        }
        return kept
    }

    /// The launcher writes to standard error only: the agent's log file and shipping belong to the agent.
    static func say(_ message: String) {
        FileHandle.standardError.write(Data("vantage agent launcher: \(message)\n".utf8))
    }

    /// Starts the selected release now, after the agent stopped: a launched agent exits with ``switchStatus`` (its
    /// launcher starts the selected release); the installed binary running the agent itself executes itself
    /// again with the same arguments, so its launcher starts at the beginning. Never returns.
    public static func switchRelease(environment: [String: String] = ProcessInfo.processInfo.environment) -> Never {
        if environment[launchedVariable] != nil { exit(switchStatus) }
        let path =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var argv: [UnsafeMutablePointer<CChar>?] = withoutEnrollment(CommandLine.arguments).map { strdup($0) }
        argv.append(nil)
        // The signal mask and ignored signals outlive exec, and this runs on a Dispatch worker thread, which blocks
        // signals: the new image must receive SIGTERM and SIGINT again.
        var none = sigset_t()
        sigemptyset(&none)
        pthread_sigmask(SIG_SETMASK, &none, nil)
        signal(SIGTERM, SIG_DFL)
        signal(SIGINT, SIG_DFL)
        execv(path, argv)
        say("cannot execute \(path) again (\(String(cString: strerror(errno)))); exiting so the service restarts")
        exit(switchStatus)
    }
}
