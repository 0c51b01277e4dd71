import Foundation
import Logging
import Testing
import VantageApp
import VantageCore
import VantageInference
import VantageProtocol

@testable import VantageRuntime

/// The messages that used to kill the runtime with one `infer` or `put` (issue 14, part 1), as exact bytes.
enum CrashingMessages {
    static let limits = AppRequestLimits(tensorSlots: 8, tensorSlotBytes: 16 << 20)

    /// An `infer` with one tensor: `string model, u8 wants, u8 kind = 1, u32 count, string name, u8 type, u8 rank,
    /// i64 × rank, u32 slot, u64 bytes`.
    static func infer(
        dims: [Int64], slot: UInt32 = 0, bytes: UInt64, rank: UInt8? = nil, type: UInt8 = 2, count: UInt32 = 1
    ) -> [UInt8] {
        var w = WireWriter()
        w.begin(.infer, requestId: 7)
        w.string("model_node")
        w.u8(3)
        w.u8(1)
        w.u32(count)
        w.string("data")
        w.u8(type)
        w.u8(rank ?? UInt8(dims.count))
        for d in dims { w.i64(d) }
        w.u32(slot)
        w.u64(bytes)
        w.finish()
        return w.bytes
    }

    /// A `put` claiming `count` frames with only one frame's bytes behind it.
    static func put(count: UInt32, overlayCount: UInt32 = 0) -> [UInt8] {
        var w = WireWriter()
        w.begin(.put, requestId: 8)
        w.string("video_out")
        w.u32(count)
        w.frameRef(FrameRef(camera: 0, slot: 0, sequence: 1))
        w.u32(overlayCount)
        w.finish()
        return w.bytes
    }

    /// Each message that trapped, or allocated without bound, on the code before the decoder, and what the error
    /// must say.
    static let cases: [(name: String, bytes: [UInt8], says: String)] = [
        ("byte count 2^63", infer(dims: [1, 3, 300, 300], bytes: 1 << 63), "bytes"),
        ("byte count 2^64-1", infer(dims: [1, 3, 300, 300], bytes: .max), "bytes"),
        ("slot 2^32-1", infer(dims: [4], slot: .max, bytes: 16), "slot"),
        ("slot just past the arena", infer(dims: [4], slot: 8, bytes: 16), "slot"),
        ("negative dimension", infer(dims: [1, -3, 300, 300], bytes: 1080), "dimension -3"),
        ("huge dimensions whose product overflows", infer(dims: [1 << 62, 1 << 62, 4], bytes: 64), "tensor slot"),
        ("dimension Int64.min", infer(dims: [.min], bytes: 4), "dimension"),
        ("rank 255 with four dimensions", infer(dims: [1, 3, 300, 300], bytes: 1080, rank: 255), "dimensions"),
        ("tensor count 2^32-1", infer(dims: [4], bytes: 16, count: .max), "tensor count"),
        ("unknown element type", infer(dims: [4], bytes: 16, type: 99), "element type"),
        ("put of 2^32-1 frames with one frame's bytes", put(count: .max), "count"),
        ("put of 2 frames with one frame's bytes", put(count: 2), "count"),
        ("overlay count 2^32-1", put(count: 1, overlayCount: .max), "overlay count"),
    ]

    /// The payload of a whole message (after its 12-byte header).
    static func payload(_ bytes: [UInt8]) -> [UInt8] { Array(bytes[messageHeaderSize...]) }
    static func type(_ bytes: [UInt8]) -> UInt16 { UInt16(bytes[4]) | UInt16(bytes[5]) << 8 }
}

/// The decoder on its own: every crashing byte string is a `ProtocolError` that says what is wrong, valid messages
/// read back as written, and no cut or flipped byte of a valid message traps.
@Suite("App protocol decoder: hostile messages")
struct AppRequestDecoderTests {
    func decode(_ bytes: [UInt8]) throws(ProtocolError) -> AppRequest {
        let payload = CrashingMessages.payload(bytes)
        let result = payload.withUnsafeBytes { raw in
            Result { () throws(ProtocolError) -> AppRequest in
                try AppRequestDecoder.decode(
                    type: CrashingMessages.type(bytes), payload: raw, limits: CrashingMessages.limits)
            }
        }
        return try result.get()
    }

