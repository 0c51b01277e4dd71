import Foundation

/// Everything that can be wrong with an application project or with the overrides given to run it.
///
/// Every error names the file it is about (relative to the project folder, or the flag when it comes from the command
/// line), the node, edge or key, what is wrong and what to do about it. Its `description` reads
/// `"<file>:<line>:<column>: <what is wrong> — <what to do>"` and never contains a camera password.
public struct ManifestError: Error, CustomStringConvertible, Sendable {
    /// The kind of problem, for code that reacts to some of them. New codes may be added in any release.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The code's name, as written in `description`.
        public let name: String

        /// Makes a code with the given name.
        public init(_ name: String) { self.name = name }

        /// The code's name.
        public var description: String { name }

        /// A file could not be read.
        public static let unreadableFile = Code("unreadableFile")
        /// A file is not valid JSON.
        public static let invalidJSON = Code("invalidJSON")
        /// An object has a key the schema does not define.
        public static let unknownKey = Code("unknownKey")
        /// A required key is absent.
        public static let missingKey = Code("missingKey")
        /// A value has the wrong JSON type or is not one of the accepted values.
        public static let invalidValue = Code("invalidValue")
        /// `envelopeVersion` is not `2021-01-01`.
        public static let unsupportedEnvelopeVersion = Code("unsupportedEnvelopeVersion")
        /// The project has no `graphs/<app>/graph.json`.
        public static let missingGraph = Code("missingGraph")
        /// The project has more than one folder under `graphs/`.
        public static let multipleGraphs = Code("multipleGraphs")
        /// A node, port, package or interface name breaks the schema's naming rule.
        public static let invalidName = Code("invalidName")
        /// Two nodes, packages, ports or edges share a name.
        public static let duplicateName = Code("duplicateName")
        /// A declared package has no folder under `packages/`.
        public static let missingPackage = Code("missingPackage")
        /// A package's `package.json` disagrees with the graph's declaration of it.
        public static let packageMismatch = Code("packageMismatch")
        /// A node uses a package that the graph does not declare.
        public static let undeclaredPackage = Code("undeclaredPackage")
        /// A node names an interface that its package does not define.
        public static let unknownInterface = Code("unknownInterface")
        /// A parameter node's or port default's value does not have the parameter's type.
        public static let parameterTypeMismatch = Code("parameterTypeMismatch")
        /// An edge names a node that does not exist.
        public static let unknownNode = Code("unknownNode")
        /// An edge names a port that its node does not have.
        public static let unknownPort = Code("unknownPort")
        /// An edge connects ports of different types.
        public static let edgeTypeMismatch = Code("edgeTypeMismatch")
        /// An edge touches a model node (models are called from code by name).
        public static let modelEdge = Code("modelEdge")
        /// An edge is malformed or connects nodes that cannot be connected.
        public static let invalidEdge = Code("invalidEdge")
        /// An input port has more producers than it accepts.
        public static let tooManyProducers = Code("tooManyProducers")
        /// A code node's input port has no edge and no default.
        public static let unboundInput = Code("unboundInput")
        /// A camera or parameter node needs an override that was not given.
        public static let missingOverride = Code("missingOverride")
        /// A camera package does not describe a usable stream.
        public static let invalidCamera = Code("invalidCamera")
        /// `--camera` names a node that is not a camera.
        public static let unknownCamera = Code("unknownCamera")
        /// A camera URL uses a scheme Vantage cannot open.
        public static let unsupportedURL = Code("unsupportedURL")
        /// `--param` names a node that is not a parameter.
        public static let unknownParameter = Code("unknownParameter")
        /// A `--param` value cannot be read as the parameter's type.
        public static let invalidParameterValue = Code("invalidParameterValue")
        /// A command-line override is not written `NAME=VALUE`.
        public static let invalidArgument = Code("invalidArgument")
        /// A code or model package has no descriptor.
        public static let missingDescriptor = Code("missingDescriptor")
        /// A model descriptor has no `vantage` block.
        public static let missingModelSpec = Code("missingModelSpec")
        /// A path in a package leaves the project folder.
        public static let pathEscapesProject = Code("pathEscapesProject")
        /// An overrides document replaces a node in a way Panorama does not allow.
        public static let invalidOverride = Code("invalidOverride")
        /// A network routing rule is not valid.
        public static let invalidRoutingRule = Code("invalidRoutingRule")
        /// A manifest, descriptor or overrides file is larger than ``ApplicationProject/maxManifestBytes``.
        public static let fileTooLarge = Code("fileTooLarge")
        /// A package's code or model lives outside it (beside the `vantage` binary, in the build machine's files), so a
        /// device could not run it: `vantage app build` makes it self-contained.
        public static let notSelfContained = Code("notSelfContained")
        /// `vantage app build` could not compile a code node or resolve its requirements.
        public static let buildFailed = Code("buildFailed")
    }

    /// What kind of problem this is.
    public var code: Code
    /// The file, relative to the project folder (or as given, for an overrides file outside it); `nil` for
    /// problems with command-line overrides.
    public var file: String?
    /// The 1-based line in `file`, when known.
    public var line: Int?
    /// The 1-based column in `file`, when known.
    public var column: Int?
    /// The graph node concerned, if any.
    public var node: String?
    /// The edge concerned, as `"producer -> consumer"`, if any.
    public var edge: String?
    /// The JSON key concerned, if any.
    public var key: String?
    /// What is wrong.
    public var message: String
    /// What to do about it.
    public var hint: String

    /// Makes an error. `message` says what is wrong and `hint` what to do; neither may contain a secret.
    public init(
        _ code: Code, file: String? = nil, line: Int? = nil, column: Int? = nil, node: String? = nil,
        edge: String? = nil, key: String? = nil, message: String, hint: String
    ) {
        // Names and keys may come from the file as typed, at any length: what is kept is bounded, so no error grows
        // with its input (each call site quotes at most ``excerptLength`` characters; this is the backstop).
        self.code = code
        self.file = file.map { Self.excerpt($0, limit: 1024) }
        self.line = line
        self.column = column
        self.node = node.map { Self.excerpt($0, limit: 128) }
        self.edge = edge.map { Self.excerpt($0, limit: 260) }
        self.key = key.map { Self.excerpt($0, limit: 128) }
        self.message = Self.excerpt(message, limit: 2000)
        self.hint = Self.excerpt(hint, limit: 2000)
    }

    /// `"<file>:<line>:<column>: <what is wrong> — <what to do>"`.
    public var description: String {
        var location = ""
        if let file {
            location = file
            if let line {
                location += ":\(line)"
                if let column { location += ":\(column)" }
            }
            location += ": "
        }
        return "\(location)\(message) — \(hint)"
    }
}

extension ManifestError {
    /// The most characters of user input (a key, a value, a name) an error quotes.
    public static let excerptLength = 80

    /// What an error may quote of user input: at most ``excerptLength`` characters, with "…" when cut, so that a
    /// megabyte-long key or value never comes back in a message.
    public static func excerpt(_ text: some StringProtocol, limit: Int = excerptLength) -> String {
        var prefix = ""
        var count = 0
        for character in text {
            guard count < limit else { return prefix + "…" }
            prefix.append(character)
            count += 1
        }
        return prefix
    }
}

extension ManifestError: LocalizedError {
    /// The same text as `description`, so that `localizedDescription` is useful too.
    public var errorDescription: String? { description }
}
