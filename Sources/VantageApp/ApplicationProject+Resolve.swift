import Foundation
import VantageCore

extension ApplicationProject {
    /// Applies the overrides and binds every port: the application as the runtime starts it.
    ///
    /// An overrides document is applied first (its nodes, `nodeOverrides`, edges and routing rules, as Panorama
    /// applies them at deployment); `--camera` and `--param` values are applied on top of it and win.
    public func resolve(_ overrides: RunOverrides = RunOverrides()) throws(ManifestError) -> ResolvedApplication {
        var resolution = Resolution(project: self)
        if let file = overrides.overridesFile { try resolution.apply(document: file) }
        try resolution.apply(commandLine: overrides)
        var application = try resolution.resolve()
        try application.attachDetectStreams(overrides.detectStreams)
        // Where `outputs` objects may be, in the order they apply: graph.json, then the overrides document.
        application.outputsDocuments =
            [
                directory.appendingPathComponent("graphs/\(name)/graph.json")
            ] + (overrides.overridesFile.map { [$0] } ?? [])
        return application
    }
}

extension ResolvedApplication {
    /// Gives cameras their sub-streams (`--detect-stream NODE=URL`): the n-th for a node goes with its n-th stream.
    mutating func attachDetectStreams(_ detectStreams: [CameraOverride]) throws(ManifestError) {
        var used: [String: Int] = [:]
        for detect in detectStreams {
            if let problem = CameraURL.problem(detect.url) {
                throw ManifestError(
                    .invalidArgument, message: "--detect-stream \(detect.description): \(problem)",
                    hint: "give the camera's sub-stream URL, e.g. rtsp://10.0.0.5:554/stream2")
            }
            let streams = cameras.indices.filter {
                cameras[$0].graphNode == detect.node || cameras[$0].name == detect.node
            }
            let n = used[detect.node, default: 0]
            guard n < streams.count else {
                let known = Set(cameras.map(\.graphNode)).sorted().joined(separator: ", ")
                throw ManifestError(
                    .invalidArgument,
                    message: streams.isEmpty
                        ? "--detect-stream \(detect.description): there is no camera node \"\(detect.node)\""
                        : "--detect-stream \(detect.description): camera node \(detect.node) has \(streams.count) "
                            + "stream(s), and this is sub-stream \(n + 1)",
                    hint: streams.isEmpty
                        ? "camera nodes: \(known.isEmpty ? "none" : known)"
                        : "give one --detect-stream per --camera of the node, in the same order")
            }
            cameras[streams[n]].detectURL = detect.url
            used[detect.node] = n + 1
        }
    }
}

/// The state of one `resolve`: the graph's nodes and edges plus those an overrides document adds, and the
/// replacements and values the overrides ask for.
struct Resolution {
    struct Replacement {
        var with: [String]
        var source: DocumentSource
        var position: SourcePosition?
    }

    let project: ApplicationProject
    let context: ProjectContext
    var nodes: [String: NodeInfo]
    /// Graph nodes in graph order, then nodes the overrides document adds.
    var order: [String]
    var edges: [CheckedEdge]
    /// Graph node → the document's nodes that replace it.
    var replacements: [String: Replacement] = [:]
    /// Document nodes used as replacements (they take the replaced node's place rather than standing alone).
    var replacing: Set<String> = []
    /// `--camera` URLs by node, in the order first given.
    var cameraURLs: [(node: String, urls: [String])] = []
    /// `--param` values.
    var parameterValues: [String: ParameterValue] = [:]
    /// Routing rules the overrides document adds.
    var extraRoutingRules: [NetworkRoutingRule] = []
    /// `--model` files by model node, absolute.
    var modelFiles: [String: String] = [:]

    init(project: ApplicationProject) {
        self.project = project
        context = ProjectContext(directory: project.directory)
        nodes = project.nodeInfos
        order = project.graph.nodes.map(\.name)
        edges = project.checkedEdges
    }

    var cameraNodes: [String] { order.filter { nodes[$0]?.isCamera == true && !replacing.contains($0) } }

