import ArgumentParser
import Foundation
import VantageAPI
import VantageClient
import VantageCore

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

        @Argument(help: "The instance's id (ins_…) or name.")
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

                --outputs FILE gives the instance an outputs document (sinks, rules, analytics: docs/outputs.md), \
                as `vantage run --outputs FILE` does. Secrets in it are written "${NAME}" and set in the \
                environment of `vantage agent` on the device; the server refuses them written out.

                --aws-profile NAME (or --aws-env, or --aws-access-key-id ID with the secret on standard input) gives \
                the application AWS credentials, as Panorama's application role did: its code gets them as \
                AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN and AWS_REGION. The server keeps them \
                encrypted, sends them only to the device, and never shows the secret.

                  vantage instances create --name lobby-count --package people-counter \\
                      --version 1.0 --device dev_… --camera camera_node=cam_… \\
                      --param min_score=0.7 --param max_people=20 --outputs sinks.json \\
                      --aws-profile lobby-app
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

        @Option(
            name: .customLong("model"),
            help: ArgumentHelp(
                "Serve a model node with a model of the server (its latest version); repeatable.",
                valueName: "NODE=MODEL_ID"))
        var models: [String] = []

        @Option(
            help: ArgumentHelp(
                "An outputs document (sinks, rules, analytics) for the device to run the instance with; secrets as ${NAME}.",
                valueName: "FILE"))
        var outputs: String?

        @OptionGroup(title: "AWS credentials") var aws: AWSCredentialOptions

        @Flag(help: "Deploy it stopped (start it later with vantage instances start).")
        var stopped = false

        @Option(help: "What the instance is for.")
        var description: String?

        func validate() throws {
            for camera in cameras where CommandLineValues.pair(camera) == nil {
                throw ValidationError("--camera \(camera) is not NODE=CAMERA_ID, e.g. camera_node=cam_…")
            }
            try InstanceBindings.validate(parameters: parameters, models: models)
        }

        func run() async throws {
            try await options.withClient { client in
                var bindings: [String: String] = [:]
                for camera in cameras {
                    let pair = CommandLineValues.pair(camera)!
                    bindings[pair.key] = pair.value
                }
                let values = InstanceBindings.parameters(parameters)
                let modelBindings = InstanceBindings.models(models)
                let document = try outputs.flatMap { path in
                    path.isEmpty ? nil : try CommandLineValues.outputsDocument(path)
                }
                let credentials = try aws.credentials()
                guard let found = try await client.findPackage(package) else {
                    throw ClientError(.notFound, status: 404, message: "no package \(package)")
                }
                let instance = try await client.createInstance(
                    NewInstance(
                        name: name, description: description, packageId: found.id, packageVersion: version,
                        deviceId: device, cameras: bindings, parameters: values.isEmpty ? nil : values,
                        models: modelBindings.isEmpty ? nil : modelBindings, outputs: document,
                        desiredState: stopped ? .stopped : .running, awsCredentials: credentials))
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

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Deploy a new package version, parameters, models, outputs or AWS credentials to an application instance.",
            discussion: """
                Anything given is a new deployment: the device downloads the new version beside the running one, \
                switches to it, and keeps it only if it infers frames (else it rolls back and says why).

                --outputs FILE replaces the instance's outputs document (docs/outputs.md); --no-outputs (or \
                --outputs '') removes it. --aws-profile NAME (or --aws-env, or --aws-access-key-id ID) replaces the \
                application's AWS credentials; --clear-aws-credentials removes them.

                  vantage instances update ins_… --version 1.1
                  vantage instances update ins_… --param min_score=0.6 --model model_node=mdl_…
                  vantage instances update ins_… --outputs sinks.json
                  vantage instances update ins_… --aws-profile lobby-app
                """)

        @OptionGroup var options: ClientOptions

        @Argument(help: "The instance's id (ins_…) or name.")
        var id: String

        @Option(help: ArgumentHelp("The package version to deploy.", valueName: "V"))
        var version: String?

        @Option(
            name: .customLong("param"),
            help: ArgumentHelp("An overridable parameter's value; repeatable.", valueName: "NODE=VALUE"))
        var parameters: [String] = []

        @Option(
            name: .customLong("model"),
            help: ArgumentHelp("Serve a model node with a model of the server; repeatable.", valueName: "NODE=MODEL_ID")
        )
        var models: [String] = []

        @Option(
            help: ArgumentHelp(
                "A new outputs document (sinks, rules, analytics); '' removes it. Secrets as ${NAME}.",
                valueName: "FILE"))
        var outputs: String?

        @Flag(help: "Remove the instance's outputs document.")
        var noOutputs = false

        @OptionGroup(title: "AWS credentials") var aws: AWSCredentialOptions

        @Flag(help: "Remove the application's AWS credentials.")
        var clearAwsCredentials = false

        func validate() throws {
            try InstanceBindings.validate(parameters: parameters, models: models)
            if noOutputs, outputs != nil {
                throw ValidationError("give either --outputs FILE or --no-outputs, not both")
            }
            if clearAwsCredentials, aws.given {
                throw ValidationError("give either new AWS credentials or --clear-aws-credentials, not both")
            }
            guard
                version != nil || !parameters.isEmpty || !models.isEmpty || outputs != nil || noOutputs || aws.given
                    || clearAwsCredentials
            else {
                throw ValidationError(
                    "give what to change: --version, --param, --model, --outputs, --no-outputs, --aws-profile, "
                        + "--aws-env, --aws-access-key-id or --clear-aws-credentials")
            }
        }

        func run() async throws {
            try await options.withClient { client in
                var update = InstanceUpdate(packageVersion: version)
                if !parameters.isEmpty {
                    let current = try await client.instance(id)
                    update.parameters = current.parameters.merging(InstanceBindings.parameters(parameters)) { $1 }
                }
                if !models.isEmpty { update.models = InstanceBindings.models(models) }
                if noOutputs {
                    update.outputs = .object([:])
                } else if let outputs {
                    update.outputs = try CommandLineValues.outputsDocument(outputs)
                }
                if clearAwsCredentials {
                    update.awsCredentials = .remove
                } else if let credentials = try aws.credentials() {
                    update.awsCredentials = .set(credentials)
                }
                let instance = try await client.updateInstance(id, update)
                if options.json {
                    printJSON(instance)
                    return
                }
                print(
                    "deploying \(instance.packageName) \(instance.packageVersion) to \(instance.deviceId): status "
                        + "\(instance.status.rawValue); follow it with: vantage instances show \(instance.id)")
            }
        }
    }

    struct Logs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print an application instance's log lines, as its device shipped them.",
            discussion: """
                The newest lines, oldest first: the runtime's lines about the instance (deployments, cameras, \
                models) and what its code nodes wrote to their logs folder. --follow keeps printing new ones.

                  vantage instances logs ins_…
                  vantage instances logs ins_… --limit 1000 --follow
                  vantage instances logs ins_… --level warning --grep camera
                """)

        @OptionGroup var options: ClientOptions

        @Argument(help: "The instance's id (ins_…) or name.")
        var id: String

        @OptionGroup var lines: LogOptions

        func run() async throws {
            try await options.withClient { client in
                try await lines.print(json: options.json) {
                    try await client.instanceLogs(
                        id, since: $0, limit: $1, level: lines.level, contains: lines.grep)
                }
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

        @Argument(help: "The instance's id (ins_…) or name.")
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

        @Argument(help: "The instance's id (ins_…) or name.")
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

        @Argument(help: "The instance's id (ins_…) or name.")
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

        @Argument(help: "The instance's id (ins_…) or name.")
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

/// `--param NODE=VALUE` and `--model NODE=MODEL_ID` of `instances create` and `update`.
enum InstanceBindings {
    static func validate(parameters: [String], models: [String]) throws {
        for parameter in parameters where CommandLineValues.pair(parameter) == nil {
            throw ValidationError("--param \(parameter) is not NODE=VALUE, e.g. min_score=0.7")
        }
        for model in models where CommandLineValues.pair(model) == nil {
            throw ValidationError("--model \(model) is not NODE=MODEL_ID, e.g. model_node=mdl_…")
        }
    }

    static func parameters(_ arguments: [String]) -> [String: JSONValue] {
        var values: [String: JSONValue] = [:]
        for argument in arguments {
            let pair = CommandLineValues.pair(argument)!
            values[pair.key] = CommandLineValues.parameter(pair.value)
        }
        return values
    }

    static func models(_ arguments: [String]) -> [String: String] {
        var values: [String: String] = [:]
        for argument in arguments {
            let pair = CommandLineValues.pair(argument)!
            values[pair.key] = pair.value
        }
        return values
    }
}

/// `--limit`, `--level`, `--grep` and `--follow` of `instances logs` and `devices logs`, and the printing: the newest
/// lines, then with `--follow` newer ones every two seconds (lines at the last printed time that were printed already
/// are skipped).
struct LogOptions: ParsableArguments {
    @Option(help: ArgumentHelp("How many of the newest lines (1-5000).", valueName: "N"))
    var limit = 200

    @Option(
        help: ArgumentHelp(
            "Only lines of this level or above: trace, debug, info, notice, warning, error, critical.",
            valueName: "LEVEL"))
    var level: String?

    @Option(help: ArgumentHelp("Only lines whose message holds this text (case-insensitive).", valueName: "TEXT"))
    var grep: String?

    @Flag(help: "Keep printing new lines (every 2 s) until Ctrl-C.")
    var follow = false

    static let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    func validate() throws {
        if let level, !Self.levels.contains(level.lowercased()) {
            throw ValidationError("--level must be one of \(Self.levels.joined(separator: ", ")), not \"\(level)\"")
        }
        if let grep, grep.isEmpty { throw ValidationError("--grep needs some text to look for") }
    }

    /// `fetch(since, limit)` answers lines oldest first.
    func print(json: Bool, fetch: (Date?, Int) async throws -> [LogLine]) async throws {
        var printed = Set<String>()
        var last: Date?
        while true {
            for line in try await fetch(last, last == nil ? limit : 5000) {
                let key = "\(line.time.timeIntervalSince1970)|\(line.level)|\(line.message)"
                if let last, line.time <= last, printed.contains(key) { continue }
                if json {
                    printJSON(line)
                } else {
                    Swift.print("\(APIJSON.formatTime(line.time)) \(line.level.uppercased()) \(line.message)")
                }
                if line.time != last { printed.removeAll() }
                printed.insert(key)
                last = line.time
            }
            guard follow else { return }
            fflush(nil)  // standard output is block-buffered when piped: show each round's lines now
            try await Task.sleep(for: .seconds(2))
        }
    }
}
