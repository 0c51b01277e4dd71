import Foundation
import Testing
import VantageAPI
import VantageServer

/// The logs operations filter in the database: `level=` keeps that level and above, `contains=` finds text
/// case-insensitively (its `%` and `_` are plain characters), on both engines (issue 18, part 8).
@Suite("API logs")
struct APILogsTests {
    static let v1 = "/api/v1"

    @Test("level and contains filter an instance's and a device's log lines", arguments: Engine.allCases)
    func filters(engine: Engine) async throws {
        try await APIHarness.run(on: engine) { api in
            let v1 = Self.v1
            let package = try await CameraIsolationTests.peopleCounter(api)
            let device = try await api.store.createDevice(NewDevice(name: "edge")).device
            let camera = try await api.store.createCamera(
                NewCamera(name: "gate", url: "rtsp://192.0.2.1/gate", deviceId: device.id))
            let created = try await api.call(
                .post, "\(v1)/instances", as: api.ops,
                json: NewInstance(
                    name: "counter", packageId: package, packageVersion: "1.0", deviceId: device.id,
                    cameras: ["camera_node": camera.id]))
            try #require(created.status == 201, "\(created)")
            let instance = try created.decode(ApplicationInstance.self).id
            let now = Date()
            func line(_ level: String, _ message: String, instance: String? = instance) -> LogLine {
                LogLine(time: now, instanceId: instance, level: level, message: message)
            }
            try await api.store.appendLogs(
                device: device.id,
                LogBatch(lines: [
                    line("debug", "decoded frame 17"),
                    line("info", "people counter on app.node=counter"),
                    line("info", "500 frames so far"),
                    line("warning", "Camera gate stalled, reconnecting"),
                    line("error", "model at 50%_done failed"),
                    line("critical", "out of memory"),
                    line("info", "agent connected", instance: nil),
                    line("warning", "agent clock is 3 s off", instance: nil),
                ]))

            func messages(_ path: String, _ query: String) async throws -> [String] {
                let answer = try await api.call(.get, "\(v1)/\(path)/logs?\(query)", as: api.viewer)
                try #require(answer.status == 200, "\(answer)")
                return (try answer.decode([String: [LogLine]].self)["items"] ?? []).map(\.message)
            }
            let instancePath = "instances/\(instance)"
            #expect(
                try await messages(instancePath, "level=warning")
                    == ["Camera gate stalled, reconnecting", "model at 50%_done failed", "out of memory"],
                "warning and above, no info or debug lines")
            #expect(try await messages(instancePath, "level=info").count == 5, "info and above: all but debug")
            #expect(
                try await messages(instancePath, "contains=CAMERA%20GATE") == ["Camera gate stalled, reconnecting"],
                "the search ignores case")
            #expect(
                try await messages(instancePath, "contains=50%25") == ["model at 50%_done failed"],
                "% is a plain character, not a wildcard (500 frames does not match)")
            #expect(try await messages(instancePath, "contains=_") == ["model at 50%_done failed"])
            #expect(
                try await messages(instancePath, "level=info&contains=counter") == [
                    "people counter on app.node=counter"
                ])
            #expect(try await messages(instancePath, "level=error&contains=camera").isEmpty)
            #expect(try await messages("devices/\(device.id)", "level=warning") == ["agent clock is 3 s off"])
            #expect(try await messages("devices/\(device.id)", "contains=Connected") == ["agent connected"])

            let refused = try await api.call(.get, "\(v1)/\(instancePath)/logs?level=loud", as: api.viewer)
            api.document.expectError(refused, 400, mentioning: ["level", "warning", "loud"])
        }
    }
}