    // Guards: a code node could kill `vantage run` (and the agent) with one of these messages (SIGILL on
    // `Int(u64)`, on `shape.reduce(1, *)`, or an allocation sized by a count nobody checked).
    @Test("Each message that crashed the runtime is refused with an error naming the field")
    func crashingMessagesAreErrors() {
        for (name, bytes, says) in CrashingMessages.cases {
            do {
                let request = try decode(bytes)
                Issue.record("\(name): decoded as \(request)")
            } catch {
                #expect(error.message.contains(says), "\(name): \(error.message)")
                #expect(error.message.count < 400, "\(name): a short message")
            }
        }
    }

    // Guards: the decoder must not refuse what the SDKs send (a regression would stop every code node).
    @Test("Valid messages of every type read back as written")
    func validMessages() throws {
        let tensor = CrashingMessages.infer(dims: [1, 3, 300, 300], slot: 7, bytes: 1_080_000)
        guard case .infer(let infer) = try decode(tensor), case .tensors(let tensors) = infer.input else {
            Issue.record("not a tensor infer")
            return
        }
        #expect(infer.model == "model_node" && infer.wants == [.decoded, .tensors])
        #expect(
            tensors == [
                AppTensorInput(
                    name: "data", elementType: .f32, shape: [1, 3, 300, 300], slot: 7, byteCount: 1_080_000,
                    arenaOffset: 7 << 24)
            ])

        var w = WireWriter()
        w.begin(.put)
        w.string("video_out")
        w.u32(2)
        w.frameRef(FrameRef(camera: 0, slot: 1, sequence: 5))
        w.u32(2)
        w.overlay(.rect(0.1, 0.2, 0.3, 0.4))
        w.overlay(.label("person 93%", 0.1, 0.2))
        w.frameRef(FrameRef(camera: 1, slot: 2, sequence: 6))
        w.u32(0)
        w.finish()
        guard case .put(let put) = try decode(w.bytes) else { Issue.record("not a put"); return }
        #expect(put.port == "video_out" && put.frames.count == 2)
        #expect(put.overlays[put.frames[0].overlays] == [.rect(0.1, 0.2, 0.3, 0.4), .label("person 93%", 0.1, 0.2)])
        #expect(put.frames[1].overlays.isEmpty && put.frames[1].ref.sequence == 6)

        w.begin(.get, requestId: 1)
        w.string("video_in")
        w.i32(-1)
        w.finish()
        #expect(try decode(w.bytes) == .get(AppGetRequest(port: "video_in", timeoutMillis: nil, wantsImages: true)))

        w.begin(.event, requestId: 2)
        w.string(#"{"type":"x"}"#)
        w.bool(false)
        w.finish()
        #expect(try decode(w.bytes) == .event(AppEventRequest(json: #"{"type":"x"}"#, snapshot: nil, overlays: [])))
    }

