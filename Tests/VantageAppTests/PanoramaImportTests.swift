import Foundation
import Testing
import VantageCore

@testable import VantageApp

/// A panorama-cli project as `build-container` and `add-raw-model` leave it: the descriptors only in assets/ under
/// sha256 names, the model a SageMaker Neo archive, the camera abstract.
enum PanoramaProject {
    static let codeFolder = "packages/123456789012-lobby_code-1.0"
    static let modelFolder = "packages/123456789012-lobby_model-1.0"
    static let codeImage = "assets/\(SHA256.hex("code image")).tar.gz"
    static let codeDescriptor = "assets/\(SHA256.hex("code descriptor")).json"
    static let modelArchive = "assets/\(SHA256.hex("neo archive")).tar.gz"
    static let modelDescriptor = "assets/\(SHA256.hex("model descriptor")).json"
    static let modelDescriptorText = """
        {
            "mlModelDescriptor": {
                "envelopeVersion": "2021-01-01",
                "framework": "PYTORCH",
                "frameworkVersion": "1.8",
                "precisionMode": "FP16",
                "inputs": [{"name": "data", "shape": [1, 3, 300, 300]}]
            }
        }
        """

    static var fixture: ProjectFixture {
        func uri(_ path: String) -> String { String(path.dropFirst("assets/".count)) }
        return ProjectFixture(files: [
            "graphs/lobby/graph.json": """
            {"nodeGraph": {
                "envelopeVersion": "2021-01-01",
                "packages": [
                    {"name": "123456789012::lobby_code", "version": "1.0"},
                    {"name": "123456789012::lobby_model", "version": "1.0"},
                    {"name": "panorama::abstract_rtsp_media_source", "version": "1.0"},
                    {"name": "panorama::hdmi_data_sink", "version": "1.0"}
                ],
                "nodes": [
                    {"name": "code_node", "interface": "123456789012::lobby_code.lobby_code_interface"},
                    {"name": "model_node", "interface": "123456789012::lobby_model.lobby_model_interface"},
                    {"name": "camera_node", "interface": "panorama::abstract_rtsp_media_source.rtsp_v1_interface",
                     "overridable": true, "overrideMandatory": true, "launch": "onAppStart"},
                    {"name": "output_node", "interface": "panorama::hdmi_data_sink.hdmi0"},
                    {"name": "threshold", "interface": "float32", "value": 0.6, "overridable": true}
                ],
                "edges": [
                    {"producer": "camera_node.video_out", "consumer": "code_node.video_in"},
                    {"producer": "code_node.video_out", "consumer": "output_node.video_in"},
                    {"producer": "threshold", "consumer": "code_node.threshold"}
                ]
            }}
            """,
            "\(codeFolder)/package.json": """
            {"nodePackage": {
                "envelopeVersion": "2021-01-01", "name": "lobby_code", "version": "1.0",
                "assets": [{"name": "lobby_code", "implementations": [
                    {"type": "container", "assetUri": "\(uri(codeImage))", "descriptorUri": "\(uri(codeDescriptor))"}
                ]}],
                "interfaces": [{
                    "name": "lobby_code_interface", "category": "business_logic", "asset": "lobby_code",
                    "inputs": [{"name": "video_in", "type": "media"}, {"name": "threshold", "type": "float32"}],
                    "outputs": [{"description": "Video stream output", "name": "video_out", "type": "media"}]
                }]
            }}
            """,
            "\(codeFolder)/Dockerfile": """
            FROM public.ecr.aws/panorama/panorama-application
            COPY src /panorama
            RUN pip3 install --no-cache-dir boto3==1.26.0 \\
                opencv-python-headless
            RUN python3 -m pip install -r /panorama/requirements.txt
            RUN apt-get update && apt-get install -y libgl1
            """,
            "\(codeFolder)/src/app.py": "import panoramasdk\n",
            "\(codeFolder)/src/requirements.txt": "numpy\n",
            codeDescriptor: """
            {"runtimeDescriptor": {"envelopeVersion": "2021-01-01",
                                   "entry": {"path": "python3", "name": "/panorama/app.py"}}}
            """,
            codeImage: "a docker export would be here",
            "\(modelFolder)/package.json": """
            {"nodePackage": {
                "envelopeVersion": "2021-01-01", "name": "lobby_model", "version": "1.0",
                "assets": [{"name": "lobby_model", "implementations": [
                    {"type": "model", "assetUri": "\(uri(modelArchive))", "descriptorUri": "\(uri(modelDescriptor))"}
                ]}],
                "interfaces": [{
                    "name": "lobby_model_interface", "category": "ml_model", "asset": "lobby_model",
                    "inputs": [{"name": "video_in", "type": "media"}],
                    "outputs": [{"name": "video_out", "type": "media"}]
                }]
            }}
            """,
            modelArchive: "SageMaker Neo input: model.pth and code",
            modelDescriptor: modelDescriptorText,
        ])
    }
}

