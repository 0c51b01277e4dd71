import Foundation
import Testing

/// The API contract, checked by a tool we did not write (issue 14): Schemathesis generates requests from the
/// served /openapi.json — valid ones, which the server must accept, and invalid ones, which it must refuse — and
/// checks every answer against the document (status, content type, headers, schema), undeclared methods (405 with
/// Allow), missing credentials and resources used after deletion. Tests/APIContract/schemathesis.toml says what
/// the document cannot state.
@Suite("API contract (Schemathesis)")
struct APIContractTests {
    static let folder = SourceTree.root.appending(path: "Tests/APIContract")
    static let schemathesis = SourceTree.root.appending(path: ".deps/schemathesis")

    /// Guards: every request valid by the document is accepted, every invalid one refused, every answer conforms,
    /// and a known path with another method answers 405 with Allow. A bounded, seeded run (10 examples per
    /// operation) against a real `vantage server` with an admin token.
    @Test("Schemathesis --checks all finds nothing against a real vantage server")
    func schemathesisFindsNothing() async throws {
        guard FileManager.default.fileExists(atPath: Self.schemathesis.appending(path: "schemathesis").path) else {
            Issue.record("Schemathesis is not installed: run scripts/setup (it installs it into .deps/schemathesis)")
            return
        }
        let data = FileManager.default.temporaryDirectory.appending(path: "vantage-contract-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: data) }
        let server = try ServerProcess(
            try ServerProcess.binary(),
            ["server", "--data", data.path, "--listen", "127.0.0.1:0", "--device-listen", "off"], name: "contract")
        defer { server.stop() }
        let url = try await server.waitUntilListening()
        let token = try #require(server.adminToken, "no admin token printed:\n\(server.output)")
        // The hooks file is found relative to the working folder.
        let command =
            "cd '\(Self.folder.path)' && exec python3 -m schemathesis.cli --config-file schemathesis.toml run "
            + "'\(url.absoluteString)openapi.json' -H 'Authorization: Bearer \(token)' --checks all --seed 1 "
            + "--max-examples 10 --workers 1 --no-color"
        // Hypothesis keeps its files in a folder of the test's own, not in the source tree.
        let storage = data.appending(path: "hypothesis")
        let result = try await TestProcess.run(
            ["sh", "-c", command],
            environment: [
                "PYTHONPATH": Self.schemathesis.path, "SCHEMATHESIS_TELEMETRY": "false",
                "HYPOTHESIS_STORAGE_DIRECTORY": storage.path,
            ])
        let summary = result.output.split(separator: "\n").filter {
            $0.contains("generated") || $0.contains("Tested:") || $0.contains("Selected:")
        }
        print("API contract: \(summary.map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: "; "))")
        #expect(result.status == 0, "Schemathesis found problems:\n\(result.output.suffix(12_000))")
        // Every operation but deleteToken (left out in schemathesis.toml).
        let operations = try OpenAPIDocument.current().operations.count - 1
        #expect(
            result.output.contains("Tested: \(operations)"),
            "not all \(operations) operations were tested:\n\(result.output.suffix(3000))")
        #expect(server.isRunning, "the server exited:\n\(server.output.suffix(2000))")
    }
}
