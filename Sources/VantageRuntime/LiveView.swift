public import Foundation
internal import Hummingbird
public import Logging
import Synchronization
public import VantageMedia

/// The annotated live view: what a Panorama application sent to HDMI, shown in a browser.
///
/// The runtime calls ``publish(stream:image:overlays:)`` for every frame an application puts to an
/// HDMI output. A stream nobody watches costs a dictionary lookup and an atomic load per frame.
/// While someone watches, at most ``Configuration/maxFramesPerSecond`` frames a second are copied
/// into the stream's own buffer, annotated and JPEG-encoded on the publishing thread, and handed
/// to the viewers. Streams never wait for each other: each has its own buffer, encoder and lock,
/// and a frame that arrives while its stream is still encoding the previous one is dropped.
///
/// ``makeLiveViewApplication(liveView:host:port:statusProvider:onServerRunning:logger:)`` serves it
/// over HTTP.
public final class LiveView: Sendable {
    /// How the live view encodes frames.
    public struct Configuration: Sendable {
        /// Shown in the page title: "Vantage — <appName>". Default `Vantage`.
        public var appName: String
        /// The most frames a second encoded per watched stream; 0 or less means every frame.
        /// Default 15.
        public var maxFramesPerSecond: Double
        /// JPEG quality, 1–100. Default 75.
        public var jpegQuality: Int
        /// How long a request for a single frame waits for a fresh one before it answers with
        /// the last frame it has, or 503. Default 2 s.
        public var snapshotTimeout: Duration

        public init(
            appName: String = "Vantage",
            maxFramesPerSecond: Double = 15,
            jpegQuality: Int = 75,
            snapshotTimeout: Duration = .seconds(2)
        ) {
            self.appName = appName
            self.maxFramesPerSecond = maxFramesPerSecond
            self.jpegQuality = jpegQuality
            self.snapshotTimeout = snapshotTimeout
        }
    }

    public let configuration: Configuration
    let logger: Logger
    /// The shortest time between two encoded frames of one stream.
    let frameInterval: Duration
    private let streams = Mutex<[String: LiveStream]>([:])
    private let encodes = Atomic<Int>(0)
    private let isShutDown = Atomic<Bool>(false)
    private let viewerIDs = Atomic<UInt64>(0)
    private let rejectedNames = Mutex<Set<String>>([])

    public init(configuration: Configuration = Configuration(), logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        frameInterval =
            configuration.maxFramesPerSecond > 0 ? .seconds(1 / configuration.maxFramesPerSecond) : .zero
    }

