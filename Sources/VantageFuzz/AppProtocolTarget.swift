import Foundation
import VantageProtocol

#if canImport(Glibc)
    import Glibc
    private let streamSocket = Int32(SOCK_STREAM.rawValue)
#elseif canImport(Darwin)
    import Darwin
    private let streamSocket = SOCK_STREAM
#endif

/// The app protocol as the runtime reads it: the input is the byte stream an application writes to its socket
/// (framed messages, one after the other). It goes through a real Unix socket pair into `MessageChannel.receive`
/// (the framing, with the runtime's 16 MiB message limit) and every message through one warm
/// `AppRequestDecoder`, as `AppHost` does.
///
/// Promises checked: no trap; a refused message is a `ProtocolError` with a bounded text; a decoded request holds
/// to the decoder's limits (slots, byte counts and shape products within the tensor arena, counts and names within
/// ``AppRequestLimits``, overlay ranges within the request); the warm decoder answers as a fresh one does (no state
/// leaks between messages); and the round trip: encoding the decoded request in the documented wire format and
/// decoding that gives the same request.
final class AppProtocolTarget: FuzzTarget {
    /// The runtime's defaults (`vantage run`'s 8 tensor slots of 16 MiB), and small ones that make every limit
    /// reachable by a short input.
    static let limits = [
        AppRequestLimits(tensorSlots: 8, tensorSlotBytes: 16 << 20),
        {
            var small = AppRequestLimits(tensorSlots: 2, tensorSlotBytes: 4096)
            small.maxFramesPerPut = 3
            small.maxOverlaysPerFrame = 3
            small.maxTensors = 3
            small.maxRank = 4
            small.maxNameBytes = 16
            return small
        }(),
    ]
    /// AppHost's limit on one message.
    static let maxMessageBytes = 16 << 20

    private var decoders = limits.map { AppRequestDecoder(limits: $0) }
    private var buffer = [UInt8](repeating: 0, count: 64 * 1024)

    /// Inputs stay well under a socket pair's buffer, so the whole stream is written before it is read.
    let maxInputLength = 64 * 1024

    var dictionary: [[UInt8]] {
        var result: [[UInt8]] = []
        // Little-endian integers at the edges: lengths, counts, dims, slots, byte counts.
        for value: UInt64 in [
            0, 1, 2, 7, 8, 12, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 16 << 20, 1 << 32,
            0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, 0xFFFF_FFFF_FFFF_FFFF,
        ] {
            result.append(withUnsafeBytes(of: UInt32(truncatingIfNeeded: value).littleEndian) { Array($0) })
            result.append(withUnsafeBytes(of: value.littleEndian) { Array($0) })
        }
        // Message types (u16), as they follow a length.
        for type: UInt16 in [1, 2, 3, 4, 5, 6, 101, 199] {
            result.append(withUnsafeBytes(of: type.littleEndian) { Array($0) })
        }
        return result
    }

    func run(_ input: [UInt8]) throws(FuzzFinding) {
        guard input.count <= maxInputLength else { return }
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, streamSocket, 0, &fds) == 0 else {
            fatalError("vantage-fuzz: socketpair failed: \(String(cString: strerror(errno)))")
        }
        let reading = MessageChannel(fd: fds[0])
        defer { reading.close() }
        writeAll(input, to: fds[1])
        close(fds[1])