    var parameterNodes: [String] { order.filter { nodes[$0]?.parameterValue != nil && !replacing.contains($0) } }

    // MARK: Overrides document

    mutating func apply(document url: URL) throws(ManifestError) {
        let file = context.shown(url)
        let source = DocumentSource(file: file)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw ManifestError(
                .unreadableFile, file: file, message: "the overrides file \(file) does not exist",
                hint: "check the path of the overrides file")
        }
        let json = try readJSONFile(url, shownAs: file, what: "the overrides file")
        let top = try ObjectReader(json, source: source, what: "the overrides file")
        if top.has("nodeGraph") {
            throw top.error(
                .unknownKey, key: "nodeGraph", "the overrides file holds a node graph, not overrides",
                hint: "an overrides document is {\"nodeGraphOverrides\": {\"envelopeVersion\": \"2021-01-01\", "
                    + "\"nodes\": [...], \"nodeOverrides\": [...]}}")
        }
        try top.rejectUnknownKeys(["nodeGraphOverrides"])
        guard let bodyValue = top["nodeGraphOverrides"] else {
            throw top.missing(
                "nodeGraphOverrides", example: "{\"envelopeVersion\": \"2021-01-01\", \"nodeOverrides\": [...]}")
        }
        let body = try ObjectReader(bodyValue, source: source, what: "nodeGraphOverrides")
        try body.rejectUnknownKeys([
            "envelopeVersion", "description", "packages", "nodes", "networkRoutingRules", "edges", "nodeOverrides",
            "outputs",
        ])
        try body.envelopeVersion(required: true)
        _ = try body.optionalString("description", example: "\"...\"")
        var map = GraphSourceMap()

        var packages = project.loadedPackages
        let references = try GraphReader.packages(
            body.optionalArray("packages", example: "[]"), source: source, in: "nodeGraphOverrides", map: &map)
        for (index, reference) in references.enumerated() {
            if let existing = packages[reference.name] {
                guard existing.reference.version == reference.version else {
                    throw ManifestError(
                        .packageMismatch, file: file, line: map.packages[index].line,
                        column: map.packages[index].column,
                        key: "packages",
                        message: "the overrides file declares \(reference.name) \(reference.version) but graph.json "
                            + "declares version \(existing.reference.version)",
                        hint: "use the same version in both")
                }
                continue
            }
            packages[reference.name] = try context.loadPackage(
                reference, declaredIn: source, at: map.packages[index], key: "nodeGraphOverrides.packages[\(index)]")
        }

        let added = try GraphReader.nodes(
            body.optionalArray("nodes", example: "[]"), source: source, in: "nodeGraphOverrides", map: &map)
        for node in added {
            let position = map.nodes[node.name]
            if nodes[node.name] != nil {
                throw ManifestError(
                    .duplicateName, file: file, line: position?.line, column: position?.column, node: node.name,
                    key: "name",
                    message: "the overrides file adds a node \"\(node.name)\", but graph.json already has one",
                    hint: "give the new node its own name, e.g. \"\(node.name)_override\"")
            }
            nodes[node.name] = try context.describe(
                node, source: source, position: position, packages: packages,
                declaredIn: "graph.json or the overrides file")
            order.append(node.name)
        }

        for (index, value) in try body.optionalArray(
            "nodeOverrides", example: "[{\"replace\": \"camera_node\", \"with\": [{\"name\": \"lobby\"}]}]"
        )
        .enumerated() {
            try applyNodeOverride(value, index: index, source: source, added: Set(added.map(\.name)))
        }

        for (index, edge) in try GraphReader.edges(
            body.optionalArray("edges", example: "[]"), source: source, map: &map
        )
        .enumerated() {
            let checked = try context.checkEdge(
                edge, source: source, position: map.edges[index], nodes: nodes, order: order)
            for end in [checked.producerNode, checked.consumerNode] where replacing.contains(end) {
                throw checked.error(
                    .invalidOverride, node: end,
                    "edge \(checked.label): node \"\(end)\" replaces another node, so it has no edges of its own",
                    hint: "connect the node it replaces instead")
            }
            if project.checkedEdges.contains(where: { $0.edge == edge }) { continue }
            edges.append(checked)
        }

