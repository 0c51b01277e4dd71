import Foundation
import VantageAPI

// The outputs read configuration and match rules with VantageAPI's `JSONValue` (the control plane stores an
// instance's outputs document as one); these are the extras they need: parsing, compact text with sorted keys, and
// lookups by path.

extension JSONValue {
    /// Parses JSON text; nil when it is not JSON.
    public init?(parsing text: String) {
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) else { return nil }
        self = value
    }

    /// Compact JSON text with sorted keys (equal values give equal text); whole numbers are written without a
    /// fraction. (`text` is the value as a form shows it: a string without quotes.)
    public var jsonText: String {
        var out = ""
        write(into: &out)
        return out
    }

    private func write(into out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let n):
            if n == n.rounded(), abs(n) < 1e15 { out += String(Int64(n)) } else { out += String(n) }
        case .string(let s): out += JSONValue.quoted(s)
        case .array(let a):
            out += "["
            for (i, v) in a.enumerated() {
                if i > 0 { out += "," }
                v.write(into: &out)
            }
            out += "]"
        case .object(let o):
            out += "{"
            for (i, key) in o.keys.sorted().enumerated() {
                if i > 0 { out += "," }
                out += JSONValue.quoted(key)
                out += ":"
                o[key]!.write(into: &out)
            }
            out += "}"
        }
    }

    /// `s` as a JSON string literal.
    public static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

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
