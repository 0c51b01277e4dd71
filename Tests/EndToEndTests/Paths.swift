import Foundation

/// Where things are: the repository, what scripts/setup fetched, what the build made.
enum Repo {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let vantage = root.appendingPathComponent(".build/debug/vantage")
    static let peopleCounter = root.appendingPathComponent("examples/people-counter")
    static let sampleVideo = root.appendingPathComponent(".deps/media/vtest.mp4")
    static let model = root.appendingPathComponent(".deps/models/ssdlite/frozen_inference_graph.pb")
    static let rtspCamera = root.appendingPathComponent("scripts/rtsp-camera")
    /// One state folder for all end-to-end runs, so the compiled model is cached after the first.
    static let sharedState = FileManager.default.temporaryDirectory.appendingPathComponent("vantage-e2e-state")

    /// True when setup ran and the binaries are built; end-to-end tests are skipped otherwise, saying why.
    static var isSetUp: Bool {
        let fm = FileManager.default
        return fm.fileExists(atPath: vantage.path) && fm.fileExists(atPath: sampleVideo.path)
            && fm.fileExists(atPath: model.path)
    }

    /// A writable copy of the example application (for tests that break it on purpose).
    static func copyOfPeopleCounter() throws -> URL {
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent("people-counter-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: peopleCounter, to: copy)
        return copy
    }
}
