import ArgumentParser
import Foundation
import Logging
import VantageApp
import VantageClient
import VantageCore
import VantageInference

extension Models {
    /// `vantage models optimize MODEL --calibrate VIDEO`: INT8 post-training quantization with NNCF.
    struct Optimize: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Quantize a model to INT8 on frames of a video or camera, and check it against the original.",
            discussion: """
                OpenVINO's post-training quantization (NNCF, installed by make setup) calibrates on the first \
                --frames frames (spread over the video, or --sample-fps a second from a camera URL), scaled as the \
                runtime scales them. The INT8 model is saved as OpenVINO IR beside the original (NAME.int8.xml and \
                .bin, with the report in NAME.int8.json; the original is never changed); then both run on the \
                --held-out frames after those: the INT8 model's detections are matched to the original's (same \
                class, IoU >= 0.5, scores >= --min-score) and its recall and precision against them printed, with \
                both models' inferences per second on this CPU and the INT8 instructions it has (AMX, AVX512-VNNI, \
                AVX-VNNI). Run an application with the result: vantage run APP --model NODE=NAME.int8.xml.

                The model's descriptor (--descriptor, a model package's descriptor.json) says how frames reach it; \
                a model with a fixed input size needs none, one with a dynamic size needs it or --size.

                  vantage models optimize ssd.pb --descriptor descriptor.json --calibrate a.mp4
                  vantage models optimize ssd.pb --calibrate rtsp://10.0.0.5/sub --size 300x300
                  vantage models optimize model.onnx --calibrate yard.mp4 --frames 500 --json
                """)

        @Argument(help: "The FP32 model file (.pb, .onnx, .tflite, .xml with its .bin, .pdmodel).", completion: .file())
        var model: String

        @Option(
            name: .customLong("calibrate"),
            help: ArgumentHelp(
                "A video file from the camera (or one like it), or the camera's URL.", valueName: "VIDEO|URL"),
            completion: .file())
        var video: String

        @Option(
            help: ArgumentHelp(
                "The model package's descriptor.json (its vantage block: input size, colour order, layout, "
                    + "mean/scale, decoder).", valueName: "JSON-FILE"),
            completion: .file())
        var descriptor: String?

        @Option(help: ArgumentHelp("The size frames are scaled to, for a model of dynamic size.", valueName: "WxH"))
        var size: String?

        @Option(help: "Calibration frames.")
        var frames = 300

        @Option(name: .customLong("held-out"), help: "Frames after the calibration frames that check the result.")
        var heldOut = 100

        @Option(
            help: ArgumentHelp("The INT8 model's .xml (default: NAME.int8.xml beside the model).", valueName: "PATH"),
            completion: .file())
        var output: String?

        @Option(name: .customLong("min-score"), help: "Detections scoring below this are not compared.")
        var minScore: Float = 0.5

        @Option(
            name: .customLong("bench-seconds"),
            help: "Seconds each model's speed is measured (in short alternating runs).")
        var benchSeconds: Double = 3

        @Option(name: .customLong("sample-fps"), help: "Frames a second taken from a camera URL.")
        var sampleFPS: Double = 2

        @Option(help: "NNCF's preset: mixed (asymmetric activations) or performance (all symmetric).")
        var preset: Preset = .mixed

        @Flag(help: "Print the report as JSON instead of tables.")
        var json = false

        enum Preset: String, ExpressibleByArgument, CaseIterable {
            case mixed, performance
        }

        func validate() throws {
            guard frames >= 1 else { throw ValidationError("--frames must be at least 1") }
            guard heldOut >= 1 else { throw ValidationError("--held-out must be at least 1: the check needs frames") }
            guard (0...1).contains(minScore) else { throw ValidationError("--min-score must be between 0 and 1") }
            guard benchSeconds > 0, sampleFPS > 0 else {
                throw ValidationError("--bench-seconds and --sample-fps must be above 0")
            }
            if let size, Self.parseSize(size) == nil {
                throw ValidationError("--size takes WIDTHxHEIGHT, e.g. 300x300; got \(size)")
            }
        }

        static func parseSize(_ text: String) -> (Int, Int)? {
            let parts = text.lowercased().split(separator: "x")
            guard parts.count == 2, let w = Int(parts[0]), let h = Int(parts[1]), (1...16384).contains(w),
                (1...16384).contains(h)
            else { return nil }
            return (w, h)
        }

        func run() async throws {
            var logger = Logger(label: "vantage.optimize")
            logger.logLevel = .warning
            var options = ModelOptimizer.Options(
                model: URL(fileURLWithPath: model), spec: try spec(), video: video)
            options.frames = frames
            options.heldOut = heldOut
            options.output = output.map { URL(fileURLWithPath: $0) }
            options.minScore = minScore
            options.benchSeconds = benchSeconds
            options.sampleFPS = sampleFPS
            options.preset = preset.rawValue
            options.executableDirectory = Run.executableDirectory
            let outcome: ModelOptimizer.Outcome
            do { outcome = try await ModelOptimizer.optimize(options, logger: logger) } catch {
                FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
                throw ExitCode.failure
            }
            note("optimize: wrote \(outcome.model.path), its .bin and \(outcome.reportFile.lastPathComponent)")
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                print(String(decoding: try encoder.encode(outcome.report), as: UTF8.self))
            } else {
                print(Self.render(outcome.report, reportFile: outcome.reportFile))
            }
        }

        /// The descriptor's `vantage` block (or one inferred from Panorama's `mlModelDescriptor`), with `--size`.
        func spec() throws -> ModelSpec {
            var spec = ModelSpec(file: model)
            if let descriptor {
                guard let data = FileManager.default.contents(atPath: descriptor) else {
                    throw ValidationError(
                        "cannot read --descriptor \(descriptor): give the model package's descriptor.json")
                }
                struct File: Decodable {
                    var vantage: ModelSpec?
                    var mlModelDescriptor: ModelDescriptor?
                }
                let file: File
                do { file = try JSONDecoder().decode(File.self, from: data) } catch {
                    throw ValidationError("--descriptor \(descriptor) is not a model descriptor: \(error)")
                }
                if let vantage = file.vantage {
                    spec = vantage
                } else if let panorama = file.mlModelDescriptor {
                    spec = .inferred(from: panorama, file: model)
                } else {
                    throw ValidationError(
                        "--descriptor \(descriptor) has neither \"vantage\" nor \"mlModelDescriptor\": give the model "
                            + "package's descriptor.json")
                }
                spec.file = model
            }
            if let size, let (width, height) = Self.parseSize(size) {
                if spec.inputs.isEmpty { spec.inputs = [ModelInputSpec(name: "")] }
                spec.inputs[0].width = width
                spec.inputs[0].height = height
            }
            return spec
        }

        /// The report as a user reads it: accuracy per class, speed per model, the CPU, how to use the result.
        static func render(_ report: OptimizationReport, reportFile: URL) -> String {
            var lines: [String] = []
            let accuracy = report.accuracy
            lines.append(
                "INT8 model \(report.output) (runs as \(report.runtimePrecision ?? "?") in Vantage), "
                    + "report \(reportFile.path)")
            lines.append(
                "calibrated on \(report.calibrationFrames) frames of \(report.video) "
                    + "(\(report.input.width)x\(report.input.height) \(report.input.colorOrder)), checked on "
                    + "\(report.heldOutFrames) held-out frames")
            lines.append("")
            switch accuracy.kind {
            case "detection":
                lines.append(
                    "INT8 against the original: detections scoring >= \(String(format: "%.2f", accuracy.minScore ?? 0)), "
                        + "matched at IoU >= \(String(format: "%.2f", accuracy.iou ?? 0.5))")
                var table = TextTable(columns: ["CLASS", "FP32", "INT8", "MATCHED", "RECALL", "PRECISION"])
                for c in accuracy.classes ?? [] {
                    table.rows.append([
                        c.label.map { "\($0) (\(c.id))" } ?? "\(c.id)", "\(c.fp32)", "\(c.int8)", "\(c.matched)",
                        format(c.recall), format(c.precision),
                    ])
                }
                table.rows.append([
                    "all", "\(accuracy.fp32 ?? 0)", "\(accuracy.int8 ?? 0)", "\(accuracy.matched ?? 0)",
                    format(accuracy.recall ?? 0), format(accuracy.precision ?? 0),
                ])
                lines.append(table.render())
            case "classification":
                lines.append(
                    "top-1 class the same as the original's on \(format(accuracy.top1Agreement ?? 0)) of frames")
            default:
                lines.append("outputs' cosine similarity to the original's: \(format(accuracy.cosineSimilarity ?? 0))")
            }
            lines.append("")
            let speed = report.speed
            lines.append(
                "speed on \(report.cpu.name) (\(report.cpu.cores.map { "\($0) cores, " } ?? "")\(speed.device), "
                    + "\(speed.hint) hint, \(speed.requests) requests, median of \(speed.fp32.runs.count) alternating runs of \(String(format: "%.2g", speed.secondsPerRun)) s, "
                    + "same run)")
            var table = TextTable(columns: ["MODEL", "RUNS IN", "INT8 LAYERS", "INFERENCES/S", "VS ORIGINAL"])
            let base = speed.fp32.inferencesPerSecond
            var rows: [(String, OptimizationReport.ModelSpeed)] = [("original", speed.fp32)]
            if let strict = speed.fp32Strict { rows.append(("original, FP32 forced", strict)) }
            rows.append(("INT8", speed.int8))
            for (name, s) in rows {
                table.rows.append([
                    name, s.int8Layers > 0 ? "INT8" : s.inferencePrecision, "\(s.int8Layers)/\(s.layers)",
                    String(format: "%.1f", s.inferencesPerSecond),
                    String(format: "%.2fx", s.inferencesPerSecond / base),
                ])
            }
            lines.append(table.render())
            let cpu = report.cpu
            let yesNo = { (b: Bool) in b ? "yes" : "no" }
            lines.append("")
            lines.append(
                "CPU INT8 instructions: \(cpu.int8Instructions) (AMX \(yesNo(cpu.amx)), AVX512-VNNI "
                    + "\(yesNo(cpu.avx512Vnni)), AVX-VNNI \(yesNo(cpu.avxVnni)); BF16: AVX512-BF16 "
                    + "\(yesNo(cpu.avx512Bf16)), AMX-BF16 \(yesNo(cpu.amxBf16)))")
            if !speed.int8.kernels.isEmpty {
                let kernels = speed.int8.kernels.map { "\($0.kernel) ×\($0.layers)" }
                lines.append("OpenVINO's kernels for the INT8 model: \(kernels.joined(separator: ", "))")
            }
            lines.append("")
            lines.append("run it: vantage run APP --model NODE=\(report.output)")
            return lines.joined(separator: "\n")
        }

        private static func format(_ value: Double) -> String { String(format: "%.3f", value) }
    }
}
