import Foundation
import Logging
import Testing

@testable import VantageMedia

/// The sample video made by scripts/setup (768×576, 10 fps, 795 frames of people walking).
let sampleVideo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent(".deps/media/vtest.mp4")
let haveSample = FileManager.default.fileExists(atPath: sampleVideo.path)

/// Plain memory standing in for the runtime's shared memory.
final class TestStorage: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let slots: Int
    let bytes = FrameStorage.slotBytes()
    init(slots: Int = 4) {
        self.slots = slots
        base = UnsafeMutableRawPointer.allocate(byteCount: slots * bytes, alignment: 64)
    }
    var storage: FrameStorage { FrameStorage(base: base, slotCount: slots, slotCapacity: bytes, owner: self) }
    deinit { base.deallocate() }
}

func waitUntil(seconds: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(20_000)
    }
    return condition()
}

@Suite("Camera streams", .enabled(if: haveSample, "needs .deps/media/vtest.mp4 from scripts/setup"))
struct CameraStreamTests {
    let logger = Logger(label: "test")

    @Test("a file read as fast as possible delivers every frame, in order, none dropped")
    func fileDeliversEveryFrame() throws {
        let memory = TestStorage()
        let camera = CameraStream(
            source: StreamSource(name: "cam", url: sampleVideo.path), storage: memory.storage, logger: logger)
        let signal = FrameSignal()
        camera.addObserver(signal)
        camera.start()
        defer { camera.stop() }
        var last: UInt64 = 0
        var slots = Set<Int>()
        var greenRows = 0
        while !(camera.isFinished && camera.snapshot.decoded == last) {
            guard let frame = camera.acquireLatest(after: last) else {
                signal.wait(timeoutMillis: 100)
                continue
            }
            #expect(frame.sequence == last + 1, "frames arrive in order without gaps")
            #expect(frame.width == 768 && frame.height == 576)
            slots.insert(frame.slot)
            if frame.sequence == 100 {
                #expect(camera.ensureBGR(slot: frame.slot))
                // The lower part of the picture is grass: green dominates in BGR order.
                let row = camera.pixels(of: frame.slot) + 500 * frame.stride
                let b = Int(row.load(fromByteOffset: 300, as: UInt8.self))
                let g = Int(row.load(fromByteOffset: 301, as: UInt8.self))
                let r = Int(row.load(fromByteOffset: 302, as: UInt8.self))
                if g > r && g > b { greenRows += 1 }
            }
            last = frame.sequence
            camera.release(slot: frame.slot)
        }
        let counters = camera.snapshot
        #expect(last == 795)
        #expect(counters.decoded == 795)
        #expect(counters.dropped == 0)
        #expect(counters.state == .ended)
        #expect(slots.allSatisfy { $0 < 4 }, "only the pool's slots are used")
        #expect(greenRows == 1, "frames are converted to BGR")
    }

    @Test("a slow consumer of a live source gets the newest frame; the ones it missed count as dropped")
    func latestFrameWins() throws {
        let memory = TestStorage()
        var source = StreamSource(name: "cam", url: sampleVideo.path)
        source.realtime = true
        let camera = CameraStream(source: source, storage: memory.storage, logger: logger)
        camera.start()
        defer { camera.stop() }
        Thread.sleep(forTimeInterval: 1.5)
        let frame = try #require(camera.acquireLatest(after: 0))
        camera.release(slot: frame.slot)
        let counters = camera.snapshot
        #expect(frame.sequence == counters.decoded || frame.sequence + 1 == counters.decoded)
        #expect(counters.droppedSuperseded >= frame.sequence - 1)
        // Paced at 10 frames/s: about 15 frames in 1.5 s, far fewer than decoding flat out.
        #expect((8...25).contains(counters.decoded), "decoded \(counters.decoded) frames in 1.5 s at 10 fps")
    }

    @Test("a missing file fails once with a message naming the file and what to do")
    func missingFile() {
        let memory = TestStorage()
        let camera = CameraStream(
            source: StreamSource(name: "dock", url: "/no/such/video.mp4"), storage: memory.storage, logger: logger)
        camera.start()
        #expect(waitUntil(seconds: 5) { camera.isFinished })
        let counters = camera.snapshot
        #expect(counters.state == .failed)
        let error = counters.lastError ?? ""
        #expect(error.contains("camera dock"))
        #expect(error.contains("/no/such/video.mp4"))
        #expect(error.contains("check that the file exists"))
    }

    @Test("an unreachable camera keeps retrying with backoff, and its password never shows")
    func unreachableCameraRetries() {
        let memory = TestStorage()
        var source = StreamSource(name: "gate", url: "rtsp://admin:hunter2@127.0.0.1:1/stream")
        source.reconnectInitialDelay = .milliseconds(50)
        source.reconnectMaxDelay = .milliseconds(200)
        let camera = CameraStream(source: source, storage: memory.storage, logger: logger)
        camera.start()
        defer { camera.stop() }
        #expect(waitUntil(seconds: 10) { camera.snapshot.reconnects >= 3 })
        let counters = camera.snapshot
        #expect(!camera.isFinished, "a network camera is retried forever")
        let error = counters.lastError ?? ""
        #expect(error.contains("camera gate: cannot open rtsp://***@127.0.0.1:1/stream"))
        #expect(!error.contains("hunter2"))
        camera.stop()
        #expect(waitUntil(seconds: 5) { camera.isFinished }, "stop interrupts the retry loop")
    }

