import Foundation
import VantageCore

/// An application with every override applied and every reference followed: what the runtime starts.
public struct ResolvedApplication: Sendable, Codable {
    /// The application's name (its folder under `graphs/`).
    public let name: String
    /// The project root.
    public let projectDirectory: URL
    /// Every concrete camera stream, in graph order (then in the order overrides list them).
    public internal(set) var cameras: [CameraSource]
    /// The code nodes (`business_logic` interfaces), in graph order.
    public let codeNodes: [CodeNode]
    /// The model nodes (`ml_model` interfaces), in graph order. Code calls them by node name.
    public let models: [ModelNode]
    /// The display sinks (`panorama::hdmi_data_sink` and other `media_sink` nodes), in graph order.
    public let sinks: [SinkNode]
    /// The value of every parameter node, after overrides.
    public let parameters: [String: ParameterValue]
    /// The graph's `networkRoutingRules`, then the overrides document's: inbound ports of code nodes.
    public var routingRules: [NetworkRoutingRule] = []
    /// The documents whose `outputs` object configures sinks, rules and analytics (graph.json's `nodeGraph.outputs`,
    /// then the overrides document's `nodeGraphOverrides.outputs`); read by the runtime.
    public var outputsDocuments: [URL] = []
    /// What was read leniently or chosen for the user (a package half-built by panorama-cli, where `/panorama` is,
    /// a descriptor found by its digest, a media input with no camera): one line each, for the run's log.
    public var notices: [String] = []

    /// Makes a resolved application (tests and tools; `ApplicationProject.resolve(_:)` makes the real ones).
    public init(
        name: String, projectDirectory: URL, cameras: [CameraSource], codeNodes: [CodeNode], models: [ModelNode],
        sinks: [SinkNode], parameters: [String: ParameterValue] = [:]
    ) {
        self.name = name
        self.projectDirectory = projectDirectory
        self.cameras = cameras
        self.codeNodes = codeNodes
        self.models = models
        self.sinks = sinks
        self.parameters = parameters
    }

    /// The code node with this name.
    public func codeNode(named name: String) -> CodeNode? { codeNodes.first { $0.name == name } }
    /// The model node with this name.
    public func model(named name: String) -> ModelNode? { models.first { $0.name == name } }
    /// The camera stream with this name.
    public func camera(named name: String) -> CameraSource? { cameras.first { $0.name == name } }
}

/// The type of a port or parameter.
public enum PortType: String, Sendable, Codable, CaseIterable {
    /// Video frames.
    case media
    /// A string.
    case string
    /// A 32-bit signed integer.
    case int32
    /// A 32-bit float.
    case float32
    /// True or false.
    case boolean

    /// The type's name with "a" or "an", for messages.
    var withArticle: String { self == .int32 ? "an int32" : "a \(rawValue)" }
}

/// The value of a parameter node or of a port default. Encoded as the plain JSON literal (`0.5`, `5`, `"x"`, `true`).
public enum ParameterValue: Sendable, Equatable, Codable, CustomStringConvertible {
    /// A string.
    case string(String)
    /// A 32-bit signed integer.
    case int32(Int32)
    /// A 32-bit float.
    case float32(Float)
    /// True or false.
    case boolean(Bool)

    /// The value's type.
    public var type: PortType {
        switch self {
        case .string: .string
        case .int32: .int32
        case .float32: .float32
        case .boolean: .boolean
        }
    }

    /// The value as written on a command line.
    public var description: String {
        switch self {
        case .string(let value): value
        case .int32(let value): String(value)
        case .float32(let value): String(value)
        case .boolean(let value): value ? "true" : "false"
        }
    }

