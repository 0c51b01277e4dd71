import Foundation
import VantageAPI
import VantageApp

extension Store {
    static let cameraColumns =
        "id, name, description, url, credentials, device_id, snapshot_at, created_at, updated_at"

    func camera(from row: SQLRow) throws -> Camera {
        Camera(
            id: try row.text("id"), name: try row.text("name"), description: try row.text("description"),
            url: try row.text("url"), hasCredentials: try row.optionalText("credentials") != nil,
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

    /// Checks a camera URL and splits credentials written into it (`rtsp://user:pass@host/…`) out of it.
    static func splitCameraURL(_ url: String) throws -> (url: String, username: String?, password: String?) {
        guard url.count <= 2048 else { throw APIError.invalid("the camera URL is longer than 2048 characters") }
        if let problem = CameraURL.problem(url) {
            throw APIError.invalid(
                "camera URL \(CameraSource.redact(url)): \(problem); give \(CameraURL.acceptedForms)")
        }
        let authority = url.components(separatedBy: "://").dropFirst().first?.split(separator: "/").first ?? ""
        guard let parsed = URLComponents(string: url) else {
            // Credentials that do not parse must not be stored in the clear, where every viewer would see them.
            if authority.contains("@") {
                throw APIError.invalid(
                    "the camera URL's user name or password has characters that must be percent-encoded (such as # ? / @); give them in the username and password fields instead"
                )
            }
            return (url, nil, nil)
        }
        var components = parsed
        guard components.user != nil || components.password != nil else { return (url, nil, nil) }
        let username = components.user
        let password = components.password
        components.user = nil
        components.password = nil
        return (components.string ?? url, username, password)
    }

    func sealCredentials(username: String?, password: String?) throws -> String? {
        guard username != nil || password != nil else { return nil }
        return try secrets.seal(Self.json(["username": username ?? "", "password": password ?? ""]))
    }

    /// A camera's URL with its credentials put back in, for a device that must open it. Never logged or returned
    /// by the operator API.
    public func cameraStreamURL(_ id: String) async throws -> String {
        guard Identifiers.isValid(id, prefix: "cam"),
            let row = try await database.query("SELECT url, credentials FROM cameras WHERE id = \(id)").first
        else { throw APIError.notFound("camera", id) }
        let url = try row.text("url")
        guard let sealed = try row.optionalText("credentials") else { return url }
        let credentials = try Self.decodeJSON([String: String].self, try secrets.open(sealed))
        guard var components = URLComponents(string: url) else { return url }
        components.user = credentials["username"].flatMap { $0.isEmpty ? nil : $0 }
        components.password = credentials["password"].flatMap { $0.isEmpty ? nil : $0 }
        return components.string ?? url
    }

    /// The camera's decrypted credentials (`username`, `password`), empty when it has none.
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
        let credentials = try sealCredentials(
            username: new.username ?? split.username, password: new.password ?? split.password)
        let deviceId = try await checkDeviceReference(new.deviceId)
        let id = Identifiers.make("cam")
        let now = Millis.now()
        try await Self.unique("a camera named \"\(new.name)\"") {
            try await database.query(
                """
                INSERT INTO cameras (id, name, description, url, credentials, device_id, created_at, updated_at)
                VALUES (\(id), \(new.name), \(description), \(split.url), \(credentials), \(deviceId), \(now), \(now))
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
        var device = current.deviceId
        if let deviceId = update.deviceId { device = try await checkDeviceReference(deviceId) }
        var sealed = try await database.query("SELECT credentials FROM cameras WHERE id = \(id)").first?
            .optionalText("credentials")
        let newUsername = update.username ?? split?.username
        let newPassword = update.password ?? split?.password
        if newUsername != nil || newPassword != nil {
            let stored = try await storedCredentials(id)
            sealed = try sealCredentials(
                username: newUsername ?? stored["username"], password: newPassword ?? stored["password"])
        }
        let url = split?.url ?? current.url
        try await Self.unique("a camera named \"\(name)\"") {
            try await database.query(
                """
                UPDATE cameras SET name = \(name), description = \(description), url = \(url), credentials = \(sealed),
                    device_id = \(device), updated_at = \(Millis.now())
                WHERE id = \(id)
                """)
        }
        return try await camera(id)
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
