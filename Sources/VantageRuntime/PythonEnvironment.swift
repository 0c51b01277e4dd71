// Python code nodes: the interpreter, the `panoramasdk` package and the package's own dependencies.
//
// A code node whose entry is a Python interpreter (`python3`, `python`, `python3.8`, …) runs with Vantage's
// `panoramasdk` (the `python/` folder of this repository) on PYTHONPATH, and `python/vantage_boot` too: its
// `sitecustomize` maps Panorama's paths (`/opt/aws/panorama/storage`, `/opt/aws/panorama/logs`, `/panorama`) to the
// node's folders before the application's code runs. numpy (which the SDK needs) and OpenCV come from the base
// packages `scripts/setup` installs into `.deps/python`.
//
// A package with a `requirements.txt`, or a Dockerfile with `RUN pip install …` lines, gets a virtual environment
// of its own, made once and cached by the digest of those dependencies (and the Python version): the first run
// installs, later runs start at once. The base packages are added to that environment after its own (a `.pth`
// file), so a version the package pins wins.
import Foundation
import Logging
import VantageApp

/// How to start one Python code node.
struct PythonLaunch: Sendable {
    /// The interpreter: the package's virtual environment's, or the one the entry names.
    var interpreter: URL
    /// Variables to add to the node's environment (PYTHONPATH, VANTAGE_SOURCE).
    var environment: [String: String]
    /// The virtual environment, when the package has dependencies.
    var virtualEnvironment: URL?
}

enum PythonEnvironment {
    /// Whether a descriptor's `entry.path` names a Python interpreter.
    static func isPython(_ executable: String) -> Bool {
        let name = URL(fileURLWithPath: executable).lastPathComponent
        guard name.hasPrefix("python") else { return false }
        let version = name.dropFirst("python".count)
        return version.allSatisfy { $0.isNumber || $0 == "." }
    }

    /// The folder holding `panoramasdk/`: `$VANTAGE_PYTHON_SDK`, else the nearest `python/` beside or above the
    /// `vantage` binary (a source checkout: `.build/debug/vantage` → `python/`), else `share/vantage/python` of the
    /// install prefix.
    static func sdkDirectory(executableDirectory: URL) -> URL? {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["VANTAGE_PYTHON_SDK"], !path.isEmpty { return URL(fileURLWithPath: path) }
        return ancestor(of: executableDirectory, containing: "python/panoramasdk/__init__.py")
            .map { $0.appendingPathComponent("python") }
            ?? ancestor(of: executableDirectory, containing: "share/vantage/python/panoramasdk/__init__.py")
            .map { $0.appendingPathComponent("share/vantage/python") }
    }

    /// The base packages (numpy, OpenCV): `$VANTAGE_PYTHON_PACKAGES`, else `.deps/python` of the source checkout.
    static func basePackages(executableDirectory: URL) -> URL? {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["VANTAGE_PYTHON_PACKAGES"], !path.isEmpty { return URL(fileURLWithPath: path) }
        return ancestor(of: executableDirectory, containing: ".deps/python/numpy")
            .map { $0.appendingPathComponent(".deps/python") }
    }

