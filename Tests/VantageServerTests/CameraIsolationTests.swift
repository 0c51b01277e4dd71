import Foundation
import Testing
import VantageAPI
import VantageServer

/// A camera's credentials reach only the device it is assigned to, and credentials written in a camera URL's query
/// string are kept as secret as a `user:password@` (issue 14, part 6).
@Suite("Camera isolation")
struct CameraIsolationTests {
    static let v1 = "/api/v1"

    /// A package version of the people counter to bind; returns the package id.
    static func peopleCounter(_ api: APIHarness) async throws -> String {
        let package = try await api.call(.post, "\(v1)/packages", as: api.ops, json: NewPackage(name: "counter"))
            .decode(Package.self)
        let uploaded = try await api.call(
            .post, "\(v1)/packages/\(package.id)/versions?version=1.0", as: api.ops,
            body: try TestArchive.zip(folder: SourceTree.peopleCounter))
        try #require(uploaded.status == 201, "\(uploaded)")
        return package.id
    }

    // Guards: an instance on device B cannot bind a camera assigned to device A (its credentials would reach B):
    // 409 naming the camera and both devices, and nothing is stored. A camera of B binds; an unassigned camera is
    // assigned to B by the binding, and then cannot be bound on A, nor moved away from B while B's instance uses it.
    @Test("a camera binds only on its own device", arguments: Engine.allCases)
    func bindsOnlyOnItsDevice(engine: Engine) async throws {
        try await APIHarness.run(on: engine) { api in
            let v1 = Self.v1
            let package = try await Self.peopleCounter(api)
            let a = try await api.store.createDevice(NewDevice(name: "edge-a")).device
            let b = try await api.store.createDevice(NewDevice(name: "edge-b")).device
            let ofA = try await api.store.createCamera(
                NewCamera(name: "gate", url: "rtsp://192.0.2.1/gate", deviceId: a.id))
            let ofB = try await api.store.createCamera(
                NewCamera(name: "dock", url: "rtsp://192.0.2.2/dock", deviceId: b.id))
            let loose = try await api.store.createCamera(NewCamera(name: "yard", url: "rtsp://192.0.2.3/yard"))
            func instance(_ name: String, on device: String, camera: String) -> NewInstance {
                NewInstance(
                    name: name, packageId: package, packageVersion: "1.0", deviceId: device,
                    cameras: ["camera_node": camera])
            }

            let before = try await api.snapshot()
            let refused = try await api.call(
                .post, "\(v1)/instances", as: api.ops, json: instance("stolen", on: b.id, camera: ofA.id))
            api.document.expectError(refused, 409, mentioning: ["gate", ofA.id, "edge-a", "edge-b"])
            let after = try await api.snapshot()
            #expect(after == before, "a refused binding changed: \(after.difference(from: before))")

            let own = try await api.call(
                .post, "\(v1)/instances", as: api.ops, json: instance("own", on: b.id, camera: ofB.id))
            #expect(own.status == 201, "\(own)")
            let claimed = try await api.call(
                .post, "\(v1)/instances", as: api.ops, json: instance("claims", on: b.id, camera: loose.id))
            #expect(claimed.status == 201, "\(claimed)")
            #expect(try await api.store.camera(loose.id).deviceId == b.id, "binding an unassigned camera assigns it")
            let second = try await api.call(
                .post, "\(v1)/instances", as: api.ops, json: instance("second", on: a.id, camera: loose.id))
            api.document.expectError(second, 409, mentioning: ["yard", "edge-b"])

            // Rebinding an instance on B to A's camera is refused the same way.
            let ownID = try own.decode(ApplicationInstance.self).id
            let rebind = try await api.call(
                .patch, "\(v1)/instances/\(ownID)", as: api.ops,
                json: InstanceUpdate(cameras: ["camera_node": ofA.id]))
            api.document.expectError(rebind, 409, mentioning: ["gate", "edge-a"])

            // Moving a bound camera to another device (or to none) is refused while the instance uses it.
            for target in [a.id, ""] {
                let moved = try await api.call(
                    .patch, "\(v1)/cameras/\(ofB.id)", as: api.ops, json: CameraUpdate(deviceId: target))
                api.document.expectError(moved, 409, mentioning: [ofB.id, ownID])
            }
            #expect(try await api.store.camera(ofB.id).deviceId == b.id)

            // Device A's desired state has no instance of B, and B's carries B's cameras only.
            let desiredB = try await api.store.desiredState(device: b.id)
            #expect(Set(desiredB.instances.flatMap { $0.cameras.values.map(\.cameraId) }) == [ofB.id, loose.id])
            #expect(try await api.store.desiredState(device: a.id).instances.isEmpty)
        }
    }