        let rules = try GraphReader.routingRules(
            body.optionalArray("networkRoutingRules", example: "[]"), source: source, map: &map)
        for (index, rule) in rules.enumerated() {
            try context.checkRoutingRule(rule, source: source, position: map.routingRules[index], nodes: nodes)
        }
        extraRoutingRules += rules
    }

    private mutating func applyNodeOverride(
        _ value: SourceJSON, index: Int, source: DocumentSource, added: Set<String>
    ) throws(ManifestError) {
        let reader = try ObjectReader(value, source: source, what: "nodeOverrides[\(index)]")
        try reader.rejectUnknownKeys(["envelopeVersion", "replace", "with"])
        try reader.envelopeVersion(required: false)
        let target = try reader.requiredString("replace", example: "\"camera_node\"")
        let withValues = try reader.requiredArray("with", example: "[{\"name\": \"lobby\"}]")
        let overridable = project.graph.nodes.filter(\.overridable).map(\.name)
        guard let info = project.nodeInfos[target] else {
            throw reader.error(
                .unknownNode, at: reader["replace"]?.position, key: "replace",
                "nodeOverrides[\(index)] replaces \"\(target)\", which is not a node of graph.json",
                hint: overridable.isEmpty
                    ? "graph.json has no overridable nodes"
                    : "replace one of its overridable nodes: " + overridable.joined(separator: ", "))
        }
        guard info.node.overridable else {
            throw reader.error(
                .invalidOverride, at: reader["replace"]?.position, key: "replace",
                "nodeOverrides[\(index)] replaces \"\(target)\", which graph.json does not mark overridable",
                hint: "set \"overridable\": true on node \"\(target)\" in graph.json, or drop this override")
        }
        guard replacements[target] == nil else {
            throw reader.error(
                .duplicateName, key: "replace", "node \"\(target)\" is replaced twice",
                hint: "keep one of the overrides")
        }
        var names: [String] = []
        for (i, item) in withValues.enumerated() {
            let entry = try ObjectReader(item, source: source, what: "nodeOverrides[\(index)].with[\(i)]")
            try entry.rejectUnknownKeys(["name"])
            let name = try entry.requiredString("name", example: "\"lobby\"")
            guard added.contains(name), let replacement = nodes[name] else {
                throw entry.error(
                    .unknownNode, at: entry["name"]?.position, key: "name",
                    "nodeOverrides[\(index)] replaces \"\(target)\" with \"\(name)\", which the overrides file does "
                        + "not declare",
                    hint: "declare it in nodeGraphOverrides.nodes, e.g. {\"name\": \"\(name)\", \"interface\": "
                        + "\"123456789012::\(name).\(name)\"} with its package in nodeGraphOverrides.packages")
            }
            guard !replacing.contains(name), !names.contains(name) else {
                throw entry.error(
                    .duplicateName, key: "name", "node \"\(name)\" is used as a replacement twice",
                    hint: "use each replacement node once")
            }
            switch (info.role, replacement.role) {
            case (.camera, .camera): break
            case (.parameter(let old), .parameter(let new)) where old.type == new.type: break
            case (.parameter(let old), _):
                throw entry.error(
                    .invalidOverride, key: "name",
                    "\"\(target)\" is \(old.type.withArticle) parameter, but \"\(name)\" is \(replacement.role.noun)",
                    hint: "replace a parameter with a parameter node of the same type: {\"name\": \"\(name)\", "
                        + "\"interface\": \"\(old.type.rawValue)\", \"value\": \(ParameterValue.example(of: old.type))}"
                )
            case (.camera, _):
                throw entry.error(
                    .invalidOverride, key: "name",
                    "\"\(target)\" is a camera, but \"\(name)\" is \(replacement.role.noun)",
                    hint: "replace a camera with camera nodes (packages whose interface is a media_source)")
            default:
                throw entry.error(
                    .invalidOverride, at: reader["replace"]?.position, key: "replace",
                    "\"\(target)\" is \(info.role.noun), which cannot be replaced",
                    hint: "only camera and parameter nodes can be overridden")
            }
            names.append(name)
        }
        if names.isEmpty || (info.parameterValue != nil && names.count != 1) {
            throw reader.error(
                .invalidOverride, key: "with",
                "nodeOverrides[\(index)] replaces \"\(target)\" with \(names.count) nodes",
                hint: info.parameterValue != nil
                    ? "replace a parameter with exactly one parameter node"
                    : "replace a camera with at least one camera node")
        }
        replacements[target] = Replacement(with: names, source: source, position: value.position)
        replacing.formUnion(names)
    }

    // MARK: Command line

    mutating func apply(commandLine overrides: RunOverrides) throws(ManifestError) {
        let modelNodes = order.filter { if case .model = nodes[$0]?.role { true } else { false } }
        for (node, file) in overrides.models.sorted(by: { $0.key < $1.key }) {
            guard let info = nodes[node], case .model = info.role else {
                let what =
                    nodes[node].map { "\"\(node)\" is \($0.role.noun), not a model" }
                    ?? "the application has no node \"\(node)\""
                throw ManifestError(
                    .invalidArgument, node: node, message: "--model \(node)=\(file): \(what)",
                    hint: modelNodes.isEmpty
                        ? "this application has no model nodes"
                        : "model nodes: \(modelNodes.joined(separator: ", ")); write e.g. --model \(modelNodes[0])=model.onnx"
                )
            }
            guard FileManager.default.fileExists(atPath: file) else {
                throw ManifestError(
                    .invalidArgument, node: node, message: "--model \(node)=\(file): the file does not exist",
                    hint: "give the path of an ONNX, TensorFlow (.pb), TFLite or OpenVINO IR (.xml) model file")
            }
            modelFiles[node] = file
        }
        for camera in overrides.cameras {
            if let index = cameraURLs.firstIndex(where: { $0.node == camera.node }) {
                cameraURLs[index].urls.append(camera.url)
            } else {
                cameraURLs.append((camera.node, [camera.url]))
            }
        }
        let cameras = cameraNodes
        let cameraHint =
            cameras.isEmpty
            ? "this application has no camera nodes"
            : "camera nodes: " + cameras.joined(separator: ", ")
                + "; write e.g. --camera \(cameras[0])=rtsp://HOST:554/PATH"
        for (node, urls) in cameraURLs {
            guard let info = nodes[node] else {
                var hint = cameraHint
                if let guess = closestMatch(node, in: cameras) { hint = "did you mean \"\(guess)\"? " + hint }
                throw ManifestError(
                    .unknownCamera, node: node,
                    message: "--camera \(node)=…: the application has no node \"\(node)\"",
                    hint: hint)
            }
            guard info.isCamera else {
                throw ManifestError(
                    .unknownCamera, node: node,
                    message: "--camera \(node)=…: \"\(node)\" is \(info.role.noun), not a camera", hint: cameraHint)
            }
            for url in urls {
                if let problem = CameraURL.problem(url) {
                    throw ManifestError(
                        .unsupportedURL, node: node,
                        message: "--camera \(node)=\(CameraSource.redact(url)): \(problem)",
                        hint: "give a camera as \(CameraURL.acceptedForms)")
                }
            }
        }
        let parameters = parameterNodes
        for name in overrides.parameters.keys.sorted() {
            let text = overrides.parameters[name]!
            guard let info = nodes[name], let current = info.parameterValue else {
                var hint =
                    parameters.isEmpty
                    ? "this application has no parameter nodes"
                    : "parameter nodes: "
                        + parameters.map { "\($0) (\(nodes[$0]!.parameterValue!.type.rawValue))" }.joined(
                            separator: ", ")
                if let guess = closestMatch(name, in: parameters) { hint = "did you mean \"\(guess)\"? " + hint }
                let what =
                    nodes[name].map { "\"\(name)\" is \($0.role.noun), not a parameter" }
                    ?? "the application has no parameter node \"\(name)\""
                throw ManifestError(
                    .unknownParameter, node: name, message: "--param \(name)=\(text): \(what)", hint: hint)
            }
            guard let value = ParameterValue(parsing: text, as: current.type) else {
                let expected =
                    switch current.type {
                    case .int32: "a whole number from \(Int32.min) to \(Int32.max)"
                    case .float32: "a number"
                    case .boolean: "true, false, 1 or 0"
                    case .string, .media: "a string"
                    }
                throw ManifestError(
                    .invalidParameterValue, node: name,
                    message:
                        "--param \(name)=\(text): \(name) is \(current.type.withArticle) parameter and \"\(text)\" "
                        + "is not \(expected)",
                    hint:
                        "give \(expected), e.g. --param \(name)="
                        + (current.type == .string ? "text" : ParameterValue.example(of: current.type))
                )
            }
            if let violation = nodes[name]?.node.decorator?.constraintViolation(text) {
                throw ManifestError(
                    .invalidParameterValue, node: name, message: "--param \(name)=\(text): \(violation)",
                    hint: "give a value the manifest's constraint allows")
            }
            parameterValues[name] = value
        }
    }

    // MARK: Binding

    func urls(for node: String) -> [String]? { cameraURLs.first { $0.node == node }?.urls }

    func missingCamera(_ info: NodeInfo, why: String) -> ManifestError {
        info.error(
            .missingOverride, "camera node \"\(info.name)\" has no stream: \(why)",
            hint:
                "run with --camera \(info.name)=rtsp://HOST:554/PATH (repeat it for several streams), or give "
                + "--overrides FILE, "
                + "a document whose nodeOverrides replaces \"\(info.name)\"")
    }

    /// The streams a camera node delivers, named and attributed to `graphNode`.
    func streams(of name: String, graphNode: String) throws(ManifestError) -> [CameraSource] {
        let launch = nodes[name]?.node.launch ?? nodes[graphNode]?.node.launch ?? .onAppStart
        return try unlaunchedStreams(of: name, graphNode: graphNode).map { stream in
            var stream = stream
            if stream.launch == .onAppStart { stream.launch = launch }
            return stream
        }
    }

    private func unlaunchedStreams(of name: String, graphNode: String) throws(ManifestError) -> [CameraSource] {
        if let urls = urls(for: name) {
            if urls.count == 1 { return [CameraSource(name: name, url: urls[0], graphNode: graphNode)] }
            return urls.enumerated().map {
                CameraSource(name: "\(name)_\($0.offset + 1)", url: $0.element, graphNode: graphNode)
            }
        }
        if let replacement = replacements[name] {
            var result: [CameraSource] = []
            for replacementName in replacement.with { result += try streams(of: replacementName, graphNode: graphNode) }
            return result
        }
        guard let info = nodes[name], case .camera(let definition) = info.role else { return [] }
        guard let stream = definition.stream else { throw missingCamera(info, why: definition.whyNoStream) }
        if let problem = CameraURL.problem(stream.url) {
            throw ManifestError(
                .unsupportedURL, file: stream.file, node: name, key: "streamUrl",
                message: "camera node \"\(name)\": the streamUrl default of its package cannot be opened: \(problem)",
                hint:
                    "give a camera as \(CameraURL.acceptedForms), or override it with --camera "
                    + "\(name)=rtsp://HOST:554/PATH"
            )
        }
        return [
            CameraSource(
                name: name, url: stream.url, username: stream.username, password: stream.password, graphNode: graphNode)
        ]
    }

    /// A parameter's value after overrides.
    func value(of name: String) -> ParameterValue {
        if let value = parameterValues[name] { return value }
        if let replacement = replacements[name], let first = replacement.with.first { return value(of: first) }
        return nodes[name]?.parameterValue ?? .string("")
    }

    func resolve() throws(ManifestError) -> ResolvedApplication {
        let active = order.filter { !replacing.contains($0) }

        // Overrides the graph insists on.
        for name in project.graph.nodes.map(\.name) {
            guard let info = nodes[name], info.node.overrideMandatory else { continue }
            let overridden = urls(for: name) != nil || parameterValues[name] != nil || replacements[name] != nil
            guard !overridden else { continue }
            if info.isCamera {
                let why =
                    if case .camera(let definition) = info.role, definition.stream == nil {
                        definition.whyNoStream
                    } else {
                        "graph.json requires it to be given one when the application runs (overrideMandatory)"
                    }
                throw missingCamera(info, why: why)
            }
            if let current = info.parameterValue {
                throw info.error(
                    .missingOverride,
                    "parameter node \"\(name)\" must be given a value when the application runs (overrideMandatory)",
                    hint:
                        "run with --param \(name)=VALUE (\(current.type.withArticle)), or replace it in an "
                        + "overrides file"
                )
            }
        }

        // Cameras.
        var cameras: [CameraSource] = []
        var streamsByNode: [String: [String]] = [:]
        for name in active where nodes[name]?.isCamera == true {
            let sources = try streams(of: name, graphNode: name)
            for source in sources where cameras.contains(where: { $0.name == source.name }) {
                throw nodes[name]!.error(
                    .duplicateName,
                    "two camera streams are named \"\(source.name)\" (from node \"\(name)\" and another camera node)",
                    hint: "rename one of the nodes")
            }
            streamsByNode[name] = sources.map(\.name)
            cameras += sources
        }

        // Bindings.
        var incoming: [String: [CheckedEdge]] = [:]
        for edge in edges { incoming["\(edge.consumerNode).\(edge.consumerPort.name)", default: []].append(edge) }
        func binding(_ node: NodeInfo, _ port: PortDefinition) throws(ManifestError) -> InputBinding {
            let feeding = incoming["\(node.name).\(port.name)"] ?? []
            if feeding.isEmpty { return .unbound }
            if let limit = port.maxConnections, limit > 0, feeding.count > limit {
                throw feeding[limit].error(
                    .tooManyProducers, node: node.name,
                    "edge \(feeding[limit].label): input port \(node.name).\(port.name) takes at most \(limit) "
                        + "connection\(limit == 1 ? "" : "s") (maxConnections) and this is number \(limit + 1)",
                    hint:
                        "remove an edge, or raise maxConnections of the port in "
                        + (node.package?.file ?? "its package.json")
                )
            }
            if feeding.allSatisfy({ nodes[$0.producerNode]?.isCamera == true }) {
                return .cameras(feeding.flatMap { streamsByNode[$0.producerNode] ?? [] })
            }
            if feeding.count > 1 {
                throw feeding[1].error(
                    .tooManyProducers, node: node.name,
                    "edge \(feeding[1].label): input port \(node.name).\(port.name) already has a producer "
                        + "(\(feeding[0].edge.producer))",
                    hint: "remove one of the edges: an input port takes one producer, unless all of them are cameras")
            }
            let edge = feeding[0]
            if nodes[edge.producerNode]?.parameterValue != nil { return .parameter(value(of: edge.producerNode)) }
            return .codeOutput(node: edge.producerNode, port: edge.producerPort ?? "")
        }

        var notices = project.notices
        for name in active where !project.nodeInfos.keys.contains(name) { notices += nodes[name]?.notices ?? [] }
        var codeNodes: [CodeNode] = []
        var models: [ModelNode] = []
        var sinks: [SinkNode] = []
        var parameters: [String: ParameterValue] = [:]
        for name in active {
            guard let info = nodes[name] else { continue }
            switch info.role {
            case .code(let runtime):
                let interface = info.interface!
                let packageDirectory = info.package!.directory!
                var inputs: [InputPort] = []
                for port in interface.inputs {
                    var bound = try binding(info, port)
                    if bound == .unbound && port.type == .media {
                        // Legal in real projects: an app that only serves HTTP or reads its own sources. Its get()
                        // on this port waits (until its timeout, if it gives one) and never returns frames.
                        notices.append(
                            "code node \(name): media input \"\(port.name)\" has no camera (no edge feeds it); its "
                                + "get() waits and never returns frames")
                        inputs.append(InputPort(name: port.name, type: port.type, binding: .cameras([])))
                        continue
                    }
                    if bound == .unbound {
                        guard let fallback = port.defaultValue else {
                            let producer =
                                port.type == .media
                                ? (cameraNodes.first.map { "\($0).video_out" } ?? "<camera node>.video_out")
                                : "<\(port.type.rawValue) parameter node>"
                            throw info.error(
                                .unboundInput,
                                "input port \"\(port.name)\" (\(port.type.rawValue)) of code node \"\(name)\" has "
                                    + "no edge "
                                    + "and no default",
                                hint:
                                    "add an edge {\"producer\": \"\(producer)\", \"consumer\": "
                                    + "\"\(name).\(port.name)\"} "
                                    + "to graph.json"
                                    + (port.type == .media
                                        ? "" : ", or a \"default\" for the port in \(info.package!.file)"))
                        }
                        bound = .parameter(fallback)
                    }
                    inputs.append(InputPort(name: port.name, type: port.type, binding: bound))
                }
                var outputs: [OutputPort] = []
                for port in interface.outputs {
                    var consumers: [String] = []
                    for edge in edges where edge.producerNode == name && edge.producerPort == port.name {
                        if !consumers.contains(edge.consumerNode) { consumers.append(edge.consumerNode) }
                    }
                    outputs.append(OutputPort(name: port.name, type: port.type, sinks: consumers))
                }
                let source = info.sourceDirectory ?? packageDirectory.appendingPathComponent("src", isDirectory: true)
                codeNodes.append(
                    CodeNode(
                        name: name, packageDirectory: packageDirectory, sourceDirectory: source,
                        entry: runtime.entry(sourceDirectory: source), inputs: inputs, outputs: outputs,
                        launch: info.node.launch ?? .onAppStart))
            case .model(let descriptor, let written, let missing):
                var spec: ModelSpec
                if let supplied = modelFiles[name] {
                    if var written {
                        written.file = supplied
                        written.format = nil
                        spec = written
                    } else {
                        spec = ModelSpec.inferred(from: descriptor, file: supplied)
                    }
                } else if let written {
                    spec = written
                } else {
                    throw missing
                        ?? ManifestError(
                            .missingModelSpec, node: name, message: "model node \"\(name)\" has no model file",
                            hint: "run with --model \(name)=PATH")
                }
                let file = (spec.file as NSString).expandingTildeInPath
                let url =
                    file.hasPrefix("/")
                    ? URL(fileURLWithPath: file) : project.directory.appendingPathComponent(file)
                models.append(
                    ModelNode(
                        name: name, packageDirectory: info.package!.directory!, descriptor: descriptor, spec: spec,
                        modelFile: url.standardizedFileURL))
            case .sink:
                var input = InputBinding.unbound
                if let port = info.interface?.inputs.first { input = try binding(info, port) }
                sinks.append(SinkNode(name: name, interface: info.interface?.name ?? "", input: input))
            case .parameter:
                parameters[name] = value(of: name)
            case .camera:
                break
            }
        }
        var application = ResolvedApplication(
            name: project.name, projectDirectory: project.directory, cameras: cameras, codeNodes: codeNodes,
            models: models, sinks: sinks, parameters: parameters)
        application.notices = notices
        // A rule repeated in the overrides document (Panorama wanted it there too) counts once.
        for rule in project.graph.networkRoutingRules + extraRoutingRules
        where !application.routingRules.contains(where: {
            $0.node == rule.node && $0.containerPort == rule.containerPort
        }) {
            application.routingRules.append(rule)
        }
        return application
    }
}
