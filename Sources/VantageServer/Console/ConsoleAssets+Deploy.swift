// The console's style and script for the deploy wizard and the edit of a running instance.
extension ConsoleAssets {
    static let deployStyle = """
        """

    static let deployScript = #"""
        """#
}