    @Test("a camera that waits (paused, pacing a file in real time, backing off) resumes or stops at once")
    func waitsEndAtOnce() {
        let memory = TestStorage()
        var source = StreamSource(name: "dock", url: sampleVideo.path)
        source.realtime = true
        let camera = CameraStream(source: source, storage: memory.storage, logger: logger)
        camera.pause()
        camera.start()
        defer { camera.stop() }
        #expect(waitUntil(seconds: 5) { camera.snapshot.state == .paused })
        camera.resume()
        #expect(waitUntil(seconds: 2) { camera.snapshot.decoded >= 3 }, "resume wakes the paused camera")
        camera.pause()
        #expect(waitUntil(seconds: 1) { camera.snapshot.state == .paused }, "pause cuts the pacing wait short")
        var asked = Date()
        camera.stop()
        #expect(waitUntil(seconds: 5) { camera.isFinished })
        #expect(Date().timeIntervalSince(asked) < 1, "stop wakes the paused camera")

        var unreachable = StreamSource(name: "gate", url: "rtsp://127.0.0.1:1/stream")
        unreachable.reconnectInitialDelay = .seconds(60)
        unreachable.reconnectMaxDelay = .seconds(60)
        let retrying = CameraStream(source: unreachable, storage: memory.storage, logger: logger)
        retrying.start()
        defer { retrying.stop() }
        #expect(waitUntil(seconds: 10) { retrying.snapshot.lastError != nil })
        asked = Date()
        retrying.stop()
        #expect(waitUntil(seconds: 5) { retrying.isFinished })
        #expect(Date().timeIntervalSince(asked) < 1, "stop cuts a 60 s reconnect delay short")
    }

    @Test("credentials given apart from the URL are used to open it but never shown")
    func separateCredentials() {
        var source = StreamSource(name: "c", url: "rtsp://10.0.0.5:554/live", username: "op", password: "p@ss:w/rd")
        #expect(source.openTarget == "rtsp://op:p%40ss%3Aw%2Frd@10.0.0.5:554/live")
        #expect(source.redactedURL == "rtsp://10.0.0.5:554/live")
        source.url = "rtsp://a:b@host/x@y"
        #expect(StreamSource.redact(source.url) == "rtsp://***@host/x@y")
    }

    @Test("the URL's scheme, in any case, says what kind of source it is; anything else is a file")
    func sourceKinds() {
        let kinds: [(String, StreamSource.Kind)] = [
            ("rtsp://10.0.0.5/live", .rtsp), ("RTSP://CAM/1", .rtsp), ("rtsps://cam/1", .rtsp),
            ("Http://cam/mjpg", .http),
            ("https://cam/x", .http), ("/videos/rtsp://odd.mp4", .file), ("rtsp:/", .file), ("", .file),
            ("yard.mp4", .file), ("file:///tmp/a.mp4", .file),
        ]
        for (url, kind) in kinds {
            #expect(StreamSource(name: "c", url: url).kind == kind, "\(url)")
        }
    }

    @Test("frames are scaled for a model straight from the decoded original, in the model's channel order")
    func scaleForModel() throws {
        let memory = TestStorage()
        let camera = CameraStream(
            source: StreamSource(name: "cam", url: sampleVideo.path), storage: memory.storage, logger: logger)
        camera.start()
        defer { camera.stop() }
        var frame: FrameInfo?
        #expect(
            waitUntil(seconds: 5) {
                frame = camera.acquireLatest(after: 0)
                return frame != nil
            })
        let info = try #require(frame)
        defer { camera.release(slot: info.slot) }
        var rgb = [UInt8](repeating: 0, count: 300 * 300 * 3)
        var bgr = rgb
        let scaler = FrameScaler()
        #expect(
            rgb.withUnsafeMutableBytes {
                scaler.scale(camera, slot: info.slot, width: 300, height: 300, order: .rgb, into: $0.baseAddress!)
            })
        #expect(
            bgr.withUnsafeMutableBytes {
                scaler.scale(camera, slot: info.slot, width: 300, height: 300, order: .bgr, into: $0.baseAddress!)
            })
        let p = (260 * 300 + 120) * 3  // grass
        #expect(
            abs(Int(rgb[p]) - Int(bgr[p + 2])) <= 4 && abs(Int(rgb[p + 2]) - Int(bgr[p])) <= 4,
            "RGB is BGR with red and blue swapped")
        #expect(rgb[p + 1] > rgb[p] && rgb[p + 1] > rgb[p + 2], "grass is green")
    }
}

