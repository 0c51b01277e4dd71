import Foundation
import Testing

@testable import VantageApp

/// Broken projects and overrides: each error must name the file, the node or key, and the fix.
@Suite("Manifest errors")
struct ManifestErrorTests {
    let graph = ProjectFixture.graphPath

    // MARK: Project layout

    @Test("two graph folders")
    func twoGraphs() throws {
        var fixture = ProjectFixture.standard
        fixture.files["graphs/other/graph.json"] = fixture.files[graph]
        try expectManifestError(
            fixture, code: .multipleGraphs, file: "graphs/", mentions: ["app, other", "exactly one application"])
    }

    @Test("no graph folder")
    func noGraph() throws {
        var fixture = ProjectFixture.standard
        fixture.files[graph] = nil
        try expectManifestError(fixture, code: .missingGraph, file: "graphs/", mentions: ["graphs/", "graph.json"])
    }

    @Test("malformed JSON, with its line and column")
    func malformedJSON() throws {
        var fixture = ProjectFixture.standard
        fixture.files[graph] =
            "{\n  \"nodeGraph\": {\n    \"envelopeVersion\": \"2021-01-01\"\n    \"packages\": []\n  }\n}\n"
        let error = try expectManifestError(
            fixture, code: .invalidJSON, file: graph,
            mentions: [
                "graphs/app/graph.json:4:5:",
                "a comma is missing between the value of \"envelopeVersion\" and the next key",
                "fix the JSON at line 4, column 5",
            ])
        #expect(error?.line == 4)
        #expect(error?.column == 5)
    }

    @Test("a trailing comma is named as such")
    func trailingComma() throws {
        var fixture = ProjectFixture.standard
        fixture.replace(
            ProjectFixture.codePackagePath, "{\"name\": \"video_out\", \"type\": \"media\"}",
            with: "{\"name\": \"video_out\", \"type\": \"media\"},")
        try expectManifestError(
            fixture, code: .invalidJSON, file: ProjectFixture.codePackagePath, mentions: ["trailing comma"])
    }

    // MARK: graph.json

    @Test("bad envelopeVersion")
    func envelopeVersion() throws {
        var fixture = ProjectFixture.standard
        fixture.replace(graph, "\"envelopeVersion\": \"2021-01-01\"", with: "\"envelopeVersion\": \"2020-12-01\"")
        let error = try expectManifestError(
            fixture, code: .unsupportedEnvelopeVersion, file: graph,
            mentions: ["\"2020-12-01\"", "nodeGraph", "\"envelopeVersion\": \"2021-01-01\""])
        #expect(error?.key == "envelopeVersion")
        #expect(error?.line == 3)
    }

    @Test("unknown key in a node, with a spelling suggestion")
    func unknownKey() throws {
        var fixture = ProjectFixture.standard
        fixture.replace(graph, "\"overridable\": true,\n", with: "\"overidable\": true,\n")
        let error = try expectManifestError(
            fixture, code: .unknownKey, file: graph,
            mentions: ["unknown key \"overidable\" in node \"camera_node\"", "did you mean \"overridable\"?"])
        #expect(error?.node == "camera_node")
        #expect(error?.key == "overidable")
    }

    @Test("unknown key at the top of nodeGraph")
    func unknownTopLevelKey() throws {
        var fixture = ProjectFixture.standard
        fixture.replace(
            graph, "\"envelopeVersion\": \"2021-01-01\",",
            with: "\"envelopeVersion\": \"2021-01-01\", \"name\": \"app\",")
        try expectManifestError(
            fixture, code: .unknownKey, file: graph, mentions: ["unknown key \"name\" in nodeGraph", "\"packages\""])
    }

    @Test("bad node name")
    func badNodeName() throws {
        var fixture = ProjectFixture.standard
        fixture.replace(graph, "{\"name\": \"output_node\"", with: "{\"name\": \"output node\"")
        fixture.replace(graph, "\"consumer\": \"output_node.video_in\"", with: "\"consumer\": \"output node.video_in\"")
        try expectManifestError(
            fixture, code: .invalidName, file: graph, mentions: ["\"output node\"", "e.g. \"output_node\""])
    }

