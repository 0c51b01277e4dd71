// INT8 post-training quantization (`vantage models optimize`).
//
// The quantization itself is OpenVINO's NNCF, which exists only for Python: `ModelOptimizer` runs
// `python3 -m vantage_optimize` (python/vantage_optimize) with NNCF and OpenVINO for Python on its path (`scripts/setup`
// installs them into `.deps/nncf`), moves the INT8 IR it wrote beside the original, loads it with the runtime's own
// loader to confirm it runs (and in which precision), and writes the report beside it.

public import Foundation
public import Logging
public import VantageCore

/// Quantizes a model to INT8 on frames of a video or camera and checks the result against the original.
public enum ModelOptimizer {
    /// What to quantize, on what, and where the result goes.
    public struct Options: Sendable {
        /// The FP32 model file (`.pb`, `.onnx`, `.tflite`, `.xml` with its `.bin`, `.pdmodel`).
        public var model: URL
        /// How frames reach the model (the descriptor's `vantage` block; its `file` is ignored) and how its outputs
        /// are decoded. An input without a name stands for the model's only input.
        public var spec: ModelSpec
        /// A video file or a camera URL (`rtsp://`, `http://`).
        public var video: String
        /// Frames the quantization is calibrated on.
        public var frames: Int = 300
        /// Frames after those that check the INT8 model against the original.
        public var heldOut: Int = 100
        /// The INT8 model's `.xml`; default: beside the original, `NAME.int8.xml`.
        public var output: URL?
        /// Detections scoring below this are not compared.
        public var minScore: Float = 0.5
        /// How long each model's speed is measured in all, in runs of at most half a second alternating between the
        /// models.
        public var benchSeconds: Double = 3
        /// Frames a second taken from a camera URL.
        public var sampleFPS: Double = 2
        /// NNCF's preset: `mixed` (symmetric weights, asymmetric activations) or `performance` (all symmetric).
        public var preset: String = "mixed"
        /// The `vantage` binary's folder: the quantizer and NNCF are looked for beside or above it.
        public var executableDirectory: URL?

        /// Options with the defaults above.
        public init(model: URL, spec: ModelSpec, video: String) {
            self.model = model
            self.spec = spec
            self.video = video
        }

        /// Where the INT8 model goes: `output`, or `NAME.int8.xml` beside the original.
        public var resolvedOutput: URL {
            if let output { return output.standardizedFileURL }
            return model.deletingPathExtension().appendingPathExtension("int8.xml").standardizedFileURL
        }
    }

    /// The INT8 model, its report, and the precision the runtime runs it in.
    public struct Outcome: Sendable {
        /// The INT8 model's `.xml` (its `.bin` is beside it).
        public var model: URL
        /// The report written beside it (`NAME.int8.json`).
        public var reportFile: URL
        /// The report.
        public var report: OptimizationReport
    }

    /// Quantizes `options.model`, on a thread of its own (it takes from seconds to minutes). Progress goes to
    /// standard error, line by line.
    public static func optimize(_ options: Options, logger: Logger) async throws(ModelOptimizeError) -> Outcome {
        try await onDedicatedThread(named: "vantage.optimize") { () throws(ModelOptimizeError) -> Outcome in
            try optimizeBlocking(options, logger: logger)
        }
    }

    // MARK: - Steps