/// Every file under a folder, by relative path, with its content.
private func snapshot(_ root: URL) -> [String: Data] {
    var files: [String: Data] = [:]
    let rootPath = root.resolvingSymlinksInPath().path
    guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) else { return [:] }
    for case let url as URL in walker {
        guard let data = try? Data(contentsOf: url) else { continue }
        files[String(url.resolvingSymlinksInPath().path.dropFirst(rootPath.count + 1))] = data
    }
    return files
}

/// Model files outside the project, removed with this value: not real models, which nothing here loads.
private final class ModelFiles {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vantage-models-\(UUID().uuidString)")

    init() throws { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) }

    deinit { try? FileManager.default.removeItem(at: folder) }

    func file(_ name: String = "ssd.onnx") throws -> URL {
        let url = folder.appendingPathComponent(name)
        try Data("onnx bytes".utf8).write(to: url)
        return url
    }
}

/// Runs /bin/tar.
private func tar(_ arguments: [String]) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/tar")
    process.arguments = arguments
    try process.run()
    process.waitUntilExit()
    #expect(process.terminationStatus == 0, "tar \(arguments)")
}

@Suite("vantage app import-panorama")
struct PanoramaImportTests {
    @Test("in place with --model: descriptors copied, vantage block written, and the project runs as a Vantage app")
    func inPlace() throws {
        let project = try TemporaryProject(PanoramaProject.fixture)
        let models = try ModelFiles()
        let model = try models.file()
        let report = try PanoramaImport(
            project: project.url, models: [.init(node: "model_node", path: model)]
        ).run()

        let code = PanoramaProject.codeFolder
        let modelFolder = PanoramaProject.modelFolder
        #expect(
            report.changes == [
                "\(code)/descriptor.json: copied from \(PanoramaProject.codeDescriptor), the code descriptor "
                    + "panorama-cli kept there",
                "\(modelFolder)/model/ssd.onnx: copied from \(model.path)",
                "\(modelFolder)/descriptor.json: copied from \(PanoramaProject.modelDescriptor), the model descriptor "
                    + "panorama-cli kept there",
                "\(modelFolder)/descriptor.json: added the \"vantage\" block (file \(modelFolder)/model/ssd.onnx, "
                    + "input \"data\" NCHW 300×300, decoder raw); mlModelDescriptor is unchanged",
            ])
        #expect(report.loads == true)
        #expect(report.runCommand.hasSuffix("--camera camera_node=rtsp://HOST:554/PATH"))
        #expect(!report.runCommand.contains("--model"))
        #expect(
            report.todo.contains(
                "camera node \"camera_node\" is an abstract camera (panorama::abstract_rtsp_media_source): give "
                    + "--camera camera_node=rtsp://… when you run it (a path to a video file works too)"))
        #expect(
            report.todo.contains(
                "\(code)/Dockerfile:6: ignored (not a pip install): RUN apt-get update && apt-get install -y libgl1 "
                    + "— install system packages on the host yourself"))
        #expect(
            report.dependencies == [
                "\(code)/Dockerfile:3: pip install boto3==1.26.0 opencv-python-headless",
                "\(code)/Dockerfile:5: pip install -r \(code)/src/requirements.txt",
            ])
        #expect(report.summary.hasPrefix("Converted \(project.url.path) in place: "))
        #expect(report.summary.hasSuffix("4 changes, 2 things left to do. It loads as a Vantage application."))

        // The model file is in the package, and the descriptor keeps Panorama's part as it was.
        let copied = project.url.appendingPathComponent("\(modelFolder)/model/ssd.onnx")
        #expect(try Data(contentsOf: copied) == Data("onnx bytes".utf8))
        let descriptor = try String(
            contentsOf: project.url.appendingPathComponent("\(modelFolder)/descriptor.json"), encoding: .utf8)
        let original = PanoramaProject.modelDescriptorText
        let panoramaPart = original[original.range(of: "\"mlModelDescriptor\"")!.lowerBound...]
            .prefix { $0 != "}" }
        #expect(descriptor.contains(panoramaPart))
        // The block is indented like the rest of the file.
        #expect(descriptor.contains("},\n    \"vantage\": {\n        \"file\": \"\(modelFolder)/model/ssd.onnx\",\n"))

        // Proof that it is a runnable Vantage application: it loads and resolves as vantage run does.
        let app = try project.resolve(oneCamera)
        let served = try #require(app.model(named: "model_node"))
        #expect(served.modelFile.path == copied.path)
        #expect(served.descriptor.precisionMode == "FP16")
        #expect(
            served.spec.inputs == [ModelInputSpec(name: "data", layout: "NCHW", width: 300, height: 300)])
        #expect(served.spec.decoder.type == .raw)
        let codeNode = try #require(app.codeNode(named: "code_node"))
        #expect(codeNode.entry.arguments == [project.url.appendingPathComponent("\(code)/src/app.py").path])
    }

    @Test("into --output: the project is copied, converted there, and the original is left alone")
    func intoOutput() throws {
        let project = try TemporaryProject(PanoramaProject.fixture)
        let models = try ModelFiles()
        let before = snapshot(project.url)
        let output = project.url.deletingLastPathComponent().appendingPathComponent("out-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: output) }
        let report = try PanoramaImport(
            project: project.url, output: output, models: [.init(node: "model_node", path: try models.file())]
        ).run()
        #expect(snapshot(project.url) == before)
        #expect(report.directory.path == output.standardizedFileURL.path)
        #expect(
            report.changes.first?.hasSuffix("copied the project \(project.url.path) here; the original is unchanged")
                == true)
        #expect(report.changes.count == 5)
        #expect(report.loads == true)
        #expect(report.runCommand.contains(output.path))
        let app = try ApplicationProject.load(output).resolve(oneCamera)
        #expect(
            app.model(named: "model_node")?.modelFile.path
                == output.appendingPathComponent("\(PanoramaProject.modelFolder)/model/ssd.onnx").path)
        #expect(app.codeNode(named: "code_node")?.sourceDirectory.path.hasPrefix(output.path) == true)
    }

    @Test("--output that exists and is not empty, or is inside the project, is refused before anything changes")
    func outputRefused() throws {
        let project = try TemporaryProject(PanoramaProject.fixture)
        let before = snapshot(project.url)
        let error = #expect(throws: ManifestError.self) {
            try PanoramaImport(project: project.url, output: project.url.appendingPathComponent("graphs")).run()
        }
        #expect(error?.description.contains("is inside the project") == true)
        let busy = try TemporaryProject(ProjectFixture(files: ["notes.txt": "mine"]))
        let notEmpty = #expect(throws: ManifestError.self) {
            try PanoramaImport(project: project.url, output: busy.url).run()
        }
        #expect(notEmpty?.description.contains("exists and is not empty") == true)
        #expect(notEmpty?.description.contains("name a new or empty folder") == true)
        #expect(snapshot(project.url) == before)
    }

    @Test(
        "src/ comes from the container image's /panorama folder when missing",
        arguments: [true, false])
    func sourceFromContainerImage(dotPrefixed: Bool) throws {
        var fixture = PanoramaProject.fixture
        fixture.files["\(PanoramaProject.codeFolder)/src/app.py"] = nil
        fixture.files["\(PanoramaProject.codeFolder)/src/requirements.txt"] = nil
        fixture.files[PanoramaProject.codeImage] = nil
        let project = try TemporaryProject(fixture)

        // A `docker export` of the image: the whole filesystem, the code under panorama/.
        let rootfs = project.url.deletingLastPathComponent().appendingPathComponent("rootfs-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: rootfs) }
        for (path, text) in [
            "panorama/app.py": "print('from the image')\n", "panorama/lib/util.py": "X = 1\n",
            "panorama/requirements.txt": "requests\n", "usr/bin/tool": "#!/bin/sh\n",
        ] {
            let file = rootfs.appendingPathComponent(path)
            try FileManager.default.createDirectory(
                at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: file)
        }
        let archive = project.url.appendingPathComponent(PanoramaProject.codeImage)
        try tar(["-czf", archive.path, "-C", rootfs.path] + (dotPrefixed ? ["."] : ["panorama", "usr"]))

        let report = try PanoramaImport(project: project.url).run()
        let src = project.url.appendingPathComponent("\(PanoramaProject.codeFolder)/src")
        #expect(
            report.changes.contains(
                "\(PanoramaProject.codeFolder)/src/: extracted from \(PanoramaProject.codeImage), the /panorama folder "
                    + "of the container image"))
        #expect(
            try String(contentsOf: src.appendingPathComponent("app.py"), encoding: .utf8) == "print('from the image')\n"
        )
        #expect(FileManager.default.fileExists(atPath: src.appendingPathComponent("lib/util.py").path))
        #expect(!FileManager.default.fileExists(atPath: src.appendingPathComponent("usr").path))
        // Only src/ is added beside the package's files: no scratch folder is left behind.
        let packageFiles = try FileManager.default.contentsOfDirectory(
            atPath: project.url.appendingPathComponent(PanoramaProject.codeFolder).path)
        #expect(packageFiles.sorted() == ["Dockerfile", "descriptor.json", "package.json", "src"])
        // The extracted requirements are now what vantage run installs.
        #expect(
            report.dependencies.last == "\(PanoramaProject.codeFolder)/Dockerfile:5: pip install -r "
                + "\(PanoramaProject.codeFolder)/src/requirements.txt")
    }

    @Test("no src/ and no container image: the report says the code is missing and what to do")
    func codeMissing() throws {
        var fixture = PanoramaProject.fixture
        fixture.files["\(PanoramaProject.codeFolder)/src/app.py"] = nil
        fixture.files["\(PanoramaProject.codeFolder)/src/requirements.txt"] = nil
        fixture.files[PanoramaProject.codeImage] = nil
        let project = try TemporaryProject(fixture)
        let report = try PanoramaImport(project: project.url).run()
        let todo = try #require(report.todo.first { $0.contains("the code is missing") })
        #expect(todo.contains("\(PanoramaProject.codeFolder)/src/ does not exist"))
        #expect(todo.contains("the container image \(PanoramaProject.codeImage) is not there"))
        #expect(todo.contains("put the code (what the Dockerfile copies to /panorama) in"))
    }

    @Test("without --model the report says which file to supply, what the code sends it, and the command")
    func modelToSupply() throws {
        let project = try TemporaryProject(PanoramaProject.fixture)
        let models = try ModelFiles()
        let report = try PanoramaImport(project: project.url).run()
        let todo = try #require(report.todo.first { $0.hasPrefix("model node \"model_node\"") })
        #expect(
            todo
                == "model node \"model_node\": supply the model as ONNX/TensorFlow/TFLite/OpenVINO IR — the SageMaker "
                + "Neo archive \(PanoramaProject.modelArchive) cannot run outside Panorama; the code calls it with "
                + "input \"data\" shape [1, 3, 300, 300]; run: vantage app import-panorama \(project.url.path) "
                + "--model model_node=PATH (or vantage run \(project.url.path) --model model_node=PATH)")
        #expect(report.runCommand.hasSuffix("--camera camera_node=rtsp://HOST:554/PATH --model model_node=PATH"))
        // Everything but the model is in place: with the file and a camera given at run time, it runs.
        #expect(report.loads == true)
        #expect(
            report.summary.hasSuffix(
                "3 things left to do. It loads as a Vantage application once the model files are given."))
        // The model descriptor is left as panorama-cli made it.
        #expect(
            !FileManager.default.fileExists(
                atPath: project.url.appendingPathComponent("\(PanoramaProject.modelFolder)/descriptor.json").path))
        // With the file given to vantage run instead, the project resolves.
        var overrides = oneCamera
        overrides.models["model_node"] = try models.file().path
        #expect(try project.resolve(overrides).model(named: "model_node")?.spec.inputs.first?.layout == "NCHW")
    }

    @Test("--model errors name the problem and change nothing")
    func modelErrors() throws {
        let project = try TemporaryProject(PanoramaProject.fixture)
        let models = try ModelFiles()
        let before = snapshot(project.url)
        let onnx = try models.file()
        let ir = try models.file("detector.xml")
        let cases: [(PanoramaImport.ModelFile, [String])] = [
            (
                .init(node: "code_node", path: onnx),
                [
                    "\"code_node\" is a code node (business_logic), not a model node",
                    "model nodes: model_node",
                ]
            ),
            (
                .init(node: "model_nod", path: onnx),
                ["the project has no node \"model_nod\"", "did you mean \"model_node\"?"]
            ),
            (.init(node: "model_node", path: onnx.appendingPathExtension("missing")), ["the file does not exist"]),
            (
                .init(node: "model_node", path: project.url.appendingPathComponent(PanoramaProject.modelArchive)),
                ["cannot run outside Panorama", "ONNX (.onnx)"]
            ),
            (.init(node: "model_node", path: ir), ["detector.bin do not exist", "put the .bin file beside the .xml"]),
        ]
        for (file, mentions) in cases {
            let error = #expect(throws: ManifestError.self) {
                try PanoramaImport(project: project.url, models: [file]).run()
            }
            #expect(error?.code == .invalidArgument)
            for text in mentions {
                #expect(error?.description.contains(text) == true, "\(text) in \(String(describing: error))")
            }
        }
        #expect(throws: ManifestError.self) { try PanoramaImport.ModelFile(argument: "model_node") }
        #expect(snapshot(project.url) == before)
    }

    @Test("an OpenVINO IR is copied with its weights")
    func openVINOModel() throws {
        let project = try TemporaryProject(PanoramaProject.fixture)
        let models = try ModelFiles()
        let xml = try models.file("person.xml")
        try Data("weights".utf8).write(to: xml.deletingPathExtension().appendingPathExtension("bin"))
        let report = try PanoramaImport(project: project.url, models: [.init(node: "model_node", path: xml)]).run()
        let folder = "\(PanoramaProject.modelFolder)/model"
        #expect(report.changes.contains("\(folder)/person.bin: copied from \(xml.deletingPathExtension().path).bin"))
        #expect(try project.resolve(oneCamera).model(named: "model_node")?.modelFile.lastPathComponent == "person.xml")
    }

    @Test("importing again with another --model changes only the file of the vantage block")
    func replaceModel() throws {
        let project = try TemporaryProject(PanoramaProject.fixture)
        let models = try ModelFiles()
        _ = try PanoramaImport(project: project.url, models: [.init(node: "model_node", path: try models.file())]).run()
        // The user tunes the block by hand ...
        let descriptorURL = project.url.appendingPathComponent("\(PanoramaProject.modelFolder)/descriptor.json")
        let tuned = try String(contentsOf: descriptorURL, encoding: .utf8)
            .replacingOccurrences(
                of: "\"decoder\": {\"type\": \"raw\"}", with: "\"decoder\": {\"type\": \"ssd\", \"minScore\": 0.4}")
        try Data(tuned.utf8).write(to: descriptorURL)
        // ... then supplies a better model.
        let report = try PanoramaImport(
            project: project.url, models: [.init(node: "model_node", path: try models.file("ssd_v2.tflite"))]
        ).run()
        #expect(
            report.changes.last
                == "\(PanoramaProject.modelFolder)/descriptor.json: set vantage.file to "
                + "\(PanoramaProject.modelFolder)/model/ssd_v2.tflite")
        let model = try #require(try project.resolve(oneCamera).model(named: "model_node"))
        #expect(model.modelFile.lastPathComponent == "ssd_v2.tflite")
        #expect(model.spec.decoder == DecoderSpec(type: .ssd, minScore: 0.4))
    }

    @Test("--dry-run reports the same changes and writes nothing")
    func dryRun() throws {
        let project = try TemporaryProject(PanoramaProject.fixture)
        let models = try ModelFiles()
        let before = snapshot(project.url)
        let model = try models.file()
        let report = try PanoramaImport(
            project: project.url, models: [.init(node: "model_node", path: model)], dryRun: true
        ).run()
        #expect(snapshot(project.url) == before)
        #expect(report.changes.count == 4)
        #expect(report.loads == nil)
        #expect(report.lines.contains("Changes it would make:"))
        #expect(report.lines.first?.hasSuffix("— dry run: nothing is written") == true)
        #expect(report.summary.contains("4 changes would be made") && report.summary.contains("nothing was written"))

        let output = project.url.deletingLastPathComponent().appendingPathComponent("out-\(UUID().uuidString)")
        let intoOutput = try PanoramaImport(project: project.url, output: output, dryRun: true).run()
        #expect(!FileManager.default.fileExists(atPath: output.path))
        #expect(intoOutput.changes.first?.contains("copied the project") == true)
    }

    @Test("the printed report has its sections, the summary and the command to run")
    func printedReport() throws {
        let project = try TemporaryProject(PanoramaProject.fixture)
        let lines = try PanoramaImport(project: project.url).run().lines
        #expect(
            lines.first == "Importing the panorama-cli project \(project.url.path) (application \"lobby\") in place")
        for heading in ["Changes:", "To do:"] { #expect(lines.contains(heading), "\(heading)") }
        #expect(lines.contains { $0.hasPrefix("Python dependencies (vantage run installs them") })
        #expect(lines.contains { $0.hasPrefix("  1. ") })
        #expect(lines.last?.hasPrefix("Next: vantage run \(project.url.path) --camera camera_node=") == true)
    }
}