    @Test("two nodes with one name")
    func duplicateNode() throws {
        var fixture = ProjectFixture.standard
        fixture.replace(graph, "{\"name\": \"model_name\"", with: "{\"name\": \"max_people\"")
        try expectManifestError(fixture, code: .duplicateName, file: graph, mentions: ["\"max_people\"", "own name"])
    }

    @Test("a parameter whose value is not of its type")
    func parameterTypeMismatch() throws {
        var fixture = ProjectFixture.standard
        fixture.replace(graph, "\"value\": 0.5", with: "\"value\": \"high\"")
        let error = try expectManifestError(
            fixture, code: .parameterTypeMismatch, file: graph,
            mentions: ["parameter node \"min_score\" is float32 but its value is a string", "\"value\": 0.5"])
        #expect(error?.key == "value")
    }

    @Test("an int32 parameter out of range")
    func int32OutOfRange() throws {
        var fixture = ProjectFixture.standard
        fixture.replace(graph, "\"value\": 5", with: "\"value\": 3000000000")
        try expectManifestError(
            fixture, code: .parameterTypeMismatch, file: graph, mentions: ["\"max_people\"", "int32", "\"value\": 5"])
    }

    @Test("a package name without a 12-digit owner")
    func badPackageName() throws {
        var fixture = ProjectFixture.standard
        fixture.replace(graph, "{\"name\": \"123456789012::code\"", with: "{\"name\": \"acme::code\"")
        try expectManifestError(
            fixture, code: .invalidName, file: graph, mentions: ["\"acme::code\"", "12-digit", "\"panorama\""])
    }

    // MARK: Packages and interfaces

    @Test("a declared package without its folder")
    func missingPackageFolder() throws {
        var fixture = ProjectFixture.standard
        fixture.files[ProjectFixture.modelPackagePath] = nil
        fixture.files[ProjectFixture.modelDescriptorPath] = nil
        let error = try expectManifestError(
            fixture, code: .missingPackage, file: graph,
            mentions: [
                "package 123456789012::model 1.0 has no folder packages/123456789012-model-1.0/",
                "create-package --name model", "packages/ holds 123456789012-code-1.0",
            ])
        #expect(error?.key == "nodeGraph.packages[1]")
    }

    @Test("a node using a package the graph does not declare")
    func undeclaredPackage() throws {
        var fixture = ProjectFixture.standard
        fixture.replace(graph, "{\"name\": \"123456789012::model\", \"version\": \"1.0\"},", with: "")
        let error = try expectManifestError(
            fixture, code: .undeclaredPackage, file: graph,
            mentions: [
                "node \"model_node\" uses package 123456789012::model",
                "add {\"name\": \"123456789012::model\", \"version\": \"1.0\"}",
            ])
        #expect(error?.node == "model_node")
    }

    @Test("a node naming an interface its package lacks")
    func unknownInterface() throws {
        var fixture = ProjectFixture.standard
        fixture.replace(graph, "123456789012::code.code_interface", with: "123456789012::code.interface")
        try expectManifestError(
            fixture, code: .unknownInterface, file: graph,
            mentions: [
                "node \"code_node\"", "\"interface\"", packagesFile("code"), "use 123456789012::code.code_interface",
            ])
    }

    @Test("a port name with a hyphen")
    func hyphenatedPort() throws {
        var fixture = ProjectFixture.standard
        fixture.replace(ProjectFixture.codePackagePath, "{\"name\": \"video_in\"", with: "{\"name\": \"video-in\"")
        try expectManifestError(
            fixture, code: .invalidName, file: ProjectFixture.codePackagePath,
            mentions: ["port name \"video-in\" of interface \"code_interface\"", "no '-'", "e.g. \"video_in\""])
    }

    @Test("an unknown interface category")
    func badCategory() throws {
        var fixture = ProjectFixture.standard
        fixture.replace(ProjectFixture.codePackagePath, "\"business_logic\"", with: "\"businesslogic\"")
        try expectManifestError(
            fixture, code: .invalidValue, file: ProjectFixture.codePackagePath,
            mentions: ["\"category\"", "interface \"code_interface\"", "did you mean \"business_logic\"?"])
    }

    @Test("package.json disagreeing with the graph about the name")
    func packageMismatch() throws {
        var fixture = ProjectFixture.standard
        fixture.replace(ProjectFixture.codePackagePath, "\"name\": \"code\",", with: "\"name\": \"kode\",")
        try expectManifestError(
            fixture, code: .packageMismatch, file: ProjectFixture.codePackagePath,
            mentions: ["\"kode\"", "123456789012::code", "\"name\": \"code\""])
    }