@Suite("Frame pool")
struct FramePoolTests {
    @Test("a held frame is never overwritten; a frame nobody took is replaced and counted as dropped")
    func slotLifecycle() throws {
        let memory = TestStorage(slots: 3)
        let pool = FramePool(storage: memory.storage)
        func write(_ sequence: UInt64) -> (Int, Bool)? {
            guard let slot = pool.beginWrite(wait: false, cancelled: { false }) else { return nil }
            let dropped = pool.commitWrite(
                FrameInfo(
                    sequence: sequence, slot: slot, width: 2, height: 2, stride: 64, timestampMicros: 0,
                    decodedAtNanos: 0))
            return (slot, dropped)
        }
        let (first, dropped1) = try #require(write(1))
        #expect(!dropped1)
        let held = try #require(pool.acquireLatest(after: 0))
        #expect(held.slot == first && held.sequence == 1)
        #expect(pool.acquireLatest(after: 1) == nil, "nothing newer yet")
        let (second, _) = try #require(write(2))
        let (_, dropped3) = try #require(write(3))
        #expect(dropped3, "frame 2 was never taken")
        #expect(second != first)
        // Slots: 1 held by the consumer, 3 is the latest: the writer gets the remaining one, never the held one.
        for sequence in UInt64(4)...10 {
            let (slot, _) = try #require(write(sequence))
            #expect(slot != first, "the held frame's slot is not reused")
        }
        pool.release(slot: held.slot)
        let newest = try #require(pool.acquireLatest(after: 1))
        #expect(newest.sequence == 10)
        pool.release(slot: newest.slot)
    }

    @Test("a file's pool lets three decoded frames wait: consumers get them in order, work ahead only peeks")
    func framesWaitInOrder() throws {
        // A file read as fast as possible (StreamSource.waitingFrames 3, two extra slots): the decoder runs ahead.
        let memory = TestStorage(slots: 6)
        let pool = FramePool(storage: memory.storage, depth: 3)
        func write(_ sequence: UInt64) -> Bool? {
            guard let slot = pool.beginWrite(wait: false, cancelled: { false }) else { return nil }
            return pool.commitWrite(
                FrameInfo(
                    sequence: sequence, slot: slot, width: 2, height: 2, stride: 64, timestampMicros: 0,
                    decodedAtNanos: 0))
        }
        for sequence in UInt64(1)...3 { #expect(write(sequence) == false, "frame \(sequence) waits, nothing dropped") }
        // A decoder that waits for its consumers (a file) stops here: three frames wait.
        var asked = 0
        let blocked = pool.beginWrite(wait: true) {
            asked += 1
            return true  // stop waiting at once
        }
        #expect(blocked == nil && asked == 1, "the decoder waits for a consumer instead of writing a fourth frame")

        // Inference ahead holds the oldest waiting frame without taking it; the consumer still gets it, first.
        let peeked = try #require(pool.peekWaiting(after: 0))
        #expect(peeked.sequence == 1)
        let peekedSecond = try #require(pool.peekWaiting(after: 1))
        #expect(peekedSecond.sequence == 2)
        let first = try #require(pool.acquireLatest(after: 0))
        #expect(first.sequence == 1 && first.slot == peeked.slot)
        pool.release(slot: peeked.slot)
        let second = try #require(pool.acquireLatest(after: first.sequence))
        #expect(second.sequence == 2)
        #expect(second.slot == peekedSecond.slot)
        pool.release(slot: peekedSecond.slot)
        pool.release(slot: second.slot)
        pool.release(slot: first.slot)

        // Frame 3 waits: room for two more; a fourth waiting frame pushes out the oldest, counted as dropped.
        #expect(write(4) == false)
        #expect(write(5) == false)
        #expect(write(6) == true, "frames 3, 4, 5 waited: frame 3 is pushed out")
        #expect(pool.acquireLatest(after: 2)?.sequence == 4, "the oldest still waiting comes next")
    }

    @Test("with every slot held, a live camera drops the new frame instead of waiting")
    func allSlotsHeld() throws {
        let memory = TestStorage(slots: 2)
        let pool = FramePool(storage: memory.storage)
        var held: [FrameInfo] = []
        for sequence in UInt64(1)...2 {
            let slot = try #require(pool.beginWrite(wait: false, cancelled: { false }))
            _ = pool.commitWrite(
                FrameInfo(
                    sequence: sequence, slot: slot, width: 2, height: 2, stride: 64, timestampMicros: 0,
                    decodedAtNanos: 0))
            held.append(try #require(pool.acquireLatest(after: sequence - 1)))
        }
        #expect(pool.beginWrite(wait: false, cancelled: { false }) == nil)
        pool.release(slot: held[0].slot)
        let freed = try #require(pool.beginWrite(wait: false, cancelled: { false }))
        #expect(freed == held[0].slot, "the slot given back is the one written next")
        _ = pool.commitWrite(
            FrameInfo(sequence: 3, slot: freed, width: 2, height: 2, stride: 64, timestampMicros: 0, decodedAtNanos: 0))
        pool.release(slot: held[1].slot)
    }
}
