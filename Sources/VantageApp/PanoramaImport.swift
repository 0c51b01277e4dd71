import Foundation
import VantageCore

// `vantage app import-panorama`: turns a panorama-cli project into a Vantage application folder.
//
// Vantage already reads panorama-cli projects as they are; what a project often lacks is what panorama-cli kept
// elsewhere or what only Panorama could run:
//
// - code descriptors that live only in assets/ (copied next to the package, where people look for them);
// - the code itself, when only the exported container image is left in assets/ (its /panorama folder becomes
//   src/);
// - model files: Panorama compiled a SageMaker Neo archive, which runs nowhere else, so the user supplies the
//   original model (--model NODE=PATH) and the import writes the descriptor's `vantage` block;
// - streams for abstract cameras, given when the application runs (--camera).
//
// The import changes only what it reports, one line per change; everything else it finds is reported as a thing to
// do, with the command or edit that does it.

/// Converts a panorama-cli project into a Vantage application, in place or into a new folder.
///
/// ```swift
/// let report = try PanoramaImport(
///     project: URL(fileURLWithPath: "lobby-app"),
///     models: [.init(node: "model_node", path: URL(fileURLWithPath: "ssd.onnx"))]
/// ).run()
/// report.lines.forEach { print($0) }
/// ```
public struct PanoramaImport: Sendable {
    /// A model file given for a model node: `--model NODE=PATH`.
    public struct ModelFile: Sendable, Equatable {
        /// The model node, as named in graph.json.
        public var node: String
        /// The model file: `.onnx`, `.pb`, `.tflite` or `.xml` (with its `.bin` beside it).
        public var path: URL

        /// Makes a model file.
        public init(node: String, path: URL) {
            self.node = node
            self.path = path.standardizedFileURL
        }

        /// Reads `NODE=PATH`; a relative path is taken from `directory` (the current directory by default).
        public init(argument: String, relativeTo directory: URL? = nil) throws(ManifestError) {
            guard let equals = argument.firstIndex(of: "="), equals != argument.startIndex,
                argument.index(after: equals) < argument.endIndex
            else {
                throw ManifestError(
                    .invalidArgument, message: "--model \(argument) is not written NODE=PATH",
                    hint: "write it as --model NODE=PATH, e.g. --model model_node=models/ssd.onnx")
            }
            let path = (String(argument[argument.index(after: equals)...]) as NSString).expandingTildeInPath
            let base = directory ?? URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true)
            self.init(
                node: String(argument[..<equals]),
                path: path.hasPrefix("/") ? URL(fileURLWithPath: path) : base.appendingPathComponent(path))
        }
    }

    /// The panorama-cli project: the folder holding `graphs/`, `packages/` and usually `assets/`.
    public var project: URL
    /// Where the Vantage application goes; `nil` converts the project in place. A new or empty folder: the project
    /// is copied there first.
    public var output: URL?
    /// Model files for model nodes whose packages hold only a SageMaker Neo archive (or to replace a model).
    public var models: [ModelFile]
    /// Report what would change, and change nothing.
    public var dryRun: Bool

    /// Makes an import.
    public init(project: URL, output: URL? = nil, models: [ModelFile] = [], dryRun: Bool = false) {
        self.project = project
        self.output = output
        self.models = models
        self.dryRun = dryRun
    }

    /// The model file extensions Vantage loads.
    static let modelExtensions = ["onnx", "pb", "tflite", "xml", "pdmodel"]

    /// Runs the import and reports every change made (or, with `dryRun`, that would be made) and everything left to
    /// do. Problems with the arguments (`--model` for a node that is not a model node, a file that does not exist,
    /// an `--output` folder that is not empty) and a project that cannot be read are errors, raised before anything
    /// changes.
    public func run() throws(ManifestError) -> ImportReport {
        let source = URL(fileURLWithPath: project.absoluteURL.path, isDirectory: true).standardizedFileURL
        let plan = try ImportPlan.make(source: source, models: models)
        // A model file needs a readable descriptor to write its vantage block into: checked before anything changes.
        for file in models {
            guard let node = plan.modelNodes.first(where: { $0.node == file.node }) else { continue }
            if case .failure(let error) = ImportWork.modelDescriptor(node, root: source) { throw error }
        }
        let target: URL
        var report = ImportReport(application: plan.name, source: source, directory: source, dryRun: dryRun)
        if let output {
            target = URL(fileURLWithPath: output.absoluteURL.path, isDirectory: true).standardizedFileURL
            try Self.checkOutput(target, source: source)
            report.directory = target
            if !dryRun { try Self.copyProject(source, to: target) }
            report.changes.append(
                "\(displayPath(target))/: copied the project \(displayPath(source)) here; the original is unchanged")
        } else {
            target = source
        }
        var work = ImportWork(
            plan: plan, readRoot: dryRun ? source : target, target: target, dryRun: dryRun, report: report)
        for package in plan.codePackages { work.importCode(package) }
        for model in plan.modelNodes { try work.importModel(model, file: models.first { $0.node == model.node }) }
        for camera in plan.cameraNodes { work.reportCamera(camera) }
        if !dryRun { work.checkResult() }
        work.finish()
        return work.report
    }

    // MARK: Arguments

    static func checkOutput(_ target: URL, source: URL) throws(ManifestError) {
        if target.path == source.path || target.path.hasPrefix(source.path + "/") {
            throw ManifestError(
                .invalidArgument, message: "--output \(target.path) is inside the project \(source.path)",
                hint: "name a folder outside the project, or leave out --output to convert the project in place")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: target.path, isDirectory: &isDirectory) else { return }
        let contents = (try? FileManager.default.contentsOfDirectory(atPath: target.path)) ?? ["?"]
        guard isDirectory.boolValue, contents.isEmpty else {
            throw ManifestError(
                .invalidArgument,
                message: "--output \(target.path) "
                    + (isDirectory.boolValue ? "exists and is not empty" : "exists and is not a folder"),
                hint: "name a new or empty folder, or leave out --output to convert the project in place")
        }
    }

    static func copyProject(_ source: URL, to target: URL) throws(ManifestError) {
        let fm = FileManager.default
        do {
            try fm.createDirectory(at: target, withIntermediateDirectories: true)
            for name in try fm.contentsOfDirectory(atPath: source.path) {
                try fm.copyItem(at: source.appendingPathComponent(name), to: target.appendingPathComponent(name))
            }
        } catch {
            throw ManifestError(
                .unreadableFile, file: target.path,
                message: "cannot copy the project to \(target.path): \(error.localizedDescription)",
                hint: "check that the folder is writable and the disk has room, then remove \(target.path) and "
                    + "import again")
        }
    }
}

