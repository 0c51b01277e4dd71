import Foundation
import VantageAPI
import VantageCore

// Event review: the /events page (filters as selects, counts by type, a timeline per camera, events grouped by type,
// camera and track) and one event's page (its snapshot, its clip playing, its data). Every time is shown in UTC, the
// filter's inputs too, and the page says so: a time read off the page can be typed back into the filter as is.
extension ConsolePages {
    /// The events page's filters, as its GET form sends them.
    struct EventFilter: Sendable {
        var device: String?
        var camera: String?
        var instance: String?
        var type: String?
        /// `1h`, `6h`, `24h` (the default), `7d`, or `custom` (`from` and `to`).
        var range: String?
        /// A custom range's bounds: a `datetime-local` input's `2026-05-31T12:00` (UTC) or ISO 8601.
        var from: String?
        var to: String?
        /// Older links: the same as `from` with `range=custom`.
        var since: String?
        var cursor: String?
    }

    /// The ranges the filter offers, by their value.
    static let eventRanges: [(value: String, label: String, seconds: Double)] = [
        ("1h", "last hour", 3600), ("6h", "last 6 hours", 6 * 3600), ("24h", "last 24 hours", 86_400),
        ("7d", "last 7 days", 7 * 86_400), ("custom", "from – to", 0),
    ]

    /// How many events the page loads at once (groups and the timeline are drawn from them).
    static let eventsPerPage = 200

    /// How much an event asks for attention: `notable` when it came with a snapshot or a clip (a rule or the
    /// application thought it worth a picture), `info` otherwise (a count that changed).
    static func severity(_ event: Event) -> String { event.hasClip || event.hasSnapshot ? "notable" : "info" }

    /// The object or track an event is about, where its data says (`track`, `trackId`, `track_id`, `objectId`).
    static func track(_ event: Event) -> String? {
        for key in ["track", "trackId", "track_id", "objectId", "object_id"] {
            switch event.data[key] {
            case .string(let text)?: return text
            case .number(let number)?: return number == number.rounded() ? String(Int(number)) : String(number)
            default: continue
            }
        }
        return nil
    }

    /// A time as the events pages show it: UTC, to the second (`2026-05-31 12:00:05`), not rewritten by console.js.
    static func utc(_ date: Date) -> HTML {
        let iso = APIJSON.formatTime(date)
        return "<span class=\"utc\" title=\"\(iso)\">\(iso.prefix(19).replacingOccurrences(of: "T", with: " "))</span>"
    }

    /// A `datetime-local` value in UTC: `2026-05-31T12:00`.
    static func localInput(_ date: Date) -> String {
        String(APIJSON.formatTime(date).prefix(16))
    }

    static func parseUTC(_ text: String) -> Date? {
        APIJSON.parseTime(text) ?? APIJSON.parseTime(text + (text.count == 16 ? ":00Z" : "Z"))
    }

