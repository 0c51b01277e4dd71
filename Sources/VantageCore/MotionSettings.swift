/// How a camera's motion detector decides that something moved (the `motion` setting of an analytics node).
///
/// The detector compares each decoded frame's brightness (the luma plane, at a low resolution: a grid of cells
/// about `cellPixels` wide) with a slowly updated background. A cell moved when its mean brightness differs from
/// the background by more than `threshold` levels (0–255); the frame has motion when the moved cells outside the
/// masks cover at least `minArea` of the frame. When most of the frame changes at once (a light switched on, the
/// camera's exposure jumping) it is a lighting change, not motion: the background is taken again.
public struct MotionSettings: Sendable, Equatable, Codable {
    /// Brightness difference (0–255) from the background for a cell to count as moved.
    public var threshold: Double = 15
    /// The least part of the frame (0–1) the moved cells must cover: 0.0005 is a 45×23 px patch of a 1080p frame.
    public var minArea: Double = 0.0005
    /// How fast the background follows the picture, per second (0–1 of the way): slow enough that a person
    /// walking slowly still differs from it, fast enough that a parked car or a moved box stops counting.
    public var backgroundRate: Double = 0.5
    /// Above this part of the frame (0–1) changing at once, the change is lighting, not motion.
    public var lightingChange: Double = 0.6
    /// Areas where movement never counts (trees in the wind, a clock, a screen): polygons in fractions of the frame.
    public var masks: [[Point]] = []
    /// Draw the moved areas on the live view (orange boxes).
    public var show = false

    public init() {}
}
