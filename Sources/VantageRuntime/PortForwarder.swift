import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A graph's `networkRoutingRules`: Panorama opened `hostPort` on the device and routed it to the code node's
/// `containerPort`. Vantage runs code on the host's network, so the application listens on its `containerPort`
/// itself; when the rule names another `hostPort`, a forwarder listens there (on the loopback interface unless
/// `vantage run --publish-address` says otherwise) and relays each connection to `127.0.0.1:containerPort`.
final class PortForwarder: Sendable {
    // Connections live on threads of their own, each with its `ConnectionPair`.
    let rule: String
    let address: String
    let hostPort: Int
    let containerPort: Int
    private let logger: Logger
    private let listener: Int32
    private let stopped = Mutex(false)

    init(node: String, address: String, hostPort: Int, containerPort: Int, logger: Logger) throws {
        rule = "\(node): \(address):\(hostPort) -> 127.0.0.1:\(containerPort)"
        self.address = address
        self.hostPort = hostPort
        self.containerPort = containerPort
        self.logger = logger
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RuntimeError("cannot create a socket for \(rule)") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = in_port_t(UInt16(hostPort).bigEndian)
        guard inet_pton(AF_INET, address, &sin.sin_addr) == 1 else {
            close(fd)
            throw RuntimeError("--publish-address \(address) is not an IPv4 address; give e.g. 127.0.0.1 or 0.0.0.0")
        }
        let bound = withUnsafePointer(to: &sin) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            let code = errno
            let reason = String(cString: strerror(code))
            close(fd)
            let holder = code == EADDRINUSE ? PortHolder.describe(port: hostPort).map { ", held by \($0)" } ?? "" : ""
            throw RuntimeError(
                "cannot open port \(hostPort) of networkRoutingRules (\(rule)): \(reason)\(holder) — free the port, "
                    + "change hostPort in graph.json or the overrides document, or open it elsewhere with "
                    + "--publish-address")
        }
        listener = fd
    }

    /// Accepts and relays connections on a thread of its own until `stop()`.
    func start() {
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "port \(hostPort)"
        thread.start()
        logger.notice("port open", metadata: ["rule": "\(rule)"])
    }

    func stop() {
        let already = stopped.withLock { stopped in
            let was = stopped
            stopped = true
            return was
        }
        if already { return }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private func acceptLoop() {
        while !stopped.withLock({ $0 }) {
            var poller = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 200) > 0 else { continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            guard let upstream = connectToApp() else {
                logger.warning(
                    "connection refused: the application does not listen on its containerPort",
                    metadata: ["rule": "\(rule)"])
                close(client)
                continue
            }
            // Each direction on its own thread; the first to end closes both.
            let pair = ConnectionPair(a: client, b: upstream)
            for (from, to) in [(client, upstream), (upstream, client)] {
                let thread = Thread { Self.relay(from: from, to: to, pair: pair) }
                thread.start()
            }
        }
    }

    private func connectToApp() -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = in_port_t(UInt16(containerPort).bigEndian)
        sin.sin_addr.s_addr = in_addr_t(UInt32(0x7F00_0001).bigEndian)
        let connected = withUnsafePointer(to: &sin) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if connected != 0 {
            close(fd)
            return nil
        }
        return fd
    }

    private final class ConnectionPair: Sendable {
        let a: Int32, b: Int32
        private let ends = Mutex(0)
        init(a: Int32, b: Int32) {
            self.a = a
            self.b = b
        }
        /// One direction ended: stop both; the second end closes the sockets.
        func ended() {
            shutdown(a, Int32(SHUT_RDWR))
            shutdown(b, Int32(SHUT_RDWR))
            let last = ends.withLock {
                $0 += 1
                return $0 == 2
            }
            if last {
                close(a)
                close(b)
            }
        }
    }

    private static func relay(from: Int32, to: Int32, pair: ConnectionPair) {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        loop: while true {
            let n = buffer.withUnsafeMutableBytes { read(from, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            var sent = 0
            while sent < n {
                let m = buffer.withUnsafeBytes { send(to, $0.baseAddress! + sent, n - sent, Int32(MSG_NOSIGNAL)) }
                if m <= 0 { break loop }
                sent += m
            }
        }
        pair.ended()
    }
}
