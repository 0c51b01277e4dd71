import Foundation
import Testing

/// AWS Panorama applications in Python, run unchanged by `vantage run`: the real binary, the real `panoramasdk`
/// over the app protocol, real decoding and real inference.
@Suite(
    "Panorama Python applications", .serialized,
    .enabled(if: Repo.isSetUp && Repo.hasPythonPackages, "needs scripts/setup and a build (make test does both)"))
struct PanoramaPythonTests {
    @Test("the Python people counter counts the people in the sample video, logs to /opt/aws/panorama/logs, exits 0")
    func examplePlaysFile() async throws {
        let logFile = Repo.sharedState.appendingPathComponent("code_node/logs/app.log")
        let logBefore = (try? Data(contentsOf: logFile))?.count ?? 0
        let run = try VantageRun(
            app: Repo.panoramaPeopleCounter,
            [
                "--camera", "camera_node=\(Repo.sampleVideo.path)", "--json-summary", "--python-cache",
                Repo.pythonCache.path,
            ],
            http: false)
        let status = try #require(run.waitForExit(timeout: 300), "did not finish; stderr:\n\(run.stderr.suffix(3000))")
        #expect(status == 0, "stderr:\n\(run.stderr.suffix(3000))")
        let summaryLine = try #require(run.stderr.split(separator: "\n").last { $0.hasPrefix("{") })
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(summaryLine.utf8)) as? [String: Any])
        #expect((summary["frames"] as? NSNumber)?.intValue == 795)
        #expect((summary["dropped"] as? NSNumber)?.intValue == 0)
        #expect((summary["appRestarts"] as? NSNumber)?.intValue == 0)

        // Real detections: around frame 200 three to seven people are in view (median of five frames).
        let payloads = run.events.compactMap { $0["payload"] as? [String: Any] }
        #expect(payloads.count >= 10, "events: \(payloads.count)")
        let at200 = payloads.last { (($0["frame"] as? NSNumber)?.intValue ?? 0) <= 200 }
        let count = try #require((at200?["count"] as? NSNumber)?.intValue)
        #expect((3...7).contains(count), "count at frame 200: \(count)")
        #expect(payloads.allSatisfy { $0["site"] as? String == "lobby" && $0["stream"] as? String == "camera_node" })
        // The first event has a snapshot.
        let snapshot = try #require((run.events.first?["snapshot"] as? [String: Any])?["file"] as? String)
        #expect(FileManager.default.fileExists(atPath: snapshot))

        // The app's RotatingFileHandler('/opt/aws/panorama/logs/app.log') wrote into the node's logs folder, and
        // the runtime collected the lines into its own log.
        let appLog = String(decoding: try Data(contentsOf: logFile).dropFirst(logBefore), as: UTF8.self)
        #expect(appLog.contains("INITIALIZING APPLICATION"))
        #expect(appLog.contains("processed 795 batches"), "\(appLog.suffix(500))")
        #expect(run.stderr.contains("PROCESSING STREAMS"), "the runtime did not collect app.log")
    }

    @Test("a parameter of every type reaches the code as its Python type; --param overrides each")
    func parametersOfEveryType() async throws {
        let run = try VantageRun(
            app: Repo.panoramaPeopleCounter,
            [
                "--camera", "camera_node=\(Repo.sampleVideo.path)", "--python-cache", Repo.pythonCache.path,
                "--param", "threshold=0.7", "--param", "max_people=2", "--param", "draw_boxes=false",
                "--param", "site=dock 3",
            ], http: false)
        #expect(run.waitForExit(timeout: 300) == 0, "stderr:\n\(run.stderr.suffix(3000))")
        #expect(
            run.stderr.contains("parameters: threshold=0.7 max_people=2 draw_boxes=False site='dock 3'"),
            "stderr:\n\(run.stderr.suffix(3000))")
        let payloads = run.events.compactMap { $0["payload"] as? [String: Any] }
        #expect(!payloads.isEmpty && payloads.allSatisfy { $0["site"] as? String == "dock 3" })
        #expect(payloads.allSatisfy { ($0["maxPeople"] as? NSNumber)?.intValue == 2 })
        // Above two people: an over_threshold event.
        #expect(payloads.contains { $0["type"] as? String == "over_threshold" })
    }

    @Test("an overrides document replacing the camera with two camera packages delivers both in one list")
    func multiCameraList() async throws {
        let app = try Repo.copyOfPanoramaPeopleCounter()
        defer { try? FileManager.default.removeItem(at: app) }
        // Two camera packages as Panorama's CreateNodeFromTemplateJob made them (here both stream the sample file).
        for name in ["lobby", "dock"] {
            let folder = app.appendingPathComponent("packages/123456789012-\(name)-1.0")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try """
            {"nodePackage": {"envelopeVersion": "2021-01-01", "name": "\(name)", "version": "1.0",
              "assets": [{"name": "\(name)", "implementations": [{"type": "system",
                          "assetUri": "source/video/camera/rtsp/source_rtsp"}]}],
              "interfaces": [{"name": "\(name)", "category": "media_source", "asset": "\(name)",
                "inputs": [{"name": "username", "type": "string", "default": "viewer"},
                           {"name": "password", "type": "string", "default": "s3cret"},
                           {"name": "streamUrl", "type": "string", "default": "\(Repo.sampleVideo.path)"}],
                "outputs": [{"name": "video_out", "type": "media"}]}]}}
            """.write(to: folder.appendingPathComponent("package.json"), atomically: true, encoding: .utf8)
        }
        let overrides = app.appendingPathComponent("overrides.json")
        try """
        {"nodeGraphOverrides": {"envelopeVersion": "2021-01-01",
          "packages": [{"name": "123456789012::lobby", "version": "1.0"},
                       {"name": "123456789012::dock", "version": "1.0"}],
          "nodes": [{"name": "lobby", "interface": "123456789012::lobby.lobby"},
                    {"name": "dock", "interface": "123456789012::dock.dock"}],
          "nodeOverrides": [{"replace": "camera_node", "with": [{"name": "lobby"}, {"name": "dock"}]}]}}
        """.write(to: overrides, atomically: true, encoding: .utf8)
        let run = try VantageRun(
            app: app, ["--overrides", overrides.path, "--python-cache", Repo.pythonCache.path], http: false)
        #expect(run.waitForExit(timeout: 400) == 0, "stderr:\n\(run.stderr.suffix(3000))")
        let streams = Set(run.events.compactMap { ($0["payload"] as? [String: Any])?["stream"] as? String })
        #expect(streams == ["lobby", "dock"], "\(streams)")
        #expect(!run.stderr.contains("s3cret"))
    }

    @Test("call() in both argument orders, with a dict, a bare array and a media, gives the same detections")
    func callStyles() async throws {
        let app = try Repo.copyOfPanoramaPeopleCounter()
        defer { try? FileManager.default.removeItem(at: app) }
        try Self.replaceApp(
            in: app,
            with: """
                import sys, cv2, numpy as np, panoramasdk
                node = panoramasdk.node()
                streams = node.inputs.video_in.get(timeout=30)
                img = streams[0].image
                x = np.expand_dims(cv2.cvtColor(cv2.resize(img, (300, 300)), cv2.COLOR_BGR2RGB), 0)
                a = node.call({"data": x}, "model_node")
                b = node.call("model_node", {"data": x})
                c = node.call(x, "model_node")
                d = node.call(streams[0], "model_node")
                try:
                    node.call({"data": x}, "no_such_model")
                    unknown = "no error"
                except KeyError as e:
                    unknown = "KeyError " + str(e)
                def people(r):
                    boxes, classes, scores, count = r
                    return int(sum(1 for i in range(int(count[0])) if classes[0][i] == 1 and scores[0][i] > 0.5))
                node.publish({"types": [type(r).__name__ for r in (a, b, c, d)],
                              "shapes": [list(t.shape) for t in a], "dtypes": [str(t.dtype) for t in a],
                              "people": [people(r) for r in (a, b, c, d)],
                              "same": bool(all(np.array_equal(a[i], b[i]) and np.array_equal(a[i], c[i]) for i in range(4))),
                              "unknown": unknown})
                while True:  # to the end of the video: get() raises SystemExit(0) there
                    node.inputs.video_in.get()
                """)
        let run = try VantageRun(
            app: app, ["--camera", "camera_node=\(Repo.sampleVideo.path)", "--python-cache", Repo.pythonCache.path],
            http: false)
        #expect(run.waitForExit(timeout: 120) == 0, "stderr:\n\(run.stderr.suffix(3000))")
        let payload = try #require(
            run.events.first?["payload"] as? [String: Any], "no event; stderr:\n\(run.stderr.suffix(3000))")
        #expect(payload["types"] as? [String] == ["tuple", "tuple", "tuple", "tuple"])
        #expect(payload["same"] as? Bool == true)
        #expect(payload["shapes"] as? [[Int]] == [[1, 100, 4], [1, 100], [1, 100], [1]])
        #expect(payload["dtypes"] as? [String] == ["float32", "float32", "float32", "float32"])
        let people = try #require(payload["people"] as? [Int])
        #expect(people.count == 4 && people[0] >= 1 && people.allSatisfy { abs($0 - people[0]) <= 1 }, "\(people)")
        #expect((payload["unknown"] as? String)?.hasPrefix("KeyError") == true)
        #expect((payload["unknown"] as? String)?.contains("model_node") == true)
    }

    @Test("a Python app that crashes is restarted and goes on counting")
    func crashingAppRestarts() async throws {
        let app = try Repo.copyOfPanoramaPeopleCounter()
        defer { try? FileManager.default.removeItem(at: app) }
        let marker = FileManager.default.temporaryDirectory.appendingPathComponent("crashed-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: marker) }
        let source = app.appendingPathComponent(Self.appPath)
        var code = try String(contentsOf: source, encoding: .utf8)
        code = code.replacingOccurrences(
            of: "        self.outputs.video_out.put(streams)\n",
            with: """
                        self.outputs.video_out.put(streams)
                        if self.frames == 30 and not __import__("os").path.exists("\(marker.path)"):
                            open("\(marker.path)", "w").close()
                            __import__("os")._exit(3)

                """)
        try code.write(to: source, atomically: true, encoding: .utf8)
        let run = try VantageRun(
            app: app,
            [
                "--camera", "camera_node=\(Repo.sampleVideo.path)", "--json-summary", "--python-cache",
                Repo.pythonCache.path,
            ],
            http: false)
        #expect(run.waitForExit(timeout: 300) == 0, "stderr:\n\(run.stderr.suffix(3000))")
        #expect(FileManager.default.fileExists(atPath: marker.path))
        #expect(run.stderr.contains("exited with status 3"), "stderr:\n\(run.stderr.suffix(3000))")
        let summaryLine = try #require(run.stderr.split(separator: "\n").last { $0.hasPrefix("{") })
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(summaryLine.utf8)) as? [String: Any])
        #expect((summary["appRestarts"] as? NSNumber)?.intValue == 1)
        // After the restart it went on: events from late in the video.
        let frames = run.events.compactMap { (($0["payload"] as? [String: Any])?["frame"] as? NSNumber)?.intValue }
        #expect(frames.contains { $0 > 300 }, "\(frames)")
    }

    @Test("requirements.txt and the Dockerfile's pip lines are installed into a cached virtual environment")
    func packageDependencies() async throws {
        let app = try Repo.copyOfPanoramaPeopleCounter()
        defer { try? FileManager.default.removeItem(at: app) }
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent(
            "vantage-pycache-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: cache) }
        let package = app.appendingPathComponent("packages/123456789012-people_counter_app-1.0")
        // Two local wheels, so the test needs no network: one from requirements.txt, one from the Dockerfile.
        try Self.writeWheel(
            named: "vantage_hello", value: "hello from requirements", into: package.appendingPathComponent("src/wheels")
        )
        try Self.writeWheel(
            named: "vantage_docker", value: "hello from the Dockerfile",
            into: package.appendingPathComponent("src/wheels"))
        try "./wheels/vantage_hello-1.0-py3-none-any.whl\n".write(
            to: package.appendingPathComponent("src/requirements.txt"), atomically: true, encoding: .utf8)
        try """
        FROM public.ecr.aws/panorama/panorama-application
        COPY src /panorama
        RUN pip3 install /panorama/wheels/vantage_docker-1.0-py3-none-any.whl
        RUN apt-get update && apt-get install -y libgl1
        """.write(to: package.appendingPathComponent("Dockerfile"), atomically: true, encoding: .utf8)
        try Self.replaceApp(
            in: app,
            with: """
                import panoramasdk, vantage_hello, vantage_docker
                node = panoramasdk.node()
                node.inputs.video_in.get(timeout=30)
                node.publish({"hello": vantage_hello.VALUE, "docker": vantage_docker.VALUE})
                while True:
                    node.inputs.video_in.get()
                """)
        for attempt in 1...2 {
            let run = try VantageRun(
                app: app, ["--camera", "camera_node=\(Repo.sampleVideo.path)", "--python-cache", cache.path],
                http: false)
            #expect(run.waitForExit(timeout: 240) == 0, "stderr:\n\(run.stderr.suffix(3000))")
            let payload = try #require(
                run.events.first?["payload"] as? [String: Any], "no event; stderr:\n\(run.stderr.suffix(3000))")
            #expect(payload["hello"] as? String == "hello from requirements")
            #expect(payload["docker"] as? String == "hello from the Dockerfile")
            // The Dockerfile line Vantage cannot honour is reported with its line number.
            #expect(run.stderr.contains("Dockerfile:4"), "stderr:\n\(run.stderr.suffix(3000))")
            #expect(run.stderr.contains("apt-get"))
            if attempt == 1 {
                #expect(run.stderr.contains("installing the Python dependencies of code node code_node"))
            } else {
                #expect(
                    run.stderr.contains("using the cached Python environment"), "stderr:\n\(run.stderr.suffix(3000))")
                #expect(!run.stderr.contains("installing the Python dependencies"))
            }
        }
    }

    @Test("a requirement pip cannot install stops the run with a message naming the package and the fix")
    func badRequirement() async throws {
        let app = try Repo.copyOfPanoramaPeopleCounter()
        defer { try? FileManager.default.removeItem(at: app) }
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent(
            "vantage-pycache-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: cache) }
        try "./wheels/missing-1.0-py3-none-any.whl\n".write(
            to: app.appendingPathComponent("packages/123456789012-people_counter_app-1.0/src/requirements.txt"),
            atomically: true, encoding: .utf8)
        let run = try VantageRun(
            app: app, ["--camera", "camera_node=\(Repo.sampleVideo.path)", "--python-cache", cache.path], http: false)
        #expect(run.waitForExit(timeout: 120) == 1)
        #expect(run.stderr.contains("code node code_node: pip could not install the dependencies of requirements.txt"))
        #expect(run.stderr.contains("nothing was cached"))
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: cache.path)) ?? []).isEmpty)
    }

    @Test("a project with a missing package, or a bad edge, is rejected with a message naming it")
    func brokenProjects() throws {
        let app = try Repo.copyOfPanoramaPeopleCounter()
        defer { try? FileManager.default.removeItem(at: app) }
        let model = app.appendingPathComponent("packages/123456789012-people_detector-1.0")
        let moved = app.appendingPathComponent("people_detector-elsewhere")
        try FileManager.default.moveItem(at: model, to: moved)
        let missing = try VantageRun(app: app, ["--camera", "camera_node=\(Repo.sampleVideo.path)"], http: false)
        #expect(missing.waitForExit(timeout: 30) == 1)
        #expect(
            missing.stderr.contains(
                "package 123456789012::people_detector 1.0 has no folder packages/123456789012-people_detector-1.0/"))
        try FileManager.default.moveItem(at: moved, to: model)

        let graph = app.appendingPathComponent("graphs/panorama-people-counter/graph.json")
        let text = try String(contentsOf: graph, encoding: .utf8)
        try text.replacingOccurrences(of: "\"consumer\": \"code_node.site\"", with: "\"consumer\": \"code_node.sight\"")
            .write(to: graph, atomically: true, encoding: .utf8)
        let badEdge = try VantageRun(app: app, ["--camera", "camera_node=\(Repo.sampleVideo.path)"], http: false)
        #expect(badEdge.waitForExit(timeout: 30) == 1)
        #expect(badEdge.stderr.contains("edge site -> code_node.sight"), "stderr:\n\(badEdge.stderr.suffix(2000))")
        #expect(badEdge.stderr.contains("has no input port \"sight\""))
        try text.write(to: graph, atomically: true, encoding: .utf8)

        // The code is missing (panorama-cli left it only in the container image in assets/).
        try FileManager.default.removeItem(at: app.appendingPathComponent(Self.appPath))
        let noCode = try VantageRun(app: app, ["--camera", "camera_node=\(Repo.sampleVideo.path)"], http: false)
        #expect(noCode.waitForExit(timeout: 60) == 1)
        #expect(noCode.stderr.contains("code node code_node: its program"), "stderr:\n\(noCode.stderr.suffix(2000))")
        #expect(noCode.stderr.contains("vantage app import-panorama"))
    }

    @Test("a launch: onSignal camera starts paused; `vantage instances signal … resume` starts it")
    func onSignalCamera() async throws {
        let app = try Repo.copyOfPanoramaPeopleCounter()
        defer { try? FileManager.default.removeItem(at: app) }
        let graph = app.appendingPathComponent("graphs/panorama-people-counter/graph.json")
        let text = try String(contentsOf: graph, encoding: .utf8)
        let marked = text.replacingOccurrences(
            of: "\"overrideMandatory\": true,\n                \"launch\": \"onAppStart\"",
            with: "\"overrideMandatory\": true,\n                \"launch\": \"onSignal\"")
        #expect(marked != text)
        try marked.write(to: graph, atomically: true, encoding: .utf8)
        let run = try VantageRun(
            app: app,
            ["--camera", "camera_node=\(Repo.sampleVideo.path)", "--loop", "--python-cache", Repo.pythonCache.path])
        let port = try run.port()
        let (paused, status) = try await run.waitForStatus(timeout: 60) { $0.appPhase == "running" }
        #expect(paused, "\(status)")
        try await Task.sleep(for: .seconds(3))
        let stillPaused = try await run.status()
        #expect(stillPaused.cameraState("camera_node") == "paused", "\(stillPaused)")
        #expect(stillPaused.cameraCounter("camera_node", "decoded") == 0)
        #expect(run.events.isEmpty)

        let result = try await ChildProcess(
            Repo.vantageBinary,
            arguments: ["instances", "signal", "--runtime", "http://127.0.0.1:\(port)", "camera_node", "resume"]
        ).waitForExit(timeout: .seconds(30))
        #expect(result.exitStatus == 0, "\(result.stderr)")
        #expect(result.stdout.contains("\"paused\":false"))
        let (streaming, after) = try await run.waitForStatus(timeout: 60) {
            $0.cameraCounter("camera_node", "decoded") > 20 && !self.eventsEmpty(run)
        }
        #expect(streaming, "\(after)")

        let wrong = try await ChildProcess(
            Repo.vantageBinary,
            arguments: ["instances", "signal", "--runtime", "http://127.0.0.1:\(port)", "lobby", "resume"]
        ).waitForExit(timeout: .seconds(30))
        #expect(wrong.exitStatus == 1)
        #expect(wrong.stderr.contains("no camera node \"lobby\""), "\(wrong.stderr)")
        #expect(run.interrupt() == 0)
    }

    @Test("the Python people counter on a live RTSP camera: people detected, shown in the live view")
    func exampleOnRTSP() async throws {
        let camera = try await RTSPCamera()
        let run = try VantageRun(
            app: Repo.panoramaPeopleCounter,
            [
                "--camera", "camera_node=\(camera.url(credentials: "admin:s3cret"))", "--python-cache",
                Repo.pythonCache.path,
            ])
        let (ok, status) = try await run.waitForStatus(timeout: 90) {
            $0.cameraCounter("camera_node", "delivered") > 30 && $0.appNumber("framesPut") > 30
        }
        #expect(ok, "\(status)\nstderr:\n\(run.stderr.suffix(3000))")
        #expect(run.events.contains { (($0["payload"] as? [String: Any])?["count"] as? NSNumber)?.intValue ?? 0 > 0 })
        let (code, jpeg) = try await run.get("/streams/camera_node.jpg")
        #expect(code == 200 && jpeg.prefix(2) == Data([0xFF, 0xD8]))
        #expect(!run.stderr.contains("s3cret"))
        #expect(run.interrupt() == 0)
    }

    @Test("a project whose model is a Neo archive: the run says which file to supply; --model and import serve it")
    func neoProject() async throws {
        let app = try Repo.copyOfPanoramaPeopleCounter()
        defer { try? FileManager.default.removeItem(at: app) }
        // As panorama-cli leaves it: the model descriptor has only mlModelDescriptor, the model is a Neo archive.
        try """
        {"mlModelDescriptor": {"envelopeVersion": "2021-01-01", "framework": "TENSORFLOW",
                               "inputs": [{"name": "data", "shape": [1, 300, 300, 3]}]}}
        """.write(
            to: app.appendingPathComponent("packages/123456789012-people_detector-1.0/descriptor.json"),
            atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(
            at: app.appendingPathComponent("assets"), withIntermediateDirectories: true)
        try Data("neo".utf8).write(to: app.appendingPathComponent("assets/model_asset.tar.gz"))
        let camera = ["--camera", "camera_node=\(Repo.sampleVideo.path)", "--python-cache", Repo.pythonCache.path]

        let refused = try VantageRun(app: app, camera, http: false)
        #expect(refused.waitForExit(timeout: 60) == 1)
        #expect(refused.stderr.contains("--model model_node=PATH"), "stderr:\n\(refused.stderr.suffix(2000))")
        #expect(refused.stderr.contains("\"data\" [1, 300, 300, 3]"))

        // --model serves the node with the model file, named "data" by the code and "image_tensor:0" in the file.
        let served = try VantageRun(
            app: app, camera + ["--model", "model_node=\(Repo.personDetector.path)"], http: false)
        #expect(served.waitForExit(timeout: 300) == 0, "stderr:\n\(served.stderr.suffix(3000))")
        #expect(
            served.events.contains { (($0["payload"] as? [String: Any])?["count"] as? NSNumber)?.intValue ?? 0 >= 3 })

        // The import writes the vantage block once; then the project runs with no flag.
        let dryRun = try await ChildProcess(
            Repo.vantageBinary, arguments: ["app", "import-panorama", app.path, "--dry-run"]
        ).waitForExit(timeout: .seconds(60))
        #expect(dryRun.exitStatus == 0, "\(dryRun)")
        #expect(dryRun.stdout.contains("model node \"model_node\": supply the model"), "\(dryRun.stdout)")
        let imported = try await ChildProcess(
            Repo.vantageBinary,
            arguments: ["app", "import-panorama", app.path, "--model", "model_node=\(Repo.personDetector.path)"]
        ).waitForExit(timeout: .seconds(120))
        #expect(imported.exitStatus == 0, "\(imported)")
        #expect(imported.stdout.contains("added the \"vantage\" block"), "\(imported.stdout)")
        let descriptor = try String(
            contentsOf: app.appendingPathComponent("packages/123456789012-people_detector-1.0/descriptor.json"),
            encoding: .utf8)
        #expect(descriptor.contains("\"vantage\"") && descriptor.contains("\"mlModelDescriptor\""))
        let after = try VantageRun(app: app, camera, http: false)
        #expect(after.waitForExit(timeout: 300) == 0, "stderr:\n\(after.stderr.suffix(3000))")
        #expect(
            after.events.contains { (($0["payload"] as? [String: Any])?["count"] as? NSNumber)?.intValue ?? 0 >= 3 })
    }

    @Test("networkRoutingRules: the rule's hostPort is opened on the loopback interface and reaches the app's port")
    func routingRulePort() async throws {
        let app = try Repo.copyOfPanoramaPeopleCounter()
        defer { try? FileManager.default.removeItem(at: app) }
        let package = app.appendingPathComponent("packages/123456789012-people_counter_app-1.0/package.json")
        let packageText = try String(contentsOf: package, encoding: .utf8)
        try packageText.replacingOccurrences(
            of: "\"category\": \"business_logic\",",
            with: "\"category\": \"business_logic\", \"network\": {\"inboundPorts\": [{\"port\": 8123}]},"
        ).write(to: package, atomically: true, encoding: .utf8)
        let graph = app.appendingPathComponent("graphs/panorama-people-counter/graph.json")
        let graphText = try String(contentsOf: graph, encoding: .utf8)
        try graphText.replacingOccurrences(
            of: "\"edges\": [",
            with: "\"networkRoutingRules\": [{\"node\": \"code_node\", \"containerPort\": 8123, \"hostPort\": 8791}],\n"
                + "        \"edges\": ["
        ).write(to: graph, atomically: true, encoding: .utf8)
        try Self.replaceApp(
            in: app,
            with: """
                import threading, http.server, panoramasdk
                class Hello(http.server.BaseHTTPRequestHandler):
                    def do_GET(self):
                        body = b"hello from the app"
                        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
                        self.wfile.write(body)
                server = http.server.HTTPServer(("127.0.0.1", 8123), Hello)
                threading.Thread(target=server.serve_forever, daemon=True).start()
                node = panoramasdk.node()
                while True:
                    node.inputs.video_in.get()
                """)
        let run = try VantageRun(
            app: app,
            ["--camera", "camera_node=\(Repo.sampleVideo.path)", "--loop", "--python-cache", Repo.pythonCache.path])
        _ = try run.port()
        var answer = ""
        let reached = poll(timeout: 60) {
            guard let url = URL(string: "http://127.0.0.1:8791/"), let data = try? Data(contentsOf: url) else {
                return false
            }
            answer = String(decoding: data, as: UTF8.self)
            return true
        }
        #expect(reached, "stderr:\n\(run.stderr.suffix(3000))")
        #expect(answer == "hello from the app")
        #expect(run.stderr.contains("code_node: 127.0.0.1:8791 -> 127.0.0.1:8123"))
        #expect(run.interrupt() == 0)
    }

    // MARK: Helpers

    static let appPath = "packages/123456789012-people_counter_app-1.0/src/app.py"

    private func eventsEmpty(_ run: VantageRun) -> Bool { run.events.isEmpty }

    static func replaceApp(in app: URL, with code: String) throws {
        try code.write(to: app.appendingPathComponent(appPath), atomically: true, encoding: .utf8)
    }

    /// Writes a minimal pure-Python wheel whose module `name` has `VALUE = value`.
    static func writeWheel(named name: String, value: String, into directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let script = """
            import sys, zipfile
            name, value, out = sys.argv[1], sys.argv[2], sys.argv[3]
            info = name + "-1.0.dist-info"
            files = {name + ".py": "VALUE = %r\\n" % value,
                     info + "/METADATA": "Metadata-Version: 2.1\\nName: %s\\nVersion: 1.0\\n" % name,
                     info + "/WHEEL": "Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"}
            files[info + "/RECORD"] = "".join(f + ",,\\n" for f in files) + info + "/RECORD,,\\n"
            with zipfile.ZipFile(out, "w") as z:
                for f, text in files.items():
                    z.writestr(f, text)
            """
        let wheel = directory.appendingPathComponent("\(name)-1.0-py3-none-any.whl")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, name, value, wheel.path]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }
}
