// The console's style and script for event review: filters, groups, timeline, clips.
extension ConsoleAssets {
    static let eventsStyle = """
        """

    static let eventsScript = #"""
        """#
}
