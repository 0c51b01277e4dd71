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

/// A small line chart of one metric, drawn on the server as inline SVG (no script, no library).
struct LineChart {
    let name: String
    let points: [MetricPoint]
    let from: Date
    let to: Date

    static let width = 360.0
    static let height = 120.0
    // The plot area inside the view box; the margins hold the axis labels.
    static let left = 48.0
    static let right = 352.0
    static let top = 10.0
    static let bottom = 100.0

    var svg: HTML {
        let values = points.map(\.value)
        guard let low = values.min(), let high = values.max(), let last = points.last else { return "" }
        // A flat series gets a band around its value so that the line sits in the middle.
        let (minimum, maximum) =
            low == high ? (low - max(1, abs(low) * 0.1), high + max(1, abs(high) * 0.1)) : (low, high)
        let span = to.timeIntervalSince(from)
        func x(_ time: Date) -> Double {
            Self.left + (Self.right - Self.left) * min(1, max(0, time.timeIntervalSince(from) / span))
        }
        func y(_ value: Double) -> Double {
            Self.bottom - (Self.bottom - Self.top) * (value - minimum) / (maximum - minimum)
        }
        func coordinate(_ value: Double) -> String { String(format: "%.1f", value) }
        let line = points.map { "\(coordinate(x($0.time))),\(coordinate(y($0.value)))" }.joined(separator: " ")
        let mark: HTML =
            points.count == 1
            ? "<circle class=\"chart-line\" cx=\"\(coordinate(x(last.time)))\" cy=\"\(coordinate(y(last.value)))\" r=\"2.5\"/>"
            : "<polyline class=\"chart-line\" fill=\"none\" points=\"\(line)\"/>"
        let label =
            "\(name) over the last 24 hours: latest \(HTML.number(last.value)), lowest \(HTML.number(low)), highest \(HTML.number(high))"
        return """
            <figure class="chart">
            <figcaption><strong>\(name)</strong> <span class="muted">latest \(HTML.number(last.value))</span></figcaption>
            <svg viewBox="0 0 \(Int(Self.width)) \(Int(Self.height))" role="img" aria-label="\(label)">
            <title>\(label)</title>
            <line class="chart-axis" x1="\(Int(Self.left))" y1="\(Int(Self.bottom))" x2="\(Int(Self.right))" y2="\(Int(Self.bottom))"/>
            <line class="chart-axis" x1="\(Int(Self.left))" y1="\(Int(Self.top))" x2="\(Int(Self.left))" y2="\(Int(Self.bottom))"/>
            <text class="chart-label" x="\(Int(Self.left) - 4)" y="\(Int(Self.top) + 4)" text-anchor="end">\(HTML.number(maximum))</text>
            <text class="chart-label" x="\(Int(Self.left) - 4)" y="\(Int(Self.bottom))" text-anchor="end">\(HTML.number(minimum))</text>
            <text class="chart-label" x="\(Int(Self.left))" y="\(Int(Self.height) - 4)">24 h ago</text>
            <text class="chart-label" x="\(Int(Self.right))" y="\(Int(Self.height) - 4)" text-anchor="end">now</text>
            \(mark)
            </svg>
            </figure>
            """
    }

    /// One chart per metric name, in name order.
    static func charts(_ points: [MetricPoint], from: Date, to: Date) -> [LineChart] {
        Dictionary(grouping: points, by: \.name).sorted { $0.key < $1.key }.map { name, series in
            LineChart(name: name, points: series.sorted { $0.time < $1.time }, from: from, to: to)
        }
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
    case devices = "Devices"
    case cameras = "Cameras"
    case models = "Models"
    case packages = "Packages"
    case instances = "Instances"
    case events = "Events"

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
