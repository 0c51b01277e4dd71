import Foundation
import VantageAPI
import VantageCore

/// `DATA/software/state.json`: which release the agent runs and the trial of a new one. The agent that installs a
/// release writes it (``SoftwareUpdater``), the launcher reads it at every start (``SoftwareLauncher``), and the new
/// version clears the trial once it is healthy. Every write replaces the whole file (``AtomicFile``).
public struct SoftwareState: Codable, Sendable, Equatable {
    /// The release to run, from `DATA/software/<version>/`; nil: the installed binary (the entry point itself).
    public var selected: String?
    /// A release that has not proved itself yet; the launcher rolls it back past its deadline or its starts.
    public var trial: Trial?
    /// How the last release the agent was asked to install went; heartbeats carry it to the server.
    public var outcome: SoftwareUpdateReport?
    /// Digests of releases rolled back or failed here: not installed again, whatever the server says.
    public var refused: [String]

    public struct Trial: Codable, Sendable, Equatable {
        public var version: String
        public var digest: String
        /// The release to go back to (nil: the installed binary).
        public var previous: String?
        /// The time by which the new version must be healthy.
        public var deadline: Date
        /// How often the launcher started it so far.
        public var starts: Int
        /// The starts it may take: exiting at start this often rolls it back.
        public var maxStarts: Int
        /// How its last run ended (`exited with status 1`), when it ended.
        public var lastExit: String?
        /// The instances that ran and inferred when the release was installed: the new version must run them again.
        public var instances: [String]?

        public init(
            version: String, digest: String, previous: String?, deadline: Date, starts: Int = 0, maxStarts: Int,
            lastExit: String? = nil
        ) {
            self.version = version
            self.digest = digest
            self.previous = previous
            self.deadline = deadline
            self.starts = starts
            self.maxStarts = maxStarts
            self.lastExit = lastExit
        }
    }

    public init(
        selected: String? = nil, trial: Trial? = nil, outcome: SoftwareUpdateReport? = nil, refused: [String] = []
    ) {
        self.selected = selected
        self.trial = trial
        self.outcome = outcome
        self.refused = refused
    }

    // MARK: Files

    /// `DATA/software`.
    public static func folder(in dataDirectory: URL) -> URL { dataDirectory.appending(path: "software") }
    static func file(in dataDirectory: URL) -> URL { folder(in: dataDirectory).appending(path: "state.json") }

    /// The saved state; an empty one when there is none. A file that cannot be read is an error (the launcher
    /// then runs the installed binary rather than guess).
    public static func load(from dataDirectory: URL) throws -> SoftwareState {
        let file = file(in: dataDirectory)
        guard let data = FileManager.default.contents(atPath: file.path) else { return SoftwareState() }
        do {
            return try APIJSON.decoder().decode(SoftwareState.self, from: data)
        } catch {
            throw AgentError(
                "\(file.path) is not a software state file (\(error)); delete it to run the installed version")
        }
    }

    public func save(in dataDirectory: URL) throws {
        try FileManager.default.createDirectory(
            at: Self.folder(in: dataDirectory), withIntermediateDirectories: true)
        try AtomicFile.write(try APIJSON.encoder().encode(self), to: Self.file(in: dataDirectory), permissions: 0o600)
    }

    /// The `vantage` binary of an installed release: `bin/vantage` in its folder, or `usr/lib/vantage/bin/vantage`
    /// when it holds the package's whole tree.
    public static func executable(of version: String, in dataDirectory: URL) -> URL? {
        let root = folder(in: dataDirectory).appending(path: version)
        return ["bin/vantage", "usr/lib/vantage/bin/vantage"].map { root.appending(path: $0) }.first {
            FileManager.default.isExecutableFile(atPath: $0.path)
        }
    }

    // MARK: Decisions

    /// What the launcher does at a start.
    public enum Decision: Equatable, Sendable {
        /// Run the agent in this process (the installed binary).
        case runInstalled
        /// Run the release's binary as a child and watch it.
        case runRelease(version: String, executable: URL)
        /// Go back to `previous` (nil: the installed binary) and say why.
        case rollBack(previous: String?, reason: String)
    }

    /// The launcher's decision for this state at `now`; `executable` finds an installed release's binary.
    public func decide(now: Date, executable: (String) -> URL?) -> Decision {
        if let trial {
            if trial.starts >= trial.maxStarts {
                return .rollBack(
                    previous: trial.previous,
                    reason:
                        "\(trial.version) stopped \(trial.starts) time(s) before it was healthy (last: \(trial.lastExit ?? "unknown")); rolled back to \(trial.previous ?? "the installed version")"
                )
            }
            if now >= trial.deadline {
                return .rollBack(
                    previous: trial.previous,
                    reason:
                        "\(trial.version) did not come back healthy (connected, instances running and inferring) by its deadline; rolled back to \(trial.previous ?? "the installed version")"
                )
            }
        }
        guard let selected else { return .runInstalled }
        guard let binary = executable(selected) else {
            if let trial, trial.version == selected {
                return .rollBack(
                    previous: trial.previous, reason: "\(selected) has no bin/vantage in its folder; rolled back")
            }
            return .runInstalled
        }
        return .runRelease(version: selected, executable: binary)
    }

    /// The state after rolling back the trial for `reason`: the previous release selected, the outcome said, and
    /// the release refused from now on.
    public func rolledBack(to previous: String?, reason: String) -> SoftwareState {
        var next = self
        next.selected = previous
        if let trial {
            next.outcome = SoftwareUpdateReport(
                rolloutId: outcome?.version == trial.version ? outcome?.rolloutId : nil, version: trial.version,
                state: .rolledBack, reason: reason)
            if !next.refused.contains(trial.digest) { next.refused.append(trial.digest) }
        }
        next.trial = nil
        return next
    }
}
