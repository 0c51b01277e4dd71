import Foundation
import Testing

@testable import VantageApp

/// `vantage app build` without a compiler: the Python Panorama people counter (`examples/panorama-people-counter`, its
/// model descriptor pointing into the checkout's `.deps/` as the examples are written) made self-contained. The Swift
/// people counter's compile is tested where it runs: AgentEndToEndTests deploys it, scripts/package-test runs it in
/// a fresh Debian root.
@Suite("vantage app build (models and Python code nodes)")
struct ApplicationBuildTests {
    static let example = repositoryRoot.appendingPathComponent("examples/panorama-people-counter")
    static let model = repositoryRoot.appendingPathComponent(".deps/models/ssdlite/frozen_inference_graph.pb")

    static func build(into output: URL, models: [PanoramaImport.ModelFile] = [], project: URL = example)
        throws(ManifestError) -> [String]
    {
        var build = ApplicationBuild(
            project: project, output: output, executableDirectory: repositoryRoot.appendingPathComponent(".build"),
            cache: output.deletingLastPathComponent().appendingPathComponent("cache"))
        build.models = models
        return try build.run()
    }

    static func scratch() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("app-build-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    /// The model outside the project is copied in and the descriptor points at it; the source is refused, the build
    /// is not; a second build replaces the first.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: model.path), "needs scripts/setup (the SSDLite model)"))
    func modelCopiedIn() throws {
        let folder = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = try ApplicationProject.load(Self.example)
        #expect(source.partsOutside().map(\.node) == ["model_node"], "the example as written names .deps/")

        let output = folder.appendingPathComponent("out")
        let lines = try Self.build(into: output)
        #expect(
            lines.contains { $0.contains("model node model_node: frozen_inference_graph.pb copied to") }, "\(lines)")
        #expect(lines.contains { $0.contains("code node code_node: Python") }, "\(lines)")
        let copied = output.appendingPathComponent(
            "packages/123456789012-people_detector-1.0/frozen_inference_graph.pb")
        #expect(
            try Data(contentsOf: copied) == Data(contentsOf: Self.model), "the model file itself, not a link")
        let built = try ApplicationProject.load(output)
        #expect(built.partsOutside().isEmpty)
        let descriptor = try String(
            contentsOf: output.appendingPathComponent("packages/123456789012-people_detector-1.0/descriptor.json"),
            encoding: .utf8)
        #expect(
            descriptor.contains("\"file\": \"packages/123456789012-people_detector-1.0/frozen_inference_graph.pb\""))
        #expect(descriptor.contains("\"mlModelDescriptor\""), "the rest of the descriptor is kept as written")
        #expect(
            FileManager.default.fileExists(
                atPath: output.appendingPathComponent("packages/123456789012-people_counter_app-1.0/src/app.py").path))

        // Built again into the same folder: replaced, not refused, and nothing stale is left.
        try Data("stale".utf8).write(to: output.appendingPathComponent("stale.txt"))
        _ = try Self.build(into: output)
        #expect(!FileManager.default.fileExists(atPath: output.appendingPathComponent("stale.txt").path))
    }

    @Test("a folder that is not an earlier build is refused and left as it was")
    func foreignOutputRefused() throws {
        let folder = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let output = folder.appendingPathComponent("mine")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        try Data("keep me".utf8).write(to: output.appendingPathComponent("notes.txt"))
        #expect {
            _ = try Self.build(into: output)
        } throws: { error in
            "\(error)".contains("exists and is not an earlier build")
        }
        #expect(try String(contentsOf: output.appendingPathComponent("notes.txt"), encoding: .utf8) == "keep me")
    }

    @Test("a missing model file names the node and --model; --model gives it; --model for no such node is refused")
    func missingModel() throws {
        let folder = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        // The example with its model descriptor pointing at a file that does not exist (a checkout without .deps/).
        let project = folder.appendingPathComponent("project")
        try FileManager.default.copyItem(at: Self.example, to: project)
        let descriptor = project.appendingPathComponent("packages/123456789012-people_detector-1.0/descriptor.json")
        let text = try String(contentsOf: descriptor, encoding: .utf8)
        try text.replacingOccurrences(of: ".deps/models/ssdlite/", with: ".deps/models/gone/")
            .write(to: descriptor, atomically: true, encoding: .utf8)
        #expect {
            _ = try Self.build(into: folder.appendingPathComponent("out"), project: project)
        } throws: { error in
            let text = "\(error)"
            return text.contains("model node \"model_node\"") && text.contains("does not exist")
                && text.contains("--model model_node=PATH")
        }
        #expect {
            _ = try Self.build(
                into: folder.appendingPathComponent("out"),
                models: [PanoramaImport.ModelFile(node: "no_such_node", path: Self.model)], project: project)
        } throws: { error in
            "\(error)".contains("the graph has no node no_such_node")
        }
        let given = folder.appendingPathComponent("ssd.pb")
        try Data("a model the user gives".utf8).write(to: given)
        _ = try Self.build(
            into: folder.appendingPathComponent("out"),
            models: [PanoramaImport.ModelFile(node: "model_node", path: given)],
            project: project)
        #expect(
            try Data(
                contentsOf: folder.appendingPathComponent("out/packages/123456789012-people_detector-1.0/ssd.pb"))
                == Data("a model the user gives".utf8))
    }
}
