import Foundation
import Hummingbird
import Testing
import VantageAPI
import VantageCore
import VantageServer

/// Events as an operator browses them: newest first, a page at a time by cursor, filtered.
@Suite("API events")
struct APIEventTests {
    /// What the test sent for one event.
    struct Sent: Sendable {
        var id = ""
        let device: String
        let camera: String
        let instance: String?
        let type: String
        let time: Date
    }

    @Test(
        "cursor pages return every event exactly once, newest first, and filters select the right ones",
        arguments: Engine.allCases)
    func pagesAndFilters(engine: Engine) async throws {
        try await APIHarness.run(on: engine) { api in
            let (first, firstToken) = try await api.makeDevice("edge-a")
            let (second, secondToken) = try await api.makeDevice("edge-b")
            // Devices report only about their own cameras and instances: two cameras each, one instance on the
            // first device.
            var cameras: [String: [String]] = [:]
            for (device, names) in [(first.id, ["a-north", "a-south"]), (second.id, ["b-north", "b-south"])] {
                for name in names {
                    let camera = try await api.store.createCamera(
                        NewCamera(name: name, url: "rtsp://192.0.2.1/\(name)", deviceId: device))
                    cameras[device, default: []].append(camera.id)
                }
            }
            let package = try await api.call(
                .post, "/api/v1/packages", as: api.ops, json: NewPackage(name: "people-counter")
            ).decode(Package.self)
            let uploaded = try await api.call(
                .post, "/api/v1/packages/\(package.id)/versions?version=1.0", as: api.ops,
                body: try TestArchive.zip(folder: SourceTree.peopleCounter))
            #expect(uploaded.status == 201, "\(uploaded)")
            let instanceID = try await api.store.createInstance(
                NewInstance(
                    name: "counter", packageId: package.id, packageVersion: "1.0", deviceId: first.id,
                    cameras: ["camera_node": cameras[first.id]![0]])
            ).id
            // Whole seconds, three events per second: pages must break ties between equal times by id.
            let base = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 - 3600).rounded(.down))
            var sent: [Sent] = []
            for i in 0..<31 {
                let device = i % 2 == 0 ? first.id : second.id
                let camera = cameras[device]![i % 3 == 0 ? 0 : 1]
                let instance: String? = i % 5 == 0 && device == first.id ? instanceID : nil
                let type = i % 4 == 0 ? "person.entered" : "people.count"
                let time = base.addingTimeInterval(Double(i / 3))
                sent.append(Sent(device: device, camera: camera, instance: instance, type: type, time: time))
            }
            for (device, token) in [(first.id, firstToken), (second.id, secondToken)] {
                let indices = sent.indices.filter { sent[$0].device == device }
                let batch = EventBatch(
                    events: indices.map {
                        NewEvent(
                            type: sent[$0].type, time: sent[$0].time, cameraId: sent[$0].camera,
                            instanceId: sent[$0].instance, data: .object(["index": .number(Double($0))]))
                    })
                let answer = try await api.call(.post, "/api/v1/devices/\(device)/events", as: token, json: batch)
                #expect(answer.status == 201, "\(answer)")
                let ids = try answer.decode([String: [String]].self)["ids"] ?? []
                try #require(ids.count == indices.count, "\(answer)")
                for (index, id) in zip(indices, ids) { sent[index].id = id }
            }

            let everything = try await Self.allPages(api, query: "", limit: 4)
            #expect(everything.count == sent.count, "paging lost or repeated events")
            #expect(Set(everything.map(\.id)) == Set(sent.map(\.id)), "paging returned other events")
            #expect(Set(everything.map(\.id)).count == everything.count, "an event came twice")

