import Foundation

/// An application's `graphs/<app>/graph.json`: Panorama's node graph, schema version 2021-01-01.
///
/// `ApplicationProject.load(_:)` reads it strictly (unknown keys are errors, as in Panorama's schema, which is
/// `additionalProperties: false` throughout). The `Codable` conformance writes the same JSON back and reads it
/// without those checks.
public struct NodeGraph: Sendable, Codable, Equatable {
    /// Always `"2021-01-01"`.
    public var envelopeVersion: String
    /// Free text, at most 255 characters.
    public var description: String?
    /// The packages whose interfaces the nodes use.
    public var packages: [PackageReference]
    /// The node instances: interface nodes and parameter nodes.
    public var nodes: [GraphNode]
    /// Connections from an output port (or a parameter node) to an input port.
    public var edges: [GraphEdge]
    /// Inbound network ports opened for code nodes.
    public var networkRoutingRules: [NetworkRoutingRule]

    /// Makes a graph.
    public init(
        envelopeVersion: String = "2021-01-01", description: String? = nil, packages: [PackageReference],
        nodes: [GraphNode], edges: [GraphEdge] = [], networkRoutingRules: [NetworkRoutingRule] = []
    ) {
        self.envelopeVersion = envelopeVersion
        self.description = description
        self.packages = packages
        self.nodes = nodes
        self.edges = edges
        self.networkRoutingRules = networkRoutingRules
    }

    enum CodingKeys: String, CodingKey {
        case envelopeVersion, description, packages, nodes, edges, networkRoutingRules
    }

    /// Reads a graph without the strict checks `ApplicationProject.load(_:)` makes.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        envelopeVersion = try c.decode(String.self, forKey: .envelopeVersion)
        description = try c.decodeIfPresent(String.self, forKey: .description)
        packages = try c.decode([PackageReference].self, forKey: .packages)
        nodes = try c.decode([GraphNode].self, forKey: .nodes)
        edges = try c.decodeIfPresent([GraphEdge].self, forKey: .edges) ?? []
        networkRoutingRules = try c.decodeIfPresent([NetworkRoutingRule].self, forKey: .networkRoutingRules) ?? []
    }

    /// Finds a node by name.
    public func node(named name: String) -> GraphNode? { nodes.first { $0.name == name } }
}

/// A package the graph uses: `{"name": "<owner>::<package>", "version": "M.m"}`.
public struct PackageReference: Sendable, Codable, Equatable {
    /// `<owner>::<package>`, where the owner is a 12-digit AWS account or `panorama`.
    public var name: String
    /// `<major>.<minor>`.
    public var version: String
    /// A patch (sha256) of the version; Vantage reads the package folder whatever it says.
    public var patchVersion: String?
    /// Panorama's generated-overrides patch; ignored by Vantage.
    public var generatedPatchVersion: String?
    /// Extra location information; ignored by Vantage.
    public var uri: String?

    /// Makes a package reference.
    public init(name: String, version: String, patchVersion: String? = nil) {
        self.name = name
        self.version = version
        self.patchVersion = patchVersion
    }

    /// The part of `name` before `::`.
    public var owner: String { name.components(separatedBy: "::").first ?? "" }
    /// The part of `name` after `::`.
    public var packageName: String { name.components(separatedBy: "::").dropFirst().first ?? "" }
    /// The package's folder under `packages/`: `<owner>-<package>-<version>`, as panorama-cli names it.
    public var folderName: String { "\(owner)-\(packageName)-\(version)" }
}

/// How a node starts.
public enum LaunchMode: String, Sendable, Codable, CaseIterable {
    /// Starts with the application (the default).
    case onAppStart
    /// Started on demand.
    case onDemand
    /// Starts paused, until a signal resumes it.
    case onSignal
}

/// Console hints attached to a node or routing rule.
public struct NodeDecorator: Sendable, Codable, Equatable {
    /// Title of the parameter or input.
    public var title: String?
    /// What the node is for.
    public var description: String?
    /// The value constraint, in words.
    public var constraintText: String?
    /// The value constraint, as a regular expression.
    public var constraintRegex: String?

    /// Makes a decorator.
    public init(
        title: String? = nil, description: String? = nil, constraintText: String? = nil, constraintRegex: String? = nil
    ) {
        self.title = title
        self.description = description
        self.constraintText = constraintText
        self.constraintRegex = constraintRegex
    }

