import Foundation
import Testing
import VantageApp

/// Which Python runs a Panorama application, and which packages its environment gets: the interpreter a descriptor
/// names (`python3.8`) is the host's Python 3, and a package's pins win over Vantage's own numpy 2 and OpenCV.
///
/// The runs use real wheels from a local folder (`.deps/wheels/old-opencv`, made by scripts/setup): OpenCV 4.6 (built
/// for numpy 1.x, asking for numpy with no upper bound), numpy 1.x and numpy 2.x.
@Suite("Python environments: the host's interpreter, the package's pins", .serialized)
struct PythonEnvironmentTests {
    // MARK: The rules

    @Test("every Python entry runs with the host's Python 3; a differing version is named, a matching one is not")
    func interpreterRule() {
        for entry in ["python", "python3", "python3.8", "python3.7", "/usr/bin/python3.8", "/opt/py/bin/python3.11"] {
            #expect(PythonInterpreter.isPython(entry), "\(entry)")
        }
        for entry in ["pythonista", "python3-config", "/usr/bin/node", "app.py", "./run.sh"] {
            #expect(!PythonInterpreter.isPython(entry), "\(entry)")
        }
        #expect(PythonInterpreter.requestedVersion("/usr/bin/python3.8") == [3, 8])
        #expect(PythonInterpreter.requestedVersion("python3") == [3])
        #expect(PythonInterpreter.requestedVersion("python") == [])

        let host = [3, 11, 7]
        #expect(
            PythonInterpreter.versionNotice(entry: "python3.8", hostVersion: host)
                == "descriptor asks for python3.8; running Python 3.11 (the host's)")
        #expect(
            PythonInterpreter.versionNotice(entry: "/usr/bin/python3.7", hostVersion: host)
                == "descriptor asks for /usr/bin/python3.7; running Python 3.11 (the host's)")
        #expect(PythonInterpreter.versionNotice(entry: "python2", hostVersion: host) != nil)
        for same in ["python", "python3", "python3.11", "/usr/bin/python3.11"] {
            #expect(PythonInterpreter.versionNotice(entry: same, hostVersion: host) == nil, "\(same)")
        }

        // python3 on PATH, in PATH's order, then /usr/bin/python3; relative PATH entries are not trusted.
        #expect(
            PythonInterpreter.hostCandidates(path: "/opt/py/bin:relative::/usr/bin:/opt/py/bin").map(\.path) == [
                "/opt/py/bin/python3", "/usr/bin/python3",
            ])
        #expect(PythonInterpreter.hostCandidates(path: nil).map(\.path) == ["/usr/bin/python3"])
    }

    @Test("numpy is the package's choice only when it names numpy: in requirements, constraints, wheels or pip lines")
    func namesNumpy() throws {
        let package = try ScratchPackage()
        try package.write(
            "src/requirements.txt",
            """
            # the OpenCV of Panorama's time, from a local folder
            --no-index
            --find-links /srv/wheels
            opencv-python-headless==4.6.0.66  # no numpy upper bound
            boto3 >= 1.26, < 2 --hash=sha256:0123
            """)
        var dependencies = try package.read()
        #expect(dependencies.requirements == ["opencv-python-headless==4.6.0.66", "boto3 >= 1.26, < 2"])
        #expect(!dependencies.namesNumpy)

        // numpy-financial is another project: not numpy.
        try package.write("src/requirements.txt", "numpy-financial==1.0.0\n")
        #expect(try !package.read().namesNumpy)

        for named in ["NumPy>=1.21", "numpy==1.26.4 ; python_version < '3.13'", "numpy @ https://example.com/n.whl"] {
            try package.write("src/requirements.txt", "opencv-python==4.6.0.66\n\(named)\n")
            #expect(try package.read().namesNumpy, "\(named)")
        }
        // In a constraints file the requirements file includes.
        try package.write("src/constraints.txt", "numpy<1.25\n")
        try package.write("src/requirements.txt", "-c constraints.txt\nopencv-python==4.6.0.66\n")
        dependencies = try package.read()
        #expect(dependencies.requirements == ["numpy<1.25", "opencv-python==4.6.0.66"])
        #expect(dependencies.namesNumpy)

        // A wheel file in a Dockerfile pip line.
        try FileManager.default.removeItem(at: package.src.appendingPathComponent("requirements.txt"))
        try package.write(
            "Dockerfile",
            "RUN pip3 install --no-cache-dir /panorama/wheels/numpy-1.26.4-cp311-cp311-linux_x86_64.whl boto3\n")
        dependencies = try package.read()
        #expect(dependencies.requirements.last == "boto3")
        #expect(dependencies.namesNumpy)
        try package.write("Dockerfile", "RUN pip3 install -i https://mirror.example/simple boto3 opencv-python\n")
        dependencies = try package.read()
        #expect(dependencies.requirements == ["boto3", "opencv-python"])
        #expect(!dependencies.namesNumpy)
    }

    @Test("environments made by the old rule (base numpy visible to pip) are not reused: the digest names the scheme")
    func digestScheme() throws {
        let package = try ScratchPackage()
        try package.write("src/requirements.txt", "opencv-python-headless==4.6.0.66\n")
        let digest = try package.read().digest
        // What scheme 1 (Vantage before issue 13) gave for this package: SHA-256 of "vantage python dependencies 1\n",
        // "requirements src/requirements.txt\n", the file, "\n".
        #expect(digest != "73aff842b4b53c0690e8a98d7bc476db06ba73e183f9949cb909f54181786a50")
        #expect(PythonDependencies.environmentScheme >= 2)
    }

    // MARK: Real runs

    @Test(
        "a package pinning OpenCV 4.6, its descriptor saying python3.8, runs on the host's Python with numpy 1.x",
        .enabled(if: Self.canRun, Self.skipReason))
    func oldOpenCVGetsNumpy1() async throws {
        let (app, cache) = try Self.project(
            requirements: ["opencv-python-headless==4.6.0.66"],
            appendToInit: """
                        assert cv2.__version__.startswith("4.6"), cv2.__version__
                        assert int(np.__version__.split(".")[0]) == 1, np.__version__
                        self.publish({"type": "versions", "cv2": cv2.__version__, "numpy": np.__version__,
                                      "cv2File": cv2.__file__, "python": sys.version.split()[0]})

                """)
        defer {
            try? FileManager.default.removeItem(at: app)
            try? FileManager.default.removeItem(at: cache)
        }
        let started = Date()
        let run = try VantageRun(
            app: app,
            [
                "--camera", "camera_node=\(Repo.sampleVideo.path)", "--json-summary", "--python-cache", cache.path,
            ],
            http: false)
        let status = try #require(run.waitForExit(timeout: 480), "did not finish; stderr:\n\(run.stderr.suffix(3000))")
        print("old OpenCV run (install + 795 frames): \(Int(Date().timeIntervalSince(started))) s")
        #expect(status == 0, "stderr:\n\(run.stderr.suffix(4000))")

        let versions = try #require(
            run.events.compactMap { $0["payload"] as? [String: Any] }.first { $0["type"] as? String == "versions" },
            "no versions event; stderr:\n\(run.stderr.suffix(3000))")
        #expect((versions["cv2"] as? String)?.hasPrefix("4.6") == true, "\(versions)")
        #expect((versions["numpy"] as? String)?.hasPrefix("1.") == true, "\(versions)")
        // The package's own OpenCV, from its environment, not Vantage's base packages.
        #expect((versions["cv2File"] as? String)?.hasPrefix(cache.path) == true, "\(versions)")

        // It ran to the end of the video, calling the model, with no restart.
        let summaryLine = try #require(run.stderr.split(separator: "\n").last { $0.hasPrefix("{") })
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(summaryLine.utf8)) as? [String: Any])
        #expect((summary["frames"] as? NSNumber)?.intValue == 795)
        #expect((summary["appRestarts"] as? NSNumber)?.intValue == 0)
        let counts = run.events.compactMap { ($0["payload"] as? [String: Any])?["count"] as? NSNumber }
        #expect(counts.contains { $0.intValue > 0 }, "no detections: the model was not called")

        // The descriptor's python3.8 is named once; pip ran with numpy<2 since the package does not name numpy.
        let notices = run.stderr.components(separatedBy: "descriptor asks for python3.8; running Python 3.").count - 1
        #expect(notices == 1, "stderr:\n\(run.stderr.prefix(4000))")
        #expect(run.stderr.contains("(with numpy<2)"), "stderr:\n\(run.stderr.prefix(4000))")
    }

    @Test(
        "a package pinning numpy 2 beside OpenCV 4.6 stops at start, naming the pins and the fix, with no restart loop",
        .enabled(if: Self.canRun, Self.skipReason))
    func numpy2PinWithOldOpenCVIsRefused() async throws {
        let (app, cache) = try Self.project(
            requirements: ["opencv-python-headless==4.6.0.66", "numpy==2.2.6"], appendToInit: "")
        defer {
            try? FileManager.default.removeItem(at: app)
            try? FileManager.default.removeItem(at: cache)
        }
        let run = try VantageRun(
            app: app, ["--camera", "camera_node=\(Repo.sampleVideo.path)", "--python-cache", cache.path], http: false)
        let status = try #require(run.waitForExit(timeout: 300), "did not finish; stderr:\n\(run.stderr.suffix(3000))")
        #expect(status == 1, "stderr:\n\(run.stderr.suffix(3000))")
        let stderr = run.stderr
        for expected in [
            "code node code_node: its Python environment has a compiled package built for another numpy",
            "installed: numpy 2.2.6, opencv-python-headless 4.6.0.66",
            "the package asks for: opencv-python-headless==4.6.0.66, numpy==2.2.6 (requirements.txt)",
            "Pin numpy in requirements.txt",
        ] {
            #expect(stderr.contains(expected), "missing \"\(expected)\"; stderr:\n\(stderr.suffix(3000))")
        }
        // The package chose its numpy: no constraint, and the application never started.
        #expect(!stderr.contains("(with numpy<2)"))
        #expect(!stderr.contains("application started"))
    }

    // MARK: Helpers

    /// `.deps/wheels/old-opencv`: opencv-python-headless 4.6.0.66, numpy 1.x and numpy 2.2.6 wheels (scripts/setup).
    static var oldOpenCVWheels: URL { Repo.deps.appendingPathComponent("wheels/old-opencv") }

    static var canRun: Bool {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: oldOpenCVWheels.path)) ?? []
        return Repo.isSetUp && Repo.hasPythonPackages
            && files.contains { $0.hasPrefix("opencv_python_headless-4.6.0.66-") }
            && files.contains { $0.hasPrefix("numpy-1.") } && files.contains { $0.hasPrefix("numpy-2.2.6-") }
    }

    static let skipReason: Comment =
        "needs scripts/setup (its .deps/wheels/old-opencv: OpenCV 4.6 and numpy 1.x wheels for this Python) and a build"

    /// A copy of the Python people counter whose descriptor asks for python3.8 and whose requirements.txt pins
    /// `requirements` from the local wheel folder, as a pip user writes it; `appendToInit` goes at the end of the
    /// application's `__init__`. Returns the project and an empty Python cache folder.
    static func project(requirements: [String], appendToInit: String) throws -> (app: URL, cache: URL) {
        let app = try Repo.copyOfPanoramaPeopleCounter()
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent(
            "vantage-pycache-\(UUID().uuidString)")
        let package = app.appendingPathComponent("packages/123456789012-people_counter_app-1.0")
        try """
        {
            "runtimeDescriptor": {
                "envelopeVersion": "2021-01-01",
                "entry": {"path": "python3.8", "name": "/panorama/app.py"}
            }
        }
        """.write(to: package.appendingPathComponent("descriptor.json"), atomically: true, encoding: .utf8)
        try (["--no-index", "--find-links \(oldOpenCVWheels.path)"] + requirements).joined(separator: "\n").appending(
            "\n"
        ).write(to: package.appendingPathComponent("src/requirements.txt"), atomically: true, encoding: .utf8)
        let source = package.appendingPathComponent("src/app.py")
        let code = try String(contentsOf: source, encoding: .utf8)
        let anchor = "        self.frames = 0\n"
        try #require(code.contains(anchor), "the example's __init__ changed: update this test")
        try code.replacingOccurrences(of: anchor, with: anchor + appendToInit)
            .write(to: source, atomically: true, encoding: .utf8)
        return (app, cache)
    }

    /// A code package folder in a temporary directory, removed when released.
    final class ScratchPackage {
        let root: URL
        var directory: URL { root.appendingPathComponent("packages/123456789012-code-1.0") }
        var src: URL { directory.appendingPathComponent("src") }

        init() throws {
            root = FileManager.default.temporaryDirectory.appendingPathComponent("vantage-env-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: src, withIntermediateDirectories: true)
        }

        deinit { try? FileManager.default.removeItem(at: root) }

        func write(_ path: String, _ text: String) throws {
            try Data(text.utf8).write(to: directory.appendingPathComponent(path))
        }

        func read() throws -> PythonDependencies {
            try PythonDependencies.read(packageDirectory: directory, sourceDirectory: src)
        }
    }
}
