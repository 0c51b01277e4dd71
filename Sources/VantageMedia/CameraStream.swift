internal import CFFmpeg
import Foundation
import Logging
import Synchronization
import VantageCore

/// Where a camera is in its life.
public enum CameraState: String, Sendable, Codable {
    case connecting, streaming, reconnecting, paused, ended, failed
}

/// A camera's counters, as shown in the status endpoint and the per-camera status line.
public struct CameraCounters: Sendable, Codable, Equatable {
    /// Video packets read from the source.
    public var received: UInt64 = 0
    /// Frames that came out of the decoder.
    public var decoded: UInt64 = 0
    /// Frames handed to a consumer (the application).
    public var delivered: UInt64 = 0
    /// Frames replaced by a newer one before any consumer took them (the consumer was slower than the camera).
    public var droppedSuperseded: UInt64 = 0
    /// Frames dropped because consumers held every frame buffer.
    public var droppedNoBuffer: UInt64 = 0
    /// Times the stream was reopened after an error, end or stall.
    public var reconnects: UInt64 = 0
    /// Stalls detected (connected, but no packet for `stallTimeout`).
    public var stalls: UInt64 = 0
    public var state: CameraState = .connecting
    /// The last error, worded for a user (no credentials).
    public var lastError: String?
    public var width: Int = 0
    public var height: Int = 0
    /// CPU time spent on this camera's frames since it started, by stage (decode, scale, colour conversion).
    public var costs: FrameCosts?

    public var dropped: UInt64 { droppedSuperseded + droppedNoBuffer }
}

/// Wakes a consumer that waits for new frames from any of several cameras.
public final class FrameSignal: Sendable {
    private let condition = PThreadCondition()
    private let pending = Mutex(false)
    private let handler: (@Sendable () -> Void)?

    public init() { handler = nil }

    /// A signal that calls `handler` on the camera's thread instead of waking a waiter: it must not block.
    public init(handler: @escaping @Sendable () -> Void) { self.handler = handler }

    /// Marks that something happened and wakes the waiter.
    public func notify() {
        if let handler { return handler() }
        pending.withLock { $0 = true }
        condition.broadcast()
    }

    /// Blocks until `notify()` was called since the last wait, or the timeout passes. Returns whether notified.
    @discardableResult
    public func wait(timeoutMillis: Int) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        if pending.withLock({ p in
            defer { p = false }; return p
        }) {
            return true
        }
        condition.wait(timeoutMillis: timeoutMillis)
        return pending.withLock { p in
            defer { p = false }; return p
        }
    }
}

/// One camera: reads its source on a thread of its own, decodes every frame into the camera's frame pool as
/// BGR, reconnects forever with capped, jittered backoff, and restarts a stalled stream.
///
/// Consumers take the next frame with `acquireLatest(after:)` (a live camera's latest; a file's next in order) and
/// give it back with `release(slot:)`.
/// A slow, broken or dead camera never blocks another: each has its own thread, pool and FFmpeg contexts,
/// and every blocking FFmpeg call is cut short by the interrupt callback.
public final class CameraStream: @unchecked Sendable {
    // Unchecked: the FFmpeg contexts live only on the camera's thread; shared state is in Mutex/Atomic values
    // and the frame pool, which guards itself.
    public let source: StreamSource
    /// New credentials (URL, user name, password) given while the camera runs (`updateCredentials`); the next
    /// connection uses them instead of `source`'s.
    private let credentials = Mutex<(url: String, username: String?, password: String?)?>(nil)
    let pool: FramePool
    private let logger: Logger
    private let stopRequested = Atomic<Bool>(false)
    private let pauseRequested = Atomic<Bool>(false)
    private let eagerBGR = Atomic<Bool>(false)
    /// Monotonic nanoseconds after which a blocking FFmpeg call is interrupted (0 = no deadline).
    private let interruptDeadline = Atomic<UInt64>(0)
    private let interruptedByDeadline = Atomic<Bool>(false)
    /// Wakes the camera thread where it sleeps (paused, backing off, pacing a file) when `stop()`, `pause()` or
    /// `resume()` changes what it waits for, so that it reacts at once instead of at its next poll.
    private let wakeup = PThreadCondition()
    private let counters = Mutex(CameraCounters())
    /// CPU time by stage, added up by the threads that do the work (`FrameScaler` adds its scaling).
    let costs = FrameCostMeter()
    /// The camera thread's CPU clock when it started (camera thread only).
    private var threadCPUStart: UInt64 = 0
    private let observers = Mutex<[FrameSignal]>([])
    private var thread: Thread?
    private let finished = Atomic<Bool>(false)
    private var sequence: UInt64 = 0
    /// Media time of files read as fast as possible (camera thread only): the stream's time base, the wall clock
    /// and presentation time of the first frame since the session started or the file looped, the last frame's time.
    private var mediaTimeBase = AVRational(num: 0, den: 1)
    private var mediaOrigin: (wall: Int64, pts: Int64)?
    private var lastFrameMicros: Int64 = 0
    /// The newest compressed packets, for clips; nil when `source.packetRingSeconds` is 0.
    let packetRing: PacketRing?
    /// The outage in progress (camera thread only), for a quiet log: its first failure is logged with the reason,
    /// then a summary at most every `source.outageLogInterval`, then one line when the camera streams again.
    private var outage: Outage?

