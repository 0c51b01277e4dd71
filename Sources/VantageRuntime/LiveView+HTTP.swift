import Foundation
import HTTPTypes
public import Hummingbird
public import Logging
import ServiceLifecycle
import VantageApp
import VantageCore
public import VantageListeners

/// The live view's HTTP server, as a Hummingbird application the runtime adds to its
/// `ServiceGroup` (an `ApplicationProtocol` is a swift-service-lifecycle `Service`).
///
/// | route | answer |
/// |---|---|
/// | `GET /` | an HTML page with every stream's live image and a status table refreshed every 2 s |
/// | `GET /streams/<name>.mjpeg` | the annotated stream as `multipart/x-mixed-replace` JPEGs |
/// | `GET /streams/<name>.jpg` | the latest annotated frame; 404 for an unknown stream, 503 before its first frame |
/// | `GET /streams` | `{"streams": [...]}` |
/// | `GET /status` | the JSON that `statusProvider` returns |
/// | `GET /healthz` | `ok` |
///
/// Live streams end when the client goes away, when the service group shuts down gracefully, or
/// on ``LiveView/shutdown()``.
///
/// Every request must name an allowed host in its `Host` header (see ``LiveViewAccess``), so that a web page
/// cannot reach the view through DNS rebinding; a state-changing request (`POST`) from a browser must come from
/// the view's own origin.
///
/// - Parameters:
///   - host: Address to listen on; `127.0.0.1` keeps the view on this machine, `0.0.0.0` shows it
///     to the network.
///   - port: Port to listen on; 0 picks a free one, which `onServerRunning` receives.
///   - allowedHosts: Names (besides IP addresses, `localhost`, `host` and this machine's name) the view may be
///     reached by (`vantage run --http-allowed-host`), e.g. the name a reverse proxy forwards.
///   - limits: The connections' idle timeout and cap (by default 30 s and 256; a live stream being watched is
///     never cut).
///   - statusProvider: Returns the JSON document for `/status` (UTF-8 bytes).
///   - onServerRunning: Called with the bound port once the server accepts connections, e.g. to
///     print `live view: http://127.0.0.1:PORT/`.
public func makeLiveViewApplication(
    liveView: LiveView,
    host: String = "127.0.0.1",
    port: Int = 7450,
    allowedHosts: [String] = [],
    limits: ListenerLimits = LiveViewAccess.listenerLimits,
    statusProvider: @escaping @Sendable () async -> [UInt8],
    signalHandler: NodeSignalHandler? = nil,
    onServerRunning: @escaping @Sendable (_ port: Int) async -> Void = { _ in },
    logger: Logger
) -> some ApplicationProtocol {
    let router = Router()
    router.add(middleware: LiveViewAccess(boundHost: host, allowedHosts: allowedHosts))
    LiveViewRoutes(liveView: liveView, statusProvider: statusProvider, signalHandler: signalHandler).add(to: router)
    let connections = ConnectionLimiter(limits, name: "live view", logger: logger)
    return Application(
        router: router,
        server: connections.http1(),
        configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "Vantage"),
        onServerRunning: { channel in
            await onServerRunning(channel.localAddress?.port ?? port)
        },
        logger: logger
    )
}

/// Who may use the live view: a request must name an allowed host (`Host`), and a state-changing one sent by a
/// browser must come from the view's own origin (`Origin`, else `Sec-Fetch-Site`).
///
/// Allowed hosts: any IP address (DNS rebinding needs a name), `localhost` and `*.localhost`, the address the view
/// listens on, this machine's host name, and the names given (`--http-allowed-host`). A web page on another site
/// can therefore neither read the view through a name of its own that resolves here, nor pause a camera.
public struct LiveViewAccess: RouterMiddleware {
    public typealias Context = BasicRequestContext

    /// The live view's connections: idle ones closed after 30 s, at most 256 open.
    public static let listenerLimits = ListenerLimits(idleTimeout: .seconds(30), maxConnections: 256)

