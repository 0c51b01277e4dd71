// `vantage server init` end to end: the real `vantage` binary initialises a temporary data folder and settings file,
// then a real `vantage server serve` started with that folder and the settings file's flags answers the API with
// the token init printed, and prints no token of its own.
import Foundation
import Testing
import VantageAPI
import VantageClient

@Suite("vantage server init")
struct ServerInitCommandTests {
    @Test(
        "init prints an admin token that works against the server started afterwards, writes the listen flags to the settings file, and refuses to run twice"
    )
    func initThenServe() async throws {
        let folder = FileManager.default.temporaryDirectory.appending(path: "vantage-init-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let data = folder.appending(path: "server-data")
        // The settings file as the package installs it.
        let settings = folder.appending(path: "server.env")
        try FileManager.default.copyItem(
            at: SourceTree.root.appending(path: "packaging/server.env"), to: settings)
        let apiPort = try closedPort()
        let devicePort = try closedPort()
        let binary = try ServerProcess.binary().path
        let initialise = [
            binary, "server", "init", "--data", data.path, "--config", settings.path, "--no-start", "--listen",
            "127.0.0.1:\(apiPort)", "--device-listen", "127.0.0.1:\(devicePort)", "--device-hostname", "edge.example",
        ]

        let first = try await TestProcess.runSeparately(initialise)
        try #require(first.status == 0, "\(first.stdout)\(first.stderr)")
        let token = try #require(first.stdout.firstMatch(of: /\n  (vt_[A-Za-z0-9_-]+)\n/).map { String($0.1) })
        #expect(first.stdout.contains("sha256:"), "the CA's fingerprint is printed")
        #expect(FileManager.default.fileExists(atPath: data.appending(path: "vantage.sqlite").path))
        let written = try String(contentsOf: settings, encoding: .utf8)
        let args = try #require(EnvironmentValue.read("VANTAGE_SERVER_ARGS", in: written))
        #expect(
            args
                == "--listen 127.0.0.1:\(apiPort) --device-listen 127.0.0.1:\(devicePort) --device-hostname edge.example"
        )
        #expect(written.contains("# Settings of vantage-server.service"), "the packaged comments stay")
        #expect(!written.contains(token))

        // Twice: refused, with what to do for another token, and no new token.
        let second = try await TestProcess.runSeparately(initialise)
        #expect(second.status != 0)
        #expect(
            second.stderr.contains("initialised already") && second.stderr.contains("init-admin"), "\(second.stderr)")
        #expect(!second.stdout.contains("vt_"))
        #expect(try String(contentsOf: settings, encoding: .utf8) == written, "the settings file is untouched")

        // The server as the unit starts it: serve, --data and the settings' flags.
        let server = try ServerProcess(
            ServerProcess.binary(),
            ["server", "serve", "--data", data.path] + args.split(separator: " ").map(String.init), name: "server")
        defer { server.stop() }
        let base = try await server.waitUntilListening()
        #expect(base.port == apiPort)
        _ = try await server.deviceEndpoint()
        #expect(server.adminToken == nil && !server.output.contains("vt_"), "no token printed:\n\(server.output)")
        let devices = try await ServerClient(baseURL: base, token: token).listDevices()
        #expect(devices.isEmpty)
        await #expect(throws: (any Error).self, "a wrong token is refused") {
            _ = try await ServerClient(baseURL: base, token: token + "x").listDevices()
        }
    }

    @Test(
        "init with PostgreSQL: the URL, given in the environment, goes to the settings file and nowhere else; the server started with that file answers the token",
        .enabled(if: PostgresTestDatabase.baseURL != nil, Comment(rawValue: PostgresTestDatabase.skipReason)))
    func initWithPostgres() async throws {
        try await PostgresTestDatabase.withFresh { url in
            let folder = FileManager.default.temporaryDirectory.appending(path: "vantage-init-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let data = folder.appending(path: "server-data")
            let settings = folder.appending(path: "server.env")
            try FileManager.default.copyItem(
                at: SourceTree.root.appending(path: "packaging/server.env"), to: settings)
            let apiPort = try closedPort()
            let binary = try ServerProcess.binary().path
            let password = try #require(URLComponents(string: url)?.password)

            let first = try await TestProcess.runSeparately(
                [
                    binary, "server", "init", "--data", data.path, "--config", settings.path, "--no-start", "--listen",
                    "127.0.0.1:\(apiPort)", "--device-listen", "off",
                ], environment: ["VANTAGE_DATABASE_URL": url])
            try #require(first.status == 0, "\(first.stdout)\(first.stderr)")
            // The test role's password is "vantage", a word the output has anyway: look for it as the URL holds it.
            #expect(!(first.stdout + first.stderr).contains(":\(password)@"), "the password is never printed")
            let token = try #require(first.stdout.firstMatch(of: /\n  (vt_[A-Za-z0-9_-]+)\n/).map { String($0.1) })
            let written = try String(contentsOf: settings, encoding: .utf8)
            #expect(EnvironmentValue.read("VANTAGE_DATABASE_URL", in: written) == url)
            let args = try #require(EnvironmentValue.read("VANTAGE_SERVER_ARGS", in: written))
            #expect(!args.contains(":\(password)@") && !args.contains("postgres"), "no database on the command line")
            let mode = try FileManager.default.attributesOfItem(atPath: settings.path)[.posixPermissions] as? Int
            #expect(mode.map { $0 & 0o007 } == 0, "a file with a password is not readable by others")
            #expect(!FileManager.default.fileExists(atPath: data.appending(path: "vantage.sqlite").path))

            // The server as the unit starts it: the settings file as its environment.
            let server = try ServerProcess(
                ServerProcess.binary(),
                ["server", "serve", "--data", data.path] + args.split(separator: " ").map(String.init),
                name: "server", environment: ["VANTAGE_DATABASE_URL": url])
            defer { server.stop() }
            let base = try await server.waitUntilListening()
            #expect(server.output.contains("PostgreSQL") && server.adminToken == nil, "\(server.output)")
            #expect(try await ServerClient(baseURL: base, token: token).listDevices().isEmpty)
        }
    }
}
