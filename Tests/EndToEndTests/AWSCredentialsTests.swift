import Foundation
import Testing

/// AWS credentials for a Panorama application run by `vantage run` (issue 13): Panorama gave each application its
/// role's credentials, and apps call boto3. `--aws-profile NAME` gives the app that profile's keys as the standard
/// `AWS_*` variables, `--aws-env` passes the runtime's own; without either the app sees no `AWS_*` at all, whatever
/// the runtime's environment holds. The secret never appears in what `vantage run` prints.
@Suite(
    "AWS credentials for applications", .serialized,
    .enabled(if: Repo.isSetUp && Repo.hasPythonPackages, "needs scripts/setup and a build (make test does both)"))
struct AWSCredentialsTests {
    static let profileSecret = "wJalrXUtnFEMI/K7MDENG+profileSECRET"
    static let runtimeSecret = "runtimeOwnSECRET/do-not-pass"

    /// A code node that publishes what AWS it sees (the secret only as a SHA-256), and, when boto3 is importable,
    /// the class of the error S3's ListBuckets gives (no network here: a connection error with keys,
    /// NoCredentialsError without), then reads to the end of the video.
    static let app = """
        import hashlib, os, panoramasdk
        node = panoramasdk.node()
        node.inputs.video_in.get(timeout=30)
        secret = os.environ.get("AWS_SECRET_ACCESS_KEY")
        seen = {"accessKeyId": os.environ.get("AWS_ACCESS_KEY_ID"), "hasSecret": secret is not None,
                "secretSHA256": hashlib.sha256(secret.encode()).hexdigest() if secret else None,
                "sessionToken": os.environ.get("AWS_SESSION_TOKEN"), "region": os.environ.get("AWS_REGION"),
                "defaultRegion": os.environ.get("AWS_DEFAULT_REGION"),
                "variables": sorted(k for k in os.environ if k.startswith("AWS_")), "s3": None}
        try:
            import boto3, botocore.config
        except ImportError:
            pass
        else:
            config = botocore.config.Config(connect_timeout=2, read_timeout=2, retries={"max_attempts": 1})
            try:
                boto3.client("s3", region_name="us-east-1", config=config).list_buckets()
                seen["s3"] = "ok"
            except Exception as error:
                seen["s3"] = type(error).__name__
        node.publish(seen)
        while True:  # to the end of the video: get() raises SystemExit(0) there
            node.inputs.video_in.get()
        """

    /// A credentials file and a config file, with the `lobby` profile's temporary keys and region.
    struct Profiles {
        let folder: URL
        var credentials: URL { folder.appendingPathComponent("credentials") }
        var config: URL { folder.appendingPathComponent("config") }

