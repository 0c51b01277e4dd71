import Foundation
import Hummingbird
import Testing
import VantageAPI
import VantageServer

/// "Wrong or missing credentials get 401, insufficient role 403 — tested for every route": walks every operation of
/// the OpenAPI document with each kind of caller.
@Suite("API access")
struct APIAccessTests {
    static let roles = ["viewer", "operator", "admin"]

    @Test(
        "every route refuses missing and wrong credentials with 401 and too low a role with 403",
        arguments: Engine.allCases)
    func everyRouteChecksCredentials(engine: Engine) async throws {
        try await APIHarness.run(on: engine) { api in
            let (device, deviceToken) = try await api.makeDevice("edge-access")
            let byRole = ["viewer": api.viewer, "operator": api.ops, "admin": api.admin]
            let wrongCredentials: [(String, Credential)] = [
                ("no credentials", .none),
                ("an unknown API token", .bearer("vt_" + String(repeating: "a", count: 51), actor: nil)),
                ("an unknown device token", .bearer("vd_" + String(repeating: "a", count: 51), actor: nil)),
                ("a token without its prefix", .bearer("not-a-token", actor: nil)),
                ("Basic authentication", Credential(headers: [.authorization: "Basic YWRtaW46YWRtaW4="], actor: nil)),
                ("an unknown session cookie", .session("vs_unknown", csrf: "x", actor: "nobody")),
            ]
            #expect(
                api.document.operations.count >= 40, "the document lists \(api.document.operations.count) operations")
            for operation in api.document.operations {
                // Device-facing routes name the calling device; the others get an id that exists nowhere.
                let path = operation.path(["id": operation.role == "device" ? device.id : "x"])
                if operation.isPublic {
                    let response = try await api.call(operation.method, path)
                    #expect(![401, 403].contains(response.status), "\(operation.id) is public: \(response)")
                    continue
                }
                for (what, credential) in wrongCredentials {
                    let response = try await api.call(operation.method, path, as: credential)
                    api.document.expectError(response, 401)
                    #expect(response.status == 401, "\(operation.id) with \(what)")
                }
                guard let role = operation.role else { continue }
                if role == "device" {
                    for (name, credential) in byRole {
                        let response = try await api.call(operation.method, path, as: credential)
                        api.document.expectError(response, 403, mentioning: ["device"])
                        #expect(response.status == 403, "\(operation.id) with the \(name) token")
                    }
                    let allowed = try await api.call(operation.method, path, as: deviceToken)
                    #expect(
                        ![401, 403].contains(allowed.status), "\(operation.id) with its device's token: \(allowed)")
                    continue
                }
                let needed = try #require(Self.roles.firstIndex(of: role), "\(operation.id) has x-vantage-role \(role)")
                for (index, name) in Self.roles.enumerated() {
                    let response = try await api.call(operation.method, path, as: byRole[name]!)
                    if index < needed {
                        api.document.expectError(response, 403, mentioning: [role])
                        #expect(response.status == 403, "\(operation.id) needs \(role); \(name) must be refused")
                    } else {
                        #expect(![401, 403].contains(response.status), "\(operation.id) allows \(name): \(response)")
                    }
                }
                let byDevice = try await api.call(operation.method, path, as: deviceToken)
                api.document.expectError(byDevice, 403, mentioning: ["device"])
                #expect(byDevice.status == 403, "\(operation.id) must refuse a device token")
            }
        }
    }

    @Test("a device token only speaks for its own device", arguments: Engine.allCases)
    func deviceTokenIsItsOwnDevice(engine: Engine) async throws {
        try await APIHarness.run(on: engine) { api in
            let (first, _) = try await api.makeDevice("edge-one")
            let (_, secondToken) = try await api.makeDevice("edge-two")
            let before = try await api.snapshot()
            let heartbeat = try await api.call(
                .post, "/api/v1/devices/\(first.id)/heartbeat", as: secondToken, json: Heartbeat(softwareVersion: "1"))
            api.document.expectError(heartbeat, 403, mentioning: [first.id])
            let events = try await api.call(
                .post, "/api/v1/devices/\(first.id)/events", as: secondToken,
                json: EventBatch(events: [NewEvent(type: "spoofed")]))
            api.document.expectError(events, 403, mentioning: [first.id])
            let after = try await api.snapshot()
            #expect(after == before, "a refused device call changed: \(after.difference(from: before))")
        }
    }

    @Test("a console session needs the X-CSRF-Token header to change anything", arguments: Engine.allCases)
    func sessionMutationsNeedCSRFToken(engine: Engine) async throws {
        try await APIHarness.run(on: engine) { api in
            try await api.store.setUser(name: "olga", password: "correct horse battery", role: .operator)
            let login = try #require(
                await api.store.login(name: "olga", password: "correct horse battery", lifetime: .seconds(600)))
            guard case .session(_, let csrf) = login.caller.kind else {
                Issue.record("a login made a \(login.caller.kind) caller, not a session")
                return
            }
            let reads = try await api.call(
                .get, "/api/v1/devices", as: .session(login.secret, csrf: nil, actor: "user:olga"))
            #expect(reads.status == 200, "reading needs no CSRF token: \(reads)")

            let before = try await api.snapshot()
            for (what, header) in [("no", nil), ("a wrong", "csrf_wrong"), ("an empty", "")] as [(String, String?)] {
                let refused = try await api.call(
                    .post, "/api/v1/devices", as: .session(login.secret, csrf: header, actor: "user:olga"),
                    json: NewDevice(name: "forged"))
                api.document.expectError(refused, 403, mentioning: ["X-CSRF-Token"])
                #expect(refused.status == 403, "a session mutation with \(what) CSRF token")
            }
            let after = try await api.snapshot()
            #expect(after == before, "a refused mutation changed: \(after.difference(from: before))")

            let allowed = try await api.call(
                .post, "/api/v1/devices", as: .session(login.secret, csrf: csrf, actor: "user:olga"),
                json: NewDevice(name: "from-console"))
            #expect(allowed.status == 201, "\(allowed)")
            let audit = try await api.store.auditLog(limit: 10, cursor: nil).items
            #expect(audit.contains { $0.actor == "user:olga" && $0.action == "createDevice" }, "\(audit)")

            // A viewer's session cannot change anything, CSRF token or not.
            try await api.store.setUser(name: "vera", password: "another long password", role: .viewer)
            let viewer = try #require(
                await api.store.login(name: "vera", password: "another long password", lifetime: .seconds(600)))
            guard case .session(_, let viewerCSRF) = viewer.caller.kind else { return }
            let refused = try await api.call(
                .post, "/api/v1/devices", as: .session(viewer.secret, csrf: viewerCSRF, actor: "user:vera"),
                json: NewDevice(name: "by-viewer"))
            api.document.expectError(refused, 403, mentioning: ["operator"])
        }
    }
}