    private static func optimizeBlocking(_ options: Options, logger: Logger) throws(ModelOptimizeError) -> Outcome {
        let fm = FileManager.default
        let model = options.model.standardizedFileURL
        let output = options.resolvedOutput
        try check(options, model: model, output: output)
        let executable =
            options.executableDirectory
            ?? URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let tools = try QuantizerTools.locate(executableDirectory: executable)

        // NNCF writes into a scratch folder beside the output; the files move into place only when all went well.
        let scratch = output.deletingLastPathComponent().appendingPathComponent(
            ".vantage-optimize-\(UUID().uuidString)")
        do { try fm.createDirectory(at: scratch, withIntermediateDirectories: true) } catch {
            throw ModelOptimizeError(
                .outputUnwritable,
                "cannot write in \(output.deletingLastPathComponent().path) (\(error.localizedDescription)): give "
                    + "--output in a folder you can write to")
        }
        defer { try? fm.removeItem(at: scratch) }
        let scratchModel = scratch.appendingPathComponent("model.xml")
        let resultFile = scratch.appendingPathComponent("result.json")

        var spec = options.spec
        spec.file = model.path
        let specJSON = String(decoding: (try? JSONEncoder().encode(spec)) ?? Data("{}".utf8), as: UTF8.self)
        let arguments = [
            "-m", "vantage_optimize", "--model", model.path, "--spec", specJSON, "--video", options.video,
            "--frames", "\(options.frames)", "--held-out", "\(options.heldOut)", "--output", scratchModel.path,
            "--result", resultFile.path, "--min-score", "\(options.minScore)", "--bench-seconds",
            "\(options.benchSeconds)", "--sample-fps", "\(options.sampleFPS)", "--preset", options.preset,
            "--device", spec.device ?? "CPU",
        ]
        logger.debug(
            "running the quantizer",
            metadata: ["python": "\(tools.python.path)", "optimize.packages": "\(tools.pythonPath)"])
        let status = try run(tools: tools, arguments: arguments)

        guard let data = fm.contents(atPath: resultFile.path) else {
            throw ModelOptimizeError(
                .quantizerFailed,
                "the quantizer (python3 -m vantage_optimize) exited with status \(status) without a result: its "
                    + "output above says why; run make setup if NNCF or OpenVINO for Python is broken")
        }
        let result: QuantizerResult
        do { result = try JSONDecoder().decode(QuantizerResult.self, from: data) } catch {
            throw ModelOptimizeError(.quantizerFailed, "the quantizer's result is not readable: \(error)")
        }
        if let message = result.error { throw ModelOptimizeError(.quantizerFailed, message) }
        guard var report = result.report, status == 0 else {
            throw ModelOptimizeError(.quantizerFailed, "the quantizer exited with status \(status) and no report")
        }

        // Into place: NAME.int8.xml and .bin, replacing an earlier result (never the original, checked above).
        let weights = output.deletingPathExtension().appendingPathExtension("bin")
        let reportFile = output.deletingPathExtension().appendingPathExtension("json")
        do {
            for (from, to) in [(scratchModel, output), (scratch.appendingPathComponent("model.bin"), weights)] {
                if fm.fileExists(atPath: to.path) { try fm.removeItem(at: to) }
                try fm.moveItem(at: from, to: to)
            }
        } catch {
            throw ModelOptimizeError(
                .outputUnwritable, "cannot move the INT8 model to \(output.path): \(error.localizedDescription)")
        }
        report.output = output.path
        report.weights = weights.path

        // The runtime's own loader, with the same descriptor, says whether and how the result runs.
        var runtimeSpec = spec
        runtimeSpec.file = output.path
        runtimeSpec.format = nil
        if runtimeSpec.inputs.isEmpty || runtimeSpec.inputs[0].name.isEmpty {
            let input = report.input
            runtimeSpec.inputs = [
                ModelInputSpec(
                    name: input.name, layout: input.layout, colorOrder: input.colorOrder, width: input.width,
                    height: input.height)
            ]
        }
        do {
            let loaded = try InferenceModel.load(
                name: "int8", spec: runtimeSpec, file: output, cacheDirectory: nil, logger: logger)
            report.runtimePrecision = loaded.precision
        } catch {
            throw ModelOptimizeError(
                .quantizerFailed,
                "the INT8 model at \(output.path) does not load in the runtime: \(error.message)"
                    + (error.openVINOMessage.map { " (OpenVINO: \($0))" } ?? ""))
        }

        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do { try encoder.encode(report).write(to: reportFile, options: .atomic) } catch {
            throw ModelOptimizeError(
                .outputUnwritable, "cannot write the report \(reportFile.path): \(error.localizedDescription)")
        }
        return Outcome(model: output, reportFile: reportFile, report: report)
    }

