// VantageClient: a typed client for `vantage server`'s REST API (`/api/v1`), used by the `vantage devices|cameras|…`
// commands. Every operator-facing operation of the API has one async method; failures are `ClientError`s whose
// messages say what to do. The token goes only into the Authorization header: never into a message or a log.
import Foundation
import VantageAPI
import VantageCore

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A connection to one `vantage server` with one API token.
public struct ServerClient: Sendable {
    /// The server's root, e.g. `http://127.0.0.1:8090`.
    public let baseURL: URL
    private let token: String?
    private let session: URLSession

    /// A client for the server at `baseURL` (its root, without `/api/v1`) calling with `token` (`vt_…`).
    public init(baseURL: URL, token: String?) {
        self.baseURL = baseURL
        self.token = token
        let configuration = URLSessionConfiguration.ephemeral
        // Between two bytes of an answer, not for the whole transfer (uploads of large models take longer).
        configuration.timeoutIntervalForRequest = 60
        configuration.httpCookieAcceptPolicy = .never
        configuration.httpShouldSetCookies = false
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        self.session = URLSession(configuration: configuration)
    }

    /// The server's address as messages show it.
    public var server: String {
        let text = baseURL.absoluteString
        return text.hasSuffix("/") ? String(text.dropLast()) : text
    }

    // MARK: System

    /// Who the token belongs to.
    public func whoAmI() async throws -> Identity {
        try await call(.get, "me")
    }

    // MARK: Devices

    public func listDevices() async throws -> [Device] {
        try await list("devices")
    }

    public func device(_ id: String) async throws -> Device {
        try await call(.get, "devices", id)
    }

    /// Registers a device; the answer carries its provisioning token, which the server shows only this once.
    public func createDevice(_ new: NewDevice) async throws -> DeviceCreated {
        try await call(.post, "devices", body: new)
    }

    public func updateDevice(_ id: String, _ update: DeviceUpdate) async throws -> Device {
        try await call(.patch, "devices", id, body: update)
    }

    public func deleteDevice(_ id: String) async throws {
        try await callWithoutAnswer(.delete, "devices", id)
    }

    /// A new one-time provisioning token for the device (its old one dies), to enroll it again.
    public func createProvisioningToken(_ id: String) async throws -> DeviceCreated {
        try await call(.post, "devices", id, "provisioning-token")
    }

    /// Revokes the device's certificate: it is refused from its next request on.
    public func revokeDevice(_ id: String) async throws -> Device {
        try await call(.post, "devices", id, "revoke")
    }

    /// A device's health series since `since` (the server's default: the last 24 hours).
    public func deviceMetrics(_ id: String, name: String? = nil, since: Date? = nil) async throws -> [MetricPoint] {
        try await list(
            "devices", id, "metrics", query: ["name": name, "since": since.map(APIJSON.formatTime)])
    }

    // MARK: Cameras

    public func listCameras() async throws -> [Camera] {
        try await list("cameras")
    }

    public func camera(_ id: String) async throws -> Camera {
        try await call(.get, "cameras", id)
    }

    /// Registers a camera. Credentials in the URL are moved to username and password by the server.
    public func createCamera(_ new: NewCamera) async throws -> Camera {
        try await call(.post, "cameras", body: new)
    }

    public func updateCamera(_ id: String, _ update: CameraUpdate) async throws -> Camera {
        try await call(.patch, "cameras", id, body: update)
    }

    public func deleteCamera(_ id: String) async throws {
        try await callWithoutAnswer(.delete, "cameras", id)
    }

    /// The camera's latest snapshot, a JPEG.
    public func cameraSnapshot(_ id: String) async throws -> Data {
        try await send(request(.get, ["cameras", id, "snapshot"])).0
    }

    // MARK: Models

    public func listModels() async throws -> [Model] {
        try await list("models")
    }

    public func model(_ id: String) async throws -> Model {
        try await call(.get, "models", id)
    }

    public func createModel(_ new: NewModel) async throws -> Model {
        try await call(.post, "models", body: new)
    }

    public func deleteModel(_ id: String) async throws {
        try await callWithoutAnswer(.delete, "models", id)
    }

    /// Uploads `file` as the model's next version; `descriptor` is Panorama's descriptor (inputs and shapes).
    public func uploadModelVersion(
        _ id: String, file: URL, filename: String? = nil, descriptor: JSONValue? = nil
    ) async throws -> ModelVersion {
        let query = [
            "filename": filename ?? file.lastPathComponent, "descriptor": descriptor.map { APIJSON.string($0) },
        ]
        var request = try self.request(.post, ["models", id, "versions"], query: query)
        request.setValue("application/octet-stream", forHTTPHeaderField: "Content-Type")
        return try decode(try await upload(request, file: file))
    }

