// Python code nodes: the interpreter, the `panoramasdk` package and the package's own dependencies.
//
// A code node whose entry is a Python interpreter (`python3`, `python`, `python3.8`, `/usr/bin/python3.8`, …) runs
// with the host's Python 3 (`python3` on PATH, else `/usr/bin/python3`) whatever version the entry names: Panorama
// descriptors name the image's Python 3.7 or 3.8, which hosts seldom have. A differing version is said once, at
// notice level. The node gets Vantage's `panoramasdk` (the `python/` folder of this repository) on PYTHONPATH, and
// `python/vantage_boot` too: its `sitecustomize` maps Panorama's paths (`/opt/aws/panorama/storage`,
// `/opt/aws/panorama/logs`, `/panorama`) to the node's folders before the application's code runs. numpy (which the
// SDK needs) and OpenCV come from the base packages `scripts/setup` installs into `.deps/python`.
//
// A package with a `requirements.txt`, or a Dockerfile with `RUN pip install …` lines, gets a virtual environment
// of its own, made once and cached by the digest of those dependencies (and the Python version): the first run
// installs, later runs start at once. The environment is resolved from the package's requirements alone: pip sees
// no base package while it installs (else it would take the base numpy 2 as satisfying an old OpenCV's unbounded
// `numpy>=1.x`, which then crashes on import). When the package does not name numpy, pip runs with `numpy<2`, the
// numpy of Panorama's image; numpy is installed if nothing else brought it. The base packages are added after the
// environment's own (a `.pth` file) only once the installs are done, so OpenCV is there for applications that do
// not list it, and a version the package installed always wins.
import Foundation
import Logging
import VantageApp
import VantageCore

/// How to start one Python code node.
struct PythonLaunch: Sendable {
    /// The interpreter: the package's virtual environment's, or the host's Python 3.
    var interpreter: URL
    /// Variables to add to the node's environment (PYTHONPATH, VANTAGE_SOURCE).
    var environment: [String: String]
    /// The virtual environment, when the package has dependencies.
    var virtualEnvironment: URL?
}

enum PythonEnvironment {
    /// Whether a descriptor's `entry.path` is a shell (`bash`, `sh`, `/bin/bash`): its script usually starts the
    /// Python application, which then needs the SDK and the package's packages.
    static func isShell(_ executable: String) -> Bool {
        ["bash", "sh", "dash"].contains(URL(fileURLWithPath: executable).lastPathComponent)
    }

    /// Whether a descriptor's `entry.path` names a Python interpreter.
    static func isPython(_ executable: String) -> Bool { PythonInterpreter.isPython(executable) }

    /// The host's Python 3 that runs a Python code node (see `PythonInterpreter`): the first `python3` on PATH that
    /// runs, else `/usr/bin/python3`, as the interpreter itself (`sys.executable`, not a pyenv shim) with its
    /// version. Says once, at notice level, when the entry names another version.
    static func hostPython(for node: CodeNode, logger: Logger) throws -> (interpreter: URL, version: [Int]) {
        let fm = FileManager.default
        var problems: [String] = []
        for candidate in PythonInterpreter.hostCandidates(path: ProcessInfo.processInfo.environment["PATH"])
        where fm.isExecutableFile(atPath: candidate.path) {
            let result = try run(
                candidate, ["-c", "import sys; print('%d.%d.%d' % sys.version_info[:3]); print(sys.executable)"],
                environment: ["PYTHONPATH": nil, "PYTHONHOME": nil])
            let lines = result.output.split(separator: "\n").map(String.init)
            let version = lines.first.map { $0.split(separator: ".").compactMap { Int($0) } } ?? []
            guard result.status == 0, version.count == 3, version[0] == 3 else {
                problems.append("\(candidate.path): \(result.output.suffix(200))")
                continue
            }
            var interpreter = candidate
            if lines.count > 1, lines[1].hasPrefix("/"), fm.isExecutableFile(atPath: lines[1]) {
                interpreter = URL(fileURLWithPath: lines[1])
            }
            if let notice = PythonInterpreter.versionNotice(entry: node.entry.executable, hostVersion: version) {
                logger.notice(
                    "\(notice)",
                    metadata: ["app.node": "\(node.name)", "python": "\(interpreter.path)"])
            }
            return (interpreter, version)
        }
        throw RuntimeError(
            "code node \(node.name) runs Python (\(node.entry.executable)), but no Python 3 runs from PATH or "
                + "/usr/bin/python3\(problems.isEmpty ? "" : " (\(problems.joined(separator: "; ")))") — install "
                + "Python 3 and its venv module (Debian: apt-get install python3 python3-venv)")
    }