    /// Reads a value from text, as `--param NAME=VALUE` gives it: an int32 is a whole number in range, a float32
    /// any finite number, a boolean `true`/`false`/`1`/`0` (any case), a string anything. `nil` when the text is not
    /// a value of `type` (or `type` is `media`).
    public init?(parsing text: String, as type: PortType) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        switch type {
        case .media: return nil
        case .string: self = .string(text)
        case .int32:
            guard let value = Int32(trimmed) else { return nil }
            self = .int32(value)
        case .float32:
            guard let value = Float(trimmed), value.isFinite else { return nil }
            self = .float32(value)
        case .boolean:
            switch trimmed.lowercased() {
            case "true", "1": self = .boolean(true)
            case "false", "0": self = .boolean(false)
            default: return nil
            }
        }
    }

    /// Reads a value by its JSON type: `true`/`false` is a boolean, a whole number an int32, another number a
    /// float32, a string a string.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let bool = try? c.decode(Bool.self) {
            self = .boolean(bool)
        } else if let int = try? c.decode(Int32.self) {
            self = .int32(int)
        } else if let float = try? c.decode(Float.self) {
            self = .float32(float)
        } else {
            self = .string(try c.decode(String.self))
        }
    }

    /// Writes the plain JSON literal.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .string(let value): try c.encode(value)
        case .int32(let value): try c.encode(value)
        case .float32(let value): try c.encode(value)
        case .boolean(let value): try c.encode(value)
        }
    }

    /// The value as `type`, where JSON cannot tell them apart (a whole number read for a float32 parameter).
    func converted(to type: PortType) throws -> ParameterValue {
        if self.type == type { return self }
        if case .int32(let int) = self, type == .float32 { return .float32(Float(int)) }
        throw DecodingError.dataCorrupted(
            DecodingError.Context(
                codingPath: [], debugDescription: "expected \(type.withArticle) value, not \(self.type.withArticle)"))
    }

    /// The schema's default value for a type.
    static func zero(of type: PortType) -> ParameterValue {
        switch type {
        case .string, .media: .string("")
        case .int32: .int32(0)
        case .float32: .float32(0)
        case .boolean: .boolean(false)
        }
    }

    /// An example literal of a type, for hints.
    static func example(of type: PortType) -> String {
        switch type {
        case .string, .media: "\"text\""
        case .int32: "5"
        case .float32: "0.5"
        case .boolean: "true"
        }
    }

    /// A JSON value read as `type`; `nil` when its JSON type does not match (an int32 must be a whole number in
    /// range; a float32 takes any number).
    init?(json: SourceJSON, as type: PortType) {
        switch (type, json.kind) {
        case (.string, .string(let string)): self = .string(string)
        case (.boolean, .bool(let bool)): self = .boolean(bool)
        case (.int32, .number):
            guard let int = json.integerValue, let int32 = Int32(exactly: int) else { return nil }
            self = .int32(int32)
        case (.float32, .number(_, _, let double)):
            guard double.isFinite, abs(double) <= Double(Float.greatestFiniteMagnitude) else { return nil }
            self = .float32(Float(double))
        default: return nil
        }
    }
}

/// One camera stream.
///
/// `url` may carry credentials: show `redactedURL` (or `description`) in logs and messages, never `url`.
public struct CameraSource: Sendable, Hashable, Codable, CustomStringConvertible, CustomReflectable {
    /// The stream's id: the camera node's name, or `NODE_1`, `NODE_2`, … when one node was given several streams.
    public let name: String
    /// Where to read the stream: an `rtsp://`, `rtsps://`, `http(s)://` or `file:` URL, or a file path.
    public let url: String
    /// The user name from a camera package's `username` input, if it has one.
    public let username: String?
    /// The password from a camera package's `password` input, if it has one. Never log it.
    public let password: String?
    /// The graph node whose output port delivers this stream.
    public let graphNode: String
    /// When the stream starts: `onSignal` cameras start paused until resumed (Panorama's RESUME signal).
    public var launch: LaunchMode = .onAppStart
    /// The camera's low-resolution sub-stream, if it is given one: frames are decoded from it (applications, models
    /// and analytics see its frames), while `url`, the main stream, is only read (never decoded) for clips.
    /// Same credentials as `url`.
    public var detectURL: String?

    /// Makes a camera source.
    public init(name: String, url: String, username: String? = nil, password: String? = nil, graphNode: String) {
        self.name = name
        self.url = url
        self.username = username
        self.password = password
        self.graphNode = graphNode
    }

    /// `url` with any `user:password@` replaced by `***@`, safe to log.
    public var redactedURL: String { Self.redact(url) }

    /// `"name (redacted URL)"`.
    public var description: String { "\(name) (\(redactedURL))" }

    /// Keeps the URL's credentials and the password out of `dump()` and debuggers.
    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "name": name, "url": redactedURL, "username": username as Any,
                "password": password == nil ? "nil" : "***", "graphNode": graphNode,
                "detectURL": detectURL.map(Self.redact) as Any,
            ])
    }

    /// Replaces the user-information part of a URL (`user:password@`, or `user@`) with `***@`, and the values of
    /// credentials in its query string (`?user=…&pwd=…`, see ``CameraURLQuery``) with `***`.
    ///
    /// When in doubt (a password with a raw `/`, `?` or `@` in it) it hides more rather than less.
    public static func redact(_ url: String) -> String { CameraURLQuery.redact(redactUserInfo(url)) }

    private static func redactUserInfo(_ url: String) -> String {
        // Without "://" (`user:pass@host:554/x` typed without its scheme) the whole string is searched.
        let restStart = url.range(of: "://")?.upperBound ?? url.startIndex
        // The whole rest, not just up to '?' or '#': a password may hold either character unescaped.
        let rest = url[restStart...]
        guard let at = rest.lastIndex(of: "@") else { return url }
        let beforeAt = rest[..<at]
        let firstSlash = beforeAt.firstIndex(of: "/")
        let firstColon = beforeAt.firstIndex(of: ":")
        // `user:pass@host/...` (no '/' before '@'), or a password holding a raw '/': `user:pa/ss@host`.
        let isUserInfo =
            firstSlash == nil || (firstColon != nil && firstColon! < firstSlash!)
        guard isUserInfo else { return url }
        return String(url[..<restStart]) + "***" + String(url[at...])
    }
}

