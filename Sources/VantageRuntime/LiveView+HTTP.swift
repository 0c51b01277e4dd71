public import Hummingbird
public import Logging
import ServiceLifecycle
import VantageApp

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
/// - Parameters:
///   - host: Address to listen on; `127.0.0.1` keeps the view on this machine, `0.0.0.0` shows it
///     to the network.
///   - port: Port to listen on; 0 picks a free one, which `onServerRunning` receives.
///   - statusProvider: Returns the JSON document for `/status` (UTF-8 bytes).
///   - onServerRunning: Called with the bound port once the server accepts connections, e.g. to
///     print `live view: http://127.0.0.1:PORT/`.
public func makeLiveViewApplication(
    liveView: LiveView,
    host: String = "127.0.0.1",
    port: Int = 7450,
    statusProvider: @escaping @Sendable () async -> [UInt8],
    signalHandler: NodeSignalHandler? = nil,
    onServerRunning: @escaping @Sendable (_ port: Int) async -> Void = { _ in },
    logger: Logger
) -> some ApplicationProtocol {
    let router = Router()
    LiveViewRoutes(liveView: liveView, statusProvider: statusProvider, signalHandler: signalHandler).add(to: router)
    return Application(
        router: router,
        configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "Vantage"),
        onServerRunning: { channel in
            await onServerRunning(channel.localAddress?.port ?? port)
        },
        logger: logger
    )
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
                <figure><a href="/streams/\(html).jpg"><img src="/streams/\(html).mjpeg" alt="live view of \(html)"></a>\
                <figcaption>\(html)</figcaption></figure>

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
            body { font-family: system-ui, sans-serif; margin: 1.5rem; background: #111; color: #eee; }
            h1 { font-size: 1.4rem; font-weight: 600; }
            .streams { display: flex; flex-wrap: wrap; gap: 1rem; }
            figure { margin: 0; }
            figure img { display: block; max-width: min(100%, 960px); min-width: 320px; min-height: 180px; background: #000; }
            figcaption { padding: .3rem 0; color: #aaa; font-family: ui-monospace, monospace; }
            table { border-collapse: collapse; margin-top: .5rem; }
            th, td { border: 1px solid #333; padding: .25rem .7rem; text-align: left; font-family: ui-monospace, monospace; }
            th { color: #aaa; font-weight: normal; }
            .error { color: #f77; }
            a { color: inherit; }
            </style>
            </head>
            <body>
            <h1>\(htmlEscape(title))</h1>
            <section class="streams">
            \(figures)</section>
            <h2>Status</h2>
            <table id="status"><tbody><tr><td>loading…</td></tr></tbody></table>
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
