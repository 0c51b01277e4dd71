import Hummingbird

// The console's routes for event review; the pages themselves are in ConsolePages+Events.swift.
extension Console {
    func addEventsRoutes(to router: Router<ServerContext>, pages: ConsolePages) {
        page("/events", on: router) { request, _ in
            let query = request.uri.queryParameters
            func value(_ name: String) -> String? {
                query.get(name).flatMap { $0.trimmingCharacters(in: .whitespaces).isEmpty ? nil : $0 }
            }
            return try await pages.events(
                ConsolePages.EventFilter(
                    device: value("deviceId"), camera: value("cameraId"), instance: value("instanceId"),
                    type: value("type"), range: value("range"), from: value("from"), to: value("to"),
                    since: value("since"), cursor: value("cursor")))
        }
        page("/events/:id", on: router) { _, context in try await pages.event(context.parameters.get("id") ?? "") }
    }
}
