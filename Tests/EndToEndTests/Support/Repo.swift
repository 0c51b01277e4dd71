// Where things are in the Vantage checkout, and whether `scripts/setup` has made what a test needs.
//
// A test that needs the set-up's files either declares it, which skips it when they are missing:
//
//     @Test(.enabled(if: Repo.isAvailable(.sampleVideo, .rtspCamera), "needs scripts/setup"))
//
// or checks at its start, which skips (cancels) it with the reason printed and recorded:
//
//     try Repo.requireSetup(.sampleVideo, .personDetector, .vantageBinary)

import Foundation
import Testing

/// Paths into the repository, found from this source file's location (symbolic links resolved,
/// so a test package elsewhere that links these files still finds the checkout). The environment
/// variable `VANTAGE_ROOT` overrides it.
enum Repo {
    /// The repository root: the directory with `Package.swift` and `scripts/`.
    static let root: URL = {
        if let override = ProcessInfo.processInfo.environment["VANTAGE_ROOT"], !override.isEmpty {
            return URL(fileURLWithPath: override, isDirectory: true).standardizedFileURL
        }
        let here = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        var directory = here.deletingLastPathComponent()
        while directory.path != "/" {
            let marker = directory.appendingPathComponent("scripts/rtsp-camera").path
            if FileManager.default.fileExists(atPath: marker),
                FileManager.default.fileExists(atPath: directory.appendingPathComponent("Package.swift").path)
            {
                return directory
            }
            directory = directory.deletingLastPathComponent()
        }
        // Tests/EndToEndTests/Support/Repo.swift → four levels up.
        return here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
    }()

    /// `.deps/`: what `scripts/setup` downloads and builds.
    static var deps: URL { root.appendingPathComponent(".deps", isDirectory: true) }
    /// The sample video: vtest (people walking), H.264, 768x576, 10 fps, 795 frames, GOP 25.
    static var sampleVideo: URL { deps.appendingPathComponent("media/vtest.mp4") }
    /// The same video scaled to 1920x1080.
    static var sampleVideo1080p: URL { deps.appendingPathComponent("media/vtest-1080p.mp4") }
    /// The SSDLite MobileNetV2 person detector (TF object-detection API frozen graph, 1 = person).
    static var personDetector: URL { deps.appendingPathComponent("models/ssdlite/frozen_inference_graph.pb") }
    /// The built `vantage` binary (`swift build` puts it here); `VANTAGE_BINARY` overrides it.
    static var vantageBinary: URL {
        if let override = ProcessInfo.processInfo.environment["VANTAGE_BINARY"], !override.isEmpty {
            return URL(fileURLWithPath: override)
        }
        return root.appendingPathComponent(".build/debug/vantage")
    }
    /// The RTSP test camera (a GStreamer RTSP server); see `RTSPCamera`.
    static var rtspCameraScript: URL { root.appendingPathComponent("scripts/rtsp-camera") }
    /// A directory under the repository for test scratch files, if a test wants one there.
    static var scratch: URL { root.appendingPathComponent(".build/e2e-scratch", isDirectory: true) }

    /// Something an end-to-end test needs from the set-up.
    enum Requirement: Sendable, Hashable, CustomStringConvertible {
        /// `.deps/media/vtest.mp4`
        case sampleVideo
        /// `.deps/media/vtest-1080p.mp4`
        case sampleVideo1080p
        /// `.deps/models/ssdlite/frozen_inference_graph.pb`
        case personDetector
        /// `.build/debug/vantage` (run `swift build` first)
        case vantageBinary
        /// `scripts/rtsp-camera` and what it runs on: /usr/bin/python3 with GStreamer's RTSP server.
        case rtspCamera
        /// A program on PATH, e.g. `.tool("ffprobe")`.
        case tool(String)

