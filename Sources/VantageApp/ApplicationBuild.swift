import Foundation
import VantageCore

/// `vantage app build DIR`: the application as a device runs it, with everything inside.
///
/// The project is copied to the output folder (build folders and version control left out), then:
/// - each Swift code node is compiled for release with the Swift runtime linked in (`--static-swift-stdlib`), its
///   program put at `src/bin/<name>` and its descriptor's `entry.path` pointed there; its Swift sources are left out;
/// - each model file that lives outside the project (`vantage.file` of `../../.deps/…`), or that `--model NODE=PATH`
///   gives, is copied into its model package and `vantage.file` pointed at the copy;
/// - Python code nodes keep their source; the runtime installs their requirements on the device, as with
///   `vantage run`.
/// The output is checked with the rules the server applies to a push (`ApplicationProject.partsOutside()`).
///
/// A code node without its own `Package.swift` is compiled in a generated package holding the node's sources and
/// the Vantage Swift SDK (VantageSDK with VantageProtocol, VantageAnalytics, VantageCore and CSQLite), copied from
/// the Vantage source tree or from an installed Vantage (`share/vantage/swift`). The build folder is kept under
/// `cache`, so a second build compiles only what changed.
public struct ApplicationBuild: Sendable {
    /// The project to build.
    public var project: URL
    /// The folder to write; an earlier build's output there is replaced.
    public var output: URL
    /// Model files to put in model packages, by node (as `--model NODE=PATH`).
    public var models: [PanoramaImport.ModelFile] = []
    /// The `swift` driver; found on `PATH` (then `/opt/swift/usr/bin`) when nil.
    public var swift: URL?
    /// A folder holding `Sources/VantageSDK` and the modules it needs; found from `executableDirectory` when nil.
    public var sdk: URL?
    /// Where the `vantage` binary is (to find the SDK beside it).
    public var executableDirectory: URL
    /// Where code nodes are compiled, one folder per package.
    public var cache: URL
    /// Told each step as it starts, for a progress line.
    public var progress: @Sendable (String) -> Void = { _ in }

    /// The file that marks a folder as a build's output, so a later build may replace it.
    public static let marker = ".vantage-build"
    /// The SDK's modules, in dependency order, as folders under `Sources/`.
    static let sdkModules = ["CSQLite", "VantageCore", "VantageProtocol", "VantageAnalytics", "VantageSDK"]

    /// Makes a build of `project` into `output`.
    public init(project: URL, output: URL, executableDirectory: URL, cache: URL) {
        self.project = project.standardizedFileURL
        self.output = output.standardizedFileURL
        self.executableDirectory = executableDirectory
        self.cache = cache
    }

    /// Builds; answers what was done, a line each. Errors name the node, what failed and what to do.
    public func run() throws(ManifestError) -> [String] {
        let source = try ApplicationProject.load(project)
        for file in models where source.nodeInfos[file.node] == nil {
            throw ManifestError(
                .invalidArgument, node: file.node,
                message: "--model \(file.node)=…: the graph has no node \(file.node)",
                hint: "name a model node of graphs/\(source.name)/graph.json")
        }
        try prepareOutput(source)
        try copyTree(from: source.directory, to: output)
        var lines: [String] = []
        var built = try ApplicationProject.load(output)
        var compiled: [String: String] = [:]
        for name in built.graph.nodes.map(\.name) {
            guard let info = built.nodeInfos[name], let original = source.nodeInfos[name] else { continue }
            switch info.role {
            case .code(let runtime):
                guard let src = info.sourceDirectory, let originalSource = original.sourceDirectory,
                    ApplicationProject.holdsSwiftSources(src)
                else {
                    if PythonInterpreter.isPython(runtime.path) {
                        lines.append("code node \(name): Python, its source in the package (\(built.shown(src: info)))")
                    }
                    continue
                }
                let program = (runtime.path as NSString).lastPathComponent
                let entry = "bin/\(program)"
                if compiled[src.path] == nil {
                    let executable = try compile(node: name, program: program, source: originalSource)
                    try install(executable, at: src.appendingPathComponent(entry), node: name)
                    try removeSwiftSources(in: src, node: name)
                    compiled[src.path] = entry
                    lines.append(
                        "code node \(name): Swift, compiled for release into \(built.shown(src: info))/\(entry)")
                }
                try rewrite(info, at: ["runtimeDescriptor", "entry", "path"], to: entry, node: name)
            case .model(_, let spec, _):
                let given = models.first { $0.node == name }?.path
                guard let spec else {
                    if let given {
                        throw ManifestError(
                            .missingModelSpec, node: name,
                            message:
                                "model node \"\(name)\" has no \"vantage\" block, so --model \(name)=\(given.path) "
                                + "cannot say how to feed it",
                            hint: "convert the project once with vantage app import-panorama DIR --model "
                                + "\(name)=PATH, then build")
                    }
                    lines.append(
                        "model node \(name): no model file in the package; bind one of the server's models when "
                            + "deploying (vantage instances create … --model \(name)=MODEL_ID)")
                    continue
                }
                let inside = !ProjectPath.leavesProject(spec.file, from: "")
                if given == nil, inside,
                    FileManager.default.fileExists(atPath: output.appendingPathComponent(spec.file).path)
                {
                    lines.append("model node \(name): \(spec.file), already in the project")
                    continue
                }
                let file = given ?? resolved(spec.file, in: source.directory)
                guard FileManager.default.fileExists(atPath: file.path) else {
                    throw ManifestError(
                        .unreadableFile, file: original.descriptorFile.map { source.context.shown($0) }, node: name,
                        key: "vantage.file",
                        message: "model node \"\(name)\" loads \(file.path), which does not exist",
                        hint: "give the model file with --model \(name)=PATH, or fix vantage.file")
                }
                guard let package = info.package?.directory else { continue }
                let relative = try copyModel(file, into: package, node: name)
                try rewrite(info, at: ["vantage", "file"], to: relative, node: name)
                lines.append("model node \(name): \(file.lastPathComponent) copied to \(relative)")
            default:
                continue
            }
            built = try ApplicationProject.load(output)
        }
        let outside = built.partsOutside()
        if let first = outside.first {
            throw ManifestError(
                .notSelfContained, node: first.node,
                message: "the build is still not self-contained: \(first.message)", hint: first.hint)
        }
        return lines
    }

