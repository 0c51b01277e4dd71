import Foundation
import Testing
import VantageCore
import VantageInference

/// The person detector the demo uses (SSDLite MobileNetV2, a TensorFlow frozen graph) on real frames of the sample
/// video, through the same path the runtime takes: a 300×300 RGB frame written into the request's frame buffer.
@Suite(
    "SSDLite person detection on vtest.mp4",
    .enabled(if: Fixtures.hasSSDLite, "needs .deps/models/ssdlite, .deps/media/vtest.mp4 and ffmpeg: run scripts/setup")
)
struct SSDLiteInferenceTests {
    /// Moments of vtest.mp4 and the people a person counts in the full 768×576 frame (looked at by eye).
    /// SSDLite at 300×300 misses at most two of them: small, half hidden behind the sign or close to another person.
    static let scenes: [(seconds: Double, inView: Int)] = [(7, 6), (25, 7), (65, 6)]

    @Test("People walking through the scene are found", arguments: scenes)
    func peopleAreFound(scene: (seconds: Double, inView: Int)) async throws {
        let model = try await Fixtures.sharedSSDLite()
        let request = try model.makeRequest()
        try await request.infer(try Fixtures.frame(at: scene.seconds))

        let people = request.people(minScore: 0.5)
        #expect(
            (scene.inView - 2...scene.inView).contains(people.count),
            "at \(scene.seconds) s: \(scene.inView) people in view, \(people.count) found: \(people)")
        for person in people {
            #expect(model.label(for: person.classId) == "person")
            #expect(person.box.xMin >= 0 && person.box.xMax <= 1 && person.box.yMin >= 0 && person.box.yMax <= 1)
            #expect(person.box.xMin < person.box.xMax && person.box.yMin < person.box.yMax)
            // Standing people are taller than wide, even in a frame squeezed from 4:3 to 1:1.
            #expect(person.box.height * 576 > person.box.width * 768)
        }
    }

    @Test("The woman walking on the grass at 65 s is found where she is")
    func personNearestTheCameraIsLocated() async throws {
        let request = try await Fixtures.sharedSSDLite().makeRequest()
        try await request.infer(try Fixtures.frame(at: 65))
        // In the 768×576 frame she stands at about x 357, y 445: (0.46, 0.77).
        let her = request.people(minScore: 0.5).filter {
            $0.box.xMin < 0.46 && 0.46 < $0.box.xMax && $0.box.yMin < 0.77 && 0.77 < $0.box.yMax
        }
        #expect(her.count == 1, "\(request.detections)")
    }

    @Test("A black frame has nobody in it")
    func blackFrameHasNoPerson() async throws {
        let request = try await Fixtures.sharedSSDLite().makeRequest()
        try await request.infer([UInt8](repeating: 0, count: 300 * 300 * 3))
        #expect(request.people(minScore: 0.5).isEmpty, "\(request.detections)")
    }

    @Test("Results are reused storage that reflects only the last frame")
    func resultsFollowTheLastFrame() async throws {
        let request = try await Fixtures.sharedSSDLite().makeRequest()
        try await request.infer(try Fixtures.frame(at: 7))
        #expect(!request.people().isEmpty)
        try await request.infer([UInt8](repeating: 0, count: 300 * 300 * 3))
        #expect(request.people().isEmpty)
    }

    @Test("Several requests in flight at once give the same results as one after another")
    func concurrentRequestsMatchSequential() async throws {
        let model = try await Fixtures.sharedSSDLite()
        let frames =
            try [7.0, 25, 65].map { try Fixtures.frame(at: $0) } + [[UInt8](repeating: 0, count: 300 * 300 * 3)]

        let single = try model.makeRequest()
        var expected: [[Detection]] = []
        for frame in frames {
            try await single.infer(frame)
            expected.append(single.detections)
        }

        let requests = try frames.map { _ in try model.makeRequest() }
        let results = try await withThrowingTaskGroup(of: (Int, [[Detection]]).self) { group in
            for (i, request) in requests.enumerated() {
                let frame = frames[i]
                group.addTask {
                    var runs: [[Detection]] = []
                    for _ in 0..<5 {
                        try await request.infer(frame)
                        runs.append(request.detections)
                    }
                    return (i, runs)
                }
            }
            var all: [Int: [[Detection]]] = [:]
            for try await (i, runs) in group { all[i] = runs }
            return all
        }
        #expect(model.maxConcurrentRequests >= 2)
        for (i, runs) in results {
            for run in runs {
                #expect(run == expected[i], "frame \(i) differs when requests run concurrently")
            }
        }
    }

    @Test("Tensors from the application go in without the frame pre-processing and give the same people")
    func applicationTensorsMatchFrames() async throws {
        let request = try await Fixtures.sharedSSDLite().makeRequest()
        let frame = try Fixtures.frame(at: 25)
        try await request.infer(frame)
        let fromFrame = request.people()

        let bytes = TensorBytes(frame)
        try await request.inferTensors([
            TensorInput(name: "image_tensor:0", shape: [1, 300, 300, 3], elementType: .u8, data: bytes.raw)
        ])
        let fromTensor = request.people()
        #expect(fromTensor.count == fromFrame.count)
        for (a, b) in zip(fromFrame, fromTensor) {
            #expect(abs(a.score - b.score) < 0.01)
            #expect(abs(a.box.xMin - b.box.xMin) < 0.01 && abs(a.box.yMax - b.box.yMax) < 0.01)
        }
    }

    @Test("The model describes what the runtime must feed it and what comes out")
    func modelDescribesItsInputAndOutputs() async throws {
        let model = try await Fixtures.sharedSSDLite()
        #expect(model.frameInput == FrameInputFormat(width: 300, height: 300, channelOrder: .rgb))
        #expect(model.frameInput.byteCount == 270_000)
        #expect(model.inputNames == ["image_tensor:0"])
        #expect(model.format == .tensorflow)
        for name in ["detection_boxes:0", "detection_classes:0", "detection_scores:0", "num_detections:0"] {
            #expect(model.outputNames.contains(name))
        }
        let request = try model.makeRequest()
        #expect(request.frameBuffer.count == 270_000)
        try await request.infer(try Fixtures.frame(at: 7))
        let boxes = try #require(request.outputs.first { $0.name == "detection_boxes:0" })
        #expect(boxes.shape == [1, 100, 4])
        #expect(boxes.elementType == .f32)
        #expect(boxes.floats?.count == 400)
    }

    @Test("A second load comes from the compiled-model cache and still finds people")
    func compiledModelCache() async throws {
        let cache = try Fixtures.temporaryDirectory().appendingPathComponent("compiled")
        defer { try? FileManager.default.removeItem(at: cache.deletingLastPathComponent()) }

        let first = try await InferenceModel.load(
            name: "people_detector", spec: Fixtures.ssdliteSpec(), file: Fixtures.ssdlite, cacheDirectory: cache,
            logger: Fixtures.logger)
        #expect(!first.loadedFromCache)
        let cached = try FileManager.default.contentsOfDirectory(atPath: cache.path)
        #expect(!cached.isEmpty, "the cache directory stays empty")

        let second = try await InferenceModel.load(
            name: "people_detector", spec: Fixtures.ssdliteSpec(), file: Fixtures.ssdlite, cacheDirectory: cache,
            logger: Fixtures.logger)
        #expect(second.loadedFromCache)
        let request = try second.makeRequest()
        try await request.infer(try Fixtures.frame(at: 7))
        #expect(request.people().count >= 4)
    }

    @Test("A model with the raw decoder hands out its tensors and no detections")
    func rawDecoder() async throws {
        let model = try await InferenceModel.load(
            name: "raw_detector", spec: Fixtures.ssdliteSpec(decoder: DecoderSpec(type: .raw)), file: Fixtures.ssdlite,
            cacheDirectory: nil, logger: Fixtures.logger)
        let request = try model.makeRequest()
        try await request.infer(try Fixtures.frame(at: 7))
        #expect(request.detections.isEmpty)
        let scores = try #require(request.outputs.first { $0.name == "detection_scores:0" }?.floats)
        #expect(scores.filter { $0 > 0.5 }.count >= 4)
    }
}
