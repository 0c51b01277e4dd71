import Foundation
import VantageAPI

// Live video: an instance's annotated output, and a grid of every running instance of a device. The frames come
// from the device through the server (LiveRelay): the page asks for them only while it is open and visible.
extension ConsolePages {
    /// One instance, full width, each of its camera streams as an MJPEG `<img>`.
    func liveInstance(_ id: String) async throws -> ConsolePage {
        let instance = try await store.instance(id)
        let device = try? await store.device(instance.deviceId)
        let running = instance.desiredState == .running
        let path = "/api/v1/instances/\(HTML.path(instance.id))/live"
        // Pause and resume each camera node (operators; the device does it and says so).
        let controls: [HTML] = instance.cameras.keys.sorted().map { node in
            """
            <li><code>\(node)</code> \
            <button type="button" data-camera-signal="pause" data-node="\(node)">Pause</button> \
            <button type="button" data-camera-signal="resume" data-node="\(node)">Resume</button></li>
            """
        }
        let body: HTML =
            running
            ? """
            <div class="live-grid single" id="live" data-live-mode="stream" data-instance="\(instance.id)" \
            data-streams="\(path)/streams">
            \(Self.liveTile(source: path, title: instance.name, link: nil, instance: instance.id))
            </div>
            \(HTML.when(!controls.isEmpty, """
                <section class="panel needs-operator" id="camera-controls" data-instance="\(instance.id)">
                <h2>Cameras</h2><ul class="plain">\(controls)</ul>
                <p class="help">Pause stops reading a camera (its stream and inference), Resume starts it again; the \
                device confirms within seconds. A restart of the instance starts every camera as its manifest says.</p>
                <p class="status" aria-live="polite"></p><p class="form-error" role="alert" hidden></p>
                </section>
                """))
            """
            : """
            <p class="empty" id="live-stopped">\(instance.name) is \(instance.desiredState.rawValue.lowercased()): \
            start it on <a href="/instances/\(HTML.path(instance.id))">its page</a> to watch it live.</p>
            """
        return ConsolePage(
            title: "\(instance.name) live", section: .live,
            body: """
                <p class="crumbs"><a href="/instances">Application instances</a> / \
                <a href="/instances/\(HTML.path(instance.id))">\(instance.name)</a> /</p>
                <h1>\(instance.name) <span class="muted">live</span> \(HTML.badge(instance.status.rawValue))</h1>
                <p class="help">Annotated frames relayed from \
                <a href="/devices/\(HTML.path(instance.deviceId))">\(device?.name ?? instance.deviceId)</a> \
                at up to \(HTML.number(store.live.framesPerSecond)) frames a second per camera, only while this page \
                is open and visible.</p>
                \(body)
                """)
    }

    /// Every running instance (of one device, or all), each a tile that refreshes its frame a few times a second.
    func liveGrid(device selected: String?) async throws -> ConsolePage {
        let devices = try await store.listDevices()
        let names = Dictionary(devices.map { ($0.id, $0.name) }, uniquingKeysWith: { first, _ in first })
        let instances = try await store.listInstances(device: selected)
            .filter { $0.desiredState == .running }
            .sorted { ($0.deviceId, $0.name) < ($1.deviceId, $1.name) }
        let tiles: [HTML] = instances.map { instance in
            Self.liveTile(
                source: "/api/v1/instances/\(HTML.path(instance.id))/live/frame",
                title: "\(instance.name) · \(names[instance.deviceId] ?? instance.deviceId)",
                link: "/instances/\(HTML.path(instance.id))/live", instance: instance.id)
        }
        let options: [HTML] = devices.map { device in
            device.id == selected
                ? "<option value=\"\(device.id)\" selected>\(device.name)</option>"
                : "<option value=\"\(device.id)\">\(device.name)</option>"
        }
        return ConsolePage(
            title: "Live", section: .live,
            body: """
                <h1>Live</h1>
                <form method="get" action="/live" class="inline filters" id="live-filter">
                <label>Device <select name="deviceId" data-autosubmit><option value="">all devices</option>\(options)</select></label>
                <noscript><button type="submit">Show</button></noscript>
                </form>
                <p class="help">Each running instance's annotated output, refreshed about twice a second while this \
                page is visible; open one for its full frame rate.</p>
                \(tiles.isEmpty
                    ? "<p class=\"empty\" id=\"no-live\">No running instances\(selected == nil ? "" : " on this device"): deploy one from a <a href=\"/packages\">package</a>.</p>" as HTML
                    : "<div class=\"live-grid\" id=\"live\" data-live-mode=\"poll\">\(tiles)</div>")
                """)
    }

    /// A tile whose `<img>` console.js points at `source` while the page is visible.
    static func liveTile(source: String, title: String, link: String?, instance: String) -> HTML {
        let caption: HTML = link.map { "<a href=\"\($0)\">\(title)</a>" } ?? "\(title)"
        return """
            <figure class="live-tile" data-source="\(source)" data-instance="\(instance)">
            <div class="live-frame"><img alt="live view of \(title)" hidden>\
            <p class="live-state" aria-live="polite">connecting to the device…</p></div>
            <figcaption>\(caption) <span class="live-badge" hidden>LIVE</span></figcaption>
            </figure>
            """
    }
}
