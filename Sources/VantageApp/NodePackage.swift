import Foundation

/// A package's `package.json`: `{"nodePackage": {...}}`, schema version 2021-01-01.
public struct NodePackage: Sendable, Codable, Equatable {
    /// Always `"2021-01-01"`.
    public var envelopeVersion: String
    /// The package's name (without the owner), when given.
    public var name: String?
    /// `<major>.<minor>`, when given.
    public var version: String?
    /// Free text.
    public var description: String?
    /// The assets (container images, models, system components) that implement the interfaces.
    public var assets: [PackageAsset]
    /// The interfaces nodes can instantiate.
    public var interfaces: [PackageInterface]

    /// Makes a package.
    public init(
        envelopeVersion: String = "2021-01-01", name: String? = nil, version: String? = nil, description: String? = nil,
        assets: [PackageAsset] = [], interfaces: [PackageInterface]
    ) {
        self.envelopeVersion = envelopeVersion
        self.name = name
        self.version = version
        self.description = description
        self.assets = assets
        self.interfaces = interfaces
    }

    /// The interface with this name.
    public func interface(named name: String) -> PackageInterface? { interfaces.first { $0.name == name } }
    /// The asset with this name.
    public func asset(named name: String) -> PackageAsset? { assets.first { $0.name == name } }
}

/// An asset of a package and its implementations.
public struct PackageAsset: Sendable, Codable, Equatable {
    /// The asset's name, which interfaces refer to.
    public var name: String
    /// Free text.
    public var description: String?
    /// Where the asset's binary and descriptor are.
    public var implementations: [AssetImplementation]

    /// Makes an asset.
    public init(name: String, description: String? = nil, implementations: [AssetImplementation] = []) {
        self.name = name
        self.description = description
        self.implementations = implementations
    }
}

/// One implementation of an asset.
public struct AssetImplementation: Sendable, Codable, Equatable {
    /// What kind of binary it is.
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// A built-in component of the device (cameras, HDMI).
        case system
        /// A code container (Vantage runs the package's `src/` directly instead).
        case container
        /// A model archive.
        case model
    }

    /// What kind of binary it is.
    public var type: Kind
    /// The binary: a file name in `assets/` (or a system component's path).
    public var assetUri: String
    /// The descriptor: a file name in `assets/`, used when the package folder has no `descriptor.json`.
    public var descriptorUri: String?
    /// Free text.
    public var description: String?
    /// Hardware and software requirements, by type (`hardware_access`, `ota`, `device`, …); Vantage ignores them.
    public var requirements: [AssetRequirement]?

    /// Makes an implementation.
    public init(type: Kind, assetUri: String, descriptorUri: String? = nil, description: String? = nil) {
        self.type = type
        self.assetUri = assetUri
        self.descriptorUri = descriptorUri
        self.description = description
    }
}

/// A requirement of an asset implementation; only its type is kept.
public struct AssetRequirement: Sendable, Codable, Equatable {
    /// `hardware_access`, `ota`, `device`, `os` or `sdk`.
    public var type: String

    /// Makes a requirement.
    public init(type: String) { self.type = type }
}

/// What an interface is for.
public enum InterfaceCategory: String, Sendable, Codable, CaseIterable {
    /// A camera.
    case mediaSource = "media_source"
    /// A display (HDMI).
    case mediaSink = "media_sink"
    /// Application code.
    case businessLogic = "business_logic"
    /// A model.
    case mlModel = "ml_model"
}

/// An interface of a package: the ports of the nodes that instantiate it.
public struct PackageInterface: Sendable, Codable, Equatable {
    /// The interface's name.
    public var name: String
    /// What it is for.
    public var category: InterfaceCategory
    /// The asset that implements it.
    public var asset: String?
    /// Free text.
    public var description: String?
    /// Input ports.
    public var inputs: [PortDefinition]
    /// Output ports.
    public var outputs: [PortDefinition]
    /// Inbound network ports.
    public var network: InterfaceNetwork?

