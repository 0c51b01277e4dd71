// Output decoders: pure functions from float buffers to results, so they can be tested (and used by applications
// on raw tensors) without OpenVINO. Each appends into an array the caller owns and reuses, so a warm pipeline
// allocates nothing per frame.

import Foundation

/// TensorFlow object-detection API outputs (SSD, SSDLite, Faster R-CNN exports): boxes `[1, K, 4]` as
/// `ymin, xmin, ymax, xmax` in 0–1, classes `[1, K]` (class ids as floats), scores `[1, K]` and a count `[1]`.
public enum SSDDecoder {
    /// Appends the first `count` detections scoring at least `minScore` to `results`.
    public static func decode(
        boxes: UnsafeBufferPointer<Float>, classes: UnsafeBufferPointer<Float>, scores: UnsafeBufferPointer<Float>,
        count: Int, minScore: Float, into results: inout [Detection]
    ) {
        let n = min(max(count, 0), boxes.count / 4, classes.count, scores.count)
        for i in 0..<n {
            let score = scores[i]
            guard score >= minScore else { continue }
            let box = Box(xMin: boxes[4 * i + 1], yMin: boxes[4 * i], xMax: boxes[4 * i + 3], yMax: boxes[4 * i + 2])
            results.append(Detection(classId: Int(classes[i].rounded()), score: score, box: box.clamped))
        }
    }
}

/// YOLO detection heads as exported to ONNX by Ultralytics, boxes as centre x, centre y, width, height in input
/// pixels:
/// - v5 (also v7): `[1, N, 5 + C]`, each row `cx, cy, w, h, objectness, C class scores`; score = objectness × class.
/// - v8 (also v9, v11): `[1, 4 + C, N]`, each column `cx, cy, w, h, C class scores`; no objectness.
public enum YOLODecoder {
    /// The layout of a YOLO output.
    public enum Version: String, Sendable, CaseIterable {
        case v5, v8
    }

    /// Tells the layouts apart by shape: v8 has fewer rows (4 + classes) than columns (anchors); v5 the reverse.
    public static func version(forShape shape: [Int]) -> Version? {
        guard let (rows, columns) = matrix(shape) else { return nil }
        return rows < columns ? .v8 : .v5
    }

    /// Whether `shape` can be read as `version` (at least one class).
    public static func accepts(shape: [Int], version: Version) -> Bool {
        guard let (rows, columns) = matrix(shape) else { return false }
        switch version {
        case .v5: return columns >= 6
        case .v8: return rows >= 5
        }
    }

    /// Appends the boxes scoring at least `minScore`, one per anchor with its best class, normalised by the input
    /// size to fractions of the frame, after class-wise non-maximum suppression at `iouThreshold`.
    public static func decode(
        _ output: UnsafeBufferPointer<Float>, shape: [Int], version: Version, inputWidth: Int, inputHeight: Int,
        minScore: Float, iouThreshold: Float, into results: inout [Detection]
    ) {
        guard accepts(shape: shape, version: version), let (rows, columns) = matrix(shape),
            output.count >= rows * columns, inputWidth > 0, inputHeight > 0
        else { return }
        let start = results.count
        let sx = 1 / Float(inputWidth)
        let sy = 1 / Float(inputHeight)
        func append(_ cx: Float, _ cy: Float, _ w: Float, _ h: Float, _ classId: Int, _ score: Float) {
            let box = Box(
                xMin: (cx - w / 2) * sx, yMin: (cy - h / 2) * sy, xMax: (cx + w / 2) * sx, yMax: (cy + h / 2) * sy)
            results.append(Detection(classId: classId, score: score, box: box.clamped))
        }
        switch version {
        case .v5:
            let classes = columns - 5
            for anchor in 0..<rows {
                let row = anchor * columns
                let objectness = output[row + 4]
                guard objectness >= minScore else { continue }  // the score is objectness × class ≤ objectness
                var best = 0
                var bestScore = output[row + 5]
                for c in 1..<classes where output[row + 5 + c] > bestScore {
                    best = c
                    bestScore = output[row + 5 + c]
                }
                let score = objectness * bestScore
                guard score >= minScore else { continue }
                append(output[row], output[row + 1], output[row + 2], output[row + 3], best, score)
            }
        case .v8:
            let classes = rows - 4
            let anchors = columns
            for anchor in 0..<anchors {
                var best = 0
                var bestScore = output[4 * anchors + anchor]
                for c in 1..<classes where output[(4 + c) * anchors + anchor] > bestScore {
                    best = c
                    bestScore = output[(4 + c) * anchors + anchor]
                }
                guard bestScore >= minScore else { continue }
                append(
                    output[anchor], output[anchors + anchor], output[2 * anchors + anchor],
                    output[3 * anchors + anchor],
                    best, bestScore)
            }
        }
        NonMaximumSuppression.apply(to: &results, from: start, iouThreshold: iouThreshold)
    }

    /// The last two dimensions, when all others are 1.
    private static func matrix(_ shape: [Int]) -> (rows: Int, columns: Int)? {
        guard shape.count >= 2, shape.dropLast(2).allSatisfy({ $0 == 1 }) else { return nil }
        let rows = shape[shape.count - 2]
        let columns = shape[shape.count - 1]
        return rows > 0 && columns > 0 ? (rows, columns) : nil
    }
}

/// Greedy class-wise non-maximum suppression.
public enum NonMaximumSuppression {
    /// Sorts `detections[from...]` by score, best first, and removes each box that overlaps a better box of the
    /// same class by more than `iouThreshold` (intersection over union). Boxes of different classes never suppress
    /// each other. Works in place.
    public static func apply(to detections: inout [Detection], from start: Int = 0, iouThreshold: Float) {
        guard detections.count - start > 1 else { return }
        detections[start...].sort { $0.score > $1.score }
        var kept = start
        for i in start..<detections.count {
            let candidate = detections[i]
            var suppressed = false
            for k in start..<kept
            where detections[k].classId == candidate.classId
                && detections[k].box.intersectionOverUnion(candidate.box) > iouThreshold
            {
                suppressed = true
                break
            }
            if !suppressed {
                detections[kept] = candidate
                kept += 1
            }
        }
        detections.removeLast(detections.count - kept)
    }
}

/// The top classes of a score vector (`[1, C]` or `[C]`).
public enum ClassificationDecoder {
    /// Appends the `topK` best classes, best first, whose score (after softmax, when asked) is at least `minScore`.
    public static func decode(
        _ scores: UnsafeBufferPointer<Float>, topK: Int, softmax: Bool, minScore: Float,
        into results: inout [Classification]
    ) {
        let start = results.count
        guard topK > 0, !scores.isEmpty else { return }
        // Top-k by raw score (softmax keeps the order), kept sorted in `results[start...]`.
        for (classId, score) in scores.enumerated() {
            let filled = results.count - start
            if filled == topK {
                guard score > results[results.count - 1].score else { continue }
                results.removeLast()
            }
            var position = results.count
            while position > start && results[position - 1].score < score { position -= 1 }
            results.insert(Classification(classId: classId, score: score), at: position)
        }
        if softmax {
            var maximum = -Float.infinity
            for s in scores where s > maximum { maximum = s }
            var sum: Float = 0
            for s in scores { sum += expf(s - maximum) }
            for i in start..<results.count { results[i].score = expf(results[i].score - maximum) / sum }
        }
        var end = results.count
        while end > start && results[end - 1].score < minScore { end -= 1 }
        results.removeLast(results.count - end)
    }
}