    /// Why `text` breaks the value constraint, or nil when it keeps it (or there is none): the one check behind
    /// `vantage run --param` and the control plane's instances. The pattern runs in ``ConstraintPattern``, whose
    /// time is linear in the value's length (at most ``ConstraintPattern/maxValueLength`` characters), so no
    /// pattern can stall the caller.
    public func constraintViolation(_ text: String) -> String? {
        guard let pattern = constraintRegex else { return nil }
        let shownPattern = ManifestError.excerpt(pattern)
        let compiled: ConstraintPattern
        do {
            compiled = try ConstraintPattern(pattern)
        } catch {
            return "the manifest's constraintRegex \(shownPattern) cannot be used (\(error.message)): fix it in the "
                + "manifest and upload the package again"
        }
        guard text.unicodeScalars.count <= ConstraintPattern.maxValueLength else {
            return "the value is longer than \(ConstraintPattern.maxValueLength) characters, the most a parameter "
                + "with a constraintRegex may hold"
        }
        guard !compiled.matches(text) else { return nil }
        return "\"\(ManifestError.excerpt(text))\" does not match \(shownPattern)"
            + (constraintText.map { " (\(ManifestError.excerpt($0)))" } ?? "")
    }
}

/// One node of the graph: an instance of a package interface, or a typed parameter.
public struct GraphNode: Sendable, Codable, Equatable {
    /// What the node is.
    public enum Kind: Sendable, Equatable {
        /// An instance of `"<owner>::<package>.<interface>"`.
        case interface(String)
        /// A parameter node (`interface` is `string`, `int32`, `float32` or `boolean`) with its value.
        case parameter(ParameterValue)
    }

    /// The node's name: `^[$A-Za-z0-9_-]+$`, at most 128 characters.
    public var name: String
    /// What the node is.
    public var kind: Kind
    /// Whether the node may be overridden when the application is deployed (Panorama) or run (Vantage).
    public var overridable: Bool
    /// Whether an override must be given.
    public var overrideMandatory: Bool
    /// When an interface node starts; `nil` for parameter nodes and when the manifest leaves it out (`onAppStart`).
    public var launch: LaunchMode?
    /// Console hints.
    public var decorator: NodeDecorator?

    /// Makes a node.
    public init(
        name: String, kind: Kind, overridable: Bool = false, overrideMandatory: Bool = false, launch: LaunchMode? = nil,
        decorator: NodeDecorator? = nil
    ) {
        self.name = name
        self.kind = kind
        self.overridable = overridable
        self.overrideMandatory = overrideMandatory
        self.launch = launch
        self.decorator = decorator
    }

    /// The `interface` as written: `<owner>::<package>.<interface>`, or the parameter type.
    public var interface: String {
        switch kind {
        case .interface(let interface): interface
        case .parameter(let value): value.type.rawValue
        }
    }

    enum CodingKeys: String, CodingKey {
        case name, interface, value, overridable, overrideMandatory, launch, decorator
    }

    /// Reads a node without the strict checks `ApplicationProject.load(_:)` makes.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        let interface = try c.decode(String.self, forKey: .interface)
        if let type = PortType(rawValue: interface), type != .media {
            let value = try c.decodeIfPresent(ParameterValue.self, forKey: .value)
            kind = .parameter(try value.map { try $0.converted(to: type) } ?? ParameterValue.zero(of: type))
        } else {
            kind = .interface(interface)
        }
        overridable = try c.decodeIfPresent(Bool.self, forKey: .overridable) ?? false
        overrideMandatory = try c.decodeIfPresent(Bool.self, forKey: .overrideMandatory) ?? false
        launch = try c.decodeIfPresent(LaunchMode.self, forKey: .launch)
        decorator = try c.decodeIfPresent(NodeDecorator.self, forKey: .decorator)
    }

    /// Writes the node as graph.json does.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(interface, forKey: .interface)
        if case .parameter(let value) = kind { try c.encode(value, forKey: .value) }
        if overridable { try c.encode(true, forKey: .overridable) }
        if overrideMandatory { try c.encode(true, forKey: .overrideMandatory) }
        try c.encodeIfPresent(launch, forKey: .launch)
        try c.encodeIfPresent(decorator, forKey: .decorator)
    }
}