    /// The folder holding `panoramasdk/`: `$VANTAGE_PYTHON_SDK`, else the nearest `python/` beside or above the
    /// `vantage` binary (a source checkout: `.build/debug/vantage` → `python/`), else `share/vantage/python` of the
    /// install prefix.
    static func sdkDirectory(executableDirectory: URL) -> URL? {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["VANTAGE_PYTHON_SDK"], !path.isEmpty { return URL(fileURLWithPath: path) }
        return executableDirectory.ancestor(containing: "python/panoramasdk/__init__.py")
            .map { $0.appendingPathComponent("python") }
            ?? executableDirectory.ancestor(containing: "share/vantage/python/panoramasdk/__init__.py")
            .map { $0.appendingPathComponent("share/vantage/python") }
    }

    /// The base packages (numpy, OpenCV): `$VANTAGE_PYTHON_PACKAGES`, else `.deps/python` of the source checkout.
    static func basePackages(executableDirectory: URL) -> URL? {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["VANTAGE_PYTHON_PACKAGES"], !path.isEmpty { return URL(fileURLWithPath: path) }
        return executableDirectory.ancestor(containing: ".deps/python/numpy")
            .map { $0.appendingPathComponent(".deps/python") }
    }

    /// Prepares a Python code node: finds the SDK, makes (or reuses) the package's virtual environment, and checks
    /// that the interpreter can import the SDK. Installing dependencies the first time may take minutes; pip's
    /// output goes to standard error as it comes.
    static func prepare(
        node: CodeNode, executableDirectory: URL, cacheDirectory: URL, logger: Logger
    ) throws -> PythonLaunch {
        guard let sdk = sdkDirectory(executableDirectory: executableDirectory) else {
            throw RuntimeError(
                "code node \(node.name) runs Python, but Vantage's panoramasdk package was not found beside "
                    + "\(executableDirectory.path) — set VANTAGE_PYTHON_SDK to the python/ folder of the Vantage "
                    + "source (the one holding panoramasdk/)")
        }
        if let script = node.entry.arguments.first, script.hasSuffix(".py"),
            !FileManager.default.fileExists(atPath: script)
        {
            let assets = node.packageDirectory.deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("assets")
            throw RuntimeError(
                "code node \(node.name): its program \(script) does not exist — put the code in "
                    + "\(node.sourceDirectory.path) (Panorama's /panorama), or, if panorama-cli left it only in a "
                    + "container image in \(assets.path), extract it with vantage app import-panorama PROJECT_DIR")
        }
        let (interpreter, version) = try hostPython(for: node, logger: logger)
        let base = basePackages(executableDirectory: executableDirectory)
        let dependencies = try PythonDependencies.read(
            packageDirectory: node.packageDirectory, sourceDirectory: node.sourceDirectory)
        for line in dependencies.report { logger.info("\(line)", metadata: ["app.node": "\(node.name)"]) }

        var launch = PythonLaunch(
            interpreter: interpreter, environment: ["VANTAGE_SOURCE": node.sourceDirectory.path])
        var path = [sdk.path, sdk.appendingPathComponent("vantage_boot").path]
        if dependencies.isEmpty {
            if let base { path.append(base.path) }
        } else {
            let venv = try virtualEnvironment(
                for: node, dependencies: dependencies, interpreter: interpreter, version: version, base: base,
                cacheDirectory: cacheDirectory, logger: logger)
            launch.interpreter = venv.appendingPathComponent("bin/python")
            launch.virtualEnvironment = venv
        }
        if let existing = ProcessInfo.processInfo.environment["PYTHONPATH"], !existing.isEmpty {
            path.append(existing)
        }
        launch.environment["PYTHONPATH"] = path.joined(separator: ":")
        try check(launch, node: node, dependencies: dependencies, version: version)
        return launch
    }

