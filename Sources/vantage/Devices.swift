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
            provisioning token, once: the device uses it to connect.

              vantage devices list
              vantage devices create lobby-box --description "Lobby, 2nd floor"
              vantage devices show dev_…
            """,
        subcommands: [List.self, Show.self, Create.self, Delete.self])

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

        @Argument(help: "The device's id (dev_…).")
        var id: String

        func run() async throws {
            try await options.withClient { client in
                let device = try await client.device(id)
                options.printItem(device) { ResourceViews.device(device).render() }
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register a device; prints its provisioning token, once.",
            discussion: """
                The provisioning token is shown only this once (the server keeps only its hash): copy it to the \
                device. With --json the answer is {"device": …, "provisioningToken": "vd_…"}.

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
                print("provisioning token (shown only this once; the device needs it to connect):")
                print("  \(created.provisioningToken)")
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

        @Argument(help: "The device's id (dev_…).")
        var id: String

        func run() async throws {
            try await options.withClient { client in
                try await client.deleteDevice(id)
                if options.json { printJSON(["deleted": id]) } else { print("deleted device \(id)") }
            }
        }
    }
}