        var description: String {
            switch self {
            case .sampleVideo: "the sample video \(Repo.relative(Repo.sampleVideo))"
            case .sampleVideo1080p: "the 1080p sample video \(Repo.relative(Repo.sampleVideo1080p))"
            case .personDetector: "the person detector \(Repo.relative(Repo.personDetector))"
            case .vantageBinary: "the vantage binary \(Repo.relative(Repo.vantageBinary))"
            case .rtspCamera: "the RTSP test camera (scripts/rtsp-camera with GStreamer's RTSP server)"
            case .tool(let name): "\(name) on PATH"
            }
        }

        /// Why it is not there, or nil when it is.
        var problem: String? {
            let files = FileManager.default
            switch self {
            case .sampleVideo, .sampleVideo1080p, .personDetector:
                let url =
                    self == .sampleVideo
                    ? Repo.sampleVideo : self == .sampleVideo1080p ? Repo.sampleVideo1080p : Repo.personDetector
                return files.fileExists(atPath: url.path) ? nil : "\(self) is missing: run scripts/setup"
            case .vantageBinary:
                return files.isExecutableFile(atPath: Repo.vantageBinary.path)
                    ? nil : "\(self) is missing: run `swift build` (or set VANTAGE_BINARY)"
            case .rtspCamera:
                return Repo.rtspCameraProblem
            case .tool(let name):
                return ProcessRunner.which(name) == nil ? "\(name) is not on PATH: run scripts/setup" : nil
            }
        }
    }

    /// Whether every one of `requirements` is there (for `.enabled(if:)`).
    static func isAvailable(_ requirements: Requirement...) -> Bool {
        problems(requirements).isEmpty
    }

    /// Why each missing one of `requirements` is missing.
    static func problems(_ requirements: [Requirement]) -> [String] {
        requirements.compactMap(\.problem)
    }

    /// Skips the running test, printing and recording why, unless every one of `requirements`
    /// is there. Call it first thing in a test: `try Repo.requireSetup(.sampleVideo, .rtspCamera)`.
    /// With no arguments it asks for the set-up's files (sample video and person detector).
    static func requireSetup(
        _ requirements: Requirement..., sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let needed = requirements.isEmpty ? [.sampleVideo, .personDetector] : requirements
        let missing = problems(needed)
        guard !missing.isEmpty else { return }
        let reason = "skipped: " + missing.joined(separator: "; ")
        print("\(sourceLocation.fileName):\(sourceLocation.line): \(reason)")
        try Test.cancel(Comment(rawValue: reason), sourceLocation: sourceLocation)
    }

    /// `url`'s path relative to the root, for messages.
    static func relative(_ url: URL) -> String {
        let path = url.path
        let prefix = root.path.hasSuffix("/") ? root.path : root.path + "/"
        return path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : path
    }

    /// Checked once: can the RTSP camera run here?
    private static let rtspCameraProblem: String? = {
        guard FileManager.default.isExecutableFile(atPath: rtspCameraScript.path) else {
            return "scripts/rtsp-camera is missing or not executable"
        }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else {
            return "/usr/bin/python3 is missing: run scripts/setup"
        }
        // Debian's python3-gi works with /usr/bin/python3 only, hence not the python3 on PATH.
        let check = Process()
        check.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        check.arguments = [
            "-c",
            "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
                + "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
                + "assert Gst.ElementFactory.find('qtdemux') and Gst.ElementFactory.find('h264parse') "
                + "and Gst.ElementFactory.find('rtph264pay')",
        ]
        check.standardInput = FileHandle.nullDevice
        check.standardOutput = FileHandle.nullDevice
        check.standardError = FileHandle.nullDevice
        do {
            try check.run()
            check.waitUntilExit()
        } catch {
            return "cannot run /usr/bin/python3: \(error)"
        }
        return check.terminationStatus == 0
            ? nil
            : "GStreamer's RTSP server is not usable from /usr/bin/python3 (needs python3-gi, "
                + "gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-{base,good,bad}): run scripts/setup"
    }()
}
