import Hummingbird
import VantageAPI

// The console's routes for the deploy wizard and the edit of a running instance; the pages themselves are in ConsolePages+Deploy.swift.
extension Console {
    func addDeployRoutes(to router: Router<ServerContext>, pages: ConsolePages) {
        // The wizard; /instances/new?package=&version= (the packages page's Deploy links) starts at the device.
        page("/instances/new", on: router) { request, _ in
            try await pages.deployWizard(
                package: request.uri.queryParameters.get("package") ?? "",
                version: request.uri.queryParameters.get("version") ?? "")
        }
        page("/instances/:id/edit", on: router) { _, context in
            // Viewers could not save it (the API refuses them): say so before they fill it in.
            guard let viewer = Viewer(context.caller), viewer.role >= .operator else {
                return Self.errorPage(
                    403, "editing an application instance needs the operator or admin role: ask an admin for it")
            }
            return try await pages.editInstance(context.parameters.get("id") ?? "")
        }
    }
}
