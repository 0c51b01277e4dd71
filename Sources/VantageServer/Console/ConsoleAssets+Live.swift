// The console's style and script for live video relayed from the agents (instance live page, camera grid).
extension ConsoleAssets {
    static let liveStyle = """
        """

    static let liveScript = #"""
        """#
}