    // MARK: Descriptors

    @Test("a code package without a descriptor")
    func missingCodeDescriptor() throws {
        var fixture = ProjectFixture.standard
        fixture.files[ProjectFixture.codeDescriptorPath] = nil
        try expectManifestError(
            fixture, code: .missingDescriptor, file: graph,
            mentions: [
                "code node \"code_node\" has no descriptor", "create packages/123456789012-code-1.0/descriptor.json",
                "runtimeDescriptor",
            ])
    }

    @Test("a model descriptor without the vantage block")
    func missingVantageBlock() throws {
        var fixture = ProjectFixture.standard
        fixture.files[ProjectFixture.modelDescriptorPath] = """
            {"mlModelDescriptor": {"envelopeVersion": "2021-01-01", "framework": "PYTORCH",
                                   "inputs": [{"name": "data", "shape": [1, 3, 224, 224]}]}}
            """
        let error = try expectManifestError(
            fixture, code: .missingModelSpec, file: ProjectFixture.modelDescriptorPath,
            mentions: [
                "model node \"model_node\" has no \"vantage\" block", "\"vantage\": {\"file\":", "{\"name\": \"data\"",
            ])
        #expect(error?.node == "model_node")
        #expect(error?.description.contains("--model model_node=PATH") == true)
        #expect(error?.description.contains("\"data\" [1, 3, 224, 224]") == true)
    }

    @Test("--model supplies the file of a model node whose descriptor has no vantage block")
    func modelFlagServesNeoProject() throws {
        var fixture = ProjectFixture.standard
        fixture.files[ProjectFixture.modelDescriptorPath] = """
            {"mlModelDescriptor": {"envelopeVersion": "2021-01-01", "framework": "PYTORCH",
                                   "inputs": [{"name": "data", "shape": [1, 3, 224, 224]}]}}
            """
        let project = try TemporaryProject(fixture)
        let file = project.url.appendingPathComponent("resnet.onnx")
        try Data("not really a model".utf8).write(to: file)
        var overrides = oneCamera
        try overrides.addModel(argument: "model_node=\(file.path)")
        let model = try #require(try project.resolve(overrides).model(named: "model_node"))
        #expect(model.modelFile.path == file.path)
        #expect(model.spec.inputs.first?.name == "data")
        #expect(model.spec.inputs.first?.width == 224 && model.spec.inputs.first?.layout == "NCHW")
        #expect(model.spec.decoder.type == .raw)

        var wrongNode = oneCamera
        try wrongNode.addModel(argument: "code_node=\(file.path)")
        let notModel = try expectManifestError(
            fixture, overrides: wrongNode, code: .invalidArgument, file: nil,
            mentions: ["--model code_node=", "not a model", "model nodes: model_node"])
        #expect(notModel != nil)
        var missingFile = oneCamera
        try missingFile.addModel(argument: "model_node=/nonexistent/model.onnx")
        _ = try expectManifestError(
            fixture, overrides: missingFile, code: .invalidArgument, file: nil,
            mentions: ["--model model_node=/nonexistent/model.onnx: the file does not exist"])
    }

    @Test("an unknown key in the vantage block")
    func unknownVantageKey() throws {
        var fixture = ProjectFixture.standard
        fixture.replace(
            ProjectFixture.modelDescriptorPath, "\"decoder\": {\"type\": \"ssd\"",
            with: "\"decoder\": {\"type\": \"ssd\", \"min_score\": 0.4")
        try expectManifestError(
            fixture, code: .unknownKey, file: ProjectFixture.modelDescriptorPath,
            mentions: ["\"min_score\" in vantage.decoder", "did you mean \"minScore\"?"])
    }

    @Test("an unknown decoder type")
    func unknownDecoder() throws {
        var fixture = ProjectFixture.standard
        fixture.replace(ProjectFixture.modelDescriptorPath, "{\"type\": \"ssd\"", with: "{\"type\": \"yolov8\"")
        try expectManifestError(
            fixture, code: .invalidValue, file: ProjectFixture.modelDescriptorPath,
            mentions: ["\"type\" in vantage.decoder is \"yolov8\"", "\"ssd\", \"yolo\", \"classification\", \"raw\""])
    }

