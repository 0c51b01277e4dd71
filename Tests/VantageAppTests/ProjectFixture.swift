import Foundation
import Testing

@testable import VantageApp

/// A project tree described in code: relative path → file text. `standard` is a small valid application shaped
/// like the people counter; tests break one thing in it and check the error.
struct ProjectFixture {
    var files: [String: String]

    static let graphPath = "graphs/app/graph.json"
    static let codePackagePath = "packages/123456789012-code-1.0/package.json"
    static let codeDescriptorPath = "packages/123456789012-code-1.0/descriptor.json"
    static let modelPackagePath = "packages/123456789012-model-1.0/package.json"
    static let modelDescriptorPath = "packages/123456789012-model-1.0/descriptor.json"

    static var standard: ProjectFixture {
        ProjectFixture(files: [
            graphPath: """
            {
                "nodeGraph": {
                    "envelopeVersion": "2021-01-01",
                    "packages": [
                        {"name": "123456789012::code", "version": "1.0"},
                        {"name": "123456789012::model", "version": "1.0"},
                        {"name": "panorama::abstract_rtsp_media_source", "version": "1.0"},
                        {"name": "panorama::hdmi_data_sink", "version": "1.0"}
                    ],
                    "nodes": [
                        {"name": "code_node", "interface": "123456789012::code.code_interface"},
                        {"name": "model_node", "interface": "123456789012::model.model_interface"},
                        {
                            "name": "camera_node",
                            "interface": "panorama::abstract_rtsp_media_source.rtsp_v1_interface",
                            "overridable": true,
                            "overrideMandatory": true
                        },
                        {"name": "output_node", "interface": "panorama::hdmi_data_sink.hdmi0"},
                        {"name": "min_score", "interface": "float32", "value": 0.5, "overridable": true},
                        {"name": "max_people", "interface": "int32", "value": 5, "overridable": true},
                        {"name": "model_name", "interface": "string", "value": "model_node"}
                    ],
                    "edges": [
                        {"producer": "camera_node.video_out", "consumer": "code_node.video_in"},
                        {"producer": "code_node.video_out", "consumer": "output_node.video_in"},
                        {"producer": "min_score", "consumer": "code_node.min_score"},
                        {"producer": "max_people", "consumer": "code_node.max_people"},
                        {"producer": "model_name", "consumer": "code_node.model_name"}
                    ]
                }
            }
            """,
            codePackagePath: """
            {
                "nodePackage": {
                    "envelopeVersion": "2021-01-01",
                    "name": "code",
                    "version": "1.0",
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
                                {"name": "min_score", "type": "float32"},
                                {"name": "max_people", "type": "int32"},
                                {"name": "model_name", "type": "string"}
                            ],
                            "outputs": [
                                {"name": "video_out", "type": "media"}
                            ]
                        }
                    ]
                }
            }
            """,
            codeDescriptorPath: """
            {"runtimeDescriptor": {"envelopeVersion": "2021-01-01", "entry": {"path": "people-counter", "name": ""}}}
            """,
            modelPackagePath: """
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
            modelDescriptorPath: """
            {
                "mlModelDescriptor": {
                    "envelopeVersion": "2021-01-01",
                    "framework": "TENSORFLOW",
                    "inputs": [{"name": "image_tensor:0", "shape": [1, 300, 300, 3]}]
                },
                "vantage": {
                    "file": "models/detector.pb",
                    "inputs": [{"name": "image_tensor:0", "width": 300, "height": 300}],
                    "decoder": {"type": "ssd", "labels": ["background", "person"]}
                }
            }
            """,
        ])
    }

    /// Replaces text in a file; the text must be there (a test that edits nothing would pass for the wrong reason).
    mutating func replace(
        _ path: String, _ old: String, with new: String, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let text = files[path] ?? ""
        #expect(text.contains(old), "fixture \(path) does not contain \(old)", sourceLocation: sourceLocation)
        files[path] = text.replacingOccurrences(of: old, with: new)
    }

    /// A camera package made by Panorama's CreateNodeFromTemplateJob: `<acct>::<name>` with interface `<name>`.
    mutating func addCameraPackage(_ name: String, url: String, username: String = "admin", password: String = "secret")
    {
        files["packages/123456789012-\(name)-1.0/package.json"] = """
            {
                "nodePackage": {
                    "envelopeVersion": "2021-01-01",
                    "name": "\(name)",
                    "version": "1.0",
                    "assets": [
                        {"name": "\(name)", "implementations": [{"type": "system", "assetUri": "source/video/camera/rtsp/source_rtsp"}]}
                    ],
                    "interfaces": [
                        {
                            "name": "\(name)",
                            "category": "media_source",
                            "asset": "\(name)",
                            "inputs": [
                                {"name": "username", "type": "string", "default": "\(username)"},
                                {"name": "password", "type": "string", "default": "\(password)"},
                                {"name": "streamUrl", "type": "string", "default": "\(url)"}
                            ],
                            "outputs": [{"name": "video_out", "type": "media"}]
                        }
                    ]
                }
            }
            """
    }
}

/// A fixture written to a fresh temporary folder, removed when the value goes away.
final class TemporaryProject {
    let url: URL

    init(_ fixture: ProjectFixture) throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("vantage-app-tests-\(UUID().uuidString)")
        for (path, text) in fixture.files {
            let file = url.appendingPathComponent(path)
            try FileManager.default.createDirectory(
                at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: file, atomically: true, encoding: .utf8)
        }
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    func load() throws(ManifestError) -> ApplicationProject { try ApplicationProject.load(url) }

    func resolve(_ overrides: RunOverrides = RunOverrides()) throws(ManifestError) -> ResolvedApplication {
        try load().resolve(overrides)
    }
}

/// The overrides most tests run with: the abstract camera given one stream.
let oneCamera = RunOverrides(cameras: [CameraOverride(node: "camera_node", url: "rtsp://192.168.1.20:554/stream1")])

/// Loads and resolves a fixture, expecting a `ManifestError`; returns it for further checks.
@discardableResult
func expectManifestError(
    _ fixture: ProjectFixture, overrides: RunOverrides = oneCamera, code: ManifestError.Code, file: String?,
    mentions: [String], sourceLocation: SourceLocation = #_sourceLocation
) throws -> ManifestError? {
    let project = try TemporaryProject(fixture)
    do {
        let resolved = try project.resolve(overrides)
        Issue.record(
            "expected \(code), but the project resolved (\(resolved.codeNodes.count) code nodes)",
            sourceLocation: sourceLocation)
        return nil
    } catch {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        #expect(error.file == file, "\(error)", sourceLocation: sourceLocation)
        for text in mentions {
            #expect(
                error.description.contains(text), "«\(text)» missing from: \(error)", sourceLocation: sourceLocation)
        }
        // Every message says what is wrong and what to do.
        #expect(!error.message.isEmpty && !error.hint.isEmpty, sourceLocation: sourceLocation)
        #expect(error.description.contains(" — "), sourceLocation: sourceLocation)
        return error
    }
}
