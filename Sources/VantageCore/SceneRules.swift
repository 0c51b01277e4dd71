/// A polygon zone: where tracked objects enter, leave, dwell, and how many are inside.
public struct Zone: Sendable, Codable, Equatable {
    /// Unique among the zones and lines of one ``SceneAnalyzer``; events carry it.
    public var name: String
    /// The corners, in order, in fractions of the frame (at least 3; the last joins the first).
    public var polygon: [Point]
    /// Only tracks of these class ids count; nil counts every class.
    public var classes: [Int]?
    /// When set, a track that stays this long (seconds) gets one ``SceneEvent/zoneDwell(zone:track:seconds:)`` per
    /// visit.
    public var dwellSeconds: Double?
    /// The point of the box that must be inside.
    public var anchor: Anchor

    public init(
        name: String, polygon: [Point], classes: [Int]? = nil, dwellSeconds: Double? = nil,
        anchor: Anchor = .bottomCenter
    ) {
        self.name = name
        self.polygon = polygon
        self.classes = classes
        self.dwellSeconds = dwellSeconds
        self.anchor = anchor
    }

    /// Decodes `name` and `polygon` (a list of `{"x":…,"y":…}`); `classes`, `dwellSeconds` and `anchor` are optional.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        polygon = try c.decode([Point].self, forKey: .polygon)
        classes = try c.decodeIfPresent([Int].self, forKey: .classes)
        dwellSeconds = try c.decodeIfPresent(Double.self, forKey: .dwellSeconds)
        anchor = try c.decodeIfPresent(Anchor.self, forKey: .anchor) ?? .bottomCenter
    }

    /// Whether `point` is inside the polygon.
    @inlinable public func contains(_ point: Point) -> Bool { Geometry.contains(polygon, point) }

    /// Whether the zone's rules apply to objects of `classId`.
    @inlinable public func applies(to classId: Int) -> Bool { classes?.contains(classId) ?? true }

    /// Throws when the zone cannot work as written, saying how to fix it.
    public func validate() throws(SceneConfigurationError) {
        guard polygon.count >= 3 else {
            throw SceneConfigurationError(
                "zone \(name) has \(polygon.count) points: give at least 3 corners, in order, as fractions of the frame"
            )
        }
        if let dwellSeconds, !(dwellSeconds > 0) {
            throw SceneConfigurationError("zone \(name): dwellSeconds must be more than 0, or left out")
        }
    }
}

/// A directed counting line, counted where tracked objects cross it.
///
/// Its direction follows from its two ends. Stand on `from` and face `to`: an object crossing from your left to
/// your right goes **in**, from your right to your left goes **out**.
///
/// ```
///            to                       from ────────────────▶ to
///            ▲                                 left: out side
///     left   │   right                ─────────────────────────
///     (out)  │   (in)                          right: in side
///    ──────▶ │ ──────▶ in
///    ◀────── │ ◀────── out            (a line drawn left to right:
///            │                         "in" is walking down the
///          from                        picture, towards the camera)
/// ```
///
/// So a vertical line drawn from the bottom of the picture to the top counts walking left-to-right as in.
public struct CountingLine: Sendable, Codable, Equatable {
    /// Direction of a crossing.
    public enum Direction: String, Sendable, Codable, Equatable, Hashable {
        /// From the line's left to its right, as seen walking from `from` to `to`.
        case `in`
        /// From the line's right to its left.
        case out
    }

    /// Unique among the zones and lines of one ``SceneAnalyzer``; events carry it.
    public var name: String
    public var from: Point
    public var to: Point
    /// Only tracks of these class ids count; nil counts every class.
    public var classes: [Int]?
    /// The point of the box whose path must cross the line.
    public var anchor: Anchor
    /// How far (in fractions of the frame, measured square to the line) the anchor must settle past the line for a
    /// crossing to count: an object that stands on the line and wobbles across it by less counts nothing.
    public var hysteresis: Double

    public init(
        name: String, from: Point, to: Point, classes: [Int]? = nil, anchor: Anchor = .bottomCenter,
        hysteresis: Double = 0.01
    ) {
        self.name = name
        self.from = from
        self.to = to
        self.classes = classes
        self.anchor = anchor
        self.hysteresis = hysteresis
    }

    /// Decodes `name`, `from` and `to` (each `{"x":…,"y":…}`); `classes`, `anchor` and `hysteresis` are optional.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        from = try c.decode(Point.self, forKey: .from)
        to = try c.decode(Point.self, forKey: .to)
        classes = try c.decodeIfPresent([Int].self, forKey: .classes)
        anchor = try c.decodeIfPresent(Anchor.self, forKey: .anchor) ?? .bottomCenter
        hysteresis = try c.decodeIfPresent(Double.self, forKey: .hysteresis) ?? 0.01
    }

    /// The signed distance of `point` from the line (extended past its ends), in fractions of the frame: positive on
    /// the right (the side "in" goes to), negative on the left.
    @inlinable public func side(of point: Point) -> Double {
        let dx = to.x - from.x
        let dy = to.y - from.y
        let length = (dx * dx + dy * dy).squareRoot()
        guard length > 0 else { return 0 }
        return Geometry.orientation(from, to, point) / length
    }

    /// Whether the line's rules apply to objects of `classId`.
    @inlinable public func applies(to classId: Int) -> Bool { classes?.contains(classId) ?? true }

    /// Throws when the line cannot work as written, saying how to fix it.
    public func validate() throws(SceneConfigurationError) {
        guard from != to else {
            throw SceneConfigurationError("line \(name) starts and ends at the same point: give two different points")
        }
        guard hysteresis >= 0 else {
            throw SceneConfigurationError("line \(name): hysteresis must be 0 or more (0.01 is a good start)")
        }
    }
}

/// A zone or line that cannot work as configured; the message says what to change.
public struct SceneConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