    /// Downloads a model version's file to `destination` (replacing it).
    public func downloadModelVersion(_ id: String, version: Int, to destination: URL) async throws {
        try await download(request(.get, ["models", id, "versions", String(version), "content"]), to: destination)
    }

    // MARK: Packages

    public func listPackages() async throws -> [Package] {
        try await list("packages")
    }

    public func package(_ id: String) async throws -> Package {
        try await call(.get, "packages", id)
    }

    public func createPackage(_ new: NewPackage) async throws -> Package {
        try await call(.post, "packages", body: new)
    }

    public func deletePackage(_ id: String) async throws {
        try await callWithoutAnswer(.delete, "packages", id)
    }

    /// Uploads a ZIP of an application project folder as `version` of the package; the server checks the manifest.
    public func uploadPackageVersion(_ id: String, version: String, archive: URL) async throws -> PackageVersion {
        var request = try self.request(.post, ["packages", id, "versions"], query: ["version": version])
        request.setValue("application/zip", forHTTPHeaderField: "Content-Type")
        return try decode(try await upload(request, file: archive))
    }

    // MARK: Software releases and rollouts

    public func listReleases() async throws -> [Release] {
        try await list("releases")
    }

    public func release(_ version: String) async throws -> Release {
        try await call(.get, "releases", version)
    }

    /// Uploads a release tarball (`make package`'s `.tar.gz`); `version` only when the tarball names none.
    public func uploadRelease(file: URL, version: String? = nil) async throws -> Release {
        var request = try self.request(.post, ["releases"], query: ["version": version])
        request.setValue("application/gzip", forHTTPHeaderField: "Content-Type")
        return try decode(try await upload(request, file: file))
    }

    public func deleteRelease(_ version: String) async throws {
        try await callWithoutAnswer(.delete, "releases", version)
    }

    public func listRollouts() async throws -> [Rollout] {
        try await list("rollouts")
    }

    public func rollout(_ id: String) async throws -> Rollout {
        try await call(.get, "rollouts", id)
    }

    /// Starts a rollout: the first device is the canary.
    public func createRollout(_ new: NewRollout) async throws -> Rollout {
        try await call(.post, "rollouts", body: new)
    }

    /// Downloads a package version's archive to `destination` (replacing it).
    public func downloadPackageVersion(_ id: String, version: String, to destination: URL) async throws {
        try await download(request(.get, ["packages", id, "versions", version, "archive"]), to: destination)
    }

    /// The package with this id, or else the one with this name; nil when there is neither.
    public func findPackage(_ idOrName: String) async throws -> Package? {
        if idOrName.hasPrefix("pkg_") {
            do {
                return try await package(idOrName)
            } catch let error as ClientError where error.code == .notFound {
                // Not an id after all: a package may be named like one.
            }
        }
        return try await listPackages().first { $0.name == idOrName }
    }

    /// Zips the application project `folder` and registers it as `version` of the package with that id or name,
    /// creating the package when no package has the name.
    public func pushPackage(folder: URL, package idOrName: String, version: String) async throws -> (
        package: Package, version: PackageVersion, created: Bool
    ) {
        let archive = FileManager.default.temporaryDirectory.appending(path: "vantage-push-\(UUID().uuidString).zip")
        defer { try? FileManager.default.removeItem(at: archive) }
        try ProjectArchive.make(of: folder, at: archive)
        var package = try await findPackage(idOrName)
        let created = package == nil
        if package == nil { package = try await createPackage(NewPackage(name: idOrName)) }
        let registered = try await uploadPackageVersion(package!.id, version: version, archive: archive)
        return (try await self.package(package!.id), registered, created)
    }

    // MARK: Application instances

    public func listInstances(device: String? = nil, status: InstanceStatus? = nil) async throws
        -> [ApplicationInstance]
    {
        try await list("instances", query: ["deviceId": device, "status": status?.rawValue])
    }

    public func instance(_ id: String) async throws -> ApplicationInstance {
        try await call(.get, "instances", id)
    }

    /// An instance's newest log lines (at most `limit`), oldest first, from `since` on; with `level`, only that level
    /// and above; with `contains`, only lines holding that text (case-insensitive).
    public func instanceLogs(
        _ id: String, since: Date? = nil, limit: Int = 200, level: String? = nil, contains: String? = nil
    ) async throws -> [LogLine] {
        try await list(
            "instances", id, "logs",
            query: [
                "since": since.map(APIJSON.formatTime), "limit": String(limit), "level": level, "contains": contains,
            ])
    }

