import Hummingbird

// The console's routes for live video relayed from the agents; the pages themselves are in ConsolePages+Live.swift.
extension Console {
    func addLiveRoutes(to router: Router<ServerContext>, pages: ConsolePages) {
    }
}