/// What `vantage app import-panorama` did (or would do) and what is left to the user.
public struct ImportReport: Sendable {
    /// The application's name (its folder under `graphs/`).
    public var application: String
    /// The panorama-cli project imported.
    public var source: URL
    /// The Vantage application folder: `--output`, or the project itself.
    public var directory: URL
    /// Whether this was a dry run (nothing written).
    public var dryRun: Bool
    /// One line per change, paths relative to `directory` (with `dryRun`, the changes that would be made).
    public var changes: [String] = []
    /// What `vantage run` will install for each code package (this import installs nothing).
    public var dependencies: [String] = []
    /// Things found that need nothing from the user.
    public var notes: [String] = []
    /// What the user still has to do, each with the command or edit that does it.
    public var todo: [String] = []
    /// Whether the result loads and resolves as a Vantage application, given the `--camera` and `--model` values
    /// that `runCommand` still asks for; `nil` after a dry run, where nothing was checked.
    public var loads: Bool?
    /// The `vantage run` command to try next.
    public var runCommand = ""
    /// One sentence: what happened and how much is left.
    public var summary = ""

    /// Makes an empty report.
    public init(application: String, source: URL, directory: URL, dryRun: Bool) {
        self.application = application
        self.source = source
        self.directory = directory
        self.dryRun = dryRun
    }

    /// The report as printed: sections of changes, Python dependencies, notes and things to do, then the summary and
    /// the command to run next.
    public var lines: [String] {
        var lines: [String] = []
        let mode =
            source.path == directory.path
            ? "in place" : "into \(displayPath(directory))"
        lines.append(
            "Importing the panorama-cli project \(displayPath(source)) (application \"\(application)\") \(mode)"
                + (dryRun ? " — dry run: nothing is written" : ""))
        func section(_ title: String, _ items: [String], numbered: Bool = false) {
            guard !items.isEmpty else { return }
            lines.append("")
            lines.append(title)
            for (index, item) in items.enumerated() {
                lines.append(numbered ? "  \(index + 1). \(item)" : "  - \(item)")
            }
        }
        section(dryRun ? "Changes it would make:" : "Changes:", changes.isEmpty ? ["none"] : changes)
        section(
            "Python dependencies (vantage run installs them into a cached virtual environment; the import installs "
                + "nothing):", dependencies)
        section("Notes:", notes)
        section("To do:", todo, numbered: true)
        lines.append("")
        lines.append(summary)
        lines.append("Next: " + runCommand)
        return lines
    }
}

// MARK: - Planning

/// What the project holds, read without changing anything; `--model` arguments checked against it.
struct ImportPlan {
    struct CodePackage {
        var folder: String
        var reference: PackageReference
        var package: NodePackage
        var interface: PackageInterface
        var nodes: [String]
    }

    struct ModelNode {
        var node: String
        var folder: String
        var reference: PackageReference
        var package: NodePackage
        var interface: PackageInterface
    }

    struct CameraNode {
        var node: String
        var package: LoadedPackage
        var interface: PackageInterface
    }

    var name: String
    var codePackages: [CodePackage] = []
    var modelNodes: [ModelNode] = []
    var cameraNodes: [CameraNode] = []