    private struct Outage {
        /// When the first failure happened (wall clock, for the log; monotonic, for the length).
        let sinceWall: Date
        let sinceNanos: UInt64
        /// `counters.reconnects` at the first failure: the attempts since are the difference.
        let reconnectsBefore: UInt64
        var lastLogNanos: UInt64
    }

    public init(source: StreamSource, storage: FrameStorage, logger: Logger) {
        self.source = source
        self.pool = FramePool(storage: storage, depth: source.waitingFrames)
        packetRing =
            source.packetRingSeconds > 0
            ? PacketRing(seconds: source.packetRingSeconds, maxBytes: source.packetRingMaxBytes) : nil
        var logger = logger
        logger[metadataKey: "camera"] = "\(source.name)"
        self.logger = logger
    }

    /// Frame storage this camera writes into.
    public var storage: FrameStorage { pool.storage }

    /// Where the BGR pixels of a slot start.
    public func pixels(of slot: Int) -> UnsafeMutableRawPointer { pool.pixels(of: slot) }

    /// Adds a consumer to wake on each new frame and at the end of the stream.
    public func addObserver(_ signal: FrameSignal) { observers.withLock { $0.append(signal) } }

    /// Stops waking `signal`.
    public func removeObserver(_ signal: FrameSignal) { observers.withLock { $0.removeAll { $0 === signal } } }

    /// Starts reading on the camera's own thread.
    public func start() {
        let thread = Thread { [self] in run() }
        thread.name = "camera \(source.name)"
        thread.stackSize = 1 << 20
        self.thread = thread
        thread.start()
    }

    /// Asks the thread to stop; blocking calls are interrupted. Returns at once; `isFinished` turns true soon.
    public func stop() {
        stopRequested.store(true, ordering: .relaxed)
        pool.wakeAll()
        wakeup.broadcast()
    }

    /// Pauses the camera (Panorama's PAUSE signal, and `launch: onSignal` cameras before their first RESUME): the
    /// connection is closed and no frame is read until `resume()`. Safe to call before `start()`.
    public func pause() {
        pauseRequested.store(true, ordering: .relaxed)
        wakeup.broadcast()
    }

    /// Resumes a paused camera: it connects again (a file starts again from its beginning).
    public func resume() {
        pauseRequested.store(false, ordering: .relaxed)
        wakeup.broadcast()
    }

    /// Gives the camera new credentials (a rotated password): `url` must name the same stream as before, with other
    /// credentials only. The open connection goes on; the next one (a reconnect, e.g. because the camera dropped
    /// its sessions when its password changed) uses them. The camera is never stopped.
    public func updateCredentials(url: String, username: String?, password: String?) {
        credentials.withLock { $0 = (url, username, password) }
    }

    /// What the next connection opens: `source` with the credentials given last.
    private var currentSource: StreamSource {
        guard let (url, username, password) = credentials.withLock({ $0 }) else { return source }
        var source = source
        source.url = url
        source.username = username
        source.password = password
        return source
    }

    /// Converts every decoded frame to BGR on the camera's thread, right after decoding, instead of when a consumer
    /// first asks (`ensureBGR`): for consumers that read pixels of every frame (Python applications), so the
    /// conversion overlaps their work instead of adding to each frame's wait.
    public func convertEagerly() {
        if !eagerBGR.load(ordering: .relaxed) { eagerBGR.store(true, ordering: .relaxed) }
    }

