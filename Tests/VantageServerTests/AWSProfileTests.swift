import Foundation
import Testing
import VantageAPI
import VantageClient

/// AWS profiles read as the AWS CLI and SDKs read them (`vantage run --aws-profile`, `vantage instances create
/// --aws-profile`): the shared credentials and config files, found through the environment.
@Suite("AWS profiles")
struct AWSProfileTests {
    /// A folder with `credentials` and `config` files, and the environment that points at them.
    struct Files {
        let folder: URL
        var environment: [String: String] {
            [
                "AWS_SHARED_CREDENTIALS_FILE": folder.appending(path: "credentials").path,
                "AWS_CONFIG_FILE": folder.appending(path: "config").path, "HOME": folder.appending(path: "home").path,
            ]
        }
        var profiles: AWSProfiles { AWSProfiles(environment: environment) }

        init(credentials: String? = nil, config: String? = nil) throws {
            folder = FileManager.default.temporaryDirectory.appending(path: "vantage-aws-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            if let credentials {
                try credentials.write(to: folder.appending(path: "credentials"), atomically: true, encoding: .utf8)
            }
            if let config { try config.write(to: folder.appending(path: "config"), atomically: true, encoding: .utf8) }
        }

        func remove() { try? FileManager.default.removeItem(at: folder) }
    }

    static let credentials = """
        # keys for the lobby apps
        [default]
        aws_access_key_id = AKIADEFAULT000000000
        aws_secret_access_key = default-secret

        [lobby]
        aws_access_key_id=AKIALOBBY00000000001
        aws_secret_access_key =  lobby/secret+key
        ; a comment
        [temporary]
        aws_access_key_id = ASIATEMPORARY0000002
        aws_secret_access_key = temporary-secret
        aws_session_token = FwoGZXIvYXdzE/token==
        """

    static let config = """
        [default]
        region = eu-west-1

        [profile lobby]
        region = us-east-2
        output = json
        s3 =
            max_concurrent_requests = 20

        [profile config-only]
        aws_access_key_id = AKIACONFIGONLY000003
        aws_secret_access_key = config-secret
        region = ap-southeast-2

        [profile assumed]
        role_arn = arn:aws:iam::123456789012:role/lobby
        source_profile = default

        [sso-session corp]
        sso_region = us-east-1
        """