    /// Makes an interface.
    public init(
        name: String, category: InterfaceCategory, asset: String? = nil, description: String? = nil,
        inputs: [PortDefinition] = [], outputs: [PortDefinition] = [], network: InterfaceNetwork? = nil
    ) {
        self.name = name
        self.category = category
        self.asset = asset
        self.description = description
        self.inputs = inputs
        self.outputs = outputs
        self.network = network
    }

    /// The input port with this name.
    public func input(named name: String) -> PortDefinition? { inputs.first { $0.name == name } }
    /// The output port with this name.
    public func output(named name: String) -> PortDefinition? { outputs.first { $0.name == name } }
}

/// The network ports an interface listens on.
public struct InterfaceNetwork: Sendable, Codable, Equatable {
    /// One port.
    public struct InboundPort: Sendable, Codable, Equatable {
        /// The port number.
        public var port: Int
        /// What it serves.
        public var description: String?

        /// Makes a port.
        public init(port: Int, description: String? = nil) {
            self.port = port
            self.description = description
        }
    }

    /// At most 10 ports.
    public var inboundPorts: [InboundPort]

    /// Makes a network configuration.
    public init(inboundPorts: [InboundPort]) { self.inboundPorts = inboundPorts }
}

/// A port of an interface.
public struct PortDefinition: Sendable, Codable, Equatable {
    /// `^[$A-Za-z0-9_]+$`, at most 50 characters.
    public var name: String
    /// The port's type.
    public var type: PortType
    /// Free text.
    public var description: String?
    /// The value an input port takes when no edge feeds it (not for media ports).
    public var defaultValue: ParameterValue?
    /// How many edges may feed an input port; 0 or `nil` means no limit.
    public var maxConnections: Int?

    /// Makes a port.
    public init(
        name: String, type: PortType, description: String? = nil, defaultValue: ParameterValue? = nil,
        maxConnections: Int? = nil
    ) {
        self.name = name
        self.type = type
        self.description = description
        self.defaultValue = defaultValue
        self.maxConnections = maxConnections
    }

    enum CodingKeys: String, CodingKey {
        case name, type, description
        case defaultValue = "default"
        case maxConnections
    }
}

// MARK: - Built-in packages

extension NodePackage {
    /// The packages of the `panorama` owner, which exist on every device and so have no folder in a project.
    static let builtIns: [String: NodePackage] = [
        "abstract_rtsp_media_source": NodePackage(
            name: "abstract_rtsp_media_source", version: "1.0",
            description: "A camera chosen when the application runs",
            assets: [
                PackageAsset(
                    name: "rtsp_v1_asset",
                    implementations: [
                        AssetImplementation(type: .system, assetUri: "source/video/camera/rtsp/source_rtsp")
                    ])
            ],
            interfaces: [
                PackageInterface(
                    name: "rtsp_v1_interface", category: .mediaSource, asset: "rtsp_v1_asset",
                    outputs: [PortDefinition(name: "video_out", type: .media)])
            ]),
        "hdmi_data_sink": NodePackage(
            name: "hdmi_data_sink", version: "1.0", description: "The device's display output",
            assets: [
                PackageAsset(
                    name: "hdmi_data_sink",
                    implementations: [AssetImplementation(type: .system, assetUri: "sink/video/hdmi/sink_hdmi")])
            ],
            interfaces: [
                PackageInterface(
                    name: "hdmi0", category: .mediaSink, asset: "hdmi_data_sink",
                    inputs: [PortDefinition(name: "video_in", type: .media)])
            ]),
    ]
}

// MARK: - Strict reading

