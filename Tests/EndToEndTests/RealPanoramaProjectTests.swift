import Foundation
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Panorama projects laid out the way AWS's tools and users left them in git, run with no edit: only `--camera`,
/// `--model` and `--overrides` are given. Each fixture says where its shape comes from; none is tidied up.
///
/// The shapes: panorama-cli 1.1.6 (`create-package` writes `"assets": []` and an interface that already names
/// `code_asset`; `add-raw-model` names descriptors `<sha256>.json` in `assets/`, which its `.gitignore` leaves out),
/// the developer guide's sample apps (`WORKDIR /panorama`, `COPY . .`, code at the package root), the Panorama
/// image's interpreter in `entry.path` (`python3.8`), apps that serve HTTP on 8080 with a routing rule, a
/// `bash /panorama/setup.sh` entry, and the samples' `try: … except: pass` loops around `get()`.
@Suite(
    "Real Panorama projects", .serialized,
    .enabled(if: Repo.isSetUp && Repo.hasPythonPackages, "needs scripts/setup and a build (make test does both)"))
struct RealPanoramaProjectTests {
    // MARK: 1. Assets not built yet

    @Test("a code package with \"assets\": [] (before build-container) runs, with one notice, and infers")
    func assetsNotBuiltYet() async throws {
        let project = try PanoramaCLIProject(name: "my-app")
        defer { project.remove() }
        try project.writeGraphAndModel()
        try project.writeCodePackage(app: Self.detectingApp)
        let run = try project.run([
            "--camera", "camera_node=\(Repo.sampleVideo.path)", "--model", Self.model, "--json-summary",
        ])
        #expect(run.waitForExit(timeout: 300) == 0, "stderr:\n\(run.stderr.suffix(3000))")
        #expect(run.stderr.contains("\"appRestarts\":0"), "stderr:\n\(run.stderr.suffix(3000))")
        let people = run.events.compactMap { ($0["payload"] as? [String: Any])?["people"] as? Int }
        #expect(people.count == 3 && people.contains { (2...8).contains($0) }, "\(people)")
        let notices = run.stderr.components(separatedBy: "does not define yet").count - 1
        #expect(notices == 1, "stderr:\n\(run.stderr.prefix(3000))")
        #expect(!run.stderr.contains("error:"))
    }

    // MARK: 2. A code node with no camera

    @Test("a code node whose video_in has no edge runs; get() never returns frames (timeout raises TimeoutError)")
    func codeNodeWithoutCamera() async throws {
        let project = try PanoramaCLIProject(name: "http-only")
        defer { project.remove() }
        try project.write(
            "graphs/http-only/graph.json",
            """
            {"nodeGraph": {"envelopeVersion": "2021-01-01",
              "packages": [{"name": "123456789012::code", "version": "1.0"}],
              "nodes": [{"name": "code_node", "interface": "123456789012::code.code_asset_interface",
                         "overridable": false, "launch": "onAppStart"}],
              "edges": []}}
            """)
        try project.writeCodePackage(
            app: """
                import panoramasdk
                node = panoramasdk.node()
                try:
                    node.inputs.video_in.get(timeout=1.5)
                    result = "frames"
                except Exception as e:
                    result = type(e).__name__
                node.publish({"get": result})
                """)
        let run = try project.run([])
        #expect(run.waitForExit(timeout: 120) == 0, "stderr:\n\(run.stderr.suffix(3000))")
        let payload = run.events.first?["payload"] as? [String: Any]
        #expect(payload?["get"] as? String == "TimeoutError", "stderr:\n\(run.stderr.suffix(2000))")
        #expect(run.stderr.contains("media input \"video_in\" has no camera"))
        #expect(!run.stderr.contains("app restarts: 1") && !run.stderr.contains("restarting"))
    }

    // MARK: 3. One model package, several models

