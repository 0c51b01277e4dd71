import Foundation
import VantageAPI
import VantageApp

extension Store {
    static let cameraColumns =
        "id, name, description, url, detect_url, credentials, device_id, snapshot_at, created_at, updated_at"

    func camera(from row: SQLRow) throws -> Camera {
        Camera(
            id: try row.text("id"), name: try row.text("name"), description: try row.text("description"),
            url: try row.text("url"), detectUrl: try row.optionalText("detect_url"),
            hasCredentials: try row.optionalText("credentials") != nil,
            deviceId: try row.optionalText("device_id"),
            snapshotAt: Millis.date(try row.optionalInteger("snapshot_at")),
            createdAt: Millis.date(try row.integer("created_at")), updatedAt: Millis.date(try row.integer("updated_at"))
        )
    }

    public func listCameras() async throws -> [Camera] {
        try await database.query("SELECT \(raw: Self.cameraColumns) FROM cameras ORDER BY name").map {
            try camera(from: $0)
        }
    }

    public func camera(_ id: String) async throws -> Camera {
        guard Identifiers.isValid(id, prefix: "cam"),
            let row = try await database.query("SELECT \(raw: Self.cameraColumns) FROM cameras WHERE id = \(id)").first
        else { throw APIError.notFound("camera", id) }
        return try camera(from: row)
    }

    /// A camera URL as given, split: the URL to store (no `user:password@`, and `***` for the values of
    /// credentials in its query string), the credentials taken out, and the query credentials left as `***`
    /// (which keep the stored value on an update).
    struct SplitCameraURL {
        var url: String
        var username: String?
        var password: String?
        /// Lowercased parameter name → value as written.
        var query: [String: String]
        var placeholders: [String]
    }

    /// Checks a camera URL and splits credentials written into it (`rtsp://user:pass@host/…`, `…?user=u&pwd=p`)
    /// out of it. Errors about another field than `url` (`detectUrl`) start with its name.
    static func splitCameraURL(_ url: String, field: String = "url") throws -> SplitCameraURL {
        let named = field == "url" ? "" : "\(field): "
        guard url.count <= 2048 else {
            throw APIError.invalid("\(named)the camera URL is longer than 2048 characters")
        }
        if let problem = CameraURL.problem(url) {
            throw APIError.invalid(
                "\(named)camera URL \(CameraURLQuery.redact(CameraSource.redact(url))): \(problem); give \(CameraURL.acceptedForms)"
            )
        }
        let authority = url.components(separatedBy: "://").dropFirst().first?.split(separator: "/").first ?? ""
        var withoutUserInfo = url
        var username: String?
        var password: String?
        if let parsed = URLComponents(string: url) {
            var components = parsed
            if components.user != nil || components.password != nil {
                username = components.user
                password = components.password
                components.user = nil
                components.password = nil
                withoutUserInfo = components.string ?? url
            }
        } else if authority.contains("@") {
            // Credentials that do not parse must not be stored in the clear, where every viewer would see them.
            throw APIError.invalid(
                "\(named)the camera URL's user name or password has characters that must be percent-encoded (such as # ? / @); give them in the username and password fields instead"
            )
        }
        let (stored, taken) = CameraURLQuery.split(withoutUserInfo)
        var query: [String: String] = [:]
        for credential in taken {
            guard query[credential.name] == nil else {
                throw APIError.invalid(
                    "\(named)the camera URL gives \(credential.name)= twice in its query: give each credential once")
            }
            query[credential.name] = credential.value
        }
        return SplitCameraURL(
            url: stored, username: username, password: password, query: query,
            placeholders: CameraURLQuery.placeholders(in: stored).filter { query[$0] == nil })
    }

    /// Seals credentials as stored: `username`, `password` and `query:NAME` for each query credential.
    func sealCredentials(username: String?, password: String?, query: [String: String] = [:]) throws -> String? {
        guard username != nil || password != nil || !query.isEmpty else { return nil }
        var fields = ["username": username ?? "", "password": password ?? ""]
        for (name, value) in query { fields["query:" + name] = value }
        return try secrets.seal(Self.json(fields))
    }

    /// A camera's URL with its credentials put back in, for a device that must open it. Never logged or returned
    /// by the operator API. With `device`, the credentials are put back only when the camera is assigned to that
    /// device (or to none): a camera bound elsewhere before binding checked the assignment does not hand its
    /// credentials to another device.
    public func cameraStreamURL(_ id: String, for device: String? = nil) async throws -> String {
        try await cameraStreamURLs(id, for: device).url
    }