    /// A device agent's own newest log lines, oldest first, filtered as ``instanceLogs(_:since:limit:level:contains:)``.
    public func deviceLogs(
        _ id: String, since: Date? = nil, limit: Int = 200, level: String? = nil, contains: String? = nil
    ) async throws -> [LogLine] {
        try await list(
            "devices", id, "logs",
            query: [
                "since": since.map(APIJSON.formatTime), "limit": String(limit), "level": level, "contains": contains,
            ])
    }

    /// Deploys a package version to a device.
    public func createInstance(_ new: NewInstance) async throws -> ApplicationInstance {
        try await call(.post, "instances", body: new)
    }

    /// Changes an instance (a new deployment): its version, bindings, parameters or desired state.
    public func updateInstance(_ id: String, _ update: InstanceUpdate) async throws -> ApplicationInstance {
        try await call(.patch, "instances", id, body: update)
    }

    /// Removes an instance from its device: it answers the instance in REMOVAL_PENDING.
    public func removeInstance(_ id: String) async throws -> ApplicationInstance {
        try await call(.delete, "instances", id)
    }

    /// The instance's deployments, newest first.
    public func deployments(instance id: String) async throws -> [Deployment] {
        try await list("instances", id, "deployments")
    }

    // MARK: Events

    /// Which events `events(_:)` lists.
    public struct EventFilter: Sendable, Equatable {
        public var device: String?
        public var camera: String?
        public var instance: String?
        public var type: String?
        public var since: Date?
        public var until: Date?
        /// Page size, 1-500 (the server's default: 50).
        public var limit: Int?
        /// `nextCursor` of the previous page.
        public var cursor: String?
        /// `time` (the server's default) or `sequence` (one instance's events in the order it made them).
        public var order: String?

        public init(
            device: String? = nil, camera: String? = nil, instance: String? = nil, type: String? = nil,
            since: Date? = nil, until: Date? = nil, limit: Int? = nil, cursor: String? = nil, order: String? = nil
        ) {
            self.device = device
            self.camera = camera
            self.instance = instance
            self.type = type
            self.since = since
            self.until = until
            self.limit = limit
            self.cursor = cursor
            self.order = order
        }
    }

    /// One page of events, newest first.
    public func events(_ filter: EventFilter = EventFilter()) async throws -> Page<Event> {
        try await call(
            .get, "events",
            query: [
                "deviceId": filter.device, "cameraId": filter.camera, "instanceId": filter.instance,
                "type": filter.type, "since": filter.since.map(APIJSON.formatTime),
                "until": filter.until.map(APIJSON.formatTime), "limit": filter.limit.map(String.init),
                "cursor": filter.cursor, "order": filter.order,
            ])
    }

    public func event(_ id: String) async throws -> Event {
        try await call(.get, "events", id)
    }

    /// The event's snapshot, a JPEG.
    public func eventSnapshot(_ id: String) async throws -> Data {
        try await send(request(.get, ["events", id, "snapshot"])).0
    }

    // MARK: Tokens and audit

    public func listTokens() async throws -> [APIToken] {
        try await list("tokens")
    }

    /// Creates an API token; the answer carries its secret, shown only this once.
    public func createToken(_ new: NewToken) async throws -> APITokenCreated {
        try await call(.post, "tokens", body: new)
    }

    public func deleteToken(_ id: String) async throws {
        try await callWithoutAnswer(.delete, "tokens", id)
    }

    // MARK: Console users (admins)

    public func listUsers() async throws -> [User] {
        try await list("users")
    }

    public func createUser(_ new: NewUser) async throws -> User {
        try await call(.post, "users", body: new)
    }

    /// A new role or password; either ends the user's console sessions.
    public func updateUser(_ name: String, _ change: UserChange) async throws -> User {
        try await call(.patch, "users", name, body: change)
    }

    public func deleteUser(_ name: String) async throws {
        try await callWithoutAnswer(.delete, "users", name)
    }

    /// One page of the audit log, newest first.
    public func auditLog(limit: Int? = nil, cursor: String? = nil) async throws -> Page<AuditEntry> {
        try await call(.get, "audit", query: ["limit": limit.map(String.init), "cursor": cursor])
    }
}

// MARK: - Transport

extension ServerClient {
    enum Method: String {
        case get = "GET"
        case post = "POST"
        case patch = "PATCH"
        case delete = "DELETE"
    }

    private struct Items<Item: Decodable>: Decodable { let items: [Item] }
    private struct NoBody: Encodable {}