    // Guards: a message cut anywhere, or with any byte changed, is an error or a request within the limits — never a
    // trap (a small, seeded stand-in for the fuzz target).
    @Test("Every prefix and thousands of byte flips of valid messages decode or fail, never trap")
    func mutations() throws {
        var w = WireWriter()
        w.begin(.event, requestId: 2)
        w.string(#"{"a":1}"#)
        w.bool(true)
        w.frameRef(FrameRef(camera: 0, slot: 1, sequence: 5))
        w.u32(1)
        w.overlay(.label("hi", 0.1, 0.2))
        w.finish()
        let seeds = [
            CrashingMessages.infer(dims: [1, 3, 300, 300], slot: 7, bytes: 1_080_000), CrashingMessages.put(count: 1),
            w.bytes,
        ]
        var generator = SplitMix64(seed: 14)
        var decoded = 0
        for seed in seeds {
            for length in messageHeaderSize..<seed.count {
                if (try? decode(Array(seed[..<length]))) != nil { decoded += 1 }
            }
            for _ in 0..<3000 {
                var bytes = seed
                for _ in 0..<Int.random(in: 1...4, using: &generator) {
                    let index = Int.random(in: messageHeaderSize..<bytes.count, using: &generator)
                    bytes[index] = [0x00, 0xFF, 0x7F, 0x80, UInt8.random(in: 0...255, using: &generator)].randomElement(
                        using: &generator)!
                }
                guard let request = try? decode(bytes) else { continue }
                decoded += 1
                if case .infer(let infer) = request, case .tensors(let tensors) = infer.input {
                    for t in tensors {
                        #expect(t.slot >= 0 && t.slot < 8 && t.byteCount <= 16 << 20 && t.shape.allSatisfy { $0 > 0 })
                    }
                }
            }
        }
        #expect(decoded > 0, "some mutations are still valid messages")
    }
}

/// A deterministic generator, so a failure reproduces.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The real runtime with two code nodes whose processes only sleep; the test plays them over their real sockets.
@Suite("App protocol hardening: the runtime survives hostile code nodes", .serialized)
struct AppProtocolHardeningTests {
    /// A project with code nodes `code_a` and `code_b` (no camera, no model) whose entry is `/bin/sleep 600`, or the
    /// given program and arguments.
    static func writeProject(in work: URL, entry: [String] = ["/bin/sleep", "600"]) throws -> URL {
        let app = work.appendingPathComponent("app")
        let package = app.appendingPathComponent("packages/123456789012-probe_code-1.0")
        try FileManager.default.createDirectory(
            at: package.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(
            at: app.appendingPathComponent("graphs/probe"), withIntermediateDirectories: true)
        try #"""
        {"nodePackage": {"envelopeVersion": "2021-01-01", "name": "probe_code", "version": "1.0",
          "assets": [{"name": "code_asset", "implementations": [{"type": "container", "assetUri": "code.tar.gz"}]}],
          "interfaces": [{"name": "code_interface", "category": "business_logic", "asset": "code_asset",
                          "inputs": [], "outputs": []}]}}
        """#.write(to: package.appendingPathComponent("package.json"), atomically: true, encoding: .utf8)
        let descriptor: [String: Any] = [
            "runtimeDescriptor": [
                "envelopeVersion": "2021-01-01",
                "entry": ["path": entry[0], "name": "", "arguments": Array(entry.dropFirst())],
            ]
        ]
        try JSONSerialization.data(withJSONObject: descriptor).write(
            to: package.appendingPathComponent("descriptor.json"))
        try #"""
        {"nodeGraph": {"envelopeVersion": "2021-01-01",
          "packages": [{"name": "123456789012::probe_code", "version": "1.0"}],
          "nodes": [{"name": "code_a", "interface": "123456789012::probe_code.code_interface", "launch": "onAppStart"},
                    {"name": "code_b", "interface": "123456789012::probe_code.code_interface", "launch": "onAppStart"}],
          "edges": []}}
        """#.write(to: app.appendingPathComponent("graphs/probe/graph.json"), atomically: true, encoding: .utf8)
        return app
    }

    static func startRuntime(
        in work: URL, entry: [String] = ["/bin/sleep", "600"],
        logger: Logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
    ) async throws -> (Runtime, Task<Void, any Error>) {
        let application = try ApplicationProject.load(try writeProject(in: work, entry: entry)).resolve(RunOverrides())
        var configuration = RuntimeConfiguration(stateDirectory: work.appendingPathComponent("state"))
        configuration.httpPort = nil
        configuration.statusInterval = nil
        configuration.panoramaMounts = false
        configuration.eventsFile = work.appendingPathComponent("events.jsonl")
        configuration.appRestartInitialDelay = .milliseconds(100)
        let runtime = try await Runtime.make(application: application, configuration: configuration, logger: logger)
        let task = Task { try await runtime.run() }
        return (runtime, task)
    }

    /// Connects to a node's socket as its application would, says hello and reads the configuration.
    static func connect(_ runtime: Runtime, node: String) async throws -> MessageChannel {
        let path = runtime.socketPath(ofNode: node)
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            if let channel = try? MessageChannel.connect(path: path) {
                // While a node restarts, its old socket still takes connections into its backlog and never answers:
                // a hello unanswered for 2 s is retried (the new listener comes within a few seconds).
                var timeout = timeval(tv_sec: 2, tv_usec: 0)
                setsockopt(channel.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                var w = WireWriter()
                w.begin(.hello)
                w.u32(appProtocolVersion)
                w.string(node)
                try channel.send(&w)
                var buffer: [UInt8] = []
                if let reply = try? channel.receive(into: &buffer), reply.type == MessageType.config.rawValue {
                    // Every later reply comes at once: a test that fails must not hang waiting for one.
                    timeout = timeval(tv_sec: 10, tv_usec: 0)
                    setsockopt(
                        channel.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                    return channel
                }
                channel.close()
            }
            guard ContinuousClock.now < deadline else { throw ProtocolError("\(node) never accepted a connection") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Sends raw bytes and reads the reply: its type, request id and, for an error, its code and message.
    static func exchange(_ channel: MessageChannel, _ bytes: [UInt8]) throws -> (
        type: UInt16, requestId: UInt32, code: UInt32?, message: String?
    ) {
        // Written as they are: some of these messages are framed wrongly on purpose.
        try bytes.withUnsafeBytes { buffer in
            var sent = 0
            while sent < buffer.count {
                let n = Foundation.send(
                    channel.fd, buffer.baseAddress! + sent, buffer.count - sent, Int32(MSG_NOSIGNAL))
                guard n > 0 else { throw ProtocolError("send failed") }
                sent += n
            }
        }
        var buffer: [UInt8] = []
        let reply = try channel.receive(into: &buffer)
        guard reply.type == MessageType.error.rawValue else { return (reply.type, reply.requestId, nil, nil) }
        return try buffer.withUnsafeBytes { raw in
            var r = WireReader(
                UnsafeRawBufferPointer(rebasing: raw[messageHeaderSize..<messageHeaderSize + reply.payloadLength]))
            return (reply.type, reply.requestId, try r.u32(), try r.string())
        }
    }

    /// An event without a snapshot: answered `ok` once stored.
    static func event(_ text: String, requestId: UInt32) -> [UInt8] {
        var w = WireWriter()
        w.begin(.event, requestId: requestId)
        w.string(text)
        w.bool(false)
        w.finish()
        return w.bytes
    }

    // Guards: one message from a code node killed `vantage run` (and, under `vantage agent`, the agent and every
    // instance) with SIGILL. Now each is answered with a bad-request error to that node alone; its connection goes on,
    // and the other node is served throughout.
    @Test("Each crashing message gets a bad-request error, and the node and its neighbour are served after it")
    func crashingMessagesAreAnswered() async throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("vantage-hostile-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: work) }
        let (runtime, task) = try await Self.startRuntime(in: work)
        defer { runtime.shutdown() }
        let hostile = try await Self.connect(runtime, node: "code_a")
        let neighbour = try await Self.connect(runtime, node: "code_b")

        for (index, (name, bytes, says)) in CrashingMessages.cases.enumerated() {
            let reply = try Self.exchange(hostile, bytes)
            #expect(reply.type == MessageType.error.rawValue, "\(name)")
            #expect(reply.code == RemoteErrorCode.badRequest.rawValue, "\(name): \(reply.message ?? "")")
            #expect(reply.message?.contains(says) == true, "\(name): \(reply.message ?? "")")
            // The same connection still works, and so does the other node's.
            let after = try Self.exchange(hostile, Self.event(#"{"after": \#(index)}"#, requestId: 100 + UInt32(index)))
            #expect(after.type == MessageType.ok.rawValue && after.requestId == 100 + UInt32(index), "after \(name)")
            let other = try Self.exchange(neighbour, Self.event(#"{"neighbour": \#(index)}"#, requestId: 9))
            #expect(other.type == MessageType.ok.rawValue, "the other node after \(name)")
        }
        // Messages cut short anywhere: an error each, never a crash.
        let whole = CrashingMessages.infer(dims: [1, 3, 300, 300], slot: 1, bytes: 1_080_000)
        for length in stride(from: messageHeaderSize, to: whole.count, by: 3) {
            var cut = Array(whole[..<length])
            let size = UInt32(cut.count - 4)
            withUnsafeBytes(of: size.littleEndian) { for i in 0..<4 { cut[i] = $0[i] } }
            let reply = try Self.exchange(hostile, cut)
            #expect(reply.code == RemoteErrorCode.badRequest.rawValue, "cut at \(length): \(reply.message ?? "")")
        }
        #expect(runtime.hosts.allSatisfy { $0.counters.withLock { $0.restarts } == 0 }, "no node was restarted")
        runtime.shutdown()
        try await task.value
    }

    // Guards: a length field over the limit (here 100 MiB) made the runtime allocate that much and wait for it; now
    // it closes that node's connection at once, the node is restarted and serves again, and the other node never
    // notices.
    @Test("A message over the size limit closes that node's connection at once; it reconnects and is served")
    func oversizedMessageClosesOnlyThatConnection() async throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("vantage-hostile-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: work) }
        let (runtime, task) = try await Self.startRuntime(in: work)
        defer { runtime.shutdown() }
        let hostile = try await Self.connect(runtime, node: "code_a")
        let neighbour = try await Self.connect(runtime, node: "code_b")

        // A header announcing 100 MiB, and nothing after it: the runtime closes the connection without waiting.
        let length = UInt32(100 << 20)
        let header = withUnsafeBytes(of: length.littleEndian) { Array($0) } + [4, 0, 0, 0, 1, 0, 0, 0]
        let sent = ContinuousClock.now
        do {
            let reply = try Self.exchange(hostile, header)
            Issue.record("the connection got a reply (type \(reply.type)) instead of being closed")
        } catch {
            // Closed (or reset, the header's bytes unread), not timed out waiting.
            let text = "\(error)"
            #expect(text.contains("closed") || text.contains("reset"), "\(text)")
            #expect(ContinuousClock.now - sent < .seconds(5), "at once: \(text)")
        }
        let other = try Self.exchange(neighbour, Self.event(#"{"still": "here"}"#, requestId: 3))
        #expect(other.type == MessageType.ok.rawValue)
        // The node's process is replaced and its socket accepts again.
        let again = try await Self.connect(runtime, node: "code_a")
        let reply = try Self.exchange(again, Self.event(#"{"back": true}"#, requestId: 4))
        #expect(reply.type == MessageType.ok.rawValue)
        runtime.shutdown()
        try await task.value
    }
}

/// A model whose input takes any shape: whatever dimensions an application sends reach the model's own check.
@Suite("Model service: shapes an application chooses")
struct ModelShapeHardeningTests {
    /// An OpenVINO IR model with one f32 input `x` of shape [?, ?] and its ReLU as output `y`.
    static func writeDynamicModel(in folder: URL) throws -> URL {
        let dims = "<dim>-1</dim><dim>-1</dim>"
        let xml = """
            <?xml version="1.0"?>
            <net name="dynamic_model" version="11">
              <layers>
                <layer id="0" name="x" type="Parameter" version="opset1">
                  <data shape="?,?" element_type="f32"/>
                  <output><port id="0" precision="FP32" names="x">\(dims)</port></output>
                </layer>
                <layer id="1" name="relu" type="ReLU" version="opset1">
                  <input><port id="0" precision="FP32">\(dims)</port></input>
                  <output><port id="1" precision="FP32" names="y">\(dims)</port></output>
                </layer>
                <layer id="2" name="result" type="Result" version="opset1">
                  <input><port id="0" precision="FP32">\(dims)</port></input>
                </layer>
              </layers>
              <edges>
                <edge from-layer="0" from-port="0" to-layer="1" to-port="0"/>
                <edge from-layer="1" from-port="1" to-layer="2" to-port="0"/>
              </edges>
            </net>
            """
        let file = folder.appendingPathComponent("model.xml")
        try Data(xml.utf8).write(to: file)
        try Data().write(to: folder.appendingPathComponent("model.bin"))
        return file
    }

    // Guards: `shape.reduce(1, *) * byteSize` on dimensions an application chose trapped on overflow (SIGILL, the
    // runtime gone), for any model that leaves a size open; a descriptor's huge shape trapped the same way at warm-up.
    @Test("Huge, overflowing or negative dimensions get a clear error, and the model keeps answering")
    func hostileShapes() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vantage-shape-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = try Self.writeDynamicModel(in: folder)
        // The descriptor declares a shape whose size overflows: warm-up skips it instead of trapping.
        let descriptor = ModelDescriptor(framework: "PYTORCH", inputs: [.init(name: "x", shape: [1 << 40, 1 << 40])])
        let node = ModelNode(
            name: "dynamic_model", packageDirectory: folder, descriptor: descriptor,
            spec: ModelSpec.inferred(from: descriptor, file: "model.xml"), modelFile: file)
        let service = try ModelService(
            models: [node], cacheDirectory: nil, hint: .latency, tensorsFromDescriptors: true,
            logger: ModelServiceBatchTests.logger)
        await service.warmUp(tensors: true)

        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 64)
        defer { memory.deallocate() }
        memory.initializeMemory(as: UInt8.self, repeating: 0)
        let hostile: [(shape: [Int], says: String)] = [
            ([1 << 40, 1 << 40], "does not fit in memory"),
            ([Int.max, 2], "does not fit in memory"),
            ([1 << 62, 1 << 62], "does not fit in memory"),
            ([-4, -4], "expects shape"),
            ([4, 0], "expects shape"),
        ]
        for (shape, says) in hostile {
            var writer = WireWriter()
            let input = TensorInput(name: "x", shape: shape, elementType: .f32, data: UnsafeRawBufferPointer(memory))
            await #expect {
                try await service.inferTensors("dynamic_model", inputs: [input], wants: [.tensors], into: &writer)
            } throws: { error in
                "\(error)".contains(says)
            }
        }
        // The model still answers a well-formed call.
        var writer = WireWriter()
        let input = TensorInput(name: "x", shape: [4, 4], elementType: .f32, data: UnsafeRawBufferPointer(memory))
        try await service.inferTensors("dynamic_model", inputs: [input], wants: [.tensors], into: &writer)
        #expect(writer.bytes.count > 64)
    }
}
