import Foundation

/// Which server the `vantage devices|cameras|…` commands talk to, and with which token.
///
/// Read from, in order: the command's `--server` / `--token`, the environment (`VANTAGE_SERVER`, `VANTAGE_TOKEN`),
/// then the file `vantage login` writes: `$VANTAGE_CONFIG`, else `$XDG_CONFIG_HOME/vantage/cli.json`, else
/// `~/.config/vantage/cli.json` (mode 0600: it holds a secret).
public struct ClientSettings: Codable, Sendable, Equatable {
    /// The server's root URL, e.g. `http://127.0.0.1:8090`.
    public var server: String
    /// The API token (`vt_…`). Secret: never printed.
    public var token: String

    public init(server: String, token: String) {
        self.server = server
        self.token = token
    }

    /// The settings file's location for this environment.
    public static func file(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let path = environment["VANTAGE_CONFIG"], !path.isEmpty { return URL(filePath: path) }
        let base: URL
        if let xdg = environment["XDG_CONFIG_HOME"], !xdg.isEmpty {
            base = URL(filePath: xdg, directoryHint: .isDirectory)
        } else {
            let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
            base = URL(filePath: home, directoryHint: .isDirectory).appending(path: ".config")
        }
        return base.appending(path: "vantage/cli.json")
    }

    /// The saved settings, or nil when there is no file.
    public static func load(from file: URL) throws -> ClientSettings? {
        guard FileManager.default.fileExists(atPath: file.path) else { return nil }
        do {
            return try JSONDecoder().decode(ClientSettings.self, from: Data(contentsOf: file))
        } catch {
            throw ClientError.local(
                "cannot read \(file.path) (\(error.localizedDescription)): run vantage login again, or delete it")
        }
    }

    /// Writes the settings to `file`, readable by this user only.
    public func save(to file: URL) throws {
        let folder = file.deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(
                at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            // Created empty with mode 0600 first, so the token is never in a file others can read.
            if FileManager.default.fileExists(atPath: file.path) { try FileManager.default.removeItem(at: file) }
            guard
                FileManager.default.createFile(atPath: file.path, contents: nil, attributes: [.posixPermissions: 0o600])
            else { throw CocoaError(.fileWriteNoPermission) }
            let handle = try FileHandle(forWritingTo: file)
            defer { try? handle.close() }
            try handle.write(contentsOf: try encoder.encode(self) + Data("\n".utf8))
        } catch {
            throw ClientError.local("cannot write \(file.path): \(error.localizedDescription)")
        }
    }

    /// Deletes the settings file; false when there was none.
    @discardableResult
    public static func remove(at file: URL) throws -> Bool {
        guard FileManager.default.fileExists(atPath: file.path) else { return false }
        do {
            try FileManager.default.removeItem(at: file)
        } catch {
            throw ClientError.local("cannot delete \(file.path): \(error.localizedDescription)")
        }
        return true
    }

    /// The server and token to use: flags win over the environment, which wins over the settings file.
    ///
    /// The file's token is only used for the file's server: a token is never sent to a server it was not given for.
    public static func resolve(
        server: String?, token: String?, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> (url: URL, token: String) {
        func given(_ value: String?) -> String? { value.flatMap { $0.isEmpty ? nil : $0 } }
        let saved = try load(from: file(environment: environment))
        guard let server = given(server) ?? given(environment["VANTAGE_SERVER"]) ?? saved?.server else {
            throw ClientError.local(
                "no server given: run vantage login --server URL --token TOKEN, or pass --server and --token")
        }
        let url = try parse(server: server)
        let savedToken = saved.flatMap { (try? parse(server: $0.server)) == url ? $0.token : nil }
        guard let token = given(token) ?? given(environment["VANTAGE_TOKEN"]) ?? savedToken else {
            throw ClientError.local(
                "no token given for \(server): run vantage login --server \(server) --token TOKEN, or pass --token")
        }
        return (url, token)
    }

    /// The server's root URL from `http://HOST:PORT` (a missing scheme means http; a trailing slash is dropped).
    public static func parse(server: String) throws -> URL {
        var text = server.trimmingCharacters(in: .whitespaces)
        if !text.contains("://") { text = "http://" + text }
        while text.hasSuffix("/") { text.removeLast() }
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
            url.host != nil
        else {
            throw ClientError.local("--server \(server) is not a URL; write e.g. http://127.0.0.1:8090")
        }
        guard url.user == nil, url.password == nil else {
            throw ClientError.local("--server must not carry credentials: pass the token with --token")
        }
        return url
    }
}
