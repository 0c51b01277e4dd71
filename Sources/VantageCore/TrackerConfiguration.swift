/// The tracker's thresholds. Scores are the detector's (0–1); times are seconds.
///
/// The defaults are ByteTrack's where it has one (`highScore` 0.5, `matchIoU` 0.2, which is its first-stage cost
/// threshold 0.8), and were checked on the sample video (docs: "Counting accuracy").
public struct TrackerConfiguration: Sendable, Codable, Equatable {
    /// Detections scoring at least this are matched first and may start tracks.
    public var highScore: Double = 0.5
    /// Detections below this are ignored; between it and `highScore` they only keep existing tracks going (a person
    /// half hidden behind another still scores 0.2).
    public var lowScore: Double = 0.1
    /// An unmatched detection starts a track only if it scores at least this.
    public var newTrackScore: Double = 0.6
    /// The least IoU between a track's predicted box and a detection for them to match.
    public var matchIoU: Double = 0.2
    /// Consecutive frames a new track must be seen before it is confirmed (and counts in zones and lines).
    public var confirmFrames: Int = 3
    /// How long a confirmed track may go unseen (hidden, missed by the detector) before it ends. Seconds, not
    /// frames: frame rates vary.
    public var maxLostSeconds: Double = 1.5

    public init(
        highScore: Double = 0.5, lowScore: Double = 0.1, newTrackScore: Double = 0.6, matchIoU: Double = 0.2,
        confirmFrames: Int = 3, maxLostSeconds: Double = 1.5
    ) {
        self.highScore = highScore
        self.lowScore = lowScore
        self.newTrackScore = newTrackScore
        self.matchIoU = matchIoU
        self.confirmFrames = confirmFrames
        self.maxLostSeconds = maxLostSeconds
    }

    /// Decodes any subset of the keys; the rest keep their defaults.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = TrackerConfiguration()
        highScore = try c.decodeIfPresent(Double.self, forKey: .highScore) ?? d.highScore
        lowScore = try c.decodeIfPresent(Double.self, forKey: .lowScore) ?? d.lowScore
        newTrackScore = try c.decodeIfPresent(Double.self, forKey: .newTrackScore) ?? d.newTrackScore
        matchIoU = try c.decodeIfPresent(Double.self, forKey: .matchIoU) ?? d.matchIoU
        confirmFrames = try c.decodeIfPresent(Int.self, forKey: .confirmFrames) ?? d.confirmFrames
        maxLostSeconds = try c.decodeIfPresent(Double.self, forKey: .maxLostSeconds) ?? d.maxLostSeconds
    }
}