    /// Whether every frame is converted to BGR as it is decoded: some consumer asked for this camera's pixels.
    public var convertsEagerly: Bool { eagerBGR.load(ordering: .relaxed) }

    /// Whether the camera is paused (or asked to pause).
    public var isPaused: Bool { pauseRequested.load(ordering: .relaxed) }

    /// True once the thread has ended (file finished, unrecoverable error, or stopped).
    public var isFinished: Bool { finished.load(ordering: .acquiring) }

    public var snapshot: CameraCounters {
        var snapshot = counters.withLock { $0 }
        snapshot.costs = costs.costs
        return snapshot
    }

    /// Takes a reference to the newest frame if it is newer than `sequence`.
    public func acquireLatest(after sequence: UInt64) -> FrameInfo? {
        let info = pool.acquireLatest(after: sequence)
        if info != nil { counters.withLock { $0.delivered += 1 } }
        return info
    }

    /// Takes a reference to the oldest decoded frame newer than `sequence` that no consumer took yet, leaving it for
    /// them: for work done on a frame before its consumers ask for it (inference ahead of the application).
    public func peekWaiting(after sequence: UInt64) -> FrameInfo? { pool.peekWaiting(after: sequence) }

    /// Takes another reference to a frame the caller holds.
    public func retain(slot: Int) { pool.retain(slot: slot) }

    /// Gives a frame back to the pool.
    public func release(slot: Int) { pool.release(slot: slot) }

    /// Makes sure the BGR pixels of a held frame exist (converted from the decoded frame on first use).
    /// Returns false if the frame could not be converted.
    @discardableResult
    public func ensureBGR(slot: Int) -> Bool {
        let started = threadCPUNanos()
        defer { costs.addColour(nanos: threadCPUNanos() &- started, onCameraThread: false) }
        return pool.ensureBGR(slot: slot)
    }

    // MARK: - The camera thread

    private var stopping: Bool { stopRequested.load(ordering: .relaxed) }

    private func run() {
        threadCPUStart = threadCPUNanos()
        defer { costs.setCameraThread(nanos: threadCPUNanos() &- threadCPUStart) }
        var delay = source.reconnectInitialDelay
        var firstAttempt = true
        while !stopping {
            if isPaused {
                setState(.paused)
                logger.info("camera paused")
                sleep(untilNanos: .max) { !isPaused || stopping }
                if stopping { break }
                outage = nil  // a pause is not an outage: its log starts again
                logger.info("camera resumed")
                firstAttempt = true
                delay = source.reconnectInitialDelay
            }
            if !firstAttempt {
                counters.withLock {
                    $0.reconnects += 1; $0.state = .reconnecting
                }
            }
            firstAttempt = false
            let decodedBefore = snapshot.decoded
            do {
                let end = try session()
                if end == .finished { setState(.ended); break }
                if stopping { break }
            } catch {
                if isPaused { continue }
                counters.withLock { $0.lastError = error.description }
                if source.kind == .file && snapshot.decoded == 0 {
                    // A file that cannot be read now will not become readable by retrying.
                    logger.error("camera failed: \(error.description)")
                    setState(.failed)
                    break
                }
                logFailure(error, delay: delay)
            }
            if isPaused { continue }
            if snapshot.decoded > decodedBefore { delay = source.reconnectInitialDelay }
            sleepInterruptibly(jittered(delay))
            delay = min(delay * 2, source.reconnectMaxDelay)
        }
        if stopping && snapshot.state != .failed { setState(.ended) }
        finished.store(true, ordering: .releasing)
        notifyObservers()
    }

    private func setState(_ state: CameraState) { counters.withLock { $0.state = state } }

