import Foundation
import VantageCore

/// Where a camera's frames come from, and how to read them.
public struct StreamSource: Sendable, Equatable {
    /// The stream's name: the camera node (Panorama's `stream_id`). Used in logs and errors instead of the URL.
    public var name: String
    /// `rtsp://`, `rtsps://`, `http(s)://` (MJPEG), `file:` URL or a plain path. May carry `user:password@`.
    public var url: String
    /// Credentials given apart from the URL; they are put into the URL only when opening it.
    public var username: String?
    public var password: String?
    /// RTSP transport. TCP by default: it survives NAT and lossy Wi-Fi.
    public var transport: Transport = .tcp
    /// Files only: play at the file's frame rate (`true`), or as fast as the consumer takes frames (`false`).
    public var realtime: Bool = false
    /// Files only: start again at the end instead of ending.
    public var loop: Bool = false
    /// How long a connected stream may go without a packet before it is declared stalled and restarted.
    public var stallTimeout: Duration = .seconds(5)
    /// How long opening the stream may take.
    public var openTimeout: Duration = .seconds(10)
    /// Reconnect backoff: the first delay, doubled each failure up to `reconnectMaxDelay`, with ±20% jitter.
    public var reconnectInitialDelay: Duration = .milliseconds(250)
    public var reconnectMaxDelay: Duration = .seconds(5)
    /// While a camera is unreachable, the log says so at most this often (after its first failure, with the reason).
    public var outageLogInterval: Duration = .seconds(600)
    /// Frames larger than this are scaled down to fit (Panorama delivered at most about 1080p).
    public var maxWidth: Int = 1920
    public var maxHeight: Int = 1080
    /// Seconds of the newest compressed video kept per camera for event clips (the pre-roll reaches back at most
    /// this far); 0 keeps none and costs nothing. See `CameraStream.writeClip(from:to:into:)`.
    public var packetRingSeconds: Double = 30
    /// The most compressed video the packet ring keeps, in bytes; the oldest packets are dropped first.
    /// 64 MiB holds 30 s of a 16 Mbit/s stream.
    public var packetRingMaxBytes: Int = 64 << 20
    /// Decode the video (`true`), or only read its packets into the packet ring (`false`): a camera's main stream
    /// when detection runs on its sub-stream costs the network and the ring, no decoding.
    public var decodes = true

    public enum Transport: String, Sendable, Codable { case tcp, udp }

    public init(name: String, url: String, username: String? = nil, password: String? = nil) {
        self.name = name
        self.url = url
        self.username = username
        self.password = password
    }

    /// What kind of source the URL names.
    public enum Kind: Sendable { case rtsp, http, file }

    public var kind: Kind {
        // The camera's loop asks for every frame: the scheme is compared in place, without a lowercased copy of
        // the URL (two allocations a frame, found with `perf probe` on malloc).
        if Self.scheme(of: url, is: "rtsp://") || Self.scheme(of: url, is: "rtsps://") { return .rtsp }
        if Self.scheme(of: url, is: "http://") || Self.scheme(of: url, is: "https://") { return .http }
        return .file
    }

    /// Whether `url` starts with `prefix` (lowercase ASCII), in any case.
    private static func scheme(of url: String, is prefix: StaticString) -> Bool {
        var bytes = url.utf8.makeIterator()
        let expected = UnsafeBufferPointer(start: prefix.utf8Start, count: prefix.utf8CodeUnitCount)
        for wanted in expected {
            guard let byte = bytes.next() else { return false }
            if (byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte) != wanted { return false }
        }
        return true
    }

    /// Live sources drop old frames when the consumer is slow; files read as fast as possible wait for it instead.
    public var waitsForConsumer: Bool { kind == .file && !realtime }

    /// How many frames ahead of its consumer a file read as fast as possible is decoded (3; the runtime gives a
    /// single camera 6, and 12 when its inferences run ahead on every core).
    public var framesAhead = 3

    /// Decoded frames that may wait for a consumer: a file read as fast as possible is decoded up to `framesAhead`
    /// frames ahead (the decoder fills the gaps where inference and the application leave a core idle); a live
    /// source keeps only its newest frame (a consumer never works on an old one).
    public var waitingFrames: Int { waitsForConsumer ? max(1, framesAhead) : 1 }

    /// Frame slots, beyond the ones consumers hold, that `waitingFrames` needs.
    public var extraSlots: Int { waitingFrames - 1 }

    /// The URL as it may appear in logs: any `user:password@` replaced by `***@`.
    public var redactedURL: String { Self.redact(url) }

    /// Replaces the credentials of a URL with `***`: its `user:password@`, and the values of credentials in its
    /// query string (`?user=…&pwd=…`).
    public static func redact(_ url: String) -> String {
        guard let scheme = url.range(of: "://") else { return redactQuery(url) }
        let rest = url[scheme.upperBound...]
        let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
        guard let at = rest[..<authorityEnd].lastIndex(of: "@") else { return redactQuery(url) }
        return redactQuery(String(url[..<scheme.upperBound]) + "***" + String(rest[at...]))
    }

    /// Query parameters whose values are credentials: the names of VantageApp's `CameraURLQuery.credentialNames`
    /// (the control plane stores those encrypted), repeated here because this module depends on no other.
    static let queryCredentialNames: Set<String> = [
        "user", "username", "usr", "login", "loginuse", "account", "pwd", "pass", "passwd", "password", "psw",
        "loginpas", "token", "access_token", "auth", "authorization", "apikey", "api_key", "key", "secret", "sig",
        "signature",
    ]

    private static func redactQuery(_ url: String) -> String {
        guard let question = url.firstIndex(of: "?") else { return url }
        let rest = url[url.index(after: question)...]
        let end = rest.firstIndex(of: "#") ?? rest.endIndex
        let items = rest[..<end].split(separator: "&", omittingEmptySubsequences: false).map { item -> Substring in
            guard let equals = item.firstIndex(of: "="),
                queryCredentialNames.contains((item[..<equals].removingPercentEncoding ?? "").lowercased()),
                item.index(after: equals) < item.endIndex
            else { return item }
            return item[...equals] + "***"
        }
        return String(url[...question]) + items.joined(separator: "&") + String(rest[end...])
    }

    /// The string FFmpeg opens: a path for files, the URL with separate credentials folded in for networks.
    var openTarget: String {
        if kind == .file {
            if url.hasPrefix("file://") { return URL(string: url)?.path ?? String(url.dropFirst(7)) }
            if url.hasPrefix("file:") { return String(url.dropFirst(5)) }
            return url
        }
        guard let username, let scheme = url.range(of: "://") else { return url }
        let user = username.addingPercentEncoding(withAllowedCharacters: .urlUserAllowed) ?? username
        let pass = (password ?? "").addingPercentEncoding(withAllowedCharacters: .urlPasswordAllowed) ?? ""
        var rest = String(url[scheme.upperBound...])
        let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
        if let at = rest[..<authorityEnd].lastIndex(of: "@") { rest = String(rest[rest.index(after: at)...]) }
        return String(url[..<scheme.upperBound]) + "\(user):\(pass)@" + rest
    }
}
