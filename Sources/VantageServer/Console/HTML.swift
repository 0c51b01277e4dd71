import Foundation
import VantageAPI
import VantageCore

/// HTML text. In `"<p>\(name)</p>" as HTML`, an interpolated `String` is escaped and an interpolated `HTML` is
/// inserted as it is, so a page cannot forget to escape what came from the database or the request.
struct HTML: Sendable, ExpressibleByStringInterpolation, CustomStringConvertible {
    private(set) var text: String

    init(stringLiteral value: String) { text = value }
    init(stringInterpolation: StringInterpolation) { text = stringInterpolation.text }
    /// Markup made here (never text from outside).
    init(trusted text: String) { self.text = text }

    var description: String { text }

    struct StringInterpolation: StringInterpolationProtocol {
        var text = ""

        init(literalCapacity: Int, interpolationCount: Int) {
            text.reserveCapacity(literalCapacity + 16 * interpolationCount)
        }
        mutating func appendLiteral(_ literal: String) { text += literal }
        mutating func appendInterpolation(_ value: String) { text += HTML.escape(value) }
        mutating func appendInterpolation(_ value: HTML) { text += value.text }
        mutating func appendInterpolation(_ values: [HTML]) { text += values.map(\.text).joined() }
        mutating func appendInterpolation(_ value: Int) { text += String(value) }
    }

    /// Escapes text for element content and quoted attribute values.
    static func escape(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    /// `fragment` when `condition` holds, nothing otherwise.
    static func when(_ condition: Bool, _ fragment: @autoclosure () -> HTML) -> HTML {
        condition ? fragment() : ""
    }
}

// MARK: - Values as the console shows them

extension HTML {
    /// A time in UTC, which console.js rewrites into the browser's time zone.
    static func time(_ date: Date?) -> HTML {
        guard let date else { return "<span class=\"muted\">never</span>" }
        let iso = APIJSON.formatTime(date)  // 2026-05-31T12:00:00.000Z
        let text = iso.prefix(19).replacingOccurrences(of: "T", with: " ")
        return "<time datetime=\"\(iso)\">\(text) UTC</time>"
    }

    /// A status value (ONLINE, DEPLOYMENT_FAILED, …) as a coloured badge.
    static func badge(_ status: String) -> HTML {
        let tone: String
        switch status {
        case "ONLINE", "RUNNING", "SUCCEEDED", "DEPLOYMENT_SUCCEEDED", "REMOVAL_SUCCEEDED", "REGISTER_COMPLETED":
            tone = "ok"
        case _ where status.hasSuffix("ERROR") || status.hasSuffix("FAILED"):
            tone = "bad"
        case _ where status.hasSuffix("PENDING") || status.hasSuffix("REQUESTED") || status.hasSuffix("IN_PROGRESS"):
            tone = "busy"
        case "OFFLINE":
            tone = "warn"
        default:
            tone = "muted"
        }
        return "<span class=\"badge \(tone)\">\(status)</span>"
    }

    /// A byte count: `12.3 MB`.
    static func bytes(_ count: Int64) -> String {
        ByteCountFormatter.string(fromByteCount: count, countStyle: .file)
    }

    /// A `sha256:…` digest, shortened for tables (the full one in the tooltip).
    static func digest(_ digest: String) -> HTML {
        let short = digest.hasPrefix("sha256:") ? String(digest.dropFirst(7).prefix(12)) : String(digest.prefix(12))
        return "<code title=\"\(digest)\">\(short)</code>"
    }

    /// A query string: `?a=1&b=x%20y`, values percent-encoded, nil values left out.
    static func query(_ items: [(String, String?)]) -> String {
        var components = URLComponents()
        components.queryItems = items.compactMap { name, value in value.map { URLQueryItem(name: name, value: $0) } }
        // URLComponents leaves `+` alone, which a server reads as a space.
        let text = components.percentEncodedQuery?.replacingOccurrences(of: "+", with: "%2B") ?? ""
        return text.isEmpty ? "" : "?" + text
    }

    /// A path component (an id from the database or the request), percent-encoded.
    static func path(_ component: String) -> String {
        component.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? ""
    }

    /// A number for a chart label: at most 3 significant decimals, with k/M/G for large values.
    static func number(_ value: Double) -> String {
        let magnitude = abs(value)
        let (scaled, suffix): (Double, String) =
            switch magnitude {
            case 1e9...: (value / 1e9, " G")
            case 1e6...: (value / 1e6, " M")
            case 1e4...: (value / 1e3, " k")
            default: (value, "")
            }
        var text = String(format: abs(scaled) >= 100 ? "%.0f" : abs(scaled) >= 10 ? "%.1f" : "%.2f", scaled)
        if text.contains(".") {
            while text.hasSuffix("0") { text.removeLast() }
            if text.hasSuffix(".") { text.removeLast() }
        }
        return text + suffix
    }
}

// MARK: - Health charts

/// A small line chart of one metric, drawn on the server as inline SVG. The time axis spans the data inside the
/// chosen range (from the first point shown to the last), labelled in UTC; each point carries its time and value
/// (an SVG `<title>`, and `data-label`, which console.js shows on hover).
struct LineChart {
    let title: String
    /// The heartbeat's key (`camera.cam_….fps`), for scripts and tests.
    let metric: String
    let points: [MetricPoint]
    /// The range chosen: points outside it are left out.
    let from: Date
    let to: Date
    var format: (Double) -> String = { HTML.number($0) }
    /// What the chart says when no point falls in the range.
    var emptyText = "no data in this range"