    @Test("a model package with two assets serves each model node its own descriptor, found by SHA-256")
    func severalModelsInOnePackage() async throws {
        let project = try PanoramaCLIProject(name: "two-models")
        defer { project.remove() }
        // Two descriptors with different input names: each node must be called with its own.
        let people =
            #"{"mlModelDescriptor": {"envelopeVersion": "2021-01-01", "framework": "TENSORFLOW", "frameworkVersion": "1.15", "inputs": [{"name": "data", "shape": [1, 300, 300, 3]}]}}"#
        let second =
            #"{"mlModelDescriptor": {"envelopeVersion": "2021-01-01", "framework": "TENSORFLOW", "frameworkVersion": "1.15", "inputs": [{"name": "image", "shape": [1, 300, 300, 3]}]}}"#
        let peopleDigest = sha256(people)
        let secondDigest = sha256(second)
        try project.write("packages/123456789012-models-1.0/descriptor_people_detection.json", people)
        try project.write("packages/123456789012-models-1.0/descriptor_second_opinion.json", second)
        try project.write(
            "packages/123456789012-models-1.0/package.json",
            """
            {"nodePackage": {"envelopeVersion": "2021-01-01", "name": "models", "version": "1.0",
              "description": "Default description for package models",
              "assets": [
                {"name": "people_detection", "implementations": [{"type": "model",
                  "assetUri": "\(sha256("archive-1")).tar.gz", "descriptorUri": "\(peopleDigest).json"}]},
                {"name": "second_opinion", "implementations": [{"type": "model",
                  "assetUri": "\(sha256("archive-2")).tar.gz", "descriptorUri": "\(secondDigest).json"}]}],
              "interfaces": [
                {"name": "people_detection_interface", "category": "ml_model", "asset": "people_detection",
                 "inputs": [{"name": "video_in", "type": "media"}], "outputs": [{"name": "video_out", "type": "media"}]},
                {"name": "second_opinion_interface", "category": "ml_model", "asset": "second_opinion",
                 "inputs": [{"name": "video_in", "type": "media"}], "outputs": [{"name": "video_out", "type": "media"}]}]}}
            """)
        try project.writeStandardGraph(
            models: [
                ("people_detection", "123456789012::models.people_detection_interface"),
                ("second_opinion", "123456789012::models.second_opinion_interface"),
            ], modelPackage: "123456789012::models")
        try project.writeCodePackage(
            app: """
                import cv2, numpy as np, panoramasdk
                node = panoramasdk.node()
                img = node.inputs.video_in.get()[0].image
                x = np.expand_dims(cv2.cvtColor(cv2.resize(img, (300, 300)), cv2.COLOR_BGR2RGB), 0)
                def people(r):
                    boxes, classes, scores, count = r
                    return int(sum(1 for i in range(int(count[0])) if classes[0][i] == 1 and scores[0][i] > 0.5))
                a = people(node.call({"data": x}, "people_detection"))
                b = people(node.call({"image": x}, "second_opinion"))
                try:
                    node.call({"data": x}, "second_opinion")
                    wrong = "accepted"
                except Exception as e:
                    wrong = type(e).__name__ + ": " + str(e)
                node.publish({"a": a, "b": b, "wrong": wrong})
                while True:
                    node.inputs.video_in.get()
                """)
        let run = try project.run([
            "--camera", "camera_node=\(Repo.sampleVideo.path)", "--model",
            "people_detection=\(Repo.personDetector.path)", "--model", "second_opinion=\(Repo.personDetector.path)",
        ])
        #expect(run.waitForExit(timeout: 300) == 0, "stderr:\n\(run.stderr.suffix(3000))")
        let payload = try #require(
            run.events.first?["payload"] as? [String: Any], "no event; stderr:\n\(run.stderr.suffix(3000))")
        #expect((payload["a"] as? Int).map { $0 >= 1 } == true && payload["a"] as? Int == payload["b"] as? Int)
        // The second node got its own descriptor: the first one's input name is refused there.
        #expect((payload["wrong"] as? String)?.contains("image") == true, "\(payload)")
        #expect(run.stderr.contains("descriptor_people_detection.json"))
        #expect(run.stderr.contains("descriptor_second_opinion.json"))
    }

    // MARK: 4. Where /panorama is

    @Test("WORKDIR /panorama + COPY . . (code at the package root, no src/) runs, and the log says which folder")
    func codeAtPackageRoot() async throws {
        let project = try PanoramaCLIProject(name: "dg-sample")
        defer { project.remove() }
        try project.writeGraphAndModel()
        // The developer guide's sample-apps Dockerfile shape.
        try project.writeCodePackage(
            app: """
                import os, panoramasdk
                node = panoramasdk.node()
                with open("/panorama/labels.txt") as f:
                    labels = f.read().split()
                node.publish({"labels": labels, "cwd_has_app": os.path.exists("/panorama/app.py")})
                while True:
                    node.inputs.video_in.get()
                """, atRoot: true,
            dockerfile: """
                FROM public.ecr.aws/panorama/panorama-application
                WORKDIR /panorama
                COPY . .
                RUN pip install --no-cache-dir --upgrade pip
                """)
        try project.write("packages/123456789012-code-1.0/labels.txt", "background person\n")
        let run = try project.run(["--camera", "camera_node=\(Repo.sampleVideo.path)", "--model", Self.model])
        #expect(run.waitForExit(timeout: 300) == 0, "stderr:\n\(run.stderr.suffix(3000))")
        let payload = try #require(run.events.first?["payload"] as? [String: Any], "\(run.stderr.suffix(3000))")
        #expect(payload["labels"] as? [String] == ["background", "person"])
        #expect(payload["cwd_has_app"] as? Bool == true)
        #expect(
            run.stderr.contains("/panorama is packages/123456789012-code-1.0/ (from its Dockerfile line 3: COPY . .)"),
            "stderr:\n\(run.stderr.prefix(3000))")
    }

    // MARK: 7. Ports

    @Test("an app serving HTTP on 8080 with a routing rule runs beside the live view; a taken port names its holder")
    func appOnPort8080() async throws {
        try #require(Self.isFree(8080) && Self.isFree(7450), "ports 8080 and 7450 must be free for this test")
        let project = try PanoramaCLIProject(name: "web-app")
        defer { project.remove() }
        try project.writeGraphAndModel(routingRule: (8080, 8080))
        try project.writeCodePackage(
            app: """
                import threading, http.server, panoramasdk
                class Hello(http.server.BaseHTTPRequestHandler):
                    def do_GET(self):
                        body = b"hello from the app"
                        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
                        self.wfile.write(body)
                    def log_message(self, *a): pass
                server = http.server.HTTPServer(("0.0.0.0", 8080), Hello)
                threading.Thread(target=server.serve_forever, daemon=True).start()
                node = panoramasdk.node()
                while True:
                    node.inputs.video_in.get()
                """, inboundPorts: [8080])
        // The live view keeps its default port (no --http): it must not be 8080.
        let run = try project.run(
            ["--camera", "camera_node=\(Repo.sampleVideo.path)", "--model", Self.model, "--realtime"], http: nil)
        defer { _ = run.interrupt() }
        var app: String?
        var status: String?
        for _ in 0..<300 where app == nil || status == nil {
            app = app ?? Self.get("http://127.0.0.1:8080/")
            status = status ?? Self.get("http://127.0.0.1:7450/status")
            usleep(100_000)
        }
        #expect(app == "hello from the app", "stderr:\n\(run.stderr.suffix(3000))")
        #expect(status?.contains("\"cameras\"") == true, "stderr:\n\(run.stderr.suffix(3000))")
        #expect(!run.stderr.contains("Address already in use"))

        // A second run on the same project cannot have the live view's port: the message names who holds it.
        let second = try project.run(
            ["--camera", "camera_node=\(Repo.sampleVideo.path)", "--model", Self.model], http: nil)
        #expect(second.waitForExit(timeout: 60) == 1)
        #expect(second.stderr.contains("7450"), "\(second.stderr.suffix(2000))")
        #expect(second.stderr.contains("held by vantage"), "\(second.stderr.suffix(2000))")
        #expect(second.stderr.contains("--http"))
    }

    @Test("a routing rule into the live view's port is refused with the flag to move it")
    func ruleIntoLiveView() async throws {
        let project = try PanoramaCLIProject(name: "clash")
        defer { project.remove() }
        try project.writeGraphAndModel(routingRule: (8081, 8765))
        try project.writeCodePackage(app: Self.detectingApp, inboundPorts: [8765])
        let run = try project.run(
            ["--camera", "camera_node=\(Repo.sampleVideo.path)", "--model", Self.model, "--http", "127.0.0.1:8765"],
            http: nil)
        #expect(run.waitForExit(timeout: 60) == 1)
        #expect(
            run.stderr.contains(
                "code node code_node listens on port 8765 (its containerPort), which is the live view's"),
            "\(run.stderr.suffix(2000))")
        #expect(run.stderr.contains("--http"))
    }

    // MARK: 8. /panorama outside Python

    @Test("a bash entry and the programs it starts see /panorama and /opt/aws/panorama/storage as real folders")
    func bashEntrySeesPanorama() async throws {
        let project = try PanoramaCLIProject(name: "shell-app")
        defer { project.remove() }
        try project.writeGraphAndModel()
        try project.writeCodePackage(
            app: """
                import subprocess, panoramasdk
                node = panoramasdk.node()
                # Native programs, not Python's file functions: only a mount namespace makes these paths real.
                labels = subprocess.check_output(["cat", "/panorama/model/labels.txt"]).decode().split()
                stored = subprocess.check_output(["cat", "/opt/aws/panorama/storage/setup-ran"]).decode().strip()
                node.publish({"labels": labels, "stored": stored})
                while True:
                    node.inputs.video_in.get()
                """, entry: ("bash", "/panorama/setup.sh"))
        try project.write("packages/123456789012-code-1.0/src/model/labels.txt", "background person\n")
        try project.write(
            "packages/123456789012-code-1.0/src/setup.sh",
            """
            #!/bin/bash
            set -e
            test -f /panorama/model/labels.txt
            echo yes > /opt/aws/panorama/storage/setup-ran
            exec python3 /panorama/app.py
            """)
        let run = try project.run(["--camera", "camera_node=\(Repo.sampleVideo.path)", "--model", Self.model])
        #expect(run.waitForExit(timeout: 300) == 0, "stderr:\n\(run.stderr.suffix(3000))")
        let payload = try #require(run.events.first?["payload"] as? [String: Any], "\(run.stderr.suffix(3000))")
        #expect(payload["labels"] as? [String] == ["background", "person"])
        #expect(payload["stored"] as? String == "yes")
        #expect(!FileManager.default.fileExists(atPath: "/panorama"), "the host must not get a /panorama folder")
    }

    @Test("without a mount namespace, a bash entry that needs /panorama stops at start saying what to install")
    func bashEntryWithoutNamespace() async throws {
        let project = try PanoramaCLIProject(name: "shell-app")
        defer { project.remove() }
        try project.writeGraphAndModel()
        try project.writeCodePackage(app: Self.detectingApp, entry: ("bash", "/panorama/setup.sh"))
        try project.write("packages/123456789012-code-1.0/src/setup.sh", "exec python3 /panorama/app.py\n")
        // A machine without bubblewrap.
        let run = try project.run(
            ["--camera", "camera_node=\(Repo.sampleVideo.path)", "--model", Self.model],
            environment: ["VANTAGE_BWRAP": "/nonexistent/bwrap"])
        #expect(run.waitForExit(timeout: 60) == 1)
        #expect(run.stderr.contains("needs /panorama to exist for every process"), "\(run.stderr.suffix(2000))")
        #expect(run.stderr.contains("apt-get install bubblewrap"))
    }

    // MARK: 9. The end of a file

    @Test("an app that swallows the end in a bare except: is stopped after the grace period; its log is not flooded")
    func bareExceptLoopEnds() async throws {
        let project = try PanoramaCLIProject(name: "spinner")
        defer { project.remove() }
        try project.writeGraphAndModel()
        // The samples' main loop shape: every exception, SystemExit included, caught and logged.
        try project.writeCodePackage(
            app: """
                import logging, sys, panoramasdk
                logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(message)s")
                log = logging.getLogger("app")
                node = panoramasdk.node()
                frames = 0
                while True:
                    try:
                        streams = node.inputs.video_in.get()
                        frames += len(streams)
                        node.outputs.video_out.put(streams)
                    except:
                        log.error("Exception while processing frames")
                        pass
                """)
        let started = Date()
        let run = try project.run(
            ["--camera", "camera_node=\(Repo.sampleVideo.path)", "--model", Self.model, "--json-summary"])
        let status = run.waitForExit(timeout: 180)
        #expect(status == 0, "stderr:\n\(run.stderr.suffix(3000))")
        #expect(Date().timeIntervalSince(started) < 120)
        let spins = run.stderr.components(separatedBy: "ERROR Exception while processing frames").count - 1
        // At most 3 a second through the 10 s grace period (and the stop's 3 s), the rest counted.
        #expect(spins > 0 && spins <= 45, "\(spins) lines")
        #expect(run.stderr.contains("more times in the last"), "\(run.stderr.suffix(2000))")
        #expect(run.stderr.contains("is still running: stopping it"))
        let summaryLine = try #require(run.stderr.split(separator: "\n").last { $0.hasPrefix("{") })
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(summaryLine.utf8)) as? [String: Any])
        #expect((summary["frames"] as? NSNumber)?.intValue == 795)
        #expect((summary["appRestarts"] as? NSNumber)?.intValue == 0)
    }

    // MARK: 10. Models called only with arrays

    @Test("a model with a fixed batch of 4, called with arrays of 4 crops (the pose sample's shape), loads and runs")
    func batchOfFourModel() async throws {
        let project = try PanoramaCLIProject(name: "pose")
        defer { project.remove() }
        try project.writeStandardGraph()
        try project.writeModelPackage(shape: [4, 3, 32, 24], framework: "PYTORCH")
        let model = try Self.writePoseLikeModel(in: project.root)
        try project.writeCodePackage(
            app: """
                import numpy as np, panoramasdk
                node = panoramasdk.node()
                streams = node.inputs.video_in.get()
                crops = np.zeros((4, 3, 32, 24), np.float32)
                for b in range(4):
                    crops[b] += b
                (means,) = node.call({"data": crops}, "model_node")
                try:
                    node.call(streams[0], "model_node")
                    frame = "accepted"
                except Exception as e:
                    frame = str(e)
                node.publish({"shape": list(means.shape), "means": means[:, 0].tolist(), "frame": frame})
                while True:
                    node.inputs.video_in.get()
                """)
        let run = try project.run([
            "--camera", "camera_node=\(Repo.sampleVideo.path)", "--model", "model_node=\(model.path)",
        ])
        #expect(run.waitForExit(timeout: 300) == 0, "stderr:\n\(run.stderr.suffix(3000))")
        let payload = try #require(run.events.first?["payload"] as? [String: Any], "\(run.stderr.suffix(3000))")
        #expect(payload["shape"] as? [Int] == [4, 3])
        #expect(payload["means"] as? [Double] == [0, 1, 2, 3])
        #expect((payload["frame"] as? String)?.contains("fixed batch of 4") == true, "\(payload)")
    }

    /// An OpenVINO IR with a fixed batch of 4: `[4,3,32,24]` → the mean of each image's channels, `[4,3]`.
    static func writePoseLikeModel(in folder: URL) throws -> URL {
        let dims = "<dim>4</dim><dim>3</dim><dim>32</dim><dim>24</dim>"
        var axes = Data()
        for axis: Int64 in [2, 3] { withUnsafeBytes(of: axis.littleEndian) { axes.append(contentsOf: $0) } }
        let layers = [
            #"<layer id="0" name="input" type="Parameter" version="opset1"><data shape="4,3,32,24" element_type="f32"/>"#
                + #"<output><port id="0" precision="FP32" names="input">\#(dims)</port></output></layer>"#,
            #"<layer id="1" name="axes" type="Const" version="opset1"><data element_type="i64" shape="2" offset="0" "#
                + #"size="16"/><output><port id="0" precision="I64"><dim>2</dim></port></output></layer>"#,
            #"<layer id="2" name="pool" type="ReduceMean" version="opset1"><data keep_dims="false"/><input>"#
                + #"<port id="0" precision="FP32">\#(dims)</port><port id="1" precision="I64"><dim>2</dim></port>"#
                + #"</input><output><port id="2" precision="FP32" names="pooled"><dim>4</dim><dim>3</dim></port>"#
                + #"</output></layer>"#,
            #"<layer id="3" name="out" type="Result" version="opset1"><input><port id="0" precision="FP32">"#
                + #"<dim>4</dim><dim>3</dim></port></input></layer>"#,
        ]
        let edges = [(0, 0, 2, 0), (1, 0, 2, 1), (2, 2, 3, 0)].map {
            #"<edge from-layer="\#($0.0)" from-port="\#($0.1)" to-layer="\#($0.2)" to-port="\#($0.3)"/>"#
        }
        let xml =
            #"<?xml version="1.0"?><net name="pose_like" version="11"><layers>"# + layers.joined()
            + "</layers><edges>" + edges.joined() + "</edges></net>"
        let file = folder.appendingPathComponent("pose_like.xml")
        try Data(xml.utf8).write(to: file)
        try axes.write(to: folder.appendingPathComponent("pose_like.bin"))
        return file
    }

    // MARK: 11. Logs

    @Test("RotatingFileHandler's rollover does not replay app.log.1: every line reaches the run's log once")
    func rotatedLogIsNotReplayed() async throws {
        let project = try PanoramaCLIProject(name: "chatty")
        defer { project.remove() }
        try project.writeGraphAndModel()
        try project.writeCodePackage(
            app: """
                import logging, time, panoramasdk
                from logging.handlers import RotatingFileHandler
                log = logging.getLogger("app")
                log.setLevel(logging.INFO)
                handler = RotatingFileHandler("/opt/aws/panorama/logs/app.log", maxBytes=600, backupCount=5)
                handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
                log.addHandler(handler)
                node = panoramasdk.node()
                for i in range(120):
                    log.info("numbered line %03d of the app", i)
                    if i % 10 == 0:
                        time.sleep(0.3)
                node.publish({"done": True})
                while True:
                    node.inputs.video_in.get()
                """)
        let run = try project.run([
            "--camera", "camera_node=\(Repo.sampleVideo.path)", "--model", Self.model, "--realtime",
        ])
        defer { _ = run.interrupt() }
        // The lines are written within ~4 s; the collector reads once a second.
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline && !run.stderr.contains("numbered line 119") { usleep(200_000) }
        usleep(1_500_000)
        let text = run.stderr
        for i in 0..<120 {
            let count = text.components(separatedBy: String(format: "numbered line %03d of the app", i)).count - 1
            #expect(count == 1, "line \(i) appears \(count) times")
        }
    }

    @Test("two apps both named my-app, run at once, each see only their own log lines")
    func logsPerInstance() async throws {
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("vantage-home-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: home) }
        var runs: [(PanoramaCLIProject, VantageRun)] = []
        defer { for (project, run) in runs { _ = run.interrupt(); project.remove() } }
        for word in ["ALPHA", "BRAVO"] {
            let project = try PanoramaCLIProject(name: "my-app")
            try project.writeGraphAndModel()
            try project.writeCodePackage(
                app: """
                    import logging, time, panoramasdk
                    from logging.handlers import RotatingFileHandler
                    log = logging.getLogger("app")
                    log.setLevel(logging.INFO)
                    log.addHandler(RotatingFileHandler("/opt/aws/panorama/logs/app.log"))
                    node = panoramasdk.node()
                    for i in range(20):
                        log.info("this is \(word) speaking")
                        time.sleep(0.25)
                    while True:
                        node.inputs.video_in.get()
                    """)
            // No --state-dir: the default one, under a HOME of the test's own.
            let run = try project.run(
                ["--camera", "camera_node=\(Repo.sampleVideo.path)", "--model", Self.model, "--realtime"],
                stateDirectory: nil, environment: ["HOME": home.path])
            runs.append((project, run))
        }
        let deadline = Date().addingTimeInterval(90)
        while Date() < deadline
            && !(runs[0].1.stderr.contains("this is ALPHA") && runs[1].1.stderr.contains("this is BRAVO"))
        {
            usleep(200_000)
        }
        usleep(3_000_000)
        #expect(runs[0].1.stderr.contains("this is ALPHA"), "\(runs[0].1.stderr.suffix(2000))")
        #expect(runs[1].1.stderr.contains("this is BRAVO"), "\(runs[1].1.stderr.suffix(2000))")
        #expect(!runs[0].1.stderr.contains("this is BRAVO"))
        #expect(!runs[1].1.stderr.contains("this is ALPHA"))
    }

    // MARK: Helpers

    static var model: String { "model_node=\(Repo.personDetector.path)" }

    /// Counts people on three frames with the model and publishes the counts; reads to the end of the video.
    static let detectingApp = """
        import cv2, numpy as np, panoramasdk
        node = panoramasdk.node()
        n = 0
        while True:
            streams = node.inputs.video_in.get()
            for s in streams:
                n += 1
                if n in (150, 200, 250):
                    x = np.expand_dims(cv2.cvtColor(cv2.resize(s.image, (300, 300)), cv2.COLOR_BGR2RGB), 0)
                    boxes, classes, scores, count = node.call({"data": x}, "model_node")
                    people = int(sum(1 for i in range(int(count[0])) if classes[0][i] == 1 and scores[0][i] > 0.5))
                    node.publish({"frame": n, "people": people})
            node.outputs.video_out.put(streams)
        """

    static func isFree(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = in_port_t(UInt16(port).bigEndian)
        sin.sin_addr.s_addr = in_addr_t(UInt32(0x7F00_0001).bigEndian)
        return withUnsafePointer(to: &sin) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        } == 0
    }

    static func get(_ url: String) -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["-s", "--max-time", "2", url]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return process.terminationStatus == 0 && !data.isEmpty ? String(decoding: data, as: UTF8.self) : nil
    }
}

