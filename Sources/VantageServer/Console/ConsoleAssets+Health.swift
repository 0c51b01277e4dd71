// The console's style and script for health charts, device system page, camera status.
extension ConsoleAssets {
    static let healthStyle = """
        """

    static let healthScript = #"""
        """#
}
