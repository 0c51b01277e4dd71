import Foundation
import Testing
import VantageCore

@testable import VantageApp

/// The repository's root, found from this file (through the symlinks a scratch package may use).
let repositoryRoot = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

let peopleCounter = repositoryRoot.appendingPathComponent("examples/people-counter")

@Suite("The people-counter example")
struct ExampleProjectTests {
    @Test("loads as the people-counter application")
    func loads() throws {
        let project = try ApplicationProject.load(peopleCounter)
        #expect(project.name == "people-counter")
        #expect(project.graph.nodes.map(\.name).contains("camera_node"))
        #expect(
            project.packages.keys.sorted() == [
                "123456789012::people_counter_code", "123456789012::people_detector",
                "panorama::abstract_rtsp_media_source", "panorama::hdmi_data_sink",
            ])
    }

    @Test("--param values must match the manifest's constraint regex; the deployment inputs carry it")
    func constrainedParameter() throws {
        let project = try ApplicationProject.load(peopleCounter)
        var overrides = RunOverrides(cameras: [CameraOverride(node: "camera_node", url: "rtsp://10.0.0.5/a")])
        try overrides.addParameter(argument: "min_score=1.5")
        #expect {
            try project.resolve(overrides)
        } throws: { error in
            let error = error as? ManifestError
            return error?.code == .invalidParameterValue && "\(error!)".contains("A number from 0 to 1")
        }
        try overrides.addParameter(argument: "min_score=0.6")
        #expect(try project.resolve(overrides).parameters["min_score"] == .float32(0.6))

        let minScore = try #require(project.inputs.parameters.first { $0.node == "min_score" })
        #expect(minScore.overridable && minScore.title == "Minimum score" && minScore.constraintRegex != nil)
        #expect(throws: ApplicationInputs.CheckFailure.self) { try ApplicationInputs.check("1.5", for: minScore).get() }
        #expect(try ApplicationInputs.check("0.25", for: minScore).get() == .float32(0.25))
        #expect(project.inputs.cameras.map(\.node) == ["camera_node"])
    }

    @Test("resolves with --camera camera_node=URL into camera, code node, model and sink")
    func resolves() throws {
        let project = try ApplicationProject.load(peopleCounter)
        let app = try project.resolve(
            RunOverrides(cameras: [CameraOverride(node: "camera_node", url: "rtsp://10.0.0.5:554/live")]))
        #expect(app.name == "people-counter")
        #expect(
            app.cameras == [
                CameraSource(name: "camera_node", url: "rtsp://10.0.0.5:554/live", graphNode: "camera_node")
            ])

        let code = try #require(app.codeNode(named: "code_node"))
        #expect(app.codeNodes.count == 1)
        #expect(code.entry.executable == "people-counter")
        #expect(code.entry.arguments.isEmpty)
        #expect(code.packageDirectory.lastPathComponent == "123456789012-people_counter_code-1.0")
        #expect(code.sourceDirectory == code.packageDirectory.appendingPathComponent("src", isDirectory: true))
        #expect(code.inputs.map(\.name) == ["video_in", "min_score", "max_people", "model_name"])
        #expect(code.input(named: "video_in")?.binding == .cameras(["camera_node"]))
        #expect(code.input(named: "min_score")?.binding == .parameter(.float32(0.5)))
        #expect(code.input(named: "max_people")?.binding == .parameter(.int32(5)))
        #expect(code.input(named: "model_name")?.binding == .parameter(.string("model_node")))
        #expect(code.outputs == [OutputPort(name: "video_out", type: .media, sinks: ["output_node"])])

        let model = try #require(app.model(named: "model_node"))
        #expect(model.descriptor.framework == "TENSORFLOW")
        #expect(model.descriptor.inputs == [ModelDescriptor.Input(name: "image_tensor:0", shape: [1, 300, 300, 3])])
        #expect(model.spec.decoder.type == .ssd)
        #expect(model.spec.decoder.labels?[1] == "person")
        #expect(model.spec.decoder.labels?.count == 91)
        #expect(model.spec.inputs.first?.width == 300)
        #expect(model.spec.inputs.first?.layout == "NHWC")
        #expect(
            model.modelFile.path
                == repositoryRoot.appendingPathComponent(".deps/models/ssdlite/frozen_inference_graph.pb")
                .standardizedFileURL.path)

        #expect(
            app.sinks == [
                SinkNode(
                    name: "output_node", interface: "hdmi0", input: .codeOutput(node: "code_node", port: "video_out"))
            ])
        #expect(
            app.parameters == [
                "min_score": .float32(0.5), "max_people": .int32(5), "model_name": .string("model_node"),
            ])
    }

    @Test("needs a camera: without --camera the error shows the fix")
    func needsCamera() throws {
        let project = try ApplicationProject.load(peopleCounter)
        let error = #expect(throws: ManifestError.self) { try project.resolve() }
        #expect(error?.code == .missingOverride)
        #expect(error?.file == "graphs/people-counter/graph.json")
        #expect(error?.node == "camera_node")
        #expect(error?.description.contains("--camera camera_node=rtsp://") == true)
    }
}
