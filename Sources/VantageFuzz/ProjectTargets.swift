import Foundation
import Synchronization
import VantageApp

/// A small valid application project (shaped like the people counter) in a private scratch folder: the targets that
/// fuzz one of its files write the input over that file and load the project. Removed when released.
final class ScratchProject {
    static let graph = "graphs/app/graph.json"
    static let codePackage = "packages/123456789012-code-1.0/package.json"
    static let codeDescriptor = "packages/123456789012-code-1.0/descriptor.json"
    static let modelPackage = "packages/123456789012-model-1.0/package.json"
    static let modelDescriptor = "packages/123456789012-model-1.0/descriptor.json"
    static let cameraPackage = "packages/123456789012-lobby_cam-1.0/package.json"

    /// The project's files (relative path → text): also the seeds of the targets that fuzz them.
    static let files: [String: String] = [
        graph: """
        {
            "nodeGraph": {
                "envelopeVersion": "2021-01-01",
                "description": "Counts people.",
                "packages": [
                    {"name": "123456789012::code", "version": "1.0"},
                    {"name": "123456789012::model", "version": "1.0"},
                    {"name": "123456789012::lobby_cam", "version": "1.0"},
                    {"name": "panorama::abstract_rtsp_media_source", "version": "1.0"},
                    {"name": "panorama::hdmi_data_sink", "version": "1.0"}
                ],
                "nodes": [
                    {"name": "code_node", "interface": "123456789012::code.code_interface", "launch": "onAppStart"},
                    {"name": "model_node", "interface": "123456789012::model.model_interface"},
                    {
                        "name": "camera_node",
                        "interface": "panorama::abstract_rtsp_media_source.rtsp_v1_interface",
                        "overridable": true,
                        "overrideMandatory": false,
                        "decorator": {"title": "Camera", "description": "The camera stream."}
                    },
                    {"name": "lobby", "interface": "123456789012::lobby_cam.lobby_cam"},
                    {"name": "output_node", "interface": "panorama::hdmi_data_sink.hdmi0"},
                    {
                        "name": "min_score",
                        "interface": "float32",
                        "value": 0.5,
                        "overridable": true,
                        "decorator": {
                            "title": "Minimum score",
                            "constraintText": "A number from 0 to 1",
                            "constraintRegex": "^(0(\\\\.[0-9]+)?|1(\\\\.0+)?)$"
                        }
                    },
                    {"name": "max_people", "interface": "int32", "value": 5, "overridable": true},
                    {"name": "verbose", "interface": "boolean", "value": false, "overridable": true},
                    {"name": "model_name", "interface": "string", "value": "model_node"}
                ],
                "edges": [
                    {"producer": "camera_node.video_out", "consumer": "code_node.video_in"},
                    {"producer": "code_node.video_out", "consumer": "output_node.video_in"},
                    {"producer": "min_score", "consumer": "code_node.min_score"},
                    {"producer": "max_people", "consumer": "code_node.max_people"},
                    {"producer": "verbose", "consumer": "code_node.verbose"},
                    {"producer": "model_name", "consumer": "code_node.model_name"}
                ],
                "networkRoutingRules": [
                    {"node": "code_node", "containerPort": 8080, "hostPort": 8080}
                ]
            }
        }
        """,
        codePackage: """
        {
            "nodePackage": {
                "envelopeVersion": "2021-01-01",
                "name": "code",
                "version": "1.0",
                "description": "Counts people in each frame.",
                "assets": [
                    {"name": "code_asset", "implementations": [{"type": "container", "assetUri": "code.tar.gz"}]}
                ],
                "interfaces": [
                    {
                        "name": "code_interface",
                        "category": "business_logic",
                        "asset": "code_asset",
                        "inputs": [
                            {"name": "video_in", "type": "media"},
                            {"name": "min_score", "type": "float32", "default": 0.4},
                            {"name": "max_people", "type": "int32"},
                            {"name": "verbose", "type": "boolean"},
                            {"name": "model_name", "type": "string"},
                            {"name": "label", "type": "string", "default": "people"}
                        ],
                        "outputs": [{"name": "video_out", "type": "media", "description": "Frames with boxes"}],
                        "network": {"inboundPorts": [{"port": 8080}, {"port": 8081}]}
                    }
                ]
            }
        }
        """,
        codeDescriptor: """
        {"runtimeDescriptor": {"envelopeVersion": "2021-01-01", "entry": {"path": "python3", "name": "/panorama/app.py"}}}
        """,
        modelPackage: """
        {
            "nodePackage": {
                "envelopeVersion": "2021-01-01",
                "name": "model",
                "version": "1.0",
                "assets": [
                    {"name": "model_asset", "implementations": [{"type": "model", "assetUri": "model.tar.gz"}]}
                ],
                "interfaces": [
                    {
                        "name": "model_interface",
                        "category": "ml_model",
                        "asset": "model_asset",
                        "inputs": [{"name": "video_in", "type": "media"}],
                        "outputs": [{"name": "video_out", "type": "media"}]
                    }
                ]
            }
        }
        """,
        modelDescriptor: """
        {
            "mlModelDescriptor": {
                "envelopeVersion": "2021-01-01",
                "framework": "TENSORFLOW",
                "frameworkVersion": "1.15",
                "inputs": [{"name": "image_tensor:0", "shape": [1, 300, 300, 3]}]
            },
            "vantage": {
                "file": "models/detector.pb",
                "inputs": [
                    {
                        "name": "image_tensor:0",
                        "layout": "NHWC",
                        "elementType": "u8",
                        "colorOrder": "RGB",
                        "width": 300,
                        "height": 300
                    }
                ],
                "decoder": {"type": "ssd", "minScore": 0.3, "labels": ["background", "person"]}
            }
        }
        """,
        cameraPackage: """
        {
            "nodePackage": {
                "envelopeVersion": "2021-01-01",
                "name": "lobby_cam",
                "version": "1.0",
                "assets": [
                    {"name": "lobby_cam", "implementations": [{"type": "system", "assetUri": "source/video/camera/rtsp/source_rtsp"}]}
                ],
                "interfaces": [
                    {
                        "name": "lobby_cam",
                        "category": "media_source",
                        "asset": "lobby_cam",
                        "inputs": [
                            {"name": "username", "type": "string", "default": "admin"},
                            {"name": "password", "type": "string", "default": "secret"},
                            {"name": "streamUrl", "type": "string", "default": "rtsp://192.168.1.20:554/stream1"}
                        ],
                        "outputs": [{"name": "video_out", "type": "media"}]
                    }
                ]
            }
        }
        """,
        "packages/123456789012-code-1.0/src/app.py": "print('hello')\n",
    ]

