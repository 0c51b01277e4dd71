import Foundation
import VantageAPI
import VantageCore

// The log view of an instance's page (and a device's agent log): a level select, a search box and Follow, which
// ConsoleAssets+Logs.swift wires to the logs API.
extension ConsolePages {
    /// The most lines the page keeps; the script drops the oldest beyond it.
    static let logViewLimit = 500

    /// The log section reading `api` (`/api/v1/instances/ID/logs` or `/api/v1/devices/ID/logs`), showing `lines`
    /// (oldest first) until the script takes over.
    static func logView(_ lines: [LogLine], api: String) -> HTML {
        let levels: [HTML] = Store.logLevelOrder.dropFirst().map { level in
            "<option value=\"\(level)\">\(level) and above</option>"
        }
        return """
            <section class="log-view" id="log-view" data-logs="\(api)" data-limit="\(logViewLimit)">
            <form class="log-filters" id="log-filters">
            <label>Level <select name="level" id="log-level"><option value="">all</option>\(levels)</select></label>
            <label class="log-search">Search <input type="search" name="contains" id="log-search" maxlength="200" \
            placeholder="text in the message"></label>
            <label class="check"><input type="checkbox" id="log-follow" checked> Follow</label>
            </form>
            <p class="help">Times in UTC, newest at the bottom; the page keeps the last \(logViewLimit) lines.
            <span class="form-error" role="alert" id="log-error" hidden></span></p>
            <p class="empty" id="no-logs"\(HTML(trusted: lines.isEmpty ? "" : " hidden"))>No log lines from the device yet.</p>
            <ol class="log-lines" id="logs">\(lines.map(logLine))</ol>
            </section>
            """
    }

    /// One line: its UTC time, its level as a coloured badge, the node that wrote it (its `app.node=` metadata) and
    /// the message. The script builds the same markup for lines that arrive later.
    static func logLine(_ line: LogLine) -> HTML {
        let (node, message) = splitNode(line.message)
        let time = APIJSON.formatTime(line.time)
        let text = time.prefix(19).replacingOccurrences(of: "T", with: " ") + " UTC"
        return """
            <li class="log-line" data-time="\(time)"><span class="log-time">\(text)</span> \
            <span class="log-level level-\(line.level)">\(line.level.uppercased())</span> \
            \(HTML.when(node != nil, "<span class=\"log-node\">\(node ?? "")</span> "))\
            <span class="log-message">\(message)</span></li>
            """
    }

    /// The `app.node=NAME` the agent appends to a code node's lines, and the message without it.
    static func splitNode(_ message: String) -> (node: String?, message: String) {
        guard let match = message.firstMatch(of: /(^|\s)app\.node=(\S+)/) else { return (nil, message) }
        var rest = message
        rest.removeSubrange(match.range)
        return (String(match.output.2), rest.trimmingCharacters(in: .whitespaces))
    }
}