    /// Whether `name` can be a stream's name in a URL: letters, digits, `_`, `-` and `.`, not empty.
    public static func isValidStreamName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 200
            && name.unicodeScalars.allSatisfy { scalar in
                switch scalar {
                case "a"..."z", "A"..."Z", "0"..."9", "_", "-", ".": true
                default: false
                }
            }
    }

    /// Makes `stream` known before its first frame, so that the page lists it from the start.
    public func addStream(_ stream: String) {
        _ = self.stream(named: stream, creating: true)
    }

    /// Offers a frame of `stream` to the live view. Called for every frame an application puts
    /// to an HDMI output, from any thread.
    ///
    /// Returns at once when nobody watches the stream, when its frame rate limit has not yet
    /// passed, or when the stream is still busy with its previous frame. Otherwise the image is
    /// copied, `overlays` are drawn onto the copy, and the JPEG goes to the stream's viewers;
    /// `image` itself is never changed and need only stay valid until this returns.
    public func publish(stream name: String, image: ImageBuffer, overlays: [Overlay]) {
        publish(stream: name, overlays: overlays) { image }
    }

    /// Like `publish(stream:image:overlays:)`, but asks for the image only when it will be encoded, so a
    /// frame nobody watches is never even converted (`image` returns nil when it cannot be had).
    public func publish(stream name: String, overlays: [Overlay], image makeImage: () -> ImageBuffer?) {
        guard let stream = stream(named: name, creating: true) else { return }
        guard stream.viewers.load(ordering: .relaxed) > 0, !isShutDown.load(ordering: .relaxed) else { return }
        guard stream.claimFrameSlot(at: .now, interval: frameInterval) else { return }
        guard let image = makeImage(), image.width > 0, image.height > 0 else { return }
        let jpeg: ByteBuffer?? = stream.renderer.withLockIfAvailable { renderer in
            renderer.render(image, overlays: overlays, stream: stream.name, logger: logger)
        }
        guard let jpeg, let jpeg else { return }
        encodes.add(1, ordering: .relaxed)
        stream.store(jpeg: jpeg, width: image.width, height: image.height)
    }

    /// The names of all streams that published a frame or were added, sorted.
    public var streamNames: [String] {
        streams.withLock { $0.keys.sorted() }
    }

    /// How many frames were JPEG-encoded so far, over all streams.
    public var encodedFrameCount: Int {
        encodes.load(ordering: .relaxed)
    }

    /// How many clients are waiting for frames of `stream` now.
    public func viewerCount(stream name: String) -> Int {
        stream(named: name, creating: false)?.viewers.load(ordering: .relaxed) ?? 0
    }

    /// Watches `stream` until the task is cancelled or the live view shuts down: every frame encoded for it (at most
    /// ``Configuration/maxFramesPerSecond``) goes to `deliver`, which may take its time (frames encoded meanwhile are
    /// skipped; the next one delivered is the newest). For a relay that carries the frames elsewhere.
    public func follow(stream name: String, _ deliver: (Data) async -> Void) async {
        guard let stream = stream(named: name, creating: true), !isShuttingDown else { return }
        let viewer = beginViewing(stream)
        defer { stream.endViewing(viewer) }
        var sequence: UInt64 = 0
        while !Task.isCancelled, let frame = await stream.nextFrame(after: sequence, viewer: viewer) {
            sequence = frame.sequence
            await deliver(Data(frame.jpeg.readableBytesView))
        }
    }

    /// The last JPEG encoded for `stream`, or nil if there is none.
    public func latestJPEG(stream name: String) -> [UInt8]? {
        guard let frame = stream(named: name, creating: false)?.latestFrame else { return nil }
        return frame.jpeg.getBytes(at: frame.jpeg.readerIndex, length: frame.jpeg.readableBytes)
    }

    /// Ends every live stream and stops encoding; for when the runtime stops. Viewers get the
    /// end of their multipart stream, later requests for a live stream are refused.
    public func shutdown() {
        guard !isShutDown.exchange(true, ordering: .relaxed) else { return }
        for stream in streams.withLock({ Array($0.values) }) { stream.close() }
    }

    var isShuttingDown: Bool { isShutDown.load(ordering: .relaxed) }

    func stream(named name: String, creating: Bool) -> LiveStream? {
        if let stream = streams.withLock({ $0[name] }) { return stream }
        guard creating else { return nil }
        guard Self.isValidStreamName(name) else {
            let first = rejectedNames.withLock { names in
                names.count < 100 && names.insert(name).inserted
            }
            if first {
                logger.warning(
                    "Stream name cannot appear in a live view URL; its frames are not shown",
                    metadata: ["camera.stream": "\(name)", "hint": "use letters, digits, '_', '-' and '.'"]
                )
            }
            return nil
        }
        let quality = configuration.jpegQuality
        return streams.withLock { streams in
            if let stream = streams[name] { return stream }
            let stream = LiveStream(name: name, jpegQuality: quality)
            streams[name] = stream
            if isShutDown.load(ordering: .relaxed) { stream.close() }
            return stream
        }
    }

    /// Registers a new viewer of `stream`: frames are encoded from now on.
    func beginViewing(_ stream: LiveStream) -> UInt64 {
        stream.viewers.add(1, ordering: .relaxed)
        return viewerIDs.add(1, ordering: .relaxed).newValue
    }

    /// The latest frame of `stream` if it is fresh, else the next one encoded within
    /// ``Configuration/snapshotTimeout``, else the last one there is, else nil.
    func snapshot(of stream: LiveStream) async -> LiveFrame? {
        let latest = stream.latestFrame
        if let latest, ContinuousClock.now - latest.encodedAt < .seconds(1) { return latest }
        let viewer = beginViewing(stream)
        defer { stream.endViewing(viewer) }
        let timeout = configuration.snapshotTimeout
        let next = await withTaskGroup(of: LiveFrame?.self) { group in
            group.addTask { await stream.nextFrame(after: latest?.sequence ?? 0, viewer: viewer) }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        return next ?? latest
    }
}

/// One encoded frame of a stream, shared by all its viewers.
struct LiveFrame: Sendable {
    /// Counts up from 1 per stream.
    var sequence: UInt64
    var jpeg: ByteBuffer
    var width: Int
    var height: Int
    var encodedAt: ContinuousClock.Instant
}

/// The live view's state for one camera stream.
final class LiveStream: Sendable {
    struct State {
        var latest: LiveFrame?
        var sequence: UInt64 = 0
        /// When the next frame may be encoded.
        var nextDue: ContinuousClock.Instant?
        /// Viewers waiting for the next frame, by viewer id.
        var waiters: [UInt64: CheckedContinuation<LiveFrame?, Never>] = [:]
        /// Viewers told to stop (client gone, server shutting down) that have not ended yet.
        var stopped: Set<UInt64> = []
        var closed = false
    }

    let name: String
    /// Clients waiting for frames; encoding happens only while this is above zero.
    let viewers = Atomic<Int>(0)
    let state = Mutex(State())
    /// Held while one frame is copied, annotated and encoded; never together with `state`.
    let renderer: Mutex<FrameRenderer>

    init(name: String, jpegQuality: Int) {
        self.name = name
        renderer = Mutex(FrameRenderer(quality: jpegQuality))
    }

    var latestFrame: LiveFrame? { state.withLock { $0.latest } }