    let names: Set<String>

    public init(boundHost: String, allowedHosts: [String]) {
        var names: Set<String> = ["localhost"]
        for name in [boundHost, ProcessInfo.processInfo.hostName] + allowedHosts {
            let normalized = Self.normalize(name)
            if !normalized.isEmpty { names.insert(normalized) }
        }
        self.names = names
    }

    public func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        if let refusal = refusal(method: request.method, headers: request.headers, authority: request.head.authority) {
            return Response(
                status: .forbidden,
                headers: [.contentType: "application/json", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(string: "{\"error\":\(jsonString(refusal))}")))
        }
        return try await next(request, context)
    }

    /// Why a request is refused, or nil when it may go on.
    func refusal(method: HTTPRequest.Method, headers: HTTPFields, authority: String?) -> String? {
        // HTTP/1.0 without Host: no browser sends that, so no web page is behind it.
        guard let authority, !authority.isEmpty else { return nil }
        let host = Self.hostPart(of: authority)
        guard isAllowed(host) else {
            return "the live view is not served under the name '\(host.prefix(64))' (a web page may be reaching it "
                + "through DNS rebinding); open it by IP address or localhost, or allow the name with "
                + "--http-allowed-host NAME"
        }
        guard method != .get, method != .head, method != .options else { return nil }
        if let origin = headers[.origin] {
            guard let originAuthority = Self.authority(ofOrigin: origin),
                Self.sameAuthority(originAuthority, authority)
            else {
                return "cross-origin \(method) refused: a page from \(origin.prefix(64)) may not change the live view; "
                    + "send the request from the view's own page, or without a browser (curl)"
            }
        } else if let site = headers[.secFetchSite], site != "same-origin", site != "none" {
            return "cross-site \(method) refused: a page on another site may not change the live view"
        }
        return nil
    }

    func isAllowed(_ host: String) -> Bool {
        let name = Self.normalize(host)
        if names.contains(name) || name.hasSuffix(".localhost") { return true }
        return Self.isIPAddress(name)
    }

    /// Lower case, without brackets or a trailing dot.
    static func normalize(_ host: String) -> String {
        var name = host.lowercased()
        if name.hasPrefix("["), name.hasSuffix("]") { name = String(name.dropFirst().dropLast()) }
        while name.hasSuffix(".") { name.removeLast() }
        return name
    }

    /// `example.com` of `example.com:7450`, `::1` of `[::1]:7450`.
    static func hostPart(of authority: String) -> String {
        if authority.hasPrefix("["), let end = authority.firstIndex(of: "]") {
            return String(authority[authority.index(after: authority.startIndex)..<end])
        }
        if let colon = authority.lastIndex(of: ":"), authority.firstIndex(of: ":") == colon {
            return String(authority[..<colon])
        }
        return authority
    }

    static func isIPAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }

    /// `host:port` of an `Origin` (`http://host:port`), without the scheme's default port; nil for `null` or junk.
    static func authority(ofOrigin origin: String) -> String? {
        guard let url = URL(string: origin), let scheme = url.scheme?.lowercased(), let host = url.host else {
            return nil
        }
        let bracketed = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        let defaultPort = scheme == "https" ? 443 : 80
        guard let port = url.port, port != defaultPort else { return bracketed.lowercased() }
        return "\(bracketed.lowercased()):\(port)"
    }

    /// Whether two authorities name the same host and port (a missing port is the default one, 80).
    static func sameAuthority(_ a: String, _ b: String) -> Bool {
        func canonical(_ text: String) -> String {
            let lowered = text.lowercased()
            return lowered.hasSuffix(":80") ? String(lowered.dropLast(3)) : lowered
        }
        return canonical(a) == canonical(b)
    }
}

/// Pauses or resumes a camera node (`signal` is `pause` or `resume`); returns the JSON answer, or throws a
/// `RuntimeError` worded for the user (unknown node or signal).
public typealias NodeSignalHandler = @Sendable (_ node: String, _ signal: String) throws -> String