    @Test("a descriptorUri leaving the project")
    func descriptorEscapes() throws {
        var fixture = ProjectFixture.standard
        fixture.replace(
            ProjectFixture.codePackagePath, "\"assetUri\": \"code.tar.gz\"",
            with: "\"assetUri\": \"code.tar.gz\", \"descriptorUri\": \"../../etc/descriptor.json\"")
        let error = try expectManifestError(
            fixture, code: .pathEscapesProject, file: ProjectFixture.codePackagePath,
            mentions: [
                "descriptorUri \"../../etc/descriptor.json\" of asset \"code_asset\" leaves the project", "assets/",
            ])
        #expect(error?.key == "descriptorUri")
    }

    // MARK: Edges

    @Test("an edge to a node that does not exist")
    func edgeToMissingNode() throws {
        var fixture = ProjectFixture.standard
        fixture.replace(graph, "\"consumer\": \"output_node.video_in\"", with: "\"consumer\": \"outptu_node.video_in\"")
        let error = try expectManifestError(
            fixture, code: .unknownNode, file: graph,
            mentions: [
                "edge code_node.video_out -> outptu_node.video_in", "no node \"outptu_node\"",
                "did you mean \"output_node\"?",
            ])
        #expect(error?.edge == "code_node.video_out -> outptu_node.video_in")
    }

    @Test("an edge to a port that does not exist, listing the ports")
    func edgeToMissingPort() throws {
        var fixture = ProjectFixture.standard
        fixture.replace(graph, "\"consumer\": \"code_node.min_score\"", with: "\"consumer\": \"code_node.threshold\"")
        try expectManifestError(
            fixture, code: .unknownPort, file: graph,
            mentions: [
                "node \"code_node\" has no input port \"threshold\"",
                "video_in (media), min_score (float32), max_people (int32), model_name (string)",
            ])
    }

    @Test("an edge between ports of different types")
    func edgeTypeMismatch() throws {
        var fixture = ProjectFixture.standard
        fixture.replace(graph, "{\"producer\": \"min_score\", \"consumer\": \"code_node.min_score\"},", with: "")
        fixture.replace(graph, "\"consumer\": \"code_node.max_people\"", with: "\"consumer\": \"code_node.min_score\"")
        try expectManifestError(
            fixture, code: .edgeTypeMismatch, file: graph,
            mentions: ["max_people delivers int32 but code_node.min_score takes float32", "\"interface\": \"float32\""])
    }

    @Test("an edge to a model node")
    func edgeToModel() throws {
        var fixture = ProjectFixture.standard
        fixture.replace(
            graph, "{\"producer\": \"code_node.video_out\"",
            with:
                "{\"producer\": \"camera_node.video_out\", \"consumer\": \"model_node.video_in\"},\n{\"producer\": \"code_node.video_out\""
        )
        let error = try expectManifestError(
            fixture, code: .modelEdge, file: graph,
            mentions: ["model node \"model_node\"", "models are called from code by name"])
        #expect(error?.node == "model_node")
    }

    @Test("two producers on one parameter port")
    func twoProducers() throws {
        var fixture = ProjectFixture.standard
        fixture.replace(
            graph, "{\"name\": \"model_name\"",
            with:
                "{\"name\": \"fallback_score\", \"interface\": \"float32\", \"value\": 0.1},\n{\"name\": \"model_name\""
        )
        fixture.replace(
            graph, "{\"producer\": \"min_score\", \"consumer\": \"code_node.min_score\"},",
            with:
                "{\"producer\": \"min_score\", \"consumer\": \"code_node.min_score\"}, {\"producer\": \"fallback_score\", \"consumer\": \"code_node.min_score\"},"
        )
        try expectManifestError(
            fixture, code: .tooManyProducers, file: graph,
            mentions: ["code_node.min_score already has a producer (min_score)", "remove one of the edges"])
    }

    @Test("a code input with no edge and no default")
    func unboundInput() throws {
        var fixture = ProjectFixture.standard
        fixture.replace(graph, "{\"producer\": \"max_people\", \"consumer\": \"code_node.max_people\"},", with: "")
        let error = try expectManifestError(
            fixture, code: .unboundInput, file: graph,
            mentions: [
                "input port \"max_people\" (int32) of code node \"code_node\" has no edge and no default",
                "\"consumer\": \"code_node.max_people\"", "\"default\"", packagesFile("code"),
            ])
        #expect(error?.node == "code_node")
    }

