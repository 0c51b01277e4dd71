import Foundation
import Testing

/// The examples handle a failing `publish` the way the SDK docs tell users to: log it (throttled) and go on. Events
/// go to `/dev/full`, so the runtime cannot store any and every `publish` fails for real (a full disk).
@Suite(
    "Examples on a full disk", .serialized,
    .enabled(if: Repo.isSetUp, "needs scripts/setup and a build (make test does both)"))
struct ExampleErrorHandlingTests {
    /// The summary line `--json-summary` prints last.
    static func summary(_ run: VantageRun) throws -> [String: Any] {
        let line = try #require(run.stderr.split(separator: "\n").last { $0.hasPrefix("{") })
        return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    /// The failures are said, but not once per event: at most once every ten seconds, with a count of the rest.
    static func expectThrottledReports(_ run: VantageRun, since started: ContinuousClock.Instant) {
        let seconds = (ContinuousClock.now - started).components.seconds
        let reports = run.stderr.components(separatedBy: "could not publish the").count - 1
        #expect(reports >= 1, "stderr:\n\(run.stderr.suffix(3000))")
        #expect(reports <= Int(seconds) / 10 + 2, "\(reports) reports in \(seconds) s")
        #expect(run.stderr.contains("more since the last report"), "later failures are counted, not each printed")
    }

    // Guards: the Swift people counter let publish's error escape `main`: on a full disk it exited at its first event
    // and the runtime restarted it again and again (a crash loop), counting nothing.
    @Test("The Swift people counter keeps counting every frame when no event can be stored, and is never restarted")
    func swiftExample() async throws {
        let started = ContinuousClock.now
        let run = try VantageRun(
            ["--camera", "camera_node=\(Repo.sampleVideo.path)", "--json-summary", "--events", "/dev/full"],
            http: false)
        let status = try #require(run.waitForExit(timeout: 300), "did not finish; stderr:\n\(run.stderr.suffix(3000))")
        #expect(status == 0, "stderr:\n\(run.stderr.suffix(3000))")
        let summary = try Self.summary(run)
        #expect((summary["appRestarts"] as? NSNumber)?.intValue == 0, "stderr:\n\(run.stderr.suffix(3000))")
        #expect((summary["frames"] as? NSNumber)?.intValue == 795)
        #expect((summary["events"] as? NSNumber)?.intValue == 0, "no event was stored")
        Self.expectThrottledReports(run, since: started)
        #expect(run.stderr.contains("sources ended; counts:"), "the example ran to the end of the file")
    }

    // Guards: the Python people counter caught publish's RuntimeError only in main, which exited 1: the same crash
    // loop as the Swift one.
    @Test(
        "The Python people counter keeps counting every frame when no event can be stored, and is never restarted",
        .enabled(if: Repo.hasPythonPackages, "needs scripts/setup's Python packages"))
    func pythonExample() async throws {
        let started = ContinuousClock.now
        let run = try VantageRun(
            app: Repo.panoramaPeopleCounter,
            [
                "--camera", "camera_node=\(Repo.sampleVideo.path)", "--json-summary", "--python-cache",
                Repo.pythonCache.path, "--events", "/dev/full",
            ],
            http: false)
        let status = try #require(run.waitForExit(timeout: 300), "did not finish; stderr:\n\(run.stderr.suffix(3000))")
        #expect(status == 0, "stderr:\n\(run.stderr.suffix(3000))")
        let summary = try Self.summary(run)
        #expect((summary["appRestarts"] as? NSNumber)?.intValue == 0, "stderr:\n\(run.stderr.suffix(3000))")
        #expect((summary["frames"] as? NSNumber)?.intValue == 795)
        Self.expectThrottledReports(run, since: started)
        #expect(run.stderr.contains("processed 795 batches"), "the example ran to the end of the file")
    }
}