    static let width = 360.0
    static let height = 120.0
    // The plot area inside the view box; the margins hold the axis labels.
    static let left = 56.0
    static let right = 352.0
    static let top = 10.0
    static let bottom = 100.0
    /// The most points drawn: more are averaged in equal slices of time.
    static let maximumPoints = 180

    /// The points to draw: inside the range, oldest first, at most `maximumPoints`.
    var shown: [MetricPoint] {
        let inside = points.filter { $0.time >= from && $0.time <= to }.sorted { $0.time < $1.time }
        guard inside.count > Self.maximumPoints, let first = inside.first, let last = inside.last else { return inside }
        // The latest point stays as it is (the caption's "latest"); the others are averaged.
        let slice = last.time.timeIntervalSince(first.time) / Double(Self.maximumPoints - 1)
        var buckets: [Int: (time: Double, value: Double, count: Double)] = [:]
        for point in inside.dropLast() {
            let index = min(Self.maximumPoints - 2, Int(point.time.timeIntervalSince(first.time) / slice))
            let sum = buckets[index] ?? (0, 0, 0)
            buckets[index] = (sum.time + point.time.timeIntervalSince1970, sum.value + point.value, sum.count + 1)
        }
        return buckets.keys.sorted().compactMap { index in
            buckets[index].map {
                MetricPoint(
                    name: metric, time: Date(timeIntervalSince1970: $0.time / $0.count), value: $0.value / $0.count)
            }
        } + [last]
    }

    /// The time axis: from the first point shown to the last, at least a minute wide (a single point sits at its
    /// right end).
    var axis: (start: Date, end: Date)? {
        let shown = shown
        guard let first = shown.first, let last = shown.last else { return nil }
        let start = min(first.time, last.time.addingTimeInterval(-60))
        return (max(from, start), last.time)
    }

    /// A time on the axis, in UTC: `14:05`, with the day when the axis spans more than a day.
    static func timeLabel(_ date: Date, withDay: Bool) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = withDay ? "d MMM HH:mm" : "HH:mm"
        return formatter.string(from: date)
    }

    var svg: HTML {
        let shown = shown
        guard let axis, let last = shown.last else {
            return """
                <figure class="chart" data-metric="\(metric)">
                <figcaption><strong class="chart-title">\(title)</strong> <span class="muted chart-empty">\(emptyText)</span></figcaption>
                </figure>
                """
        }
        let values = shown.map(\.value)
        let low = values.min() ?? 0
        let high = values.max() ?? 0
        // From zero for figures that are never negative, so that a small wobble does not look like a swing.
        let floor = min(0, low)
        let (minimum, maximum) = high == floor ? (floor, floor + max(1, abs(floor) * 0.1)) : (floor, high)
        let span = max(1, axis.end.timeIntervalSince(axis.start))
        func x(_ time: Date) -> Double {
            Self.left + (Self.right - Self.left) * min(1, max(0, time.timeIntervalSince(axis.start) / span))
        }
        func y(_ value: Double) -> Double {
            Self.bottom - (Self.bottom - Self.top) * (value - minimum) / (maximum - minimum)
        }
        func coordinate(_ value: Double) -> String { String(format: "%.1f", value) }
        let withDay = span > 86_400
        let line = shown.map { "\(coordinate(x($0.time))),\(coordinate(y($0.value)))" }.joined(separator: " ")
        let polyline: HTML =
            shown.count > 1 ? "<polyline class=\"chart-line\" fill=\"none\" points=\"\(line)\"/>" : ""
        let marks: [HTML] = shown.map { point in
            let label = "\(Self.timeLabel(point.time, withDay: true)) UTC: \(format(point.value))"
            return """
                <circle class="chart-point" cx="\(coordinate(x(point.time)))" cy="\(coordinate(y(point.value)))" \
                r="\(shown.count == 1 ? "3" : "2")" data-label="\(label)"><title>\(label)</title></circle>
                """
        }
        let startLabel = Self.timeLabel(axis.start, withDay: withDay)
        let endLabel = Self.timeLabel(axis.end, withDay: withDay)
        let summary =
            "\(title) from \(startLabel) to \(endLabel) UTC: latest \(format(last.value)), lowest \(format(low)), highest \(format(high))"
        return """
            <figure class="chart" data-metric="\(metric)">
            <figcaption><strong class="chart-title">\(title)</strong> <span class="muted chart-latest">latest \(format(last.value))</span>\
            <output class="chart-readout" aria-live="polite"></output></figcaption>
            <svg viewBox="0 0 \(Int(Self.width)) \(Int(Self.height))" role="img" aria-label="\(summary)">
            <line class="chart-axis" x1="\(Int(Self.left))" y1="\(Int(Self.bottom))" x2="\(Int(Self.right))" y2="\(Int(Self.bottom))"/>
            <line class="chart-axis" x1="\(Int(Self.left))" y1="\(Int(Self.top))" x2="\(Int(Self.left))" y2="\(Int(Self.bottom))"/>
            <text class="chart-label" x="\(Int(Self.left) - 4)" y="\(Int(Self.top) + 4)" text-anchor="end">\(format(maximum))</text>
            <text class="chart-label" x="\(Int(Self.left) - 4)" y="\(Int(Self.bottom))" text-anchor="end">\(format(minimum))</text>
            <text class="chart-label chart-start" x="\(Int(Self.left))" y="\(Int(Self.height) - 4)">\(startLabel)</text>
            <text class="chart-label chart-end" x="\(Int(Self.right))" y="\(Int(Self.height) - 4)" text-anchor="end">\(endLabel) UTC</text>
            \(polyline)\(marks)
            </svg>
            </figure>
            """
    }
}

