import Foundation
import VantageAPI

/// AWS credentials from the places the AWS CLI and SDKs keep them: a named profile in the shared credentials and
/// config files, or the `AWS_*` variables of an environment. `vantage run --aws-profile NAME` / `--aws-env` and
/// `vantage instances create|update --aws-profile NAME` read them here.
///
/// The files are found as the SDKs find them: `AWS_SHARED_CREDENTIALS_FILE` (default `~/.aws/credentials`, sections
/// `[NAME]`) and `AWS_CONFIG_FILE` (default `~/.aws/config`, sections `[profile NAME]`, and `[default]`). A key in
/// the credentials file wins over the same key in the config file. Keys: `aws_access_key_id`,
/// `aws_secret_access_key`, `aws_session_token` and `region`.
public struct AWSProfiles: Sendable {
    /// The environment the file locations are read from (`AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`, `HOME`).
    public var environment: [String: String]

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
    }

    /// The shared credentials file: `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`.
    public var credentialsFile: URL { file("AWS_SHARED_CREDENTIALS_FILE", default: ".aws/credentials") }

    /// The shared config file: `AWS_CONFIG_FILE`, else `~/.aws/config`.
    public var configFile: URL { file("AWS_CONFIG_FILE", default: ".aws/config") }

    private func file(_ variable: String, default relative: String) -> URL {
        if let path = environment[variable], !path.isEmpty {
            if path == "~" || path.hasPrefix("~/") {
                return home.appending(path: String(path.dropFirst(path == "~" ? 1 : 2)))
            }
            return URL(fileURLWithPath: path)
        }
        return home.appending(path: relative)
    }

    private var home: URL {
        if let home = environment["HOME"], !home.isEmpty { return URL(fileURLWithPath: home, isDirectory: true) }
        return FileManager.default.homeDirectoryForCurrentUser
    }

    /// The credentials of profile `name`. Throws ``AWSProfileError`` when neither file has the profile (naming both
    /// files), when it lacks a key id or secret, or when a file exists but cannot be read. The errors never contain
    /// a secret.
    public func credentials(profile name: String) throws -> AWSCredentials {
        let credentialsFile = self.credentialsFile
        let configFile = self.configFile
        let fromCredentials = try Self.sections(of: credentialsFile)
        let fromConfig = try Self.sections(of: configFile)
        // The config file names a profile `[profile NAME]`; the default profile is `[default]` there too.
        let configSection =
            fromConfig["profile \(name)"] ?? (name == "default" ? fromConfig["default"] : nil)
        guard fromCredentials[name] != nil || configSection != nil else {
            let inConfig = fromConfig.keys.compactMap { section -> String? in
                section == "default" ? section : section.hasPrefix("profile ") ? String(section.dropFirst(8)) : nil
            }
            let known = Set(fromCredentials.keys).union(inConfig).sorted()
            throw AWSProfileError(
                .missingProfile,
                "no AWS profile \"\(name)\" in \(Self.describe(credentialsFile)) (as [\(name)]) or "
                    + "\(Self.describe(configFile)) (as [profile \(name)])"
                    + (known.isEmpty ? "" : "; profiles there: \(known.joined(separator: ", "))")
                    + "; set AWS_SHARED_CREDENTIALS_FILE or AWS_CONFIG_FILE to read other files")
        }
        var keys = configSection ?? [:]
        keys.merge(fromCredentials[name] ?? [:]) { _, fromCredentialsFile in fromCredentialsFile }
        let described = "profile \"\(name)\" (\(credentialsFile.path), \(configFile.path))"
        guard let accessKeyId = keys["aws_access_key_id"], !accessKeyId.isEmpty else {
            let delegated = [
                "role_arn", "sso_session", "sso_start_url", "credential_process", "web_identity_token_file",
            ]
            .filter { keys[$0] != nil }
            if !delegated.isEmpty {
                throw AWSProfileError(
                    .unsupportedProfile,
                    "AWS \(described) gets its credentials through \(delegated.joined(separator: ", ")), which Vantage does "
                        + "not run: give an application keys, or export temporary ones (aws configure "
                        + "export-credentials --profile \(name) --format env) and pass them with --aws-env")
            }
            throw AWSProfileError(.incompleteProfile, "AWS \(described) has no aws_access_key_id")
        }
        guard let secretAccessKey = keys["aws_secret_access_key"], !secretAccessKey.isEmpty else {
            throw AWSProfileError(.incompleteProfile, "AWS \(described) has no aws_secret_access_key")
        }
        let sessionToken = keys["aws_session_token"] ?? keys["aws_security_token"]
        let region = keys["region"]
        return AWSCredentials(
            accessKeyId: accessKeyId, secretAccessKey: secretAccessKey,
            sessionToken: sessionToken.flatMap { $0.isEmpty ? nil : $0 },
            region: region.flatMap { $0.isEmpty ? nil : $0 })
    }

    /// The `AWS_*` variables of ``environment``, as `--aws-env` passes them to an application.
    ///
    /// Code nodes have a HOME of their own, so a profile named by `AWS_PROFILE` is passed with the absolute paths of
    /// the files it lives in.
    public var passedThrough: [String: String] {
        var passed = environment.filter { $0.key.hasPrefix("AWS_") }
        if passed["AWS_PROFILE"] != nil || passed["AWS_DEFAULT_PROFILE"] != nil {
            passed["AWS_SHARED_CREDENTIALS_FILE"] = credentialsFile.path
            passed["AWS_CONFIG_FILE"] = configFile.path
        }
        return passed
    }

    /// What `vantage run` adds to its code nodes' environment: profile `profile`'s credentials as `AWS_*`, or with
    /// `passEnvironment` the runtime's own `AWS_*` variables, or nothing (the runtime never lets code nodes inherit
    /// `AWS_*` by itself). Both at once is refused.
    public func applicationEnvironment(profile: String?, passEnvironment: Bool) throws -> [String: String] {
        switch (profile, passEnvironment) {
        case (let name?, false): return try credentials(profile: name).environment
        case (nil, true): return passedThrough
        case (nil, false): return [:]
        case (_?, true):
            throw AWSProfileError(
                .conflictingOptions, "give either --aws-profile NAME or --aws-env, not both")
        }
    }

    /// `path`, saying when there is no such file.
    private static func describe(_ file: URL) -> String {
        FileManager.default.fileExists(atPath: file.path) ? file.path : "\(file.path) (no such file)"
    }

    /// The sections of an INI file as the AWS SDKs read it: `[name]` headers, `key = value` lines (whitespace
    /// around both trimmed, keys lowercased), `#` and `;` comment lines, indented lines (a nested `s3 =` block)
    /// skipped. A file that does not exist has none.
    static func sections(of file: URL) throws -> [String: [String: String]] {
        guard FileManager.default.fileExists(atPath: file.path) else { return [:] }
        let text: String
        do {
            text = try String(contentsOf: file, encoding: .utf8)
        } catch {
            throw AWSProfileError(
                .unreadableFile, "cannot read \(file.path): check that it is a text file this user can read")
        }
        return parse(text)
    }

    /// The sections of INI text (see ``sections(of:)``).
    static func parse(_ text: String) -> [String: [String: String]] {
        var sections: [String: [String: String]] = [:]
        var current: String?
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if rawLine.first == " " || rawLine.first == "\t" { continue }  // a nested block's line
            if line.hasPrefix("[") {
                guard let end = line.firstIndex(of: "]") else {
                    current = nil
                    continue
                }
                let name = line[line.index(after: line.startIndex)..<end]
                    .split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
                current = name
                if sections[name] == nil { sections[name] = [:] }
                continue
            }
            guard let current, let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            sections[current, default: [:]][key] = value
        }
        return sections
    }
}

/// Why AWS credentials could not be read from a profile; the message says what to do and never carries a secret.
public struct AWSProfileError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What kind of failure: extensible, compared by identity.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// Neither file has the profile.
        public static let missingProfile = Code("missingProfile")
        /// The profile lacks its access key id or secret access key.
        public static let incompleteProfile = Code("incompleteProfile")
        /// The profile delegates to a role, SSO or a credential process, which Vantage does not run.
        public static let unsupportedProfile = Code("unsupportedProfile")
        /// A file exists but cannot be read.
        public static let unreadableFile = Code("unreadableFile")
        /// Two ways of giving credentials at once.
        public static let conflictingOptions = Code("conflictingOptions")
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