    // MARK: The output folder

    /// Refuses an output inside the project (other than under `.build/`), or a folder that holds something other
    /// than an earlier build; removes an earlier build.
    private func prepareOutput(_ source: ApplicationProject) throws(ManifestError) {
        let fm = FileManager.default
        let root = source.directory.path
        if output.path == root
            || (output.path.hasPrefix(root + "/") && !output.path.hasPrefix(root + "/.build/"))
        {
            throw ManifestError(
                .invalidArgument, message: "--output \(output.path) is inside the project \(root)",
                hint: "name a folder outside the project, or under its .build/ (the default, \(root)/.build/app)")
        }
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: output.path, isDirectory: &isDirectory) {
            let contents = (try? fm.contentsOfDirectory(atPath: output.path)) ?? []
            guard isDirectory.boolValue, contents.isEmpty || contents.contains(Self.marker) else {
                throw ManifestError(
                    .invalidArgument,
                    message: "--output \(output.path) exists and is not an earlier build (no \(Self.marker) in it)",
                    hint: "name a new or empty folder, or remove \(output.path)")
            }
            do { try fm.removeItem(at: output) } catch {
                throw ManifestError(
                    .unreadableFile, file: output.path,
                    message: "cannot remove the earlier build at \(output.path): \(error.localizedDescription)",
                    hint: "remove it by hand, then build again")
            }
        }
        do {
            try fm.createDirectory(at: output, withIntermediateDirectories: true)
            try Data("built from \(root) by vantage app build\n".utf8).write(
                to: output.appendingPathComponent(Self.marker))
        } catch {
            throw ManifestError(
                .unreadableFile, file: output.path,
                message: "cannot create \(output.path): \(error.localizedDescription)",
                hint: "check that its parent folder is writable and the disk has room")
        }
    }

    /// Names never copied into a build: they are not part of the application.
    static let skipped: Set<String> = [".git", ".build", ".swiftpm", "__pycache__", ".DS_Store", "node_modules"]

    /// Copies `from` into the existing folder `to`, following symbolic links (a device gets files, not links to the
    /// build machine's).
    private func copyTree(from: URL, to: URL) throws(ManifestError) {
        let fm = FileManager.default
        do {
            for name in try fm.contentsOfDirectory(atPath: from.path).sorted() where !Self.skipped.contains(name) {
                let item = from.appendingPathComponent(name).resolvingSymlinksInPath()
                let target = to.appendingPathComponent(name)
                var isDirectory: ObjCBool = false
                guard fm.fileExists(atPath: item.path, isDirectory: &isDirectory) else { continue }
                if isDirectory.boolValue {
                    try fm.createDirectory(at: target, withIntermediateDirectories: true)
                    try copyTree(from: item, to: target)
                } else {
                    try fm.copyItem(at: item, to: target)
                }
            }
        } catch let error as ManifestError {
            throw error
        } catch {
            throw ManifestError(
                .unreadableFile, file: to.path,
                message: "cannot copy \(from.path) to \(to.path): \(error.localizedDescription)",
                hint: "check that the output folder is writable and the disk has room")
        }
    }

    // MARK: Models

    private func resolved(_ file: String, in directory: URL) -> URL {
        let path = (file as NSString).expandingTildeInPath
        return path.hasPrefix("/")
            ? URL(fileURLWithPath: path) : directory.appendingPathComponent(path).standardizedFileURL
    }

    /// Copies a model file (and an OpenVINO IR's `.bin`) into the model package; answers its path in the project.
    private func copyModel(_ file: URL, into package: URL, node: String) throws(ManifestError) -> String {
        let fm = FileManager.default
        var files = [file]
        if file.pathExtension.lowercased() == "xml" {
            let weights = file.deletingPathExtension().appendingPathExtension("bin")
            guard fm.fileExists(atPath: weights.path) else {
                throw ManifestError(
                    .unreadableFile, node: node,
                    message:
                        "model node \"\(node)\": the OpenVINO model \(file.path) has no \(weights.lastPathComponent) "
                        + "beside it",
                    hint: "put the .bin file beside the .xml, with the same name")
            }
            files.append(weights)
        }
        do {
            for item in files {
                let target = package.appendingPathComponent(item.lastPathComponent)
                if fm.fileExists(atPath: target.path) { try fm.removeItem(at: target) }
                try fm.copyItem(at: item.resolvingSymlinksInPath(), to: target)
            }
        } catch {
            throw ManifestError(
                .unreadableFile, node: node,
                message: "cannot copy \(file.path) into \(package.path): \(error.localizedDescription)",
                hint: "check that the output folder is writable and the disk has room")
        }
        return "packages/\(package.lastPathComponent)/\(file.lastPathComponent)"
    }

    /// Points a string of the node's descriptor (in the output) at `value`, keeping the rest of the file as written.
    private func rewrite(_ info: NodeInfo, at path: [String], to value: String, node: String) throws(ManifestError) {
        guard let file = info.descriptorFile else { return }
        let source = DocumentSource(file: file.lastPathComponent)
        let json = try readJSONFile(file, shownAs: source.file, what: "the descriptor")
        guard let text = try? String(contentsOf: file, encoding: .utf8),
            let edited = ImportWork.replacingString(at: path, in: text, json: json, with: value)
        else {
            throw ManifestError(
                .invalidValue, file: file.path, node: node, key: path.joined(separator: "."),
                message: "cannot set \(path.joined(separator: ".")) in the descriptor of node \"\(node)\"",
                hint: "write it as a string in \(file.lastPathComponent)")
        }
        do { try Data(edited.utf8).write(to: file, options: .atomic) } catch {
            throw ManifestError(
                .unreadableFile, file: file.path, message: "cannot write \(file.path): \(error.localizedDescription)",
                hint: "check that the output folder is writable")
        }
    }

    // MARK: Swift code nodes

    /// Compiles a Swift code node; answers the built program.
    private func compile(node: String, program: String, source: URL) throws(ManifestError) -> URL {
        let swift = try findSwift(node: node)
        let fm = FileManager.default
        let key = SHA256.hex(Data((source.path + "\n" + program).utf8)).prefix(12)
        let work = cache.appendingPathComponent("\(source.deletingLastPathComponent().lastPathComponent)-\(key)")
        var arguments = ["build", "-c", "release", "--static-swift-stdlib", "--product", program]
        if fm.fileExists(atPath: source.appendingPathComponent("Package.swift").path) {
            // The node's own package: built where it is, into the cache.
            arguments += ["--package-path", source.path, "--scratch-path", work.appendingPathComponent(".build").path]
        } else {
            let sdk = try findSDK(node: node)
            try stage(node: node, program: program, source: source, sdk: sdk, in: work)
            arguments += ["--package-path", work.path]
        }
        progress("compiling code node \(node) (Swift, release; the first build takes a minute)")
        let log = work.appendingPathComponent("build.log")
        let started = ContinuousClock.now
        let status = run(swift, arguments, log: log)
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        guard status == 0 else {
            let tail = text.split(separator: "\n").suffix(25).joined(separator: "\n")
            throw ManifestError(
                .buildFailed, node: node,
                message: "code node \"\(node)\" does not compile (swift build exited \(status)):\n\(tail)",
                hint: "fix the error above in the node's sources; the whole log is \(log.path)")
        }
        let binPath = work.appendingPathComponent(".build/release/\(program)")
        guard fm.isExecutableFile(atPath: binPath.path) else {
            throw ManifestError(
                .buildFailed, node: node,
                message: "swift build made no program \(program) for code node \"\(node)\" (looked at \(binPath.path))",
                hint: "name the package's executable product \(program), as the descriptor's entry.path does")
        }
        progress("compiled code node \(node) in \(Int((ContinuousClock.now - started) / .seconds(1))) s")
        return binPath
    }

    /// Writes the generated package: the node's sources as an executable target, beside the SDK's modules. Files are
    /// rewritten only when they changed, so SwiftPM rebuilds only what did.
    private func stage(node: String, program: String, source: URL, sdk: URL, in work: URL) throws(ManifestError) {
        do {
            for module in Self.sdkModules {
                try sync(
                    sdk.appendingPathComponent("Sources/\(module)"),
                    to: work.appendingPathComponent("Sources/\(module)"))
            }
            try sync(source, to: work.appendingPathComponent("Sources/CodeNode"), only: ".swift")
            try write(Self.manifest(program: program), to: work.appendingPathComponent("Package.swift"))
        } catch {
            throw ManifestError(
                .buildFailed, node: node,
                message:
                    "cannot prepare the build of code node \"\(node)\" in \(work.path): \(error.localizedDescription)",
                hint: "check that the cache folder is writable and the disk has room")
        }
    }

    /// The generated package's manifest.
    static func manifest(program: String) -> String {
        """
        // swift-tools-version: 6.0
        // Written by vantage app build: a code node and the Vantage Swift SDK it uses.
        import PackageDescription

        let swift6: [SwiftSetting] = [.swiftLanguageMode(.v6)]
        let package = Package(
            name: "vantage-code-node",
            products: [.executable(name: \(jsonStringLiteral(program)), targets: ["CodeNode"])],
            targets: [
                .systemLibrary(name: "CSQLite", path: "Sources/CSQLite", pkgConfig: "sqlite3"),
                .target(name: "VantageCore", dependencies: ["CSQLite"], path: "Sources/VantageCore", swiftSettings: swift6),
                .target(name: "VantageProtocol", path: "Sources/VantageProtocol", swiftSettings: swift6),
                .target(
                    name: "VantageAnalytics", dependencies: ["VantageCore"], path: "Sources/VantageAnalytics",
                    swiftSettings: swift6),
                .target(
                    name: "VantageSDK", dependencies: ["VantageProtocol", "VantageAnalytics", "VantageCore"],
                    path: "Sources/VantageSDK", swiftSettings: swift6),
                .executableTarget(
                    name: "CodeNode", dependencies: ["VantageSDK"], path: "Sources/CodeNode", swiftSettings: swift6),
            ])

        """
    }

    /// Makes `to` hold what `from` holds (files ending in `only`, when given): changed files rewritten, others
    /// untouched, files no longer in `from` removed.
    private func sync(_ from: URL, to: URL, only suffix: String? = nil) throws {
        let fm = FileManager.default
        try fm.createDirectory(at: to, withIntermediateDirectories: true)
        var wanted: Set<String> = []
        if let walk = fm.enumerator(atPath: from.path) {
            for case let path as String in walk {
                let item = from.appendingPathComponent(path)
                var isDirectory: ObjCBool = false
                guard fm.fileExists(atPath: item.path, isDirectory: &isDirectory), !isDirectory.boolValue,
                    suffix.map({ path.hasSuffix($0) }) ?? true,
                    !path.split(separator: "/").contains(where: { Self.skipped.contains(String($0)) })
                else { continue }
                wanted.insert(path)
                try write(try Data(contentsOf: item), to: to.appendingPathComponent(path))
            }
        }
        if let walk = fm.enumerator(atPath: to.path) {
            for case let path as String in walk where !wanted.contains(path) {
                var isDirectory: ObjCBool = false
                if fm.fileExists(atPath: to.appendingPathComponent(path).path, isDirectory: &isDirectory),
                    !isDirectory.boolValue
                {
                    try fm.removeItem(at: to.appendingPathComponent(path))
                }
            }
        }
    }

    private func write(_ text: String, to file: URL) throws { try write(Data(text.utf8), to: file) }

    private func write(_ data: Data, to file: URL) throws {
        if let existing = try? Data(contentsOf: file), existing == data { return }
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: file, options: .atomic)
    }

    /// Copies the built program into the package, stripped of its symbols when `strip` is there (a third of it).
    private func install(_ program: URL, at target: URL, node: String) throws(ManifestError) {
        let fm = FileManager.default
        do {
            try fm.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
            if fm.fileExists(atPath: target.path) { try fm.removeItem(at: target) }
            try fm.copyItem(at: program, to: target)
        } catch {
            throw ManifestError(
                .unreadableFile, node: node,
                message: "cannot copy \(program.path) to \(target.path): \(error.localizedDescription)",
                hint: "check that the output folder is writable and the disk has room")
        }
        if let strip = Self.onPath("strip") {
            _ = run(strip, ["--strip-all", target.path], log: nil)
        }
    }

    /// Removes the node's Swift sources from the output: the device runs the program.
    private func removeSwiftSources(in folder: URL, node: String) throws(ManifestError) {
        let fm = FileManager.default
        guard let walk = fm.enumerator(atPath: folder.path) else { return }
        let sources = walk.compactMap { $0 as? String }.filter {
            $0.hasSuffix(".swift") || $0 == "Package.resolved"
        }
        do {
            for path in sources { try fm.removeItem(at: folder.appendingPathComponent(path)) }
        } catch {
            throw ManifestError(
                .unreadableFile, node: node, message: "cannot remove the sources from \(folder.path): \(error)",
                hint: "check that the output folder is writable")
        }
    }

    // MARK: Tools

    private func findSwift(node: String) throws(ManifestError) -> URL {
        if let swift { return swift }
        if let found = Self.onPath("swift") { return found }
        let bundled = URL(fileURLWithPath: "/opt/swift/usr/bin/swift")
        if FileManager.default.isExecutableFile(atPath: bundled.path) { return bundled }
        throw ManifestError(
            .buildFailed, node: node,
            message: "code node \"\(node)\" is written in Swift, and no Swift toolchain was found (no swift on PATH)",
            hint: "install one (swift.org/install) on this build machine, or give it with --swift PATH; devices "
                + "need none")
    }

    /// The SDK's source: `--sdk`, `$VANTAGE_SWIFT_SDK`, the source tree this `vantage` was built in, or an installed
    /// Vantage's `share/vantage/swift`.
    private func findSDK(node: String) throws(ManifestError) -> URL {
        let fm = FileManager.default
        func holdsSDK(_ folder: URL) -> Bool {
            fm.fileExists(atPath: folder.appendingPathComponent("Sources/VantageSDK/Node.swift").path)
        }
        if let sdk {
            guard holdsSDK(sdk) else {
                throw ManifestError(
                    .invalidArgument, message: "--sdk \(sdk.path) holds no Sources/VantageSDK/Node.swift",
                    hint: "give the Vantage source folder, or an installed Vantage's share/vantage/swift")
            }
            return sdk
        }
        if let path = ProcessInfo.processInfo.environment["VANTAGE_SWIFT_SDK"], holdsSDK(URL(fileURLWithPath: path)) {
            return URL(fileURLWithPath: path)
        }
        var folder = executableDirectory.standardizedFileURL
        for _ in 0..<6 {
            if holdsSDK(folder) { return folder }
            let installed = folder.appendingPathComponent("share/vantage/swift")
            if holdsSDK(installed) { return installed }
            let parent = folder.deletingLastPathComponent()
            if parent.path == folder.path { break }
            folder = parent
        }
        throw ManifestError(
            .buildFailed, node: node,
            message: "code node \"\(node)\" is written in Swift, and the Vantage Swift SDK's sources were not found "
                + "near \(executableDirectory.path)",
            hint: "give them with --sdk DIR (the Vantage source folder, or an installed Vantage's "
                + "/usr/share/vantage/swift), or set VANTAGE_SWIFT_SDK")
    }

    static func onPath(_ name: String) -> URL? {
        for folder in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let url = URL(fileURLWithPath: String(folder)).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        return nil
    }

    /// Runs a tool to its end, its output (both streams) into `log`; answers its exit status (-1 when it cannot
    /// start).
    private func run(_ tool: URL, _ arguments: [String], log: URL?) -> Int32 {
        let process = Process()
        process.executableURL = tool
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        var handle: FileHandle?
        if let log {
            try? FileManager.default.createDirectory(
                at: log.deletingLastPathComponent(), withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            handle = try? FileHandle(forWritingTo: log)
        }
        process.standardOutput = handle ?? FileHandle.nullDevice
        process.standardError = handle ?? FileHandle.nullDevice
        defer { try? handle?.close() }
        let child = ChildProcess(process)
        do { try child.run() } catch { return -1 }
        child.waitUntilExit()
        return child.terminationStatus
    }
}

extension ApplicationProject {
    /// A code node's source folder as shown in messages.
    func shown(src info: NodeInfo) -> String { info.sourceDirectory.map { context.shown($0) } ?? "src" }
}
