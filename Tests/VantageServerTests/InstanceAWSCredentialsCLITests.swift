import Foundation
import Testing

/// `vantage instances create|update --aws-profile NAME` (and `--aws-access-key-id` with the secret on standard input,
/// `--clear-aws-credentials`) as an operator runs them: the built binary against a real `vantage server` process
/// logging at trace level. The secret reaches the server and never comes back: not in the CLI's output, not in the
/// server's log.
@Suite("CLI: instance AWS credentials", .timeLimit(.minutes(5)))
struct InstanceAWSCredentialsCLITests {
    static let secret = "wJalrXUtnFEMI/K7MDENG+cliSECRET"
    static let typedSecret = "typedSECRET/on-stdin-0001"

    @Test("--aws-profile is read on the operator's machine and sent; show masks it; update replaces and clears it")
    func profileSentShownMaskedAndCleared() async throws {
        let folder = FileManager.default.temporaryDirectory.appending(path: "vantage-aws-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let (server, url, token) = try await ServerProcess.tracing(in: folder, name: "aws-cli")
        defer { server.stop() }
        let credentials = folder.appending(path: "credentials")
        try """
        [lobby]
        aws_access_key_id = AKIAIOSFODNN7EXAMPLE
        aws_secret_access_key = \(Self.secret)
        """.write(to: credentials, atomically: true, encoding: .utf8)
        let config = folder.appending(path: "config")
        try "[profile lobby]\nregion = eu-west-3\n".write(to: config, atomically: true, encoding: .utf8)

        var outputs: [String] = []
        func vantage(_ arguments: [String], stdin: String = "") async throws -> (status: Int32, stdout: String) {
            let result = try await TestProcess.runSeparately(
                [try ServerProcess.binary().path] + arguments + ["--server", url, "--token", token],
                environment: [
                    "VANTAGE_SERVER": nil, "VANTAGE_TOKEN": nil,
                    "VANTAGE_CONFIG": folder.appending(path: "cli.json").path,
                    "AWS_SHARED_CREDENTIALS_FILE": credentials.path, "AWS_CONFIG_FILE": config.path,
                    "AWS_ACCESS_KEY_ID": nil, "AWS_SECRET_ACCESS_KEY": nil, "AWS_SESSION_TOKEN": nil,
                    "AWS_PROFILE": nil,
                ], stdin: stdin)
            outputs.append(result.stdout + result.stderr)
            return (result.status, result.stdout + result.stderr)
        }
        func id(_ prefix: String, in text: String) throws -> String {
            try #require(text.range(of: "\(prefix)_[a-z0-9]+", options: .regularExpression).map { String(text[$0]) })
        }

        let push = try await vantage(
            ["packages", "push", SourceTree.peopleCounter.path, "--package", "people-counter", "--version", "1.0"])
        let packageID = try id("pkg", in: push.stdout)
        let deviceID = try id("dev", in: try await vantage(["devices", "create", "edge-1"]).stdout)
        let cameraID = try id(
            "cam", in: try await vantage(["cameras", "create", "dock", "--url", "rtsp://10.0.0.21/live"]).stdout)

        let missing = try await vantage(
            [
                "instances", "create", "--name", "uploader", "--package", packageID, "--version", "1.0", "--device",
                deviceID, "--camera", "camera_node=\(cameraID)", "--aws-profile", "dock",
            ])
        #expect(missing.status != 0, "\(missing)")
        #expect(missing.stdout.contains("no AWS profile \"dock\"") && missing.stdout.contains(credentials.path))

        let create = try await vantage(
            [
                "instances", "create", "--name", "uploader", "--package", packageID, "--version", "1.0", "--device",
                deviceID, "--camera", "camera_node=\(cameraID)", "--aws-profile", "lobby",
            ])
        #expect(create.status == 0, "\(create)")
        let instanceID = try id("ins", in: create.stdout)
        let shown = try await vantage(["instances", "show", instanceID])
        #expect(shown.stdout.contains("AWS credentials: AKIA…MPLE, region eu-west-3"), "\(shown)")
        let json = try await vantage(["instances", "show", instanceID, "--json"])
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let aws = try #require(object?["awsCredentials"] as? [String: Any], "\(json)")
        #expect(aws["accessKeyId"] as? String == "AKIA…MPLE" && aws["region"] as? String == "eu-west-3")

        // A key typed in: the secret from standard input, the region given.
        let typed = try await vantage(
            [
                "instances", "update", instanceID, "--aws-access-key-id", "AKIATYPEDKEY00000002", "--aws-region",
                "us-east-1",
            ],
            stdin: Self.typedSecret + "\n")
        #expect(typed.status == 0, "\(typed)")
        let afterTyped = try await vantage(["instances", "show", instanceID])
        #expect(afterTyped.stdout.contains("AWS credentials: AKIA…0002, region us-east-1"), "\(afterTyped)")
        let deployments = try await vantage(["instances", "deployments", instanceID, "--json"])
        #expect(
            (try JSONSerialization.jsonObject(with: Data(deployments.stdout.utf8)) as? [Any])?.count == 2,
            "new credentials are a new deployment: \(deployments)")

        let both = try await vantage(["instances", "update", instanceID, "--aws-profile", "lobby", "--aws-env"])
        #expect(both.status != 0 && both.stdout.contains("give one of"), "\(both)")
        let cleared = try await vantage(["instances", "update", instanceID, "--clear-aws-credentials"])
        #expect(cleared.status == 0, "\(cleared)")
        let afterClear = try await vantage(["instances", "show", instanceID, "--json"])
        let clearedObject = try JSONSerialization.jsonObject(with: Data(afterClear.stdout.utf8)) as? [String: Any]
        #expect(clearedObject?["awsCredentials"] == nil, "\(afterClear)")

        for output in outputs {
            #expect(!output.contains(Self.secret) && !output.contains(Self.typedSecret), "the CLI printed a secret")
        }
        // The server's log, at trace level: never a secret.
        #expect(server.output.contains("database schema migrated"), "not the server's log:\n\(server.output)")
        #expect(!server.output.contains(Self.secret) && !server.output.contains(Self.typedSecret))
    }
}
