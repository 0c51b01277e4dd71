import Hummingbird

/// The web console: placeholder until the pages land.
struct Console: Sendable {
    let store: Store
    let configuration: ServerConfiguration

    func add(to router: Router<ServerContext>) {}
}