    let root: URL

    init() throws {
        // In memory where there is a tmpfs (a fuzzer writes a file per input).
        var isDirectory: ObjCBool = false
        let base =
            FileManager.default.fileExists(atPath: "/dev/shm", isDirectory: &isDirectory) && isDirectory.boolValue
                && access("/dev/shm", W_OK) == 0
            ? URL(fileURLWithPath: "/dev/shm", isDirectory: true) : FileManager.default.temporaryDirectory
        root = base.appendingPathComponent(
            "vantage-fuzz-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString)", isDirectory: true)
        Self.live.withLock { _ = $0.insert(root.path) }
        for (path, text) in Self.files {
            try FileManager.default.createDirectory(
                at: url(path).deletingLastPathComponent(), withIntermediateDirectories: true)
            try replace(path, with: Array(text.utf8))
        }
    }

    deinit {
        try? FileManager.default.removeItem(at: root)
        Self.live.withLock { _ = $0.remove(root.path) }
    }

    /// Scratch folders not yet removed: libFuzzer ends the process with exit(), which runs no deinit, so they are
    /// also removed at exit.
    private static let live: Mutex<Set<String>> = {
        atexit {
            for path in ScratchProject.live.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: path) }
        }
        return Mutex([])
    }()

    func url(_ path: String) -> URL { root.appendingPathComponent(path) }

    /// Replaces a file's contents (plain write(2): no fsync, no temporary file, thousands of times a second).
    func replace(_ path: String, with bytes: [UInt8]) throws {
        let fd = open(url(path).path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw FuzzFinding("cannot write \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { throw FuzzFinding("cannot write \(path): \(String(cString: strerror(errno)))") }
            offset += n
        }
    }

    /// Loads the project and resolves it as `vantage run` would, with `overrides`; checks the error text of a
    /// refusal. Returns the project when it loaded.
    @discardableResult
    func loadAndResolve(_ overrides: [RunOverrides]) throws(FuzzFinding) -> ApplicationProject? {
        let project: ApplicationProject
        do {
            project = try ApplicationProject.load(root)
        } catch {
            try checkErrorText(error.description, from: "ApplicationProject.load")
            return nil
        }
        for overrides in overrides {
            try resolve(project, overrides)
        }
        return project
    }

    /// Resolves a loaded project; checks the error text of a refusal and what a resolved application promises.
    func resolve(_ project: ApplicationProject, _ overrides: RunOverrides) throws(FuzzFinding) {
        do {
            let resolved = try project.resolve(overrides)
            // What the runtime reads next: every camera's redacted form, every notice.
            for camera in resolved.cameras { _ = camera.redactedURL }
            _ = resolved.notices.joined(separator: "\n")
        } catch {
            try checkErrorText(error.description, from: "ApplicationProject.resolve")
        }
    }

    /// Loads and resolves the project as written (the seeds): it must work, or the targets would fuzz only the
    /// first check that refuses it.
    func loadCleanly() throws -> ApplicationProject {
        let project = try ApplicationProject.load(root)
        _ = try project.resolve(Self.commonOverrides[0])
        return project
    }

    /// The overrides every project target resolves with: a camera given on the command line, and none.
    /// The first resolves the project as written; the second stops at the camera without a stream.
    static let commonOverrides = [
        RunOverrides(cameras: [CameraOverride(node: "camera_node", url: "rtsp://user:pw@192.168.1.20:554/stream1")]),
        RunOverrides(),
    ]
}

