import Foundation
import VantageAPI

// The API of event review: clips (uploaded by devices, played by the console) and the event types there are.
extension APIRoutes {
    struct EventTypes: Encodable, Sendable { let types: [String] }

    static let eventReview: [APIOperation] = [
        APIOperation(
            method: .get, path: "\(base)/events/{id}/clip", id: "getEventClip", tag: "events",
            summary: "An event's clip (MP4; Range requests answer 206, so a video element can seek)",
            access: .role(.viewer), status: 200, content: .binary("video/mp4"), resumable: true
        ) { call in .resumableFile(try await call.store.eventClip(call.parameter("id")), contentType: "video/mp4") },
        APIOperation(
            method: .get, path: "\(base)/event-types", id: "listEventTypes", tag: "events",
            summary: "The distinct event types the server has, by name (at most 200)", access: .role(.viewer),
            status: 200, content: .json(.ref("EventTypes"))
        ) { call in .json(EventTypes(types: try await call.store.eventTypes())) },
        APIOperation(
            method: .put, path: "\(base)/devices/{id}/events/{eventId}/clip", id: "uploadEventClip",
            tag: "device-facing",
            summary:
                "A device uploads the MP4 clip of an event it sent (eventId: the event's id on the device); at most 64 MiB, kept once",
            access: .device, body: .binary("application/octet-stream"), status: 200, content: .json(.ref("Event")),
            audited: false
        ) { call in
            try call.requireDevice(call.parameter("id"))
            let upload = try await call.receiveUpload(limit: Store.maxClipBytes, what: "the limit for a clip")
            defer { try? FileManager.default.removeItem(at: upload.file) }
            return .json(
                try await call.store.attachClip(
                    device: call.parameter("id"), deviceEventID: call.parameter("eventId"), upload: upload))
        },
    ]
}