    func events(_ filter: EventFilter, now: Date = Date()) async throws -> ConsolePage {
        let devices = try await store.listDevices()
        let cameras = try await store.listCameras()
        let instances = try await store.listInstances()
        let types = try await store.eventTypes()
        var filter = filter
        if filter.since != nil, filter.from == nil {
            filter.from = filter.since
            filter.range = "custom"
        }
        let range = Self.eventRanges.first { $0.value == filter.range }?.value ?? "24h"
        var query = EventQuery()
        query.device = filter.device
        query.camera = filter.camera
        query.instance = filter.instance
        query.type = filter.type
        query.cursor = filter.cursor
        query.limit = Self.eventsPerPage
        var problem: String?
        var start = now.addingTimeInterval(-86_400)
        var end = now
        if range == "custom" {
            if let from = filter.from {
                if let date = Self.parseUTC(from) {
                    start = date
                } else {
                    problem = "from must be a time like 2026-05-31T12:00 (UTC), not \"\(from.prefix(40))\""
                }
            }
            if let to = filter.to {
                if let date = Self.parseUTC(to) {
                    end = date
                } else {
                    problem = "to must be a time like 2026-05-31T12:00 (UTC), not \"\(to.prefix(40))\""
                }
            }
            if problem == nil, end <= start { problem = "from must be before to: swap them or pick another range" }
        } else if let seconds = Self.eventRanges.first(where: { $0.value == range })?.seconds {
            start = now.addingTimeInterval(-seconds)
        }
        query.since = start
        query.until = end
        var page = Page<Event>(items: [], nextCursor: nil)
        var counts: [(type: String, count: Int)] = []
        if problem == nil {
            do {
                page = try await store.events(query)
                counts = try await store.eventTypeCounts(query)
            } catch let error as APIError {
                problem = error.message
            }
        }
        let deviceNames = Dictionary(devices.map { ($0.id, $0.name) }, uniquingKeysWith: { first, _ in first })
        let cameraNames = Dictionary(cameras.map { ($0.id, $0.name) }, uniquingKeysWith: { first, _ in first })
        func cameraName(_ id: String?) -> String { id.map { cameraNames[$0] ?? $0 } ?? "no camera" }
        func options(_ items: [(id: String, name: String)], selected: String?) -> [HTML] {
            items.map { item in
                item.id == selected
                    ? "<option value=\"\(item.id)\" selected>\(item.name)</option>"
                    : "<option value=\"\(item.id)\">\(item.name)</option>"
            }
        }
        let filters: [(String, String?)] = [
            ("deviceId", filter.device), ("cameraId", filter.camera), ("instanceId", filter.instance),
            ("type", filter.type), ("range", filter.range),
            ("from", range == "custom" ? filter.from : nil), ("to", range == "custom" ? filter.to : nil),
        ]
        func link(type: String) -> String {
            "/events" + HTML.query(filters.map { $0.0 == "type" ? ("type", type) : $0 })
        }

        // Counts by type, most first: each links to the events of that type only.
        let total = counts.reduce(0) { $0 + $1.count }
        let chips: [HTML] = counts.map { item in
            "<li><a class=\"type-chip\(item.type == filter.type ? " current" : "")\" href=\"\(link(type: item.type))\">\(item.type) <span class=\"count\">\(item.count)</span></a></li>"
        }

        // Groups: events of one type on one camera (and one track, where the data names one), newest group first.
        struct Group {
            var type: String
            var camera: String?
            var track: String?
            var events: [Event]
        }
        var groups: [Group] = []
        var index: [String: Int] = [:]
        for event in page.items {
            let track = Self.track(event)
            let key = "\(event.type)|\(event.cameraId ?? "")|\(track ?? "")"
            if let at = index[key] {
                groups[at].events.append(event)
            } else {
                index[key] = groups.count
                groups.append(Group(type: event.type, camera: event.cameraId, track: track, events: [event]))
            }
        }
        let groupItems: [HTML] = groups.map { group in
            let notable = group.events.contains { Self.severity($0) == "notable" }
            let severity = notable ? "notable" : "info"
            let newest = group.events[0]
            let oldest = group.events[group.events.count - 1]
            let span: HTML =
                group.events.count == 1
                ? Self.utc(newest.time) : "\(Self.utc(oldest.time)) – \(Self.utc(newest.time))"
            let thumbnail: HTML =
                group.events.first(where: \.hasSnapshot).map { event in
                    "<img class=\"thumb\" src=\"/api/v1/events/\(HTML.path(event.id))/snapshot\" alt=\"snapshot of event \(event.type)\" loading=\"lazy\">"
                } ?? ""
            let rows: [HTML] = group.events.map { event in
                var data = APIJSON.string(event.data)
                if data.count > 160 { data = String(data.prefix(159)) + "…" }
                return """
                    <li class="event-row"><a href="/events/\(HTML.path(event.id))">\(Self.utc(event.time))</a>\
                    \(HTML.when(event.hasSnapshot, "<span class=\"tag\">snapshot</span>"))\
                    \(HTML.when(event.hasClip, "<span class=\"tag clip\">clip</span>"))\
                    <code class="event-data">\(data)</code></li>
                    """
            }
            return """
                <details class="event-group \(severity)" data-type="\(group.type)"\(HTML.when(notable, " open"))>
                <summary><span class="badge \(notable ? "warn" : "muted")">\(severity)</span> <strong>\(group.type)</strong> \
                <span>\(cameraName(group.camera))</span>\(group.track.map { " <span class=\"muted\">track \($0)</span>" as HTML } ?? "") \
                <span class="count">\(group.events.count) event\(group.events.count == 1 ? "" : "s")</span> <span class="muted">\(span)</span></summary>
                \(thumbnail)
                <ol class="event-rows">\(rows)</ol>
                </details>
                """
        }

        // One timeline per camera over the range: each event a mark, notable ones taller.
        var byCamera: [(camera: String?, events: [Event])] = []
        for event in page.items {
            if let at = byCamera.firstIndex(where: { $0.camera == event.cameraId }) {
                byCamera[at].events.append(event)
            } else {
                byCamera.append((event.cameraId, [event]))
            }
        }
        let timelines: [HTML] = byCamera.sorted { cameraName($0.camera) < cameraName($1.camera) }.map { entry in
            Self.timeline(
                title: cameraName(entry.camera), events: entry.events, from: start, to: end)
        }

        var paging: [HTML] = []
        if filter.cursor != nil { paging.append("<a href=\"/events\(HTML.query(filters))\">Newest</a>") }
        if let next = page.nextCursor {
            paging.append(
                "<a href=\"/events\(HTML.query(filters + [("cursor", next)]))\" id=\"older\" rel=\"next\">Older</a>")
        }
        let rangeOptions: [HTML] = Self.eventRanges.map { item in
            "<option value=\"\(item.value)\"\(HTML.when(item.value == range, " selected"))>\(item.label)</option>"
        }
        let typeOptions: [HTML] = options(types.map { ($0, $0) }, selected: filter.type)
        let shown = page.items.count
        let summary: HTML =
            problem != nil
            ? ""
            : total == 0
                ? "<p class=\"empty\" id=\"events-summary\">No events in this range.</p>"
                : """
                <p id="events-summary"><strong>\(total)</strong> event\(total == 1 ? "" : "s") from \(Self.utc(start)) to \(Self.utc(end))\
                \(HTML.when(shown < total, " (the newest \(shown) shown below)")).</p>
                """
        return ConsolePage(
            title: "Events", section: .events,
            body: """
                <h1>Events</h1>
                <p class="muted" id="events-zone">All times on this page are in UTC, the filter's too.</p>
                <form method="get" action="/events" class="inline filters" id="event-filters">
                <label>Device <select name="deviceId"><option value="">any</option>\(options(devices.map { ($0.id, $0.name) }, selected: filter.device))</select></label>
                <label>Camera <select name="cameraId"><option value="">any</option>\(options(cameras.map { ($0.id, $0.name) }, selected: filter.camera))</select></label>
                <label>Instance <select name="instanceId"><option value="">any</option>\(options(instances.map { ($0.id, $0.name) }, selected: filter.instance))</select></label>
                <label>Type <select name="type"><option value="">any</option>\(typeOptions)</select></label>
                <label>Time <select name="range" id="event-range">\(rangeOptions)</select></label>
                <label class="custom-range">From (UTC) <input name="from" type="datetime-local" value="\(range == "custom" ? filter.from ?? Self.localInput(start) : Self.localInput(start))"></label>
                <label class="custom-range">To (UTC) <input name="to" type="datetime-local" value="\(range == "custom" ? filter.to ?? Self.localInput(end) : Self.localInput(end))"></label>
                <button type="submit">Show</button> <a href="/events">Clear</a>
                </form>
                \(HTML.when(problem != nil, "<p class=\"form-error\" role=\"alert\">\(problem ?? "")</p>"))
                <div id="events-now"\(HTML.when(filter.cursor == nil && range != "custom", " data-refresh=\"15\""))>
                \(summary)
                \(HTML.when(!chips.isEmpty, "<ul class=\"type-chips\" id=\"event-types\">\(chips)</ul>"))
                \(HTML.when(!timelines.isEmpty, "<h2>Timeline</h2><div class=\"timelines\" id=\"timelines\">\(timelines)</div>"))
                \(HTML.when(!groupItems.isEmpty, "<h2>By type, camera and track</h2><div id=\"events\">\(groupItems)</div>"))
                </div>
                <p class="paging">\(paging)</p>
                """,
            status: problem == nil ? 200 : 400)
    }

