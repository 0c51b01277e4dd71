import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import VantageApp
import VantageClient
import VantageInference
import VantageListeners
import VantageMedia
import VantageRuntime

/// `vantage run APP_DIR`: the edge runtime, standalone.
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run an application against cameras or video files.",
        discussion: """
            APP_DIR is an application in the panorama-cli project layout (graphs/<app>/graph.json, packages/…).
            Abstract camera nodes are given with --camera NODE=URL; repeat it with the same NODE for several
            streams delivered together as one list. A file plays once as fast as possible (then a summary is
            printed) unless --realtime or --loop is given. Events go to standard output as JSON lines, a status
            line per camera and code node to standard error every few seconds, and the annotated live view is
            served at http://127.0.0.1:7450/ (see --http). Ctrl-C stops cleanly.

            Examples:
              vantage run examples/people-counter --camera camera_node=.deps/media/vtest.mp4
              vantage run my-app --camera camera_node=rtsp://user:pass@10.0.0.5/stream1 --param threshold=0.6
              vantage run panorama-project --camera camera_node=rtsp://10.0.0.5/s1 --model model_node=ssd.onnx
            """)

    @Argument(help: "The application's project folder.", completion: .directory)
    var appDirectory: String

    @Option(
        name: .customLong("camera"),
        help: ArgumentHelp(
            "Give an abstract camera node its stream: NODE=URL (rtsp://, http(s)://, file: or a path). Repeatable.",
            valueName: "NODE=URL"))
    var cameras: [String] = []

    @Option(
        name: .customLong("detect-stream"),
        help: ArgumentHelp(
            "Give a camera its low-resolution sub-stream for detection: NODE=URL, one per --camera of the node, in "
                + "the same order. Frames are decoded from the sub-stream; the --camera stream (the main stream) is "
                + "only read, for clips.",
            valueName: "NODE=URL"))
    var detectStreams: [String] = []

    @Option(
        name: .customLong("param"),
        help: ArgumentHelp("Override a parameter node: NAME=VALUE. Repeatable.", valueName: "NAME=VALUE"))
    var parameters: [String] = []

    @Option(help: ArgumentHelp("A Panorama overrides document ({\"nodeGraphOverrides\": …}).", valueName: "FILE"))
    var overrides: String?

    @Option(
        name: .customLong("model"),
        help: ArgumentHelp(
            "Serve a model node with this file (ONNX, TensorFlow .pb, TFLite or OpenVINO .xml): NODE=PATH. For "
                + "Panorama projects whose models are SageMaker Neo archives. Repeatable.",
            valueName: "NODE=PATH"))
    var models: [String] = []

    @Option(
        help: ArgumentHelp(
            "Where Python code nodes' virtual environments are cached (default ~/.cache/vantage/python).",
            valueName: "DIR"))
    var pythonCache: String?

    @Option(
        help: ArgumentHelp(
            "Where the hostPorts of networkRoutingRules are opened (default the loopback interface; 0.0.0.0 for "
                + "every interface).", valueName: "ADDRESS"))
    var publishAddress = "127.0.0.1"

    @Flag(help: "Play files at their frame rate instead of as fast as possible.")
    var realtime = false

    @Flag(help: "Play files again from the start when they end (implies --realtime).")
    var loop = false

    @Option(help: "RTSP transport: tcp or udp.")
    var transport: String = "tcp"

    @Option(help: ArgumentHelp("Where the live view and /status listen (port 0 picks one).", valueName: "HOST:PORT"))
    var http: String = "127.0.0.1:7450"

    @Flag(help: "Do not serve the live view and status endpoint.")
    var noHttp = false

    @Option(
        name: .customLong("http-allowed-host"),
        help: ArgumentHelp(
            "A name the live view may be reached by, e.g. a reverse proxy's (repeatable). IP addresses, localhost, the "
                + "--http address and this machine's name always are; requests naming any other host are refused "
                + "(DNS rebinding).", valueName: "NAME"))
    var httpAllowedHosts: [String] = []

    @Option(help: ArgumentHelp("Write events as JSON lines to FILE instead of standard output.", valueName: "FILE"))
    var events: String?

    @Option(help: ArgumentHelp("Where event snapshots go (default: STATE_DIR/snapshots).", valueName: "DIR"))
    var snapshots: String?

    @Option(
        help: ArgumentHelp(
            "An outputs document: sinks (MQTT, S3, webhooks), rules and no-code analytics (zones, lines), applied over "
                + "graph.json's nodeGraph.outputs. See docs/outputs.md.", valueName: "FILE"))
    var outputs: String?

    @Option(
        help: ArgumentHelp(
            "Give the application this AWS profile's credentials (from ~/.aws/credentials and ~/.aws/config, or "
                + "AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE) as AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
                + "AWS_SESSION_TOKEN and AWS_REGION. Without it or --aws-env the application gets no AWS_* variables.",
            valueName: "NAME"))
    var awsProfile: String?

    @Flag(help: "Pass this runtime's own AWS_* environment variables to the application.")
    var awsEnv = false

    @Option(help: ArgumentHelp("This device's name in event messages and {device} templates (default: the host name)."))
    var device: String?

    @Option(
        help: ArgumentHelp("This instance's name in event messages and {instance} templates (default: the app's name).")
    )
    var instance: String?

    @Option(
        help: ArgumentHelp(
            "The application's state: storage/, logs/, the compiled-model cache (default "
                + "~/.local/state/vantage/<app>-<digest of the project folder and --instance>).",
            valueName: "DIR"))
    var stateDir: String?

    @Option(help: ArgumentHelp("Seconds between status lines on standard error; 0 for none.", valueName: "SECONDS"))
    var statusInterval: Double = 5

    @Option(help: ArgumentHelp("Seconds without video before a connected camera is restarted.", valueName: "SECONDS"))
    var stallTimeout: Double = 5

    @Option(
        help: ArgumentHelp(
            "The longest pause between a camera's reconnect attempts (they start at 0.25 s and double).",
            valueName: "SECONDS"))
    var reconnectMaxDelay: Double = 5

    @Option(
        help: ArgumentHelp(
            "While a camera is unreachable, how often the log says so (its first failure is logged at once, with "
                + "the reason; then one summary line per interval; one line when it is back).",
            valueName: "SECONDS"))
    var cameraLogInterval: Double = 600

    @Option(
        help: ArgumentHelp(
            "Seconds an application may go without asking for anything before it is killed and restarted.",
            valueName: "SECONDS"))
    var appHangTimeout: Double = 30

    @Option(
        help: ArgumentHelp(
            "Seconds code nodes may go on after the last file ended before they are stopped (SIGTERM, then SIGKILL).",
            valueName: "SECONDS"))
    var endGrace: Double = 10

    @Flag(
        help: ArgumentHelp(
            "Do not give code nodes a private mount namespace with /panorama and /opt/aws/panorama/* (Python's own "
                + "file calls are still mapped)."))
    var noPanoramaMounts = false

    @Option(help: ArgumentHelp("Bytes per tensor slot for tensors an application sends, in MiB.", valueName: "MIB"))
    var tensorSlotMb: Int = 16

    @Option(
        help: ArgumentHelp(
            "OpenVINO performance hint: latency, throughput, or auto (latency for one live camera or Python code "
                + "nodes, throughput otherwise: several cameras, one file read as fast as possible).",
            valueName: "HINT"))
    var inferenceHint: String = "auto"

    @Flag(
        name: .customLong("no-infer-ahead"),
        help: ArgumentHelp(
            "Run a model only when the application calls it, not on each frame as it is decoded when the "
                + "application calls it on every frame (saves the inference of frames it would skip; slower)."))
    var noInferAhead = false

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String = "info"

    @Flag(help: "Print the end-of-run summary as JSON on standard error.")
    var jsonSummary = false

    func validate() throws {
        let hostNameCharacters = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._"))
        for name in httpAllowedHosts
        where name.isEmpty || name.count > 253 || !name.unicodeScalars.allSatisfy(hostNameCharacters.contains) {
            throw ValidationError(
                "--http-allowed-host takes a host name like view.example.com (no scheme, port or path), not "
                    + "'\(name.prefix(64))'")
        }
        guard reconnectMaxDelay > 0 && reconnectMaxDelay <= 3600 else {
            throw ValidationError(
                "--reconnect-max-delay takes seconds, more than 0 and at most 3600 (e.g. 5), not \(reconnectMaxDelay)")
        }
        guard cameraLogInterval > 0 && cameraLogInterval <= 86400 else {
            throw ValidationError(
                "--camera-log-interval takes seconds, more than 0 and at most 86400 (e.g. 600), not \(cameraLogInterval)"
            )
        }
        guard ["tcp", "udp"].contains(transport) else {
            throw ValidationError("--transport must be tcp or udp, not \(transport)")
        }
        guard ["auto", "latency", "throughput"].contains(inferenceHint) else {
            throw ValidationError("--inference-hint must be auto, latency or throughput, not \(inferenceHint)")
        }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error")
        }
        if !noHttp { _ = try parseHostPort(http) }
        guard tensorSlotMb > 0 && tensorSlotMb <= 1024 else { throw ValidationError("--tensor-slot-mb must be 1–1024") }
    }

    private func parseHostPort(_ text: String) throws -> (String, Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65535).contains(port)
        else { throw ValidationError("--http takes HOST:PORT, e.g. 127.0.0.1:7450 or 0.0.0.0:0; got \(text)") }
        return (String(text[..<colon]), port)
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel)!
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "vantage")
        // Cameras, app sockets and live-view connections each take a descriptor.
        OpenFileLimit.raiseToHardLimit()

        // The application.
        let directory = URL(fileURLWithPath: appDirectory, isDirectory: true).standardizedFileURL
        let application: ResolvedApplication
        do {
            var runOverrides = RunOverrides(overridesFile: overrides.map { URL(fileURLWithPath: $0) })
            for c in cameras { try runOverrides.addCamera(argument: c) }
            for d in detectStreams { try runOverrides.addDetectStream(argument: d) }
            for p in parameters { try runOverrides.addParameter(argument: p) }
            for m in models { try runOverrides.addModel(argument: m) }
            application = try ApplicationProject.load(directory).resolve(runOverrides)
        } catch {
            throw failure(error)
        }

        // The runtime.
        let state =
            stateDir.map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser
            .appendingPathComponent(".local/state/vantage/\(Self.defaultStateFolder(application, instance: instance))")
        var configuration = RuntimeConfiguration(stateDirectory: state)
        configuration.realtime = realtime || loop
        configuration.loop = loop
        configuration.transport = transport == "udp" ? .udp : .tcp
        if noHttp {
            configuration.httpPort = nil
        } else {
            (configuration.httpHost, configuration.httpPort) = try parseHostPort(http)
            if let problem = Self.cannotListen(host: configuration.httpHost, port: configuration.httpPort!) {
                let holder = PortHolder.describe(port: configuration.httpPort!).map { " (held by \($0))" } ?? ""
                throw failure(
                    RuntimeError(
                        "cannot serve the live view on \(http): \(problem)\(holder); choose another with --http "
                            + "HOST:PORT (port 0 picks a free one) or turn it off with --no-http"))
            }
        }
        configuration.httpAllowedHosts = httpAllowedHosts
        configuration.eventsFile = events.map { URL(fileURLWithPath: $0) }
        configuration.snapshotsDirectory = snapshots.map { URL(fileURLWithPath: $0) }
        configuration.outputsFile = outputs.map { URL(fileURLWithPath: $0) }
        configuration.deviceName = device
        configuration.instanceName = instance
        configuration.statusInterval = statusInterval > 0 ? .milliseconds(Int(statusInterval * 1000)) : nil
        configuration.stallTimeout = .milliseconds(Int(stallTimeout * 1000))
        configuration.reconnectMaxDelay = .milliseconds(Int(reconnectMaxDelay * 1000))
        configuration.cameraLogInterval = .milliseconds(Int(cameraLogInterval * 1000))
        configuration.tensorSlotBytes = tensorSlotMb << 20
        configuration.appHangTimeout = .milliseconds(Int(appHangTimeout * 1000))
        configuration.endGracePeriod = .milliseconds(Int(max(0, endGrace) * 1000))
        configuration.panoramaMounts = !noPanoramaMounts
        configuration.executableSearchPath = [Self.executableDirectory]
        configuration.pythonCacheDirectory = pythonCache.map { URL(fileURLWithPath: $0) }
        configuration.publishAddress = publishAddress
        configuration.inferenceHint = InferenceModel.PerformanceHint(rawValue: inferenceHint.uppercased())
        configuration.inferAhead = !noInferAhead
        do {
            configuration.applicationEnvironment = try AWSProfiles().applicationEnvironment(
                profile: awsProfile, passEnvironment: awsEnv)
        } catch {
            throw failure(error)
        }

        let runtime: Runtime
        do {
            runtime = try await Runtime.make(application: application, configuration: configuration, logger: logger)
        } catch {
            throw failure(error)
        }
        logger.info(
            "running \(application.name)",
            metadata: [
                "cameras":
                    "\(application.cameras.map { "\($0.name)=\(StreamSource.redact($0.url))" }.joined(separator: ", "))",
                "events": "\(events ?? "stdout")",
            ])
        try await runtime.serviceGroup().run()

        if let summary = runtime.summary {
            if jsonSummary {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                FileHandle.standardError.write(try encoder.encode(summary) + Data("\n".utf8))
            } else {
                FileHandle.standardError.write(Data(Self.describe(summary).utf8))
            }
        }
        let failures = runtime.failures
        if !failures.isEmpty {
            for f in failures { FileHandle.standardError.write(Data("error: \(f)\n".utf8)) }
            throw ExitCode.failure
        }
    }

    /// `<app>-<8 hex digits>`: two projects that share an application name (every panorama-cli project started as
    /// "my-app"), or two instances of one, never share storage and logs.
    static func defaultStateFolder(_ application: ResolvedApplication, instance: String?) -> String {
        let key = application.projectDirectory.standardizedFileURL.path + "\u{0}" + (instance ?? "")
        return "\(application.name)-\(SHA256.hex(key).prefix(8))"
    }

    /// Prints `error` on standard error and gives the exit code to throw: the message is the user's guide.
    private func failure(_ error: any Error) -> ExitCode {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        return ExitCode.failure
    }

    static func describe(_ s: RunSummary) -> String {
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        var text =
            "summary: \(s.frames) frames in \(f(s.seconds)) s (\(f(s.framesPerSecond)) frames/s"
            + (s.startupSeconds.flatMap { startup in
                s.streamingFramesPerSecond.map { "; \(f($0)) after a \(f(startup)) s start-up" }
            } ?? "") + "), \(s.events) events, \(s.dropped) dropped, \(s.appRestarts) app restarts"
        if let p50 = s.decisionLatencyP50Ms, let p99 = s.decisionLatencyP99Ms {
            text += ", decode→decision p50 \(f(p50)) ms p99 \(f(p99)) ms"
        }
        return text + "\n"
    }

    /// Why nothing can listen on host:port (in use, not an address of this machine), or nil if it can.
    static func cannotListen(host: String, port: Int) -> String? {
        guard port != 0 else { return nil }
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, "\(port)", &hints, &found) == 0, let info = found else {
            return "\(host) is not an address of this machine"
        }
        defer { freeaddrinfo(found) }
        let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
        guard fd >= 0 else { return String(cString: strerror(errno)) }
        defer { close(fd) }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        return bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 ? nil : String(cString: strerror(errno))
    }

    /// The folder of the running `vantage` binary, where code-node executables built with it live.
    static var executableDirectory: URL { executable.deletingLastPathComponent() }

    /// The running `vantage` binary.
    static var executable: URL {
        let path =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: path)
    }
}
