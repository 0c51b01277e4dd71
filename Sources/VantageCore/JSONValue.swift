import Foundation

/// Any JSON value: event data, model descriptors, parameter values, an instance's outputs document.
public enum JSONValue: Codable, Sendable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let v = try? c.decode(Bool.self) {
            self = .bool(v)
        } else if let v = try? c.decode(Double.self) {
            self = .number(v)
        } else if let v = try? c.decode(String.self) {
            self = .string(v)
        } else if let v = try? c.decode([JSONValue].self) {
            self = .array(v)
        } else {
            self = .object(try c.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let v): try c.encode(v)
        case .number(let v):
            if v.rounded() == v, abs(v) < 1e15 { try c.encode(Int64(v)) } else { try c.encode(v) }
        case .string(let v): try c.encode(v)
        case .array(let v): try c.encode(v)
        case .object(let v): try c.encode(v)
        }
    }

    /// The value as a form or command line would write it: `0.6`, `true`, `text`.
    public var text: String {
        switch self {
        case .null: return ""
        case .bool(let v): return v ? "true" : "false"
        case .number(let v): return v.rounded() == v && abs(v) < 1e15 ? String(Int64(v)) : String(v)
        case .string(let v): return v
        case .array, .object: return APIJSON.string(self)
        }
    }
}

/// The API's JSON: ISO 8601 times with milliseconds, sorted keys (stable output for people and tests).
public enum APIJSON {
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(formatTime(date))
        }
        return encoder
    }

    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let c = try decoder.singleValueContainer()
            let text = try c.decode(String.self)
            guard let date = parseTime(text) else {
                throw DecodingError.dataCorruptedError(
                    in: c, debugDescription: "\"\(text)\" is not an ISO 8601 time like 2026-05-31T12:00:00Z")
            }
            return date
        }
        return decoder
    }

    /// `2026-05-31T12:00:00.000Z`.
    public static func formatTime(_ date: Date) -> String {
        date.iso8601Text
    }

    /// Reads ISO 8601 with or without fractional seconds.
    public static func parseTime(_ text: String) -> Date? {
        (try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text))
            ?? (try? Date.ISO8601FormatStyle().parse(text))
    }

    /// Compact JSON text of `value`.
    public static func string(_ value: some Encodable) -> String {
        (try? encoder().encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
    }
}

extension JSONValue {
    /// Parses JSON text; nil when it is not JSON.
    public init?(parsing text: String) {
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) else { return nil }
        self = value
    }

    /// Compact JSON text with sorted keys (equal values give equal text), written by the API's encoder; whole
    /// numbers have no fraction. (`text` is the value as a form shows it: a string without quotes.)
    public var jsonText: String { APIJSON.string(self) }

    /// The value at a path of object keys, or nil.
    public subscript(path: [String]) -> JSONValue? {
        var current = self
        for key in path {
            guard case .object(let o) = current, let next = o[key] else { return nil }
            current = next
        }
        return current
    }

    /// The member `key` of an object, or nil.
    public subscript(key: String) -> JSONValue? { self[[key]] }

    /// The text of a string value.
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The number of a number value.
    public var numberValue: Double? {
        if case .number(let n) = self { return n }
        return nil
    }
}
