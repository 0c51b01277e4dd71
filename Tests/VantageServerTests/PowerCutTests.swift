import Foundation
import Testing

/// Power cuts (issue 17, fault 1; docs/reliability.md "Power cuts"): scripts/power-cut runs the agent's own file
/// code (Tests/PowerCut/Workload) on powercutfs, a FUSE file system that loses every byte not fsync'd when it is
/// killed, cuts at random moments, and checks what survives after each cut. `make test` makes 30 cuts; `make soak`
/// at least 200, for `VANTAGE_SOAK_SECONDS`.
@Suite(
    .serialized,
    .enabled(
        if: getuid() == 0 && FileManager.default.fileExists(atPath: "/dev/fuse"),
        "the power-cut harness mounts a FUSE file system: it needs root and /dev/fuse"))
struct PowerCutTests {
    struct Totals: Decodable {
        let runs: Int
        let invariants: Int
        let failures: Int
        let cut_in: [String: Int]
        let failure_messages: [String]
    }

    /// Runs scripts/power-cut; nil (with the reason printed) when it skipped: FUSE could not be mounted here.
    func harness(_ arguments: [String]) throws -> (Totals, String)? {
        let process = Process()
        process.executableURL = SourceTree.root.appending(path: "scripts/power-cut")
        process.arguments = arguments + ["--json"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        if process.terminationStatus == 77 {
            print("PowerCutTests skipped: \(output)")
            return nil
        }
        let last = output.split(separator: "\n").last.map(String.init) ?? ""
        guard let totals = try? JSONDecoder().decode(Totals.self, from: Data(last.utf8)) else {
            throw APITestError("scripts/power-cut printed no totals (exit \(process.terminationStatus)):\n\(output)")
        }
        return (totals, output)
    }

    /// Cut at random points while the outbox takes events, a deployment unpacks and switches `current`, a model
    /// downloads and the certificate is renewed: after every cut the outbox opens with every acknowledged event and
    /// nothing invented, `current` names one whole version, the cache holds only verified files and a download
    /// completes, and the identity is whole and the last renewed.
    @Test func agentDataSurvivesPowerCuts() throws {
        let arguments = Soak.seconds.map { ["--runs", "200", "--seconds", "\(Int($0))"] } ?? ["--runs", "30"]
        guard let (totals, output) = try harness(arguments) else { return }
        print(output)
        #expect(totals.failures == 0, "\(totals.failure_messages.joined(separator: "\n"))")
        #expect(totals.runs >= (Soak.isOn ? 200 : 30))
        // Each run checks the outbox's events one by one, so thousands of invariants; at least the four areas each run.
        #expect(totals.invariants >= totals.runs * 4)
        #expect(totals.cut_in.values.reduce(0, +) > 0, "no cut landed inside a step: \(output)")
        Soak.record(
            fault: "power cut", runs: totals.runs, faults: totals.runs, invariants: totals.invariants,
            failures: totals.failures,
            note: "cut in: "
                + totals.cut_in.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(
                    separator: ", "))
    }

    /// The harness can fail: a file written to a temporary name and renamed over without an fsync is caught after
    /// the cut (it is empty), as it would be on a real disk.
    @Test func harnessCatchesAWriteWithoutFsync() throws {
        guard let (totals, output) = try harness(["--runs", "4", "--naive"]) else { return }
        #expect(totals.failures > 0, "the harness missed an unsynced write:\n\(output)")
        #expect(totals.failure_messages.allSatisfy { $0.contains("(naive)") }, "\(totals.failure_messages)")
    }
}
