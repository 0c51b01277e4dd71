// Plain geometry for tracking, zones and lines, in fractions of the frame (0 = left/top edge, 1 = right/bottom; y grows
// downwards), so one configuration fits every resolution. In VantageCore because the outputs document (its zones and
// lines) is read here; VantageAnalytics tracks and counts with it.

/// A point in fractions of the frame.
public struct Point: Sendable, Equatable, Hashable, Codable {
    public var x: Double
    public var y: Double
    @inlinable public init(x: Double, y: Double) {
        self.x = x
        self.y = y
    }
}

/// An axis-aligned box in fractions of the frame.
public struct Rect: Sendable, Equatable, Hashable, Codable {
    public var xMin: Double
    public var yMin: Double
    public var xMax: Double
    public var yMax: Double

    @inlinable public init(xMin: Double, yMin: Double, xMax: Double, yMax: Double) {
        self.xMin = xMin
        self.yMin = yMin
        self.xMax = xMax
        self.yMax = yMax
    }

    /// Zero for an inverted box.
    @inlinable public var width: Double { max(0, xMax - xMin) }
    /// Zero for an inverted box.
    @inlinable public var height: Double { max(0, yMax - yMin) }
    @inlinable public var center: Point { Point(x: (xMin + xMax) / 2, y: (yMin + yMax) / 2) }
    /// The middle of the bottom edge: where a standing person's feet are.
    @inlinable public var bottomCenter: Point { Point(x: (xMin + xMax) / 2, y: yMax) }

    /// Intersection over union: 1 for the same box, 0 for boxes that do not overlap.
    @inlinable public func iou(_ other: Rect) -> Double {
        let iw = min(xMax, other.xMax) - max(xMin, other.xMin)
        let ih = min(yMax, other.yMax) - max(yMin, other.yMin)
        guard iw > 0, ih > 0 else { return 0 }
        let intersection = iw * ih
        let union = width * height + other.width * other.height - intersection
        return union > 0 ? intersection / union : 0
    }

    /// The point of the box that zones and lines test: see ``Anchor``.
    @inlinable public func point(_ anchor: Anchor) -> Point {
        switch anchor {
        case .bottomCenter: bottomCenter
        case .center: center
        }
    }
}

/// Which point of a tracked box a zone or a line tests.
public enum Anchor: String, Sendable, Codable, Equatable, Hashable, CaseIterable {
    /// The middle of the bottom edge: a person's feet, a car's contact with the road. The default: it is where the
    /// object is on the ground, so a head that leans over a line does not cross it.
    case bottomCenter
    /// The centre of the box: for objects seen from above, or not standing on the ground.
    case center
}

@usableFromInline
package enum Geometry {
    /// Twice the signed area of the triangle a, b, c: positive when c is to the right of a→b with y pointing down.
    @inlinable
    package static func orientation(_ a: Point, _ b: Point, _ c: Point) -> Double {
        (b.x - a.x) * (c.y - a.y) - (b.y - a.y) * (c.x - a.x)
    }

    /// Whether segments p–q and a–b share a point; touching counts.
    @inlinable
    package static func segmentsIntersect(_ p: Point, _ q: Point, _ a: Point, _ b: Point) -> Bool {
        let d1 = orientation(a, b, p)
        let d2 = orientation(a, b, q)
        let d3 = orientation(p, q, a)
        let d4 = orientation(p, q, b)
        if ((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0)) {
            return true
        }
        func on(_ s: Point, _ t: Point, _ r: Point) -> Bool {
            min(s.x, t.x) <= r.x && r.x <= max(s.x, t.x) && min(s.y, t.y) <= r.y && r.y <= max(s.y, t.y)
        }
        return (d1 == 0 && on(a, b, p)) || (d2 == 0 && on(a, b, q)) || (d3 == 0 && on(p, q, a))
            || (d4 == 0 && on(p, q, b))
    }

    /// Even-odd rule: whether `point` is inside the polygon (its corners in order, not closed).
    @inlinable
    package static func contains(_ polygon: [Point], _ point: Point) -> Bool {
        guard polygon.count >= 3 else { return false }
        var inside = false
        var j = polygon.count - 1
        for i in polygon.indices {
            let a = polygon[i]
            let b = polygon[j]
            if (a.y > point.y) != (b.y > point.y) {
                let x = a.x + (point.y - a.y) * (b.x - a.x) / (b.y - a.y)
                if point.x < x { inside.toggle() }
            }
            j = i
        }
        return inside
    }
}
