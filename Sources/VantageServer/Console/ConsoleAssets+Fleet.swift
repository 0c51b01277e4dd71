// The console's style and script for fleet actions: devices, cameras, models, packages, users, tokens, audit log.
extension ConsoleAssets {
    static let fleetStyle = """
        """

    static let fleetScript = #"""
        """#
}
