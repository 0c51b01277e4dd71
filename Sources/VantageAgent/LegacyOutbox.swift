import Foundation
import Logging
import VantageAPI
import VantageCore
import VantageOutputs

/// The single outbox file agents before issue 15 kept (`<data>/outbox.sqlite`, events with their snapshots as blobs,
/// for the control plane only). An agent upgraded with events still in it sends them first, oldest first, deleting
/// each batch once the server acknowledged it, and deletes the file when it is empty: an upgrade loses nothing.
/// Nothing writes to this file any more.
enum LegacyOutbox {
    /// Sends what `file` holds, if it exists, until it is empty (then deletes it) or the task is cancelled.
    static func drain(
        _ file: URL, send: @Sendable ([NewEvent]) async throws -> Void, maxBackoff: Duration, logger: Logger
    ) async {
        guard FileManager.default.fileExists(atPath: file.path) else { return }
        let connection: SQLiteConnection
        do {
            connection = try SQLiteConnection(path: file.path)
        } catch {
            logger.error("the outbox of the previous agent version cannot be opened; its events are not sent: \(error)")
            return
        }
        logger.notice(
            "sending the events left in the previous agent version's outbox", metadata: ["file": "\(file.path)"])
        var backoff = Backoff(max: maxBackoff)
        var rejected = 0
        while !Task.isCancelledOrShuttingDown {
            let batch: [(Int64, NewEvent)]
            do {
                batch = try read(connection, limit: 100)
            } catch {
                logger.error("the previous agent version's outbox cannot be read; its events are not sent: \(error)")
                return
            }
            if batch.isEmpty { break }
            do {
                do {
                    try await send(batch.map(\.1))
                } catch LinkError.rejected {
                    // One refused event must not hold up the rest: send them one at a time, dropping the refused.
                    for (_, event) in batch {
                        do { try await send([event]) } catch LinkError.rejected { rejected += 1 }
                    }
                }
                try delete(connection, through: batch.last!.0)
                backoff.reset()
            } catch {
                try? await Task.sleep(for: backoff.next())
            }
        }
        guard !Task.isCancelledOrShuttingDown else { return }
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: file.path + suffix) }
        logger.notice("the previous agent version's outbox is sent and deleted", metadata: ["refused": "\(rejected)"])
    }

    private static func read(_ db: SQLiteConnection, limit: Int64) throws -> [(Int64, NewEvent)] {
        let select = try db.statement(
            """
            SELECT e.sequence, e.id, e.type, e.time, e.camera_id, e.instance_id, e.data, s.bytes
            FROM events AS e LEFT JOIN snapshots AS s ON s.sequence = e.sequence ORDER BY e.sequence LIMIT ?1
            """)
        defer { select.reset() }
        try select.bind(limit, at: 1)
        var events: [(Int64, NewEvent)] = []
        while try select.step() {
            let data = JSONValue(parsing: select.text(6) ?? "") ?? .string(select.text(6) ?? "")
            events.append(
                (
                    select.int64(0),
                    NewEvent(
                        id: select.text(1), type: select.text(2) ?? "app",
                        time: Date(timeIntervalSinceReferenceDate: select.double(3)), cameraId: select.text(4),
                        instanceId: select.text(5), data: data,
                        snapshot: select.blob(7).map { Data($0).base64EncodedString() })
                ))
        }
        return events
    }

    private static func delete(_ db: SQLiteConnection, through sequence: Int64) throws {
        try db.transaction {
            for table in ["events", "snapshots"] {
                let delete = try db.statement("DELETE FROM \(table) WHERE sequence <= ?1")
                try delete.bind(sequence, at: 1)
                _ = try delete.step()
                delete.reset()
            }
        }
    }
}
