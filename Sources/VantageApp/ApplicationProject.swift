// VantageApp: reads an AWS Panorama application in panorama-cli's project layout and resolves it into what the
// Vantage runtime starts.
//
//     app/
//       assets/                      descriptors (and archives) named by sha256, written by panorama-cli
//       graphs/app/graph.json        the node graph: packages, nodes, edges
//       packages/<acct>-<pkg>-<ver>/ package.json, descriptor.json, src/ (code)
//
// `ApplicationProject.load(_:)` checks everything that does not depend on how the application is run: the graph,
// every package it declares, interfaces, edges, descriptors and model specs. `resolve(_:)` applies camera and
// parameter overrides (command line and a Panorama overrides document) and binds every input port. Both report
// problems as a `ManifestError` that names the file, the node or key, and the fix.

import Foundation
import VantageCore

/// An application project in panorama-cli's layout, loaded and checked.
public struct ApplicationProject: Sendable {
    /// The project root (it holds `graphs/`, `packages/` and maybe `assets/`).
    public let directory: URL
    /// The application's name: its folder under `graphs/`.
    public let name: String
    /// The parsed `graphs/<name>/graph.json`.
    public let graph: NodeGraph
    /// Every package the graph declares, by `<owner>::<package>` (the `panorama` built-ins included).
    public let packages: [String: NodePackage]
    /// What was read leniently or chosen for the user, one line each (see `ResolvedApplication.notices`).
    public let notices: [String]

    let graphSource: DocumentSource
    let sourceMap: GraphSourceMap
    let loadedPackages: [String: LoadedPackage]
    let nodeInfos: [String: NodeInfo]
    let checkedEdges: [CheckedEdge]

    /// Loads and checks the project at `directory`.
    ///
    /// Exactly one folder is expected under `graphs/`. Every declared package must have its folder
    /// `packages/<owner>-<package>-<version>/package.json` (except `panorama::abstract_rtsp_media_source` and
    /// `panorama::hdmi_data_sink`, which are built in); every node, edge, descriptor and model `vantage` block is
    /// checked. Missing model files are not checked here: loading the model reports them.
    public static func load(_ directory: URL) throws(ManifestError) -> ApplicationProject {
        let root = URL(fileURLWithPath: directory.absoluteURL.path, isDirectory: true).standardizedFileURL
        let context = ProjectContext(directory: root)
        guard context.isDirectory(root) else {
            throw ManifestError(
                .unreadableFile, file: root.path, message: "there is no project folder at \(root.path)",
                hint: "give the path of the application project (the folder holding graphs/ and packages/)")
        }
        let graphs = root.appendingPathComponent("graphs", isDirectory: true)
        guard context.isDirectory(graphs) else {
            throw ManifestError(
                .missingGraph, file: "graphs/",
                message: "\(root.path) has no graphs/ folder, so it is not an application project",
                hint: "point at the project root (the folder holding graphs/ and packages/), or create "
                    + "graphs/<app>/graph.json (panorama-cli init-project does)")
        }
        let folders = context.subfolders(of: graphs)
        guard !folders.isEmpty else {
            throw ManifestError(
                .missingGraph, file: "graphs/", message: "graphs/ holds no application folder",
                hint: "create graphs/<app>/graph.json with {\"nodeGraph\": {...}}")
        }
        guard folders.count == 1 else {
            throw ManifestError(
                .multipleGraphs, file: "graphs/",
                message: "graphs/ holds \(folders.count) application folders (" + folders.joined(separator: ", ") + ")",
                hint: "keep exactly one application per project: move the others into projects of their own")
        }
        let name = folders[0]
        let graphURL = graphs.appendingPathComponent(name).appendingPathComponent("graph.json")
        let source = DocumentSource(file: "graphs/\(name)/graph.json")
        guard FileManager.default.fileExists(atPath: graphURL.path) else {
            throw ManifestError(
                .missingGraph, file: source.file, message: "graphs/\(name)/ has no graph.json",
                hint: "create graphs/\(name)/graph.json with {\"nodeGraph\": {...}}")
        }
        let json = try readJSONFile(graphURL, shownAs: source.file, what: "graph.json")
        let (graph, map) = try GraphReader.graph(json, source: source)

        var loaded: [String: LoadedPackage] = [:]
        for (index, reference) in graph.packages.enumerated() {
            loaded[reference.name] = try context.loadPackage(
                reference, declaredIn: source, at: map.packages[index], key: "nodeGraph.packages[\(index)]")
        }
        var infos: [String: NodeInfo] = [:]
        for node in graph.nodes {
            infos[node.name] = try context.describe(
                node, source: source, position: map.nodes[node.name], packages: loaded, declaredIn: "graph.json")
        }
        var edges: [CheckedEdge] = []
        for (index, edge) in graph.edges.enumerated() {
            edges.append(
                try context.checkEdge(
                    edge, source: source, position: map.edges[index], nodes: infos, order: graph.nodes.map(\.name)))
        }
        for (index, rule) in graph.networkRoutingRules.enumerated() {
            try context.checkRoutingRule(rule, source: source, position: map.routingRules[index], nodes: infos)
        }
        let notices =
            graph.packages.flatMap { loaded[$0.name]?.notices ?? [] }
            + graph.nodes.flatMap { infos[$0.name]?.notices ?? [] }
        return ApplicationProject(
            directory: root, name: name, graph: graph, packages: loaded.mapValues(\.package), notices: notices,
            graphSource: source, sourceMap: map, loadedPackages: loaded, nodeInfos: infos, checkedEdges: edges)
    }
}