    @Test("a profile's keys come from the credentials file and its region from [profile NAME] in the config file")
    func credentialsAndConfig() throws {
        let files = try Files(credentials: Self.credentials, config: Self.config)
        defer { files.remove() }
        let lobby = try files.profiles.credentials(profile: "lobby")
        #expect(
            lobby
                == AWSCredentials(
                    accessKeyId: "AKIALOBBY00000000001", secretAccessKey: "lobby/secret+key", region: "us-east-2"))
        #expect(
            lobby.environment == [
                "AWS_ACCESS_KEY_ID": "AKIALOBBY00000000001", "AWS_SECRET_ACCESS_KEY": "lobby/secret+key",
                "AWS_REGION": "us-east-2", "AWS_DEFAULT_REGION": "us-east-2",
            ])
        // The default profile is [default] in both files.
        let fallback = try files.profiles.credentials(profile: "default")
        #expect(fallback.accessKeyId == "AKIADEFAULT000000000" && fallback.region == "eu-west-1")
        // Keys may be in the config file alone.
        let configOnly = try files.profiles.credentials(profile: "config-only")
        #expect(
            configOnly
                == AWSCredentials(
                    accessKeyId: "AKIACONFIGONLY000003", secretAccessKey: "config-secret", region: "ap-southeast-2"))
    }

    @Test("temporary credentials carry their session token; no region means no AWS_REGION")
    func sessionToken() throws {
        let files = try Files(credentials: Self.credentials, config: Self.config)
        defer { files.remove() }
        let temporary = try files.profiles.credentials(profile: "temporary")
        #expect(temporary.sessionToken == "FwoGZXIvYXdzE/token==")
        #expect(temporary.region == nil)
        #expect(
            temporary.environment == [
                "AWS_ACCESS_KEY_ID": "ASIATEMPORARY0000002", "AWS_SECRET_ACCESS_KEY": "temporary-secret",
                "AWS_SESSION_TOKEN": "FwoGZXIvYXdzE/token==",
            ])
        #expect(
            temporary.summary == AWSCredentialsSummary(accessKeyId: "ASIA…0002", region: nil, hasSessionToken: true))
    }

    @Test("a missing profile is an error naming both files looked in and the profiles they have")
    func missingProfile() throws {
        let files = try Files(credentials: Self.credentials)
        defer { files.remove() }
        let error = try #require(throws: AWSProfileError.self) { try files.profiles.credentials(profile: "dock") }
        #expect(error.code == .missingProfile)
        #expect(error.description.contains("no AWS profile \"dock\""), "\(error)")
        #expect(error.description.contains(files.folder.appending(path: "credentials").path), "\(error)")
        #expect(error.description.contains(files.folder.appending(path: "config").path + " (no such file)"), "\(error)")
        #expect(error.description.contains("profiles there: default, lobby, temporary"), "\(error)")
        #expect(!error.description.contains("secret"), "\(error)")
    }

    @Test("without AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE the files are ~/.aws/credentials and ~/.aws/config")
    func defaultLocations() throws {
        let files = try Files()
        defer { files.remove() }
        let home = files.folder.appending(path: "home")
        try FileManager.default.createDirectory(at: home.appending(path: ".aws"), withIntermediateDirectories: true)
        try Self.credentials.write(to: home.appending(path: ".aws/credentials"), atomically: true, encoding: .utf8)
        try Self.config.write(to: home.appending(path: ".aws/config"), atomically: true, encoding: .utf8)
        let profiles = AWSProfiles(environment: ["HOME": home.path])
        #expect(profiles.credentialsFile.path == home.appending(path: ".aws/credentials").path)
        #expect(profiles.configFile.path == home.appending(path: ".aws/config").path)
        #expect(try profiles.credentials(profile: "lobby").region == "us-east-2")
        // `~` in the variables is the home folder, as the SDKs take it.
        let tilde = AWSProfiles(environment: ["HOME": home.path, "AWS_SHARED_CREDENTIALS_FILE": "~/.aws/credentials"])
        #expect(tilde.credentialsFile.path == home.appending(path: ".aws/credentials").path)
    }

    @Test("a profile without keys is refused: incomplete, or one that delegates to a role Vantage does not assume")
    func incompleteProfiles() throws {
        let files = try Files(
            credentials: "[half]\naws_access_key_id = AKIAHALF000000000000\n", config: Self.config)
        defer { files.remove() }
        let half = try #require(throws: AWSProfileError.self) { try files.profiles.credentials(profile: "half") }
        #expect(half.code == .incompleteProfile && half.description.contains("aws_secret_access_key"), "\(half)")
        let assumed = try #require(throws: AWSProfileError.self) { try files.profiles.credentials(profile: "assumed") }
        #expect(assumed.code == .unsupportedProfile, "\(assumed)")
        #expect(assumed.description.contains("role_arn") && assumed.description.contains("--aws-env"), "\(assumed)")
    }

    @Test("vantage run's application environment: a profile, the runtime's own AWS_* (--aws-env), or nothing")
    func applicationEnvironment() throws {
        let files = try Files(credentials: Self.credentials, config: Self.config)
        defer { files.remove() }
        var environment = files.environment
        environment["AWS_ACCESS_KEY_ID"] = "AKIARUNTIME000000000"
        environment["AWS_PROFILE"] = "lobby"
        environment["PATH"] = "/usr/bin"
        let profiles = AWSProfiles(environment: environment)
        #expect(try profiles.applicationEnvironment(profile: nil, passEnvironment: false) == [:])
        #expect(
            try profiles.applicationEnvironment(profile: "temporary", passEnvironment: false)["AWS_ACCESS_KEY_ID"]
                == "ASIATEMPORARY0000002")
        let passed = try profiles.applicationEnvironment(profile: nil, passEnvironment: true)
        #expect(passed["AWS_ACCESS_KEY_ID"] == "AKIARUNTIME000000000" && passed["AWS_PROFILE"] == "lobby")
        #expect(passed["PATH"] == nil && passed["HOME"] == nil, "only AWS_* passes: \(passed.keys.sorted())")
        #expect(throws: AWSProfileError.self) {
            try profiles.applicationEnvironment(profile: "lobby", passEnvironment: true)
        }
    }

    @Test("credentials never print their secret: description, interpolation of what holds them, dump")
    func secretsDoNotPrint() {
        let credentials = AWSCredentials(
            accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG", sessionToken: "tok-SECRET",
            region: "us-west-2")
        let holder = DesiredInstance(
            id: "ins_x", name: "x", packageId: "pkg_x", packageName: "p", packageVersion: "1.0",
            archiveDigest: "sha256:0", desiredState: .running, cameras: [:], parameters: [:],
            awsCredentials: credentials)
        var dumped = ""
        dump(holder, to: &dumped)
        for text in [
            "\(credentials)", String(reflecting: credentials), "\(holder)", String(reflecting: holder), dumped,
        ] {
            #expect(!text.contains("wJalrXUtnFEMI") && !text.contains("tok-SECRET"), "\(text)")
        }
        #expect("\(credentials)" == "AWS credentials AKIA…MPLE (us-west-2)")
    }
}
