import Foundation

/// What the person running an application changes about it: cameras, parameter values, and an optional Panorama
/// overrides document. Command-line values win over the document.
public struct RunOverrides: Sendable {
    /// From repeated `--camera NODE=URL`, in the order given. Several for one node become several streams
    /// (`NODE_1`, `NODE_2`, …) delivered together as one list, like Panorama's `nodeOverrides`.
    public var cameras: [CameraOverride]
    /// From repeated `--detect-stream NODE=URL`: a camera's low-resolution sub-stream, decoded for detection while its
    /// `--camera` stream (the main stream) is kept for clips. The n-th for a node goes with the node's n-th stream.
    public var detectStreams: [CameraOverride] = []
    /// From `--param NAME=VALUE`; each value is read as its parameter node's type.
    public var parameters: [String: String]
    /// A Panorama overrides document, `{"nodeGraphOverrides": {...}}`.
    public var overridesFile: URL?
    /// From `--model NODE=PATH`: the model file serving a model node (absolute paths), for projects whose model
    /// packages hold SageMaker Neo archives rather than a `vantage` block, or to try another file.
    public var models: [String: String] = [:]

    /// Makes a set of overrides.
    public init(cameras: [CameraOverride] = [], parameters: [String: String] = [:], overridesFile: URL? = nil) {
        self.cameras = cameras
        self.parameters = parameters
        self.overridesFile = overridesFile
    }

    /// Adds a `--camera` argument, written `NODE=URL`.
    public mutating func addCamera(argument: String) throws(ManifestError) {
        cameras.append(try CameraOverride(argument: argument))
    }

    /// Adds a `--detect-stream` argument, written `NODE=URL`.
    public mutating func addDetectStream(argument: String) throws(ManifestError) {
        detectStreams.append(try CameraOverride(argument: argument, option: "--detect-stream"))
    }

    /// Adds a `--model` argument, written `NODE=PATH`; a relative path is taken from the current directory.
    public mutating func addModel(argument: String) throws(ManifestError) {
        let file = try PanoramaImport.ModelFile(argument: argument)
        models[file.node] = file.path.path
    }

    /// Adds a `--param` argument, written `NAME=VALUE` (a later value for the same name wins).
    public mutating func addParameter(argument: String) throws(ManifestError) {
        guard let equals = argument.firstIndex(of: "="), equals != argument.startIndex else {
            throw ManifestError(
                .invalidArgument, message: "--param \(argumentPrefix(argument)) is not written NAME=VALUE",
                hint: "write it as --param NAME=VALUE, e.g. --param min_score=0.6")
        }
        parameters[String(argument[..<equals])] = String(argument[argument.index(after: equals)...])
    }
}

/// One `--camera NODE=URL`: a stream for a camera node.
public struct CameraOverride: Sendable, Equatable, CustomStringConvertible {
    /// The camera node (in graph.json or the overrides document).
    public var node: String
    /// The stream: `rtsp://`, `rtsps://`, `http://`, `https://`, a `file:` URL or a path to a video file.
    public var url: String

    /// Makes an override.
    public init(node: String, url: String) {
        self.node = node
        self.url = url
    }

    /// Reads `NODE=URL` (the URL may itself contain `=`) given to `option`.
    public init(argument: String, option: String = "--camera") throws(ManifestError) {
        guard let equals = argument.firstIndex(of: "="), equals != argument.startIndex else {
            throw ManifestError(
                .invalidArgument,
                message: "\(option) \(argumentPrefix(CameraSource.redact(argument))) is not written NODE=URL",
                hint:
                    "write it as \(option) NODE=URL, e.g. \(option) camera_node=rtsp://user:pass@192.168.1.20:554/stream1"
            )
        }
        self.init(node: String(argument[..<equals]), url: String(argument[argument.index(after: equals)...]))
    }

    /// `NODE=URL` with the URL's credentials hidden.
    public var description: String { "\(node)=\(CameraSource.redact(url))" }
}

/// Which camera URLs Vantage opens: checked before anything opens them (the runtime, and the control plane when a
/// camera is registered).
public enum CameraURL {
    public static let acceptedForms = "rtsp://, rtsps://, http://, https://, a file: URL or a path to a video file"

    /// Why a URL cannot be opened, or `nil` when it can. Never quotes the URL unredacted.
    public static func problem(_ url: String) -> String? {
        if url.trimmingCharacters(in: .whitespaces).isEmpty { return "the URL is empty" }
        guard let scheme = scheme(of: url) else {
            // A path, unless it looks like `192.168.1.20:554/stream`: a camera address without its scheme.
            if let colon = url.firstIndex(of: ":"), !url[..<colon].contains("/"),
                url[url.index(after: colon)...].prefix(while: { $0 != "/" }).allSatisfy(\.isNumber),
                url.index(after: colon) < url.endIndex
            {
                return
                    "\(CameraSource.redact(url)) looks like a camera address without a scheme: write "
                    + "rtsp://\(CameraSource.redact(url))"
            }
            return nil
        }
        switch scheme.lowercased() {
        case "rtsp", "rtsps", "http", "https":
            guard url.dropFirst(scheme.count + 1).hasPrefix("//"), url.count > scheme.count + 3 else {
                return "\(CameraSource.redact(url)) is missing the host: write \(scheme)://HOST/PATH"
            }
            return nil
        case "file":
            return url.count > 5 ? nil : "the file: URL names no file"
        default:
            return "\"\(scheme)\" URLs are not supported"
        }
    }

    /// The scheme of a URL, or `nil` for a plain path.
    static func scheme(of url: String) -> String? {
        guard let colon = url.firstIndex(of: ":") else { return nil }
        let candidate = url[..<colon]
        guard let first = candidate.unicodeScalars.first, ("a"..."z").contains(first) || ("A"..."Z").contains(first),
            candidate.unicodeScalars.allSatisfy({ $0.isASCIILetterOrDigit || "+-.".unicodeScalars.contains($0) })
        else { return nil }
        return String(candidate)
    }
}

/// The start of a command-line argument, for an error: an argument may be as long as the command line allows, and
/// an error quotes only a short prefix of what it was given. Credentials must be redacted before.
func argumentPrefix(_ argument: String) -> String {
    argument.unicodeScalars.count <= 64
        ? argument : String(String.UnicodeScalarView(argument.unicodeScalars.prefix(64))) + "…"
}