    static func make(source: URL, models: [PanoramaImport.ModelFile]) throws(ManifestError) -> ImportPlan {
        let context = ProjectContext(directory: source)
        guard context.isDirectory(source) else {
            throw ManifestError(
                .unreadableFile, file: source.path, message: "there is no project folder at \(source.path)",
                hint: "give the panorama-cli project folder (the one holding graphs/, packages/ and assets/)")
        }
        let graphs = source.appendingPathComponent("graphs", isDirectory: true)
        let folders = context.subfolders(of: graphs)
        guard folders.count == 1 else {
            throw ManifestError(
                folders.isEmpty ? .missingGraph : .multipleGraphs, file: "graphs/",
                message: folders.isEmpty
                    ? "\(source.path) has no graphs/<app>/ folder, so it is not a panorama-cli project"
                    : "graphs/ holds \(folders.count) application folders (" + folders.joined(separator: ", ") + ")",
                hint: folders.isEmpty
                    ? "give the project root (the folder panorama-cli init-project made, holding graphs/ and packages/)"
                    : "keep exactly one application per project: move the others into projects of their own")
        }
        let name = folders[0]
        let graphSource = DocumentSource(file: "graphs/\(name)/graph.json")
        let graphURL = graphs.appendingPathComponent(name).appendingPathComponent("graph.json")
        guard FileManager.default.fileExists(atPath: graphURL.path) else {
            throw ManifestError(
                .missingGraph, file: graphSource.file, message: "graphs/\(name)/ has no graph.json",
                hint: "create graphs/\(name)/graph.json with {\"nodeGraph\": {...}}")
        }
        let (graph, map) = try GraphReader.graph(
            try readJSONFile(graphURL, shownAs: graphSource.file, what: "graph.json"), source: graphSource)
        var packages: [String: LoadedPackage] = [:]
        for (index, reference) in graph.packages.enumerated() {
            packages[reference.name] = try context.loadPackage(
                reference, declaredIn: graphSource, at: map.packages[index], key: "nodeGraph.packages[\(index)]")
        }

        var plan = ImportPlan(name: name)
        var roles: [String: String] = [:]
        for node in graph.nodes {
            guard case .interface(let interfaceName) = node.kind else {
                roles[node.name] = "a parameter node"
                continue
            }
            let position = map.nodes[node.name]
            guard let (packageName, localName) = GraphReader.parseInterfaceName(interfaceName),
                let package = packages[packageName], let interface = package.package.interface(named: localName)
            else {
                throw ManifestError(
                    .unknownInterface, file: graphSource.file, line: position?.line, column: position?.column,
                    node: node.name, key: "interface",
                    message: "node \"\(node.name)\" uses interface \(interfaceName), which no declared package defines",
                    hint: "fix the node's interface in graph.json, or declare its package in \"packages\"")
            }
            let folder = "packages/\(package.reference.folderName)"
            switch interface.category {
            case .businessLogic:
                roles[node.name] = "a code node (business_logic)"
                if let index = plan.codePackages.firstIndex(where: { $0.folder == folder }) {
                    plan.codePackages[index].nodes.append(node.name)
                } else if package.directory != nil {
                    plan.codePackages.append(
                        CodePackage(
                            folder: folder, reference: package.reference, package: package.package,
                            interface: interface, nodes: [node.name]))
                }
            case .mlModel:
                roles[node.name] = "a model node (ml_model)"
                if package.directory != nil {
                    plan.modelNodes.append(
                        ModelNode(
                            node: node.name, folder: folder, reference: package.reference, package: package.package,
                            interface: interface))
                }
            case .mediaSource:
                roles[node.name] = "a camera node (media_source)"
                plan.cameraNodes.append(CameraNode(node: node.name, package: package, interface: interface))
            case .mediaSink:
                roles[node.name] = "a display node (media_sink)"
            }
        }

        // --model arguments, checked before anything changes.
        let modelNames = plan.modelNodes.map(\.node)
        let modelHint =
            modelNames.isEmpty
            ? "this project has no model nodes"
            : "model nodes: " + modelNames.joined(separator: ", ") + "; write e.g. --model \(modelNames[0])=PATH"
        var seen = Set<String>()
        for model in models {
            let argument = "--model \(model.node)=\(model.path.path)"
            guard modelNames.contains(model.node) else {
                var hint = modelHint
                if roles[model.node] == nil, let guess = closestMatch(model.node, in: modelNames) {
                    hint = "did you mean \"\(guess)\"? " + hint
                }
                throw ManifestError(
                    .invalidArgument, node: model.node,
                    message: "\(argument): "
                        + (roles[model.node].map { "\"\(model.node)\" is \($0), not a model node" }
                            ?? "the project has no node \"\(model.node)\""),
                    hint: hint)
            }
            guard seen.insert(model.node).inserted else {
                throw ManifestError(
                    .invalidArgument, node: model.node, message: "--model \(model.node) is given twice",
                    hint: "give one file per model node")
            }
            guard PythonDependencies.isFile(model.path) else {
                throw ManifestError(
                    .invalidArgument, node: model.node, message: "\(argument): the file does not exist",
                    hint: "give the path of the model file (ONNX, TensorFlow .pb, TFLite or OpenVINO .xml), "
                        + "absolute or relative to the current directory")
            }
            let ext = model.path.pathExtension.lowercased()
            guard PanoramaImport.modelExtensions.contains(ext) else {
                let isArchive = model.path.lastPathComponent.hasSuffix(".tar.gz") || ext == "tgz" || ext == "gz"
                throw ManifestError(
                    .invalidArgument, node: model.node,
                    message: "\(argument): "
                        + (isArchive
                            ? "this is an archive, like the SageMaker Neo input Panorama compiled, which cannot run "
                                + "outside Panorama"
                            : "Vantage cannot load .\(ext) files"),
                    hint: "give the model itself as ONNX (.onnx), TensorFlow frozen graph (.pb), TFLite (.tflite) or "
                        + "OpenVINO IR (.xml, with its .bin beside it)")
            }
            if ext == "xml" {
                let weights = model.path.deletingPathExtension().appendingPathExtension("bin")
                guard PythonDependencies.isFile(weights) else {
                    throw ManifestError(
                        .invalidArgument, node: model.node,
                        message: "\(argument): the OpenVINO IR's weights \(weights.path) do not exist",
                        hint: "put the .bin file beside the .xml, with the same name")
                }
            }
        }
        return plan
    }
}

