import Foundation
import Hummingbird
import Testing
import VantageAPI
import VantageApp
import VantageCore
import VantageServer

/// "Input validation everywhere: oversized bodies, malformed JSON, path traversal in archive uploads, unknown fields,
/// bad IDs — each gets a 4xx with a clear message and leaves the database unchanged."
@Suite("API input validation")
struct APIValidationTests {
    static let v1 = "/api/v1"

    /// Sends a request that must be refused with `status` and a message naming `words`, and checks that the fleet's
    /// tables and the artifact store are as they were.
    static func expectRefused(
        _ api: APIHarness, _ method: HTTPRequest.Method, _ target: String, as credential: Credential,
        json: (any Encodable & Sendable)? = nil, body: [UInt8]? = nil, status: Int, mentioning words: [String],
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let before = try await api.snapshot()
        // Refused requests may break the document's limits on purpose.
        let response = try await api.call(method, target, as: credential, json: json, body: body, documented: false)
        api.document.expectError(response, status, mentioning: words, sourceLocation: sourceLocation)
        let after = try await api.snapshot()
        #expect(
            after == before, "\(method) \(target) changed the database: \(after.difference(from: before))",
            sourceLocation: sourceLocation)
    }

    @Test(
        "malformed, oversized and mistyped JSON bodies, unknown fields and query parameters", arguments: Engine.allCases
    )
    func malformedRequests(engine: Engine) async throws {
        try await APIHarness.run(on: engine) { api in
            let v1 = Self.v1
            let (device, deviceToken) = try await api.makeDevice("edge-valid")
            let (other, _) = try await api.makeDevice("edge-other")
            let otherCamera = try await api.store.createCamera(
                NewCamera(name: "other-cam", url: "rtsp://192.0.2.2/s", deviceId: other.id))
            let model = try await api.store.createModel(NewModel(name: "detector"))
            let cases: [(String, HTTPRequest.Method, String, String, Int, [String])] = [
                ("truncated JSON", .post, "\(v1)/devices", #"{"name": "#, 400, ["not valid JSON"]),
                ("not an object", .post, "\(v1)/devices", #"["edge"]"#, 400, ["JSON object"]),
                ("empty body", .post, "\(v1)/devices", "", 400, ["JSON object"]),
                ("unknown field", .post, "\(v1)/devices", #"{"name": "edge-2", "colour": "red"}"#, 400, ["colour"]),
                (
                    "unknown fields on a change", .patch, "\(v1)/devices/\(device.id)", #"{"nmae": "edge-3"}"#, 400,
                    ["nmae", "name, description"]
                ),
                ("wrong type", .post, "\(v1)/devices", #"{"name": 42}"#, 400, ["name", "string"]),
                ("missing field", .post, "\(v1)/devices", #"{"description": "x"}"#, 400, ["name", "required"]),
                ("bad name", .post, "\(v1)/devices", #"{"name": "../../etc/passwd"}"#, 400, ["../../etc/passwd"]),
                ("empty name", .post, "\(v1)/devices", #"{"name": ""}"#, 400, ["name"]),
                ("bad enum", .post, "\(v1)/tokens", #"{"name": "bot", "role": "root"}"#, 400, ["role"]),
                (
                    "bad time", .post, "\(v1)/devices/\(device.id)/events",
                    #"{"events": [{"type": "x", "time": "yesterday"}]}"#, 400, ["events[0].time", "ISO 8601"]
                ),
                (
                    "not a JPEG", .post, "\(v1)/devices/\(device.id)/events",
                    #"{"events": [{"type": "x", "snapshot": "aGVsbG8="}]}"#, 400, ["events[0].snapshot", "JPEG"]
                ),
                (
                    "unknown field in an event", .post, "\(v1)/devices/\(device.id)/events",
                    #"{"events": [{"type": "x", "colour": "red"}]}"#, 400, ["colour"]
                ),
                (
                    "a bad event refuses its batch", .post, "\(v1)/devices/\(device.id)/events",
                    #"{"events": [{"type": "fine"}, {"type": "not fine!"}]}"#, 400, ["events[1].type"]
                ),
                (
                    "another device's camera", .post, "\(v1)/devices/\(device.id)/events",
                    #"{"events": [{"type": "x", "cameraId": "\#(otherCamera.id)"}]}"#, 422,
                    ["events[0].cameraId", "not a camera assigned to this device"]
                ),
                (
                    "an instance of no device", .post, "\(v1)/devices/\(device.id)/events",
                    #"{"events": [{"type": "x", "instanceId": "ins_aaaaaaaaaaaaaaaa"}]}"#, 422, ["events[0].instanceId"]
                ),
                (
                    "a sequence without its instance", .post, "\(v1)/devices/\(device.id)/events",
                    #"{"events": [{"type": "x", "sequence": 7}]}"#, 400, ["events[0].sequence", "instanceId"]
                ),

                (
                    "a NUL in text", .post, "\(v1)/devices", #"{"name": "edge-9", "description": "a\u0000b"}"#, 400,
                    ["NUL"]
                ),
                (
                    "credentials that do not parse", .post, "\(v1)/cameras",
                    #"{"name": "cam-x", "url": "rtsp://admin:se#cret@10.0.0.1/x"}"#, 400, ["percent-encoded"]
                ),
                (
                    "a change with one bad field changes nothing", .patch, "\(v1)/devices/\(device.id)",
                    #"{"name": "renamed", "description": "\#(String(repeating: "x", count: 2000))"}"#, 400,
                    ["description"]
                ),
                (
                    "a camera change with a bad URL changes nothing", .patch, "\(v1)/cameras/\(otherCamera.id)",
                    #"{"name": "renamed", "password": "new", "url": "ftp://10.0.0.1/x"}"#, 400, ["camera URL"]
                ),
                (
                    "a model file name with a quote", .post, "\(v1)/models/\(model.id)/versions?filename=a%22b.onnx",
                    "bytes", 400, ["filename"]
                ),
            ]
            for (_, method, target, text, status, words) in cases {
                // Device-facing routes take their device's own token; token routes an admin's.
                let credential =
                    target.hasSuffix("/events")
                    ? deviceToken : target.hasPrefix("\(v1)/tokens") ? api.admin : api.ops
                try await Self.expectRefused(
                    api, method, target, as: credential, body: Array(text.utf8), status: status,
                    mentioning: words)
            }

            // Query parameters
            for (target, words) in [
                ("\(v1)/devices?colour=red", ["colour"]),
                ("\(v1)/events?limit=lots", ["limit", "whole number"]),
                ("\(v1)/events?limit=0", ["limit", "1-500"]),
                ("\(v1)/events?limit=501", ["limit", "1-500"]),
                ("\(v1)/events?since=yesterday", ["since", "ISO 8601"]),
                ("\(v1)/events?cursor=bm90LWEtY3Vyc29y", ["cursor"]),
                ("\(v1)/events?order=sequence", ["order=sequence", "instanceId"]),
                ("\(v1)/events?order=random", ["order"]),
                ("\(v1)/audit?cursor=garbage", ["cursor"]),
                ("\(v1)/instances?status=FINE", ["status", "DEPLOYMENT_PENDING"]),
                ("\(v1)/devices/\(device.id)/metrics?since=now", ["since"]),
            ] {
                try await Self.expectRefused(
                    api, .get, target, as: target.contains("audit") ? api.admin : api.viewer, status: 400,
                    mentioning: words)
            }
        }
    }

    @Test("bad and unknown ids get 404 naming the id", arguments: Engine.allCases)
    func badIDs(engine: Engine) async throws {
        try await APIHarness.run(on: engine) { api in
            let v1 = Self.v1
            let model = try await api.store.createModel(NewModel(name: "detector"))
            let missing = "dev_aaaaaaaaaaaaaaaa"
            let cases: [(HTTPRequest.Method, String, Credential, (any Encodable & Sendable)?, String)] = [
                (.get, "\(v1)/devices/not-an-id", api.viewer, nil, "not-an-id"),
                (.get, "\(v1)/devices/\(missing)", api.viewer, nil, missing),
                (.patch, "\(v1)/devices/\(missing)", api.ops, DeviceUpdate(name: "x"), missing),
                (.delete, "\(v1)/devices/%2E%2E%2F%2E%2E", api.ops, nil, "device"),
                (.get, "\(v1)/cameras/cam_%27%20OR%201%3D1", api.viewer, nil, "camera"),
                (.delete, "\(v1)/cameras/cam_bbbbbbbbbbbbbbbb", api.ops, nil, "cam_bbbbbbbbbbbbbbbb"),
                (.get, "\(v1)/models/\(model.id)/versions/7/content", api.viewer, nil, "7"),
                (.get, "\(v1)/models/\(model.id)/versions/seven/content", api.viewer, nil, "seven"),
                (.get, "\(v1)/packages/pkg_zzzzzzzzzzzzzzzz", api.viewer, nil, "pkg_zzzzzzzzzzzzzzzz"),
                (
                    .get, "\(v1)/packages/pkg_zzzzzzzzzzzzzzzz/versions/1.0/archive", api.viewer, nil,
                    "pkg_zzzzzzzzzzzzzzzz"
                ),
                (.get, "\(v1)/instances/ins_zzzzzzzzzzzzzzzz", api.viewer, nil, "ins_zzzzzzzzzzzzzzzz"),
                (.patch, "\(v1)/instances/nope", api.ops, InstanceUpdate(name: "x"), "nope"),
                (.delete, "\(v1)/instances/nope", api.ops, nil, "nope"),
                (.get, "\(v1)/instances/nope/deployments", api.viewer, nil, "nope"),
                (.get, "\(v1)/events/evt_zzzzzzzzzzzzzzzz", api.viewer, nil, "evt_zzzzzzzzzzzzzzzz"),
                (.get, "\(v1)/events/evt_zzzzzzzzzzzzzzzz/snapshot", api.viewer, nil, "evt_zzzzzzzzzzzzzzzz"),
                (.delete, "\(v1)/tokens/tok_zzzzzzzzzzzzzzzz", api.admin, nil, "tok_zzzzzzzzzzzzzzzz"),
                (.delete, "\(v1)/models/mdl_zzzzzzzzzzzzzzzz", api.ops, nil, "mdl_zzzzzzzzzzzzzzzz"),
            ]
            for (method, target, credential, json, word) in cases {
                try await Self.expectRefused(
                    api, method, target, as: credential, json: json, status: 404, mentioning: [word])
            }
            let noRoute = try await api.call(.get, "\(v1)/nothing-here", as: api.viewer)
            #expect(noRoute.status == 404 && noRoute.message.contains("/api/v1/nothing-here"), "\(noRoute)")
        }
    }

    @Test("oversized JSON bodies and uploads get 413 and store nothing", arguments: Engine.allCases)
    func oversizedBodies(engine: Engine) async throws {
        try await APIHarness.run(on: engine, configure: { $0.maxUploadBytes = 1 << 20 }) { api in
            let v1 = Self.v1
            let huge = #"{"name": "big", "description": ""# + String(repeating: "a", count: 1_100_000) + #""}"#
            try await Self.expectRefused(
                api, .post, "\(v1)/devices", as: api.ops, body: Array(huge.utf8), status: 413,
                mentioning: ["larger than"])
            let model = try await api.store.createModel(NewModel(name: "detector"))
            try await Self.expectRefused(
                api, .post, "\(v1)/models/\(model.id)/versions?filename=big.onnx", as: api.ops,
                body: [UInt8](repeating: 7, count: (1 << 20) + 1), status: 413, mentioning: ["limit of 1 MiB"])
            let package = try await api.store.createPackage(NewPackage(name: "app"))
            try await Self.expectRefused(
                api, .post, "\(v1)/packages/\(package.id)/versions?version=1.0", as: api.ops,
                body: [UInt8](repeating: 7, count: 3 << 20), status: 413, mentioning: ["limit of 1 MiB"])
            #expect(APIHarness.files(under: api.artifactsFolder).isEmpty, "a refused upload left files behind")
        }
    }

    @Test("model uploads need a plain model file name and a body", arguments: Engine.allCases)
    func modelUploads(engine: Engine) async throws {
        try await APIHarness.run(on: engine) { api in
            let model = try await api.store.createModel(NewModel(name: "detector"))
            let target = "\(Self.v1)/models/\(model.id)/versions"
            for (query, words) in [
                ("?filename=..%2F..%2Fevil.onnx", ["../../evil.onnx", "plain file name"]),
                ("?filename=model.exe", ["model.exe", ".onnx"]),
                ("", ["filename", "required"]),
                ("?filename=m.onnx&descriptor=%7Bnot%20json", ["descriptor"]),
            ] {
                try await Self.expectRefused(
                    api, .post, target + query, as: api.ops, body: [1, 2, 3], status: 400, mentioning: words)
            }
            try await Self.expectRefused(
                api, .post, target + "?filename=m.onnx", as: api.ops, body: nil, status: 400, mentioning: ["empty"])
        }
    }

    @Test(
        "package archives: path traversal, links, non-ZIPs, missing graphs/ and bad manifests get 422",
        arguments: Engine.allCases)
    func packageArchives(engine: Engine) async throws {
        try await APIHarness.run(on: engine) { api in
            let package = try await api.store.createPackage(NewPackage(name: "people-counter"))
            let target = "\(Self.v1)/packages/\(package.id)/versions?version=1.0"
            let marker = "vantage-evil-\(UUID().uuidString)"
            let project = try TestArchive.peopleCounterEntries()
            let evil: [(String, TestArchive.Entry, [String])] = [
                ("a ../ path", .file("../\(marker).txt", [0x41]), ["../\(marker).txt", "outside"]),
                (
                    "a deep ../ path",
                    .file("people-counter/" + String(repeating: "../", count: 12) + "tmp/\(marker).txt", [0x41]),
                    ["outside"]
                ),
                ("an absolute path", .file("/tmp/\(marker).txt", [0x41]), ["/tmp/\(marker).txt", "outside"]),
                ("a backslash path", .file("..\\..\\\(marker).txt", [0x41]), ["outside"]),
                ("a symbolic link", .symlink("people-counter/graphs/escape", target: "/etc"), ["symbolic link"]),
                (
                    "a link to outside", .symlink("people-counter/\(marker)", target: "../../../../tmp/\(marker).txt"),
                    ["symbolic link"]
                ),
            ]
            for (what, entry, words) in evil {
                try await Self.expectRefused(
                    api, .post, target, as: api.ops, body: try TestArchive.make(project + [entry]), status: 422,
                    mentioning: words)
                let written = APIHarness.files(under: api.folder).filter { $0.contains(marker) }
                #expect(written.isEmpty, "\(what): the upload wrote \(written)")
                #expect(
                    !FileManager.default.fileExists(atPath: "/tmp/\(marker).txt"), "\(what) wrote /tmp/\(marker).txt")
            }

            try await Self.expectRefused(
                api, .post, target, as: api.ops, body: Array("just some text, not a ZIP".utf8), status: 422,
                mentioning: ["not a ZIP archive"])
            try await Self.expectRefused(
                api, .post, target, as: api.ops,
                body: try TestArchive.make([.file("README.md", Array("# hello".utf8))]), status: 422,
                mentioning: ["graphs/"])

            // A manifest the runtime would refuse is refused with the runtime's own message.
            for (what, graph) in [
                ("truncated", #"{"nodeGraph": {"envelopeVersion": "2021-01-01", "nodes": ["#),
                ("unknown node", try Self.graphWithEdgeToNowhere()),
            ] {
                let copy = try TestArchive.copyOfPeopleCounter()
                defer { try? FileManager.default.removeItem(at: copy.deletingLastPathComponent()) }
                try graph.write(
                    to: copy.appending(path: "graphs/people-counter/graph.json"), atomically: true, encoding: .utf8)
                let parserMessage: String
                do {
                    _ = try ApplicationProject.load(copy)
                    Issue.record("the \(what) manifest loads")
                    continue
                } catch let error as ManifestError {
                    parserMessage = error.message
                }
                try await Self.expectRefused(
                    api, .post, target, as: api.ops, body: try TestArchive.zip(folder: copy), status: 422,
                    mentioning: ["not valid", parserMessage])
            }

            // The example as written is refused: its program is built beside the pusher's vantage and its model is
            // in the pusher's .deps/, so a device would have neither. The answer names both and what to do.
            try await Self.expectRefused(
                api, .post, target, as: api.ops, body: try TestArchive.zip(folder: SourceTree.peopleCounterSource),
                status: 422,
                mentioning: [
                    "not self-contained", "code node \"code_node\" runs \"people-counter\"",
                    "../../.deps/models/ssdlite/frozen_inference_graph.pb", "vantage app build",
                ])

            // The same project, self-contained, is accepted (at the archive's root this time), once.
            let accepted = try await api.call(
                .post, target, as: api.ops,
                body: try TestArchive.zip(folder: SourceTree.peopleCounter, keepParent: false))
            #expect(accepted.status == 201, "\(accepted)")
            try await Self.expectRefused(
                api, .post, target, as: api.ops, body: try TestArchive.zip(folder: SourceTree.peopleCounter),
                status: 409, mentioning: ["1.0", "already exists"])
            try await Self.expectRefused(
                api, .post, "\(Self.v1)/packages/\(package.id)/versions?version=..%2F1", as: api.ops,
                body: try TestArchive.zip(folder: SourceTree.peopleCounter), status: 400, mentioning: ["../1"])
        }
    }

    /// The example's graph with one more edge, from a node that does not exist.
    static func graphWithEdgeToNowhere() throws -> String {
        let file = SourceTree.peopleCounter.appending(path: "graphs/people-counter/graph.json")
        let text = try String(contentsOf: file, encoding: .utf8)
        return text.replacingOccurrences(
            of: #""edges": ["#,
            with: #""edges": [{"producer": "ghost_node.video_out", "consumer": "code_node.video_in"}, "#)
    }

    @Test("instances are checked against the package's camera and parameter nodes", arguments: Engine.allCases)
    func instanceBindings(engine: Engine) async throws {
        try await APIHarness.run(on: engine) { api in
            let v1 = Self.v1
            let (device, _) = try await api.makeDevice("edge-1")
            let camera = try await api.store.createCamera(NewCamera(name: "lobby", url: "rtsp://cam.local/live"))
            let package = try await api.store.createPackage(NewPackage(name: "people-counter"))
            // The example with a constraint on min_score (a number from 0 to 1).
            let copy = try TestArchive.copyOfPeopleCounter()
            defer { try? FileManager.default.removeItem(at: copy.deletingLastPathComponent()) }
            let graphFile = copy.appending(path: "graphs/people-counter/graph.json")
            // The example's min_score carries a constraint regex (0 to 1).
            #expect(try String(contentsOf: graphFile, encoding: .utf8).contains("constraintRegex"))
            let uploaded = try await api.call(
                .post, "\(v1)/packages/\(package.id)/versions?version=1.0", as: api.ops,
                body: try TestArchive.zip(folder: copy))
            #expect(uploaded.status == 201, "\(uploaded)")
            #expect(
                try uploaded.decode(PackageVersion.self).parameters.first { $0.node == "min_score" }?.constraintRegex
                    != nil)

            func instance(
                name: String = "counter", version: String = "1.0", device deviceId: String? = nil,
                cameras: [String: String]? = nil, parameters: [String: JSONValue] = [:]
            ) -> NewInstance {
                NewInstance(
                    name: name, packageId: package.id, packageVersion: version, deviceId: deviceId ?? device.id,
                    cameras: cameras ?? ["camera_node": camera.id], parameters: parameters)
            }
            let refused: [(NewInstance, Int, [String])] = [
                (instance(cameras: ["camera_node": camera.id, "door_cam": camera.id]), 422, ["door_cam"]),
                (instance(cameras: [:]), 422, ["camera_node"]),
                (
                    instance(cameras: ["camera_node": "cam_zzzzzzzzzzzzzzzz"]), 422,
                    ["camera_node", "cam_zzzzzzzzzzzzzzzz"]
                ),
                (instance(parameters: ["model_name": .string("other")]), 422, ["model_name", "not overridable"]),
                (instance(parameters: ["threshold": .number(1)]), 422, ["threshold", "min_score"]),
                (instance(parameters: ["min_score": .number(1.5)]), 422, ["min_score", "does not match", "0 to 1"]),
                (instance(parameters: ["max_people": .string("many")]), 422, ["max_people", "many"]),
                (instance(parameters: ["max_people": .number(2.5)]), 422, ["max_people"]),
                (instance(device: "dev_zzzzzzzzzzzzzzzz"), 422, ["deviceId", "dev_zzzzzzzzzzzzzzzz"]),
                (instance(version: "9.9"), 422, ["9.9", "1.0"]),
                (instance(name: "bad/name"), 400, ["bad/name"]),
            ]
            for (body, status, words) in refused {
                try await Self.expectRefused(
                    api, .post, "\(v1)/instances", as: api.ops, json: body, status: status, mentioning: words)
            }

            let created = try await api.call(
                .post, "\(v1)/instances", as: api.ops, json: instance(parameters: ["min_score": .number(0.7)]))
            #expect(created.status == 201, "\(created)")
            let id = try created.decode(ApplicationInstance.self).id
            for (update, words) in [
                (InstanceUpdate(parameters: ["model_name": .string("x")]), ["model_name"]),
                (InstanceUpdate(parameters: ["min_score": .string("high")]), ["min_score"]),
                (InstanceUpdate(cameras: ["camera_node": camera.id, "extra": camera.id]), ["extra"]),
                (InstanceUpdate(packageVersion: "2.0"), ["2.0"]),
            ] {
                try await Self.expectRefused(
                    api, .patch, "\(v1)/instances/\(id)", as: api.ops, json: update, status: 422, mentioning: words)
            }
            try await Self.expectRefused(
                api, .patch, "\(v1)/instances/\(id)", as: api.ops, body: Array(#"{"desiredState": "PAUSED"}"#.utf8),
                status: 400, mentioning: ["desiredState"])
            try await Self.expectRefused(
                api, .post, "\(v1)/instances", as: api.ops,
                json: instance(parameters: [:]).with(desiredState: .removed),
                status: 400, mentioning: ["desiredState"])
            // Resources in use cannot be deleted.
            try await Self.expectRefused(
                api, .delete, "\(v1)/cameras/\(camera.id)", as: api.ops, status: 409, mentioning: [id])
            try await Self.expectRefused(
                api, .delete, "\(v1)/devices/\(device.id)", as: api.ops, status: 409, mentioning: [id])
            try await Self.expectRefused(
                api, .delete, "\(v1)/packages/\(package.id)", as: api.ops, status: 409, mentioning: [id])
        }
    }

    @Test("duplicate names get 409 naming the name", arguments: Engine.allCases)
    func duplicates(engine: Engine) async throws {
        try await APIHarness.run(on: engine) { api in
            let v1 = Self.v1
            let (device, _) = try await api.makeDevice("edge-1")
            _ = try await api.makeDevice("edge-2")
            _ = try await api.store.createCamera(NewCamera(name: "lobby", url: "rtsp://cam.local/live"))
            let camera = try await api.store.createCamera(NewCamera(name: "door", url: "rtsp://door.local/live"))
            _ = try await api.store.createModel(NewModel(name: "detector"))
            _ = try await api.store.createPackage(NewPackage(name: "counter"))
            let cases: [(HTTPRequest.Method, String, any Encodable & Sendable, String)] = [
                (.post, "\(v1)/devices", NewDevice(name: "edge-1"), "edge-1"),
                (.patch, "\(v1)/devices/\(device.id)", DeviceUpdate(name: "edge-2"), "edge-2"),
                (.post, "\(v1)/cameras", NewCamera(name: "lobby", url: "rtsp://other.local/live"), "lobby"),
                (.patch, "\(v1)/cameras/\(camera.id)", CameraUpdate(name: "lobby"), "lobby"),
                (.post, "\(v1)/models", NewModel(name: "detector"), "detector"),
                (.post, "\(v1)/packages", NewPackage(name: "counter"), "counter"),
            ]
            for (method, target, json, name) in cases {
                try await Self.expectRefused(
                    api, method, target, as: api.ops, json: json, status: 409, mentioning: [name, "already exists"])
            }
        }
    }
}

extension NewInstance {
    func with(desiredState: DesiredState) -> NewInstance {
        var copy = self
        copy.desiredState = desiredState
        return copy
    }
}
