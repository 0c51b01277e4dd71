import Foundation
import Testing

@testable import VantageApp

@Suite("Resolving an application with overrides")
struct ResolveTests {
    @Test("repeating --camera gives NODE_1, NODE_2 delivered together as one list")
    func repeatedCamera() throws {
        let project = try TemporaryProject(.standard)
        var overrides = RunOverrides()
        try overrides.addCamera(argument: "camera_node=rtsp://10.0.0.1/a")
        try overrides.addCamera(argument: "camera_node=file:///videos/lobby.mp4")
        let app = try project.resolve(overrides)
        #expect(app.cameras.map(\.name) == ["camera_node_1", "camera_node_2"])
        #expect(app.cameras.map(\.url) == ["rtsp://10.0.0.1/a", "file:///videos/lobby.mp4"])
        #expect(app.cameras.allSatisfy { $0.graphNode == "camera_node" })
        #expect(
            app.codeNode(named: "code_node")?.input(named: "video_in")?.binding
                == .cameras(["camera_node_1", "camera_node_2"]))
    }

    @Test("--param values are read as their node's type and win over graph.json")
    func parameters() throws {
        let project = try TemporaryProject(.standard)
        var overrides = oneCamera
        try overrides.addParameter(argument: "min_score=0.75")
        try overrides.addParameter(argument: "max_people=12")
        try overrides.addParameter(argument: "model_name=other=model")
        let app = try project.resolve(overrides)
        let code = try #require(app.codeNode(named: "code_node"))
        #expect(code.input(named: "min_score")?.binding == .parameter(.float32(0.75)))
        #expect(code.input(named: "max_people")?.binding == .parameter(.int32(12)))
        #expect(code.input(named: "model_name")?.binding == .parameter(.string("other=model")))
        #expect(app.parameters["max_people"] == .int32(12))
    }

    @Test(
        "parameter values parse per type",
        arguments: [
            ("42", PortType.int32, ParameterValue.int32(42)), ("-7", .int32, .int32(-7)),
            ("0.25", .float32, .float32(0.25)),
            ("3", .float32, .float32(3)), ("true", .boolean, .boolean(true)), ("0", .boolean, .boolean(false)),
            ("FALSE", .boolean, .boolean(false)), ("hello world", .string, .string("hello world")),
        ])
    func parameterParsing(text: String, type: PortType, expected: ParameterValue) {
        #expect(ParameterValue(parsing: text, as: type) == expected)
    }

    @Test(
        "values that are not of the type are refused",
        arguments: [
            ("2147483648", PortType.int32), ("1.5", .int32), ("many", .int32), ("abc", .float32), ("inf", .float32),
            ("yes", .boolean), ("2", .boolean), ("x", .media),
        ])
    func parameterParsingFails(text: String, type: PortType) {
        #expect(ParameterValue(parsing: text, as: type) == nil)
    }

    @Test("an overrides document replaces the camera with camera packages and a parameter with a new node")
    func overridesDocument() throws {
        var fixture = ProjectFixture.standard
        fixture.addCameraPackage("lobby", url: "rtsp://10.0.0.7:554/lobby", username: "viewer", password: "hunter2")
        fixture.addCameraPackage("dock", url: "rtsp://10.0.0.8:554/dock", username: "", password: "")
        fixture.files["overrides.json"] = """
            {"nodeGraphOverrides": {
                "envelopeVersion": "2021-01-01",
                "packages": [{"name": "123456789012::lobby", "version": "1.0"}, {"name": "123456789012::dock", "version": "1.0"}],
                "nodes": [
                    {"name": "lobby", "interface": "123456789012::lobby.lobby", "launch": "onAppStart"},
                    {"name": "dock", "interface": "123456789012::dock.dock", "launch": "onSignal"},
                    {"name": "min_score_override", "interface": "float32", "value": 0.9},
                    {"name": "max_people_override", "interface": "int32", "value": 2}
                ],
                "nodeOverrides": [
                    {"replace": "camera_node", "with": [{"name": "lobby"}, {"name": "dock"}]},
                    {"replace": "min_score", "with": [{"name": "min_score_override"}]},
                    {"replace": "max_people", "with": [{"name": "max_people_override"}]}
                ]
            }}
            """
        let project = try TemporaryProject(fixture)
        // The command line wins over the document.
        let app = try project.resolve(
            RunOverrides(
                parameters: ["max_people": "3"], overridesFile: project.url.appendingPathComponent("overrides.json")))
        var dock = CameraSource(name: "dock", url: "rtsp://10.0.0.8:554/dock", graphNode: "camera_node")
        dock.launch = .onSignal  // the replacing node's launch: it starts paused until resumed
        #expect(
            app.cameras == [
                CameraSource(
                    name: "lobby", url: "rtsp://10.0.0.7:554/lobby", username: "viewer", password: "hunter2",
                    graphNode: "camera_node"),
                dock,
            ])
        let code = try #require(app.codeNode(named: "code_node"))
        #expect(code.input(named: "video_in")?.binding == .cameras(["lobby", "dock"]))
        #expect(code.input(named: "min_score")?.binding == .parameter(.float32(0.9)))
        #expect(code.input(named: "max_people")?.binding == .parameter(.int32(3)))
    }

    @Test("a camera package with a stream needs no override")
    func concreteCamera() throws {
        var fixture = ProjectFixture.standard
        fixture.addCameraPackage("lobby", url: "rtsp://10.0.0.7/lobby")
        fixture.replace(
            ProjectFixture.graphPath, "{\"name\": \"panorama::hdmi_data_sink\", \"version\": \"1.0\"}",
            with:
                "{\"name\": \"panorama::hdmi_data_sink\", \"version\": \"1.0\"}, {\"name\": \"123456789012::lobby\", \"version\": \"1.0\"}"
        )
        fixture.replace(
            ProjectFixture.graphPath, "\"panorama::abstract_rtsp_media_source.rtsp_v1_interface\"",
            with: "\"123456789012::lobby.lobby\"")
        fixture.replace(ProjectFixture.graphPath, "\"overrideMandatory\": true", with: "\"overrideMandatory\": false")
        let app = try TemporaryProject(fixture).resolve()
        #expect(
            app.cameras == [
                CameraSource(
                    name: "camera_node", url: "rtsp://10.0.0.7/lobby", username: "admin", password: "secret",
                    graphNode: "camera_node")
            ])
    }

    @Test("an input with a default in package.json needs no edge")
    func portDefault() throws {
        var fixture = ProjectFixture.standard
        fixture.replace(
            ProjectFixture.graphPath, "{\"producer\": \"max_people\", \"consumer\": \"code_node.max_people\"},",
            with: "")
        fixture.replace(
            ProjectFixture.codePackagePath, "{\"name\": \"max_people\", \"type\": \"int32\"}",
            with: "{\"name\": \"max_people\", \"type\": \"int32\", \"default\": 9}")
        let app = try TemporaryProject(fixture).resolve(oneCamera)
        #expect(app.codeNode(named: "code_node")?.input(named: "max_people")?.binding == .parameter(.int32(9)))
    }

    @Test("a Python entry's /panorama/ paths point at the package's src/")
    func pythonEntry() throws {
        var fixture = ProjectFixture.standard
        fixture.files[ProjectFixture.codeDescriptorPath] = """
            {"runtimeDescriptor": {"envelopeVersion": "2021-01-01", "entry": {
                "path": "python3", "name": "/panorama/app.py", "arguments": ["--config", "/panorama/config.json", "-v"],
                "environment": [{"name": "LOG_LEVEL", "value": "DEBUG"}]}}}
            """
        let project = try TemporaryProject(fixture)
        let code = try #require(try project.resolve(oneCamera).codeNode(named: "code_node"))
        let src = code.sourceDirectory.path
        #expect(
            code.entry
                == Entry(
                    executable: "python3", arguments: ["\(src)/app.py", "--config", "\(src)/config.json", "-v"],
                    environment: ["LOG_LEVEL": "DEBUG"]))
        #expect(src.hasSuffix("packages/123456789012-code-1.0/src"))
    }

    @Test("a descriptor can come from assets/ through the asset's descriptorUri")
    func descriptorFromAssets() throws {
        var fixture = ProjectFixture.standard
        fixture.files["assets/0123abcd.json"] = fixture.files[ProjectFixture.codeDescriptorPath]
        fixture.files[ProjectFixture.codeDescriptorPath] = nil
        fixture.replace(
            ProjectFixture.codePackagePath, "\"assetUri\": \"code.tar.gz\"",
            with: "\"assetUri\": \"code.tar.gz\", \"descriptorUri\": \"0123abcd.json\"")
        let app = try TemporaryProject(fixture).resolve(oneCamera)
        #expect(app.codeNode(named: "code_node")?.entry.executable == "people-counter")
    }

    @Test("a model file path may be absolute or lead outside the project")
    func modelFile() throws {
        var fixture = ProjectFixture.standard
        fixture.replace(
            ProjectFixture.modelDescriptorPath, "\"models/detector.pb\"", with: "\"../shared/detector.onnx\"")
        let project = try TemporaryProject(fixture)
        let model = try #require(try project.resolve(oneCamera).model(named: "model_node"))
        #expect(
            model.modelFile
                == project.url.deletingLastPathComponent().appendingPathComponent("shared/detector.onnx")
                .standardizedFileURL)

        var absolute = ProjectFixture.standard
        absolute.replace(
            ProjectFixture.modelDescriptorPath, "\"models/detector.pb\"", with: "\"/opt/models/yolo.onnx\"")
        #expect(
            try TemporaryProject(absolute).resolve(oneCamera).models.first?.modelFile.path == "/opt/models/yolo.onnx")
    }

    @Test(
        "accepted camera URLs",
        arguments: [
            "rtsp://cam/stream", "rtsps://user:pw@cam:322/s", "http://cam/mjpeg", "https://cam/live.m3u8",
            "file:///videos/a.mp4", "/videos/a.mp4", "videos/a.mp4", "./a.mp4",
        ])
    func acceptedURLs(url: String) {
        #expect(CameraURL.problem(url) == nil)
    }

    @Test("--camera splits at the first '=' so URLs may contain one")
    func cameraArgument() throws {
        let override = try CameraOverride(argument: "camera_node=rtsp://cam/stream?channel=1&subtype=0")
        #expect(override == CameraOverride(node: "camera_node", url: "rtsp://cam/stream?channel=1&subtype=0"))
    }
}