        for index in decoders.indices { decoders[index] = AppRequestDecoder(limits: Self.limits[index]) }
        while true {
            let header: (type: UInt16, requestId: UInt32, payloadLength: Int)
            do {
                header = try reading.receive(into: &buffer, maxLength: Self.maxMessageBytes)
            } catch {
                // The end of the stream, or a length the runtime refuses (it then closes the connection).
                try checkErrorText(error.message, from: "MessageChannel.receive")
                return
            }
            guard header.payloadLength >= 0, messageHeaderSize + header.payloadLength <= buffer.count else {
                throw FuzzFinding(
                    "MessageChannel.receive returned a payload of \(header.payloadLength) bytes, outside its buffer "
                        + "of \(buffer.count)")
            }
            let payload = Array(buffer[messageHeaderSize..<messageHeaderSize + header.payloadLength])
            for index in decoders.indices {
                try check(type: header.type, payload: payload, decoder: &decoders[index])
            }
        }
    }

    /// Decodes one message with the warm decoder and checks the promises.
    private func check(type: UInt16, payload: [UInt8], decoder: inout AppRequestDecoder) throws(FuzzFinding) {
        let limits = decoder.limits
        let warm = payload.withUnsafeBytes { raw in
            Result { () throws(ProtocolError) -> AppRequest in try decoder.decode(type: type, payload: raw) }
        }
        let cold = payload.withUnsafeBytes { raw in
            Result { () throws(ProtocolError) -> AppRequest in
                try AppRequestDecoder.decode(type: type, payload: raw, limits: limits)
            }
        }
        switch (warm, cold) {
        case (.failure(let error), .failure(let coldError)):
            try checkErrorText(error.message, from: "AppRequestDecoder")
            guard error.message == coldError.message else {
                throw FuzzFinding(
                    "a warm decoder refused type \(type) with \"\(error.message.prefix(200))\", a fresh one with "
                        + "\"\(coldError.message.prefix(200))\"")
            }
        case (.success(let request), .success(let coldRequest)):
            try checkLimits(request, limits)
            let encoded = AppRequestEncoding.payload(request)
            guard encoded == AppRequestEncoding.payload(coldRequest) else {
                throw FuzzFinding("a warm decoder and a fresh one decoded type \(type) differently")
            }
            // Invalid UTF-8 in a name decodes to U+FFFD (3 bytes a byte), so its encoding may be up to 3 times
            // the bytes that came in: the second decode allows that.
            var relaxed = limits
            relaxed.maxNameBytes = limits.maxNameBytes * 3
            let again = encoded.payload.withUnsafeBytes { raw in
                Result { () throws(ProtocolError) -> AppRequest in
                    try AppRequestDecoder.decode(type: encoded.type.rawValue, payload: raw, limits: relaxed)
                }
            }
            switch again {
            case .success(let decodedAgain):
                guard AppRequestEncoding.payload(decodedAgain) == encoded else {
                    throw FuzzFinding("round trip: type \(type) decoded, encoded and decoded again differs")
                }
            case .failure(let error):
                throw FuzzFinding(
                    "round trip: type \(type) decoded, but its encoding was refused: \(error.message.prefix(200))")
            }
        case (.success, .failure(let error)), (.failure(let error), .success):
            throw FuzzFinding(
                "a warm decoder and a fresh one disagree on type \(type): one refused it (\(error.message.prefix(200)))"
            )
        }
    }

    /// What ``AppRequestDecoder`` promises about every request it returns.
    private func checkLimits(_ request: AppRequest, _ limits: AppRequestLimits) throws(FuzzFinding) {
        func name(_ text: String, _ what: String) throws(FuzzFinding) {
            guard text.utf8.count <= limits.maxNameBytes * 3 else {
                // U+FFFD replacing an invalid byte takes 3 bytes: the limit is on the bytes received.
                throw FuzzFinding("\(what) of \(text.utf8.count) bytes passed the \(limits.maxNameBytes)-byte limit")
            }
        }
        func overlays(_ items: [OverlayItem]) throws(FuzzFinding) {
            for item in items { try name(item.text, "an overlay's text") }
        }
        switch request {
        case .hello(_, let node):
            try name(node, "hello's node")
        case .get(let get):
            try name(get.port, "get's port")
            if let timeout = get.timeoutMillis, timeout < 0 {
                throw FuzzFinding("get's timeout \(timeout) is negative (negative means none)")
            }
        case .put(let put):
            try name(put.port, "put's port")
            guard put.frames.count <= limits.maxFramesPerPut else {
                throw FuzzFinding("put names \(put.frames.count) frames, over the limit of \(limits.maxFramesPerPut)")
            }
            var next = 0
            for frame in put.frames {
                guard frame.overlays.lowerBound == next, frame.overlays.upperBound <= put.overlays.count,
                    frame.overlays.count <= limits.maxOverlaysPerFrame
                else {
                    throw FuzzFinding(
                        "put's overlay range \(frame.overlays) does not follow \(next) within \(put.overlays.count) "
                            + "overlays")
                }
                next = frame.overlays.upperBound
            }
            guard next == put.overlays.count else {
                throw FuzzFinding("put holds \(put.overlays.count) overlays, its frames name \(next)")
            }
            try overlays(put.overlays)
        case .infer(let infer):
            try name(infer.model, "infer's model")
            if case .tensors(let tensors) = infer.input {
                guard tensors.count <= limits.maxTensors else {
                    throw FuzzFinding("infer sends \(tensors.count) tensors, over the limit of \(limits.maxTensors)")
                }
                for tensor in tensors {
                    try name(tensor.name, "a tensor's name")
                    guard tensor.slot >= 0, tensor.slot < limits.tensorSlots else {
                        throw FuzzFinding("a tensor names slot \(tensor.slot) of \(limits.tensorSlots)")
                    }
                    guard tensor.byteCount >= 0, tensor.byteCount <= limits.tensorSlotBytes else {
                        throw FuzzFinding(
                            "a tensor has \(tensor.byteCount) bytes, more than a slot's \(limits.tensorSlotBytes)")
                    }
                    guard tensor.arenaOffset == tensor.slot * limits.tensorSlotBytes else {
                        throw FuzzFinding("a tensor's arena offset \(tensor.arenaOffset) is not its slot's start")
                    }
                    guard tensor.shape.count <= limits.maxRank, tensor.shape.allSatisfy({ $0 > 0 }) else {
                        throw FuzzFinding("a tensor's shape \(tensor.shape.prefix(20)) breaks the rank or size rules")
                    }
                    var bytes = tensor.elementType.byteSize
                    for dimension in tensor.shape {
                        let (product, overflow) = bytes.multipliedReportingOverflow(by: dimension)
                        guard !overflow, product <= limits.tensorSlotBytes else {
                            throw FuzzFinding(
                                "a tensor's shape \(tensor.shape.prefix(20)) needs more than a slot's "
                                    + "\(limits.tensorSlotBytes) bytes")
                        }
                        bytes = product
                    }
                }
            }
        case .event(let event):
            if event.snapshot == nil, !event.overlays.isEmpty {
                throw FuzzFinding("an event without a snapshot carries \(event.overlays.count) overlays")
            }
            guard event.overlays.count <= limits.maxOverlaysPerFrame else {
                throw FuzzFinding("an event carries \(event.overlays.count) overlays, over the limit")
            }
            try overlays(event.overlays)
        case .bye:
            break
        }
    }

    private func writeAll(_ bytes: [UInt8], to fd: Int32) {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0, errno == EINTR { continue }
                guard n > 0 else { fatalError("vantage-fuzz: writing to the socket pair failed") }
                offset += n
            }
        }
    }
}

