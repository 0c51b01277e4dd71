import ArgumentParser
import Foundation
import VantageAPI
import VantageClient

/// `vantage releases`: Vantage releases devices can be updated to.
struct Releases: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Upload, list, describe and delete Vantage software releases on a Vantage server.",
        discussion: """
            A release is the vantage_VERSION_ARCH.tar.gz that `make package` builds. The server keeps it once, by \
            its SHA-256, with its version (read from share/vantage/version in the tarball); `vantage rollouts \
            create` sends it to devices, whose agents install it beside the running version and roll it back by \
            themselves if it does not come back healthy. See docs/updates.md.

              vantage releases upload .build/package/vantage_0.2.0_amd64.tar.gz
              vantage releases list
              vantage rollouts create --release 0.2.0 --device edge-1 --device edge-2
            """,
        subcommands: [List.self, Show.self, Upload.self, Delete.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List releases.",
            discussion: """
                  vantage releases list
                  vantage releases list --json
                """)

        @OptionGroup var options: ClientOptions

        func run() async throws {
            try await options.withClient { client in
                let releases = try await client.listReleases()
                options.printList(releases, empty: "no releases (upload one with vantage releases upload FILE.tar.gz)")
                { ResourceViews.releases(releases) }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Describe a release: its size and digest.",
            discussion: """
                  vantage releases show 0.2.0
                """)

        @OptionGroup var options: ClientOptions

        @Argument(help: "The release's version.")
        var version: String

        func run() async throws {
            try await options.withClient { client in
                let release = try await client.release(version)
                options.printItem(release) { ResourceViews.release(release).render() }
            }
        }
    }

    struct Upload: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Upload a release tarball (make package's vantage_VERSION_ARCH.tar.gz).",
            discussion: """
                The server checks that FILE is a gzip-compressed tar holding bin/vantage (or the package's \
                usr/lib/vantage/bin/vantage) and stores nothing otherwise. The version is the one the tarball \
                names in share/vantage/version (make package writes it); --version gives one to a tarball that \
                names none, and must agree with one that does.

                  vantage releases upload .build/package/vantage_0.2.0_amd64.tar.gz
                  vantage releases upload my-build.tar.gz --version 0.2.0-hotfix1
                """)

        @OptionGroup var options: ClientOptions

        @Argument(help: "The release tarball.", completion: .file(extensions: ["gz"]))
        var file: String

        @Option(help: ArgumentHelp("The release's version, when the tarball names none.", valueName: "V"))
        var version: String?

        func run() async throws {
            try await options.withClient { client in
                guard FileManager.default.isReadableFile(atPath: file) else {
                    throw ValidationError("cannot read \(file)")
                }
                let release = try await client.uploadRelease(file: URL(filePath: file), version: version)
                if options.json {
                    printJSON(release)
                    return
                }
                print(
                    "uploaded release \(release.version) (\(ResourceViews.byteCount(release.size)), \(release.digest)); "
                        + "roll it out with: vantage rollouts create --release \(release.version) --device DEVICE")
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a release no device runs and no rollout in progress sends.",
            discussion: """
                  vantage releases delete 0.1.0
                """)

        @OptionGroup var options: ClientOptions

        @Argument(help: "The release's version.")
        var version: String

        func run() async throws {
            try await options.withClient { client in
                try await client.deleteRelease(version)
                if options.json { printJSON(["deleted": version]) } else { print("deleted release \(version)") }
            }
        }
    }
}

/// `vantage rollouts`: sending a release to devices, canary first.
struct Rollouts: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Roll a software release out to devices, one canary first, and follow each device's state.",
        discussion: """
            The first device (the canary) gets the release alone; the others get it once the canary reports it \
            healthy. Each device's agent downloads the release, installs it beside the running version, switches, \
            and rolls back by itself when the new version crashes at start or is not healthy (connected, its \
            instances running and inferring) within its deadline (vantage agent --update-deadline-seconds). A \
            canary that rolls back fails the rollout, with its reason, and no other device gets the release.

            Device states: pending, downloading, installing, trial, healthy, rolled-back, failed.

              vantage rollouts create --release 0.2.0 --device edge-1 --device edge-2
              vantage rollouts create --release 0.2.0 --all
              vantage rollouts show rol_…
              vantage rollouts list
            """,
        subcommands: [List.self, Show.self, Create.self])

    /// Device id → name, for showing rollouts.
    static func deviceNames(_ client: ServerClient) async throws -> [String: String] {
        Dictionary(try await client.listDevices().map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a })
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List rollouts, newest first.",
            discussion: """
                  vantage rollouts list
                  vantage rollouts list --json
                """)

        @OptionGroup var options: ClientOptions

        func run() async throws {
            try await options.withClient { client in
                let rollouts = try await client.listRollouts()
                options.printList(
                    rollouts, empty: "no rollouts (start one with vantage rollouts create --release V --device D)"
                ) { ResourceViews.rollouts(rollouts) }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Describe a rollout: its state, and each device's state and reason.",
            discussion: """
                  vantage rollouts show rol_…
                  vantage rollouts show rol_… --json
                """)

        @OptionGroup var options: ClientOptions

        @Argument(help: "The rollout's id (rol_…).")
        var id: String

        func run() async throws {
            try await options.withClient { client in
                let rollout = try await client.rollout(id)
                if options.json {
                    printJSON(rollout)
                    return
                }
                print(ResourceViews.rollout(rollout, names: try await Rollouts.deviceNames(client)))
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start a rollout of a release to devices (the first is the canary) or to all devices.",
            discussion: """
                  vantage rollouts create --release 0.2.0 --device edge-1
                  vantage rollouts create --release 0.2.0 --device dev_… --device edge-2 --device edge-3
                  vantage rollouts create --release 0.2.0 --all
                """)

        @OptionGroup var options: ClientOptions

        @Option(help: ArgumentHelp("The release's version (vantage releases list).", valueName: "V"))
        var release: String

        @Option(
            name: .customLong("device"),
            help: ArgumentHelp("A device's id (dev_…) or name; repeat it, canary first.", valueName: "DEVICE"))
        var devices: [String] = []

        @Flag(help: "Every device (the first by name is the canary).")
        var all = false

        func validate() throws {
            guard all != !devices.isEmpty else {
                throw ValidationError("give --device DEVICE (repeatable; the first is the canary) or --all")
            }
        }

        func run() async throws {
            try await options.withClient { client in
                var ids: [String] = []
                if !all {
                    let known = try await client.listDevices()
                    for device in devices {
                        guard
                            let match = known.first(where: { $0.id == device })
                                ?? known.first(where: { $0.name == device })
                        else { throw ValidationError("no device \(device) (vantage devices list shows them)") }
                        ids.append(match.id)
                    }
                }
                let rollout = try await client.createRollout(
                    NewRollout(releaseVersion: release, deviceIds: all ? nil : ids, all: all ? true : nil))
                if options.json {
                    printJSON(rollout)
                    return
                }
                print(
                    "started rollout \(rollout.id) of \(rollout.releaseVersion) to \(rollout.devices.count) device(s); "
                        + "follow it with: vantage rollouts show \(rollout.id)")
            }
        }
    }
}
