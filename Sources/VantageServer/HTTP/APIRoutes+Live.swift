import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import VantageAPI

// The live view relayed through the control plane (``LiveRelay``): watchers GET an instance's frames, its device
// POSTs them while someone watches.
extension APIRoutes {
    /// How long a watcher waits for a frame before the stream ends (the device is offline or the instance stopped):
    /// the console then says so and offers to try again.
    static let liveFrameTimeout: Duration = .seconds(15)

    static let live: [APIOperation] = [
        APIOperation(
            method: .get, path: "\(base)/instances/{id}/live", id: "watchInstanceLive", tag: "instances",
            summary:
                "An instance's annotated live view as an MJPEG stream (multipart/x-mixed-replace, for an <img>): "
                + "its device relays frames while someone watches; the stream ends after 15 s without a frame",
            access: .role(.viewer),
            query: [
                .init(
                    name: "stream", schema: .text, description: "one camera stream (default: any, the newest frame)"),
                .init(
                    name: "frames", schema: .integer(minimum: 1, maximum: 1_000_000),
                    description: "end the stream after this many frames (default: while the client reads)"),
            ],
            status: 200, content: .binary("multipart/x-mixed-replace; boundary=frame")
        ) { call in
            let instance = try await liveInstance(call)
            let watch = call.store.live.watch(instance.id, device: instance.deviceId, changes: call.store.changes)
            let stream = call.query("stream")
            let limit = try call.queryInt("frames", default: Int.max)
            let interval = Duration.seconds(1 / call.store.live.framesPerSecond) / 2
            let body = ResponseBody { writer in
                defer { watch.end() }
                var sequence: UInt64 = 0
                var sent = 0
                while sent < limit,
                    let frame = await watch.next(stream: stream, after: sequence, timeout: liveFrameTimeout)
                {
                    sent += 1
                    sequence = frame.sequence
                    var part = ByteBuffer(
                        string:
                            "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: \(frame.jpeg.readableBytes)\r\n"
                            + "X-Stream: \(frame.stream)\r\n"
                            + (frame.encodedAt.map { "X-Frame-Time: \(String(format: "%.3f", $0))\r\n" } ?? "")
                            + "\r\n")
                    part.writeImmutableBuffer(frame.jpeg)
                    part.writeString("\r\n")
                    try await writer.write(part)
                    // At most twice the relay's rate (frames of two streams may come together).
                    try await Task.sleep(for: interval)
                }
                try await writer.finish(nil)
            }
            return .stream(body, contentType: "multipart/x-mixed-replace; boundary=frame")
        },
        APIOperation(
            method: .get, path: "\(base)/instances/{id}/live/frame", id: "getInstanceLiveFrame", tag: "instances",
            summary:
                "One current annotated frame of a running instance (JPEG), asked of its device; 504 when none comes "
                + "in 10 s",
            access: .role(.viewer),
            query: [
                .init(name: "stream", schema: .text, description: "one camera stream (default: any)"),
                .init(
                    name: "t", schema: .text,
                    description: "ignored: lets a page that refreshes the image ask for a new URL each time"),
            ],
            status: 200, content: .binary("image/jpeg")
        ) { call in
            let instance = try await liveInstance(call)
            let watch = call.store.live.watch(instance.id, device: instance.deviceId, changes: call.store.changes)
            defer { watch.end() }
            guard let frame = await watch.next(stream: call.query("stream"), after: 0, timeout: .seconds(10)) else {
                throw APIError(
                    504,
                    "no frame came from device \(instance.deviceId) in 10 s: check that the device is online and "
                        + "that the instance runs (its page shows both)")
            }
            return .bytes(Array(buffer: frame.jpeg), contentType: "image/jpeg")
        },
        APIOperation(
            method: .get, path: "\(base)/instances/{id}/live/streams", id: "listInstanceLiveStreams",
            tag: "instances",
            summary: "The camera streams of an instance that sent a frame since someone started watching it",
            access: .role(.viewer), status: 200, content: .json(.ref("LiveStreams"))
        ) { call in
            let instance = try await call.store.instance(call.parameter("id"))
            return .json(
                LiveStreams(
                    streams: call.store.live.streams(of: instance.id),
                    framesPerSecond: call.store.live.framesPerSecond))
        },
        APIOperation(
            method: .post, path: "\(base)/devices/{id}/live/{instanceId}", id: "sendLiveFrame", tag: "device-facing",
            summary:
                "A device sends one annotated JPEG frame of an instance someone watches (410 once nobody does)",
            access: .device,
            query: [
                // Required, but checked in the handler: another device's call is refused (403) before its query is read.
                .init(
                    name: "stream", schema: .string(pattern: "^[A-Za-z0-9_.-]{1,200}$"),
                    description: "the camera stream the frame is of (required)")
            ],
            body: .binary("image/jpeg"), status: 204, content: .none, audited: false
        ) { call in
            let device = call.parameter("id")
            try call.requireDevice(device)
            guard let stream = call.query("stream"), !stream.isEmpty else {
                throw APIError.invalid("query parameter stream is required: the camera stream the frame is of")
            }
            let instance = call.parameter("instanceId")
            let jpeg: ByteBuffer
            do {
                jpeg = try await call.request.body.collect(upTo: maxLiveFrameBytes)
            } catch {
                throw APIError(413, "a live frame is at most \(maxLiveFrameBytes >> 20) MiB")
            }
            // A JPEG starts with FF D8: anything else would reach the watchers' browsers as an image.
            guard jpeg.readableBytes > 2, jpeg.getBytes(at: jpeg.readerIndex, length: 2) == [0xFF, 0xD8] else {
                throw APIError.invalid("a live frame must be a JPEG image")
            }
            // Only the instance's own device may send its frames (the relay knows it from the watchers' request,
            // so a frame costs no database query).
            let time = call.request.headers[HTTPField.Name("X-Frame-Time")!].flatMap(Double.init)
            switch call.store.live.publish(
                instance, device: device, stream: stream, jpeg: jpeg, encodedAt: time)
            {
            case .published: return .empty
            case .notWatched: throw notWatched(instance)
            case .wrongDevice: throw APIError(403, "instance \(instance) does not run on device \(device)")
            }
        },
        APIOperation(
            method: .post, path: "\(base)/instances/{id}/nodes/{node}/{signal}", id: "signalInstanceCamera",
            tag: "instances",
            summary:
                "Pause or resume one camera node of a running instance (Panorama's PAUSE/RESUME), through its device; "
                + "answers when the device did it (504 when it did not answer in 15 s)",
            access: .role(.operator), status: 200, content: .json(.ref("CameraSignalResult"))
        ) { call in
            let instance = try await liveInstance(call)
            let signal = call.parameter("signal")
            guard signal == "pause" || signal == "resume" else {
                throw APIError.invalid("the signal must be pause or resume, not \"\(signal.prefix(40))\"")
            }
            let node = call.parameter("node")
            guard instance.cameras[node] != nil else {
                throw APIError.notFound(
                    "camera node",
                    "\(node.prefix(80)) of instance \(instance.name) (its camera nodes: "
                        + "\(instance.cameras.keys.sorted().joined(separator: ", ")))")
            }
            let request = CameraSignal(
                id: Identifiers.make("sig"), instanceId: instance.id, node: node, signal: signal)
            guard
                let result = await call.store.live.send(
                    request, device: instance.deviceId, changes: call.store.changes, timeout: signalTimeout)
            else {
                throw APIError(
                    504,
                    "device \(instance.deviceId) did not confirm within \(signalTimeout.components.seconds) s: it "
                        + "may be offline; nothing is left pending (try again when it is online)")
            }
            guard result.ok else { throw APIError(409, result.message) }
            return .json(result)
        },
        APIOperation(
            method: .post, path: "\(base)/devices/{id}/signals/{signalId}", id: "finishCameraSignal",
            tag: "device-facing", summary: "A device says how it carried out a camera signal of its desired state",
            access: .device, body: .json("CameraSignalResult", fields: CameraSignalResult.fields), status: 204,
            content: .none, audited: false
        ) { call in
            let device = call.parameter("id")
            try call.requireDevice(device)
            let result = try await call.decode(CameraSignalResult.self)
            guard call.store.live.finish(call.parameter("signalId"), device: device, result: result) else {
                throw APIError.notFound("signal", "\(call.parameter("signalId").prefix(40)) waiting for this device")
            }
            return .empty
        },
    ]

    /// How long a pause or resume waits for the device.
    static let signalTimeout: Duration = .seconds(15)

    /// The largest frame a device may send: a 4K JPEG at quality 75 is about 1.5 MiB.
    static let maxLiveFrameBytes = 4 << 20

    static func notWatched(_ instance: String) -> APIError {
        APIError(410, "nobody watches instance \(instance) live now: stop sending its frames")
    }

    /// The instance a watcher asks for, if it can be watched: one that should run.
    static func liveInstance(_ call: APICall) async throws -> ApplicationInstance {
        let instance = try await call.store.instance(call.parameter("id"))
        guard instance.desiredState == .running else {
            throw APIError(
                409,
                "instance \(instance.name) is \(instance.desiredState.rawValue.lowercased()): start it to watch it live"
            )
        }
        return instance
    }
}

/// The camera streams an instance relays live.
struct LiveStreams: Codable, Sendable {
    var streams: [String]
    var framesPerSecond: Double
}