    /// Whether a frame arriving `now` may be encoded under the rate limit; claims the slot if so.
    /// Slots follow a fixed rhythm, so 25 fps in and a 15 fps limit give 15 fps out, not 12.5.
    func claimFrameSlot(at now: ContinuousClock.Instant, interval: Duration) -> Bool {
        state.withLock { state in
            if state.closed { return false }
            if let due = state.nextDue {
                if now < due { return false }
                state.nextDue = now - due < interval ? due + interval : now + interval
            } else {
                state.nextDue = now + interval
            }
            return true
        }
    }

    /// Makes `jpeg` the latest frame and hands it to every waiting viewer.
    func store(jpeg: ByteBuffer, width: Int, height: Int) {
        let (frame, waiters) = state.withLock { state in
            state.sequence += 1
            let frame = LiveFrame(
                sequence: state.sequence,
                jpeg: jpeg,
                width: width,
                height: height,
                encodedAt: .now
            )
            state.latest = frame
            let waiters = Array(state.waiters.values)
            state.waiters.removeAll(keepingCapacity: true)
            return (frame, waiters)
        }
        for waiter in waiters { waiter.resume(returning: frame) }
    }

    /// The first frame newer than `sequence`: the latest one if it is already newer, else the
    /// next one stored. Nil when the viewer was stopped, its task cancelled, or the stream closed.
    func nextFrame(after sequence: UInt64, viewer: UInt64) async -> LiveFrame? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<LiveFrame?, Never>) in
                // Checking for cancellation under the lock pairs with `stop` in the cancellation
                // handler: whichever runs second sees the other.
                let ready: LiveFrame?? = state.withLock { state in
                    if state.closed || state.stopped.contains(viewer) || Task.isCancelled { return .some(nil) }
                    if let latest = state.latest, latest.sequence > sequence { return .some(latest) }
                    state.waiters[viewer] = continuation
                    return .none
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            self.wake(viewer)
        }
    }

    /// Ends `viewer`'s wait for frames, now and later.
    func stop(_ viewer: UInt64) {
        let waiter = state.withLock { state in
            state.stopped.insert(viewer)
            return state.waiters.removeValue(forKey: viewer)
        }
        waiter?.resume(returning: nil)
    }

    /// Ends `viewer`'s current wait, if any.
    private func wake(_ viewer: UInt64) {
        state.withLock { $0.waiters.removeValue(forKey: viewer) }?.resume(returning: nil)
    }

    /// Forgets `viewer`; once no viewer is left, frames are no longer encoded.
    func endViewing(_ viewer: UInt64) {
        let waiter = state.withLock { state in
            state.stopped.remove(viewer)
            return state.waiters.removeValue(forKey: viewer)
        }
        waiter?.resume(returning: nil)
        viewers.subtract(1, ordering: .relaxed)
    }

    /// Ends all waits for good.
    func close() {
        let waiters = state.withLock { state in
            state.closed = true
            let waiters = Array(state.waiters.values)
            state.waiters.removeAll()
            return waiters
        }
        for waiter in waiters { waiter.resume(returning: nil) }
    }
}

/// Copies, annotates and encodes frames of one stream into buffers it keeps between frames.
///
/// `@unchecked Sendable`: it is only ever used inside its stream's `renderer` mutex, one thread
/// at a time. (The mutex alone would not need it, but the frame being drawn is a borrowed,
/// non-Sendable `ImageBuffer`, and the compiler cannot tell that the renderer keeps no reference
/// to it.)
final class FrameRenderer: @unchecked Sendable {
    private let encoder: JPEGEncoder
    private var canvas: UnsafeMutableRawPointer?
    private var canvasBytes = 0
    private var failureLogged = false

    init(quality: Int) {
        encoder = JPEGEncoder(quality: quality)
    }

    deinit {
        canvas?.deallocate()
    }

    /// The JPEG of `image` with `overlays` drawn on it, or nil if encoding failed (logged once).
    func render(_ image: ImageBuffer, overlays: [Overlay], stream: String, logger: Logger) -> ByteBuffer? {
        let rowBytes = image.width * ImageBuffer.bytesPerPixel
        let bytes = rowBytes * image.height
        if bytes > canvasBytes {
            canvas?.deallocate()
            canvas = .allocate(byteCount: bytes, alignment: 64)
            canvasBytes = bytes
        }
        guard let canvas else { return nil }
        if image.stride == rowBytes {
            canvas.copyMemory(from: image.base, byteCount: bytes)
        } else {
            for row in 0..<image.height {
                canvas.advanced(by: row * rowBytes).copyMemory(
                    from: image.base.advanced(by: row * image.stride),
                    byteCount: rowBytes
                )
            }
        }
        let copy = ImageBuffer(base: canvas, width: image.width, height: image.height, stride: rowBytes)
        ImageCanvas.draw(overlays, on: copy)
        do {
            return try encoder.withEncodedJPEG(copy) { jpeg in
                var buffer = ByteBufferAllocator().buffer(capacity: jpeg.count)
                buffer.writeBytes(jpeg)
                return buffer
            }
        } catch {
            if !failureLogged {
                failureLogged = true
                logger.warning(
                    "Live view cannot encode frames of this stream",
                    metadata: ["camera.stream": "\(stream)", "error": "\(error)"]
                )
            }
            return nil
        }
    }
}