/// Tokens of the manifests: their keys and words, for the dictionaries of the project targets.
let manifestTokens: [String] =
    jsonTokens + [
        "\"nodeGraph\"", "\"nodePackage\"", "\"nodeGraphOverrides\"", "\"envelopeVersion\"", "\"2021-01-01\"",
        "\"packages\"", "\"nodes\"", "\"edges\"", "\"name\"", "\"version\"", "\"interface\"", "\"value\"",
        "\"overridable\"", "\"overrideMandatory\"", "\"launch\"", "\"decorator\"", "\"constraintRegex\"",
        "\"constraintText\"", "\"producer\"", "\"consumer\"", "\"networkRoutingRules\"", "\"containerPort\"",
        "\"hostPort\"", "\"assets\"", "\"implementations\"", "\"assetUri\"", "\"interfaces\"", "\"category\"",
        "\"asset\"", "\"inputs\"", "\"outputs\"", "\"type\"", "\"default\"", "\"media\"", "\"float32\"",
        "\"int32\"", "\"string\"", "\"boolean\"", "\"business_logic\"", "\"ml_model\"", "\"media_source\"",
        "\"media_sink\"", "\"container\"", "\"model\"", "\"system\"", "\"runtimeDescriptor\"", "\"entry\"",
        "\"path\"", "\"mlModelDescriptor\"", "\"framework\"", "\"shape\"", "\"vantage\"", "\"file\"",
        "\"layout\"", "\"NHWC\"", "\"NCHW\"", "\"elementType\"", "\"colorOrder\"", "\"width\"", "\"height\"",
        "\"decoder\"", "\"ssd\"", "\"yolo\"", "\"classification\"", "\"raw\"", "\"labels\"", "\"minScore\"",
        "\"nodeOverrides\"", "\"replace\"", "\"with\"", "\"streamUrl\"", "\"username\"", "\"password\"",
        "123456789012::code", "123456789012::model", "123456789012::lobby_cam", "panorama::", "code_node",
        "model_node", "camera_node", "min_score", "max_people", ".video_out", ".video_in", "rtsp://", "file:",
        "../", "/", "${", "\\u0000", "onAppStart", "sha256:",
    ]

/// graph.json, a code package's package.json or a model package's descriptor.json: the input replaces that file of
/// the scratch project, which is then loaded and resolved. Promises checked: no trap or hang; a refusal is a
/// `ManifestError` whose text is bounded.
final class ProjectFileTarget: FuzzTarget {
    enum File {
        case graph, codePackage, modelDescriptor

        var path: String {
            switch self {
            case .graph: ScratchProject.graph
            case .codePackage: ScratchProject.codePackage
            case .modelDescriptor: ScratchProject.modelDescriptor
            }
        }
    }

    private let file: File
    private let project: ScratchProject
    let dictionary = tokens(manifestTokens)
    let maxInputLength = 64 * 1024

    init(file: File) throws {
        self.file = file
        project = try ScratchProject()
        _ = try project.loadCleanly()
    }

    func run(_ input: [UInt8]) throws(FuzzFinding) {
        do {
            try project.replace(file.path, with: input)
        } catch {
            fatalError("vantage-fuzz: cannot write the scratch project: \(error)")
        }
        try project.loadAndResolve(ScratchProject.commonOverrides)
    }
}

