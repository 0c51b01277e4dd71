import Hummingbird

// The console's routes for live video relayed from the agents; the pages themselves are in ConsolePages+Live.swift.
extension Console {
    func addLiveRoutes(to router: Router<ServerContext>, pages: ConsolePages) {
        page("/live", on: router) { request, _ in
            let device = request.uri.queryParameters.get("deviceId").flatMap { $0.isEmpty ? nil : $0 }
            return try await pages.liveGrid(device: device)
        }
        page("/instances/:id/live", on: router) { _, context in
            try await pages.liveInstance(context.parameters.get("id") ?? "")
        }
    }
}