/// A connection: `producer` is `"node.port"` or a bare parameter-node name, `consumer` is `"node.port"`.
public struct GraphEdge: Sendable, Codable, Equatable {
    /// `"node.port"` of an output port, or the name of a parameter node.
    public var producer: String
    /// `"node.port"` of an input port.
    public var consumer: String

    /// Makes an edge.
    public init(producer: String, consumer: String) {
        self.producer = producer
        self.consumer = consumer
    }
}

/// Routes a host port to a port a code node listens on.
public struct NetworkRoutingRule: Sendable, Codable, Equatable {
    /// The code node.
    public var node: String
    /// A port from the node interface's `network.inboundPorts`.
    public var containerPort: Int
    /// The port opened on the device (8000–9000 on Panorama).
    public var hostPort: Int?
    /// Console hints.
    public var decorator: NodeDecorator?

    /// Makes a rule.
    public init(node: String, containerPort: Int, hostPort: Int? = nil, decorator: NodeDecorator? = nil) {
        self.node = node
        self.containerPort = containerPort
        self.hostPort = hostPort
        self.decorator = decorator
    }
}

// MARK: - Strict reading

/// Panorama's node-name rule: `^[$A-Za-z0-9_-]+$`, 1 to 128 characters.
func isValidNodeName(_ name: String) -> Bool {
    !name.isEmpty && name.count <= 128
        && name.unicodeScalars.allSatisfy { $0.isASCIILetterOrDigit || $0 == "$" || $0 == "_" || $0 == "-" }
}

/// Panorama's port-name rule: `^[$A-Za-z0-9_]+$`, 1 to 50 characters (ports become Python attributes).
func isValidPortName(_ name: String) -> Bool {
    !name.isEmpty && name.count <= 50
        && name.unicodeScalars.allSatisfy { $0.isASCIILetterOrDigit || $0 == "$" || $0 == "_" }
}

/// Interface and package names: `^[A-Za-z0-9_-]+$`.
func isValidPackagePart(_ name: String) -> Bool {
    !name.isEmpty && name.unicodeScalars.allSatisfy { $0.isASCIILetterOrDigit || $0 == "_" || $0 == "-" }
}

extension Unicode.Scalar {
    var isASCIILetterOrDigit: Bool {
        ("a"..."z").contains(self) || ("A"..."Z").contains(self) || ("0"..."9").contains(self)
    }
}

/// Positions of a graph's parts in its file, for errors found after parsing.
struct GraphSourceMap: Sendable {
    var nodes: [String: SourcePosition] = [:]
    var edges: [SourcePosition] = []
    var packages: [SourcePosition] = []
    var routingRules: [SourcePosition] = []
}

enum GraphReader {
    static let nodeKeys = ["name", "interface", "overridable", "overrideMandatory", "launch", "decorator"]
    static let parameterKeys = ["name", "interface", "value", "overridable", "overrideMandatory", "decorator"]
    static let parameterTypes = ["string", "int32", "float32", "boolean"]

