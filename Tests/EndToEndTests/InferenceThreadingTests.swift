import Foundation
import Testing

/// How `vantage run` has OpenVINO run the models, as its `model ready` line says (`hint=… pinned=…`): by how frames
/// reach them. The speeds behind each choice are measured by `bench/run` (docs/benchmarks.md); here, that each case
/// gets its setting: one file read as fast as possible (decoded ahead, inference run ahead: several frames in
/// flight) THROUGHPUT; one live camera (a file paced with `--realtime`, as a camera delivers it) LATENCY; the same
/// file without inference run ahead LATENCY; two cameras THROUGHPUT; one camera never pinned to cores, several
/// pinned; files read ahead under THROUGHPUT get twice the requests of cameras at their own pace (a request stays
/// queued on every OpenVINO stream while an answer waits for the application).
@Suite(
    "how OpenVINO runs the models", .serialized,
    .enabled(if: Repo.isSetUp, "needs scripts/setup and a build (make test does both)"))
struct InferenceThreadingTests {
    /// The `model ready` line of `vantage run` with `arguments`, then the run is stopped.
    static func readyLine(_ arguments: [String]) async throws -> String {
        let run = try VantageRun(arguments, http: false)
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline {
            if let line = run.stderr.split(separator: "\n").first(where: { $0.contains("model ready") }) {
                _ = run.interrupt()
                return String(line)
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("no model ready line in 120 s; stderr:\n\(run.stderr.suffix(2000))")
        return ""
    }

    @Test("one file: THROUGHPUT unpinned; a live camera or no run ahead: LATENCY; two pinned; files: more requests")
    func settingsFollowHowFramesArrive() async throws {
        let video = "camera_node=\(Repo.sampleVideo.path)"
        let cases: [(String, [String], hint: String, pinned: Bool)] = [
            ("one file, as fast as possible", ["--camera", video], "THROUGHPUT", false),
            ("one camera at its own pace", ["--camera", video, "--realtime"], "LATENCY", false),
            ("one file, no inference ahead", ["--camera", video, "--no-infer-ahead"], "LATENCY", false),
            ("two files", ["--camera", video, "--camera", video], "THROUGHPUT", true),
            (
                "two cameras at their own pace", ["--camera", video, "--camera", video, "--realtime"], "THROUGHPUT",
                true
            ),
        ]
        var requests: [Int] = []
        for (what, arguments, hint, pinned) in cases {
            let line = try await Self.readyLine(arguments)
            #expect(line.contains("hint=\(hint)") && line.contains("pinned=\(pinned)"), "\(what): \(line)")
            requests.append(Self.requests(line) ?? 0)
        }
        // OpenVINO's optimal number differs by machine and hint: files read ahead have twice the live cameras'.
        #expect(requests[4] >= 2, "requests per case: \(requests)")
        #expect(requests[0] == 2 * requests[4] && requests[3] == 2 * requests[4], "requests per case: \(requests)")
        #expect(requests[1] >= 2 && requests[1] < requests[0] && requests[2] == requests[1], "\(requests)")
    }

    /// The `requests=N` of a `model ready` line.
    static func requests(_ line: String) -> Int? {
        guard let range = line.range(of: "requests=") else { return nil }
        return Int(line[range.upperBound...].prefix { $0.isNumber })
    }
}