    /// A camera's main stream URL and its sub-stream's (nil when it has none), each with the camera's credentials
    /// put back in, as ``cameraStreamURL(_:for:)`` gives the main one.
    public func cameraStreamURLs(_ id: String, for device: String? = nil) async throws -> (
        url: String, detectUrl: String?
    ) {
        guard Identifiers.isValid(id, prefix: "cam"),
            let row = try await database.query(
                "SELECT url, detect_url, credentials, device_id FROM cameras WHERE id = \(id)"
            ).first
        else { throw APIError.notFound("camera", id) }
        let url = try row.text("url")
        let detectUrl = try row.optionalText("detect_url")
        guard let sealed = try row.optionalText("credentials") else { return (url, detectUrl) }
        if let device, let assigned = try row.optionalText("device_id"), assigned != device { return (url, detectUrl) }
        let credentials = try Self.decodeJSON([String: String].self, try secrets.open(sealed))
        return (Self.fill(url, with: credentials), detectUrl.map { Self.fill($0, with: credentials) })
    }

    /// `url` (as stored) with the credentials (`username`, `password`, `query:NAME`) put back in.
    static func fill(_ url: String, with credentials: [String: String]) -> String {
        var query: [String: String] = [:]
        for (key, value) in credentials where key.hasPrefix("query:") { query[String(key.dropFirst(6))] = value }
        let filled = CameraURLQuery.fill(url, with: query)
        guard var components = URLComponents(string: filled) else { return filled }
        let username = credentials["username"].flatMap { $0.isEmpty ? nil : $0 }
        let password = credentials["password"].flatMap { $0.isEmpty ? nil : $0 }
        guard username != nil || password != nil else { return filled }
        components.user = username
        components.password = password
        return components.string ?? filled
    }

    /// Credentials a camera's sub-stream URL carries must be the camera's: one camera, one account. Answers the
    /// user name and password to store (the camera's, or the sub-stream's where the camera gives none) and the
    /// query credentials of both URLs together.
    static func agree(
        username: String?, password: String?, query: [String: String], detect: SplitCameraURL?
    ) throws -> (username: String?, password: String?, query: [String: String]) {
        guard let detect else { return (username, password, query) }
        let hint =
            "a camera's sub-stream uses the camera's credentials: give them once (in url, or username and password)"
        if let given = detect.username, let username, given != username {
            throw APIError.invalid("detectUrl: its user name is not the camera's; \(hint)")
        }
        if let given = detect.password, let password, given != password {
            throw APIError.invalid("detectUrl: its password is not the camera's; \(hint)")
        }
        var merged = query
        for (name, value) in detect.query {
            if let other = merged[name], other != value {
                throw APIError.invalid("detectUrl: its \(name)= is not the camera's; \(hint)")
            }
            merged[name] = value
        }
        return (username ?? detect.username, password ?? detect.password, merged)
    }

    /// The camera's decrypted credentials (`username`, `password`, `query:NAME`), empty when it has none.
    private func storedCredentials(_ id: String) async throws -> [String: String] {
        guard
            let sealed = try await database.query("SELECT credentials FROM cameras WHERE id = \(id)").first?
                .optionalText("credentials")
        else { return [:] }
        return try Self.decodeJSON([String: String].self, try secrets.open(sealed)).filter { !$0.value.isEmpty }
    }

    func checkDeviceReference(_ deviceId: String?) async throws -> String? {
        guard let deviceId, !deviceId.isEmpty else { return nil }
        do {
            return try await device(deviceId).id
        } catch let error as APIError where error.status == 404 {
            throw APIError.unprocessable("deviceId: \(error.message)")
        }
    }

    public func createCamera(_ new: NewCamera) async throws -> Camera {
        try Self.checkName(new.name, of: "camera")
        let description = try Self.checkDescription(new.description)
        let split = try Self.splitCameraURL(new.url)
        if let name = split.placeholders.first {
            throw APIError.invalid(
                "the camera URL's \(name)=*** stands for a stored value, and a new camera has none: give the value")
        }
        let detect = try new.detectUrl.map { try Self.splitCameraURL($0, field: "detectUrl") }
        let agreed = try Self.agree(
            username: new.username ?? split.username, password: new.password ?? split.password, query: split.query,
            detect: detect)
        if let name = detect?.placeholders.first(where: { agreed.query[$0] == nil }) {
            throw APIError.invalid(
                "detectUrl: the camera URL's \(name)=*** stands for a stored value, and a new camera has none: give the value"
            )
        }
        let credentials = try sealCredentials(
            username: agreed.username, password: agreed.password, query: agreed.query)
        let deviceId = try await checkDeviceReference(new.deviceId)
        let id = Identifiers.make("cam")
        let now = Millis.now()
        try await Self.unique("a camera named \"\(new.name)\"") {
            try await database.query(
                """
                INSERT INTO cameras (
                    id, name, description, url, detect_url, credentials, device_id, created_at, updated_at)
                VALUES (
                    \(id), \(new.name), \(description), \(split.url), \(detect?.url), \(credentials), \(deviceId),
                    \(now), \(now))
                """)
        }
        return try await camera(id)
    }

