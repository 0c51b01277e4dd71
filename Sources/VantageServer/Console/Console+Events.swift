import Hummingbird

// The console's routes for event review; the pages themselves are in ConsolePages+Events.swift.
extension Console {
    func addEventsRoutes(to router: Router<ServerContext>, pages: ConsolePages) {
    }
}
