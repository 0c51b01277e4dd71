import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
    private let streamSocket = Int32(SOCK_STREAM.rawValue)
#elseif canImport(Darwin)
    import Darwin
    private let streamSocket = SOCK_STREAM
#endif

/// A connected Unix stream socket that sends and receives framed messages. Sends are serialised by a lock, so
/// several threads may send; one thread receives.
public final class MessageChannel: Sendable {
    public let fd: Int32
    private let sendLock = Mutex(())
    private let closed = Atomic<Bool>(false)

    public init(fd: Int32) { self.fd = fd }

    deinit { close() }

    /// Connects to the socket at `path`.
    public static func connect(path: String) throws(ProtocolError) -> MessageChannel {
        let fd = socket(AF_UNIX, streamSocket, 0)
        guard fd >= 0 else { throw ProtocolError("cannot create a socket: \(String(cString: strerror(errno)))") }
        var address = try unixAddress(path)
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Foundation.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard status == 0 else {
            let reason = String(cString: strerror(errno))
            Foundation.close(fd)
            throw ProtocolError("cannot connect to the Vantage runtime at \(path): \(reason)")
        }
        return MessageChannel(fd: fd)
    }

    /// Sends the writer's finished message.
    public func send(_ writer: inout WireWriter) throws(ProtocolError) {
        writer.finish()
        let failure: ProtocolError? = sendLock.withLock { _ in
            writer.bytes.withUnsafeBytes { raw in
                do throws(ProtocolError) {
                    try writeAll(raw)
                    return nil
                } catch {
                    return error
                }
            }
        }
        if let failure { throw failure }
    }

    private func writeAll(_ raw: UnsafeRawBufferPointer) throws(ProtocolError) {
        var offset = 0
        while offset < raw.count {
            let n = Foundation.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
            if n < 0 {
                if errno == EINTR { continue }
                throw ProtocolError("connection lost while sending: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
    }

    /// Receives one message into `buffer` (grown when needed, kept between calls). Returns its type and request id;
    /// the payload is `buffer[messageHeaderSize..<messageHeaderSize + payloadLength]`. Throws at end of stream, and
    /// for a length field under 8 or over `maxLength` (before reading or allocating anything for it: the stream
    /// cannot be followed after that, so the connection should be closed).
    public func receive(into buffer: inout [UInt8], maxLength: Int = 256 << 20) throws(ProtocolError) -> (
        type: UInt16, requestId: UInt32, payloadLength: Int
    ) {
        if buffer.count < messageHeaderSize { buffer = [UInt8](repeating: 0, count: 64 * 1024) }
        try readExactly(into: &buffer, from: 0, count: 4)
        let length = Int(buffer.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) })
        guard length >= 8, length <= maxLength else {
            throw ProtocolError("bad message length \(length) (8 to \(maxLength) bytes)")
        }
        if buffer.count < 4 + length { buffer += [UInt8](repeating: 0, count: 4 + length - buffer.count) }
        try readExactly(into: &buffer, from: 4, count: length)
        let (type, requestId) = buffer.withUnsafeBytes { raw in
            (
                UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 4, as: UInt16.self)),
                UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
            )
        }
        return (type, requestId, length - 8)
    }

    private func readExactly(into buffer: inout [UInt8], from start: Int, count: Int) throws(ProtocolError) {
        var offset = 0
        while offset < count {
            let n = buffer.withUnsafeMutableBytes { raw in
                recv(fd, raw.baseAddress! + start + offset, count - offset, 0)
            }
            if n == 0 { throw ProtocolError("connection closed") }
            if n < 0 {
                if errno == EINTR { continue }
                throw ProtocolError("connection lost: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
    }

    /// Closes the socket (once); a blocked `receive` on another thread then returns an error.
    public func close() {
        if closed.exchange(true, ordering: .relaxed) { return }
        shutdown(fd, Int32(SHUT_RDWR))
        Foundation.close(fd)
    }
}

/// A listening Unix socket for one application process.
public final class MessageListener: Sendable {
    public let fd: Int32
    public let path: String

    public init(path: String) throws(ProtocolError) {
        unlink(path)
        let fd = socket(AF_UNIX, streamSocket, 0)
        guard fd >= 0 else { throw ProtocolError("cannot create a socket: \(String(cString: strerror(errno)))") }
        var address = try unixAddress(path)
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        // Only this user may connect. Between bind and chmod the socket has the umask's mode: a private folder
        // around it (the runtime's) closes that window.
        guard status == 0, chmod(path, 0o600) == 0, listen(fd, 4) == 0 else {
            let reason = String(cString: strerror(errno))
            Foundation.close(fd)
            throw ProtocolError("cannot listen on \(path): \(reason)")
        }
        self.fd = fd
        self.path = path
    }

    deinit {
        Foundation.close(fd)
        unlink(path)
    }

    /// Waits up to `timeoutMillis` for a connection; nil on timeout.
    public func accept(timeoutMillis: Int32) throws(ProtocolError) -> MessageChannel? {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&poller, 1, timeoutMillis)
        if ready == 0 { return nil }
        if ready < 0 {
            if errno == EINTR { return nil }
            throw ProtocolError("waiting for the application failed: \(String(cString: strerror(errno)))")
        }
        let client = Foundation.accept(fd, nil, nil)
        guard client >= 0 else { throw ProtocolError("accept failed: \(String(cString: strerror(errno)))") }
        return MessageChannel(fd: client)
    }
}

private func unixAddress(_ path: String) throws(ProtocolError) -> sockaddr_un {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let capacity = MemoryLayout.size(ofValue: address.sun_path)
    guard path.utf8.count < capacity else {
        throw ProtocolError("socket path too long (\(path.utf8.count) bytes, at most \(capacity - 1)): \(path)")
    }
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        raw.copyBytes(from: path.utf8)
        raw[path.utf8.count] = 0
    }
    return address
}