// MARK: - What load learns about each node

/// A package as loaded: its manifest and where it came from.
struct LoadedPackage: Sendable {
    var reference: PackageReference
    var package: NodePackage
    /// `packages/<folder>`; `nil` for the built-ins.
    var directory: URL?
    /// The package.json as shown in messages (or a description of the built-in).
    var file: String
    /// What was read leniently, for the run's log.
    var notices: [String] = []
}

/// A camera node's stream as its package describes it.
struct CameraDefinition: Sendable {
    struct Stream: Sendable {
        var url: String
        var username: String?
        var password: String?
        var file: String
    }

    /// `nil` when the camera needs an override to have one.
    var stream: Stream?
    /// Why it has no stream, for the error when no override is given.
    var whyNoStream: String
}

enum NodeRole: Sendable {
    case parameter(ParameterValue)
    case camera(CameraDefinition)
    case sink
    case code(RuntimeEntry)
    /// A model node; `spec` is nil when its descriptor has no `vantage` block (a Panorama project as exported),
    /// and `missing` is the error to report unless `--model` supplies the file.
    case model(ModelDescriptor, ModelSpec?, missing: ManifestError?)

    /// How the role is named in messages.
    var noun: String {
        switch self {
        case .parameter(let value): "\(value.type.withArticle) parameter node"
        case .camera: "a camera node (media_source)"
        case .sink: "a display node (media_sink)"
        case .code: "a code node (business_logic)"
        case .model: "a model node (ml_model)"
        }
    }
}

struct NodeInfo: Sendable {
    var node: GraphNode
    var source: DocumentSource
    var position: SourcePosition?
    var package: LoadedPackage?
    var interface: PackageInterface?
    var role: NodeRole
    /// A code node's folder: what Panorama's image had at `/panorama`.
    var sourceDirectory: URL?
    /// The code or model node's descriptor file, as found (see `descriptor(of:kind:)`).
    var descriptorFile: URL?
    /// How the node was read, for the run's log (where `/panorama` is, a descriptor found by its digest).
    var notices: [String] = []

    var name: String { node.name }

    var isCamera: Bool {
        if case .camera = role { return true }
        return false
    }

    var parameterValue: ParameterValue? {
        if case .parameter(let value) = role { return value }
        return nil
    }

    func error(_ code: ManifestError.Code, key: String? = nil, _ message: String, hint: String) -> ManifestError {
        ManifestError(
            code, file: source.file, line: position?.line, column: position?.column, node: node.name, key: key,
            message: message, hint: hint)
    }
}