/// A code node (`business_logic` interface): a program Vantage starts, with its ports.
public struct CodeNode: Sendable, Codable {
    /// The node's name.
    public let name: String
    /// `packages/<owner>-<package>-<version>`.
    public let packageDirectory: URL
    /// `packageDirectory/src`: what Panorama's container had at `/panorama`.
    public let sourceDirectory: URL
    /// What to run.
    public let entry: Entry
    /// The interface's input ports, in package.json order, each with what feeds it.
    public let inputs: [InputPort]
    /// The interface's output ports, in package.json order, each with the nodes it feeds.
    public let outputs: [OutputPort]
    /// When the node starts.
    public let launch: LaunchMode

    /// Makes a code node.
    public init(
        name: String, packageDirectory: URL, sourceDirectory: URL, entry: Entry, inputs: [InputPort],
        outputs: [OutputPort], launch: LaunchMode = .onAppStart
    ) {
        self.name = name
        self.packageDirectory = packageDirectory
        self.sourceDirectory = sourceDirectory
        self.entry = entry
        self.inputs = inputs
        self.outputs = outputs
        self.launch = launch
    }

    /// The input port with this name.
    public func input(named name: String) -> InputPort? { inputs.first { $0.name == name } }
    /// The output port with this name.
    public func output(named name: String) -> OutputPort? { outputs.first { $0.name == name } }
}

/// The program of a code node, from its descriptor's `runtimeDescriptor.entry`.
public struct Entry: Sendable, Equatable, Codable {
    /// `entry.path` as written: a program name (looked up beside the `vantage` binary, then on `PATH`) or a path.
    public let executable: String
    /// `entry.name` (when not empty), then `entry.arguments`; a leading `/panorama/` is replaced by the node's
    /// source directory, since Panorama's container had `src/` at `/panorama`.
    public let arguments: [String]
    /// `entry.environment`, as a dictionary.
    public let environment: [String: String]

    /// Makes an entry.
    public init(executable: String, arguments: [String] = [], environment: [String: String] = [:]) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
    }
}

/// An input port of a code node and what feeds it.
public struct InputPort: Sendable, Equatable, Codable {
    /// The port's name.
    public let name: String
    /// The port's type.
    public let type: PortType
    /// What feeds it.
    public let binding: InputBinding

    /// Makes an input port.
    public init(name: String, type: PortType, binding: InputBinding) {
        self.name = name
        self.type = type
        self.binding = binding
    }
}

/// What feeds an input port.
public enum InputBinding: Sendable, Equatable, Codable {
    /// Camera streams, by `CameraSource.name`, in order: their frames arrive together as one list.
    case cameras([String])
    /// A parameter's value (from a parameter node, an override, or the port's default).
    case parameter(ParameterValue)
    /// An output port of a code node.
    case codeOutput(node: String, port: String)
    /// Nothing (only a sink's input can be left unbound).
    case unbound
}

/// An output port of a code node and the nodes it feeds.
public struct OutputPort: Sendable, Equatable, Codable {
    /// The port's name.
    public let name: String
    /// The port's type.
    public let type: PortType
    /// The consumer nodes' names, in edge order.
    public let sinks: [String]

    /// Makes an output port.
    public init(name: String, type: PortType, sinks: [String]) {
        self.name = name
        self.type = type
        self.sinks = sinks
    }
}

/// A model node (`ml_model` interface).
public struct ModelNode: Sendable, Codable {
    /// The node's name: what code passes to call the model.
    public let name: String
    /// `packages/<owner>-<package>-<version>`.
    public let packageDirectory: URL
    /// Panorama's `mlModelDescriptor`.
    public let descriptor: ModelDescriptor
    /// Vantage's `vantage` block: how to load and decode the model.
    public let spec: ModelSpec
    /// `spec.file`, resolved against the project folder. The file is not checked: loading it reports that.
    public let modelFile: URL

    /// Makes a model node.
    public init(name: String, packageDirectory: URL, descriptor: ModelDescriptor, spec: ModelSpec, modelFile: URL) {
        self.name = name
        self.packageDirectory = packageDirectory
        self.descriptor = descriptor
        self.spec = spec
        self.modelFile = modelFile
    }
}

/// A display sink node (`media_sink` interface, such as `panorama::hdmi_data_sink.hdmi0`).
public struct SinkNode: Sendable, Equatable, Codable {
    /// The node's name.
    public let name: String
    /// The interface's name, for example `hdmi0`.
    public let interface: String
    /// What feeds its `video_in` port.
    public let input: InputBinding

    /// Makes a sink node.
    public init(name: String, interface: String, input: InputBinding = .unbound) {
        self.name = name
        self.interface = interface
        self.input = input
    }
}