/// The live view's routes.
struct LiveViewRoutes: Sendable {
    static let boundary = "vantage-frame"

    let liveView: LiveView
    let statusProvider: @Sendable () async -> [UInt8]
    var signalHandler: NodeSignalHandler?

    func add(to router: Router<BasicRequestContext>) {
        router.get("/") { _, _ in page() }
        router.get("/healthz") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/plain; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: "ok\n"))
            )
        }
        router.get("/status") { _, _ in
            let json = await statusProvider()
            return Response(
                status: .ok,
                headers: [.contentType: "application/json", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(bytes: json))
            )
        }
        // Panorama's SignalApplicationInstanceNodeInstances, for a runtime running standalone:
        // POST /nodes/camera_node/resume (or /pause).
        router.post("/nodes/:node/:signal") { _, context in
            let node = context.parameters.get("node") ?? ""
            let signal = context.parameters.get("signal") ?? ""
            guard let signalHandler else {
                return json(.notFound, "{\"error\":\"signals are not served here\"}")
            }
            do {
                return json(.ok, try signalHandler(node, signal))
            } catch {
                return json(.notFound, "{\"error\":\(jsonString("\(error)"))}")
            }
        }
        router.get("/streams") { _, _ in
            json(.ok, "{\"streams\":\(jsonArray(liveView.streamNames))}")
        }
        router.get("/streams/:file") { _, context in
            let file = context.parameters.get("file") ?? ""
            guard let dot = file.lastIndex(of: ".") else { return unknownStream(file) }
            let name = String(file[..<dot])
            let kind = file[file.index(after: dot)...]
            guard let stream = liveView.stream(named: name, creating: false) else { return unknownStream(name) }
            switch kind {
            case "jpg", "jpeg": return await snapshot(stream)
            case "mjpeg": return mjpeg(stream)
            default: return unknownStream(file)
            }
        }
    }

    // MARK: Streams

    private func snapshot(_ stream: LiveStream) async -> Response {
        guard let frame = await liveView.snapshot(of: stream) else {
            var response = json(
                .serviceUnavailable,
                "{\"error\":\(jsonString("no frame yet from stream '\(stream.name)': its camera delivered none within \(liveView.configuration.snapshotTimeout); check the camera or try again in a moment"))}"
            )
            response.headers[.retryAfter] = "1"
            return response
        }
        return Response(
            status: .ok,
            headers: [.contentType: "image/jpeg", .cacheControl: "no-store"],
            body: .init(byteBuffer: frame.jpeg)
        )
    }

    private func mjpeg(_ stream: LiveStream) -> Response {
        guard !liveView.isShuttingDown else {
            return json(.serviceUnavailable, "{\"error\":\"the live view is shutting down\"}")
        }
        let liveView = self.liveView
        let body = ResponseBody { writer in
            let viewer = liveView.beginViewing(stream)
            defer { stream.endViewing(viewer) }
            try await withGracefulShutdownHandler {
                var sequence: UInt64 = 0
                var first = true
                while let frame = await stream.nextFrame(after: sequence, viewer: viewer) {
                    sequence = frame.sequence
                    // Each part ends at the CRLF that starts the next boundary.
                    let head =
                        (first ? "" : "\r\n") + "--\(Self.boundary)\r\nContent-Type: image/jpeg\r\n"
                        + "Content-Length: \(frame.jpeg.readableBytes)\r\n\r\n"
                    first = false
                    try await writer.write(ByteBuffer(string: head))
                    try await writer.write(frame.jpeg)
                }
                try await writer.write(ByteBuffer(string: (first ? "" : "\r\n") + "--\(Self.boundary)--\r\n"))
            } onGracefulShutdown: {
                stream.stop(viewer)
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [
                .contentType: "multipart/x-mixed-replace; boundary=\(Self.boundary)",
                .cacheControl: "no-cache, no-store, must-revalidate",
            ],
            body: body
        )
    }

    private func unknownStream(_ name: String) -> Response {
        let known = liveView.streamNames
        let list = known.isEmpty ? "none yet" : known.joined(separator: ", ")
        return json(
            .notFound,
            "{\"error\":\(jsonString("no stream named '\(name)'; known streams: \(list)")),\"streams\":\(jsonArray(known))}"
        )
    }

    // MARK: Page

    private func page() -> Response {
        let title = "Vantage — " + liveView.configuration.appName
        var figures = ""
        for name in liveView.streamNames {
            let html = htmlEscape(name)
            figures += """
                <figure class="live-tile"><div class="live-frame"><img src="/streams/\(html).mjpeg" \
                alt="live view of \(html)"></div><figcaption><code>\(html)</code> \
                <a href="/streams/\(html).jpg">still image</a> <span class="live-badge">LIVE</span></figcaption></figure>

                """
        }
        if figures.isEmpty { figures = "<p class=\"empty\">No streams yet.</p>\n" }
        let html = """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(htmlEscape(title))</title>
            <style>
            \(VantageStyle.css)
            #status th { width: 40%; }
            .error { color: var(--bad); }
            </style>
            </head>
            <body>
            <header class="topbar"><span class="brand">Vantage</span>\
            <span>\(htmlEscape(liveView.configuration.appName))</span></header>
            <main>
            <h1>\(htmlEscape(liveView.configuration.appName)) <span class="muted">live</span></h1>
            <section class="live-grid\(liveView.streamNames.count == 1 ? " single" : "")">
            \(figures)</section>
            <h2>Status</h2>
            <table id="status" class="list"><tbody><tr><td>loading…</td></tr></tbody></table>
            </main>
            <script>
            function rows(value, prefix, out) {
              if (value && typeof value === "object" && !Array.isArray(value) && prefix.split(".").length < 3) {
                for (const [k, v] of Object.entries(value)) rows(v, prefix ? prefix + "." + k : k, out);
              } else {
                out.push([prefix || "status", typeof value === "string" ? value : JSON.stringify(value)]);
              }
              return out;
            }
            async function refresh() {
              const body = document.querySelector("#status tbody");
              try {
                const response = await fetch("/status", { cache: "no-store" });
                const list = rows(await response.json(), "", []);
                body.replaceChildren(...list.map(([k, v]) => {
                  const tr = document.createElement("tr");
                  const th = document.createElement("th"); th.textContent = k;
                  const td = document.createElement("td"); td.textContent = v;
                  tr.append(th, td);
                  return tr;
                }));
              } catch (error) {
                const tr = document.createElement("tr");
                const td = document.createElement("td"); td.className = "error";
                td.textContent = "status unavailable: " + error;
                tr.append(td);
                body.replaceChildren(tr);
              }
            }
            refresh();
            setInterval(refresh, 2000);
            </script>
            </body>
            </html>

            """
        return Response(
            status: .ok,
            headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(string: html))
        )
    }

    // MARK: Encoding

    private func json(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(string: text))
        )
    }
}

/// `text` with `& < > " '` replaced by HTML entities.
func htmlEscape(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.utf8.count)
    for character in text {
        switch character {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.append(character)
        }
    }
    return out
}

/// `text` as a JSON string literal that may also sit inside the page's HTML.
func jsonString(_ text: String) -> String { jsonStringLiteral(text, htmlSafe: true) }

/// `texts` as a JSON array of strings.
func jsonArray(_ texts: [String]) -> String {
    "[" + texts.map(jsonString).joined(separator: ",") + "]"
}

extension HTTPField.Name {
    /// Browsers' `Sec-Fetch-Site`: `same-origin`, `same-site`, `cross-site` or `none` (typed by the user).
    fileprivate static let secFetchSite = Self("Sec-Fetch-Site")!
}
