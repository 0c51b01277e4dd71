// Plain geometry for tracking, zones and lines, in fractions of the frame (0 = left/top edge, 1 = right/bottom).

/// A point in fractions of the frame.
public struct Point: Sendable, Equatable, Hashable, Codable {
    public var x: Double
    public var y: Double
    public init(x: Double, y: Double) {
        self.x = x
        self.y = y
    }
}
