import Foundation

/// What the `vantage run` tests need beyond `Repo` (Support/Repo.swift).
extension Repo {
    static var peopleCounter: URL { root.appendingPathComponent("examples/people-counter") }
    static var panoramaPeopleCounter: URL { root.appendingPathComponent("examples/panorama-people-counter") }
    /// Python environments made by the tests (only tests with their own dependencies make one).
    static var pythonCache: URL { FileManager.default.temporaryDirectory.appendingPathComponent("vantage-e2e-python") }
    /// True when scripts/setup installed numpy and OpenCV for Python code nodes.
    static var hasPythonPackages: Bool {
        FileManager.default.fileExists(atPath: deps.appendingPathComponent("python/numpy").path)
            && FileManager.default.fileExists(atPath: deps.appendingPathComponent("python/cv2").path)
    }

    /// A writable copy of the Python example (for tests that change it).
    static func copyOfPanoramaPeopleCounter() throws -> URL {
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent(
            "panorama-people-counter-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: panoramaPeopleCounter, to: copy)
        // The model's path is relative to the project folder: point the copy at the same file.
        let descriptor = copy.appendingPathComponent("packages/123456789012-people_detector-1.0/descriptor.json")
        let text = try String(contentsOf: descriptor, encoding: .utf8)
        try text.replacingOccurrences(of: "../../.deps/models/", with: deps.path + "/models/")
            .write(to: descriptor, atomically: true, encoding: .utf8)
        return copy
    }
    /// The sample video at 640x360: the 1080p camera's sub-stream (scripts/setup makes it).
    static var sampleVideo360p: URL { deps.appendingPathComponent("media/vtest-360p.mp4") }
    /// One state folder for all end-to-end runs, so the compiled model is cached after the first.
    static var sharedState: URL { FileManager.default.temporaryDirectory.appendingPathComponent("vantage-e2e-state") }

    /// True when setup ran and the binaries are built; the suites are skipped otherwise, saying why.
    static var isSetUp: Bool {
        FileManager.default.fileExists(atPath: vantageBinary.path) && isAvailable(.sampleVideo, .personDetector)
    }

    /// A writable copy of the example application (for tests that break it on purpose).
    static func copyOfPeopleCounter() throws -> URL {
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent("people-counter-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: peopleCounter, to: copy)
        return copy
    }
}

extension RTSPCamera {
    /// The stream's URL with credentials in it (the test camera ignores them; Vantage must never print them).
    func url(mount: String? = nil, credentials: String) -> String {
        url(mount: mount).replacingOccurrences(of: "rtsp://", with: "rtsp://\(credentials)@")
    }
}
