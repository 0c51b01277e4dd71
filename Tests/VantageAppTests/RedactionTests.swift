import Foundation
import Testing

@testable import VantageApp

/// Camera credentials must never reach a log line or an error message.
@Suite("Camera credentials stay out of messages")
struct RedactionTests {
    @Test(
        "redactedURL hides user:password@",
        arguments: [
            ("rtsp://user:secret@host/stream", "rtsp://***@host/stream"),
            (
                "rtsp://admin:secret@10.0.0.5:554/Streaming/Channels/101",
                "rtsp://***@10.0.0.5:554/Streaming/Channels/101"
            ),
            ("rtsps://user@host/s", "rtsps://***@host/s"),
            ("rtsp://user:p@ss/secret@host/s", "rtsp://***@host/s"),
            ("rtsp://user:pa?secret@host/s", "rtsp://***@host/s"),
            ("rtsp://host/stream", "rtsp://host/stream"),
            ("/videos/clip@2x.mp4", "/videos/clip@2x.mp4"),
            ("user:secret@host:554/live", "***@host:554/live"),
        ])
    func redactedURL(url: String, expected: String) {
        let source = CameraSource(name: "cam", url: url, graphNode: "camera_node")
        #expect(source.redactedURL == expected)
        #expect(!source.description.contains("secret"))
    }

    @Test("description, debugDescription and dump() omit the password")
    func descriptions() {
        let source = CameraSource(
            name: "lobby", url: "rtsp://user:secret@host/stream", username: "user", password: "secret",
            graphNode: "camera_node")
        var dumped = ""
        dump(source, to: &dumped)
        for text in [source.description, String(describing: source), String(reflecting: source), dumped] {
            #expect(!text.contains("secret"), "\(text)")
        }
        #expect(
            CameraOverride(node: "camera_node", url: "rtsp://user:secret@host/stream").description
                == "camera_node=rtsp://***@host/stream")
    }

    @Test("errors about a --camera URL do not quote its password")
    func cameraErrors() throws {
        let project = try TemporaryProject(.standard)
        let cases: [RunOverrides] = [
            RunOverrides(cameras: [CameraOverride(node: "camera_node", url: "udp://user:secret@239.0.0.1:1234")]),
            RunOverrides(cameras: [CameraOverride(node: "lobby", url: "rtsp://user:secret@host/stream")]),
            RunOverrides(cameras: [CameraOverride(node: "camera_node", url: "rtsp:/user:secret@host")]),
            RunOverrides(cameras: [CameraOverride(node: "camera_node", url: "user:secret@10.0.0.1:554/live")]),
        ]
        for overrides in cases {
            let error = #expect(throws: ManifestError.self) { try project.resolve(overrides) }
            #expect(error?.description.contains("secret") == false, "\(String(describing: error))")
            #expect(error?.localizedDescription.contains("secret") == false)
        }
        var overrides = RunOverrides()
        let error = #expect(throws: ManifestError.self) {
            try overrides.addCamera(argument: "rtsp://user:secret@host/stream")
        }
        #expect(error?.description.contains("secret") == false, "\(String(describing: error))")
    }

    @Test("errors about a camera package's stream do not quote its password")
    func packageErrors() throws {
        var fixture = ProjectFixture.standard
        fixture.addCameraPackage("lobby", url: "ftp://admin:secret@10.0.0.7/lobby", password: "secret")
        fixture.replace(
            ProjectFixture.graphPath, "{\"name\": \"panorama::hdmi_data_sink\", \"version\": \"1.0\"}",
            with:
                "{\"name\": \"panorama::hdmi_data_sink\", \"version\": \"1.0\"}, {\"name\": \"123456789012::lobby\", \"version\": \"1.0\"}"
        )
        fixture.replace(
            ProjectFixture.graphPath, "\"panorama::abstract_rtsp_media_source.rtsp_v1_interface\"",
            with: "\"123456789012::lobby.lobby\"")
        fixture.replace(ProjectFixture.graphPath, "\"overrideMandatory\": true", with: "\"overrideMandatory\": false")
        let error = try expectManifestError(
            fixture, overrides: RunOverrides(), code: .unsupportedURL,
            file: "packages/123456789012-lobby-1.0/package.json",
            mentions: ["camera node \"camera_node\"", "\"ftp\" URLs are not supported", "--camera camera_node="])
        #expect(error?.description.contains("secret") == false)
    }
}