    /// Changes a camera. Every field is checked before anything is written, and all is written in one statement:
    /// a refused update changes nothing. Credentials given in the URL or the fields replace the stored ones; giving
    /// only a user name or only a password keeps the other.
    public func updateCamera(_ id: String, _ update: CameraUpdate) async throws -> Camera {
        let current = try await camera(id)
        if let name = update.name { try Self.checkName(name, of: "camera") }
        let name = update.name ?? current.name
        let description =
            update.description == nil ? current.description : try Self.checkDescription(update.description)
        let split = try update.url.map { try Self.splitCameraURL($0) }
        // "" (or JSON null) removes the sub-stream.
        let detect = try update.detectUrl.flatMap { $0.isEmpty ? nil : try Self.splitCameraURL($0, field: "detectUrl") }
        var device = current.deviceId
        if let deviceId = update.deviceId {
            device = try await checkDeviceReference(deviceId)
            if device != current.deviceId { try await checkNotBoundElsewhere(camera: current, device: device) }
        }
        let url = split?.url ?? current.url
        let detectUrl = update.detectUrl == nil ? current.detectUrl : detect?.url
        var sealed = try await database.query("SELECT credentials FROM cameras WHERE id = \(id)").first?
            .optionalText("credentials")
        let username = update.username ?? split?.username
        let password = update.password ?? split?.password
        if username != nil || password != nil || split != nil || update.detectUrl != nil {
            let stored = try await storedCredentials(id)
            var storedQuery: [String: String] = [:]
            for (key, value) in stored where key.hasPrefix("query:") { storedQuery[String(key.dropFirst(6))] = value }
            // Credentials written into the sub-stream's URL must be the camera's as they are after this update.
            let agreed = try Self.agree(
                username: username ?? stored["username"], password: password ?? stored["password"],
                query: storedQuery.merging(split?.query ?? [:]) { $1 }, detect: detect)
            // The URLs' queries decide which credentials the camera has: `***` keeps a stored value, a value
            // replaces it, and a credential neither URL names any longer is dropped.
            var query: [String: String] = [:]
            let names =
                CameraURLQuery.placeholders(in: url) + (detectUrl.map { CameraURLQuery.placeholders(in: $0) } ?? [])
            for name in names {
                guard let value = agreed.query[name] else {
                    let field = split?.placeholders.contains(name) == true ? "" : "detectUrl: "
                    throw APIError.invalid(
                        "\(field)the camera URL's \(name)=*** stands for a stored value, and camera \(id) has none for \(name): give the value"
                    )
                }
                query[name] = value
            }
            sealed = try sealCredentials(username: agreed.username, password: agreed.password, query: query)
        }
        try await Self.unique("a camera named \"\(name)\"") {
            try await database.query(
                """
                UPDATE cameras SET name = \(name), description = \(description), url = \(url),
                    detect_url = \(detectUrl), credentials = \(sealed), device_id = \(device), updated_at = \(Millis.now())
                WHERE id = \(id)
                """)
        }
        return try await camera(id)
    }

    /// Refuses to move a camera to `device` (or to none) while instances on another device use it: they would keep
    /// receiving its credentials.
    func checkNotBoundElsewhere(camera: Camera, device: String?) async throws {
        let users = try await database.query(
            "SELECT id, device_id, cameras FROM instances WHERE desired_state <> 'REMOVED'"
        ).filter {
            (try? Self.decodeJSON([String: String].self, try $0.text("cameras")).values.contains(camera.id)) == true
                && (try? $0.text("device_id")) != device
        }
        guard users.isEmpty else {
            let list = users.compactMap { row in
                (try? row.text("id")).map { "\($0) (device \((try? row.text("device_id")) ?? "?"))" }
            }
            throw APIError.conflict(
                "camera \(camera.name) (\(camera.id)) is bound in application instances \(list.joined(separator: ", ")): "
                    + "it stays assigned to their device until they are removed or bound to another camera")
        }
    }

    public func deleteCamera(_ id: String) async throws {
        _ = try await camera(id)
        let users = try await database.query("SELECT id, cameras FROM instances WHERE desired_state <> 'REMOVED'")
            .filter {
                (try? Self.decodeJSON([String: String].self, try $0.text("cameras")).values.contains(id)) == true
            }
        guard users.isEmpty else {
            throw APIError.conflict(
                "camera \(id) is bound in application instances \(users.compactMap { try? $0.text("id") }.joined(separator: ", ")): remove them or rebind first"
            )
        }
        try await database.query("DELETE FROM cameras WHERE id = \(id)")
    }

    /// Stores a JPEG as the camera's latest snapshot.
    func setSnapshot(camera id: String, digest: String, at: Int64) async throws {
        try await database.query(
            "UPDATE cameras SET snapshot_digest = \(digest), snapshot_at = \(at) WHERE id = \(id) AND (snapshot_at IS NULL OR snapshot_at <= \(at))"
        )
    }

    public func cameraSnapshot(_ id: String) async throws -> URL? {
        _ = try await camera(id)
        guard
            let digest = try await database.query("SELECT snapshot_digest FROM cameras WHERE id = \(id)").first?
                .optionalText("snapshot_digest")
        else { return nil }
        return try await artifacts.file(for: digest)
    }
}