    /// Logs a failed connection or a broken stream, quietly: a camera that is off for a day makes thousands of
    /// attempts (one every `reconnectMaxDelay`), and a line for each would bury everything else. The first failure
    /// of an outage is logged with its reason; after that, one summary at most every `source.outageLogInterval`.
    private func logFailure(_ error: MediaError, delay: Duration) {
        let now = monotonicNanos()
        let reconnects = snapshot.reconnects
        guard var outage else {
            self.outage = Outage(sinceWall: Date(), sinceNanos: now, reconnectsBefore: reconnects, lastLogNanos: now)
            logger.warning(
                "camera error, reconnecting", metadata: ["error": "\(error.description)", "delay": "\(delay)"])
            return
        }
        let interval = UInt64(max(0, source.outageLogInterval.seconds) * 1e9)
        guard now - outage.lastLogNanos >= interval else { return }
        outage.lastLogNanos = now
        self.outage = outage
        let attempts = reconnects - outage.reconnectsBefore
        let since = Self.logTime(outage.sinceWall)
        logger.warning(
            "camera still not streaming after \(attempts) attempts since \(since): \(error.description)",
            metadata: ["attempts": "\(attempts)", "down": "\(Self.span(nanos: now - outage.sinceNanos))"])
    }

    /// Logs that the camera streams: the first time, or again after an outage (with how long it was down).
    private func logStreaming(_ source: StreamSource) {
        guard let outage else {
            logger.info("camera streaming", metadata: ["source": "\(source.redactedURL)"])
            return
        }
        self.outage = nil
        let attempts = snapshot.reconnects - outage.reconnectsBefore
        let down = Self.span(nanos: monotonicNanos() - outage.sinceNanos)
        logger.info(
            "camera streaming again after \(attempts) attempts, down for \(down)",
            metadata: ["source": "\(source.redactedURL)"])
    }

    /// A time for the log, in UTC: 2026-12-06T20:15:03Z.
    private static func logTime(_ date: Date) -> String { date.formatted(.iso8601) }

    /// A length of time for the log: "4.2 s", "12 min 5 s", "26 h 3 min".
    static func span(nanos: UInt64) -> String {
        let seconds = Double(nanos) / 1e9
        if seconds < 60 { return String(format: "%.1f s", seconds) }
        let whole = Int(seconds)
        if whole < 3600 { return "\(whole / 60) min \(whole % 60) s" }
        return "\(whole / 3600) h \(whole % 3600 / 60) min"
    }

    private func jittered(_ d: Duration) -> Duration { d * Double.random(in: 0.8...1.2) }

    private func sleepInterruptibly(_ d: Duration) {
        sleep(untilNanos: monotonicNanos() + UInt64(max(0, d.seconds * 1e9))) { stopping }
    }

    /// Blocks the camera thread until the monotonic time `untilNanos` or until `done()` holds, whichever is first.
    /// `done` is checked under `wakeup`'s lock and every change it depends on (stop, pause, resume) broadcasts
    /// `wakeup`, so no wake-up is lost between the check and the wait.
    private func sleep(untilNanos: UInt64, unless done: () -> Bool) {
        wakeup.lock()
        defer { wakeup.unlock() }
        while !done() {
            let now = monotonicNanos()
            if now >= untilNanos { return }
            wakeup.wait(nanoseconds: untilNanos - now)
        }
    }

    private func notifyObservers() { observers.withLock { for o in $0 { o.notify() } } }

    fileprivate func shouldInterrupt() -> Bool {
        if stopping || isPaused { return true }
        let deadline = interruptDeadline.load(ordering: .relaxed)
        if deadline != 0 && monotonicNanos() > deadline {
            interruptedByDeadline.store(true, ordering: .relaxed)
            return true
        }
        return false
    }

    private func armDeadline(_ d: Duration) {
        interruptedByDeadline.store(false, ordering: .relaxed)
        interruptDeadline.store(monotonicNanos() + UInt64(d.seconds * 1e9), ordering: .relaxed)
    }

    private enum SessionEnd { case finished, stopped }

