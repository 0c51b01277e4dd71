import Foundation
import VantageCore
import VantageOutputs

/// What `<outbox folder>/retired.json` keeps of the outboxes deleted with their (removed, drained) instances, so
/// that the device's totals never go down: every counter of ``OutboxCounters``, summed, under its own name, the
/// events the control plane refused from them for good (`rejectedEvents`), and the events no outbox could store for
/// a full disk (`unstoredEvents`, from every outbox, live ones included). A file written before a counter existed
/// reads it as 0.
struct RetiredOutboxes: Equatable {
    var outbox = OutboxCounters()
    /// Events the control plane refused (4xx) and the outbox dropped: heartbeats' `outbox.rejected_events`.
    var rejectedEvents = 0
    /// Events a full disk kept out of every outbox (each application was told): heartbeats'
    /// `outbox.unstored_events`.
    var unstoredEvents: Int64 = 0

    static let fileName = "retired.json"
    static let rejectedKey = "rejectedEvents"
    static let unstoredKey = "unstoredEvents"

    /// The file in `folder`; zeros when there is none (or it cannot be read).
    static func read(in folder: URL) -> RetiredOutboxes {
        (try? Data(contentsOf: folder.appending(path: fileName))).flatMap { try? decode($0) } ?? RetiredOutboxes()
    }

    func write(in folder: URL) throws {
        try AtomicFile.write(try encoded(), to: folder.appending(path: Self.fileName), permissions: 0o600)
    }

    /// Every counter as a flat JSON object: ``OutboxCounters``'s own keys, `rejectedEvents` and `unstoredEvents`.
    func encoded() throws -> Data {
        var fields = try JSONDecoder().decode([String: Int64].self, from: JSONEncoder().encode(outbox))
        fields[Self.rejectedKey] = Int64(rejectedEvents)
        fields[Self.unstoredKey] = unstoredEvents
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return try encoder.encode(fields)
    }

    /// Reads ``encoded()``'s object; a counter it lacks (a file from an older agent) is 0.
    static func decode(_ data: Data) throws -> RetiredOutboxes {
        var fields = try JSONDecoder().decode([String: Int64].self, from: data)
        let rejected = fields.removeValue(forKey: rejectedKey) ?? 0
        let unstored = fields.removeValue(forKey: unstoredKey) ?? 0
        let zeros = try JSONDecoder().decode([String: Int64].self, from: JSONEncoder().encode(OutboxCounters()))
        fields.merge(zeros) { kept, _ in kept }
        let outbox = try JSONDecoder().decode(OutboxCounters.self, from: JSONEncoder().encode(fields))
        return RetiredOutboxes(outbox: outbox, rejectedEvents: Int(rejected), unstoredEvents: unstored)
    }
}