// MARK: - Doing it

/// One import run: reads from `readRoot` (the project, or its copy), writes under `target`, and reports.
struct ImportWork {
    let plan: ImportPlan
    let readRoot: URL
    let target: URL
    let dryRun: Bool
    var report: ImportReport
    /// Nodes whose problems are already in the report, so the final check does not repeat them.
    var reportedNodes = Set<String>()
    /// Camera nodes that need `--camera`, and model nodes that need `--model`, for the run command.
    var camerasToGive: [String] = []
    var modelsToGive: [String] = []

    private var fm: FileManager { .default }

    init(plan: ImportPlan, readRoot: URL, target: URL, dryRun: Bool, report: ImportReport) {
        self.plan = plan
        self.readRoot = readRoot
        self.target = target
        self.dryRun = dryRun
        self.report = report
    }

    func exists(_ relative: String) -> Bool { fm.fileExists(atPath: readRoot.appendingPathComponent(relative).path) }

    // MARK: Code packages

    mutating func importCode(_ code: ImportPlan.CodePackage) {
        let folder = code.folder
        let nodes = code.nodes.map { "\"\($0)\"" }.joined(separator: ", ")
        let implementation = code.interface.asset.flatMap { code.package.asset(named: $0) }?.implementations
            .first { $0.type == .container }
        let example =
            "{\"runtimeDescriptor\": {\"envelopeVersion\": \"2021-01-01\", \"entry\": {\"path\": \"python3\", "
            + "\"name\": \"/panorama/app.py\"}}}"

        // The descriptor: panorama-cli build-container keeps it in assets/ only.
        var descriptorFile: URL?
        if exists("\(folder)/descriptor.json") {
            descriptorFile = readRoot.appendingPathComponent("\(folder)/descriptor.json")
        } else if let uri = implementation?.descriptorUri, exists("assets/\(uri)") {
            let from = readRoot.appendingPathComponent("assets/\(uri)")
            do {
                try copy(from, to: "\(folder)/descriptor.json")
                report.changes.append(
                    "\(folder)/descriptor.json: copied from assets/\(uri), the code descriptor panorama-cli kept there")
                descriptorFile = dryRun ? from : target.appendingPathComponent("\(folder)/descriptor.json")
            } catch {
                report.todo.append(
                    "\(folder)/descriptor.json: could not copy assets/\(uri) there (\(error)) — copy it by hand")
                descriptorFile = from
            }
        } else {
            reportedNodes.formUnion(code.nodes)
            let missing = implementation?.descriptorUri.map {
                " and assets/\($0), which package.json names, is missing"
            }
            report.todo.append(
                "code node \(nodes): \(folder)/descriptor.json does not exist" + (missing ?? "")
                    + " — write it, e.g. " + example)
        }

        // The code: what the Dockerfile copies to /panorama (src/, or the package itself), or the /panorama folder
        // of the exported container image.
        let packageURL = readRoot.appendingPathComponent(folder)
        let (panoramaURL, panoramaWhy) = ProjectContext.panoramaFolder(of: packageURL)
        let isPackageRoot = panoramaURL.standardizedFileURL.path == packageURL.standardizedFileURL.path
        let rootPath = readRoot.standardizedFileURL.path + "/"
        let derived = String(panoramaURL.standardizedFileURL.path.dropFirst(rootPath.count))
        // The package folder itself counts only when its Dockerfile says so; otherwise the code is expected in src/.
        var hasSource = !isPackageRoot || panoramaWhy.hasPrefix("from its")
        let sourceFolder = hasSource ? derived : "\(folder)/src"
        hasSource = hasSource && PythonDependencies.isDirectory(readRoot.appendingPathComponent(sourceFolder))
        if hasSource {
            report.notes.append("code node \(nodes): /panorama is \(sourceFolder)/ (\(panoramaWhy))")
        }
        if !hasSource {
            if let uri = implementation?.assetUri, exists("assets/\(uri)") {
                let archive = readRoot.appendingPathComponent("assets/\(uri)")
                if dryRun {
                    report.changes.append(
                        "\(sourceFolder)/: extracted from assets/\(uri), the /panorama folder of the container image")
                } else if let problem = extractPanoramaFolder(
                    archive, into: target.appendingPathComponent(sourceFolder))
                {
                    reportedNodes.formUnion(code.nodes)
                    report.todo.append(
                        "code node \(nodes): \(sourceFolder)/ does not exist and the container image assets/\(uri) "
                            + "gave none: \(problem) — put the code (what the Dockerfile copied to /panorama) in "
                            + "\(sourceFolder)/")
                } else {
                    hasSource = true
                    report.changes.append(
                        "\(sourceFolder)/: extracted from assets/\(uri), the /panorama folder of the container image")
                }
            } else {
                reportedNodes.formUnion(code.nodes)
                let archive = implementation.map { " and the container image assets/\($0.assetUri) is not there" }
                report.todo.append(
                    "code node \(nodes): the code is missing: \(sourceFolder)/ does not exist" + (archive ?? "")
                        + " — put the code (what the Dockerfile copies to /panorama) in \(sourceFolder)/, or put the "
                        + "container image back in assets/ and import again")
            }
        }

        // The entry must name a file that is there.
        if let descriptorFile, hasSource {
            checkEntry(descriptorFile, code: code, sourceFolder: sourceFolder)
        }

        // Python dependencies: reported here, installed by vantage run.
        let packageDirectory = readRoot.appendingPathComponent(folder)
        do {
            let dependencies = try PythonDependencies.read(
                packageDirectory: packageDirectory,
                sourceDirectory: readRoot.appendingPathComponent(sourceFolder, isDirectory: true))
            let shown = ShownPaths(packageDirectory: readRoot, sourceDirectory: packageDirectory)
            if let requirements = dependencies.requirementsFile {
                let file = shown.relative(requirements.path)
                report.dependencies.append("\(file): pip install -r \(file)")
            }
            for install in dependencies.pipInstalls {
                let arguments = install.arguments.map { shellQuoted(shown.relative($0)) }
                report.dependencies.append(
                    "\(folder)/Dockerfile:\(install.line): pip install " + arguments.joined(separator: " "))
            }
            // In a dry run, files the extraction would bring are not there yet.
            if hasSource {
                for warning in dependencies.warnings { report.todo.append("\(folder)/\(warning)") }
            }
            for line in dependencies.ignoredDockerfileLines {
                let text = "\(folder)/Dockerfile:\(line.line): \(line)"
                if line.needsAction { report.todo.append(text) } else { report.notes.append(text) }
            }
            if dependencies.isEmpty {
                report.dependencies.append(
                    "\(folder): "
                        + (dryRun && !hasSource
                            ? "none known yet (src/ is not extracted in a dry run)"
                            : dependencies.report.first ?? "none"))
            }
        } catch {
            report.todo.append(error.description)
        }
    }

