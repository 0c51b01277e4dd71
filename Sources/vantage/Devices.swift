import ArgumentParser
import Foundation
import VantageAPI
import VantageClient

/// `vantage devices`: the appliances that run `vantage agent`.
struct Devices: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, describe, register and delete devices on a Vantage server.",
        discussion: """
            A device is an appliance that runs applications on its cameras. Registering one answers its \
            provisioning token, once: `vantage agent --token` on the device exchanges it (single use, within an \
            hour) for the device's certificate, which it uses from then on.

              vantage devices list
              vantage devices create lobby-box --description "Lobby, 2nd floor"
              vantage devices show dev_…
              vantage devices token dev_…     (a new token, to enroll the device again)
              vantage devices revoke dev_…    (cut the device off)
            """,
        subcommands: [List.self, Show.self, Create.self, Token.self, Revoke.self, Logs.self, Delete.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List devices with their status and last heartbeat.",
            discussion: """
                STATUS is the provisioning status; CONNECTION is ONLINE while heartbeats arrive.

                  vantage devices list
                  vantage devices list --json | jq -r '.[] | select(.lastHeartbeat) | .id'
                """)

        @OptionGroup var options: ClientOptions

        func run() async throws {
            try await options.withClient { client in
                let devices = try await client.listDevices()
                options.printList(devices, empty: "no devices (create one with vantage devices create NAME)") {
                    ResourceViews.devices(devices)
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Describe a device.",
            discussion: """
                  vantage devices show dev_…
                  vantage devices show dev_… --json
                """)

        @OptionGroup var options: ClientOptions

        @Argument(help: "The device's id (dev_…) or name.")
        var id: String

        func run() async throws {
            try await options.withClient { client in
                let device = try await client.device(id)
                // The device's clock against the server's, from its last heartbeat (older agents do not say).
                let skew =
                    options.json
                    ? nil : try? await client.deviceMetrics(id, name: "clock.skew_seconds").last?.value
                options.printItem(device) { ResourceViews.device(device, clockSkewSeconds: skew).render() }
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register a device; prints its provisioning token, once.",
            discussion: """
                The provisioning token is shown only this once (the server keeps only its hash): copy it to the \
                device. With --json the answer is {"device": …, "provisioningToken": "vd_…", "tokenExpiresAt": …, \
                "caFingerprint": "sha256:…"}.

                  vantage devices create lobby-box
                  vantage devices create dock-3 --description "Loading dock"
                """)

        @OptionGroup var options: ClientOptions

        @Argument(help: "The device's name: letters, digits, '-', '_', '.' or spaces.")
        var name: String

        @Option(help: "What the device is, or where.")
        var description: String?

        func run() async throws {
            try await options.withClient { client in
                let created = try await client.createDevice(NewDevice(name: name, description: description))
                if options.json {
                    printJSON(created)
                    return
                }
                print("created device \(created.device.id) (\(created.device.name))")
                Devices.printEnrollment(created)
            }
        }
    }

    /// The token, its expiry, and the command that enrolls the device with it.
    static func printEnrollment(_ created: DeviceCreated) {
        let expiry = ISO8601DateFormatter().string(from: created.tokenExpiresAt)
        print("provisioning token (shown only this once; single use, valid until \(expiry)):")
        print("  \(created.provisioningToken)")
        // An older server does not say where its device endpoint is: HOST stands for it then.
        let server = created.deviceEndpoint ?? "https://HOST:8443"
        print("on the device, enroll and start with (sudo where the vantage package is installed):")
        print(
            "  vantage agent enroll --server \(server) --token \(created.provisioningToken) --ca-hash \(created.caFingerprint)"
        )
    }

    struct Token: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a new one-time provisioning token for a device (to enroll it again).",
            discussion: """
                For a replaced or reinstalled appliance, or when the first token expired unused. The old token \
                stops working; the device's current certificate stays valid until the new enrollment replaces it.

                  vantage devices token dev_…
                """)

        @OptionGroup var options: ClientOptions

        @Argument(help: "The device's id (dev_…) or name.")
        var id: String

        func run() async throws {
            try await options.withClient { client in
                let created = try await client.createProvisioningToken(id)
                if options.json {
                    printJSON(created)
                    return
                }
                Devices.printEnrollment(created)
            }
        }
    }

    struct Logs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a device agent's own log lines (enrollment, connection, deployments).",
            discussion: """
                Each instance's lines are under vantage instances logs ID.

                  vantage devices logs dev_… --follow
                  vantage devices logs dev_… --level warning --grep enroll
                """)

        @OptionGroup var options: ClientOptions

        @Argument(help: "The device's id (dev_…) or name.")
        var id: String

        @OptionGroup var lines: LogOptions

        func run() async throws {
            try await options.withClient { client in
                try await lines.print(json: options.json) {
                    try await client.deviceLogs(id, since: $0, limit: $1, level: lines.level, contains: lines.grep)
                }
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a device's certificate: the server refuses it from its next request on.",
            discussion: """
                Use it for a lost or stolen appliance. It can come back only by enrolling with a new token \
                (vantage devices token ID).

                  vantage devices revoke dev_…
                """)

        @OptionGroup var options: ClientOptions

        @Argument(help: "The device's id (dev_…) or name.")
        var id: String

        func run() async throws {
            try await options.withClient { client in
                let device = try await client.revokeDevice(id)
                if options.json { printJSON(device) } else { print("revoked device \(id): it must enroll again") }
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a device that runs no application instance.",
            discussion: """
                Remove the device's instances first (vantage instances delete ID).

                  vantage devices delete dev_…
                """)

        @OptionGroup var options: ClientOptions

        @Argument(help: "The device's id (dev_…) or name.")
        var id: String

        func run() async throws {
            try await options.withClient { client in
                try await client.deleteDevice(id)
                if options.json { printJSON(["deleted": id]) } else { print("deleted device \(id)") }
            }
        }
    }
}
