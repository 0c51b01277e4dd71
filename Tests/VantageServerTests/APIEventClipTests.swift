import Foundation
import HTTPTypes
import Testing
import VantageAPI
import VantageCore

@testable import VantageServer

/// Event clips through the API: a device uploads the MP4 of an event it sent (by the event's id on the device);
/// operators read it back, in parts too.
@Suite("Event clips API")
struct APIEventClipTests {
    static let mp4: [UInt8] = [0, 0, 0, 24] + Array("ftypisom".utf8) + Array(repeating: 9, count: 2000)

    @Test(
        "a device's clip is kept under its event (once, even sent again), refused before its event, when not MP4 or from another device; served with Range",
        arguments: Engine.allCases)
    func clipRoundTrip(engine: Engine) async throws {
        try await APIHarness.run(on: engine) { api in
            let (device, token) = try await api.makeDevice("edge-clips")
            let (_, otherToken) = try await api.makeDevice("edge-other")
            let sent = try await api.call(
                .post, "/api/v1/devices/\(device.id)/events", as: token,
                json: EventBatch(events: [NewEvent(id: "e1", type: "over_threshold")]))
            #expect(sent.status == 201, "\(sent)")
            let id = try #require(try sent.decode([String: [String]].self)["ids"]?.first)
            let clipPath = "/api/v1/devices/\(device.id)/events"

            let early = try await api.call(.put, "\(clipPath)/e2/clip", as: token, body: Self.mp4)
            #expect(early.status == 409, "a clip before its event: \(early)")
            #expect(String(decoding: early.body, as: UTF8.self).contains("send the event first"))
            let notMP4 = try await api.call(.put, "\(clipPath)/e1/clip", as: token, body: Array("hello".utf8))
            #expect(notMP4.status == 400, "\(notMP4)")
            let foreign = try await api.call(.put, "\(clipPath)/e1/clip", as: otherToken, body: Self.mp4)
            #expect(foreign.status == 403, "another device's certificate: \(foreign)")

            let before = try await api.call(.get, "/api/v1/events/\(id)", as: api.viewer)
            #expect(before.json?["hasClip"] == .bool(false))
            let missing = try await api.call(.get, "/api/v1/events/\(id)/clip", as: api.viewer)
            #expect(missing.status == 404)

            for _ in 0..<2 {
                let uploaded = try await api.call(.put, "\(clipPath)/e1/clip", as: token, body: Self.mp4)
                #expect(uploaded.status == 200 && uploaded.json?["hasClip"] == .bool(true), "\(uploaded)")
            }
            let after = try await api.call(.get, "/api/v1/events/\(id)", as: api.viewer)
            #expect(after.json?["hasClip"] == .bool(true))
            let whole = try await api.call(.get, "/api/v1/events/\(id)/clip", as: api.viewer)
            #expect(whole.status == 200 && whole.body == Self.mp4)
            #expect(whole.headers[.contentType] == "video/mp4")
            let part = try await api.call(
                .get, "/api/v1/events/\(id)/clip", as: api.viewer, headers: [.range: "bytes=4-11"])
            #expect(part.status == 206 && String(decoding: part.body, as: UTF8.self) == "ftypisom", "\(part)")

            let types = try await api.call(.get, "/api/v1/event-types", as: api.viewer)
            #expect(types.json?["types"] == .array([.string("over_threshold")]), "\(types)")
        }
    }
}
