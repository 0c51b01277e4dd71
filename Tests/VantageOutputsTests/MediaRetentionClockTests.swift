import Foundation
import Testing
import VantageOutputs

/// Retention under a wall clock that jumps (issue 17, fault 5): files keep their real ages.
@Suite("media retention when the clock jumps")
struct MediaRetentionClockTests {
    func folder(_ files: [String: Date]) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appending(path: "retention-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for (name, date) in files {
            let path = folder.appending(path: name).path
            _ = FileManager.default.createFile(atPath: path, contents: Data(repeating: 1, count: 10))
            try FileManager.default.setAttributes([.modificationDate: date], ofItemAtPath: path)
        }
        return folder
    }

    @Test("a jump of the wall clock against the monotonic clock is noticed, drift is not")
    func watch() {
        let watch = WallClockWatch(tolerance: 30)
        let start = ContinuousClock.now
        let wall = Date(timeIntervalSince1970: 1_800_000_000)
        #expect(watch.jump(wall: wall, monotonic: start) == 0)
        #expect(watch.jump(wall: wall.addingTimeInterval(5.5), monotonic: start + .seconds(5)) == 0)
        let jump = watch.jump(wall: wall.addingTimeInterval(5.5 + 31_536_000 + 5), monotonic: start + .seconds(10))
        #expect(abs(jump - 31_536_000) < 1)
        #expect(
            watch.jump(wall: wall.addingTimeInterval(31_536_010.5 - 3600 + 5), monotonic: start + .seconds(15)) < -3599)
    }

    @Test("files made a year behind keep their age once the clock is set right; none is deleted as a year old")
    func shiftKeepsAges() throws {
        let behind = Date().addingTimeInterval(-31_536_000)
        let folder = try folder([
            "fresh.jpg": behind.addingTimeInterval(-60), "old.jpg": behind.addingTimeInterval(-7200),
        ])
        defer { try? FileManager.default.removeItem(at: folder) }
        let retention = MediaRetention(directories: [folder], maxAge: 3600, maxBytes: nil)
        #expect(retention.shiftModificationTimes(by: 31_536_000) == 2)
        let sweep = retention.sweep(inUse: [])
        #expect(sweep.deletedFiles == 1, "only the file that really is two hours old goes")
        #expect(FileManager.default.fileExists(atPath: folder.appending(path: "fresh.jpg").path))
        #expect(!FileManager.default.fileExists(atPath: folder.appending(path: "old.jpg").path))
    }

    @Test("a file dated in the future counts as new and then ages, instead of being kept while the clock is wrong")
    func futureFilesAge() throws {
        let folder = try folder(["ahead.jpg": Date().addingTimeInterval(31_536_000)])
        defer { try? FileManager.default.removeItem(at: folder) }
        let retention = MediaRetention(directories: [folder], maxAge: 3600, maxBytes: nil)
        #expect(retention.sweep(inUse: []).deletedFiles == 0)
        let path = folder.appending(path: "ahead.jpg").path
        let modified = try #require(try FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date)
        #expect(abs(modified.timeIntervalSinceNow) < 60, "dated now: \(modified)")
        #expect(retention.sweep(now: Date().addingTimeInterval(7200), inUse: []).deletedFiles == 1)
    }

    @Test(
        "a retention loop (vantage run's, the agent's) follows a jump: files made a year behind keep their ages and the fresh ones stay"
    )
    func loopFollowsTheJump() throws {
        // The box booted a year behind: its snapshots are dated by that clock. NTP then sets it right.
        let year: Double = 31_536_000
        let booted = Date().addingTimeInterval(-year)
        let folder = try folder([
            "fresh.jpg": booted.addingTimeInterval(-60), "old.jpg": booted.addingTimeInterval(-7200),
        ])
        defer { try? FileManager.default.removeItem(at: folder) }
        let retention = MediaRetention(directories: [folder], maxAge: 3600, maxBytes: nil)
        let watch = WallClockWatch()
        let start = ContinuousClock.now
        #expect(retention.followWallClock(watch, wall: booted, monotonic: start) == nil, "the first look")
        #expect(
            retention.followWallClock(watch, wall: booted.addingTimeInterval(5), monotonic: start + .seconds(5)) == nil)
        // Five seconds later by the monotonic clock, a year and ten seconds later by the wall clock.
        let now = booted.addingTimeInterval(year + 10)
        let jump = try #require(retention.followWallClock(watch, wall: now, monotonic: start + .seconds(10)))
        #expect(abs(jump.seconds - year) < 1 && jump.movedFiles == 2, "\(jump)")
        #expect(jump.description.contains("jumped 31536000 s forward"), "\(jump)")
        // The sweep the jump calls for, by the clock as it is now.
        let sweep = retention.sweep(now: now, inUse: [])
        #expect(sweep.deletedFiles == 1 && sweep.keptFiles == 1, "\(sweep)")
        #expect(FileManager.default.fileExists(atPath: folder.appending(path: "fresh.jpg").path))
        let modified = try #require(
            try FileManager.default.attributesOfItem(atPath: folder.appending(path: "fresh.jpg").path)[
                .modificationDate]
                as? Date)
        #expect(
            abs(now.timeIntervalSince(modified) - 70) < 2, "a minute old (and the 10 s since), not a year: \(modified)")
        // No jump, no move.
        #expect(
            retention.followWallClock(watch, wall: now.addingTimeInterval(5), monotonic: start + .seconds(15)) == nil)
    }
}
