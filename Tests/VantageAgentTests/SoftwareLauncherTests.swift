import Foundation
import Testing
import VantageAPI
import VantageAgent

/// The launcher's decisions at an agent's start (`DATA/software/state.json` → run the installed binary, run a
/// release, or roll a trial back), and the launcher itself running real release binaries (shell scripts standing
/// in for `bin/vantage`, as a broken release would be).
@Suite("software launcher")
struct SoftwareLauncherTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    let binary = URL(filePath: "/data/software/0.2.0/bin/vantage")

    func trial(starts: Int = 0, deadline: TimeInterval = 60, previous: String? = "0.1.0") -> SoftwareState.Trial {
        SoftwareState.Trial(
            version: "0.2.0", digest: "sha256:" + String(repeating: "a", count: 64), previous: previous,
            deadline: now.addingTimeInterval(deadline), starts: starts, maxStarts: 3, lastExit: "exited with status 1")
    }

    @Test("no state file, or no release selected: the installed binary runs the agent")
    func nothingSelected() {
        #expect(SoftwareState().decide(now: now, executable: { _ in nil }) == .runInstalled)
    }

    @Test("a selected release runs from its folder; one whose folder lost its binary falls back to the installed one")
    func selectedRelease() {
        let state = SoftwareState(selected: "0.2.0")
        #expect(
            state.decide(now: now, executable: { _ in binary }) == .runRelease(version: "0.2.0", executable: binary))
        #expect(state.decide(now: now, executable: { _ in nil }) == .runInstalled)
    }

    @Test("a release on trial runs until it used its starts or passed its deadline, then the previous one is selected")
    func trialEnds() {
        var state = SoftwareState(selected: "0.2.0", trial: trial(starts: 2))
        #expect(
            state.decide(now: now, executable: { _ in binary }) == .runRelease(version: "0.2.0", executable: binary))
        state.trial = trial(starts: 3)
        guard case .rollBack(let previous, let reason) = state.decide(now: now, executable: { _ in binary }) else {
            Issue.record("a trial that used its starts is rolled back")
            return
        }
        #expect(previous == "0.1.0")
        #expect(reason.contains("stopped 3 time(s)") && reason.contains("exited with status 1"), "\(reason)")
        state.trial = trial(starts: 1, deadline: -1)
        guard case .rollBack(_, let late) = state.decide(now: now, executable: { _ in binary }) else {
            Issue.record("a trial past its deadline is rolled back")
            return
        }
        #expect(late.contains("deadline"), "\(late)")
        state.trial = trial(starts: 0)
        #expect(
            state.decide(now: now, executable: { _ in nil }) != .runInstalled,
            "a release on trial without its binary is rolled back, not skipped")
    }

    @Test("rolling back selects the previous release, says why for the server, and refuses the release from then on")
    func rollingBack() {
        let state = SoftwareState(
            selected: "0.2.0", trial: trial(previous: nil),
            outcome: SoftwareUpdateReport(rolloutId: "rol_x", version: "0.2.0", state: .trial))
        let after = state.rolledBack(to: nil, reason: "it hung")
        #expect(after.selected == nil && after.trial == nil)
        #expect(
            after.outcome
                == SoftwareUpdateReport(rolloutId: "rol_x", version: "0.2.0", state: .rolledBack, reason: "it hung"))
        #expect(after.refused == [trial().digest])
    }

    /// A data folder holding `release` whose `bin/vantage` is `script`.
    func dataFolder(release: String, script: String) throws -> URL {
        let data = FileManager.default.temporaryDirectory.appending(path: "vantage-launcher-\(UUID().uuidString)")
        let bin = SoftwareState.folder(in: data).appending(path: "\(release)/bin")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        let file = bin.appending(path: "vantage")
        try Data("#!/bin/sh\n\(script)\n".utf8).write(to: file)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: file.path)
        return data
    }

    @Test(
        "a release on trial that exits 1 at every start is started maxStarts times, then rolled back to the installed binary"
    )
    func crashingReleaseIsRolledBack() async throws {
        // Each start appends a line, so the test counts them.
        let data = try dataFolder(
            release: "0.2.0", script: "echo start >> \"$(dirname \"$0\")/../../../starts\"\nexit 1")
        defer { try? FileManager.default.removeItem(at: data) }
        var trial = trial(previous: nil)
        trial.deadline = Date().addingTimeInterval(60)
        trial.lastExit = nil
        try SoftwareState(
            selected: "0.2.0", trial: trial,
            outcome: SoftwareUpdateReport(rolloutId: "rol_x", version: "0.2.0", state: .trial)
        ).save(in: data)
        let outcome = await SoftwareLauncher.launch(
            dataDirectory: data, arguments: ["vantage", "agent"], environment: [:])
        #expect(outcome == .run(version: nil), "the installed binary runs the agent again")
        let starts = try String(contentsOf: data.appending(path: "starts"), encoding: .utf8)
        #expect(starts.split(separator: "\n").count == 3)
        #expect(
            !FileManager.default.fileExists(atPath: SoftwareState.folder(in: data).appending(path: "0.2.0").path),
            "the rolled-back release's files are deleted")
        let state = try SoftwareState.load(from: data)
        #expect(state.selected == nil && state.trial == nil)
        #expect(state.outcome?.state == .rolledBack && state.outcome?.rolloutId == "rol_x")
        #expect(state.outcome?.reason?.contains("exited with status 1") == true, "\(state.outcome?.reason ?? "")")
    }

    @Test("a selected release gets the same arguments and the launched marks; its exit status is the launcher's")
    func selectedReleaseRuns() async throws {
        let data = try dataFolder(
            release: "0.2.0",
            script: "echo \"$* $VANTAGE_AGENT_LAUNCHED $VANTAGE_RELEASE_VERSION\" > \"$(dirname \"$0\")/seen\"\nexit 0")
        defer { try? FileManager.default.removeItem(at: data) }
        try SoftwareState(selected: "0.2.0").save(in: data)
        let outcome = await SoftwareLauncher.launch(
            dataDirectory: data, arguments: ["vantage", "agent", "--data", data.path], environment: [:])
        #expect(outcome == .exit(0))
        let seen = try String(
            contentsOf: SoftwareState.folder(in: data).appending(path: "0.2.0/bin/seen"), encoding: .utf8)
        #expect(seen == "agent --data \(data.path) 1 0.2.0\n")
        // An agent that enrolled at its first start (--token) is launched without the spent token.
        #expect(
            SoftwareLauncher.withoutEnrollment([
                "agent", "--data", "d", "--server", "https://s:8443", "--token", "vd_x", "--ca-hash=sha256:y",
                "--ca-file", "ca.pem", "--heartbeat-seconds", "1",
            ]) == ["agent", "--data", "d", "--heartbeat-seconds", "1"])
        // A launched agent does not launch again.
        #expect(
            await SoftwareLauncher.launch(
                dataDirectory: data, environment: ["VANTAGE_AGENT_LAUNCHED": "1", "VANTAGE_RELEASE_VERSION": "0.2.0"])
                == .run(version: "0.2.0"))
    }
}