/// An edge whose ends have been found.
struct CheckedEdge: Sendable {
    var edge: GraphEdge
    var source: DocumentSource
    var position: SourcePosition?
    var producerNode: String
    /// `nil` when the producer is a parameter node.
    var producerPort: String?
    var consumerNode: String
    var consumerPort: PortDefinition

    var label: String { "\(edge.producer) -> \(edge.consumer)" }

    func error(_ code: ManifestError.Code, node: String? = nil, _ message: String, hint: String) -> ManifestError {
        ManifestError(
            code, file: source.file, line: position?.line, column: position?.column, node: node, edge: label,
            message: message, hint: hint)
    }
}

// MARK: - Paths

enum ProjectPath {
    /// Whether `path`, taken relative to the project's `folder`, ends up outside the project (or is absolute).
    static func leavesProject(_ path: String, from folder: String) -> Bool {
        if path.hasPrefix("/") || path.hasPrefix("~") { return true }
        var depth = folder.split(separator: "/").count
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch component {
            case ".": continue
            case "..":
                depth -= 1
                if depth < 0 { return true }
            default: depth += 1
            }
        }
        return false
    }
}

/// The project folder, and the checks that need it.
struct ProjectContext: Sendable {
    let directory: URL

    func isDirectory(_ url: URL) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    func subfolders(of url: URL) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
        return names.filter { !$0.hasPrefix(".") && isDirectory(url.appendingPathComponent($0)) }.sorted()
    }

    /// A file as shown in messages: relative to the project when inside it.
    func shown(_ url: URL) -> String {
        let path = url.absoluteURL.standardizedFileURL.path
        let root = directory.path.hasSuffix("/") ? directory.path : directory.path + "/"
        return path.hasPrefix(root) ? String(path.dropFirst(root.count)) : path
    }

    var packagesDirectory: URL { directory.appendingPathComponent("packages", isDirectory: true) }
    var assetsDirectory: URL { directory.appendingPathComponent("assets", isDirectory: true) }

    /// Finds and reads a declared package.
    func loadPackage(
        _ reference: PackageReference, declaredIn source: DocumentSource, at position: SourcePosition?, key: String
    ) throws(ManifestError) -> LoadedPackage {
        func error(_ code: ManifestError.Code, _ message: String, hint: String) -> ManifestError {
            ManifestError(
                code, file: source.file, line: position?.line, column: position?.column, key: key, message: message,
                hint: hint)
        }
        if reference.owner == "panorama" {
            guard let builtIn = NodePackage.builtIns[reference.packageName] else {
                throw error(
                    .missingPackage, "there is no built-in package \(reference.name)",
                    hint: "Vantage has panorama::abstract_rtsp_media_source and panorama::hdmi_data_sink; use one of "
                        + "them, or a package of your own account")
            }
            guard reference.version == "1.0" else {
                throw error(
                    .missingPackage, "\(reference.name) has no version \(reference.version)",
                    hint: "declare it with \"version\": \"1.0\"")
            }
            return LoadedPackage(
                reference: reference, package: builtIn, directory: nil, file: "built-in \(reference.name)")
        }
        let folder = packagesDirectory.appendingPathComponent(reference.folderName, isDirectory: true)
        let manifest = folder.appendingPathComponent("package.json")
        guard isDirectory(folder) else {
            let existing = subfolders(of: packagesDirectory)
            throw error(
                .missingPackage,
                "package \(reference.name) \(reference.version) has no folder packages/\(reference.folderName)/",
                hint: "create it with its package.json (panorama-cli create-package --name \(reference.packageName)), "
                    + "or fix the package's name and version in \(source.file)"
                    + (existing.isEmpty
                        ? "; packages/ is empty" : "; packages/ holds " + existing.joined(separator: ", ")))
        }
        let shownFile = shown(manifest)
        guard FileManager.default.fileExists(atPath: manifest.path) else {
            throw error(
                .missingPackage, "packages/\(reference.folderName)/ has no package.json",
                hint:
                    "add package.json with {\"nodePackage\": {\"envelopeVersion\": \"2021-01-01\", \"interfaces\": "
                    + "[...]}}"
            )
        }
        let json = try readJSONFile(manifest, shownAs: shownFile, what: "package.json")
        var notices: [String] = []
        let package = try PackageReader.package(json, source: DocumentSource(file: shownFile), notices: &notices)
        if let name = package.name, name != reference.packageName {
            throw ManifestError(
                .packageMismatch, file: shownFile, key: "name",
                message: "package.json names the package \"\(name)\" but \(source.file) declares \(reference.name)",
                hint: "make them agree: set \"name\": \"\(reference.packageName)\" here, or fix the declaration")
        }
        if let version = package.version, version != reference.version {
            throw ManifestError(
                .packageMismatch, file: shownFile, key: "version",
                message:
                    "package.json has version \(version) but \(source.file) declares \(reference.name) "
                    + "\(reference.version)",
                hint: "make them agree: set \"version\": \"\(reference.version)\" here, or fix the declaration")
        }
        return LoadedPackage(
            reference: reference, package: package, directory: folder, file: shownFile, notices: notices)
    }

    /// Works out what a node is: its package, interface, role and descriptors.
    func describe(
        _ node: GraphNode, source: DocumentSource, position: SourcePosition?, packages: [String: LoadedPackage],
        declaredIn: String
    ) throws(ManifestError) -> NodeInfo {
        var info = NodeInfo(node: node, source: source, position: position, role: .sink)
        let interfaceName: String
        switch node.kind {
        case .parameter(let value):
            info.role = .parameter(value)
            return info
        case .interface(let name):
            interfaceName = name
        }
        guard let (packageName, localName) = GraphReader.parseInterfaceName(interfaceName) else {
            throw info.error(
                .invalidName, key: "interface", "node \"\(node.name)\" has an interface name that cannot be read",
                hint: "write it as <owner>::<package>.<interface>")
        }
        guard let package = packages[packageName] else {
            throw info.error(
                .undeclaredPackage, key: "interface",
                "node \"\(node.name)\" uses package \(packageName), which \(declaredIn) does not declare",
                hint: "add {\"name\": \"\(packageName)\", \"version\": \"1.0\"} to its \"packages\""
                    + (packages.isEmpty ? "" : " (declared: " + packages.keys.sorted().joined(separator: ", ") + ")"))
        }
        guard let interface = package.package.interface(named: localName) else {
            let available = package.package.interfaces.map { "\(packageName).\($0.name)" }
            throw info.error(
                .unknownInterface, key: "interface",
                "node \"\(node.name)\" uses interface \"\(localName)\", which package \(packageName) (\(package.file)) "
                    + "does not define",
                hint: "use " + (available.count == 1 ? available[0] : "one of " + available.joined(separator: ", "))
                    + ", or add the interface to the package")
        }
        info.package = package
        info.interface = interface
        switch interface.category {
        case .mediaSink:
            info.role = .sink
        case .mediaSource:
            info.role = .camera(cameraDefinition(package: package, interface: interface))
        case .businessLogic:
            let (json, descriptorSource) = try descriptor(of: &info, kind: "code")
            info.role = .code(try DescriptorReader.runtime(json, source: descriptorSource, node: node.name))
            if let folder = package.directory {
                let (source, why) = Self.panoramaFolder(of: folder)
                info.sourceDirectory = source
                info.notices.append("code node \(node.name): /panorama is \(shown(source))/ (\(why))")
            }
        case .mlModel:
            let (json, descriptorSource) = try descriptor(of: &info, kind: "model")
            let (descriptor, spec, missing) = try DescriptorReader.model(
                json, source: descriptorSource, node: node.name)
            info.role = .model(descriptor, spec, missing: missing)
        }
        return info
    }

    func cameraDefinition(package: LoadedPackage, interface: PackageInterface) -> CameraDefinition {
        if package.reference.name == "panorama::abstract_rtsp_media_source" {
            return CameraDefinition(
                stream: nil,
                whyNoStream: "it is an abstract camera (panorama::abstract_rtsp_media_source), given a "
                    + "stream when the application runs")
        }
        func value(_ port: String) -> String? {
            guard case .string(let value)? = interface.input(named: port)?.defaultValue else { return nil }
            let isTemplate = value.hasPrefix("<") && value.hasSuffix(">")
            return value.isEmpty || isTemplate ? nil : value
        }
        guard case .string(let url)? = interface.input(named: "streamUrl")?.defaultValue, !url.isEmpty else {
            return CameraDefinition(
                stream: nil, whyNoStream: "its package \(package.reference.name) gives no streamUrl default")
        }
        if url.contains("<") && url.contains(">") {
            return CameraDefinition(
                stream: nil,
                whyNoStream: "its package \(package.reference.name) still has the template's streamUrl "
                    + "placeholder (set the streamUrl default in \(package.file))")
        }
        return CameraDefinition(
            stream: .init(url: url, username: value("username"), password: value("password"), file: package.file),
            whyNoStream: "")
    }

    /// Which folder of a code package is Panorama's `/panorama`: the one its Dockerfile copies there, else `src/`,
    /// else the package folder itself; with the reason, for the log.
    static func panoramaFolder(of package: URL) -> (URL, String) {
        let fm = FileManager.default
        func isDirectory(_ relative: String) -> Bool {
            var isDirectory: ObjCBool = false
            let url = relative.isEmpty ? package : package.appendingPathComponent(relative)
            return fm.fileExists(atPath: url.path, isDirectory: &isDirectory) && isDirectory.boolValue
        }
        let dockerfile = package.appendingPathComponent("Dockerfile")
        // Read only up to the manifest limit: a padded Dockerfile costs no memory (and is then not read at all).
        if case .data(let data) = readBoundedFile(dockerfile, limit: ApplicationProject.maxManifestBytes),
            let found = Dockerfile.panoramaSource(text: String(decoding: data, as: UTF8.self), isDirectory: isDirectory)
        {
            let url = found.relativePath.isEmpty ? package : package.appendingPathComponent(found.relativePath)
            return (url.standardizedFileURL, "from its \(found.reason)")
        }
        let src = package.appendingPathComponent("src", isDirectory: true)
        if isDirectory("src") { return (src, "no Dockerfile line copies into it") }
        // No src/: code at the package root is /panorama; with no code anywhere, src/ is where it is expected.
        let names = (try? fm.contentsOfDirectory(atPath: package.path)) ?? []
        if names.contains(where: { $0.hasSuffix(".py") || $0.hasSuffix(".sh") }) {
            return (package, "the package has no src/ folder and no Dockerfile line copies into /panorama")
        }
        return (src, "no Dockerfile line copies into it")
    }

    /// A code or model node's descriptor.
    ///
    /// Where panorama-cli leaves it: `descriptor.json` in the package folder (one descriptor per package), or per
    /// asset, `descriptorUri` (`<sha256>.json`) in `assets/` — which panorama-cli's `.gitignore` leaves out of git,
    /// so a project as committed keeps the same file in the package folder under a readable name
    /// (`descriptor_people_detection.json`), found here by its SHA-256. A package with several described assets
    /// serves each node its own asset's descriptor.
    func descriptor(of info: inout NodeInfo, kind: String) throws(ManifestError) -> (SourceJSON, DocumentSource) {
        guard let package = info.package, let folder = package.directory, let interface = info.interface else {
            throw info.error(
                .missingDescriptor, "\(kind) node \"\(info.name)\" has no package folder",
                hint: "use a package of your own account for \(kind) nodes")
        }
        let found = locateDescriptor(folder: folder, package: package.package, interface: interface)
        func read(_ url: URL) throws(ManifestError) -> (SourceJSON, DocumentSource) {
            info.descriptorFile = url
            let file = shown(url)
            return (try readJSONFile(url, shownAs: file, what: "the descriptor"), DocumentSource(file: file))
        }
        let assetName = interface.asset
        let uri = found.descriptorUri
        if let url = found.file {
            switch found.how {
            case .byDigest:
                info.notices.append(
                    "\(kind) node \(info.name): descriptor \(shown(url)) (its SHA-256 is asset \"\(assetName ?? "")\"'s "
                        + "descriptorUri \(uri ?? ""); assets/ holds no copy)")
            case .packageFallback:
                info.notices.append(
                    "\(kind) node \(info.name): asset \"\(assetName ?? "")\"'s descriptor \(uri ?? "") is neither in "
                        + "assets/ nor in the package folder; using the package's descriptor.json")
            case .packageFile, .assets:
                break
            }
            return try read(url)
        }
        let example =
            kind == "code"
            ? "{\"runtimeDescriptor\": {\"envelopeVersion\": \"2021-01-01\", \"entry\": {\"path\": \"python3\", "
                + "\"name\": \"/panorama/app.py\"}}}"
            : "{\"mlModelDescriptor\": {...}, " + DescriptorReader.vantageExample(inputName: "input") + "}"
        if let uri, let assetName {
            let file = shown(assetsDirectory.appendingPathComponent(uri).standardizedFileURL)
            throw info.error(
                .missingDescriptor,
                "the descriptor of \(kind) node \"\(info.name)\" is missing: asset \"\(assetName)\" names \(file), "
                    + "which does not exist, no file in packages/\(package.reference.folderName)/ has that SHA-256, and "
                    + "packages/\(package.reference.folderName)/descriptor.json does not exist either",
                hint:
                    "put the descriptor at \(file), or write packages/\(package.reference.folderName)/descriptor.json: "
                    + example)
        }
        throw info.error(
            .missingDescriptor,
            "\(kind) node \"\(info.name)\" has no descriptor: packages/\(package.reference.folderName)/descriptor.json "
                + "does not exist and interface \"\(interface.name)\" names no asset with a descriptorUri",
            hint: "create packages/\(package.reference.folderName)/descriptor.json: " + example)
    }

    /// Where a descriptor was found.
    struct DescriptorLocation {
        enum How { case packageFile, assets, byDigest, packageFallback }
        /// The file, or nil when none was found.
        var file: URL?
        var how: How = .packageFile
        /// The asset's `descriptorUri`, if it names one.
        var descriptorUri: String?
    }

    /// Finds the descriptor of a node's interface (see `descriptor(of:kind:)` for the order). Shared with
    /// `vantage app import-panorama`, so that its report and a run agree.
    func locateDescriptor(folder: URL, package: NodePackage, interface: PackageInterface) -> DescriptorLocation {
        let fm = FileManager.default
        let local = folder.appendingPathComponent("descriptor.json")
        let hasLocal = fm.fileExists(atPath: local.path)
        let uri = interface.asset.flatMap { package.asset(named: $0) }?.implementations.compactMap(\.descriptorUri)
            .first
        let describedAssets = package.assets.filter { $0.implementations.contains { $0.descriptorUri != nil } }
        // One descriptor per package: the package's own descriptor.json comes first, as it always did.
        if hasLocal && (uri == nil || describedAssets.count <= 1) {
            return DescriptorLocation(file: local, how: .packageFile, descriptorUri: uri)
        }
        guard let uri else { return DescriptorLocation(file: nil, descriptorUri: nil) }
        // The package reader has already refused URIs that leave the project.
        let inAssets = assetsDirectory.appendingPathComponent(uri).standardizedFileURL
        if fm.fileExists(atPath: inAssets.path) {
            return DescriptorLocation(file: inAssets, how: .assets, descriptorUri: uri)
        }
        if let match = Self.fileMatchingDigest(of: uri, in: folder) {
            return DescriptorLocation(file: match, how: .byDigest, descriptorUri: uri)
        }
        if hasLocal { return DescriptorLocation(file: local, how: .packageFallback, descriptorUri: uri) }
        return DescriptorLocation(file: nil, descriptorUri: uri)
    }

    /// The JSON file in `folder` (or one level below it) whose SHA-256 is the name of `uri` (`<sha256>.json`).
    static func fileMatchingDigest(of uri: String, in folder: URL) -> URL? {
        let stem = (uri as NSString).lastPathComponent.lowercased()
        guard stem.hasSuffix(".json") else { return nil }
        let digest = String(stem.dropLast(5))
        guard digest.count == 64, digest.allSatisfy(\.isHexDigit) else { return nil }
        let fm = FileManager.default
        var candidates: [URL] = []
        for name in ((try? fm.contentsOfDirectory(atPath: folder.path)) ?? []).sorted() where !name.hasPrefix(".") {
            let url = folder.appendingPathComponent(name)
            if name.hasSuffix(".json") {
                candidates.append(url)
            } else if let inner = try? fm.contentsOfDirectory(atPath: url.path) {
                candidates += inner.sorted().filter { $0.hasSuffix(".json") }.map { url.appendingPathComponent($0) }
            }
        }
        for url in candidates {
            guard case .data(let data) = readBoundedFile(url, limit: ApplicationProject.maxManifestBytes) else {
                continue
            }
            if SHA256.hex(data) == digest { return url }
        }
        return nil
    }

    /// Checks that an edge's ends exist and fit.
    func checkEdge(
        _ edge: GraphEdge, source: DocumentSource, position: SourcePosition?, nodes: [String: NodeInfo], order: [String]
    ) throws(ManifestError) -> CheckedEdge {
        let label = "\(edge.producer) -> \(edge.consumer)"
        func error(_ code: ManifestError.Code, node: String?, _ message: String, hint: String) -> ManifestError {
            ManifestError(
                code, file: source.file, line: position?.line, column: position?.column, node: node, edge: label,
                message: "edge \(label): " + message, hint: hint)
        }
        func lookUp(_ name: String) throws(ManifestError) -> NodeInfo {
            guard let info = nodes[name] else {
                var hint = "use one of the graph's nodes: " + order.joined(separator: ", ")
                if let guess = closestMatch(name, in: order) { hint = "did you mean \"\(guess)\"? " + hint }
                throw error(.unknownNode, node: name, "there is no node \"\(name)\"", hint: hint)
            }
            return info
        }
        func ports(_ list: [PortDefinition]) -> String {
            list.isEmpty ? "none" : list.map { "\($0.name) (\($0.type.rawValue))" }.joined(separator: ", ")
        }
        let consumerParts = edge.consumer.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard consumerParts.count == 2, !consumerParts[0].isEmpty, !consumerParts[1].isEmpty else {
            throw error(
                .invalidEdge, node: nil, "the consumer \"\(edge.consumer)\" is not node.port",
                hint: "write the consumer as \"<node>.<input port>\", e.g. \"code_node.video_in\"")
        }
        let producerParts = edge.producer.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard producerParts.count <= 2, producerParts.allSatisfy({ !$0.isEmpty }) else {
            throw error(
                .invalidEdge, node: nil, "the producer \"\(edge.producer)\" is neither node.port nor a parameter name",
                hint: "write \"<node>.<output port>\" or the name of a parameter node")
        }
        let producer = try lookUp(producerParts[0])
        let consumer = try lookUp(consumerParts[0])
        for end in [producer, consumer] {
            if case .model = end.role {
                throw error(
                    .modelEdge, node: end.name, "it connects model node \"\(end.name)\"",
                    hint: "remove the edge: models are called from code by name, so model nodes take no edges")
            }
        }
        // What the producer delivers.
        let producerType: PortType
        var producerPort: String?
        if let value = producer.parameterValue {
            guard producerParts.count == 1 else {
                throw error(
                    .invalidEdge, node: producer.name, "parameter node \"\(producer.name)\" has no ports",
                    hint: "name a parameter by itself: \"producer\": \"\(producer.name)\"")
            }
            producerType = value.type
        } else {
            let outputs = producer.interface?.outputs ?? []
            guard producerParts.count == 2 else {
                throw error(
                    .invalidEdge, node: producer.name,
                    "the producer \"\(producer.name)\" is \(producer.role.noun), which is named with a port",
                    hint: "write \"\(producer.name).<output port>\"; its output ports: \(ports(outputs))")
            }
            guard let port = outputs.first(where: { $0.name == producerParts[1] }) else {
                let isInput = producer.interface?.input(named: producerParts[1]) != nil
                throw error(
                    .unknownPort, node: producer.name,
                    "node \"\(producer.name)\" has no output port \"\(producerParts[1])\""
                        + (isInput ? " (it is an input port)" : ""),
                    hint: "use one of its output ports: \(ports(outputs))")
            }
            producerType = port.type
            producerPort = port.name
        }
        // What the consumer takes.
        switch consumer.role {
        case .code, .sink: break
        case .parameter:
            throw error(
                .invalidEdge, node: consumer.name, "parameter node \"\(consumer.name)\" cannot be a consumer",
                hint: "parameters only produce values: make \"\(consumer.name)\" the producer of an edge to a code node"
            )
        case .camera:
            throw error(
                .invalidEdge, node: consumer.name, "camera node \"\(consumer.name)\" takes no edges",
                hint: "remove the edge: a camera's stream comes from its package, --camera or an overrides file")
        case .model:
            break  // Refused above.
        }
        let inputs = consumer.interface?.inputs ?? []
        guard let port = inputs.first(where: { $0.name == consumerParts[1] }) else {
            let isOutput = consumer.interface?.output(named: consumerParts[1]) != nil
            throw error(
                .unknownPort, node: consumer.name,
                "node \"\(consumer.name)\" has no input port \"\(consumerParts[1])\""
                    + (isOutput ? " (it is an output port)" : ""),
                hint: "use one of its input ports: \(ports(inputs))"
                    + (consumer.package.map { ", or add the port to \($0.file)" } ?? ""))
        }
        guard port.type == producerType else {
            throw error(
                .edgeTypeMismatch, node: consumer.name,
                "\(edge.producer) delivers \(producerType.rawValue) but \(edge.consumer) takes \(port.type.rawValue)",
                hint: "connect ports of the same type"
                    + (producer.parameterValue != nil
                        ? ", or change parameter \"\(producer.name)\" to \"interface\": \"\(port.type.rawValue)\"" : "")
            )
        }
        return CheckedEdge(
            edge: edge, source: source, position: position, producerNode: producer.name, producerPort: producerPort,
            consumerNode: consumer.name, consumerPort: port)
    }

    func checkRoutingRule(
        _ rule: NetworkRoutingRule, source: DocumentSource, position: SourcePosition?, nodes: [String: NodeInfo]
    ) throws(ManifestError) {
        func error(_ message: String, hint: String) -> ManifestError {
            ManifestError(
                .invalidRoutingRule, file: source.file, line: position?.line, column: position?.column, node: rule.node,
                key: "networkRoutingRules", message: message, hint: hint)
        }
        guard let info = nodes[rule.node], case .code = info.role else {
            throw error(
                "network routing rule for \"\(rule.node)\" does not name a code node",
                hint: "name the code node whose port is opened")
        }
        let declared = info.interface?.network?.inboundPorts.map(\.port) ?? []
        guard declared.contains(rule.containerPort) else {
            throw error(
                "network routing rule opens port \(rule.containerPort) of \"\(rule.node)\", which its interface "
                    + "does not list",
                hint: "add {\"port\": \(rule.containerPort)} to \"network\": {\"inboundPorts\": [...]} of interface "
                    + "\"\(info.interface?.name ?? "?")\" in \(info.package?.file ?? "its package.json")")
        }
        if let host = rule.hostPort, !(8000...9000).contains(host) {
            throw error(
                "network routing rule for \"\(rule.node)\" uses host port \(host)",
                hint: "use a host port from 8000 to 9000, as Panorama requires")
        }
    }
}