    /// One connection: open, decode until the end, an error or a stop.
    private func session() throws(MediaError) -> SessionEnd {
        let source = currentSource
        setState(.connecting)
        let name = source.name
        guard var format = avformat_alloc_context() else {
            throw MediaError(.outOfMemory, "camera \(name): out of memory opening the stream")
        }
        format.pointee.interrupt_callback.callback = { opaque in
            guard let opaque else { return 0 }
            return Unmanaged<CameraStream>.fromOpaque(opaque).takeUnretainedValue().shouldInterrupt() ? 1 : 0
        }
        format.pointee.interrupt_callback.opaque = Unmanaged.passUnretained(self).toOpaque()

        var options: OpaquePointer? = nil
        defer { av_dict_free(&options) }
        switch source.kind {
        case .rtsp:
            av_dict_set(&options, "rtsp_transport", source.transport.rawValue, 0)
            av_dict_set(&options, "timeout", "\(Int64(source.stallTimeout.seconds * 1_000_000))", 0)
            // Probe for one second, not FFmpeg's five: the probed packets come out in a burst once the stream
            // starts, and a live camera drops all but the newest of them.
            av_dict_set(&options, "analyzeduration", "1000000", 0)
        case .http:
            av_dict_set(&options, "reconnect", "0", 0)
        case .file:
            break
        }
        armDeadline(source.openTimeout)
        var optionalFormat: UnsafeMutablePointer<AVFormatContext>? = format
        let opened = avformat_open_input(&optionalFormat, source.openTarget, nil, &options)
        if opened < 0 {
            if stopping { return .stopped }
            throw openError(opened)
        }
        format = optionalFormat!
        defer {
            var f: UnsafeMutablePointer<AVFormatContext>? = format
            avformat_close_input(&f)
        }
        // An RTSP camera's codecs are known from its SDP already: one that FFmpeg names but cannot decode is refused
        // now, not after probing it. (A codec it does not know at all is only known after the probe: a few RTP
        // payloads, QuickTime's, say their codec in the packets.)
        if source.kind == .rtsp, let codec = Self.undecodableVideoCodec(format, unknownToo: false) {
            throw Self.undecodable(codec, name)
        }
        armDeadline(source.openTimeout)
        let probed = avformat_find_stream_info(format, nil)
        if probed < 0 {
            if stopping { return .stopped }
            // FFmpeg gets no packets for a codec it does not know over RTSP: the probe runs until the open timeout.
            if let codec = Self.undecodableVideoCodec(format) { throw Self.undecodable(codec, name) }
            try check(
                probed, .openFailed, "camera \(name): could not read stream information from \(source.redactedURL)",
                hint: "check that the source sends video")
        }

        var decoderPointer: UnsafePointer<AVCodec>? = nil
        let streamIndex = av_find_best_stream(format, AVMEDIA_TYPE_VIDEO, -1, -1, &decoderPointer, 0)
        guard streamIndex >= 0, let decoderPointer else {
            if let codec = Self.undecodableVideoCodec(format) { throw Self.undecodable(codec, name) }
            throw MediaError(
                .noVideoStream, "camera \(name): \(source.redactedURL) has no video stream Vantage can decode",
                hint: "point the camera at an H.264, H.265 or MJPEG stream")
        }
        let stream = format.pointee.streams[Int(streamIndex)]!
        if !source.decodes { return try record(format, streamIndex: streamIndex, stream: stream) }
        guard let codec = avcodec_alloc_context3(decoderPointer) else {
            throw MediaError(.outOfMemory, "camera \(name): out of memory creating the decoder")
        }
        defer {
            var c: UnsafeMutablePointer<AVCodecContext>? = codec
            avcodec_free_context(&c)
        }
        try check(
            avcodec_parameters_to_context(codec, stream.pointee.codecpar), .unsupportedCodec,
            "camera \(name): cannot configure the decoder")
        // One decoder thread per camera, the camera's own, whatever the number of cameras: measured on the 2-core
        // machine with one 1080p camera (bench/run, docs/benchmarks.md), two frame threads or two slice threads made
        // the people counter no faster (frame threads: slower, and a frame later) while inference shared the cores;
        // and with as many cameras as cores, every core already decodes.
        codec.pointee.thread_count = 1
        try check(
            avcodec_open2(codec, decoderPointer, nil), .unsupportedCodec,
            "camera \(name): cannot open the \(String(cString: decoderPointer.pointee.name)) decoder")

        guard let packet = av_packet_alloc(), let decoded = av_frame_alloc() else {
            throw MediaError(.outOfMemory, "camera \(name): out of memory")
        }
        defer {
            var p: UnsafeMutablePointer<AVPacket>? = packet
            av_packet_free(&p)
            var f: UnsafeMutablePointer<AVFrame>? = decoded
            av_frame_free(&f)
        }
        var pacer = Pacer(timeBase: stream.pointee.time_base)
        mediaTimeBase = stream.pointee.time_base
        mediaOrigin = nil
        packetRing?.beginSegment(parameters: stream.pointee.codecpar, timeBase: stream.pointee.time_base)
        setState(.streaming)
        logStreaming(source)

        while true {
            armDeadline(source.stallTimeout)
            let status = av_read_frame(format, packet)
            if source.kind == .file && status < 0 && !stopping && !isPaused {
                // The end of a file: drain the decoder, then loop or finish. (A network stream that ends is a
                // broken connection: it is reconnected below like any other read error.)
                avcodec_send_packet(codec, nil)
                try drain(codec: codec, into: decoded, pacer: &pacer)
                if stopping { return .stopped }
                guard source.loop else { return .finished }
                armDeadline(source.openTimeout)
                try check(
                    av_seek_frame(format, -1, 0, AVSEEK_FLAG_BACKWARD), .readFailed,
                    "camera \(name): cannot seek back to the start to loop")
                avcodec_flush_buffers(codec)
                pacer.restart()
                mediaOrigin = nil
                // The timestamps start again: clips must not run into the new pass unrebased.
                packetRing?.beginSegment(parameters: stream.pointee.codecpar, timeBase: stream.pointee.time_base)
                continue
            }
            if status < 0 {
                if stopping { return .stopped }
                if interruptedByDeadline.load(ordering: .relaxed) {
                    counters.withLock { $0.stalls += 1 }
                    throw MediaError(
                        .stalled,
                        "camera \(name): no video for \(source.stallTimeout.seconds) s although connected",
                        hint: "restarting the stream")
                }
                throw MediaError(
                    .readFailed,
                    status == vantage_averror_eof()
                        ? "camera \(name): the camera closed the stream" : "camera \(name): the stream broke",
                    hint: "reconnecting", cause: status == vantage_averror_eof() ? nil : ffmpegErrorText(status))
            }
            if packet.pointee.stream_index != streamIndex {
                av_packet_unref(packet)
                continue
            }
            counters.withLock { $0.received += 1 }
            let sent = avcodec_send_packet(codec, packet)
            let rejected = sent < 0 && sent != vantage_averror_eagain()
            if rejected {
                logger.debug("decoder rejected a packet", metadata: ["error": "\(ffmpegErrorText(sent))"])
            } else {
                try drain(codec: codec, into: decoded, pacer: &pacer)
            }
            if let packetRing {
                // The decoder took its own reference; the ring takes the demuxer's (no copy, no allocation), stamped
                // after the drain so that, for a paced file, it carries the time of the frame it decoded to.
                packetRing.append(moving: packet, wallMicros: wallClockMicros())
            } else {
                av_packet_unref(packet)
            }
            if rejected { continue }
            if stopping || isPaused { return .stopped }
        }
    }