enum PackageReader {
    /// Reads `{"nodePackage": {...}}`. What is read leniently (as panorama-cli leaves a project half-built) is added
    /// to `notices`, at most one line per package.
    static func package(_ root: SourceJSON, source: DocumentSource, notices: inout [String]) throws(ManifestError)
        -> NodePackage
    {
        let top = try ObjectReader(root, source: source, what: "package.json")
        try top.rejectUnknownKeys(["nodePackage"])
        guard let body = top["nodePackage"] else {
            throw top.missing("nodePackage", example: "{\"envelopeVersion\": \"2021-01-01\", \"interfaces\": [...]}")
        }
        let reader = try ObjectReader(body, source: source, what: "nodePackage")
        try reader.rejectUnknownKeys(["envelopeVersion", "name", "version", "description", "assets", "interfaces"])
        try reader.envelopeVersion(required: true)
        let name = try reader.optionalString("name", example: "\"people_counter_code\"")
        if let name, !isValidPackagePart(name) || name.count > 128 {
            throw reader.error(
                .invalidName, at: reader["name"]?.position, key: "name", "package name \"\(name)\" is not allowed",
                hint: "use 1 to 128 letters, digits, '_' or '-'")
        }
        let version = try reader.optionalString("version", example: "\"1.0\"")
        if let version, !GraphReader.isValidVersion(version) {
            throw reader.error(
                .invalidValue, at: reader["version"]?.position, key: "version",
                "version \"\(version)\" in nodePackage is not <major>.<minor>", hint: "write the version as \"1.0\"")
        }
        var assets: [PackageAsset] = []
        for (index, value) in try reader.optionalArray("assets", example: "[]").enumerated() {
            let asset = try self.asset(value, index: index, source: source)
            if assets.contains(where: { $0.name == asset.name }) {
                throw ManifestError(
                    .duplicateName, file: source.file, line: value.position.line, column: value.position.column,
                    key: "name", message: "two assets are named \"\(asset.name)\"", hint: "give each asset its own name"
                )
            }
            assets.append(asset)
        }
        let interfaceValues = try reader.requiredArray(
            "interfaces", example: "[{\"name\": \"code_interface\", \"category\": \"business_logic\", ...}]")
        if interfaceValues.isEmpty {
            throw reader.error(
                .missingKey, at: reader["interfaces"]?.position, key: "interfaces", "nodePackage.interfaces is empty",
                hint:
                    "define at least one interface, e.g. {\"name\": \"code_interface\", \"category\": "
                    + "\"business_logic\"}"
            )
        }
        var interfaces: [PackageInterface] = []
        var unbuilt: [String] = []
        for value in interfaceValues {
            let interface = try self.interface(value, source: source)
            if let asset = interface.asset, !assets.contains(where: { $0.name == asset }) {
                unbuilt.append("\(interface.name) → \(asset)")
            }
            if interfaces.contains(where: { $0.name == interface.name }) {
                throw ManifestError(
                    .duplicateName, file: source.file, line: value.position.line, column: value.position.column,
                    key: "name", message: "two interfaces are named \"\(interface.name)\"",
                    hint: "give each interface its own name")
            }
            interfaces.append(interface)
        }
        if !unbuilt.isEmpty {
            // panorama-cli writes "assets": [] until build-container / add-raw-model, while the interface already
            // names its asset. Panorama's tooling accepted it, and Vantage runs the package folder, not the asset.
            notices.append(
                "\(source.file): " + (unbuilt.count == 1 ? "interface " : "interfaces ")
                    + unbuilt.joined(separator: ", ")
                    + " name" + (unbuilt.count == 1 ? "s an asset" : " assets")
                    + " that \"assets\" does not define yet (panorama-cli adds them at build-container or "
                    + "add-raw-model); Vantage runs the package folder, so this is only a notice")
        }
        return NodePackage(
            name: name, version: version,
            description: try reader.optionalString("description", example: "\"What the package does\""), assets: assets,
            interfaces: interfaces)
    }

    static let requirementTypes = ["hardware_access", "ota", "device", "os", "sdk"]

