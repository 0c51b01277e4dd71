import Foundation
import Testing

@testable import VantageApp

/// Project layouts as AWS's tools and users left them in git (see Tests/EndToEndTests/RealPanoramaProjectTests.swift
/// for the same shapes run end to end): loading them, and what `vantage app import-panorama` says of them.
@Suite("Real project layouts")
struct RealProjectLayoutTests {
    // MARK: 1. Assets not built yet

    @Test("\"assets\": [] with an interface naming code_asset (panorama-cli before build-container) loads, one notice")
    func assetsNotBuilt() throws {
        var fixture = ProjectFixture.standard
        fixture.replace(
            ProjectFixture.codePackagePath,
            #"{"name": "code_asset", "implementations": [{"type": "container", "assetUri": "code.tar.gz"}]}"#,
            with: "")
        let project = try TemporaryProject(fixture)
        let loaded = try project.load()
        let notices = loaded.notices.filter { $0.contains("does not define yet") }
        #expect(notices.count == 1, "\(loaded.notices)")
        #expect(notices.first?.contains("code_interface → code_asset") == true)
        #expect(try project.resolve(oneCamera).codeNodes.count == 1)
    }

    // MARK: 2. A media input with no edge

    @Test("a code node's video_in with no edge is bound to no camera, with a notice, instead of an error")
    func mediaInputWithoutEdge() throws {
        var fixture = ProjectFixture.standard
        fixture.replace(
            ProjectFixture.graphPath, #"{"producer": "camera_node.video_out", "consumer": "code_node.video_in"},"#,
            with: "")
        let resolved = try TemporaryProject(fixture).resolve(oneCamera)
        let port = try #require(resolved.codeNode(named: "code_node")?.inputs.first { $0.name == "video_in" })
        #expect(port.binding == .cameras([]))
        #expect(resolved.notices.contains { $0.contains("media input \"video_in\" has no camera") })
        // A parameter port with no edge and no default is still an error.
        fixture.replace(
            ProjectFixture.graphPath, #"{"producer": "min_score", "consumer": "code_node.min_score"},"#, with: "")
        try expectManifestError(
            fixture, code: .unboundInput, file: ProjectFixture.graphPath, mentions: ["min_score", "no edge"])
    }

    // MARK: 3. One model package, several models

    static let peopleDescriptor = """
        {"mlModelDescriptor": {"envelopeVersion": "2021-01-01", "framework": "PYTORCH",
          "inputs": [{"name": "data", "shape": [1, 3, 224, 224]}]}}
        """
    static let poseDescriptor = """
        {"mlModelDescriptor": {"envelopeVersion": "2021-01-01", "framework": "PYTORCH",
          "inputs": [{"name": "crops", "shape": [4, 3, 256, 192]}]}}
        """

    /// The pose-estimation sample's shape: one model package, two assets and interfaces, the descriptors kept in the
    /// package folder under readable names while descriptorUri names `<sha256>.json` in the (ignored) assets/.
    static var twoModelFixture: ProjectFixture {
        var fixture = ProjectFixture.standard
        let folder = "packages/123456789012-model-1.0"
        fixture.files[ProjectFixture.modelDescriptorPath] = nil
        fixture.files["\(folder)/descriptor_people_detection.json"] = peopleDescriptor
        fixture.files["\(folder)/descriptor_pose_estimation.json"] = poseDescriptor
        fixture.files[ProjectFixture.modelPackagePath] = """
            {"nodePackage": {"envelopeVersion": "2021-01-01", "name": "model", "version": "1.0",
              "assets": [
                {"name": "people_detection", "implementations": [{"type": "model",
                  "assetUri": "\(SHA256.hex("a1")).tar.gz", "descriptorUri": "\(SHA256.hex(peopleDescriptor)).json"}]},
                {"name": "pose_estimation", "implementations": [{"type": "model",
                  "assetUri": "\(SHA256.hex("a2")).tar.gz", "descriptorUri": "\(SHA256.hex(poseDescriptor)).json"}]}],
              "interfaces": [
                {"name": "model_interface", "category": "ml_model", "asset": "people_detection",
                 "inputs": [{"name": "video_in", "type": "media"}], "outputs": [{"name": "video_out", "type": "media"}]},
                {"name": "pose_interface", "category": "ml_model", "asset": "pose_estimation",
                 "inputs": [{"name": "video_in", "type": "media"}], "outputs": [{"name": "video_out", "type": "media"}]}]}}
            """
        fixture.replace(
            ProjectFixture.graphPath,
            #"{"name": "model_node", "interface": "123456789012::model.model_interface"},"#,
            with: #"""
                {"name": "model_node", "interface": "123456789012::model.model_interface"},
                {"name": "pose_node", "interface": "123456789012::model.pose_interface"},
                """#)
        return fixture
    }

    @Test("each model node of a two-asset package gets its own descriptor, found in the package folder by SHA-256")
    func descriptorsByDigest() throws {
        let project = try TemporaryProject(Self.twoModelFixture)
        var overrides = oneCamera
        let model = project.url.appendingPathComponent("m.onnx")
        try Data("x".utf8).write(to: model)
        overrides.models = ["model_node": model.path, "pose_node": model.path]
        let resolved = try project.resolve(overrides)
        #expect(resolved.model(named: "model_node")?.descriptor.inputs.map(\.name) == ["data"])
        #expect(resolved.model(named: "pose_node")?.descriptor.inputs.map(\.name) == ["crops"])
        #expect(resolved.model(named: "pose_node")?.descriptor.inputs.first?.shape == [4, 3, 256, 192])
        #expect(resolved.notices.contains { $0.contains("descriptor_pose_estimation.json") })
    }

    @Test("a descriptor that matches no file names the asset, its digest and both places looked in")
    func descriptorMissing() throws {
        var fixture = Self.twoModelFixture
        fixture.files["packages/123456789012-model-1.0/descriptor_pose_estimation.json"] = Self.poseDescriptor + " "
        try expectManifestError(
            fixture, code: .missingDescriptor, file: ProjectFixture.graphPath,
            mentions: ["pose_node", "pose_estimation", SHA256.hex(Self.poseDescriptor), "SHA-256"])
    }

    @Test("import-panorama writes each model node's vantage block into its own descriptor and keeps it findable")
    func importTwoModels() throws {
        let project = try TemporaryProject(Self.twoModelFixture)
        let models = FileManager.default.temporaryDirectory.appendingPathComponent("m-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: models, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: models) }
        let people = models.appendingPathComponent("people.onnx")
        let pose = models.appendingPathComponent("pose.onnx")
        for file in [people, pose] { try Data("onnx".utf8).write(to: file) }
        let report = try PanoramaImport(
            project: project.url,
            models: [.init(node: "model_node", path: people), .init(node: "pose_node", path: pose)]
        ).run()
        let lines = report.lines.joined(separator: "\n")
        #expect(report.loads == true, "\(lines)")
        #expect(
            !FileManager.default.fileExists(
                atPath: project.url.appendingPathComponent(ProjectFixture.modelDescriptorPath).path),
            "no package-level descriptor.json is proposed:\n\(lines)")
        #expect(lines.contains("descriptor_pose_estimation.json"))
        #expect(lines.contains("descriptorUri is now"))
        // Loaded again, each node has its own file and its own input.
        let resolved = try project.resolve(oneCamera)
        #expect(resolved.model(named: "model_node")?.modelFile.lastPathComponent == "people.onnx")
        #expect(resolved.model(named: "pose_node")?.modelFile.lastPathComponent == "pose.onnx")
        #expect(resolved.model(named: "pose_node")?.descriptor.inputs.map(\.name) == ["crops"])
    }

    // MARK: 4. Where /panorama is

    @Test(
        "the Dockerfile decides which folder is /panorama",
        arguments: [
            ("FROM x\nCOPY src /panorama\n", "src"),
            ("FROM x\nWORKDIR /panorama\nCOPY . .\n", ""),
            ("FROM x\nWORKDIR /panorama\nCOPY . ./\n", ""),
            ("FROM x\nCOPY app /panorama/\n", "app"),
            ("FROM x\nCOPY src/app.py /panorama/app.py\n", "src"),
            ("FROM x\nCOPY app.py utils.py /panorama/\n", ""),
            ("FROM x AS build\nCOPY other /panorama\nFROM y\nADD src /panorama\n", "src"),
            ("FROM x\nRUN pip install boto3\n", nil),
        ] as [(String, String?)])
    func panoramaFolder(dockerfile: String, expected: String?) {
        let directories: Set<String> = ["", "src", "app", "other"]
        let found = Dockerfile.panoramaSource(text: dockerfile) { directories.contains($0) }
        #expect(found?.relativePath == expected, "\(dockerfile)")
    }

    @Test("WORKDIR /panorama + COPY . . runs the package folder itself; the entry and the Dockerfile agree")
    func codeAtPackageRoot() throws {
        var fixture = ProjectFixture.standard
        let folder = "packages/123456789012-code-1.0"
        fixture.files["\(folder)/Dockerfile"] =
            "FROM public.ecr.aws/panorama/panorama-application\nWORKDIR /panorama\nCOPY . .\n"
        fixture.files["\(folder)/app.py"] = "import panoramasdk\n"
        fixture.files[ProjectFixture.codeDescriptorPath] = """
            {"runtimeDescriptor": {"envelopeVersion": "2021-01-01", "entry": {"path": "python3.8", "name": "/panorama/app.py"}}}
            """
        let project = try TemporaryProject(fixture)
        let node = try #require(try project.resolve(oneCamera).codeNode(named: "code_node"))
        #expect(node.sourceDirectory.standardizedFileURL.path == project.url.appendingPathComponent(folder).path)
        #expect(node.entry.arguments == [project.url.appendingPathComponent("\(folder)/app.py").path])
        #expect(try project.load().notices.contains { $0.contains("(from its Dockerfile line 3: COPY . .)") })

        // import-panorama neither calls the code missing nor looks for src/.
        let report = try PanoramaImport(project: project.url, dryRun: true).run()
        let text = report.lines.joined(separator: "\n")
        #expect(!text.contains("the code is missing"), "\(text)")
        #expect(text.contains("/panorama is \(folder)/"), "\(text)")
        #expect(text.contains("python3.8"), "\(text)")
    }

    // MARK: 13. The report's wording

    @Test("a model to supply is named once as the SageMaker Neo archive, with its file")
    func archiveWording() throws {
        let project = try TemporaryProject(PanoramaProject.fixture)
        let text = try PanoramaImport(project: project.url, dryRun: true).run().lines.joined(separator: "\n")
        #expect(!text.contains("archive its SageMaker Neo archive"), "\(text)")
        #expect(!text.contains("the SageMaker Neo archive the SageMaker"), "\(text)")
        #expect(text.contains("the SageMaker Neo archive \(PanoramaProject.modelArchive) cannot run outside Panorama"))
    }
}
