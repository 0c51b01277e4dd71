import ArgumentParser
import Foundation
import VantageAPI
import VantageClient
import VantageCore

/// `vantage events`: what applications reported.
struct Events: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List and describe the events devices sent to a Vantage server.",
        discussion: """
            Events are what applications report (counts, detections, defects), newest first.

              vantage events list --device dev_… --since 1h
              vantage events show evt_…
            """,
        subcommands: [List.self, Show.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List events, newest first, one page at a time.",
            discussion: """
                When there are more, the last line gives the command for the next page (with --cursor). With \
                --json the output is the API's page: {"items": […], "nextCursor": "…"} (nextCursor absent on the \
                last page).

                  vantage events list
                  vantage events list --camera cam_… --type count --since 2026-05-31T08:00:00Z
                  vantage events list --instance ins_… --since 15m --json
                  vantage events list --instance ins_… --order sequence

                --order sequence lists one instance's events in the order it made them (its outbox sequence), which
                holds when the device's clock jumped; by time, events a box made with its clock a year behind sit a
                year back.
                """)

        @OptionGroup var options: ClientOptions

        @Option(help: ArgumentHelp("Only this device's events.", valueName: "ID"))
        var device: String?

        @Option(help: ArgumentHelp("Only this camera's events.", valueName: "ID"))
        var camera: String?

        @Option(help: ArgumentHelp("Only this application instance's events.", valueName: "ID"))
        var instance: String?

        @Option(help: ArgumentHelp("Only events of this type.", valueName: "TYPE"))
        var type: String?

        @Option(
            help: ArgumentHelp(
                "Only events at or after this time: ISO 8601, or a duration back from now (90s, 15m, 2h, 7d).",
                valueName: "TIME"))
        var since: String?

        @Option(help: ArgumentHelp("Events per page, 1-500 (default 50).", valueName: "N"))
        var limit: Int?

        @Option(help: ArgumentHelp("The page after the one that printed this cursor.", valueName: "C"))
        var cursor: String?

        @Option(
            help: ArgumentHelp(
                "time (default), or sequence: the instance's own order (needs --instance).", valueName: "ORDER"))
        var order: String?

        func validate() throws {
            if let order {
                guard ["time", "sequence"].contains(order) else {
                    throw ValidationError("--order must be time or sequence")
                }
                if order == "sequence", instance == nil {
                    throw ValidationError("--order sequence needs --instance ID: each instance numbers its own events")
                }
            }
            if let since, CommandLineValues.time(since) == nil {
                throw ValidationError(
                    "--since \(since) is neither an ISO 8601 time (2026-05-31T12:00:00Z) nor 15m/2h/7d")
            }
            if let limit, !(1...500).contains(limit) { throw ValidationError("--limit must be 1-500") }
        }

        func run() async throws {
            // A relative --since is fixed to an absolute time once, so the next page's command keeps the same window.
            let sinceTime = since.flatMap { CommandLineValues.time($0) }
            try await options.withClient { client in
                let page = try await client.events(
                    ServerClient.EventFilter(
                        device: device, camera: camera, instance: instance, type: type, since: sinceTime,
                        limit: limit, cursor: cursor, order: order))
                if options.json {
                    printJSON(page)
                    return
                }
                if page.items.isEmpty {
                    print(cursor == nil ? "no events" : "no more events")
                } else {
                    print(ResourceViews.events(page.items).render())
                }
                if let next = page.nextCursor {
                    print("")
                    print("more: \(nextPageCommand(cursor: next, since: sinceTime))")
                }
            }
        }

        /// This command with the next page's cursor.
        func nextPageCommand(cursor: String, since: Date?) -> String {
            var words = ["vantage", "events", "list"]
            if let server = options.server { words += ["--server", server] }
            if let device { words += ["--device", device] }
            if let camera { words += ["--camera", camera] }
            if let instance { words += ["--instance", instance] }
            if let type { words += ["--type", type] }
            if let since { words += ["--since", APIJSON.formatTime(since)] }
            if let limit { words += ["--limit", String(limit)] }
            if let order { words += ["--order", order] }
            words += ["--cursor", cursor]
            return words.map(Self.shellQuoted).joined(separator: " ")
        }

        static func shellQuoted(_ word: String) -> String {
            let plain = word.allSatisfy { $0.isLetter || $0.isNumber || "-_.:/=@+%,".contains($0) }
            return plain && !word.isEmpty ? word : "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Describe an event, with its data.",
            discussion: """
                  vantage events show evt_…
                  vantage events show evt_… --json
                """)

        @OptionGroup var options: ClientOptions

        @Argument(help: "The event's id (evt_…).")
        var id: String

        func run() async throws {
            try await options.withClient { client in
                let event = try await client.event(id)
                options.printItem(event) { ResourceViews.event(event) }
            }
        }
    }
}