/// An overrides document (`vantage run --overrides FILE`), resolved against the scratch project. Promises checked:
/// no trap or hang; a refusal is a `ManifestError` whose text is bounded.
final class OverridesDocumentTarget: FuzzTarget {
    private let project: ScratchProject
    private let loaded: ApplicationProject
    let dictionary = tokens(manifestTokens)
    let maxInputLength = 64 * 1024

    /// A typical overrides document: a seed.
    static let example = """
        {
            "nodeGraphOverrides": {
                "envelopeVersion": "2021-01-01",
                "packages": [{"name": "123456789012::lobby_cam", "version": "1.0"}],
                "nodes": [{"name": "front_door", "interface": "123456789012::lobby_cam.lobby_cam"}],
                "nodeOverrides": [{"replace": "camera_node", "with": [{"name": "front_door"}]}]
            }
        }
        """

    init() throws {
        project = try ScratchProject()
        loaded = try project.loadCleanly()
    }

    func run(_ input: [UInt8]) throws(FuzzFinding) {
        let path = "overrides.json"
        do {
            try project.replace(path, with: input)
        } catch {
            fatalError("vantage-fuzz: cannot write the overrides file: \(error)")
        }
        var overrides = RunOverrides(overridesFile: project.url(path))
        try project.resolve(loaded, overrides)
        overrides.cameras = [CameraOverride(node: "camera_node", url: "rtsp://192.168.1.20/stream1")]
        try project.resolve(loaded, overrides)
    }
}

/// `vantage run`'s override arguments. Each line of the input is one: `c NODE=URL` a `--camera`, `p NAME=VALUE` a
/// `--param`, `m NODE=PATH` a `--model`, anything else a camera URL checked alone (`CameraURL.problem`). They are
/// applied to the scratch project, which is resolved with them. Promises checked: no trap or hang; a refusal is a
/// `ManifestError` whose text is bounded.
final class RunArgumentsTarget: FuzzTarget {
    private let project: ScratchProject
    private let loaded: ApplicationProject
    let dictionary = tokens([
        "\nc ", "\np ", "\nm ", "=", "camera_node=", "lobby=", "min_score=", "max_people=", "verbose=",
        "model_name=", "model_node=", "rtsp://", "rtsps://", "http://", "https://", "file:", "user:pass@", "@",
        ":554", "/stream1", "?user=admin&pwd=secret", "%40", "%", "1e309", "NaN", "-0", "2147483648", "true",
        "../", "~/", "/dev/null", "192.168.1.20:554/stream", "[::1]", "\u{0}",
    ])
    let maxInputLength = 16 * 1024

    init() throws {
        project = try ScratchProject()
        loaded = try project.loadCleanly()
    }

    func run(_ input: [UInt8]) throws(FuzzFinding) {
        let text = String(decoding: input, as: UTF8.self)
        var overrides = RunOverrides()
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let argument = String(line.dropFirst(2))
            guard ["c ", "p ", "m "].contains(line.prefix(2)) else {
                if let problem = CameraURL.problem(String(line)) {
                    try checkErrorText(problem, from: "CameraURL.problem")
                }
                continue
            }
            do throws(ManifestError) {
                switch line.prefix(2) {
                case "c ": try overrides.addCamera(argument: argument)
                case "p ": try overrides.addParameter(argument: argument)
                default: try overrides.addModel(argument: argument)
                }
            } catch {
                try checkErrorText(error.description, from: "RunOverrides")
            }
        }
        for camera in overrides.cameras { try checkRedacted(camera) }
        try project.resolve(loaded, overrides)
    }

    /// A `--camera` argument as shown (`NODE=URL` in messages and logs) must not show the URL's `user:password@`.
    private func checkRedacted(_ camera: CameraOverride) throws(FuzzFinding) {
        guard let scheme = camera.url.range(of: "://") else { return }
        let authority = camera.url[scheme.upperBound...].prefix { $0 != "/" }
        guard let at = authority.lastIndex(of: "@"), authority[..<at].contains(":") else { return }
        let userInfo = authority[..<at]
        // The node name is shown as typed; only the URL after it is redacted.
        if camera.description.dropFirst(camera.node.count + 1).contains("://\(userInfo)@") {
            throw FuzzFinding("--camera \(camera.node.prefix(64))=… is shown with the user and password of its URL")
        }
    }
}