    /// Reports an entry that names a file missing from src/.
    mutating func checkEntry(_ descriptorFile: URL, code: ImportPlan.CodePackage, sourceFolder: String) {
        let shown =
            descriptorFile.path.hasPrefix(readRoot.path + "/")
            ? String(descriptorFile.path.dropFirst(readRoot.path.count + 1)) : descriptorFile.path
        do {
            let json = try readJSONFile(descriptorFile, shownAs: shown, what: "the code descriptor")
            let entry = try DescriptorReader.runtime(json, source: DocumentSource(file: shown), node: code.nodes[0])
            if let version = PythonInterpreter.requestedVersion(entry.path), !version.isEmpty, version != [3] {
                report.notes.append(
                    "code node \"\(code.nodes[0])\": entry.path \(entry.path) (the Panorama image's interpreter) runs "
                        + "with this machine's Python 3, or the package's virtual environment made from it; "
                        + "vantage run says so once when the versions differ")
            }
            let program = entry.name
            guard program.hasPrefix("/panorama/") else { return }
            let file = "\(sourceFolder)/" + program.dropFirst("/panorama/".count)
            if !exists(file) {
                reportedNodes.formUnion(code.nodes)
                report.todo.append(
                    "code node \"\(code.nodes[0])\": its descriptor runs \(program), but \(file) does not exist — "
                        + "put the program there, or fix entry.name in \(shown)")
            }
        } catch {
            reportedNodes.formUnion(code.nodes)
            report.todo.append(error.description)
        }
    }

    // MARK: Model nodes

    /// A model node's descriptor as found: where, its text, and what it says.
    struct ModelDescriptorFile {
        /// Relative to the project: `packages/<pkg>/descriptor.json` or `assets/<sha>.json`.
        var shown: String
        var text: String
        var json: SourceJSON
        var descriptor: ModelDescriptor
        var spec: ModelSpec?
        /// Whether it is one of several descriptors of its package (one per asset, named by `descriptorUri`),
        /// rather than the package's descriptor.json.
        var perAsset = false
        var descriptorUri: String?
    }

    /// Finds and reads a model node's descriptor: in the package folder, else in assets/ where panorama-cli
    /// add-raw-model put it.
    static func modelDescriptor(_ model: ImportPlan.ModelNode, root: URL) -> Result<ModelDescriptorFile, ManifestError>
    {
        let local = "\(model.folder)/descriptor.json"
        let context = ProjectContext(directory: root)
        let location = context.locateDescriptor(
            folder: root.appendingPathComponent(model.folder), package: model.package, interface: model.interface)
        let uri = location.descriptorUri
        guard let found = location.file else {
            let several =
                model.package.assets.filter { $0.implementations.contains { $0.descriptorUri != nil } }.count > 1
            let file = several ? "\(model.folder)/descriptor_\(model.interface.asset ?? model.node).json" : local
            return .failure(
                ManifestError(
                    .missingDescriptor, file: file, node: model.node,
                    message: "model node \"\(model.node)\" has no descriptor: "
                        + (uri.map {
                            "assets/\($0), which package.json names, is missing and no file in \(model.folder)/ "
                                + "has that SHA-256"
                        } ?? "\(local) does not exist"),
                    hint: "write \(file) with {\"mlModelDescriptor\": {\"envelopeVersion\": \"2021-01-01\", "
                        + "\"framework\": \"PYTORCH\", \"inputs\": [{\"name\": \"data\", \"shape\": [1, 3, 224, 224]}]}} "
                        + "(the input names and shapes the code uses)"
                        + (several
                            ? " and set asset \"\(model.interface.asset ?? "")\"'s descriptorUri in "
                                + "\(model.folder)/package.json to <its SHA-256>.json" : "")))
        }
        let shown = context.shown(found)
        let url = root.appendingPathComponent(shown)
        do {
            let json = try readJSONFile(url, shownAs: shown, what: "the model descriptor")
            let (descriptor, spec, _) = try DescriptorReader.model(
                json, source: DocumentSource(file: shown), node: model.node)
            let text = String(decoding: (try? Data(contentsOf: url)) ?? Data(), as: UTF8.self)
            return .success(
                ModelDescriptorFile(
                    shown: shown, text: text, json: json, descriptor: descriptor, spec: spec,
                    perAsset: location.how == .byDigest
                        || location.how == .assets
                            && model.package.assets.filter { $0.implementations.contains { $0.descriptorUri != nil } }
                                .count
                                > 1,
                    descriptorUri: uri))
        } catch {
            return .failure(error)
        }
    }