    /// Reads `{"nodeGraph": {...}}`.
    static func graph(_ root: SourceJSON, source: DocumentSource) throws(ManifestError) -> (NodeGraph, GraphSourceMap) {
        let top = try ObjectReader(root, source: source, what: "graph.json")
        if top.has("nodeGraphOverrides") {
            throw top.error(
                .unknownKey, key: "nodeGraphOverrides", "graph.json holds an overrides document, not a node graph",
                hint:
                    "graph.json must be {\"nodeGraph\": {...}}; pass an overrides document with --overrides FILE "
                    + "instead"
            )
        }
        try top.rejectUnknownKeys(["nodeGraph"])
        guard let body = top["nodeGraph"] else {
            throw top.missing(
                "nodeGraph", example: "{\"envelopeVersion\": \"2021-01-01\", \"packages\": [...], \"nodes\": [...]}")
        }
        let graph = try ObjectReader(body, source: source, what: "nodeGraph")
        // `outputs` (sinks, rules, no-code analytics) is Vantage's own; the runtime reads and checks it (VantageOutputs).
        try graph.rejectUnknownKeys([
            "envelopeVersion", "description", "packages", "nodes", "edges", "networkRoutingRules", "outputs",
        ])
        try graph.envelopeVersion(required: true)
        let description = try graph.optionalString("description", example: "\"What the application does\"")
        if let description, description.count > 255 {
            throw graph.error(
                .invalidValue, at: graph["description"]?.position, key: "description",
                "the description in nodeGraph has \(description.count) characters", hint: "shorten it to at most 255")
        }
        var map = GraphSourceMap()
        let packageValues = try graph.requiredArray(
            "packages", example: "[{\"name\": \"123456789012::my_code\", \"version\": \"1.0\"}]")
        if packageValues.isEmpty {
            throw graph.error(
                .missingKey, at: graph["packages"]?.position, key: "packages", "nodeGraph.packages is empty",
                hint: "declare at least one package, e.g. {\"name\": \"123456789012::my_code\", \"version\": \"1.0\"}")
        }
        let packages = try self.packages(packageValues, source: source, in: "nodeGraph", map: &map)
        let nodeValues = try graph.requiredArray(
            "nodes", example: "[{\"name\": \"code_node\", \"interface\": \"123456789012::my_code.code_interface\"}]")
        if nodeValues.isEmpty {
            throw graph.error(
                .missingKey, at: graph["nodes"]?.position, key: "nodes", "nodeGraph.nodes is empty",
                hint:
                    "add at least one node, e.g. {\"name\": \"code_node\", \"interface\": "
                    + "\"123456789012::my_code.code_interface\"}"
            )
        }
        let nodes = try self.nodes(nodeValues, source: source, in: "nodeGraph", map: &map)
        let edges = try self.edges(graph.optionalArray("edges", example: "[]"), source: source, map: &map)
        let rules = try routingRules(
            graph.optionalArray("networkRoutingRules", example: "[]"), source: source, map: &map)
        return (
            NodeGraph(
                envelopeVersion: "2021-01-01", description: description, packages: packages, nodes: nodes, edges: edges,
                networkRoutingRules: rules), map
        )
    }

    static func packages(
        _ values: [SourceJSON], source: DocumentSource, in parent: String, map: inout GraphSourceMap
    ) throws(ManifestError) -> [PackageReference] {
        var result: [PackageReference] = []
        for (index, value) in values.enumerated() {
            let what = "\(parent).packages[\(index)]"
            let reader = try ObjectReader(value, source: source, what: what)
            try reader.rejectUnknownKeys(["name", "version", "patchVersion", "generatedPatchVersion", "uri"])
            let name = try reader.requiredString("name", example: "\"123456789012::my_package\"")
            let parts = name.components(separatedBy: "::")
            let ownerOK =
                parts.count == 2
                && (parts[0] == "panorama"
                    || (parts[0].count == 12 && parts[0].unicodeScalars.allSatisfy { ("0"..."9").contains($0) }))
            guard ownerOK, name.count <= 255, isValidPackagePart(parts[1]) else {
                throw reader.error(
                    .invalidName, at: reader["name"]?.position, key: "name",
                    "package name \"\(name)\" in \(what) is not <owner>::<package>",
                    hint: "the owner is a 12-digit AWS account ID or \"panorama\" and the package name uses letters, "
                        + "digits, '_' and '-', e.g. \"123456789012::people_counter_code\"")
            }
            let version = try reader.requiredString("version", example: "\"1.0\"")
            guard isValidVersion(version) else {
                throw reader.error(
                    .invalidValue, at: reader["version"]?.position, key: "version",
                    "package \(name) has version \"\(version)\", which is not <major>.<minor>",
                    hint: "write the version as \"1.0\"")
            }
            if result.contains(where: { $0.name == name }) {
                throw reader.error(
                    .duplicateName, key: "name", "package \(name) is declared twice in \(parent).packages",
                    hint: "keep one declaration of each package")
            }
            var reference = PackageReference(
                name: name, version: version,
                patchVersion: try reader.optionalString("patchVersion", example: "\"<sha256>\""))
            reference.generatedPatchVersion = try reader.optionalString(
                "generatedPatchVersion", example: "\"<sha256>\"")
            reference.uri = try reader.optionalString("uri", example: "\"<location>\"")
            result.append(reference)
            map.packages.append(value.position)
        }
        return result
    }

