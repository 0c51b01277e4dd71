import Foundation
import Testing

/// `vantage users list|create|set-role|set-password|delete` as an admin runs them: the built binary against a real
/// `vantage server` process logging at trace level. Passwords go on standard input and appear nowhere: not in the
/// CLI's output, not in the server's log.
@Suite("CLI: users", .timeLimit(.minutes(5)))
struct UsersCLITests {
    static let password = "first-secret-password"
    static let newPassword = "second-secret-password"

    @Test("an admin creates, lists, re-roles, re-passwords and deletes a user; the last admin stays")
    func manageUsers() async throws {
        let folder = FileManager.default.temporaryDirectory.appending(path: "vantage-users-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let (server, url, token) = try await ServerProcess.tracing(in: folder, name: "users-cli")
        defer { server.stop() }

        var outputs: [String] = []
        func vantage(_ arguments: [String], stdin: String = "") async throws -> (status: Int32, output: String) {
            let result = try await TestProcess.runSeparately(
                [try ServerProcess.binary().path] + arguments + ["--server", url, "--token", token],
                environment: [
                    "VANTAGE_SERVER": nil, "VANTAGE_TOKEN": nil,
                    "VANTAGE_CONFIG": folder.appending(path: "cli.json").path,
                ], stdin: stdin)
            outputs.append(result.stdout + result.stderr)
            return (result.status, result.stdout + result.stderr)
        }

        let created = try await vantage(["users", "create", "alice", "--role", "admin"], stdin: Self.password + "\n")
        #expect(created.status == 0 && created.output.contains("created user alice (admin)"), "\(created)")
        let taken = try await vantage(["users", "create", "alice"], stdin: Self.password + "\n")
        #expect(taken.status != 0 && taken.output.contains("exists already"), "\(taken)")
        let bob = try await vantage(["users", "create", "bob", "--role", "operator"], stdin: Self.password + "\n")
        #expect(bob.status == 0, "\(bob)")
        let list = try await vantage(["users", "list"])
        #expect(list.output.contains("alice") && list.output.contains("bob") && list.output.contains("operator"))

        let demote = try await vantage(["users", "set-role", "alice", "viewer"])
        #expect(demote.status != 0 && demote.output.contains("last admin"), "\(demote)")
        let promote = try await vantage(["users", "set-role", "bob", "admin"])
        #expect(promote.status == 0 && promote.output.contains("bob is now admin"), "\(promote)")
        let reset = try await vantage(["users", "set-password", "bob"], stdin: Self.newPassword + "\n")
        #expect(reset.status == 0 && reset.output.contains("new password"), "\(reset)")
        let short = try await vantage(["users", "set-password", "bob"], stdin: "short\n")
        #expect(short.status != 0 && short.output.contains("password"), "\(short)")

        let deleted = try await vantage(["users", "delete", "alice"])
        #expect(deleted.status == 0 && deleted.output.contains("deleted user alice"), "\(deleted)")
        let json = try await vantage(["users", "list", "--json"])
        let names = try (JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [[String: Any]])?
            .compactMap { $0["name"] as? String }
        #expect(names == ["bob"], "\(json)")

        for secret in [Self.password, Self.newPassword] {
            #expect(!outputs.contains { $0.contains(secret) }, "a password in the CLI's output")
            #expect(!server.output.contains(secret), "a password in the server's log")
        }
    }
}