    // MARK: Overrides

    @Test("an abstract camera without an override")
    func abstractCameraWithoutOverride() throws {
        let error = try expectManifestError(
            .standard, overrides: RunOverrides(), code: .missingOverride, file: graph,
            mentions: ["camera node \"camera_node\" has no stream", "abstract", "--camera camera_node=rtsp://"])
        #expect(error?.line != nil)
    }

    @Test("--camera for a node that does not exist")
    func cameraOnUnknownNode() throws {
        try expectManifestError(
            .standard, overrides: RunOverrides(cameras: [CameraOverride(node: "camera", url: "rtsp://cam/s")]),
            code: .unknownCamera, file: nil,
            mentions: ["--camera camera=…: the application has no node \"camera\"", "camera nodes: camera_node"])
    }

    @Test("--camera for a node that is not a camera")
    func cameraOnCodeNode() throws {
        try expectManifestError(
            .standard, overrides: RunOverrides(cameras: [CameraOverride(node: "code_node", url: "rtsp://cam/s")]),
            code: .unknownCamera, file: nil, mentions: ["\"code_node\" is a code node", "camera nodes: camera_node"])
    }

    @Test("--param for a node that does not exist")
    func paramOnUnknownNode() throws {
        try expectManifestError(
            .standard, overrides: RunOverrides(cameras: oneCamera.cameras, parameters: ["min_scor": "0.2"]),
            code: .unknownParameter, file: nil,
            mentions: [
                "--param min_scor=0.2", "did you mean \"min_score\"?",
                "min_score (float32), max_people (int32), model_name (string)",
            ])
    }

    @Test("--param with a value that is not of the parameter's type")
    func badParamValue() throws {
        try expectManifestError(
            .standard, overrides: RunOverrides(cameras: oneCamera.cameras, parameters: ["max_people": "lots"]),
            code: .invalidParameterValue, file: nil,
            mentions: ["--param max_people=lots", "int32", "whole number", "--param max_people=5"])
    }

    @Test("a camera URL with an unsupported scheme")
    func unsupportedScheme() throws {
        try expectManifestError(
            .standard,
            overrides: RunOverrides(cameras: [CameraOverride(node: "camera_node", url: "udp://239.0.0.1:1234")]),
            code: .unsupportedURL, file: nil, mentions: ["\"udp\" URLs are not supported", "rtsp://", "file:"])
    }

    @Test("a camera address without its scheme")
    func missingScheme() throws {
        try expectManifestError(
            .standard,
            overrides: RunOverrides(cameras: [CameraOverride(node: "camera_node", url: "192.168.1.20:554/live")]),
            code: .unsupportedURL, file: nil, mentions: ["rtsp://192.168.1.20:554/live"])
    }

    @Test("--camera without '='")
    func cameraArgumentSyntax() {
        var overrides = RunOverrides()
        let error = #expect(throws: ManifestError.self) { try overrides.addCamera(argument: "rtsp://cam/stream") }
        #expect(error?.code == .invalidArgument)
        #expect(error?.description.contains("--camera NODE=URL") == true)
    }

    @Test("a mandatory parameter override that was not given")
    func mandatoryParameter() throws {
        var fixture = ProjectFixture.standard
        fixture.replace(
            graph, "\"value\": 5, \"overridable\": true",
            with: "\"value\": 5, \"overridable\": true, \"overrideMandatory\": true")
        try expectManifestError(
            fixture, code: .missingOverride, file: graph, mentions: ["\"max_people\"", "--param max_people=VALUE"])
    }

