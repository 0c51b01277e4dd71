import Foundation
import Testing
import VantageProtocol

@testable import VantageRuntime

@Suite("App protocol wire format")
struct ProtocolTests {
    @Test("every field type reads back as written, and the header carries type, id and length")
    func roundTrip() throws {
        var w = WireWriter()
        w.begin(.frames, requestId: 42)
        w.u32(1)
        let frame = FrameDescriptor(
            ref: FrameRef(camera: 2, slot: 3, sequence: 99), width: 1920, height: 1080, stride: 5760,
            timestampMicros: 1_764_000_000_123_456, isCached: true)
        w.frame(frame)
        w.overlay(.label("person 93%", 0.25, 0.5, color: 0xFF0000))
        w.f32(-1.5)
        w.i64(-7)
        w.finish()
        let bytes = w.bytes
        let length = bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
        #expect(Int(length) == bytes.count - 4)
        let type = bytes.withUnsafeBytes { UInt16(littleEndian: $0.loadUnaligned(fromByteOffset: 4, as: UInt16.self)) }
        #expect(type == MessageType.frames.rawValue)
        let id = bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt32.self)) }
        #expect(id == 42)
        try bytes.withUnsafeBytes { (raw) throws in
            var r = WireReader(UnsafeRawBufferPointer(rebasing: raw[messageHeaderSize...]))
            #expect(try r.u32() == 1)
            #expect(try r.frame() == frame)
            #expect(try r.overlay() == .label("person 93%", 0.25, 0.5, color: 0xFF0000))
            #expect(try r.f32() == -1.5)
            #expect(try r.i64() == -7)
            #expect(r.remaining == 0)
            #expect(throws: ProtocolError.self) { try r.u8() }
        }
    }

    @Test("messages cross a real Unix socket in order, and a closed peer is an error, not a hang")
    func socketRoundTrip() throws {
        let path = "/tmp/vantage-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        let listener = try MessageListener(path: path)
        let client = try MessageChannel.connect(path: path)
        let server = try #require(try listener.accept(timeoutMillis: 2000))
        var w = WireWriter()
        for i in UInt32(1)...3 {
            w.begin(.get, requestId: i)
            w.string("video_in")
            w.i32(-1)
            try client.send(&w)
        }
        var buffer = [UInt8]()
        for i in UInt32(1)...3 {
            let header = try server.receive(into: &buffer)
            #expect(header.type == MessageType.get.rawValue && header.requestId == i)
            try buffer.withUnsafeBytes { (raw) throws in
                var r = WireReader(
                    UnsafeRawBufferPointer(rebasing: raw[messageHeaderSize..<messageHeaderSize + header.payloadLength]))
                #expect(try r.string(equals: "video_in"))
                #expect(try r.i32() == -1)
            }
        }
        client.close()
        #expect(throws: ProtocolError.self) { _ = try server.receive(into: &buffer) }
    }

    @Test("the configuration document survives JSON, parameters keep their types")
    func configCoding() throws {
        let config = AppConfig(
            application: "a", node: "code_node",
            inputs: [
                PortConfig(name: "video_in", type: "media", cameras: [0, 1]),
                PortConfig(name: "threshold", type: "float32", value: .float(0.5)),
                PortConfig(name: "limit", type: "int32", value: .int(5)),
                PortConfig(name: "draw", type: "boolean", value: .bool(true)),
                PortConfig(name: "site", type: "string", value: .string("dock 3")),
            ],
            outputs: [], models: [], cameras: [],
            tensorArena: TensorArenaConfig(sharedMemoryPath: "/dev/shm/x", slotCount: 1, slotCapacity: 1),
            storageDirectory: "/s", logsDirectory: "/l")
        let decoded = try JSONDecoder().decode(AppConfig.self, from: JSONEncoder().encode(config))
        #expect(decoded == config)
    }

    @Test("latency percentiles come from the recorded samples")
    func histogram() {
        var h = LatencyHistogram()
        #expect(h.percentile(0.5) == nil)
        for _ in 0..<99 { h.record(nanos: 10_000_000) }  // 10 ms
        h.record(nanos: 900_000_000)  // one 900 ms outlier
        let p50 = h.percentile(0.5)!
        let p99 = h.percentile(0.99)!
        let p100 = h.percentile(1.0)!
        #expect(p50 >= 10 && p50 < 12.5, "p50 \(p50)")
        #expect(p99 >= 10 && p99 < 12.5, "p99 \(p99)")
        #expect(p100 >= 900 && p100 < 1130, "max \(p100)")
        // Two code nodes' latencies together: the slow node's samples move the median.
        var slow = LatencyHistogram()
        for _ in 0..<200 { slow.record(nanos: 100_000_000) }  // 100 ms
        h.merge(slow)
        #expect(h.total == 300)
        #expect(h.percentile(0.5)! >= 100, "median of 100 × 10 ms and 200 × 100 ms")
    }
}