    /// A camera's events over [from, to] as marks on a time axis (SVG, scaled to the page's width), each mark a link
    /// to its event; notable ones taller and coloured.
    static func timeline(title: String, events: [Event], from: Date, to: Date) -> HTML {
        let width = 800.0
        let span = max(1, to.timeIntervalSince(from))
        func x(_ date: Date) -> String {
            String(format: "%.1f", 10 + (width - 20) * min(1, max(0, date.timeIntervalSince(from) / span)))
        }
        let marks: [HTML] = events.reversed().map { event in
            let notable = severity(event) == "notable"
            return """
                <a href="/events/\(HTML.path(event.id))"><rect class="mark \(notable ? "notable" : "info")" x="\(x(event.time))" \
                y="\(notable ? "6" : "16")" width="3" height="\(notable ? "28" : "18")"><title>\(event.type) at \
                \(String(APIJSON.formatTime(event.time).prefix(19)).replacingOccurrences(of: "T", with: " ")) UTC</title></rect></a>
                """
        }
        let middle = from.addingTimeInterval(span / 2)
        func label(_ date: Date) -> String {
            String(APIJSON.formatTime(date).prefix(16)).replacingOccurrences(of: "T", with: " ")
        }
        return """
            <figure class="timeline"><figcaption><strong>\(title)</strong> <span class="muted">\(events.count) event\(events.count == 1 ? "" : "s")</span></figcaption>
            <svg viewBox="0 0 \(Int(width)) 56" role="img" aria-label="events of \(title) over time">
            <line class="chart-axis" x1="10" y1="36" x2="\(Int(width) - 10)" y2="36"></line>
            \(marks)
            <text class="chart-label" x="10" y="52">\(label(from))</text>
            <text class="chart-label" x="\(Int(width) / 2)" y="52" text-anchor="middle">\(label(middle))</text>
            <text class="chart-label" x="\(Int(width) - 10)" y="52" text-anchor="end">\(label(to)) UTC</text>
            </svg></figure>
            """
    }