    mutating func importModel(_ model: ImportPlan.ModelNode, file: PanoramaImport.ModelFile?) throws(ManifestError) {
        let folder = model.folder
        let archive =
            model.interface.asset.flatMap { model.package.asset(named: $0) }?.implementations
            .first { $0.type == .model }.map { "the SageMaker Neo archive assets/\($0.assetUri)" }
            ?? "its SageMaker Neo archive"
        var local = "\(folder)/descriptor.json"
        let found: ModelDescriptorFile
        switch Self.modelDescriptor(model, root: readRoot) {
        case .success(let descriptorFile): found = descriptorFile
        case .failure(let error):
            if file != nil { throw error }
            reportedNodes.insert(model.node)
            if error.code == .missingDescriptor { modelsToGive.append(model.node) }
            report.todo.append(error.description)
            return
        }
        let (shown, text, json, descriptor, spec) = (found.shown, found.text, found.json, found.descriptor, found.spec)
        // One of several descriptors in the package: it is written where it was found (kept in the package folder
        // under a readable name), and the asset's descriptorUri follows its new SHA-256.
        if found.perAsset {
            local =
                shown.hasPrefix("assets/") ? "\(folder)/descriptor_\(model.interface.asset ?? model.node).json" : shown
        }

        guard let file else {
            if let spec {
                let path = (spec.file as NSString).expandingTildeInPath
                let url = path.hasPrefix("/") ? URL(fileURLWithPath: path) : target.appendingPathComponent(path)
                if fm.fileExists(atPath: url.path) || dryRun && exists(path) {
                    report.notes.append(
                        "model node \"\(model.node)\": loads \(spec.file) (its \"vantage\" block in \(shown))")
                } else {
                    reportedNodes.insert(model.node)
                    modelsToGive.append(model.node)
                    report.todo.append(
                        "model node \"\(model.node)\": its \"vantage\" block in \(shown) names \(spec.file), which does "
                            + "not exist — put the model there, or supply it: vantage app import-panorama "
                            + "\(shellQuoted(displayPath(target))) --model \(model.node)=PATH")
                }
                return
            }
            reportedNodes.insert(model.node)
            modelsToGive.append(model.node)
            let expects = descriptor.inputs.map { "\"\($0.name)\" shape \($0.shape)" }.joined(separator: ", ")
            report.todo.append(
                "model node \"\(model.node)\": supply the model as ONNX/TensorFlow/TFLite/OpenVINO IR — \(archive) "
                    + "cannot run outside Panorama; the code calls it with input "
                    + (expects.isEmpty ? "(none listed)" : expects) + "; run: vantage app import-panorama "
                    + "\(shellQuoted(displayPath(target))) --model \(model.node)=PATH (or vantage run "
                    + "\(shellQuoted(displayPath(target))) --model \(model.node)=PATH)")
            return
        }

        // Copy the model (and an IR's weights) into the package, then point the descriptor at it.
        let modelFolder = "\(folder)/model"
        let copied = "\(modelFolder)/\(file.path.lastPathComponent)"
        var copies = [(file.path, copied)]
        if file.path.pathExtension.lowercased() == "xml" {
            let weights = file.path.deletingPathExtension().appendingPathExtension("bin")
            copies.append((weights, "\(modelFolder)/\(weights.lastPathComponent)"))
        }
        for (from, to) in copies where from.path != target.appendingPathComponent(to).path {
            do {
                try copy(from, to: to)
            } catch {
                throw ManifestError(
                    .unreadableFile, file: to, node: model.node,
                    message: "cannot copy \(from.path) to \(to): \(error)",
                    hint: "check that the file is readable and the folder writable")
            }
            report.changes.append("\(to): copied from \(from.path)")
        }
        let newText: String
        let change: String
        if spec != nil {
            guard let replaced = Self.replacingVantageFile(in: text, json: json, with: copied) else {
                throw ManifestError(
                    .invalidValue, file: shown, node: model.node, key: "vantage",
                    message: "cannot find the \"file\" of the vantage block in \(shown)",
                    hint: "set \"file\": \"\(copied)\" in the vantage block by hand")
            }
            newText = replaced
            change = "set vantage.file to \(copied)"
        } else {
            let inferred = ModelSpec.inferred(from: descriptor, file: copied)
            newText = Self.addingVantageBlock(inferred, to: text, json: json)
            let inputs = inferred.inputs.map { input -> String in
                var words = ["\"\(input.name)\""]
                if let layout = input.layout { words.append(layout) }
                if let width = input.width, let height = input.height { words.append("\(width)×\(height)") }
                return words.joined(separator: " ")
            }
            change =
                "added the \"vantage\" block (file \(copied), input " + inputs.joined(separator: ", ")
                + ", decoder raw); mlModelDescriptor is unchanged"
        }
        // The result must read back as a model descriptor with this file.
        let readBack = try? DescriptorReader.model(
            JSONParser.parse(Data(newText.utf8)), source: DocumentSource(file: local), node: model.node)
        guard readBack?.1?.file == copied else {
            throw ManifestError(
                .invalidValue, file: shown, node: model.node, key: "vantage",
                message: "the descriptor with the vantage block written into it does not read back",
                hint: "add \"vantage\": {\"file\": \"\(copied)\"} beside \"mlModelDescriptor\" in \(local) by hand")
        }
        do {
            try write(newText, to: local)
        } catch {
            throw ManifestError(
                .unreadableFile, file: local, node: model.node, message: "cannot write \(local): \(error)",
                hint: "check that the package folder is writable")
        }
        if shown != local {
            report.changes.append("\(local): copied from \(shown), the model descriptor panorama-cli kept there")
        }
        report.changes.append("\(local): " + change)
        if found.perAsset, let oldURI = found.descriptorUri {
            let newURI = SHA256.hex(newText) + ".json"
            let manifest = "\(folder)/package.json"
            let manifestText =
                (try? String(contentsOf: readRoot.appendingPathComponent(manifest), encoding: .utf8)) ?? ""
            guard manifestText.contains("\"\(oldURI)\"") else {
                throw ManifestError(
                    .invalidValue, file: manifest, node: model.node, key: "descriptorUri",
                    message: "cannot find descriptorUri \(oldURI) in \(manifest)",
                    hint: "set asset \"\(model.interface.asset ?? "")\"'s descriptorUri to \"\(newURI)\" by hand")
            }
            do {
                try write(manifestText.replacingOccurrences(of: "\"\(oldURI)\"", with: "\"\(newURI)\""), to: manifest)
            } catch {
                throw ManifestError(
                    .unreadableFile, file: manifest, node: model.node, message: "cannot write \(manifest): \(error)",
                    hint: "check that the package folder is writable")
            }
            report.changes.append(
                "\(manifest): asset \"\(model.interface.asset ?? "")\"'s descriptorUri is now \(newURI), the SHA-256 of "
                    + "\(local) (as panorama-cli names descriptors), so each model node keeps its own descriptor")
        }
    }