    /// A stream read but not decoded (`source.decodes` false): its video packets go into the packet ring for clips.
    /// Stalls and breaks are handled as for a decoded stream; `received` counts the packets.
    private func record(
        _ format: UnsafeMutablePointer<AVFormatContext>, streamIndex: Int32, stream: UnsafeMutablePointer<AVStream>
    ) throws(MediaError) -> SessionEnd {
        let name = source.name
        guard let packet = av_packet_alloc() else { throw MediaError(.outOfMemory, "camera \(name): out of memory") }
        defer {
            var p: UnsafeMutablePointer<AVPacket>? = packet
            av_packet_free(&p)
        }
        packetRing?.beginSegment(parameters: stream.pointee.codecpar, timeBase: stream.pointee.time_base)
        setState(.streaming)
        logStreaming(source)
        while true {
            armDeadline(source.stallTimeout)
            let status = av_read_frame(format, packet)
            if status < 0 {
                if stopping || isPaused { return .stopped }
                // A file is read once, unpaced (main streams are meant for cameras; files stand in for them in tests).
                if source.kind == .file { return .finished }
                if interruptedByDeadline.load(ordering: .relaxed) {
                    counters.withLock { $0.stalls += 1 }
                    throw MediaError(
                        .stalled, "camera \(name): no video for \(source.stallTimeout.seconds) s although connected",
                        hint: "restarting the stream")
                }
                throw MediaError(
                    .readFailed, "camera \(name): the stream broke", hint: "reconnecting",
                    cause: ffmpegErrorText(status))
            }
            guard packet.pointee.stream_index == streamIndex else {
                av_packet_unref(packet)
                continue
            }
            counters.withLock { $0.received += 1 }
            if let packetRing {
                packetRing.append(moving: packet, wallMicros: wallClockMicros())
            } else {
                av_packet_unref(packet)
            }
            if stopping || isPaused { return .stopped }
        }
    }