    private static func ancestor(of directory: URL, containing relative: String) -> URL? {
        var dir = directory.standardizedFileURL
        for _ in 0..<6 {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent(relative).path) { return dir }
            let parent = dir.deletingLastPathComponent()
            if parent.path == dir.path { break }
            dir = parent
        }
        return nil
    }

    /// Prepares a Python code node: finds the SDK, makes (or reuses) the package's virtual environment, and checks
    /// that the interpreter can import the SDK. Installing dependencies the first time may take minutes; pip's
    /// output goes to standard error as it comes.
    static func prepare(
        node: CodeNode, interpreter: URL, executableDirectory: URL, cacheDirectory: URL, logger: Logger
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
                for: node, dependencies: dependencies, interpreter: interpreter, base: base,
                cacheDirectory: cacheDirectory, logger: logger)
            launch.interpreter = venv.appendingPathComponent("bin/python")
            launch.virtualEnvironment = venv
        }
        if let existing = ProcessInfo.processInfo.environment["PYTHONPATH"], !existing.isEmpty {
            path.append(existing)
        }
        launch.environment["PYTHONPATH"] = path.joined(separator: ":")
        try check(launch, node: node)
        return launch
    }

    /// Checks that the interpreter imports numpy and the SDK, so a missing package is one clear message at start,
    /// not a traceback in a restart loop.
    private static func check(_ launch: PythonLaunch, node: CodeNode) throws {
        let result = try run(
            launch.interpreter, ["-c", "import numpy, panoramasdk"], environment: launch.environment)
        guard result.status == 0 else {
            let detail = result.output.split(separator: "\n").last.map(String.init) ?? "no output"
            throw RuntimeError(
                "code node \(node.name): \(launch.interpreter.path) cannot import numpy and panoramasdk (\(detail)) — "
                    + "run scripts/setup (it installs numpy into .deps/python), or set VANTAGE_PYTHON_PACKAGES to a "
                    + "folder holding numpy")
        }
    }

    /// The package's virtual environment, made the first time and reused while its dependencies are unchanged.
    private static func virtualEnvironment(
        for node: CodeNode, dependencies: PythonDependencies, interpreter: URL, base: URL?, cacheDirectory: URL,
        logger: Logger
    ) throws -> URL {
        let fm = FileManager.default
        let version = try run(
            interpreter, ["-c", "import sys; print('%d.%d' % sys.version_info[:2])"], environment: [:])
        guard version.status == 0 else {
            throw RuntimeError(
                "code node \(node.name): \(interpreter.path) does not run (\(version.output.prefix(200))) — fix "
                    + "entry.path in its descriptor.json")
        }
        let pythonVersion = version.output.trimmingCharacters(in: .whitespacesAndNewlines)
        let name = "\(dependencies.digest.prefix(16))-py\(pythonVersion)"
        let venv = cacheDirectory.appendingPathComponent(name)
        let ready = venv.appendingPathComponent(".vantage-ready")
        if fm.fileExists(atPath: ready.path) {
            logger.info(
                "using the cached Python environment", metadata: ["app.node": "\(node.name)", "path": "\(venv.path)"])
            return venv
        }
        try fm.createDirectory(at: cacheDirectory, withIntermediateDirectories: true)
        let partial = cacheDirectory.appendingPathComponent("\(name).partial-\(getpid())")
        try? fm.removeItem(at: partial)
        defer { try? fm.removeItem(at: partial) }
        logger.notice(
            "installing the Python dependencies of code node \(node.name) (first run with these dependencies; cached afterwards)",
            metadata: ["path": "\(venv.path)"])
        let made = try run(interpreter, ["-m", "venv", partial.path], environment: [:])
        guard made.status == 0 else {
            throw RuntimeError(
                "code node \(node.name): \(interpreter.path) -m venv failed (\(made.output.suffix(300))) — install "
                    + "Python's venv module (Debian: apt-get install python3-venv)")
        }
        // The base packages come after the environment's own: a version the package pins wins.
        if let base {
            let lib = partial.appendingPathComponent("lib/python\(pythonVersion)/site-packages")
            try Data((base.path + "\n").utf8).write(to: lib.appendingPathComponent("vantage-base.pth"))
        }
        let pip = partial.appendingPathComponent("bin/python").path
        var installs: [(what: String, arguments: [String])] = []
        if let requirements = dependencies.requirementsFile {
            installs.append((requirements.lastPathComponent, ["-r", requirements.path]))
        }
        for install in dependencies.pipInstalls {
            installs.append(("Dockerfile line \(install.line)", install.arguments))
        }
        for install in installs {
            let command = "pip install " + install.arguments.joined(separator: " ")
            logger.notice("\(command)", metadata: ["app.node": "\(node.name)"])
            let result = try run(
                URL(fileURLWithPath: pip),
                ["-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off"] + install.arguments,
                environment: [:], directory: node.sourceDirectory, echo: true)
            guard result.status == 0 else {
                let tail = result.output.split(separator: "\n").suffix(3).joined(separator: " | ")
                throw RuntimeError(
                    "code node \(node.name): pip could not install the dependencies of \(install.what) (\(tail)) — "
                        + "fix the requirement, or check that PyPI (or your index) is reachable; nothing was cached")
            }
        }
        try Data().write(to: partial.appendingPathComponent(".vantage-ready"))
        try? fm.removeItem(at: venv)
        try fm.moveItem(at: partial, to: venv)
        // A venv's scripts name the folder they were made in: point `python` at the final place.
        return venv
    }

    private struct Result {
        var status: Int32
        var output: String
    }

    /// Runs a program and collects its output (standard output and error together); with `echo`, the output also
    /// goes to standard error as it comes (pip's progress).
    private static func run(
        _ program: URL, _ arguments: [String], environment: [String: String], directory: URL? = nil,
        echo: Bool = false
    ) throws -> Result {
        let process = Process()
        process.executableURL = program
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        if let directory { process.currentDirectoryURL = directory }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
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
        process.waitUntilExit()
        return Result(status: process.terminationStatus, output: String(decoding: output, as: UTF8.self))
    }
}
