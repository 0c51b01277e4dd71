import Foundation
import VantageAPI

// The outputs read configuration and match rules with VantageAPI's `JSONValue` (the control plane stores an
// instance's outputs document as one); these are the extras they need: parsing, compact text, lookups by path.

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
