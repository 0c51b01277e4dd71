import Hummingbird

// The console's routes for fleet actions; the pages themselves are in ConsolePages+Fleet.swift.
extension Console {
    func addFleetRoutes(to router: Router<ServerContext>, pages: ConsolePages) {
    }
}