    /// Imports numpy and the SDK, and the environment's own OpenCV when the package installed one: a Python that
    /// prints which numpy and OpenCV it has when an import fails.
    private static let importCheck = """
        import importlib.util, sys
        try:
            import numpy, panoramasdk
            spec = importlib.util.find_spec("cv2")
            if sys.prefix != sys.base_prefix and spec and (spec.origin or "").startswith(sys.prefix + "/"):
                import cv2
        except BaseException:
            import importlib.metadata as metadata
            found = []
            for name in ("numpy", "opencv-python", "opencv-python-headless", "opencv-contrib-python",
                         "opencv-contrib-python-headless"):
                try:
                    found.append(name + " " + metadata.version(name))
                except Exception:
                    pass
            print("vantage-installed: " + ", ".join(found), file=sys.stderr)
            raise
        """

    /// Checks that the interpreter imports numpy and the SDK (and the environment's own OpenCV), so a missing
    /// package, or a compiled package built for another numpy, is one clear message at start, not a traceback in a
    /// restart loop.
    private static func check(
        _ launch: PythonLaunch, node: CodeNode, dependencies: PythonDependencies, version: [Int]
    ) throws {
        let result = try run(
            launch.interpreter, ["-c", importCheck], environment: launch.environment.mapValues { $0 })
        guard result.status != 0 else { return }
        let lines = result.output.split(separator: "\n").map(String.init)
        let installed = lines.last { $0.hasPrefix("vantage-installed: ") }
            .map { String($0.dropFirst("vantage-installed: ".count)) }
        let detail = lines.last { !$0.hasPrefix("vantage-installed: ") && !$0.hasPrefix(" ") } ?? "no output"
        guard let venv = launch.virtualEnvironment else {
            throw RuntimeError(
                "code node \(node.name): \(launch.interpreter.path) cannot import numpy and panoramasdk (\(detail)) — "
                    + "run scripts/setup (it installs numpy into .deps/python), or set VANTAGE_PYTHON_PACKAGES to a "
                    + "folder holding numpy")
        }
        let asked =
            dependencies.requirements.isEmpty
            ? "nothing by name" : dependencies.requirements.prefix(12).joined(separator: ", ")
        let files = [
            dependencies.requirementsFile?.lastPathComponent, dependencies.pipInstalls.isEmpty ? nil : "Dockerfile",
        ]
        .compactMap { $0 }.joined(separator: " and ")
        // numpy's own words for a module built against another numpy: "module compiled against ABI version 0x1000009
        // but this version of numpy is 0x2000000", "_ARRAY_API not found", "numpy.core.multiarray failed to import".
        let abi = lines.first {
            $0.contains("compiled against") || $0.contains("_ARRAY_API") || $0.contains("multiarray failed to import")
                || $0.contains("compiled using NumPy")
        }
        if let abi {
            // numpy 1.x has no wheels for Python 3.13 and later.
            let olderPython =
                (version[0], version[1]) >= (3, 13)
                ? " (numpy 1.x needs Python 3.12 or older: put such a python3 first on PATH)" : ""
            throw RuntimeError(
                "code node \(node.name): its Python environment has a compiled package built for another numpy "
                    + "(\(abi.trimmingCharacters(in: .whitespaces))) — installed: \(installed ?? "unknown"); the "
                    + "package asks for: \(asked) (\(files)). Pin numpy in \(files) to the major version those "
                    + "packages were built for (numpy<2 for wheels from before mid-2024, such as opencv-python 4.6 "
                    + "to 4.9)\(olderPython), or raise their pins; the environment is made again when the "
                    + "requirements change (\(venv.path))")
        }
        throw RuntimeError(
            "code node \(node.name): its Python environment cannot import numpy, panoramasdk or its OpenCV "
                + "(\(detail)) — installed: \(installed ?? "unknown"); the package asks for: \(asked) (\(files)). "
                + "Fix the requirements (numpy is needed by panoramasdk); the environment is made again when they "
                + "change (\(venv.path))")
    }