    func event(_ id: String) async throws -> ConsolePage {
        let event = try await store.event(id)
        let device = try? await store.device(event.deviceId)
        var camera: Camera?
        if let id = event.cameraId { camera = try? await store.camera(id) }
        var instanceName: String?
        if let id = event.instanceId { instanceName = (try? await store.listInstances())?.first { $0.id == id }?.name }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let json = String(decoding: try encoder.encode(event.data), as: UTF8.self)
        let image: HTML =
            event.hasSnapshot
            ? "<img class=\"snapshot\" src=\"/api/v1/events/\(HTML.path(event.id))/snapshot\" alt=\"snapshot of event \(event.type)\">"
            : "<p class=\"empty\">No snapshot with this event.</p>"
        let clip: HTML =
            event.hasClip
            ? """
            <video id="event-clip" class="clip" controls muted playsinline preload="auto" src="/api/v1/events/\(HTML.path(event.id))/clip"></video>
            <p><a href="/api/v1/events/\(HTML.path(event.id))/clip" download="\(event.id).mp4">Download the clip (MP4)</a></p>
            """
            : "<p class=\"empty\" id=\"no-clip\">No clip with this event (a rule with <code>\"clip\": true</code> asks the device for one; it arrives a few seconds after the event).</p>"
        // The data's top-level fields as facts, long values wrapped; the whole JSON folded below.
        var fields: [HTML] = []
        if case .object(let object) = event.data {
            for (key, value) in object.sorted(by: { $0.key < $1.key }) {
                let text = value.stringValue ?? APIJSON.string(value)
                fields.append("<dt>\(key)</dt><dd><code class=\"event-data\">\(text)</code></dd>")
            }
        }
        let severity = Self.severity(event)
        return ConsolePage(
            title: "Event \(event.type)", section: .events,
            body: """
                <p class="crumbs"><a href="/events">Events</a> /</p>
                <h1>\(event.type) <span class="badge \(severity == "notable" ? "warn" : "muted")">\(severity)</span></h1>
                <p class="muted">\(Self.utc(event.time)) UTC</p>
                <div class="event-media">
                <div><h2>Snapshot</h2>\(image)</div>
                <div><h2>Clip</h2>\(clip)</div>
                </div>
                <dl class="facts">
                <dt>Device</dt><dd><a href="/devices/\(HTML.path(event.deviceId))">\(device?.name ?? event.deviceId)</a></dd>
                <dt>Camera</dt><dd>\(camera?.name ?? event.cameraId ?? "")</dd>
                <dt>Instance</dt><dd>\(event.instanceId.map { "<a href=\"/instances/\(HTML.path($0))\">\(instanceName ?? $0)</a>" as HTML } ?? "")</dd>
                <dt>Happened (UTC)</dt><dd>\(Self.utc(event.time))</dd>
                <dt>Received (UTC)</dt><dd>\(Self.utc(event.receivedAt))</dd>
                <dt>Id</dt><dd><code>\(event.id)</code></dd>
                \(fields)
                </dl>
                <details class="event-json"><summary>All data (JSON)</summary>
                <pre class="json" id="event-data">\(json)</pre>
                </details>
                """)
    }
}