    static func isValidVersion(_ version: String) -> Bool {
        let parts = version.components(separatedBy: ".")
        return parts.count == 2
            && parts.allSatisfy { !$0.isEmpty && $0.unicodeScalars.allSatisfy { ("0"..."9").contains($0) } }
    }

    static func nodes(
        _ values: [SourceJSON], source: DocumentSource, in parent: String, map: inout GraphSourceMap
    ) throws(ManifestError) -> [GraphNode] {
        var result: [GraphNode] = []
        for (index, value) in values.enumerated() {
            let node = try self.node(value, index: index, source: source, in: parent)
            if map.nodes[node.name] != nil {
                throw ManifestError(
                    .duplicateName, file: source.file, line: value.position.line, column: value.position.column,
                    node: node.name, key: "name", message: "two nodes in \(parent).nodes are named \"\(node.name)\"",
                    hint: "give each node its own name")
            }
            map.nodes[node.name] = value.position
            result.append(node)
        }
        return result
    }

    static func node(_ value: SourceJSON, index: Int, source: DocumentSource, in parent: String) throws(ManifestError)
        -> GraphNode
    {
        let anonymous = try ObjectReader(value, source: source, what: "\(parent).nodes[\(index)]")
        let name = try anonymous.requiredString("name", example: "\"code_node\"")
        let reader = try ObjectReader(value, source: source, what: "node \"\(name)\"", node: name)
        guard isValidNodeName(name) else {
            throw reader.error(
                .invalidName, at: reader["name"]?.position, key: "name",
                "node name \"\(name)\" is not allowed (\(parent).nodes[\(index)])",
                hint: "use 1 to 128 letters, digits, '_', '-' or '$', e.g. \"\(suggestedName(name))\"")
        }
        let interface = try reader.requiredString(
            "interface",
            example: "\"<owner>::<package>.<interface>\" or a parameter type (string, int32, float32, boolean)")
        let isParameter = parameterTypes.contains(interface)
        if isParameter {
            try reader.rejectUnknownKeys(parameterKeys, extraHint: "parameter nodes have no \"launch\"")
        } else {
            try reader.rejectUnknownKeys(
                nodeKeys,
                extraHint: reader.has("value")
                    ? "only parameter nodes (interface string, int32, float32 or boolean) take a value" : nil)
        }
        let decorator = try self.decorator(reader["decorator"], source: source, of: "node \"\(name)\"", node: name)
        let overridable = try reader.optionalBool("overridable") ?? false
        let overrideMandatory = try reader.optionalBool("overrideMandatory") ?? false
        if isParameter {
            let type = PortType(rawValue: interface)!
            var parameter = ParameterValue.zero(of: type)
            if let value = reader["value"] {
                guard let typed = ParameterValue(json: value, as: type) else {
                    throw reader.error(
                        .parameterTypeMismatch, at: value.position, key: "value",
                        "parameter node \"\(name)\" is \(type.rawValue) but its value is \(value.typeName)"
                            + (type == .int32 && value.integerValue != nil ? " outside the int32 range" : ""),
                        hint:
                            "write a value of type \(type.rawValue), e.g. \"value\": "
                            + "\(ParameterValue.example(of: type)), "
                            + "or change \"interface\" to the value's type")
                }
                parameter = typed
            }
            return GraphNode(
                name: name, kind: .parameter(parameter), overridable: overridable, overrideMandatory: overrideMandatory,
                decorator: decorator)
        }
        guard parseInterfaceName(interface) != nil else {
            throw reader.error(
                .invalidName, at: reader["interface"]?.position, key: "interface",
                "node \"\(name)\" has interface \"\(interface)\", which is neither <owner>::<package>.<interface> "
                    + "nor a parameter type",
                hint:
                    "write e.g. \"123456789012::people_counter_code.code_interface\", or one of string, int32, "
                    + "float32, boolean"
            )
        }
        let launch = try reader.optionalEnum("launch", LaunchMode.allCases.map(\.rawValue)).flatMap(
            LaunchMode.init(rawValue:))
        return GraphNode(
            name: name, kind: .interface(interface), overridable: overridable, overrideMandatory: overrideMandatory,
            launch: launch, decorator: decorator)
    }

