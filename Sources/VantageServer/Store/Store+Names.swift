import Foundation
import VantageAPI

/// The kinds of resource a name may stand for where an id is taken (CLI arguments, API paths and list filters).
public enum NamedResource: String, Sendable, CaseIterable {
    case device, camera, model, package, instance

    var table: String {
        switch self {
        case .device: "devices"
        case .camera: "cameras"
        case .model: "models"
        case .package: "packages"
        case .instance: "instances"
        }
    }

    var prefix: String {
        switch self {
        case .device: "dev"
        case .camera: "cam"
        case .model: "mdl"
        case .package: "pkg"
        case .instance: "ins"
        }
    }

    /// The kind whose ids follow `/devices/`, `/cameras/`, … in an API path, or whose id a list filter takes.
    init?(collection: String) {
        switch collection {
        case "devices", "deviceId": self = .device
        case "cameras", "cameraId": self = .camera
        case "models", "modelId": self = .model
        case "packages", "packageId": self = .package
        case "instances", "instanceId": self = .instance
        default: return nil
        }
    }
}

/// An application instance that uses a camera, model or package (what blocks deleting it).
public struct InstanceUse: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var deviceId: String
}

extension Store {
    /// The id of the `kind` that `text` names: an existing id first, then a unique name. A name shared by several
    /// is a 400 naming their ids (instances: removed ones give way to one that is not); none is a 404.
    public func resolve(_ kind: NamedResource, _ text: String) async throws -> String {
        if Identifiers.isValid(text, prefix: kind.prefix),
            !(try await database.query("SELECT id FROM \(raw: kind.table) WHERE id = \(text)").isEmpty)
        {
            return text
        }
        guard !text.isEmpty, text.count <= 128 else { throw APIError.notFound(kind.rawValue, text) }
        let rows: [(id: String, removed: Bool)]
        if kind == .instance {
            rows = try await database.query("SELECT id, desired_state FROM instances WHERE name = \(text) ORDER BY id")
                .map { (try $0.text("id"), try $0.text("desired_state") == DesiredState.removed.rawValue) }
        } else {
            rows = try await database.query("SELECT id FROM \(raw: kind.table) WHERE name = \(text) ORDER BY id")
                .map { (try $0.text("id"), false) }
        }
        let live = rows.filter { !$0.removed }
        let candidates = live.isEmpty ? rows : live
        switch candidates.count {
        case 0:
            throw APIError(
                404, "no \(kind.rawValue) \(text): give its id or its name (vantage \(kind.table) list shows both)")
        case 1:
            return candidates[0].id
        default:
            throw APIError.invalid(
                "\(candidates.count) \(kind.table) are named \"\(text)\" (\(candidates.map(\.id).joined(separator: ", "))): give the id of the one you mean"
            )
        }
    }

    /// The instances (not removed) that bind this camera, model or package.
    public func usedBy(_ kind: NamedResource, _ id: String) async throws -> [InstanceUse] {
        try await listInstances().filter { instance in
            guard instance.desiredState != .removed else { return false }
            switch kind {
            case .camera: return instance.cameras.values.contains(id)
            case .model: return instance.models.values.contains { $0.modelId == id }
            case .package: return instance.packageId == id
            case .device: return instance.deviceId == id
            case .instance: return false
            }
        }.map { InstanceUse(id: $0.id, name: $0.name, deviceId: $0.deviceId) }
    }

    /// Refuses deleting a model that an instance (not removed) binds, naming those instances.
    func refuseDeletingModelInUse(_ id: String) async throws {
        let users = try await usedBy(.model, id)
        guard users.isEmpty else {
            throw APIError.conflict(
                "model \(id) is used by application instances \(users.map { "\($0.name) (\($0.id))" }.joined(separator: ", ")): remove them or bind another model first"
            )
        }
    }
}
