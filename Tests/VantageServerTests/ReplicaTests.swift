import Foundation
import Synchronization
import Testing
import VantageAPI
import VantageCore

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// "A test starts two servers on one PostgreSQL database and shows a change made through one is visible through
/// the other": two `vantage server` processes, started together, sharing a fresh database and a data folder.
@Suite("Replicas")
struct ReplicaTests {
    @Test(
        "two servers on one PostgreSQL database see each other's changes",
        .enabled(if: PostgresTestDatabase.baseURL != nil, Comment(rawValue: PostgresTestDatabase.skipReason)))
    func twoServersShareOneDatabase() async throws {
        let binary = try ServerProcess.binary()
        try await PostgresTestDatabase.withFresh { url in
            let data = FileManager.default.temporaryDirectory.appending(path: "vantage-replicas-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: data) }
            let arguments = [
                "server", "--listen", "127.0.0.1:0", "--device-listen", "127.0.0.1:0", "--data", data.path,
                "--database-url", url,
            ]
            // Started together: both apply migrations at once.
            let first = try ServerProcess(binary, arguments, name: "A")
            defer { first.stop() }
            let second = try ServerProcess(binary, arguments, name: "B")
            defer { second.stop() }
            let a = try await first.waitUntilListening()
            let b = try await second.waitUntilListening()
            #expect(a != b)

            // The first-start admin token is in the shared database, so it works on both.
            let tokens = [first, second].compactMap(\.adminToken)
            let token = try #require(tokens.first, "neither server printed a first-start admin token")
            #expect(tokens.count == 1, "both servers made a first-start admin token")

            let created = try await HTTP.send(
                "POST", a.appending(path: "api/v1/devices"), token: token, json: #"{"name": "replica-edge"}"#)
            #expect(created.status == 201, "\(created.text)")
            let device = try APIJSON.decoder().decode(DeviceCreated.self, from: created.body).device

            let seen = try await HTTP.send("GET", b.appending(path: "api/v1/devices/\(device.id)"), token: token)
            #expect(seen.status == 200, "server B does not see the device made through A: \(seen.text)")
            #expect(try APIJSON.decoder().decode(Device.self, from: seen.body).name == "replica-edge")

            let renamed = try await HTTP.send(
                "PATCH", b.appending(path: "api/v1/devices/\(device.id)"), token: token,
                json: #"{"name": "replica-edge-renamed"}"#)
            #expect(renamed.status == 200, "\(renamed.text)")
            let back = try await HTTP.send("GET", a.appending(path: "api/v1/devices/\(device.id)"), token: token)
            #expect(try APIJSON.decoder().decode(Device.self, from: back.body).name == "replica-edge-renamed")

            // Both audited their change in the one log.
            let audit = try await HTTP.send("GET", a.appending(path: "api/v1/audit"), token: token)
            let actions = try APIJSON.decoder().decode(Page<AuditEntry>.self, from: audit.body).items.map(\.action)
            #expect(actions.sorted() == ["createDevice", "updateDevice"], "\(actions)")

            // The concurrent start applied each migration once, and neither server failed.
            let versions = try await PostgresTestDatabase.psql(
                url, "SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations")
            let counts = versions.split(separator: "|")
            #expect(counts.count == 2 && counts[0] == counts[1] && counts[0] != "0", "schema_migrations: \(versions)")
            for server in [first, second] {
                #expect(server.isRunning, "server \(server.name) stopped:\n\(server.output)")
                #expect(
                    !server.output.lowercased().contains("error"), "server \(server.name) reported:\n\(server.output)")
            }
        }
    }
}

/// Plain HTTP calls to a running server.
enum HTTP {
    struct Answer {
        let status: Int
        let body: Data
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    static func send(_ method: String, _ url: URL, token: String, json: String? = nil) async throws -> Answer {
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        if let json {
            request.httpBody = Data(json.utf8)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let (body, response) = try await URLSession.shared.data(for: request)
        return Answer(status: (response as? HTTPURLResponse)?.statusCode ?? 0, body: body)
    }
}