// MARK: - Layout

/// Who is looking at a console page: a signed-in user (console session) or an API-token caller.
struct Viewer: Sendable {
    /// `user:NAME` or `token:NAME`.
    let actor: String
    let role: Role
    /// The console session and its CSRF token; nil for API-token callers, who have no cookie to protect.
    let session: Session?

    struct Session: Sendable {
        let id: String
        let csrfToken: String
    }

    /// An operator caller (not a device), or nil.
    init?(_ caller: Caller?) {
        guard let caller, let role = caller.role else { return nil }
        actor = caller.actor
        self.role = role
        if case .session(let id, let csrfToken) = caller.kind {
            session = Session(id: id, csrfToken: csrfToken)
        } else {
            session = nil
        }
    }

    /// The name to show: the user's name, or `token:NAME` for an API token.
    var name: String { actor.hasPrefix("user:") ? String(actor.dropFirst(5)) : actor }
}

/// The console's sections, in the navigation bar's order.
enum ConsoleSection: String, CaseIterable, Sendable {
    case overview = "Overview"
    case live = "Live"
    case devices = "Devices"
    case cameras = "Cameras"
    case models = "Models"
    case packages = "Packages"
    case instances = "Instances"
    case events = "Events"
    /// API tokens, users and the audit log (admins only; the style sheet hides the link from others).
    case access = "Access"

    var path: String { self == .overview ? "/" : "/" + rawValue.lowercased() }
}

/// A rendered page without its frame: the layout adds the head, navigation bar and account box.
struct ConsolePage: Sendable {
    /// The title before " — Vantage".
    var title: String
    /// The section highlighted in the navigation bar.
    var section: ConsoleSection?
    var body: HTML
    var status = 200
}

enum ConsoleLayout {
    /// A whole document. `viewer` is nil on the login page (no navigation bar then).
    static func document(_ page: ConsolePage, viewer: Viewer?) -> String {
        let navigation: HTML =
            viewer == nil
            ? ""
            : """
            <nav aria-label="sections">\(ConsoleSection.allCases.map { section -> HTML in
                section == page.section
                    ? "<a href=\"\(section.path)\" aria-current=\"page\">\(section.rawValue)</a>"
                    : "<a href=\"\(section.path)\">\(section.rawValue)</a>"
            })</nav>
            """
        var account: HTML = ""
        if let viewer {
            let logout: HTML =
                viewer.session.map { session in
                    """
                    <form method="post" action="/logout" class="logout">\
                    <input type="hidden" name="_csrf" value="\(session.csrfToken)">\
                    <button type="submit" class="link">Log out</button></form>
                    """
                } ?? ""
            account = """
                <div class="account"><span class="user" id="current-user">\(viewer.name)</span> \
                <span class="role">\(viewer.role.rawValue)</span>\(logout)</div>
                """
        }
        let document: HTML = """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta name="csrf-token" content="\(viewer?.session?.csrfToken ?? "")">
            <title>\(page.title) — Vantage</title>
            <link rel="icon" href="/favicon.svg" type="image/svg+xml">
            <link rel="stylesheet" href="/console.css">
            <script src="/console.js" defer></script>
            </head>
            <body data-role="\(viewer?.role.rawValue ?? "")">
            <header class="topbar"><a class="brand" href="/">Vantage</a>\(navigation)\(account)</header>
            <main>
            \(page.body)
            </main>
            </body>
            </html>

            """
        return document.text
    }
}