    static func asset(_ value: SourceJSON, index: Int, source: DocumentSource) throws(ManifestError) -> PackageAsset {
        let anonymous = try ObjectReader(value, source: source, what: "assets[\(index)]")
        try anonymous.rejectUnknownKeys(["name", "description", "implementations"])
        let name = try anonymous.requiredString("name", example: "\"code_asset\"")
        let reader = try ObjectReader(value, source: source, what: "asset \"\(name)\"")
        var implementations: [AssetImplementation] = []
        for (i, item) in try reader.optionalArray("implementations", example: "[{\"type\": \"container\", ...}]")
            .enumerated()
        {
            let impl = try ObjectReader(item, source: source, what: "asset \"\(name)\" implementations[\(i)]")
            try impl.rejectUnknownKeys(["type", "assetUri", "descriptorUri", "description", "requirements"])
            guard impl.has("type") else { throw impl.missing("type", example: "\"container\"") }
            let type = AssetImplementation.Kind(
                rawValue: try impl.optionalEnum("type", AssetImplementation.Kind.allCases.map(\.rawValue))!)!
            var implementation = AssetImplementation(
                type: type, assetUri: try impl.requiredString("assetUri", example: "\"<sha256>.tar.gz\""),
                descriptorUri: try impl.optionalString("descriptorUri", example: "\"<sha256>.json\""),
                description: try impl.optionalString("description", example: "\"...\""))
            if type != .system {
                for (key, uri) in [
                    ("assetUri", implementation.assetUri), ("descriptorUri", implementation.descriptorUri),
                ] {
                    guard let uri, ProjectPath.leavesProject(uri, from: "assets") else { continue }
                    throw impl.error(
                        .pathEscapesProject, at: impl[key]?.position, key: key,
                        "\(key) \"\(uri)\" of asset \"\(name)\" leaves the project folder",
                        hint: "keep asset files inside the project's assets/ folder and name them by file name, "
                            + "e.g. \"<sha256>.json\"")
                }
            }
            if impl.has("requirements") {
                var requirements: [AssetRequirement] = []
                for (r, requirement) in try impl.optionalArray("requirements", example: "[]").enumerated() {
                    let req = try ObjectReader(
                        requirement, source: source, what: "asset \"\(name)\" requirement \(r)")
                    guard req.has("type") else { throw req.missing("type", example: "\"hardware_access\"") }
                    requirements.append(AssetRequirement(type: try req.optionalEnum("type", requirementTypes)!))
                }
                implementation.requirements = requirements
            }
            implementations.append(implementation)
        }
        return PackageAsset(
            name: name, description: try reader.optionalString("description", example: "\"...\""),
            implementations: implementations)
    }

    static func interface(_ value: SourceJSON, source: DocumentSource) throws(ManifestError) -> PackageInterface {
        let anonymous = try ObjectReader(value, source: source, what: "an interface")
        let name = try anonymous.requiredString("name", example: "\"code_interface\"")
        let reader = try ObjectReader(value, source: source, what: "interface \"\(name)\"")
        try reader.rejectUnknownKeys(["name", "category", "asset", "description", "inputs", "outputs", "network"])
        guard isValidPackagePart(name), name.count <= 128 else {
            throw reader.error(
                .invalidName, at: reader["name"]?.position, key: "name", "interface name \"\(name)\" is not allowed",
                hint: "use 1 to 128 letters, digits, '_' or '-'")
        }
        guard reader.has("category") else { throw reader.missing("category", example: "\"business_logic\"") }
        let category = InterfaceCategory(
            rawValue: try reader.optionalEnum("category", InterfaceCategory.allCases.map(\.rawValue))!)!
        let asset = try reader.optionalString("asset", example: "\"code_asset\"")
        let inputs = try ports(reader, key: "inputs", isInput: true, interface: name, source: source)
        let outputs = try ports(reader, key: "outputs", isInput: false, interface: name, source: source)
        var network: InterfaceNetwork?
        if let value = reader["network"] {
            let net = try ObjectReader(value, source: source, what: "the network of interface \"\(name)\"")
            try net.rejectUnknownKeys(["inboundPorts"])
            let portValues = try net.optionalArray("inboundPorts", example: "[{\"port\": 8080}]")
            if portValues.count > 10 {
                throw net.error(
                    .invalidValue, key: "inboundPorts", "interface \"\(name)\" lists \(portValues.count) inbound ports",
                    hint: "list at most 10")
            }
            var inbound: [InterfaceNetwork.InboundPort] = []
            for portValue in portValues {
                let port = try ObjectReader(portValue, source: source, what: "an inbound port of interface \"\(name)\"")
                try port.rejectUnknownKeys(["port", "description"])
                guard let number = try port.optionalInt("port", example: "8080", range: 1...65535) else {
                    throw port.missing("port", example: "8080")
                }
                inbound.append(
                    .init(port: number, description: try port.optionalString("description", example: "\"...\"")))
            }
            network = InterfaceNetwork(inboundPorts: inbound)
        }
        return PackageInterface(
            name: name, category: category, asset: asset,
            description: try reader.optionalString("description", example: "\"...\""), inputs: inputs,
            outputs: outputs, network: network)
    }