/// Writes requests in the app protocol's wire format (docs/app-protocol.md), as the SDKs do: the other half of
/// the round trip, and what makes the seed corpus.
public enum AppRequestEncoding {
    /// A request's message type and payload (the bytes after the 12-byte header).
    public static func payload(_ request: AppRequest) -> Encoded {
        var w = WireWriter()
        let type: MessageType
        switch request {
        case .hello(let version, let node):
            type = .hello
            w.begin(type)
            w.u32(version)
            w.string(node)
        case .get(let get):
            type = .get
            w.begin(type)
            w.string(get.port)
            w.i32(get.timeoutMillis.map { Int32(clamping: $0) } ?? -1)
            w.u8(get.wantsImages ? 1 : 0)
        case .put(let put):
            type = .put
            w.begin(type)
            w.string(put.port)
            w.u32(UInt32(put.frames.count))
            for frame in put.frames {
                w.frameRef(frame.ref)
                w.u32(UInt32(frame.overlays.count))
                for overlay in put.overlays[frame.overlays] { w.overlay(overlay) }
            }
        case .infer(let infer):
            type = .infer
            w.begin(type)
            w.string(infer.model)
            w.u8(infer.wants.rawValue)
            switch infer.input {
            case .frame(let ref):
                w.u8(0)
                w.frameRef(ref)
            case .tensors(let tensors):
                w.u8(1)
                w.u32(UInt32(tensors.count))
                for tensor in tensors {
                    w.string(tensor.name)
                    w.u8(tensor.elementType.rawValue)
                    w.u8(UInt8(tensor.shape.count))
                    for dimension in tensor.shape { w.i64(Int64(dimension)) }
                    w.u32(UInt32(tensor.slot))
                    w.u64(UInt64(tensor.byteCount))
                }
            }
        case .event(let event):
            type = .event
            w.begin(type)
            w.string(event.json)
            if let snapshot = event.snapshot {
                w.u8(1)
                w.frameRef(snapshot)
                w.u32(UInt32(event.overlays.count))
                for overlay in event.overlays { w.overlay(overlay) }
            } else {
                w.u8(0)
            }
        case .bye:
            type = .bye
            w.begin(type)
        }
        return Encoded(type: type, payload: Array(w.bytes[messageHeaderSize...]))
    }

    /// A whole framed message (header and payload), as an application sends it.
    public static func message(_ request: AppRequest, requestId: UInt32 = 1) -> [UInt8] {
        let encoded = payload(request)
        var w = WireWriter()
        w.begin(encoded.type, requestId: requestId)
        w.raw(encoded.payload)
        w.finish()
        return w.bytes
    }

    /// A message type and its payload bytes.
    public struct Encoded: Equatable, Sendable {
        public var type: MessageType
        public var payload: [UInt8]
    }
}
