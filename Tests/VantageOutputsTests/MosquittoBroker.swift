import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

// A real Mosquitto broker for tests, and a subscriber that collects what it receives (mosquitto_sub, an independent
// MQTT client). Both are processes the tests start and always stop: use `withMosquittoBroker { broker in ... }`,
// which stops the broker and its subscribers and deletes the broker's folder even when the body throws.

/// Why a test's broker or subscriber could not do what it was asked; says how to fix a missing tool.
struct MosquittoTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A `mosquitto` process on a free local port, with a generated configuration in its own temporary folder.
final class MosquittoBroker: Sendable {
    /// What the broker is set up with.
    struct Options: Sendable {
        /// Keep sessions and queued messages on disk across restarts (`persistence true`).
        var persistence = false
        /// Where the persistence file goes; nil: the broker's temporary folder.
        var persistenceFolder: URL? = nil
        /// Save the persistence file after every change, not only on a clean shutdown: makes a SIGKILL lose as
        /// little as Mosquitto can.
        var saveAfterEveryChange = false
        /// Users and passwords (a password file made with `mosquitto_passwd -b`); non-empty turns anonymous access
        /// off.
        var users: [String: String] = [:]
        /// An mqtts listener, with a test CA and a certificate for `localhost` made with `openssl`.
        var tls = false

        init(
            persistence: Bool = false, persistenceFolder: URL? = nil, saveAfterEveryChange: Bool = false,
            users: [String: String] = [:], tls: Bool = false
        ) {
            self.persistence = persistence
            self.persistenceFolder = persistenceFolder
            self.saveAfterEveryChange = saveAfterEveryChange
            self.users = users
            self.tls = tls
        }
    }

    let options: Options
    /// The broker's folder: configuration, log, password file, certificates, persistence (unless given).
    let folder: URL
    let port: Int
    /// The host clients connect to: `localhost` with TLS (its certificate names it), else 127.0.0.1.
    let host: String
    /// The test CA's certificate (PEM) that signed the broker's certificate, with TLS.
    let caFile: String?
    /// Another CA's certificate, which did not sign the broker's: for tests of a wrong CA.
    let otherCAFile: String?
    private let configFile: URL
    private let logFile: URL
    private let process = Mutex<Process?>(nil)
    /// Holds the port while the broker does not run.
    private let reservation = Mutex<PortReservation?>(nil)
    private let subscribers = Mutex<[MosquittoSubscriber]>([])

    /// Starts a broker; it runs until ``stop(signal:)`` or ``shutdown()``.
    static func start(_ options: Options = Options()) async throws -> MosquittoBroker {
        let broker = try MosquittoBroker(options: options)
        do {
            try await broker.start()
        } catch {
            await broker.shutdown()
            throw error
        }
        return broker
    }

    private init(options: Options) throws {
        self.options = options
        folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "vantage-mosquitto-\(UUID().uuidString.prefix(8))", isDirectory: true)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let reserved = try PortReservation()
        port = reserved.port
        reservation.withLock { $0 = reserved }
        host = options.tls ? "localhost" : "127.0.0.1"
        configFile = folder.appendingPathComponent("mosquitto.conf")
        logFile = folder.appendingPathComponent("mosquitto.log")
        guard FileManager.default.createFile(atPath: logFile.path, contents: nil) else {
            throw MosquittoTestError("cannot create \(logFile.path)")
        }