        init() throws {
            folder = FileManager.default.temporaryDirectory.appendingPathComponent("vantage-aws-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try """
            [default]
            aws_access_key_id = AKIADEFAULTNOTTHISONE
            aws_secret_access_key = default-not-this-one

            [lobby]
            aws_access_key_id = ASIALOBBYPROFILE0001
            aws_secret_access_key = \(AWSCredentialsTests.profileSecret)
            aws_session_token = lobby-session-token
            """.write(to: credentials, atomically: true, encoding: .utf8)
            try "[profile lobby]\nregion = eu-north-1\n".write(to: config, atomically: true, encoding: .utf8)
        }
    }

    @Test("--aws-profile gives the app that profile's keys, session token and region as AWS_*, and prints no secret")
    func profileReachesTheApp() async throws {
        let profiles = try Profiles()
        defer { try? FileManager.default.removeItem(at: profiles.folder) }
        let run = try await Self.run(
            ["--aws-profile", "lobby"],
            environment: [
                "AWS_SHARED_CREDENTIALS_FILE": profiles.credentials.path, "AWS_CONFIG_FILE": profiles.config.path,
                // The runtime's own keys are not what the app gets.
                "AWS_ACCESS_KEY_ID": "AKIARUNTIMEOWN000001", "AWS_SECRET_ACCESS_KEY": Self.runtimeSecret,
            ])
        #expect(run.status == 0, "\(run)")
        let seen = try run.seen()
        #expect(seen["accessKeyId"] as? String == "ASIALOBBYPROFILE0001", "\(seen)")
        #expect(seen["hasSecret"] as? Bool == true)
        #expect(seen["secretSHA256"] as? String == Self.sha256(Self.profileSecret), "the app got another secret")
        #expect(seen["sessionToken"] as? String == "lobby-session-token")
        #expect(seen["region"] as? String == "eu-north-1" && seen["defaultRegion"] as? String == "eu-north-1")
        // Exactly the credentials: the operator's file locations do not reach the app.
        #expect(
            seen["variables"] as? [String] == [
                "AWS_ACCESS_KEY_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
            ], "\(seen)")
        if let s3 = seen["s3"] as? String {
            // boto3 signed with the keys; without a network the call fails to connect (or AWS refuses the fake key).
            #expect(s3 != "NoCredentialsError", "boto3 found no credentials: \(seen)")
        }
        #expect(!run.output.contains(Self.profileSecret), "vantage run printed the profile's secret")
        #expect(!run.output.contains(Self.runtimeSecret), "vantage run printed the runtime's secret")
        #expect(!run.output.contains("lobby-session-token"), "vantage run printed the session token")
    }

    @Test("without --aws-profile or --aws-env the app sees no AWS_* at all, though the runtime's environment has them")
    func nothingWithoutAsking() async throws {
        let profiles = try Profiles()
        defer { try? FileManager.default.removeItem(at: profiles.folder) }
        let run = try await Self.run(
            [],
            environment: [
                "AWS_ACCESS_KEY_ID": "AKIARUNTIMEOWN000001", "AWS_SECRET_ACCESS_KEY": Self.runtimeSecret,
                "AWS_SESSION_TOKEN": "runtime-token", "AWS_PROFILE": "lobby", "AWS_REGION": "us-west-2",
                "AWS_SHARED_CREDENTIALS_FILE": profiles.credentials.path, "AWS_CONFIG_FILE": profiles.config.path,
            ])
        #expect(run.status == 0, "\(run)")
        let seen = try run.seen()
        #expect(seen["variables"] as? [String] == [], "the app inherited AWS variables: \(seen)")
        #expect(seen["accessKeyId"] is NSNull && seen["hasSecret"] as? Bool == false, "\(seen)")
        if let s3 = seen["s3"] as? String {
            #expect(s3 == "NoCredentialsError", "boto3 found credentials somewhere: \(seen)")
        }
        #expect(!run.output.contains(Self.runtimeSecret))
    }

    @Test("without --aws-profile or --aws-env, boto3 in the app does not find the operator's ~/.aws/credentials")
    func operatorsHomeFilesStayOut() async throws {
        let home = FileManager.default.temporaryDirectory.appendingPathComponent(
            "vantage-aws-home-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: home) }
        try FileManager.default.createDirectory(
            at: home.appendingPathComponent(".aws"), withIntermediateDirectories: true)
        try "[default]\naws_access_key_id = AKIAOPERATORHOME0001\naws_secret_access_key = operator-secret\n".write(
            to: home.appendingPathComponent(".aws/credentials"), atomically: true, encoding: .utf8)
        let run = try await Self.run([], environment: ["HOME": home.path])
        #expect(run.status == 0, "\(run)")
        let seen = try run.seen()
        #expect(seen["variables"] as? [String] == [], "\(seen)")
        guard let s3 = seen["s3"] as? String else {
            print("boto3 is not importable by the app: what it would find in ~/.aws is not checked")
            return
        }
        // Code nodes get a HOME of their own (state/<node>/home), as in Panorama's container: boto3 finds no
        // ~/.aws/credentials of the operator's there.
        #expect(s3 == "NoCredentialsError", "boto3 found the operator's ~/.aws/credentials: \(seen)")
    }

    @Test("--aws-env passes the runtime's own AWS_* variables to the app")
    func runtimeEnvironmentOnRequest() async throws {
        let run = try await Self.run(
            ["--aws-env"],
            environment: [
                "AWS_ACCESS_KEY_ID": "AKIARUNTIMEOWN000001", "AWS_SECRET_ACCESS_KEY": Self.runtimeSecret,
                "AWS_REGION": "us-west-2",
            ])
        #expect(run.status == 0, "\(run)")
        let seen = try run.seen()
        #expect(seen["accessKeyId"] as? String == "AKIARUNTIMEOWN000001", "\(seen)")
        #expect(seen["secretSHA256"] as? String == Self.sha256(Self.runtimeSecret))
        #expect(seen["region"] as? String == "us-west-2")
        #expect(!run.output.contains(Self.runtimeSecret))
    }

    @Test("a profile that is not there stops vantage run with an error naming the files it looked in")
    func missingProfile() async throws {
        let profiles = try Profiles()
        defer { try? FileManager.default.removeItem(at: profiles.folder) }
        let run = try await Self.run(
            ["--aws-profile", "dock"],
            environment: [
                "AWS_SHARED_CREDENTIALS_FILE": profiles.credentials.path, "AWS_CONFIG_FILE": profiles.config.path,
            ])
        #expect(run.status != 0)
        #expect(run.stderr.contains("no AWS profile \"dock\""), "\(run)")
        #expect(run.stderr.contains(profiles.credentials.path) && run.stderr.contains(profiles.config.path), "\(run)")
        #expect(!run.output.contains(Self.profileSecret))
    }

    // MARK: - Support

    /// What one `vantage run` of the app printed and published.
    struct Result: CustomStringConvertible {
        let status: Int32
        let stdout: String
        let stderr: String
        let events: [[String: Any]]
        var output: String { stdout + stderr }

        /// The app's one event's payload.
        func seen() throws -> [String: Any] {
            try #require(
                events.compactMap { $0["payload"] as? [String: Any] }.first { $0["variables"] != nil },
                "the app published nothing; stderr:\n\(stderr.suffix(3000))")
        }

        var description: String { "exit \(status); stderr:\n\(stderr.suffix(3000))" }
    }

    /// Runs `vantage run` on a copy of the Python people counter with the app above, with `environment` added to
    /// the test's own (any AWS_* of the test's environment taken out first, so only what a test gives is there).
    static func run(_ arguments: [String], environment: [String: String]) async throws -> Result {
        let app = try Repo.copyOfPanoramaPeopleCounter()
        defer { try? FileManager.default.removeItem(at: app) }
        try PanoramaPythonTests.replaceApp(in: app, with: Self.app)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "vantage-aws-run-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let (stdoutFile, stderrFile, eventsFile) = (
            folder.appendingPathComponent("stdout"), folder.appendingPathComponent("stderr"),
            folder.appendingPathComponent("events.jsonl")
        )
        for file in [stdoutFile, stderrFile] { _ = FileManager.default.createFile(atPath: file.path, contents: nil) }
        let process = Process()
        process.executableURL = Repo.vantageBinary
        process.arguments =
            [
                "run", app.path, "--camera", "camera_node=\(Repo.sampleVideo.path)", "--events", eventsFile.path,
                "--state-dir", folder.appendingPathComponent("state").path, "--python-cache", Repo.pythonCache.path,
                "--no-http", "--status-interval", "0",
            ] + arguments
        var merged = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("AWS_") }
        merged.merge(environment) { $1 }
        process.environment = merged
        process.standardOutput = try FileHandle(forWritingTo: stdoutFile)
        process.standardError = try FileHandle(forWritingTo: stderrFile)
        try process.run()
        let deadline = Date().addingTimeInterval(300)
        while process.isRunning && Date() < deadline { try await Task.sleep(for: .milliseconds(100)) }
        if process.isRunning {
            process.interrupt()
            try await Task.sleep(for: .seconds(5))
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        let read = { (file: URL) in String(decoding: (try? Data(contentsOf: file)) ?? Data(), as: UTF8.self) }
        let events = read(eventsFile).split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        return Result(
            status: process.isRunning ? -1 : process.terminationStatus, stdout: read(stdoutFile),
            stderr: read(stderrFile), events: events)
    }

    /// The hexadecimal SHA-256 of `text`, as the app's hashlib writes it (from sha256sum, not a second implementation).
    static func sha256(_ text: String) -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["sha256sum"]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        guard (try? process.run()) != nil else { return "sha256sum is missing" }
        input.fileHandleForWriting.write(Data(text.utf8))
        try? input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).split(separator: " ").first.map(String.init) ?? ""
    }
}