    /// The package's virtual environment, made the first time and reused while its dependencies are unchanged.
    private static func virtualEnvironment(
        for node: CodeNode, dependencies: PythonDependencies, interpreter: URL, version: [Int], base: URL?,
        cacheDirectory: URL, logger: Logger
    ) throws -> URL {
        let fm = FileManager.default
        let pythonVersion = "\(version[0]).\(version[1])"
        let name = "\(dependencies.digest.prefix(16))-py\(pythonVersion)"
        let venv = cacheDirectory.appendingPathComponent(name)
        let ready = venv.appendingPathComponent(".vantage-ready")
        if fm.fileExists(atPath: ready.path) {
            logger.info(
                "using the cached Python environment", metadata: ["app.node": "\(node.name)", "path": "\(venv.path)"])
            return venv
        }
        try fm.createDirectory(at: cacheDirectory, withIntermediateDirectories: true)
        // Two code nodes with the same dependencies may make it at once: each in its own folder.
        let partial = cacheDirectory.appendingPathComponent(
            "\(name).partial-\(getpid())-\(UUID().uuidString.prefix(8))")
        try? fm.removeItem(at: partial)
        defer { try? fm.removeItem(at: partial) }
        logger.notice(
            "installing the Python dependencies of code node \(node.name) (first run with these dependencies; cached afterwards)",
            metadata: ["path": "\(venv.path)"])
        // Nothing from outside the environment is visible to pip: its requirements alone decide what it installs.
        let isolated: [String: String?] = ["PYTHONPATH": nil, "PYTHONHOME": nil, "PYTHONNOUSERSITE": "1"]
        let made = try run(interpreter, ["-m", "venv", partial.path], environment: isolated)
        guard made.status == 0 else {
            throw RuntimeError(
                "code node \(node.name): \(interpreter.path) -m venv failed (\(made.output.suffix(300))) — install "
                    + "Python's venv module (Debian: apt-get install python3-venv)")
        }
        let python = partial.appendingPathComponent("bin/python")
        let sitePackages = partial.appendingPathComponent("lib/python\(pythonVersion)/site-packages")

        // Panorama's image had numpy 1.x, and binary wheels of that time (opencv-python 4.6) ask for `numpy>=1.x`
        // with no upper bound: unless the package chooses its numpy, keep pip to 1.x. numpy 1.x has no wheels for
        // Python 3.13 and later, so there the newest numpy it is.
        var constraint: URL?
        if !dependencies.namesNumpy, (version[0], version[1]) < (3, 13) {
            let file = partial.appendingPathComponent("vantage-constraints.txt")
            try Data("numpy<2\n".utf8).write(to: file)
            constraint = file
            logger.info(
                "the package does not name numpy: installing with numpy<2, as Panorama's image had",
                metadata: ["app.node": "\(node.name)"])
        }
        // One pip install: with the numpy constraint first, then without it when pip says the constraint is in the
        // way (the package needs numpy 2).
        func pip(_ arguments: [String], what: String, remedy: String) throws {
            var environment = isolated
            let command = "pip install " + arguments.joined(separator: " ")
            for constrained in constraint == nil ? [false] : [true, false] {
                // The user's own PIP_CONSTRAINT (space-separated files) still applies, with or without ours.
                let own = ProcessInfo.processInfo.environment["PIP_CONSTRAINT"]
                environment["PIP_CONSTRAINT"] =
                    constrained ? [own, constraint?.path].compactMap { $0 }.joined(separator: " ") : own
                logger.notice(
                    "\(command)\(constrained ? " (with numpy<2)" : "")", metadata: ["app.node": "\(node.name)"])
                let result = try run(
                    python,
                    ["-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off"] + arguments,
                    environment: environment, directory: node.sourceDirectory, echo: true)
                if result.status == 0 { return }
                let tail = result.output.split(separator: "\n").suffix(3).joined(separator: " | ")
                if constrained, result.output.contains("numpy") {
                    logger.notice(
                        "pip could not install \(what) with numpy<2; trying again without that constraint",
                        metadata: ["app.node": "\(node.name)", "pip": "\(tail)"])
                    continue
                }
                throw RuntimeError(
                    "code node \(node.name): pip could not install \(what) (\(tail)) — \(remedy); "
                        + "nothing was cached")
            }
        }

        var installs: [(what: String, arguments: [String])] = []
        if let requirements = dependencies.requirementsFile {
            installs.append(("the dependencies of \(requirements.lastPathComponent)", ["-r", requirements.path]))
        }
        for install in dependencies.pipInstalls {
            installs.append(("the dependencies of Dockerfile line \(install.line)", install.arguments))
        }
        for install in installs {
            try pip(
                install.arguments, what: install.what,
                remedy: "fix the requirement, or check that PyPI (or your index) is reachable")
        }
        // panoramasdk needs numpy: when the package's requirements did not bring it, install it. Where pip cannot
        // (no network), the base packages' numpy will do: nothing in the environment was built against numpy.
        if try run(python, ["-c", "import numpy"], environment: isolated).status != 0 {
            logger.notice(
                "the package's requirements do not install numpy, which panoramasdk needs: installing it",
                metadata: ["app.node": "\(node.name)"])
            do {
                try pip(
                    ["numpy"], what: "numpy (which panoramasdk needs)",
                    remedy: "add numpy to the package's requirements, or check that PyPI (or your index) is reachable")
            } catch let error where base.map { fm.fileExists(atPath: $0.appendingPathComponent("numpy").path) } == true
            {
                logger.notice(
                    "numpy could not be installed into the environment: it uses the base packages' numpy",
                    metadata: ["app.node": "\(node.name)", "error": "\(error)"])
            }
        }
        // The base packages come after the environment's own, and only now: pip never saw them, and a version the
        // package installed wins. Their OpenCV is built for numpy 2 and runs on numpy 1.x too; should it not
        // import with this environment's numpy, the environment goes without them rather than break `import cv2`.
        if let base {
            try Data((base.path + "\n").utf8).write(to: sitePackages.appendingPathComponent("vantage-base.pth"))
            let ownOpenCV = fm.fileExists(atPath: sitePackages.appendingPathComponent("cv2").path)
            if !ownOpenCV, fm.fileExists(atPath: base.appendingPathComponent("cv2").path) {
                let imported = try run(python, ["-c", "import cv2"], environment: isolated)
                if imported.status != 0 {
                    try? fm.removeItem(at: sitePackages.appendingPathComponent("vantage-base.pth"))
                    let detail = imported.output.split(separator: "\n").last.map(String.init) ?? ""
                    logger.notice(
                        """
                        the base packages' OpenCV does not work with this environment's numpy, so the environment \
                        goes without the base packages: list opencv-python-headless in requirements.txt if the \
                        application imports cv2
                        """,
                        metadata: ["app.node": "\(node.name)", "error": "\(detail)"])
                }
            }
        }
        try Data().write(to: partial.appendingPathComponent(".vantage-ready"))
        if fm.fileExists(atPath: ready.path) { return venv }  // another node finished the same one first
        try? fm.removeItem(at: venv)
        try fm.moveItem(at: partial, to: venv)
        return venv
    }

    private struct Result {
        var status: Int32
        var output: String
    }

    /// Runs a program and collects its output (standard output and error together); with `echo`, the output also
    /// goes to standard error as it comes (pip's progress).
    private static func run(
        _ program: URL, _ arguments: [String], environment: [String: String?], directory: URL? = nil,
        echo: Bool = false
    ) throws -> Result {
        let process = Process()
        process.executableURL = program
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }  // nil removes
        process.environment = env
        if let directory { process.currentDirectoryURL = directory }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        let child = ChildProcess(process)
        do {
            try child.run()
        } catch {
            throw RuntimeError("cannot run \(program.path): \(error.localizedDescription)")
        }
        var output = Data()
        while true {
            let chunk = pipe.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            output.append(chunk)
            if echo { FileHandle.standardError.write(chunk) }
        }
        child.waitUntilExit()
        return Result(status: child.terminationStatus, output: String(decoding: output, as: UTF8.self))
    }
}
