import Hummingbird

// The console's routes for health charts and the device system page; the pages themselves are in ConsolePages+Health.swift.
extension Console {
    func addHealthRoutes(to router: Router<ServerContext>, pages: ConsolePages) {
        // Every heartbeat figure of a device, as a table of current values and charts over ?range=1h|6h|24h|7d.
        page("/devices/:id/system", on: router) { request, context in
            try await pages.deviceSystem(
                context.parameters.get("id") ?? "",
                range: try HealthRange.parse(request.uri.queryParameters.get("range")))
        }
    }
}
