import Foundation
import Testing
import VantageInference

/// The output decoders on synthetic tensors: what an application gets for known model outputs.
@Suite("Output decoders")
struct DecoderTests {
    /// Runs `body` with `values` as a float buffer.
    func withFloats<R>(_ values: [Float], _ body: (UnsafeBufferPointer<Float>) -> R) -> R {
        values.withUnsafeBufferPointer(body)
    }

    @Test("SSD: boxes in y-x order become frame boxes; low scores and padding rows are dropped")
    func ssd() {
        // Three of five rows are valid (num_detections = 3); the rest is padding.
        let boxes: [Float] = [
            0.1, 0.2, 0.5, 0.4,  // ymin, xmin, ymax, xmax
            0.3, 0.6, 0.9, 0.8,
            0.0, 0.0, 0.1, 0.1,
            0.5, 0.5, 0.6, 0.6,
            0.5, 0.5, 0.6, 0.6,
        ]
        let classes: [Float] = [1, 3, 1, 1, 1]
        let scores: [Float] = [0.9, 0.6, 0.1, 0.95, 0.95]
        var results: [Detection] = []
        boxes.withUnsafeBufferPointer { b in
            classes.withUnsafeBufferPointer { c in
                scores.withUnsafeBufferPointer { s in
                    SSDDecoder.decode(boxes: b, classes: c, scores: s, count: 3, minScore: 0.5, into: &results)
                }
            }
        }
        #expect(
            results == [
                Detection(classId: 1, score: 0.9, box: Box(xMin: 0.2, yMin: 0.1, xMax: 0.4, yMax: 0.5)),
                Detection(classId: 3, score: 0.6, box: Box(xMin: 0.6, yMin: 0.3, xMax: 0.8, yMax: 0.9)),
            ])
    }

    // Five candidate boxes on a 640×480 input, as (cx, cy, w, h, objectness, class 0, class 1):
    // A and B are the same object of class 0 (B slightly shifted, weaker); C is class 1 exactly where A is;
    // D is class 0 far away; E is too weak.
    static let candidates: [[Float]] = [
        [320, 240, 100, 200, 0.9, 0.9, 0.1],  // A: 0.81, class 0
        [330, 240, 100, 200, 0.8, 0.9, 0.1],  // B: 0.72, class 0, IoU with A ≈ 0.82
        [320, 240, 100, 200, 0.9, 0.2, 0.8],  // C: 0.72, class 1
        [100, 100, 50, 50, 0.9, 0.7, 0.1],  // D: 0.63, class 0
        [500, 400, 50, 50, 0.1, 0.9, 0.1],  // E: 0.09
    ]
    static let boxA = Box(xMin: 270.0 / 640, yMin: 140.0 / 480, xMax: 370.0 / 640, yMax: 340.0 / 480)
    static let boxD = Box(xMin: 75.0 / 640, yMin: 75.0 / 480, xMax: 125.0 / 640, yMax: 125.0 / 480)

    func expectBestPerClassKept(
        _ results: [Detection], scores: [Float], sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(results.map(\.classId) == [0, 1, 0], "\(results)", sourceLocation: sourceLocation)
        guard results.count == 3 else { return }
        for (result, score) in zip(results, scores) {
            #expect(abs(result.score - score) < 1e-5, sourceLocation: sourceLocation)
        }
        #expect(approximately(results[0].box, Self.boxA), "A is kept, B is suppressed", sourceLocation: sourceLocation)
        #expect(approximately(results[1].box, Self.boxA), "C has another class", sourceLocation: sourceLocation)
        #expect(approximately(results[2].box, Self.boxD), sourceLocation: sourceLocation)
    }

    @Test("YOLO v5 [1, N, 5 + C]: objectness × class, pixels normalised, NMS per class")
    func yoloV5() {
        let rows = Self.candidates.flatMap { $0 }
        var results: [Detection] = []
        withFloats(rows) {
            YOLODecoder.decode(
                $0, shape: [1, 5, 7], version: .v5, inputWidth: 640, inputHeight: 480, minScore: 0.25,
                iouThreshold: 0.45, into: &results)
        }
        expectBestPerClassKept(results, scores: [0.81, 0.72, 0.63])
    }

    @Test("YOLO v8 [1, 4 + C, N]: class scores without objectness, NMS per class")
    func yoloV8() {
        // v8 has no objectness: the class scores are A 0.81, B 0.72, C 0.72 (class 1), D 0.63, E 0.09.
        let v8: [[Float]] = [
            [320, 240, 100, 200, 0.81, 0.1], [330, 240, 100, 200, 0.72, 0.1], [320, 240, 100, 200, 0.2, 0.72],
            [100, 100, 50, 50, 0.63, 0.1], [500, 400, 50, 50, 0.09, 0.05],
        ]
        // Transposed: one row per channel, one column per anchor.
        let columns = (0..<6).flatMap { channel in v8.map { $0[channel] } }
        var results: [Detection] = []
        withFloats(columns) {
            YOLODecoder.decode(
                $0, shape: [1, 6, 5], version: .v8, inputWidth: 640, inputHeight: 480, minScore: 0.25,
                iouThreshold: 0.45, into: &results)
        }
        expectBestPerClassKept(results, scores: [0.81, 0.72, 0.63])
    }

    @Test("YOLO: a looser IoU threshold keeps overlapping boxes of one class")
    func yoloIoUThreshold() {
        var results: [Detection] = []
        withFloats(Self.candidates.flatMap { $0 }) {
            YOLODecoder.decode(
                $0, shape: [1, 5, 7], version: .v5, inputWidth: 640, inputHeight: 480, minScore: 0.25,
                iouThreshold: 0.9, into: &results)
        }
        #expect(results.count == 4)
    }

    @Test("YOLO layouts are told apart by shape")
    func yoloVersionFromShape() {
        #expect(YOLODecoder.version(forShape: [1, 25200, 85]) == .v5)
        #expect(YOLODecoder.version(forShape: [1, 84, 8400]) == .v8)
        #expect(YOLODecoder.version(forShape: [84, 8400]) == .v8)
        #expect(YOLODecoder.version(forShape: [2, 84, 8400]) == nil)
        #expect(!YOLODecoder.accepts(shape: [1, 100, 5], version: .v5))
    }

    @Test("Non-maximum suppression keeps the best box of each class")
    func nonMaximumSuppression() {
        let box = Box(xMin: 0.1, yMin: 0.1, xMax: 0.3, yMax: 0.3)
        let shifted = Box(xMin: 0.12, yMin: 0.1, xMax: 0.32, yMax: 0.3)
        var detections = [
            Detection(classId: 2, score: 0.5, box: shifted),
            Detection(classId: 2, score: 0.7, box: box),
            Detection(classId: 5, score: 0.6, box: shifted),
            Detection(classId: 2, score: 0.4, box: Box(xMin: 0.6, yMin: 0.6, xMax: 0.9, yMax: 0.9)),
        ]
        NonMaximumSuppression.apply(to: &detections, iouThreshold: 0.5)
        #expect(detections.map(\.score) == [0.7, 0.6, 0.4])
        #expect(box.intersectionOverUnion(box) == 1)
        #expect(box.intersectionOverUnion(Box(xMin: 0.5, yMin: 0.5, xMax: 0.6, yMax: 0.6)) == 0)
    }

    @Test("Classification: the top k classes, best first")
    func classificationTopK() {
        let scores: [Float] = [0.1, 2.0, 0.5, 3.0, -1.0]
        var results: [Classification] = []
        withFloats(scores) {
            ClassificationDecoder.decode($0, topK: 3, softmax: false, minScore: 0, into: &results)
        }
        #expect(
            results == [
                Classification(classId: 3, score: 3.0), Classification(classId: 1, score: 2.0),
                Classification(classId: 2, score: 0.5),
            ])
    }

    @Test("Classification with softmax: probabilities, filtered by minScore")
    func classificationSoftmax() {
        let scores: [Float] = [0.1, 2.0, 0.5, 3.0, -1.0]
        let sum = scores.map { expf($0) }.reduce(0, +)
        var results: [Classification] = []
        withFloats(scores) {
            ClassificationDecoder.decode($0, topK: 3, softmax: true, minScore: 0.2, into: &results)
        }
        #expect(results.map(\.classId) == [3, 1])
        #expect(abs(results[0].score - expf(3) / sum) < 1e-5)
        #expect(abs(results[1].score - expf(2) / sum) < 1e-5)
    }

    @Test("Decoders append to reused storage without reallocating")
    func reusedStorage() {
        var results: [Classification] = []
        results.reserveCapacity(8)
        let capacity = results.capacity
        let scores: [Float] = (0..<1000).map { Float($0 % 97) }
        for _ in 0..<3 {
            results.removeAll(keepingCapacity: true)
            withFloats(scores) { ClassificationDecoder.decode($0, topK: 5, softmax: true, minScore: 0, into: &results) }
        }
        #expect(results.count == 5)
        #expect(results.capacity == capacity)
    }
}

func approximately(_ a: Box, _ b: Box, tolerance: Float = 1e-5) -> Bool {
    abs(a.xMin - b.xMin) < tolerance && abs(a.yMin - b.yMin) < tolerance && abs(a.xMax - b.xMax) < tolerance
        && abs(a.yMax - b.yMax) < tolerance
}
