import Foundation
import VantageAPI
import VantageCore

/// A table for a terminal: fixed columns, each as wide as its widest cell, two spaces apart.
public struct TextTable: Sendable, Equatable {
    public var columns: [String]
    public var rows: [[String]]

    public init(columns: [String], rows: [[String]] = []) {
        self.columns = columns
        self.rows = rows
    }

    /// The longest a cell is shown; longer ones end in `…`.
    public static let maxCellWidth = 48

    /// The table's lines, without a trailing newline.
    public func render() -> String {
        let cells = ([columns] + rows).map { row in
            columns.indices.map { i in Self.clip(i < row.count ? row[i] : "") }
        }
        let widths = columns.indices.map { i in cells.map { $0[i].count }.max() ?? 0 }
        return cells.map { row in
            var line = ""
            for (i, cell) in row.enumerated() {
                line += cell
                if i < row.count - 1 { line += String(repeating: " ", count: widths[i] - cell.count + 2) }
            }
            return line.trimmingTrailingSpaces()
        }.joined(separator: "\n")
    }

    static func clip(_ text: String) -> String {
        let line = text.replacingOccurrences(of: "\n", with: " ")
        return line.count <= maxCellWidth ? line : String(line.prefix(maxCellWidth - 1)) + "…"
    }
}

/// `KEY: value` lines for one resource, the keys aligned.
public struct DetailList: Sendable, Equatable {
    public var fields: [(String, String)]

    public init(_ fields: [(String, String)]) { self.fields = fields }

    public func render() -> String {
        let width = (fields.map { $0.0.count }.max() ?? 0) + 1
        return fields.map { key, value in
            (key + ":").padding(toLength: width + 1, withPad: " ", startingAt: 0) + value
        }.joined(separator: "\n")
    }

    public static func == (a: DetailList, b: DetailList) -> Bool {
        a.fields.map { [$0.0, $0.1] } == b.fields.map { [$0.0, $0.1] }
    }
}

/// Times as an operator reads them in a table.
public enum RelativeTime {
    /// `12s ago`, `5m ago`, `3h ago`, `2d ago`; older than 30 days (or in the future), the date and time in UTC.
    public static func describe(_ date: Date?, now: Date = Date(), never: String = "never") -> String {
        guard let date else { return never }
        let seconds = Int(now.timeIntervalSince(date).rounded(.down))
        switch seconds {
        case -5..<5: return "just now"
        case 5..<60: return "\(seconds)s ago"
        case 60..<3600: return "\(seconds / 60)m ago"
        case 3600..<86_400: return "\(seconds / 3600)h ago"
        case 86_400..<(30 * 86_400): return "\(seconds / 86_400)d ago"
        default: return absolute(date)
        }
    }

    /// `2026-05-31 12:00:00 UTC`.
    public static func absolute(_ date: Date) -> String {
        let text = APIJSON.formatTime(date)  // 2026-05-31T12:00:00.000Z
        return String(text.prefix(19)).replacingOccurrences(of: "T", with: " ") + " UTC"
    }

    /// A time with its distance from now: `2026-05-31 12:00:00 UTC (5m ago)`.
    public static func full(_ date: Date?, now: Date = Date(), never: String = "never") -> String {
        guard let date else { return never }
        return "\(absolute(date)) (\(describe(date, now: now)))"
    }
}

extension String {
    fileprivate func trimmingTrailingSpaces() -> String {
        var text = self
        while text.last == " " { text.removeLast() }
        return text
    }
}
