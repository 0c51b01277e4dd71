import Foundation
import VantageAPI
import VantageCore

/// Values as a command line writes them: `NODE=VALUE` pairs, parameter values, times.
public enum CommandLineValues {
    /// `camera_node=cam_…` → (`camera_node`, `cam_…`); nil when there is no `=` or either side is empty.
    public static func pair(_ text: String) -> (key: String, value: String)? {
        guard let equals = text.firstIndex(of: "=") else { return nil }
        let key = String(text[..<equals]).trimmingCharacters(in: .whitespaces)
        let value = String(text[text.index(after: equals)...])
        return key.isEmpty || value.isEmpty ? nil : (key, value)
    }

    /// A parameter value: `true`/`false` are booleans, numbers are numbers, `"…"` is the string inside the quotes,
    /// anything else a string. (The server checks the value against the parameter's type in the manifest.)
    public static func parameter(_ text: String) -> JSONValue {
        switch text {
        case "true": return .bool(true)
        case "false": return .bool(false)
        default: break
        }
        if text.count >= 2, text.hasPrefix("\""), text.hasSuffix("\"") {
            return .string(String(text.dropFirst().dropLast()))
        }
        if let number = Double(text), number.isFinite { return .number(number) }
        return .string(text)
    }

    /// The `outputs` document in `path` (`--outputs FILE` of `vantage instances create` and `update`): a JSON
    /// object, sent as it is (the server checks its settings). An empty path is the empty document, which removes an
    /// instance's outputs. Secret settings must be `${NAME}` references: the device resolves them from its
    /// `vantage agent`'s environment.
    public static func outputsDocument(_ path: String) throws -> JSONValue {
        if path.isEmpty { return .object([:]) }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ClientError(.local, message: "cannot read the outputs file \(path): \(error.localizedDescription)")
        }
        let value: JSONValue
        do {
            value = try APIJSON.decoder().decode(JSONValue.self, from: data)
        } catch {
            throw ClientError(
                .local, message: "the outputs file \(path) is not JSON: \(error); see docs/outputs.md for its form")
        }
        guard case .object = value else {
            throw ClientError(
                .local,
                message:
                    "the outputs file \(path) must hold one JSON object with sinks, rules, analytics or events (see docs/outputs.md)"
            )
        }
        return value
    }

    /// A time: ISO 8601 (`2026-05-31T12:00:00Z`), or a duration back from `now`: `90s`, `15m`, `2h`, `7d`.
    public static func time(_ text: String, now: Date = Date()) -> Date? {
        if let date = APIJSON.parseTime(text) { return date }
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
        guard let unit = text.last.flatMap({ units[$0] }), let amount = Double(text.dropLast()), amount >= 0 else {
            return nil
        }
        return now.addingTimeInterval(-amount * unit)
    }
}
