import Foundation
import Hummingbird
import VantageAPI

/// Names given where an id is taken: path parameters and list filters, as the ids they name.
struct ResolvedNames: Sendable {
    var path: [String: String] = [:]
    var query: [String: String] = [:]
}

extension APIOperation {
    /// The list filters that take an id, or a name of what they filter by.
    static let namedFilters = ["deviceId", "cameraId", "instanceId", "packageId", "modelId"]

    /// Operators' calls may name a device, camera, model, package or instance where its id goes (`/models/{id}`,
    /// `?deviceId=`): each name becomes its id through ``Store/resolve(_:_:)``. An id is passed on without a query
    /// (the handler says if it does not exist), and devices' own calls are never looked at, so the hot paths pay
    /// nothing.
    func resolveNames(_ request: Request, _ context: ServerContext, store: Store) async throws -> ResolvedNames {
        guard case .role = access else { return ResolvedNames() }
        var resolved = ResolvedNames()
        let parts = path.split(separator: "/")
        for (index, part) in parts.enumerated() where index > 0 && part.hasPrefix("{") {
            guard let kind = NamedResource(collection: String(parts[index - 1])) else { continue }
            let name = String(part.dropFirst().dropLast())
            guard let value = context.parameters.get(name), !Identifiers.isValid(value, prefix: kind.prefix) else {
                continue
            }
            resolved.path[name] = try await store.resolve(kind, value)
        }
        for filter in Self.namedFilters where query.contains(where: { $0.name == filter }) {
            guard let kind = NamedResource(collection: filter),
                let value = request.uri.queryParameters.get(filter), !value.isEmpty,
                !Identifiers.isValid(value, prefix: kind.prefix)
            else { continue }
            do {
                resolved.query[filter] = try await store.resolve(kind, value)
            } catch let error as APIError where error.status == 404 {
                // A filter that names nothing filters as given: the list is empty, as for an unknown id.
            }
        }
        return resolved
    }
}

extension APIRoutes {
    struct Uses: Encodable, Sendable { let items: [InstanceUse] }

    static let instanceUses = OpenAPIComponents.object([
        ("items", .array(OpenAPIComponents.object([("id", .text), ("name", .text), ("deviceId", .text)])))
    ])

    /// What blocks deleting a camera, model or package: the instances that use it.
    static let fleet: [APIOperation] = [
        APIOperation(
            method: .get, path: "\(base)/cameras/{id}/used-by", id: "listCameraUsers", tag: "cameras",
            summary: "The application instances (not removed) bound to a camera: they keep it from being deleted",
            access: .role(.viewer), status: 200, content: .json(instanceUses)
        ) { call in
            let id = try await call.store.camera(call.parameter("id")).id
            return .json(Uses(items: try await call.store.usedBy(.camera, id)))
        },
        APIOperation(
            method: .get, path: "\(base)/models/{id}/used-by", id: "listModelUsers", tag: "models",
            summary: "The application instances (not removed) bound to a model: they keep it from being deleted",
            access: .role(.viewer), status: 200, content: .json(instanceUses)
        ) { call in
            let id = try await call.store.model(call.parameter("id")).id
            return .json(Uses(items: try await call.store.usedBy(.model, id)))
        },
        APIOperation(
            method: .get, path: "\(base)/packages/{id}/used-by", id: "listPackageUsers", tag: "packages",
            summary: "The application instances (not removed) of a package: they keep it from being deleted",
            access: .role(.viewer), status: 200, content: .json(instanceUses)
        ) { call in
            let id = try await call.store.package(call.parameter("id")).id
            return .json(Uses(items: try await call.store.usedBy(.package, id)))
        },
    ]
}