    /// `text` with `"vantage": {...}` added as the last member of its top-level object; everything else is kept
    /// byte for byte.
    static func addingVantageBlock(_ spec: ModelSpec, to text: String, json: SourceJSON) -> String {
        guard case .object(let members) = json.kind else { return text }
        var indent = "  "
        if let first = members.first, first.keyPosition.line > json.position.line {
            indent = String(repeating: " ", count: max(first.keyPosition.column - 1, 0))
        }
        var body = Substring(text)
        while let last = body.last, last.isWhitespace { body = body.dropLast() }
        guard body.last == "}" else { return text }
        body = body.dropLast()
        while let last = body.last, last.isWhitespace { body = body.dropLast() }
        return String(body) + (members.isEmpty ? "" : ",") + "\n" + indent + "\"vantage\": "
            + spec.vantageBlockJSON(indent: indent, step: indent) + "\n}\n"
    }

    /// `text` with the string value of `vantage.file` replaced by `file`; nil if it cannot be found.
    static func replacingVantageFile(in text: String, json: SourceJSON, with file: String) -> String? {
        replacingString(at: ["vantage", "file"], in: text, json: json, with: file)
    }

    /// `text` (the JSON document `json` was read from) with the string at the object keys `path` replaced by
    /// `replacement`, the rest of the text as it was; nil if there is no string there.
    static func replacingString(at path: [String], in text: String, json: SourceJSON, with replacement: String)
        -> String?
    {
        var node = json
        for key in path {
            guard case .object(let members) = node.kind, let next = members.first(where: { $0.key == key })?.value
            else { return nil }
            node = next
        }
        let value = node
        guard case .string = value.kind else { return nil }
        var bytes = Array(text.utf8)
        // Walk to the value's line and column the way the JSON reader counts them (characters, not bytes).
        var index = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        var line = 1
        var column = 1
        while index < bytes.count, line < value.position.line || column < value.position.column {
            if bytes[index] == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if bytes[index] & 0xC0 != 0x80 {
                column += 1
            }
            index += 1
            // Skip the continuation bytes of the character just passed.
            while index < bytes.count, bytes[index] & 0xC0 == 0x80 { index += 1 }
        }
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
        var end = index + 1
        while end < bytes.count, bytes[end] != UInt8(ascii: "\"") {
            end += bytes[end] == UInt8(ascii: "\\") ? 2 : 1
        }
        guard end < bytes.count else { return nil }
        bytes.replaceSubrange(index...end, with: Array(jsonStringLiteral(replacement).utf8))
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: Cameras

    mutating func reportCamera(_ camera: ImportPlan.CameraNode) {
        let definition = ProjectContext(directory: readRoot).cameraDefinition(
            package: camera.package, interface: camera.interface)
        guard definition.stream == nil else {
            report.notes.append(
                "camera node \"\(camera.node)\": streams from the streamUrl of \(camera.package.file) (override it with "
                    + "--camera \(camera.node)=URL when you run it)")
            return
        }
        camerasToGive.append(camera.node)
        reportedNodes.insert(camera.node)
        let why =
            camera.package.reference.name == "panorama::abstract_rtsp_media_source"
            ? "is an abstract camera (panorama::abstract_rtsp_media_source)"
            : "has no stream: \(definition.whyNoStream)"
        report.todo.append(
            "camera node \"\(camera.node)\" \(why): give --camera \(camera.node)=rtsp://… when you run it (a path to a "
                + "video file works too)")
    }

    // MARK: Checking and finishing

    /// Loads and resolves the result as `vantage run` will, with placeholders for the cameras and models the user
    /// still gives; a problem not reported yet becomes a thing to do.
    mutating func checkResult() {
        do {
            let project = try ApplicationProject.load(target)
            var overrides = RunOverrides()
            for camera in camerasToGive {
                overrides.cameras.append(CameraOverride(node: camera, url: "rtsp://camera.example/stream"))
            }
            // A stand-in for each model file still to be given (resolving checks that the file exists, not what it
            // holds).
            let standIn = FileManager.default.temporaryDirectory
                .appendingPathComponent("vantage-import-\(UUID().uuidString).onnx")
            if !modelsToGive.isEmpty { _ = FileManager.default.createFile(atPath: standIn.path, contents: Data()) }
            defer { try? FileManager.default.removeItem(at: standIn) }
            for model in modelsToGive { overrides.models[model] = standIn.path }
            _ = try project.resolve(overrides)
            report.loads = true
        } catch {
            report.loads = false
            if let node = error.node, reportedNodes.contains(node) { return }
            report.todo.append("vantage cannot run the application yet: \(error)")
        }
    }

    mutating func finish() {
        var command = ["vantage", "run", shellQuoted(displayPath(target))]
        for camera in camerasToGive { command.append("--camera \(camera)=rtsp://HOST:554/PATH") }
        for model in modelsToGive { command.append("--model \(model)=PATH") }
        report.runCommand = command.joined(separator: " ")
        let changes = "\(report.changes.count) change\(report.changes.count == 1 ? "" : "s")"
        let todo =
            report.todo.isEmpty
            ? "nothing left to do" : "\(report.todo.count) thing\(report.todo.count == 1 ? "" : "s") left to do"
        if dryRun {
            report.summary =
                "Dry run: \(changes) would be made to \(displayPath(target)); nothing was written; \(todo)."
        } else {
            let loads =
                report.loads != true
                ? " It does not run yet: see the things to do above."
                : modelsToGive.isEmpty
                    ? " It loads as a Vantage application."
                    : " It loads as a Vantage application once the model files are given."
            let place =
                report.source.path == target.path
                ? "Converted \(displayPath(target)) in place"
                : "Imported \(displayPath(report.source)) into \(displayPath(target))"
            report.summary = "\(place): \(changes), \(todo)." + loads
        }
    }

    // MARK: File operations (none in a dry run)

    func copy(_ from: URL, to relative: String) throws {
        guard !dryRun else { return }
        let destination = target.appendingPathComponent(relative)
        try fm.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
        if fm.fileExists(atPath: destination.path) { try fm.removeItem(at: destination) }
        try fm.copyItem(at: from, to: destination)
    }

    func write(_ text: String, to relative: String) throws {
        guard !dryRun else { return }
        try Data(text.utf8).write(to: target.appendingPathComponent(relative), options: .atomic)
    }

    /// Extracts the `panorama/` folder of a `docker export` archive into `destination`; returns what went wrong,
    /// or nil.
    func extractPanoramaFolder(_ archive: URL, into destination: URL) -> String? {
        let listing = runTar(["-tf", archive.path])
        guard listing.status == 0 else { return "tar cannot read it (\(listing.errors))" }
        let names = listing.output.split(separator: "\n")
        let member: String
        if names.contains(where: { $0 == "./panorama/" || $0.hasPrefix("./panorama/") }) {
            member = "./panorama"
        } else if names.contains(where: { $0 == "panorama/" || $0.hasPrefix("panorama/") }) {
            member = "panorama"
        } else {
            return "it has no /panorama folder"
        }
        let scratch = destination.deletingLastPathComponent()
            .appendingPathComponent(".vantage-import-\(UUID().uuidString)", isDirectory: true)
        defer { try? fm.removeItem(at: scratch) }
        do {
            try fm.createDirectory(at: scratch, withIntermediateDirectories: true)
            let extraction = runTar(["-xf", archive.path, "-C", scratch.path, member])
            guard extraction.status == 0 else { return "tar could not extract /panorama (\(extraction.errors))" }
            try fm.moveItem(at: scratch.appendingPathComponent("panorama"), to: destination)
        } catch {
            return "cannot write \(destination.path) (\(error.localizedDescription))"
        }
        return nil
    }

    func runTar(_ arguments: [String]) -> (status: Int32, output: String, errors: String) {
        let process = Process()
        process.executableURL = URL(
            fileURLWithPath: fm.isExecutableFile(atPath: "/bin/tar") ? "/bin/tar" : "/usr/bin/tar")
        process.arguments = arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        let child = ChildProcess(process)
        do {
            try child.run()
        } catch {
            return (-1, "", "cannot start tar: \(error.localizedDescription)")
        }
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        child.waitUntilExit()  // both pipes closed: tar is exiting
        let message = String(decoding: err, as: UTF8.self).split(separator: "\n").prefix(2).joined(separator: "; ")
        return (child.terminationStatus, String(decoding: out, as: UTF8.self), message)
    }
}

/// A path as shown to the user: relative to the current directory when inside it, else absolute.
func displayPath(_ url: URL) -> String {
    let path = url.standardizedFileURL.path
    let current = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).standardizedFileURL.path
    if path == current { return "." }
    let prefix = current.hasSuffix("/") ? current : current + "/"
    return path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : path
}