    /// When the source has video but no video stream this box can decode: the first one's codec, worded for a
    /// user ("H.265/HEVC", "VP9", or "video in a codec FFmpeg does not know" for a name FFmpeg has never heard of,
    /// such as AV1 over RTSP in FFmpeg 5.1). Nil when a video stream can be decoded, or there is no video at all.
    /// `unknownToo: false` looks only at codecs FFmpeg knows.
    private static func undecodableVideoCodec(
        _ format: UnsafeMutablePointer<AVFormatContext>, unknownToo: Bool = true
    ) -> String? {
        var first: AVCodecID?
        for index in 0..<Int(format.pointee.nb_streams) {
            guard let parameters = format.pointee.streams[index]?.pointee.codecpar,
                parameters.pointee.codec_type == AVMEDIA_TYPE_VIDEO
            else { continue }
            let id = parameters.pointee.codec_id
            if id == AV_CODEC_ID_NONE ? !unknownToo : avcodec_find_decoder(id) != nil { return nil }
            if first == nil { first = id }
        }
        guard let id = first else { return nil }
        switch id {
        case AV_CODEC_ID_NONE: return "video in a codec FFmpeg does not know"
        case AV_CODEC_ID_H264: return "H.264"
        case AV_CODEC_ID_HEVC: return "H.265/HEVC"
        case AV_CODEC_ID_MJPEG: return "MJPEG"
        default: return String(cString: avcodec_get_name(id)).uppercased()
        }
    }

    private static func undecodable(_ codec: String, _ name: String) -> MediaError {
        MediaError(
            .unsupportedCodec, "camera \(name): the camera sends \(codec), which this box cannot decode",
            hint: "set the camera's stream to H.264 (in the camera's own settings); retrying")
    }

    private func openError(_ status: Int32) -> MediaError {
        let name = source.name
        let target = source.redactedURL
        if interruptedByDeadline.load(ordering: .relaxed) {
            return MediaError(
                .openFailed,
                "camera \(name): \(target) did not answer within \(source.openTimeout.seconds) s",
                hint: "check the address and that the camera is on the network; retrying")
        }
        if source.kind == .rtsp && status == vantage_averror_invaliddata() {
            // Something answered on the port, but not in RTSP: another service, a camera's web page, a wrong port.
            return MediaError(
                .openFailed, "camera \(name): \(target) answered, but not in RTSP",
                hint: "is this an RTSP camera? (check the URL's port and path); retrying",
                cause: ffmpegErrorText(status))
        }
        let hint: String
        switch source.kind {
        case .file: hint = "check that the file exists and is a video"
        case .rtsp: hint = "check the host, port, path and credentials of the camera; retrying"
        case .http: hint = "check the URL serves an MJPEG stream; retrying"
        }
        return MediaError(
            .openFailed, "camera \(name): cannot open \(target)", hint: hint, cause: ffmpegErrorText(status))
    }

    private func drain(
        codec: UnsafeMutablePointer<AVCodecContext>, into decoded: UnsafeMutablePointer<AVFrame>,
        pacer: inout Pacer
    ) throws(MediaError) {
        while !stopping {
            let status = avcodec_receive_frame(codec, decoded)
            if status == vantage_averror_eagain() || status == vantage_averror_eof() { return }
            if status < 0 {
                throw MediaError(
                    .decodeFailed, "camera \(source.name): the decoder failed", hint: "restarting the stream",
                    cause: ffmpegErrorText(status))
            }
            let pts = decoded.pointee.best_effort_timestamp
            if source.kind == .file && source.realtime, let due = pacer.due(for: pts) {
                sleep(untilNanos: due) { stopping || isPaused }
            }
            deliver(decoded)
        }
    }