    /// Path segments are encoded one by one: an id can never add a segment (`../tokens`) to the path.
    private static let segmentCharacters = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))

    func request(_ method: Method, _ segments: [String], query: [String: String?] = [:]) throws -> URLRequest {
        let path = segments.map { $0.addingPercentEncoding(withAllowedCharacters: Self.segmentCharacters) ?? $0 }
        guard var components = URLComponents(url: baseURL, resolvingAgainstBaseURL: false) else {
            throw ClientError.local("--server \(server) is not a URL; write e.g. http://127.0.0.1:8090")
        }
        let root =
            components.percentEncodedPath.hasSuffix("/")
            ? String(components.percentEncodedPath.dropLast()) : components.percentEncodedPath
        components.percentEncodedPath = root + "/api/v1/" + path.joined(separator: "/")
        let items = query.compactMap { name, value in value.map { URLQueryItem(name: name, value: $0) } }
        components.queryItems = items.isEmpty ? nil : items.sorted { $0.name < $1.name }
        // URLComponents leaves '+' alone in queries; servers read it as a space (a time zone offset, a descriptor).
        components.percentEncodedQuery = components.percentEncodedQuery?.replacingOccurrences(of: "+", with: "%2B")
        guard let url = components.url else {
            throw ClientError.local("--server \(server) is not a URL; write e.g. http://127.0.0.1:8090")
        }
        var request = URLRequest(url: url)
        request.httpMethod = method.rawValue
        request.setValue("application/json", forHTTPHeaderField: "Accept")
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        return request
    }

    private func call<Answer: Decodable>(
        _ method: Method, _ segments: String..., query: [String: String?] = [:]
    ) async throws -> Answer {
        try decode(try await send(try request(method, segments, query: query)).0)
    }

    private func call<Answer: Decodable>(
        _ method: Method, _ segments: String..., body: some Encodable
    ) async throws -> Answer {
        var request = try self.request(method, segments)
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = try APIJSON.encoder().encode(body)
        return try decode(try await send(request).0)
    }

    private func callWithoutAnswer(_ method: Method, _ segments: String...) async throws {
        _ = try await send(try request(method, segments))
    }

    private func list<Item: Decodable>(_ segments: String..., query: [String: String?] = [:]) async throws -> [Item] {
        let answer: Items<Item> = try decode(try await send(try request(.get, segments, query: query)).0)
        return answer.items
    }

    private func decode<Answer: Decodable>(_ data: Data) throws -> Answer {
        do {
            return try APIJSON.decoder().decode(Answer.self, from: data)
        } catch {
            throw ClientError(.invalidResponse, message: "cannot read it as \(Answer.self): \(error)", server: server)
        }
    }

    private func send(_ request: URLRequest) async throws -> (Data, HTTPURLResponse) {
        let answer: (Data, URLResponse)
        do {
            answer = try await session.data(for: request)
        } catch {
            throw ClientError.transport(error, server: server)
        }
        return try check(answer)
    }

    private func upload(_ request: URLRequest, file: URL) async throws -> Data {
        guard FileManager.default.isReadableFile(atPath: file.path) else {
            throw ClientError.local("cannot read \(file.path): no such file, or not readable")
        }
        let answer: (Data, URLResponse)
        do {
            answer = try await session.upload(for: request, fromFile: file)
        } catch {
            throw ClientError.transport(error, server: server)
        }
        return try check(answer).0
    }

    private func download(_ request: URLRequest, to destination: URL) async throws {
        let answer: (URL, URLResponse)
        do {
            answer = try await session.download(for: request)
        } catch {
            throw ClientError.transport(error, server: server)
        }
        defer { try? FileManager.default.removeItem(at: answer.0) }
        guard let http = answer.1 as? HTTPURLResponse else {
            throw ClientError(.invalidResponse, message: "not an HTTP answer", server: server)
        }
        guard (200..<300).contains(http.statusCode) else {
            let body = (try? Data(contentsOf: answer.0)) ?? Data()
            throw ClientError.answer(status: http.statusCode, body: body, server: server)
        }
        do {
            if FileManager.default.fileExists(atPath: destination.path) {
                try FileManager.default.removeItem(at: destination)
            }
            // A copy, not a move: the temporary file may be on another file system.
            try FileManager.default.copyItem(at: answer.0, to: destination)
        } catch {
            throw ClientError.local("cannot write \(destination.path): \(error.localizedDescription)")
        }
    }

    private func check(_ answer: (Data, URLResponse)) throws -> (Data, HTTPURLResponse) {
        guard let http = answer.1 as? HTTPURLResponse else {
            throw ClientError(.invalidResponse, message: "not an HTTP answer", server: server)
        }
        guard (200..<300).contains(http.statusCode) else {
            throw ClientError.answer(status: http.statusCode, body: answer.0, server: server)
        }
        return (answer.0, http)
    }
}
