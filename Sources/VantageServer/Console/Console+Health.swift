import Hummingbird

// The console's routes for health charts and the device system page; the pages themselves are in ConsolePages+Health.swift.
extension Console {
    func addHealthRoutes(to router: Router<ServerContext>, pages: ConsolePages) {
    }
}