@Suite("A vantage block from a Panorama model descriptor")
struct ModelSpecPanoramaTests {
    @Test(
        "layout, width and height come from the shape",
        arguments: [
            ([1, 3, 224, 224], "NCHW", 224, 224), ([1, 300, 300, 3], "NHWC", 300, 300),
            ([1, 3, 480, 640], "NCHW", 640, 480), ([1, 3, 3, 3], "NHWC", 3, 3),
            ([1, -1, -1, 3], "NHWC", nil, nil), ([1, 3], nil, nil, nil),
        ] as [([Int], String?, Int?, Int?)])
    func inferred(shape: [Int], layout: String?, width: Int?, height: Int?) {
        let descriptor = ModelDescriptor(framework: "PYTORCH", inputs: [.init(name: "data", shape: shape)])
        let spec = ModelSpec.inferred(from: descriptor, file: "model/model.onnx")
        #expect(spec.file == "model/model.onnx")
        #expect(spec.format == nil)
        #expect(spec.inputs == [ModelInputSpec(name: "data", layout: layout, width: width, height: height)])
        #expect(spec.decoder == DecoderSpec(type: .raw))
    }

    @Test("the written block reads back through the descriptor reader as the same spec")
    func roundTrip() throws {
        let specs = [
            ModelSpec.inferred(
                from: ModelDescriptor(
                    framework: "TENSORFLOW",
                    inputs: [
                        .init(name: "image_tensor:0", shape: [1, 300, 300, 3]), .init(name: "im_info", shape: [1, 3]),
                    ]),
                file: "packages/123456789012-m-1.0/model/ssd.pb"),
            ModelSpec(
                file: "models/\"odd\" name\\.onnx", format: "onnx", device: "GPU.1",
                inputs: [
                    ModelInputSpec(
                        name: "images", layout: "NCHW", elementType: "f32", colorOrder: "BGR", width: 640, height: 640,
                        mean: [123.675, 116.28, 103.53], scale: [58.395, 57.12, 57.375])
                ],
                decoder: DecoderSpec(
                    type: .yolo, labels: ["person", "caf\u{e9}"], minScore: 0.3, boxes: "b", classes: "c", scores: "s",
                    count: "n", output: "output0", version: "v8", iouThreshold: 0.45, topK: 7, softmax: true)),
        ]
        for spec in specs {
            let text = spec.vantageBlockJSON()
            let json = try JSONParser.parse(Data(text.utf8))
            #expect(
                try DescriptorReader.spec(json, source: DocumentSource(file: "d.json"), node: "m") == spec, "\(text)")
            #expect(text.hasPrefix("{\n  \"file\": "))
            #expect(text == spec.vantageBlockJSON(), "stable")
        }
        #expect(
            specs[0].vantageBlockJSON()
                == """
                {
                  "file": "packages/123456789012-m-1.0/model/ssd.pb",
                  "inputs": [
                    {"name": "image_tensor:0", "layout": "NHWC", "width": 300, "height": 300},
                    {"name": "im_info"}
                  ],
                  "decoder": {"type": "raw"}
                }
                """)
    }
}