    /// Moves a decoded frame into a free slot and publishes it; its BGR pixels are made when first used.
    /// Allocates nothing once warm.
    private func deliver(_ decoded: UnsafeMutablePointer<AVFrame>) {
        defer { av_frame_unref(decoded) }
        costs.setCameraThread(nanos: threadCPUNanos() &- threadCPUStart)
        let (width, height) = fit(Int(decoded.pointee.width), Int(decoded.pointee.height))
        let stride = FramePool.alignedStride(width: width)
        guard stride * height <= pool.storage.slotCapacity else {
            // `fit` keeps frames within the slots' size; a frame that still does not fit is a bug, not user error.
            counters.withLock {
                $0.decoded += 1
                $0.lastError = "camera \(source.name): a \(width)x\(height) frame does not fit the frame buffers"
            }
            return
        }
        guard let slot = pool.beginWrite(wait: source.waitsForConsumer, cancelled: { stopping }) else {
            counters.withLock {
                $0.decoded += 1
                if !stopping { $0.droppedNoBuffer += 1 }
            }
            return
        }
        let target = pool.frames[slot]
        av_frame_unref(target)
        av_frame_move_ref(target, decoded)
        sequence += 1
        let info = FrameInfo(
            sequence: sequence, slot: slot, width: width, height: height, stride: stride,
            timestampMicros: frameTimestamp(target), decodedAtNanos: monotonicNanos())
        let dropped = pool.commitWrite(info)
        counters.withLock {  // one lock per frame for all its counters
            $0.decoded += 1
            if dropped { $0.droppedSuperseded += 1 }
            $0.width = width
            $0.height = height
        }
        notifyObservers()
        if eagerBGR.load(ordering: .relaxed) {
            let started = threadCPUNanos()
            _ = pool.ensureBGR(slot: slot)
            costs.addColour(nanos: threadCPUNanos() &- started, onCameraThread: true)
        }
    }

    /// A frame's time: the wall clock, except for a file read as fast as possible, whose frames are spaced by their
    /// presentation times from the wall clock of its first frame (so that trackers and dwell times see the video's
    /// own pace, not the decoder's). Never goes backwards (a loop continues from the last frame).
    private func frameTimestamp(_ frame: UnsafeMutablePointer<AVFrame>) -> Int64 {
        let now = wallClockMicros()
        let pts = frame.pointee.best_effort_timestamp
        guard source.waitsForConsumer, pts != Int64.min, mediaTimeBase.num > 0, mediaTimeBase.den > 0 else {
            return now
        }
        if mediaOrigin == nil { mediaOrigin = (max(now, lastFrameMicros + 1), pts) }
        let origin = mediaOrigin!
        let offset = Double(pts - origin.pts) * 1e6 * Double(mediaTimeBase.num) / Double(mediaTimeBase.den)
        lastFrameMicros = max(origin.wall + Int64(offset), lastFrameMicros + 1)
        return lastFrameMicros
    }

    /// The largest size within the source's maximum that keeps the aspect ratio (even numbers, for YUV).
    private func fit(_ width: Int, _ height: Int) -> (Int, Int) {
        guard width > source.maxWidth || height > source.maxHeight else { return (width, height) }
        let scale = min(Double(source.maxWidth) / Double(width), Double(source.maxHeight) / Double(height))
        return (Int(Double(width) * scale) & ~1, Int(Double(height) * scale) & ~1)
    }
}

/// Paces a file at its frame rate: says when a frame's presentation time comes on the monotonic clock (the camera
/// thread sleeps until then).
struct Pacer {
    let timeBase: AVRational
    var startNanos: UInt64 = 0
    var firstPTS: Int64 = Int64.min

    init(timeBase: AVRational) { self.timeBase = timeBase }

    mutating func restart() { firstPTS = Int64.min }

    /// The monotonic time (ns) at which the frame with presentation time `pts` is due, or nil when it is due now
    /// (the first frame, a timestamp going back, or none).
    mutating func due(for pts: Int64) -> UInt64? {
        guard pts != vantage_av_nopts_value() else { return nil }
        if firstPTS == Int64.min || pts < firstPTS {
            firstPTS = pts
            startNanos = monotonicNanos()
            return nil
        }
        let offset = Double(pts - firstPTS) * Double(timeBase.num) / Double(timeBase.den)
        return startNanos + UInt64(offset * 1e9)
    }
}

/// Monotonic time in nanoseconds, for latency and deadlines.
public func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Wall-clock time in microseconds since 1970.
public func wallClockMicros() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000
}
