import ArgumentParser
import Foundation
import VantageAPI
import VantageClient

/// `vantage instances list|show|create|stop|start|delete|deployments`: application instances on a Vantage server.
extension Instances {
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List application instances on a Vantage server.",
            discussion: """
                DESIRED is what the operator asked for; STATUS and HEALTH are what the device reported.

                  vantage instances list
                  vantage instances list --device dev_… --status DEPLOYMENT_SUCCEEDED
                """)

        @OptionGroup var options: ClientOptions

        @Option(help: ArgumentHelp("Only this device's instances.", valueName: "ID"))
        var device: String?

        @Option(
            help: ArgumentHelp(
                "Only instances in this status: \(InstanceStatus.allCases.map(\.rawValue).joined(separator: ", ")).",
                valueName: "S"))
        var status: String?

        func validate() throws {
            if let status, InstanceStatus(rawValue: status.uppercased()) == nil {
                throw ValidationError(
                    "--status must be one of \(InstanceStatus.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }

        func run() async throws {
            try await options.withClient { client in
                let instances = try await client.listInstances(
                    device: device, status: status.flatMap { InstanceStatus(rawValue: $0.uppercased()) })
                let filtered = device != nil || status != nil
                options.printList(
                    instances,
                    empty: filtered
                        ? "no instances match"
                        : "no instances (deploy one with vantage instances create --name N --package ID --version V "
                            + "--device ID --camera NODE=CAMERA_ID)"
                ) {
                    ResourceViews.instances(instances)
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Describe an application instance: its bindings, parameters and status.",
            discussion: """
                  vantage instances show ins_…
                """)

        @OptionGroup var options: ClientOptions

        @Argument(help: "The instance's id (ins_…).")
        var id: String

        func run() async throws {
            try await options.withClient { client in
                let instance = try await client.instance(id)
                options.printItem(instance) { ResourceViews.instance(instance) }
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Deploy a package version to a device.",
            discussion: """
                Every camera node of the application needs a camera (--camera NODE=CAMERA_ID); overridable \
                parameters may be set with --param NODE=VALUE (true/false and numbers are sent as such; quote a \
                number as '"5"' to send it as a string). `vantage packages show` lists both. The device deploys \
                the instance at its next check-in; --stopped deploys it without starting it.

                  vantage instances create --name lobby-count --package people-counter \\
                      --version 1.0 --device dev_… --camera camera_node=cam_… \\
                      --param min_score=0.7 --param max_people=20
                """)

        @OptionGroup var options: ClientOptions

        @Option(help: "The instance's name: letters, digits, '-', '_', '.' or spaces.")
        var name: String

        @Option(help: ArgumentHelp("The package's id (pkg_…) or name.", valueName: "ID"))
        var package: String

        @Option(help: ArgumentHelp("The package version, e.g. 1.0.", valueName: "V"))
        var version: String

        @Option(help: ArgumentHelp("The device to run it on.", valueName: "ID"))
        var device: String

        @Option(
            name: .customLong("camera"),
            help: ArgumentHelp("A camera node's camera; repeat for every camera node.", valueName: "NODE=CAMERA_ID"))
        var cameras: [String] = []

        @Option(
            name: .customLong("param"),
            help: ArgumentHelp("An overridable parameter's value; repeatable.", valueName: "NODE=VALUE"))
        var parameters: [String] = []

        @Flag(help: "Deploy it stopped (start it later with vantage instances start).")
        var stopped = false

        @Option(help: "What the instance is for.")
        var description: String?

        func validate() throws {
            for camera in cameras where CommandLineValues.pair(camera) == nil {
                throw ValidationError("--camera \(camera) is not NODE=CAMERA_ID, e.g. camera_node=cam_…")
            }
            for parameter in parameters where CommandLineValues.pair(parameter) == nil {
                throw ValidationError("--param \(parameter) is not NODE=VALUE, e.g. min_score=0.7")
            }
        }

        func run() async throws {
            try await options.withClient { client in
                var bindings: [String: String] = [:]
                for camera in cameras {
                    let pair = CommandLineValues.pair(camera)!
                    bindings[pair.key] = pair.value
                }
                var values: [String: JSONValue] = [:]
                for parameter in parameters {
                    let pair = CommandLineValues.pair(parameter)!
                    values[pair.key] = CommandLineValues.parameter(pair.value)
                }
                guard let found = try await client.findPackage(package) else {
                    throw ClientError(.notFound, status: 404, message: "no package \(package)")
                }
                let instance = try await client.createInstance(
                    NewInstance(
                        name: name, description: description, packageId: found.id, packageVersion: version,
                        deviceId: device, cameras: bindings, parameters: values.isEmpty ? nil : values,
                        desiredState: stopped ? .stopped : .running))
                if options.json {
                    printJSON(instance)
                    return
                }
                print(
                    "created instance \(instance.id) (\(instance.name)): \(instance.packageName) "
                        + "\(instance.packageVersion) on \(instance.deviceId), desired \(instance.desiredState.rawValue), "
                        + "status \(instance.status.rawValue)")
                print(
                    "the device deploys it at its next check-in; follow it with: vantage instances show \(instance.id)")
            }
        }
    }

    struct Stop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop an application instance (desired state STOPPED).",
            discussion: """
                  vantage instances stop ins_…
                """)

        @OptionGroup var options: ClientOptions

        @Argument(help: "The instance's id (ins_…).")
        var id: String

        func run() async throws {
            try await setDesiredState(.stopped, of: id, options: options)
        }
    }

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start a stopped application instance (desired state RUNNING).",
            discussion: """
                  vantage instances start ins_…
                """)

        @OptionGroup var options: ClientOptions

        @Argument(help: "The instance's id (ins_…).")
        var id: String

        func run() async throws {
            try await setDesiredState(.running, of: id, options: options)
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove an application instance from its device.",
            discussion: """
                The instance goes to REMOVAL_PENDING; the device stops and removes it at its next check-in.

                  vantage instances delete ins_…
                """)

        @OptionGroup var options: ClientOptions

        @Argument(help: "The instance's id (ins_…).")
        var id: String

        func run() async throws {
            try await options.withClient { client in
                let instance = try await client.removeInstance(id)
                if options.json {
                    printJSON(instance)
                    return
                }
                print(
                    "removing instance \(instance.id) (\(instance.name)) from \(instance.deviceId): status "
                        + "\(instance.status.rawValue); the device removes it at its next check-in")
            }
        }
    }

    struct Deployments: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List an application instance's deployments, newest first.",
            discussion: """
                Every create, version change, stop, start and removal is a deployment; MESSAGE is the device's.

                  vantage instances deployments ins_…
                """)

        @OptionGroup var options: ClientOptions

        @Argument(help: "The instance's id (ins_…).")
        var id: String

        func run() async throws {
            try await options.withClient { client in
                let deployments = try await client.deployments(instance: id)
                options.printList(deployments, empty: "no deployments of \(id)") {
                    ResourceViews.deployments(deployments)
                }
            }
        }
    }

    private static func setDesiredState(_ state: DesiredState, of id: String, options: ClientOptions) async throws {
        try await options.withClient { client in
            let instance = try await client.updateInstance(id, InstanceUpdate(desiredState: state))
            if options.json {
                printJSON(instance)
                return
            }
            print(
                "instance \(instance.id) (\(instance.name)): desired \(instance.desiredState.rawValue), status "
                    + "\(instance.status.rawValue); the device applies it at its next check-in")
        }
    }
}