    static func ports(
        _ interface: ObjectReader, key: String, isInput: Bool, interface name: String, source: DocumentSource
    ) throws(ManifestError) -> [PortDefinition] {
        var result: [PortDefinition] = []
        let direction = isInput ? "input" : "output"
        for (index, value) in try interface.optionalArray(
            key, example: "[{\"name\": \"video_in\", \"type\": \"media\"}]"
        )
        .enumerated() {
            let anonymous = try ObjectReader(value, source: source, what: "interface \"\(name)\" \(key)[\(index)]")
            let portName = try anonymous.requiredString("name", example: "\"video_in\"")
            let what = "\(direction) port \"\(portName)\" of interface \"\(name)\""
            let reader = try ObjectReader(value, source: source, what: what)
            guard isValidPortName(portName) else {
                let suggestion = String(portName.map { $0 == "-" || $0 == " " || $0 == "." ? "_" : $0 }.prefix(50))
                throw reader.error(
                    .invalidName, at: reader["name"]?.position, key: "name",
                    "port name \"\(portName)\" of interface \"\(name)\" is not allowed",
                    hint: "port names use only letters, digits, '_' and '$' (at most 50; no '-', since code reads "
                        + "ports as attributes): rename it, e.g. \"\(suggestion)\", here and in the graph's edges")
            }
            guard reader.has("type") else { throw reader.missing("type", example: "\"media\"") }
            let type = PortType(rawValue: try reader.optionalEnum("type", PortType.allCases.map(\.rawValue))!)!
            var allowed = ["name", "type", "description"]
            if isInput {
                allowed.append("maxConnections")
                if type != .media { allowed += ["default", "reference", "referenceSource"] }
                if type == .string || type == .int32 || type == .float32 { allowed.append("constraintRegex") }
            }
            try reader.rejectUnknownKeys(
                allowed,
                extraHint: reader.has("default") && (type == .media || !isInput)
                    ? "only non-media input ports take a default" : nil)
            var defaultValue: ParameterValue?
            if let value = reader["default"] {
                guard let typed = ParameterValue(json: value, as: type) else {
                    throw reader.error(
                        .parameterTypeMismatch, at: value.position, key: "default",
                        "the default of \(what) is \(value.typeName), but the port is \(type.rawValue)",
                        hint: "write \(type.withArticle) default, e.g. \"default\": \(ParameterValue.example(of: type))"
                    )
                }
                defaultValue = typed
            }
            _ = try reader.optionalBool("reference")
            _ = try reader.optionalString("referenceSource", example: "\"...\"")
            _ = try reader.optionalString("constraintRegex", example: "\"^[0-9]+$\"")
            if result.contains(where: { $0.name == portName }) {
                throw reader.error(
                    .duplicateName, key: "name",
                    "interface \"\(name)\" has two \(direction) ports named \"\(portName)\"",
                    hint: "give each port its own name")
            }
            result.append(
                PortDefinition(
                    name: portName, type: type,
                    description: try reader.optionalString("description", example: "\"...\""),
                    defaultValue: defaultValue,
                    maxConnections: try reader.optionalInt("maxConnections", example: "1", range: 0...Int(Int32.max))))
        }
        return result
    }
}