    /// Splits `owner::package.interface`.
    static func parseInterfaceName(_ interface: String) -> (package: String, interface: String)? {
        let halves = interface.components(separatedBy: "::")
        guard halves.count == 2, !halves[0].isEmpty,
            halves[0].unicodeScalars.allSatisfy({ $0.isASCIILetterOrDigit || "$_-".unicodeScalars.contains($0) })
        else { return nil }
        let rest = halves[1].components(separatedBy: ".")
        guard rest.count == 2, isValidPackagePart(rest[0]), isValidPackagePart(rest[1]) else { return nil }
        return ("\(halves[0])::\(rest[0])", rest[1])
    }

    static func decorator(
        _ value: SourceJSON?, source: DocumentSource, of owner: String, node: String?
    ) throws(ManifestError) -> NodeDecorator? {
        guard let value else { return nil }
        let reader = try ObjectReader(value, source: source, what: "the decorator of \(owner)", node: node)
        try reader.rejectUnknownKeys(["title", "description", "constraintText", "constraintRegex"])
        let constraintRegex = try reader.optionalString("constraintRegex", example: "\"^[0-9.]+$\"")
        if let constraintRegex {
            do {
                _ = try ConstraintPattern.checked(constraintRegex)
            } catch {
                throw reader.error(
                    .invalidValue, at: reader["constraintRegex"]?.position, key: "constraintRegex",
                    "the constraintRegex of \(owner), \(ManifestError.excerpt(constraintRegex)), cannot be used: "
                        + error.message,
                    hint: "write a simpler pattern (see docs/manifest.md, \"Constraint patterns\")")
            }
        }
        return NodeDecorator(
            title: try reader.optionalString("title", example: "\"Camera\""),
            description: try reader.optionalString("description", example: "\"Pick a stream\""),
            constraintText: try reader.optionalString("constraintText", example: "\"A number from 0 to 1\""),
            constraintRegex: constraintRegex)
    }

    static func edges(_ values: [SourceJSON], source: DocumentSource, map: inout GraphSourceMap) throws(ManifestError)
        -> [GraphEdge]
    {
        var result: [GraphEdge] = []
        for (index, value) in values.enumerated() {
            let reader = try ObjectReader(value, source: source, what: "edges[\(index)]")
            try reader.rejectUnknownKeys(["producer", "consumer"])
            let producer = try reader.requiredString("producer", example: "\"camera_node.video_out\"")
            let consumer = try reader.requiredString("consumer", example: "\"code_node.video_in\"")
            let edge = GraphEdge(producer: producer, consumer: consumer)
            if result.contains(edge) {
                throw reader.error(
                    .duplicateName, edge: "\(producer) -> \(consumer)",
                    "the edge \(producer) -> \(consumer) is listed twice", hint: "remove one of them")
            }
            result.append(edge)
            map.edges.append(value.position)
        }
        return result
    }

    static func routingRules(
        _ values: [SourceJSON], source: DocumentSource, map: inout GraphSourceMap
    ) throws(ManifestError) -> [NetworkRoutingRule] {
        var result: [NetworkRoutingRule] = []
        for (index, value) in values.enumerated() {
            let reader = try ObjectReader(value, source: source, what: "networkRoutingRules[\(index)]")
            try reader.rejectUnknownKeys(["node", "containerPort", "hostPort", "decorator"])
            let node = try reader.requiredString("node", example: "\"code_node\"")
            guard let containerPort = try reader.optionalInt("containerPort", example: "8080", range: 1...65535) else {
                throw reader.missing("containerPort", example: "8080")
            }
            let hostPort = try reader.optionalInt("hostPort", example: "8080")
            let decorator = try self.decorator(
                reader["decorator"], source: source, of: "networkRoutingRules[\(index)]", node: node)
            result.append(
                NetworkRoutingRule(node: node, containerPort: containerPort, hostPort: hostPort, decorator: decorator))
            map.routingRules.append(value.position)
        }
        return result
    }

    /// A valid node name close to an invalid one, for hints.
    static func suggestedName(_ name: String) -> String {
        let cleaned = String(
            name.unicodeScalars.map { isValidNodeName(String($0)) ? Character($0) : "_" }.prefix(128))
        return cleaned.isEmpty ? "my_node" : cleaned
    }
}