    /// The mistakes a user makes, caught before Python starts.
    private static func check(_ options: Options, model: URL, output: URL) throws(ModelOptimizeError) {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: model.path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            if ModelFormat(fileExtension: model.pathExtension) == nil {
                // Looks like a server model's name (`people-detector`, `people-detector@2`, `mdl_…`).
                let name = model.lastPathComponent
                let parts = name.split(separator: "@", maxSplits: 1).map(String.init)
                let (id, version) = (parts.first ?? name, parts.count > 1 ? parts[1] : nil)
                throw ModelOptimizeError(
                    .modelMissing,
                    "there is no model file \(model.path): optimize works on a local file; for a model on a Vantage "
                        + "server, download it first (vantage models download \(id)"
                        + (version.map { " --version \($0)" } ?? "") + " --output FILE), then run vantage models "
                        + "optimize FILE --calibrate VIDEO")
            }
            throw ModelOptimizeError(
                .modelMissing, "the model file \(model.path) does not exist: give the path of an FP32 model file")
        }
        guard let format = ModelFormat(fileExtension: model.pathExtension) else {
            throw ModelOptimizeError(
                .notAModel,
                "\(model.lastPathComponent) is not a model file (extension '\(model.pathExtension)'): give one of "
                    + "\(ModelFormat.supportedList)")
        }
        let originals: Set<String> = [
            model.path, format == .openvino ? model.deletingPathExtension().appendingPathExtension("bin").path : "",
        ]
        if format == .openvino, !fm.fileExists(atPath: model.deletingPathExtension().appendingPathExtension("bin").path)
        {
            throw ModelOptimizeError(
                .notAModel, "\(model.path) is OpenVINO IR, but its weights (.bin) are not beside it: copy them there")
        }
        guard output.pathExtension.lowercased() == "xml" else {
            throw ModelOptimizeError(
                .outputUnwritable,
                "--output \(output.path) must end in .xml (the INT8 model is OpenVINO IR; its .bin goes beside it)")
        }
        let outputs = [output, output.deletingPathExtension().appendingPathExtension("bin")]
        if outputs.contains(where: { originals.contains($0.path) }) {
            throw ModelOptimizeError(
                .outputUnwritable,
                "--output \(output.path) would overwrite the original model: give another path (the default is "
                    + "\(model.deletingPathExtension().lastPathComponent).int8.xml beside it)")
        }
        let isURL = options.video.range(of: "^[A-Za-z][A-Za-z0-9+.-]*://", options: .regularExpression) != nil
        if !isURL {
            let path = options.video.hasPrefix("file:") ? String(options.video.dropFirst(5)) : options.video
            guard fm.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
                throw ModelOptimizeError(
                    .videoMissing,
                    "the calibration video \(path) does not exist: give a video file from this camera or one like "
                        + "it, or the camera's URL (rtsp://…)")
            }
        }
        guard options.frames >= 1, options.heldOut >= 0 else {
            throw ModelOptimizeError(.badOption, "--frames must be at least 1 and --held-out at least 0")
        }
    }

    private static func run(tools: QuantizerTools, arguments: [String]) throws(ModelOptimizeError) -> Int32 {
        let process = Process()
        process.executableURL = tools.python
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONPATH"] = tools.pythonPath
        environment["PYTHONNOUSERSITE"] = "1"
        process.environment = environment
        // NNCF's own output (progress bars) goes with ours to standard error: standard output is the report's.
        process.standardOutput = FileHandle.standardError
        process.standardError = FileHandle.standardError
        do { try process.run() } catch {
            throw ModelOptimizeError(
                .nncfMissing,
                "cannot start \(tools.python.path) (\(error.localizedDescription)): run make setup, which installs "
                    + "Python's NNCF and OpenVINO into .deps/nncf")
        }
        process.waitUntilExit()
        return process.terminationStatus
    }
}

/// Where the quantizer and NNCF are.
struct QuantizerTools {
    var python: URL
    /// `python/` (holding `vantage_optimize`) and the NNCF packages, for PYTHONPATH.
    var pythonPath: String

