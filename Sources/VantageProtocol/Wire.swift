import Foundation

/// The Vantage app protocol: how the runtime and an application's code-node process talk.
///
/// Messages travel over a Unix stream socket, each framed as a little-endian header — `u32 length` (of what
/// follows), `u16 type`, `u16 flags`, `u32 requestId` — and a payload of little-endian fields. Frames and
/// tensors do not travel in messages: they sit in shared memory, and messages name them. `docs/app-protocol.md`
/// is the full description, for writers of other SDKs.
public enum MessageType: UInt16, Sendable {
    // App → runtime
    case hello = 1, get = 2, put = 3, infer = 4, event = 5, bye = 6
    // Runtime → app
    case config = 101, frames = 102, end = 103, timeout = 104, inferResult = 105, ok = 106, error = 199
}

/// The protocol version this build speaks.
public let appProtocolVersion: UInt32 = 1

/// Size of a message header in bytes.
public let messageHeaderSize = 12

/// A protocol violation or a broken connection.
public struct ProtocolError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Writes one message into a reusable byte buffer (its capacity is kept between messages).
public struct WireWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 4096) { bytes.reserveCapacity(capacity) }

    /// Starts a new message, dropping the previous one but keeping the buffer.
    public mutating func begin(_ type: MessageType, requestId: UInt32 = 0) {
        bytes.removeAll(keepingCapacity: true)
        u32(0)
        u16(type.rawValue)
        u16(0)
        u32(requestId)
    }

    /// Empties the buffer, keeping its capacity (for a payload written without a header).
    public mutating func reset() { bytes.removeAll(keepingCapacity: true) }

    /// Patches the length field; call before sending.
    public mutating func finish() {
        let length = UInt32(bytes.count - 4)
        withUnsafeBytes(of: length.littleEndian) { raw in
            for i in 0..<4 { bytes[i] = raw[i] }
        }
    }

    public mutating func u8(_ v: UInt8) { bytes.append(v) }
    public mutating func bool(_ v: Bool) { bytes.append(v ? 1 : 0) }
    public mutating func u16(_ v: UInt16) { append(v.littleEndian) }
    public mutating func u32(_ v: UInt32) { append(v.littleEndian) }
    public mutating func i32(_ v: Int32) { append(v.littleEndian) }
    public mutating func u64(_ v: UInt64) { append(v.littleEndian) }
    public mutating func i64(_ v: Int64) { append(v.littleEndian) }
    public mutating func f32(_ v: Float) { append(v.bitPattern.littleEndian) }
    /// A string: `u32` byte count, then UTF-8.
    public mutating func string(_ s: String) {
        var s = s
        s.withUTF8 { utf8 in
            u32(UInt32(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }
    /// Bytes as they are, without a count (a payload that is the rest of the message, like `config`'s JSON).
    public mutating func raw(_ data: some Sequence<UInt8>) { bytes.append(contentsOf: data) }
    /// Raw bytes: `u32` byte count, then the bytes.
    public mutating func blob(_ raw: UnsafeRawBufferPointer) {
        u32(UInt32(raw.count))
        bytes.append(contentsOf: raw)
    }

    private mutating func append<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v) { bytes.append(contentsOf: $0) }
    }
}

/// Reads the fields of one received message's payload.
public struct WireReader {
    public let payload: UnsafeRawBufferPointer
    public private(set) var offset = 0

    public init(_ payload: UnsafeRawBufferPointer) { self.payload = payload }

    public var remaining: Int { payload.count - offset }

    private mutating func take<T: FixedWidthInteger>(_: T.Type) throws(ProtocolError) -> T {
        let size = MemoryLayout<T>.size
        guard size <= remaining else { throw ProtocolError("message ends early (wanted \(size) bytes)") }
        let v = payload.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += size
        return T(littleEndian: v)
    }

    public mutating func u8() throws(ProtocolError) -> UInt8 { try take(UInt8.self) }
    public mutating func bool() throws(ProtocolError) -> Bool { try take(UInt8.self) != 0 }
    public mutating func u16() throws(ProtocolError) -> UInt16 { try take(UInt16.self) }
    public mutating func u32() throws(ProtocolError) -> UInt32 { try take(UInt32.self) }
    public mutating func i32() throws(ProtocolError) -> Int32 { try take(Int32.self) }
    public mutating func u64() throws(ProtocolError) -> UInt64 { try take(UInt64.self) }
    public mutating func i64() throws(ProtocolError) -> Int64 { try take(Int64.self) }
    public mutating func f32() throws(ProtocolError) -> Float { Float(bitPattern: try take(UInt32.self)) }

    /// A little-endian integer of any width.
    public mutating func integer<T: FixedWidthInteger>(_: T.Type) throws(ProtocolError) -> T { try take(T.self) }

    /// The bytes of a blob, without copying (valid as long as the payload).
    public mutating func blob() throws(ProtocolError) -> UnsafeRawBufferPointer {
        try blob(count: Int(try u32()))
    }

    /// The next `count` bytes, without copying (valid as long as the payload).
    public mutating func blob(count: Int) throws(ProtocolError) -> UnsafeRawBufferPointer {
        guard count >= 0, count <= remaining else { throw ProtocolError("message ends early (blob of \(count))") }
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: payload[offset..<offset + count])
    }

    public mutating func string() throws(ProtocolError) -> String {
        String(decoding: try blob(), as: UTF8.self)
    }

    /// Compares a string field with `expected` without making a String.
    public mutating func string(equals expected: String) throws(ProtocolError) -> Bool {
        let raw = try blob()
        var expected = expected
        return expected.withUTF8 { $0.count == raw.count && memcmp($0.baseAddress!, raw.baseAddress!, raw.count) == 0 }
    }
}
