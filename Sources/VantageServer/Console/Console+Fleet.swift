import Foundation
import Hummingbird
import VantageAPI

// The console's routes for fleet actions; the pages themselves are in ConsolePages+Fleet.swift.
extension Console {
    func addFleetRoutes(to router: Router<ServerContext>, pages: ConsolePages) {
        page("/access", on: router) { _, context in
            guard Viewer(context.caller)?.role == .admin else { return Self.adminsOnly }
            return try await pages.access(actor: context.caller?.actor)
        }
        page("/audit", on: router) { request, context in
            guard Viewer(context.caller)?.role == .admin else { return Self.adminsOnly }
            let query = request.uri.queryParameters
            func value(_ name: String) -> String? {
                query.get(name).flatMap { $0.trimmingCharacters(in: .whitespaces).isEmpty ? nil : $0 }
            }
            return try await pages.audit(actor: value("actor"), action: value("action"), cursor: value("cursor"))
        }
    }

    static let adminsOnly = errorPage(
        403, "only admins see API tokens, users and the audit log: ask an admin, or sign in as one")
}

extension ServerConfiguration {
    /// The device endpoint's URL as agents reach it (what `vantage agent enroll --server` takes), or nil when it is
    /// not served. A wildcard listen address is named by the first `--device-hostname`, else this machine's name.
    var deviceEndpoint: String? {
        guard let devicePort else { return nil }
        var host = deviceHost
        if ["0.0.0.0", "::", ""].contains(host) {
            host = deviceHostnames.first ?? ProcessInfo.processInfo.hostName
        }
        if host.contains(":") { host = "[\(host)]" }
        return "https://\(host):\(devicePort)"
    }
}
