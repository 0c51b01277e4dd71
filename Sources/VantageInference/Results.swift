/// A rectangle in fractions of the frame: `0` is the left or top edge, `1` the right or bottom edge.
public struct Box: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// Left edge.
    public var xMin: Float
    /// Top edge.
    public var yMin: Float
    /// Right edge.
    public var xMax: Float
    /// Bottom edge.
    public var yMax: Float

    /// A box from its edges, in fractions of the frame.
    public init(xMin: Float, yMin: Float, xMax: Float, yMax: Float) {
        self.xMin = xMin
        self.yMin = yMin
        self.xMax = xMax
        self.yMax = yMax
    }

    /// Width, as a fraction of the frame's width.
    public var width: Float { max(0, xMax - xMin) }
    /// Height, as a fraction of the frame's height.
    public var height: Float { max(0, yMax - yMin) }
    /// `width * height`.
    public var area: Float { width * height }

    /// Intersection over union with `other`: 0 when apart, 1 when the same.
    public func intersectionOverUnion(_ other: Box) -> Float {
        let w = min(xMax, other.xMax) - max(xMin, other.xMin)
        let h = min(yMax, other.yMax) - max(yMin, other.yMin)
        guard w > 0, h > 0 else { return 0 }
        let intersection = w * h
        let union = area + other.area - intersection
        return union > 0 ? intersection / union : 0
    }

    /// The box limited to the frame.
    public var clamped: Box {
        Box(
            xMin: min(max(xMin, 0), 1), yMin: min(max(yMin, 0), 1),
            xMax: min(max(xMax, 0), 1), yMax: min(max(yMax, 0), 1))
    }

    /// `(xMin, yMin)–(xMax, yMax)`.
    public var description: String { "(\(xMin), \(yMin))–(\(xMax), \(yMax))" }
}

/// An object found in a frame. The class name is ``InferenceModel/label(for:)``.
public struct Detection: Sendable, Equatable, Hashable {
    /// The model's class id (for the COCO SSD models, 1 = person).
    public var classId: Int
    /// Confidence, 0–1.
    public var score: Float
    /// Where, in fractions of the frame.
    public var box: Box

    /// A detection of class `classId` with confidence `score` at `box`.
    public init(classId: Int, score: Float, box: Box) {
        self.classId = classId
        self.score = score
        self.box = box
    }
}

/// One of the top classes of an image classifier. The class name is ``InferenceModel/label(for:)``.
public struct Classification: Sendable, Equatable, Hashable {
    /// Index into the model's score vector.
    public var classId: Int
    /// The score (a probability when the model or the decoder applies softmax).
    public var score: Float

    /// Class `classId` with `score`.
    public init(classId: Int, score: Float) {
        self.classId = classId
        self.score = score
    }
}
