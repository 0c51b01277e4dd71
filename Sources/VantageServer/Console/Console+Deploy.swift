import Hummingbird

// The console's routes for the deploy wizard and the edit of a running instance; the pages themselves are in ConsolePages+Deploy.swift.
extension Console {
    func addDeployRoutes(to router: Router<ServerContext>, pages: ConsolePages) {
    }
}
