import Foundation

/// What the `vantage run` tests need beyond `Repo` (Support/Repo.swift).
extension Repo {
    static var peopleCounter: URL { root.appendingPathComponent("examples/people-counter") }
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