            let cutoff = base.addingTimeInterval(4)
            let filters: [(String, (Sent) -> Bool)] = [
                ("deviceId=\(first.id)", { $0.device == first.id }),
                ("cameraId=\(cameras[first.id]![0])", { $0.camera == cameras[first.id]![0] }),
                ("instanceId=\(instanceID)", { $0.instance == instanceID }),
                ("type=person.entered", { $0.type == "person.entered" }),
                ("since=\(APIJSON.formatTime(cutoff))", { $0.time >= cutoff }),
                ("until=\(APIJSON.formatTime(cutoff))", { $0.time < cutoff }),
                ("deviceId=\(second.id)&type=people.count", { $0.device == second.id && $0.type == "people.count" }),
                ("type=no.such.type", { _ in false }),
            ]
            for (query, selects) in filters {
                let found = try await Self.allPages(api, query: query, limit: 3)
                let expected = sent.filter(selects)
                #expect(found.count == expected.count, "\(query): \(found.count) events, expected \(expected.count)")
                #expect(Set(found.map(\.id)) == Set(expected.map(\.id)), "\(query) selected other events")
            }
        }
    }

    @Test(
        "a batch sent again with the device's event ids stores nothing twice and answers the first ids",
        arguments: Engine.allCases)
    func resentBatches(engine: Engine) async throws {
        try await APIHarness.run(on: engine) { api in
            let (device, token) = try await api.makeDevice("edge-resend")
            let (other, otherToken) = try await api.makeDevice("edge-other")
            func send(_ events: [NewEvent], from device: Device, as token: Credential) async throws -> [String] {
                let answer = try await api.call(
                    .post, "/api/v1/devices/\(device.id)/events", as: token, json: EventBatch(events: events))
                #expect(answer.status == 201, "\(answer)")
                return try answer.decode([String: [String]].self)["ids"] ?? []
            }
            let batch = (0..<150).map { NewEvent(id: "boot1-\($0)", type: "people.count") }
            let first = try await send(batch, from: device, as: token)
            // The answer was lost; the device sends the batch again, plus one new event and one without an id.
            let again = try await send(
                batch + [NewEvent(id: "boot1-150", type: "people.count"), NewEvent(type: "people.count")],
                from: device, as: token)
            #expect(Array(again.prefix(150)) == first, "a resent event is answered with the id it was stored under")
            #expect(Set(again).count == 152)
            // Device ids are per device: another device may use the same ones.
            _ = try await send(Array(batch.prefix(10)), from: other, as: otherToken)
            let stored = try await api.database.query("SELECT device_id, COUNT(*) AS n FROM events GROUP BY device_id")
            let counts = Dictionary(
                uniqueKeysWithValues: try stored.map { (try $0.text("device_id"), try $0.integer("n")) })
            #expect(counts == [device.id: 152, other.id: 10])
        }
    }

    @Test(
        "an event the device sent with its own id is read back with it as deviceEventId (list and get); one sent without has none",
        arguments: Engine.allCases)
    func deviceEventIdRoundTrips(engine: Engine) async throws {
        try await APIHarness.run(on: engine) { api in
            let (device, token) = try await api.makeDevice("edge-ids")
            let answer = try await api.call(
                .post, "/api/v1/devices/\(device.id)/events", as: token,
                json: EventBatch(events: [
                    NewEvent(id: "9f1c2e0a-6b7d-4c5e-8a1f-3d2b4c6e8f01", type: "defect"), NewEvent(type: "defect"),
                ]))
            #expect(answer.status == 201, "\(answer)")
            let ids = try answer.decode([String: [String]].self)["ids"] ?? []
            try #require(ids.count == 2, "\(answer)")

            let listed = try await Self.allPages(api, query: "deviceId=\(device.id)", limit: 10)
            let byID = Dictionary(uniqueKeysWithValues: listed.map { ($0.id, $0) })
            #expect(byID[ids[0]]?.deviceEventId == "9f1c2e0a-6b7d-4c5e-8a1f-3d2b4c6e8f01", "\(listed)")
            #expect(byID[ids[1]].map { $0.deviceEventId == nil } == true, "\(listed)")

            let schema = try #require(api.document.operation("getEvent")?.successSchema)
            let one = try await api.call(.get, "/api/v1/events/\(ids[0])", as: api.viewer)
            #expect(one.status == 200, "\(one)")
            #expect(api.document.validate(one.json ?? .null, against: schema).isEmpty)
            #expect(one.json?["deviceEventId"]?.stringValue == "9f1c2e0a-6b7d-4c5e-8a1f-3d2b4c6e8f01", "\(one)")
            let none = try await api.call(.get, "/api/v1/events/\(ids[1])", as: api.viewer)
            #expect(none.status == 200 && none.json?["deviceEventId"] == nil, "absent, not null: \(none)")
        }
    }

    /// Every page of `/api/v1/events?QUERY`, checking each page's order, schema and cursor.
    static func allPages(
        _ api: APIHarness, query: String, limit: Int, sourceLocation: SourceLocation = #_sourceLocation
    )
        async throws -> [Event]
    {
        var events: [Event] = []
        var cursor: String?
        let schema = try #require(api.document.operation("listEvents")?.successSchema)
        for _ in 0..<100 {
            var target = "/api/v1/events?limit=\(limit)" + (query.isEmpty ? "" : "&\(query)")
            if let cursor {
                target += "&cursor=\(cursor.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)"
            }
            let answer = try await api.call(.get, target, as: api.viewer)
            #expect(answer.status == 200, "\(answer)", sourceLocation: sourceLocation)
            let problems = api.document.validate(answer.json ?? .null, against: schema)
            #expect(problems.isEmpty, "\(problems)", sourceLocation: sourceLocation)
            let page = try answer.decode(Page<Event>.self)
            #expect(page.items.count <= limit, sourceLocation: sourceLocation)
            #expect(
                page.nextCursor == nil || page.items.count == limit, "a short page has a next cursor",
                sourceLocation: sourceLocation)
            events += page.items
            guard let next = page.nextCursor else { break }
            cursor = next
        }
        let ordered = zip(events, events.dropFirst()).allSatisfy { newer, older in
            newer.time > older.time || (newer.time == older.time && newer.id > older.id)
        }
        #expect(
            ordered, "events are not newest first: \(events.map { ($0.time, $0.id) })", sourceLocation: sourceLocation)
        return events
    }
}