    /// `$VANTAGE_NNCF_PACKAGES`, else `.deps/nncf` of the source checkout the binary was built in; the quantizer from
    /// `$VANTAGE_PYTHON_SDK`, else `python/` beside or above the binary, else `share/vantage/python`.
    static func locate(executableDirectory executable: URL) throws(ModelOptimizeError) -> QuantizerTools {
        let environment = ProcessInfo.processInfo.environment
        let packages: URL
        if let path = environment["VANTAGE_NNCF_PACKAGES"], !path.isEmpty {
            packages = URL(fileURLWithPath: path)
            guard FileManager.default.fileExists(atPath: packages.appendingPathComponent("nncf/__init__.py").path)
            else {
                throw ModelOptimizeError(
                    .nncfMissing,
                    "NNCF is not installed in VANTAGE_NNCF_PACKAGES (\(path) has no nncf package): run make setup "
                        + "and unset VANTAGE_NNCF_PACKAGES to use .deps/nncf, or install it there (pip install "
                        + "--target \(path) nncf==3.4.0 openvino==2026.4.1)")
            }
        } else if let root = executable.ancestor(containing: ".deps/nncf/nncf/__init__.py") {
            packages = root.appendingPathComponent(".deps/nncf")
        } else {
            throw ModelOptimizeError(
                .nncfMissing,
                "NNCF (OpenVINO's quantization tool for Python) is not installed: run make setup (it installs NNCF "
                    + "and OpenVINO for Python into .deps/nncf), or set VANTAGE_NNCF_PACKAGES to a folder holding "
                    + "the nncf and openvino packages (pip install --target DIR nncf==3.4.0 openvino==2026.4.1)")
        }
        let sdk: URL
        if let path = environment["VANTAGE_PYTHON_SDK"], !path.isEmpty {
            sdk = URL(fileURLWithPath: path)
        } else if let root = executable.ancestor(containing: "python/vantage_optimize/__init__.py") {
            sdk = root.appendingPathComponent("python")
        } else if let root = executable.ancestor(containing: "share/vantage/python/vantage_optimize/__init__.py") {
            sdk = root.appendingPathComponent("share/vantage/python")
        } else {
            throw ModelOptimizeError(
                .nncfMissing,
                "the quantizer (python/vantage_optimize) was not found beside \(executable.path): set "
                    + "VANTAGE_PYTHON_SDK to the python/ folder of the Vantage source")
        }
        // The interpreter setup installed the packages for (their compiled parts are for its version), else python3.
        let recorded = (try? String(contentsOf: packages.appendingPathComponent(".python"), encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let python =
            recorded.flatMap { FileManager.default.isExecutableFile(atPath: $0) ? URL(fileURLWithPath: $0) : nil }
            ?? onPath("python3") ?? URL(fileURLWithPath: "/usr/bin/python3")
        return QuantizerTools(python: python, pythonPath: sdk.path + ":" + packages.path)
    }

    private static func onPath(_ name: String) -> URL? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(dir)).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return nil
    }

}

struct QuantizerResult: Decodable {
    var report: OptimizationReport?
    var error: String?
}

/// Why a model could not be optimized; the message says what to do.
public struct ModelOptimizeError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure; an extensible set.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate let name: String
        /// The model file does not exist.
        public static let modelMissing = Code(name: "modelMissing")
        /// The file is not a model OpenVINO reads.
        public static let notAModel = Code(name: "notAModel")
        /// The calibration video does not exist.
        public static let videoMissing = Code(name: "videoMissing")
        /// NNCF, OpenVINO for Python or the quantizer is not installed.
        public static let nncfMissing = Code(name: "nncfMissing")
        /// The quantizer stopped: no image input, no frames, NNCF failed; the message is its own.
        public static let quantizerFailed = Code(name: "quantizerFailed")
        /// The output cannot be written, or would overwrite the original.
        public static let outputUnwritable = Code(name: "outputUnwritable")
        /// An option has a value that cannot be used.
        public static let badOption = Code(name: "badOption")
        /// The code's name.
        public var description: String { name }
    }

    /// What kind of failure.
    public var code: Code
    /// What is wrong and what to do.
    public var message: String

    /// An error of `code` saying `message`.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The message.
    public var description: String { message }
}

/// What `vantage models optimize` found: written beside the INT8 model as `NAME.int8.json` and printed as a table.
public struct OptimizationReport: Codable, Sendable {
    /// The frame input as the quantizer fed it.
    public struct Input: Codable, Sendable {
        /// The input's name.
        public var name: String
        /// The width frames are scaled to.
        public var width: Int
        /// The height frames are scaled to.
        public var height: Int
        /// `RGB` or `BGR`.
        public var colorOrder: String
        /// `NHWC` or `NCHW`.
        public var layout: String
        /// The model input's element type (`u8`, `f32`).
        public var elementType: String
    }

    /// One class's detections on the held-out frames.
    public struct ClassAccuracy: Codable, Sendable {
        /// The class id.
        public var id: Int
        /// The class name from the descriptor's labels.
        public var label: String?
        /// Detections of the original model.
        public var fp32: Int
        /// Detections of the INT8 model.
        public var int8: Int
        /// INT8 detections that match an original one (same class, IoU at or above the threshold).
        public var matched: Int
        /// matched / fp32.
        public var recall: Double
        /// matched / int8.
        public var precision: Double
    }