    // Guards: credentials in a camera URL's query string (`?user=…&pwd=…`, as many cameras take them) are stored
    // encrypted and answered as `***` — to viewers, in the database, in the audit log and on the console page — and
    // the device gets them back. An update keeping `***` keeps the stored value; a new camera cannot use `***`.
    @Test("credentials in a camera URL's query are kept secret", arguments: Engine.allCases)
    func queryCredentials(engine: Engine) async throws {
        try await APIHarness.run(on: engine) { api in
            let v1 = Self.v1
            let created = try await api.call(
                .post, "\(v1)/cameras", as: api.ops,
                json: NewCamera(
                    name: "foscam", url: "http://192.0.2.9:88/videostream.cgi?channel=1&usr=admin&PWD=hunter2%21"))
            #expect(created.status == 201, "\(created)")
            let camera = try created.decode(Camera.self)
            #expect(camera.url == "http://192.0.2.9:88/videostream.cgi?channel=1&usr=***&PWD=***")
            #expect(camera.hasCredentials)
            let token = try await api.call(
                .post, "\(v1)/cameras", as: api.ops,
                json: NewCamera(name: "cloud", url: "rtsp://cam:s3cret@192.0.2.8/live?token=abc123secret&stream=0"))
            #expect(try token.decode(Camera.self).url == "rtsp://192.0.2.8/live?token=***&stream=0", "\(token)")

            // Changing the host while keeping `***` keeps the stored password.
            let moved = try await api.call(
                .patch, "\(v1)/cameras/\(camera.id)", as: api.ops,
                json: CameraUpdate(url: "http://192.0.2.19:88/videostream.cgi?channel=1&usr=***&PWD=***"))
            #expect(moved.status == 200, "\(moved)")
            #expect(
                try await api.store.cameraStreamURL(camera.id)
                    == "http://192.0.2.19:88/videostream.cgi?channel=1&usr=admin&PWD=hunter2%21")
            #expect(
                try await api.store.cameraStreamURL(try token.decode(Camera.self).id)
                    == "rtsp://cam:s3cret@192.0.2.8/live?token=abc123secret&stream=0")

            let placeholder = try await api.call(
                .post, "\(v1)/cameras", as: api.ops, json: NewCamera(name: "new", url: "rtsp://192.0.2.7/x?pwd=***"))
            api.document.expectError(placeholder, 400, mentioning: ["pwd=***", "give the value"])

            var texts = [created.text, token.text, moved.text]
            texts.append(try await api.call(.get, "\(v1)/cameras", as: api.viewer).text)
            texts.append(try await api.call(.get, "\(v1)/audit", as: api.admin).text)
            for row in try await api.database.query("SELECT * FROM cameras") { texts.append("\(row.values)") }
            for row in try await api.database.query("SELECT * FROM audit_log") { texts.append("\(row.values)") }
            for text in texts {
                #expect(!text.contains("hunter2") && !text.contains("abc123secret"), "a credential shows: \(text)")
            }
        }
    }

    // Guards: the console's camera list shows the URL with `***`, not the query's password.
    @Test("the console shows query credentials as ***")
    func consoleRedacts() async throws {
        try await APIHarness.run(on: .sqlite) { api in
            try await api.store.setUser(name: "viewer", password: "correct horse battery", role: .viewer)
            _ = try await api.store.createCamera(
                NewCamera(name: "lobby", url: "http://192.0.2.9/snapshot.cgi?user=admin&password=hunter2"))
            let login = try #require(
                await api.store.login(name: "viewer", password: "correct horse battery", lifetime: .seconds(600)))
            let page = try await api.call(
                .get, "/cameras", as: .session(login.secret, csrf: nil, actor: "user:viewer"))
            #expect(page.status == 200)
            #expect(page.text.contains("user=***&amp;password=***") || page.text.contains("user=***&password=***"))
            #expect(!page.text.contains("hunter2"))
        }
    }
}