/// A panorama-cli project as it is found in git: `graphs/`, `packages/`, no `assets/` (panorama-cli's `.gitignore`
/// leaves it out), package folders named `<account>-<package>-<version>`.
struct PanoramaCLIProject {
    let root: URL
    let name: String

    init(name: String) throws {
        self.name = name
        root = FileManager.default.temporaryDirectory.appendingPathComponent("pano-\(UUID().uuidString)/\(name)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(at: root.deletingLastPathComponent()) }

    func write(_ relative: String, _ text: String) throws {
        let url = root.appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
    }

    /// The graph panorama-cli's add-panorama-package and a user's edges make: an abstract camera, the code node, the
    /// model node(s), the HDMI output.
    func writeStandardGraph(
        models: [(node: String, interface: String)] = [("model_node", "123456789012::model.model_asset_interface")],
        modelPackage: String = "123456789012::model", routingRule: (host: Int, container: Int)? = nil
    ) throws {
        let modelNodes = models.map {
            "{\"name\": \"\($0.node)\", \"interface\": \"\($0.interface)\", \"overridable\": false, "
                + "\"launch\": \"onAppStart\"}"
        }
        let rules =
            routingRule.map {
                ", \"networkRoutingRules\": [{\"node\": \"code_node\", \"containerPort\": \($0.container), "
                    + "\"hostPort\": \($0.host), \"decorator\": {\"title\": \"web\", \"description\": \"web\"}}]"
            } ?? ""
        try write(
            "graphs/\(name)/graph.json",
            """
            {
                "nodeGraph": {
                    "envelopeVersion": "2021-01-01",
                    "packages": [
                        {"name": "123456789012::code", "version": "1.0"},
                        {"name": "\(modelPackage)", "version": "1.0"},
                        {"name": "panorama::abstract_rtsp_media_source", "version": "1.0"},
                        {"name": "panorama::hdmi_data_sink", "version": "1.0"}
                    ],
                    "nodes": [
                        {"name": "code_node", "interface": "123456789012::code.code_asset_interface",
                         "overridable": false, "launch": "onAppStart"},
                        \(modelNodes.joined(separator: ",\n"            )),
                        {"name": "camera_node", "interface": "panorama::abstract_rtsp_media_source.rtsp_v1_interface",
                         "overridable": true, "launch": "onAppStart",
                         "decorator": {"title": "Camera camera_node", "description": "Default description for camera camera_node"}},
                        {"name": "output_node", "interface": "panorama::hdmi_data_sink.hdmi0", "overridable": true,
                         "launch": "onAppStart"}
                    ],
                    "edges": [
                        {"producer": "camera_node.video_out", "consumer": "code_node.video_in"},
                        {"producer": "code_node.video_out", "consumer": "output_node.video_in"}
                    ]\(rules)
                }
            }
            """)
    }

    /// The standard graph and its one model package, as most of these projects have them.
    func writeGraphAndModel(routingRule: (host: Int, container: Int)? = nil) throws {
        try writeStandardGraph(routingRule: routingRule)
        try writeModelPackage()
    }

    /// A code package as `panorama-cli create-package --type Container` leaves it before `build-container`:
    /// `"assets": []` while the interface already names `code_asset`, descriptor.json with the Panorama image's
    /// `python3.8`, a Dockerfile, and the code in `src/` (or, `atRoot`, at the package root).
    func writeCodePackage(
        app: String, atRoot: Bool = false, dockerfile: String? = nil, inboundPorts: [Int] = [],
        entry: (path: String, name: String) = ("python3.8", "/panorama/app.py")
    ) throws {
        let folder = "packages/123456789012-code-1.0"
        let network =
            inboundPorts.isEmpty
            ? ""
            : ", \"network\": {\"inboundPorts\": [" + inboundPorts.map { "{\"port\": \($0)}" }.joined(separator: ", ")
                + "]}"
        try write(
            "\(folder)/package.json",
            """
            {
                "nodePackage": {
                    "envelopeVersion": "2021-01-01",
                    "name": "code",
                    "version": "1.0",
                    "description": "Default description for package code",
                    "assets": [],
                    "interfaces": [
                        {
                            "name": "code_asset_interface",
                            "category": "business_logic",
                            "asset": "code_asset",
                            "inputs": [{"name": "video_in", "type": "media"}],
                            "outputs": [{"description": "Video stream output", "name": "video_out", "type": "media"}]\(network)
                        }
                    ]
                }
            }
            """)
        try write(
            "\(folder)/descriptor.json",
            """
            {
                "runtimeDescriptor": {
                    "envelopeVersion": "2021-01-01",
                    "entry": {
                        "path": "\(entry.path)",
                        "name": "\(entry.name)"
                    }
                }
            }
            """)
        try write(
            "\(folder)/Dockerfile",
            dockerfile ?? "FROM public.ecr.aws/panorama/panorama-application\nCOPY src /panorama\n")
        try write("\(folder)/\(atRoot ? "" : "src/")app.py", app + "\n")
    }

    /// A model package as `panorama-cli add-raw-model` leaves it in git: the asset's archive and descriptor named by
    /// SHA-256 in `assets/` (absent), the descriptor kept in the package folder as descriptor.json.
    func writeModelPackage(shape: [Int] = [1, 300, 300, 3], framework: String = "TENSORFLOW") throws {
        let descriptor = """
            {
                "mlModelDescriptor": {
                    "envelopeVersion": "2021-01-01",
                    "framework": "\(framework)",
                    "frameworkVersion": "1.15",
                    "precisionMode": "FP16",
                    "inputs": [{"name": "data", "shape": \(shape)}]
                }
            }
            """
        try write("packages/123456789012-model-1.0/descriptor.json", descriptor)
        try write(
            "packages/123456789012-model-1.0/package.json",
            """
            {
                "nodePackage": {
                    "envelopeVersion": "2021-01-01",
                    "name": "model",
                    "version": "1.0",
                    "description": "Default description for package model",
                    "assets": [
                        {
                            "name": "model_asset",
                            "implementations": [
                                {
                                    "type": "model",
                                    "assetUri": "\(sha256("neo archive")).tar.gz",
                                    "descriptorUri": "\(sha256(descriptor)).json"
                                }
                            ]
                        }
                    ],
                    "interfaces": [
                        {
                            "name": "model_asset_interface",
                            "category": "ml_model",
                            "asset": "model_asset",
                            "inputs": [{"name": "video_in", "type": "media"}],
                            "outputs": [{"name": "video_out", "type": "media"}]
                        }
                    ]
                }
            }
            """)
    }

    /// Runs the project. `http: nil` leaves the live view at its default; `stateDirectory: nil` the default state.
    func run(
        _ arguments: [String], http: Bool? = false, stateDirectory: URL? = Repo.sharedState,
        environment: [String: String] = [:]
    ) throws -> VantageRun {
        try VantageRun(
            app: root, ["--python-cache", Repo.pythonCache.path] + arguments, http: http,
            stateDirectory: stateDirectory, environment: environment)
    }
}

/// Hex SHA-256 of a string's UTF-8 bytes (what panorama-cli names assets by), with the system's sha256sum.
func sha256(_ text: String) -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
    let input = Pipe()
    let output = Pipe()
    process.standardInput = input
    process.standardOutput = output
    try? process.run()
    input.fileHandleForWriting.write(Data(text.utf8))
    try? input.fileHandleForWriting.close()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(String(decoding: data, as: UTF8.self).prefix(64))
}
