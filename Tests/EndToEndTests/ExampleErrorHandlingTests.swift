import Foundation
import Testing

/// The examples handle a failing `publish` the way the SDK docs tell users to: log it (throttled) and go on. The
/// run's outbox cannot store anything (`VANTAGE_TEST_OUTBOX_FULL=1`: every event fails to be stored with SQLite's
/// full-disk message), so every `publish` fails as on a full disk. (The events file is a sink of the outbox now, so
/// `--events /dev/full`, which this test used before, no longer makes `publish` fail: the event is kept and written
/// when the file can take it.)
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
        // A second report comes ten seconds after the first; on a fast machine the sample video may end before it.
        if reports >= 2 {
            #expect(run.stderr.contains("more since the last report"), "later failures are counted, not each printed")
        }
    }

    /// A fresh state folder, so that no other test's events wait in its outbox.
    static func fullDiskState() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appending(path: "vantage-e2e-full-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    // Guards: the Swift people counter let publish's error escape `main`: on a full disk it exited at its first event
    // and the runtime restarted it again and again (a crash loop), counting nothing.
    @Test("The Swift people counter keeps counting every frame when no event can be stored, and is never restarted")
    func swiftExample() async throws {
        let started = ContinuousClock.now
        let run = try VantageRun(
            ["--camera", "camera_node=\(Repo.sampleVideo.path)", "--json-summary"], http: false,
            stateDirectory: try Self.fullDiskState(), environment: ["VANTAGE_TEST_OUTBOX_FULL": "1"])
        let status = try #require(run.waitForExit(timeout: 300), "did not finish; stderr:\n\(run.stderr.suffix(3000))")
        #expect(status == 0, "stderr:\n\(run.stderr.suffix(3000))")
        let summary = try Self.summary(run)
        #expect((summary["appRestarts"] as? NSNumber)?.intValue == 0, "stderr:\n\(run.stderr.suffix(3000))")
        #expect((summary["frames"] as? NSNumber)?.intValue == 795)
        #expect((summary["events"] as? NSNumber)?.intValue == 0, "no event was stored")
        #expect(run.events.isEmpty, "the events file has no event")
        #expect(run.stderr.contains("is full"), "the apps were told the disk is full")
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
                Repo.pythonCache.path,
            ],
            http: false, stateDirectory: try Self.fullDiskState(), environment: ["VANTAGE_TEST_OUTBOX_FULL": "1"])
        let status = try #require(run.waitForExit(timeout: 300), "did not finish; stderr:\n\(run.stderr.suffix(3000))")
        #expect(status == 0, "stderr:\n\(run.stderr.suffix(3000))")
        let summary = try Self.summary(run)
        #expect((summary["appRestarts"] as? NSNumber)?.intValue == 0, "stderr:\n\(run.stderr.suffix(3000))")
        #expect((summary["frames"] as? NSNumber)?.intValue == 795)
        Self.expectThrottledReports(run, since: started)
        #expect(run.stderr.contains("processed 795 batches"), "the example ran to the end of the file")
    }
}