        var config = [
            // localhost binds every address the name resolves to, as clients resolve it.
            "listener \(port) \(options.tls ? "localhost" : "127.0.0.1")",
            "allow_anonymous \(options.users.isEmpty)",
            // Started as root, Mosquitto would switch to the `mosquitto` user, which cannot read this folder.
            "user \(currentUserName())",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "max_queued_messages 100000",
        ]
        if !options.users.isEmpty {
            let passwords = folder.appendingPathComponent("passwords").path
            for (index, (user, password)) in options.users.sorted(by: { $0.key < $1.key }).enumerated() {
                try runTool(
                    "mosquitto_passwd", (index == 0 ? ["-c"] : []) + ["-b", passwords, user, password])
            }
            config.append("password_file \(passwords)")
        }
        if options.tls {
            let certificates = try makeTestCertificates(in: folder)
            caFile = certificates.ca
            otherCAFile = certificates.otherCA
            config += [
                "cafile \(certificates.ca)", "certfile \(certificates.certificate)", "keyfile \(certificates.key)",
            ]
        } else {
            caFile = nil
            otherCAFile = nil
        }
        if options.persistence {
            let location = options.persistenceFolder ?? folder
            try FileManager.default.createDirectory(at: location, withIntermediateDirectories: true)
            config += ["persistence true", "persistence_location \(location.path)/"]
            if options.saveAfterEveryChange {
                config += ["autosave_on_changes true", "autosave_interval 1"]
            }
        }
        try (config.joined(separator: "\n") + "\n").write(to: configFile, atomically: true, encoding: .utf8)
    }

    deinit {
        // The last resort when a test forgot shutdown(): no broker outlives its test process.
        if let process = process.withLock({ $0 }), process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    /// `mqtt://127.0.0.1:PORT`, or `mqtts://localhost:PORT` with TLS.
    var url: URL { URL(string: "\(options.tls ? "mqtts" : "mqtt")://\(host):\(port)")! }

    /// Whether the broker process runs.
    var isRunning: Bool { process.withLock { $0?.isRunning ?? false } }

    /// Starts the broker (again, after ``stop(signal:)``) on the same port with the same configuration, and returns
    /// once it accepts connections.
    func start() async throws {
        let executable = try findTool("mosquitto")
        let started = Process()
        started.executableURL = URL(fileURLWithPath: executable)
        started.arguments = ["-c", configFile.path]
        let log = try FileHandle(forWritingTo: logFile)
        log.seekToEndOfFile()
        started.standardOutput = log
        started.standardError = log
        reservation.withLock { $0?.release() }
        try runWithDefaultSignalMask(started)
        try? log.close()
        process.withLock { $0 = started }
        let deadline = ContinuousClock.now + .seconds(15)
        while !localPortAcceptsConnections(port) {
            guard started.isRunning else {
                throw MosquittoTestError(
                    "mosquitto exited at start (status \(started.terminationStatus)):\n\(logTail())")
            }
            guard ContinuousClock.now < deadline else {
                throw MosquittoTestError("mosquitto did not listen on port \(port) within 15 s:\n\(logTail())")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Stops the broker with `signal`: SIGTERM is a clean shutdown (Mosquitto saves its persistence file and closes
    /// connections), SIGKILL a crash. Returns once the process ended.
    func stop(signal: Int32 = SIGTERM) async {
        guard let running = process.withLock({ $0 }), running.isRunning else { return }
        kill(running.processIdentifier, signal)
        let deadline = ContinuousClock.now + .seconds(10)
        while running.isRunning {
            if ContinuousClock.now > deadline { kill(running.processIdentifier, SIGKILL) }
            try? await Task.sleep(for: .milliseconds(10))
        }
        // Keep the port while stopped (if someone took it in between, the restart will say so).
        let held = try? PortReservation(port: port)
        reservation.withLock { $0 = held }
    }

    /// Sends `signal` to the broker: SIGSTOP freezes it (connections stay open, nothing is answered), SIGCONT
    /// resumes it.
    func send(_ signal: Int32) {
        if let running = process.withLock({ $0 }), running.isRunning { kill(running.processIdentifier, signal) }
    }

    /// Stops every subscriber and the broker, and deletes the broker's folder.
    func shutdown() async {
        for subscriber in subscribers.withLock({ $0 }) { await subscriber.stop() }
        await stop()
        reservation.withLock { $0 = nil }
        try? FileManager.default.removeItem(at: folder)
    }

    /// The end of the broker's log, for failure messages.
    func logTail(lines: Int = 40) -> String {
        let text = (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    /// Starts a `mosquitto_sub` on this broker (stopped with the broker) and returns once it is subscribed.
    /// `persistent` keeps its session (and the messages queued for it) across its and the broker's reconnections.
    func subscriber(
        topics: [String], clientID: String = "test-sub-\(UUID().uuidString.prefix(8))", qos: Int = 2,
        persistent: Bool = false, username: String? = nil, password: String? = nil
    ) async throws -> MosquittoSubscriber {
        let subscriber = try MosquittoSubscriber(
            broker: self, topics: topics, clientID: clientID, qos: qos, persistent: persistent, username: username,
            password: password)
        subscribers.withLock { $0.append(subscriber) }
        try await subscriber.waitUntilSubscribed()
        return subscriber
    }

    /// Arguments for mosquitto_sub/mosquitto_pub that reach this broker.
    func clientArguments(username: String?, password: String?) -> [String] {
        var arguments = ["-h", host, "-p", String(port)]
        if let caFile { arguments += ["--cafile", caFile] }
        if let username { arguments += ["-u", username] }
        if let password { arguments += ["-P", password] }
        return arguments
    }
}

/// Runs `body` with a started broker, and always shuts the broker down (subscribers included) afterwards.
func withMosquittoBroker<T>(
    _ options: MosquittoBroker.Options = .init(), _ body: (MosquittoBroker) async throws -> T
) async throws -> T {
    let broker = try await MosquittoBroker.start(options)
    do {
        let result = try await body(broker)
        await broker.shutdown()
        return result
    } catch {
        await broker.shutdown()
        throw error
    }
}

/// A `mosquitto_sub` process collecting every message it receives, with topic, payload, QoS and retained flag.
final class MosquittoSubscriber: Sendable {
    /// One received message.
    struct Message: Sendable, Equatable, CustomStringConvertible {
        var topic: String
        var payload: [UInt8]
        var qos: Int
        /// Whether the broker sent it as a retained message (a new subscription's copy of the retained message).
        var retained: Bool
        var text: String { String(decoding: payload, as: UTF8.self) }
        var description: String { "\(topic) \(text) (QoS \(qos)\(retained ? ", retained" : ""))" }
    }

    let clientID: String
    private let probeTopic: String
    private let broker: MosquittoBroker
    private let username: String?
    private let password: String?
    private let process: Process
    private let standardOutput = Pipe()
    private let standardError = Pipe()
    private let output = Collected()

    /// What the process printed, shared with its pipes' handlers.
    private final class Collected: Sendable {
        let state = Mutex<(pending: [UInt8], messages: [Message], probes: Int, errors: String)>(([], [], 0, ""))
    }

    fileprivate init(
        broker: MosquittoBroker, topics: [String], clientID: String, qos: Int, persistent: Bool, username: String?,
        password: String?
    ) throws {
        self.broker = broker
        self.clientID = clientID
        self.username = username
        self.password = password
        probeTopic = "vantage-test-probe/\(clientID)"
        process = Process()
        process.executableURL = URL(fileURLWithPath: try findTool("mosquitto_sub"))
        // %r retained flag, %q QoS, %t topic, %x payload in hex: one line per message, whatever the payload.
        var arguments = broker.clientArguments(username: username, password: password)
        arguments += ["-i", clientID, "-q", String(qos), "-F", "%r %q %t %x"]
        if persistent { arguments.append("-c") }
        for topic in topics + [probeTopic] { arguments += ["-t", topic] }
        process.arguments = arguments
        process.standardOutput = standardOutput
        process.standardError = standardError
        let received = output
        standardOutput.fileHandleForReading.readabilityHandler = { [probeTopic] handle in
            let data = handle.availableData
            guard !data.isEmpty else {
                handle.readabilityHandler = nil
                return
            }
            received.state.withLock { state in
                state.pending += data
                while let newline = state.pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = String(decoding: state.pending[..<newline], as: UTF8.self)
                    state.pending.removeSubrange(...newline)
                    guard let message = Self.parse(line) else { continue }
                    if message.topic == probeTopic {
                        state.probes += 1
                    } else {
                        state.messages.append(message)
                    }
                }
            }
        }
        standardError.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            guard !data.isEmpty else {
                handle.readabilityHandler = nil
                return
            }
            received.state.withLock { $0.errors += String(decoding: data, as: UTF8.self) }
        }
        try runWithDefaultSignalMask(process)
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        stopReading()
    }

    /// Detaches the pipes' handlers before the pipes close (a handler reading a closed pipe traps).
    private func stopReading() {
        standardOutput.fileHandleForReading.readabilityHandler = nil
        standardError.fileHandleForReading.readabilityHandler = nil
    }

    private static func parse(_ line: String) -> Message? {
        let fields = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
        guard fields.count >= 3, let qos = Int(fields[1]) else { return nil }
        let hex = fields.count > 3 ? Array(fields[3].utf8) : []
        var payload: [UInt8] = []
        var index = 0
        while index + 1 < hex.count {
            guard let byte = UInt8(String(decoding: hex[index...index + 1], as: UTF8.self), radix: 16) else {
                return nil
            }
            payload.append(byte)
            index += 2
        }
        return Message(topic: String(fields[2]), payload: payload, qos: qos, retained: fields[0] == "1")
    }

    /// Publishes probes (QoS 0, with mosquitto_pub) on the subscriber's own probe topic until one comes back: then
    /// its subscriptions are in place.
    fileprivate func waitUntilSubscribed() async throws {
        let deadline = ContinuousClock.now + .seconds(15)
        while output.state.withLock({ $0.probes }) == 0 {
            guard process.isRunning else {
                throw MosquittoTestError("mosquitto_sub exited: \(output.state.withLock { $0.errors })")
            }
            guard ContinuousClock.now < deadline else {
                throw MosquittoTestError(
                    "mosquitto_sub did not receive its probe within 15 s: \(output.state.withLock { $0.errors })\n"
                        + broker.logTail())
            }
            try runTool(
                "mosquitto_pub",
                broker.clientArguments(username: username, password: password) + ["-t", probeTopic, "-m", "probe"])
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Everything received so far, in arrival order (probes left out).
    var messages: [Message] { output.state.withLock { $0.messages } }

    /// The messages received on `topic`.
    func messages(on topic: String) -> [Message] { messages.filter { $0.topic == topic } }

    /// Waits until `condition` holds for the messages received (polling), and returns them; throws after `timeout`
    /// naming `what` and listing what arrived.
    @discardableResult
    func waitUntil(
        _ what: String, timeout: Duration = .seconds(60), _ condition: ([Message]) -> Bool
    ) async throws -> [Message] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let current = messages
            if condition(current) { return current }
            guard ContinuousClock.now < deadline else {
                throw MosquittoTestError(
                    "subscriber \(clientID) did not get \(what) within \(timeout); it got \(current.count): "
                        + current.suffix(10).map(\.description).joined(separator: "; "))
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Ends the mosquitto_sub process.
    func stop() async {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        let deadline = ContinuousClock.now + .seconds(5)
        while process.isRunning {
            if ContinuousClock.now > deadline { kill(process.processIdentifier, SIGKILL) }
            try? await Task.sleep(for: .milliseconds(10))
        }
        stopReading()
    }
}

// MARK: Tools

/// The path of a Mosquitto or OpenSSL tool, from PATH or the sbin folders Debian puts `mosquitto` in.
func findTool(_ name: String) throws -> String {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
    let folders = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/local/sbin", "/opt/homebrew/sbin"]
    for folder in folders {
        let candidate = "\(folder)/\(name)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    throw MosquittoTestError(
        "\(name) not found: run scripts/setup (it installs the Debian packages mosquitto, mosquitto-clients and openssl)"
    )
}

private let launchLock = NSLock()

/// Starts `process` with no signal blocked. A child inherits the signal mask of the thread that starts it, and the
/// threads Swift concurrency runs on block SIGTERM: started from one, mosquitto and mosquitto_sub would never see the
/// SIGTERM that stops them (mosquitto unblocks only the signals that were unblocked when it started). The mask is
/// cleared only around the spawn, on this thread, with no suspension point in between.
func runWithDefaultSignalMask(_ process: Process) throws {
    launchLock.lock()
    defer { launchLock.unlock() }
    var none = sigset_t()
    var previous = sigset_t()
    sigemptyset(&none)
    pthread_sigmask(SIG_SETMASK, &none, &previous)
    defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
    try process.run()
}

/// Runs a tool to completion; throws with its error output when it fails. The error output goes to a file, not a
/// pipe: a pipe's write end can leak into a child another test starts at the same moment, and then never reports
/// end-of-file.
func runTool(_ name: String, _ arguments: [String]) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: try findTool(name))
    process.arguments = arguments
    let errorFile = FileManager.default.temporaryDirectory.appendingPathComponent("vantage-tool-\(UUID().uuidString)")
    guard FileManager.default.createFile(atPath: errorFile.path, contents: nil) else {
        throw MosquittoTestError("cannot create \(errorFile.path)")
    }
    defer { try? FileManager.default.removeItem(at: errorFile) }
    let errors = try FileHandle(forWritingTo: errorFile)
    defer { try? errors.close() }
    process.standardError = errors
    process.standardOutput = FileHandle.nullDevice
    try runWithDefaultSignalMask(process)
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        let output = (try? String(contentsOf: errorFile, encoding: .utf8)) ?? ""
        throw MosquittoTestError("\(name) \(arguments.first ?? "") failed (\(process.terminationStatus)): \(output)")
    }
}

/// A test CA, a certificate for `localhost` and 127.0.0.1 signed by it, and an unrelated second CA (EC P-256 keys:
/// quick to make).
private func makeTestCertificates(in folder: URL) throws -> (
    ca: String, certificate: String, key: String, otherCA: String
) {
    let file = { (name: String) in folder.appendingPathComponent(name).path }
    let newKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    try runTool(
        "openssl",
        ["req", "-x509"] + newKey + [
            "-keyout", file("ca.key"), "-out", file("ca.pem"), "-days", "2", "-subj", "/CN=Vantage test CA",
        ])
    try runTool(
        "openssl",
        ["req", "-new"] + newKey + [
            "-keyout", file("server.key"), "-out", file("server.csr"), "-subj", "/CN=localhost",
        ])
    try "subjectAltName=DNS:localhost,IP:127.0.0.1\n".write(
        toFile: file("server.ext"), atomically: true, encoding: .utf8)
    try runTool(
        "openssl",
        [
            "x509", "-req", "-in", file("server.csr"), "-CA", file("ca.pem"), "-CAkey", file("ca.key"),
            "-CAcreateserial", "-days", "2", "-out", file("server.pem"), "-extfile", file("server.ext"),
        ])
    try runTool(
        "openssl",
        ["req", "-x509"] + newKey + [
            "-keyout", file("other-ca.key"), "-out", file("other-ca.pem"), "-days", "2", "-subj", "/CN=Other CA",
        ])
    return (file("ca.pem"), file("server.pem"), file("server.key"), file("other-ca.pem"))
}

/// A TCP listener on 127.0.0.1 that never reads or answers: the kernel completes connections into its backlog.
final class SilentTCPServer: Sendable {
    let port: Int
    private let descriptor: Int32

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw MosquittoTestError("socket() failed: errno \(errno)") }
        var address = loopbackAddress(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            close(fd)
            throw MosquittoTestError("bind/listen failed: errno \(errno)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        descriptor = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(descriptor) }
}

/// Holds a TCP port on 127.0.0.1 with a bound, non-listening socket, so that the kernel gives it to no one else
/// (another test's broker, say) while this broker is stopped and its clients keep reconnecting to it.
final class PortReservation: Sendable {
    let port: Int
    private let descriptor = Mutex<Int32>(-1)

    /// Reserves `port`, or a free port chosen by the kernel when 0.
    init(port: Int = 0) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw MosquittoTestError("socket() failed: errno \(errno)") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = loopbackAddress(port: port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else {
            let code = errno
            close(fd)
            throw MosquittoTestError("cannot reserve port \(port): errno \(code)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.port = Int(UInt16(bigEndian: address.sin_port))
        descriptor.withLock { $0 = fd }
    }

    /// Frees the port (for the broker to bind it).
    func release() {
        descriptor.withLock { fd in
            if fd >= 0 { close(fd) }
            fd = -1
        }
    }

    deinit { release() }
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
func localPortAcceptsConnections(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = loopbackAddress(port: port)
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    return connected == 0
}

private func loopbackAddress(port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
    return address
}

private func currentUserName() -> String {
    if let entry = getpwuid(geteuid()), let name = entry.pointee.pw_name { return String(cString: name) }
    return "root"
}