    @Test("an overrides document replacing a node that is not overridable")
    func overrideNotOverridable() throws {
        var fixture = ProjectFixture.standard
        fixture.files["overrides.json"] = """
            {"nodeGraphOverrides": {"envelopeVersion": "2021-01-01",
                "nodes": [{"name": "name_override", "interface": "string", "value": "other"}],
                "nodeOverrides": [{"replace": "model_name", "with": [{"name": "name_override"}]}]}}
            """
        let project = try TemporaryProject(fixture)
        let error = #expect(throws: ManifestError.self) {
            try project.resolve(
                RunOverrides(
                    cameras: oneCamera.cameras, overridesFile: project.url.appendingPathComponent("overrides.json")))
        }
        #expect(error?.code == .invalidOverride)
        #expect(error?.file == "overrides.json")
        #expect(error?.description.contains("set \"overridable\": true on node \"model_name\"") == true)
    }

    @Test("an overrides document replacing a camera with an undeclared node")
    func overrideWithUndeclaredNode() throws {
        var fixture = ProjectFixture.standard
        fixture.files["overrides.json"] = """
            {"nodeGraphOverrides": {"envelopeVersion": "2021-01-01",
                "nodeOverrides": [{"replace": "camera_node", "with": [{"name": "lobby"}]}]}}
            """
        let project = try TemporaryProject(fixture)
        let error = #expect(throws: ManifestError.self) {
            try project.resolve(RunOverrides(overridesFile: project.url.appendingPathComponent("overrides.json")))
        }
        #expect(error?.code == .unknownNode)
        #expect(error?.file == "overrides.json")
        #expect(error?.description.contains("declare it in nodeGraphOverrides.nodes") == true)
    }

    @Test("an overrides document replacing a parameter with one of another type")
    func overrideParameterType() throws {
        var fixture = ProjectFixture.standard
        fixture.files["overrides.json"] = """
            {"nodeGraphOverrides": {"envelopeVersion": "2021-01-01",
                "nodes": [{"name": "score_override", "interface": "string", "value": "0.9"}],
                "nodeOverrides": [{"replace": "min_score", "with": [{"name": "score_override"}]}]}}
            """
        let project = try TemporaryProject(fixture)
        let error = #expect(throws: ManifestError.self) {
            try project.resolve(
                RunOverrides(
                    cameras: oneCamera.cameras, overridesFile: project.url.appendingPathComponent("overrides.json")))
        }
        #expect(error?.code == .invalidOverride)
        #expect(error?.file == "overrides.json")
        #expect(
            error?.description.contains(
                "\"min_score\" is a float32 parameter, but \"score_override\" is a string parameter node") == true)
    }

    @Test("a graph given as the overrides document")
    func graphAsOverrides() throws {
        let project = try TemporaryProject(.standard)
        let error = #expect(throws: ManifestError.self) {
            try project.resolve(
                RunOverrides(overridesFile: project.url.appendingPathComponent(ProjectFixture.graphPath)))
        }
        #expect(error?.code == .unknownKey)
        #expect(error?.file == ProjectFixture.graphPath)
        #expect(error?.description.contains("{\"nodeGraphOverrides\": {") == true)
    }

    @Test("a camera package still holding the template's placeholder URL")
    func templateCamera() throws {
        var fixture = ProjectFixture.standard
        fixture.addCameraPackage("lobby", url: "rtsp://<stream url>", username: "<username>", password: "<password>")
        fixture.replace(
            graph, "{\"name\": \"panorama::hdmi_data_sink\", \"version\": \"1.0\"}",
            with:
                "{\"name\": \"panorama::hdmi_data_sink\", \"version\": \"1.0\"}, {\"name\": \"123456789012::lobby\", \"version\": \"1.0\"}"
        )
        fixture.replace(
            graph, "\"panorama::abstract_rtsp_media_source.rtsp_v1_interface\"", with: "\"123456789012::lobby.lobby\"")
        try expectManifestError(
            fixture, overrides: RunOverrides(), code: .missingOverride, file: graph,
            mentions: ["placeholder", "packages/123456789012-lobby-1.0/package.json", "--camera camera_node=rtsp://"])
    }

    @Test("a routing rule for a port the interface does not list")
    func routingRule() throws {
        var fixture = ProjectFixture.standard
        fixture.replace(
            graph, "\"edges\": [",
            with:
                "\"networkRoutingRules\": [{\"node\": \"code_node\", \"containerPort\": 8080, \"hostPort\": 8081}],\n\"edges\": ["
        )
        try expectManifestError(
            fixture, code: .invalidRoutingRule, file: graph,
            mentions: ["port 8080 of \"code_node\"", "\"inboundPorts\"", packagesFile("code")])
    }

    func packagesFile(_ name: String) -> String { "packages/123456789012-\(name)-1.0/package.json" }
}