    /// How close the INT8 model's results are to the original's on the held-out frames.
    public struct Accuracy: Codable, Sendable {
        /// `detection`, `classification` or `raw`.
        public var kind: String
        /// Held-out frames compared.
        public var frames: Int
        /// Detections: the score threshold.
        public var minScore: Double?
        /// Detections: the IoU threshold for a match.
        public var iou: Double?
        /// Detections of the original model.
        public var fp32: Int?
        /// Detections of the INT8 model.
        public var int8: Int?
        /// INT8 detections matching an original one.
        public var matched: Int?
        /// matched / fp32.
        public var recall: Double?
        /// matched / int8.
        public var precision: Double?
        /// Per class.
        public var classes: [ClassAccuracy]?
        /// Classification: frames where both models' top class is the same, as a fraction.
        public var top1Agreement: Double?
        /// Raw outputs: the mean cosine similarity of the outputs.
        public var cosineSimilarity: Double?
    }

    /// One model's speed and the precision OpenVINO ran it in.
    public struct ModelSpeed: Codable, Sendable {
        /// The median of its runs.
        public var inferencesPerSecond: Double
        /// Every run.
        public var runs: [Double]
        /// OpenVINO's inference precision for floating-point layers (`FP32`, `BF16`, `FP16`).
        public var inferencePrecision: String
        /// Convolution and matrix layers in the execution graph.
        public var layers: Int
        /// Those of them running in INT8.
        public var int8Layers: Int
        /// OpenVINO's kernels for those layers, the most used first.
        public var kernels: [Kernel]

        /// A kernel and how many layers use it.
        public struct Kernel: Codable, Sendable {
            /// OpenVINO's name for it, e.g. `brgconv_avx512_1x1_I8`.
            public var kernel: String
            /// How many layers use it.
            public var layers: Int
        }
    }

    /// Both models' speed, measured in the same run.
    public struct Speed: Codable, Sendable {
        /// The OpenVINO device.
        public var device: String
        /// The performance hint (the runtime's).
        public var hint: String
        /// Requests in flight.
        public var requests: Int
        /// Seconds per run (the runs alternate between the models).
        public var secondsPerRun: Double
        /// The original as the runtime compiles it.
        public var fp32: ModelSpeed
        /// The original with FP32 inference forced, when the default is another precision (BF16).
        public var fp32Strict: ModelSpeed?
        /// The INT8 model.
        public var int8: ModelSpeed
        /// int8 / fp32 inferences per second.
        public var speedup: Double
    }

    /// What the CPU offers for INT8.
    public struct CPU: Codable, Sendable {
        /// The CPU's name as OpenVINO gives it.
        public var name: String
        /// Logical cores.
        public var cores: Int?
        /// Intel AMX (tile matrix multiply, INT8 and BF16).
        public var amx: Bool
        /// AVX-512 VNNI (INT8 dot products in 512-bit registers).
        public var avx512Vnni: Bool
        /// AVX-VNNI (the same in 256-bit registers).
        public var avxVnni: Bool
        /// AVX-512 BF16.
        public var avx512Bf16: Bool
        /// AMX BF16.
        public var amxBf16: Bool
        /// The best INT8 instructions present: `AMX`, `AVX512-VNNI`, `AVX-VNNI`, or without VNNI.
        public var int8Instructions: String
        /// OpenVINO's `OPTIMIZATION_CAPABILITIES` for the device.
        public var openvinoCapabilities: [String]
    }

    /// The original model file.
    public var model: String
    /// The INT8 model's `.xml`.
    public var output: String
    /// The INT8 model's `.bin`.
    public var weights: String
    /// Always `INT8`.
    public var precision: String
    /// The video or camera (credentials hidden).
    public var video: String
    /// Frames calibrated on.
    public var calibrationFrames: Int
    /// Frames checked on.
    public var heldOutFrames: Int
    /// The frame input.
    public var input: Input
    /// The decoder the outputs were compared with (`ssd`, `yolo`, `classification`, `raw`).
    public var decoder: String
    /// INT8 against the original.
    public var accuracy: Accuracy
    /// Speed of both.
    public var speed: Speed
    /// The CPU.
    public var cpu: CPU
    /// FakeQuantize operations in the INT8 model.
    public var fakeQuantize: Int
    /// NNCF's preset.
    public var preset: String
    /// Seconds NNCF took.
    public var quantizeSeconds: Double
    /// Seconds the quantizer took in all.
    public var totalSeconds: Double
    /// NNCF's version.
    public var nncf: String
    /// OpenVINO's version.
    public var openvino: String
    /// The precision the runtime's loader reports for the INT8 model (`INT8`).
    public var runtimePrecision: String?
}
