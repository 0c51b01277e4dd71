import ArgumentParser
import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import VantageAPI
import VantageListeners
import VantageServer

/// `vantage server`: the control plane.
struct Server: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the control plane: REST API, web console and database for a fleet of Vantage devices.",
        discussion: """
            With no flags, everything is kept under ./vantage-data/ (a SQLite database, the artifact folder and the
            key that encrypts camera credentials) and the server listens on 127.0.0.1:8090. At the first start it
            prints an admin API token once; `vantage server init-admin` sets a console password. `vantage server
            init` does that first step before the first start instead (and sets up the packaged service).

              sudo vantage server init
              vantage server
              vantage server --listen 0.0.0.0:8090 --database-url postgres://vantage:PASSWORD@db:5432/vantage

            Several replicas may share one PostgreSQL database (and one data folder, or --secret-key-file and a
            shared artifact folder). The API is described at /openapi.json.
            """,
        subcommands: [Serve.self, Init.self, InitAdmin.self, OpenAPI.self],
        defaultSubcommand: Serve.self)

    struct Options: ParsableArguments {
        @Option(help: ArgumentHelp("Folder for the database, artifacts and key.", valueName: "DIR"))
        var data = "vantage-data"

        @Option(
            help: ArgumentHelp(
                "Use PostgreSQL instead of SQLite: postgres://USER:PASSWORD@HOST:PORT/DB (or $VANTAGE_DATABASE_URL).",
                valueName: "URL"))
        var databaseURL: String?

        @Option(
            help: ArgumentHelp("The key that encrypts camera credentials (default DIR/secret.key).", valueName: "FILE"))
        var secretKeyFile: String?

        @Option(
            help: ArgumentHelp(
                "Where model files, package archives and snapshots are kept (default DIR/artifacts).",
                valueName: "FOLDER"))
        var artifacts: String?

        func validate() throws {
            if let artifacts, artifacts.contains("://") {
                throw ValidationError(
                    "--artifacts \(artifacts): only a folder is supported yet (S3-compatible storage comes with the integrations work); replicas can share a folder on shared storage"
                )
            }
        }

        func configuration() -> ServerConfiguration {
            var configuration = ServerConfiguration()
            configuration.dataDirectory = URL(filePath: data)
            configuration.databaseURL = databaseURL ?? ProcessInfo.processInfo.environment["VANTAGE_DATABASE_URL"]
            configuration.secretKeyFile = secretKeyFile.map { URL(filePath: $0) }
            configuration.artifactsFolder = artifacts.map { URL(filePath: $0) }
            return configuration
        }
    }

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run the server (the default).")

        @OptionGroup var options: Options

        @Option(help: ArgumentHelp("Address and port to listen on.", valueName: "HOST:PORT"))
        var listen = "127.0.0.1:8090"

        @Option(
            help: ArgumentHelp(
                "Where devices enroll and call in (HTTPS, mutual TLS with the server's own CA); \"off\" for none.",
                valueName: "HOST:PORT"))
        var deviceListen = "127.0.0.1:8443"

        @Option(
            name: .customLong("device-hostname"),
            help: ArgumentHelp(
                "A name or address agents reach the device endpoint by, for its certificate (repeatable; localhost, "
                    + "loopback and this machine's name are always in).", valueName: "NAME"))
        var deviceHostnames: [String] = []

        @Option(help: ArgumentHelp("How long a provisioning token can be used to enroll.", valueName: "MINUTES"))
        var tokenLifetimeMinutes = 60

        @Option(
            help: ArgumentHelp(
                "How long after its certificate ended a device may still renew it (with that certificate and its key; "
                    + "audited), for a box that was offline at renewal time; 0 for no grace. May be fractional.",
                valueName: "DAYS"))
        var expiredRenewalDays: Double = 30

        @Option(
            help: ArgumentHelp(
                "How long the device certificates issued from now on are valid (tests use seconds).",
                valueName: "SECONDS", visibility: .hidden))
        var deviceCertificateLifetimeSeconds: Int = 365 * 86400

        @Option(help: ArgumentHelp("The largest model or package upload, in MiB.", valueName: "MIB"))
        var maxUploadMb = 2048

        @Flag(help: "Send session cookies without the Secure attribute (only behind a proxy that terminates HTTPS).")
        var insecureCookies = false

        @Option(
            help: ArgumentHelp(
                "Close a connection that sends no complete request head for this long (also between keep-alive "
                    + "requests).", valueName: "SECONDS"))
        var idleTimeoutSeconds: Double = 30

        @Option(
            help: ArgumentHelp(
                "The most connections both listeners hold together (default: the open-file limit less a reserve); at "
                    + "the cap the one that waited longest without a request is closed.", valueName: "N"))
        var maxConnections: Int?

        @Option(
            help: ArgumentHelp(
                "Require the token in FILE (its first line) as Authorization: Bearer on /metrics (or "
                    + "$VANTAGE_METRICS_TOKEN_FILE, or the token itself in $VANTAGE_METRICS_TOKEN); without one, "
                    + "/metrics is open to anyone who reaches a listener.", valueName: "FILE"))
        var metricsTokenFile: String?

        @Option(help: ArgumentHelp("Log level: trace, debug, info, notice, warning, error.", valueName: "LEVEL"))
        var logLevel = "info"

        func validate() throws {
            guard let colon = listen.lastIndex(of: ":"), Int(listen[listen.index(after: colon)...]) != nil else {
                throw ValidationError("--listen \(listen) is not HOST:PORT, e.g. 127.0.0.1:8090")
            }
            guard Logger.Level(rawValue: logLevel) != nil else {
                throw ValidationError("--log-level must be trace, debug, info, notice, warning or error")
            }
            guard maxUploadMb > 0 else { throw ValidationError("--max-upload-mb must be positive") }
            guard tokenLifetimeMinutes > 0 else { throw ValidationError("--token-lifetime-minutes must be positive") }
            guard expiredRenewalDays >= 0, expiredRenewalDays <= 3650 else {
                throw ValidationError("--expired-renewal-days must be 0 to 3650")
            }
            guard deviceCertificateLifetimeSeconds >= 1 else {
                throw ValidationError("--device-certificate-lifetime-seconds must be positive")
            }
            guard idleTimeoutSeconds > 0, idleTimeoutSeconds <= 86_400 else {
                throw ValidationError("--idle-timeout-seconds must be more than 0 and at most 86400")
            }
            if let maxConnections, maxConnections < 1 {
                throw ValidationError("--max-connections must be at least 1")
            }
            if deviceListen != "off" {
                guard let colon = deviceListen.lastIndex(of: ":"),
                    Int(deviceListen[deviceListen.index(after: colon)...]) != nil
                else {
                    throw ValidationError("--device-listen \(deviceListen) is not HOST:PORT (e.g. 0.0.0.0:8443) or off")
                }
            }
        }

        func run() async throws {
            // Every device holds a connection: a distribution's default soft limit of 1024 would cap the fleet.
            OpenFileLimit.raiseToHardLimit()
            var configuration = options.configuration()
            let colon = listen.lastIndex(of: ":")!
            configuration.host = String(listen[..<colon])
            configuration.port = Int(listen[listen.index(after: colon)...])!
            configuration.maxUploadBytes = Int64(maxUploadMb) << 20
            configuration.secureCookies = !insecureCookies
            configuration.listenerLimits = ListenerLimits(
                idleTimeout: .milliseconds(Int(idleTimeoutSeconds * 1000)), maxConnections: maxConnections)
            if deviceListen == "off" {
                configuration.devicePort = nil
            } else {
                let colon = deviceListen.lastIndex(of: ":")!
                configuration.deviceHost = String(deviceListen[..<colon])
                configuration.devicePort = Int(deviceListen[deviceListen.index(after: colon)...])!
            }
            configuration.deviceHostnames = deviceHostnames
            configuration.provisioningTokenLifetime = .seconds(tokenLifetimeMinutes * 60)
            configuration.expiredRenewalWindow = .seconds(expiredRenewalDays * 86400)
            configuration.deviceCertificateLifetime = .seconds(deviceCertificateLifetimeSeconds)
            let environment = ProcessInfo.processInfo.environment
            do {
                if let file = metricsTokenFile ?? environment["VANTAGE_METRICS_TOKEN_FILE"] {
                    configuration.metricsToken = try ServerMetrics.token(fromFile: URL(filePath: file))
                } else if let token = environment["VANTAGE_METRICS_TOKEN"] {
                    configuration.metricsToken = try ServerMetrics.checkedToken(token, from: "$VANTAGE_METRICS_TOKEN")
                }
            } catch let error as ServerError {
                throw serverFailure(error)
            }
            // One registry for /metrics: the server's own gauges and counters, and Hummingbird's request metrics.
            let metrics = ServerMetrics(registry: PrometheusCollectorRegistry())
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: metrics.registry))
            configuration.metrics = metrics
            var logger = Logger(label: "vantage.server")
            logger.logLevel = Logger.Level(rawValue: logLevel)!
            let finalConfiguration = configuration
            let serverLogger = logger
            do {
                try await ControlPlane.with(configuration, logger: logger) { plane in
                    // Printed at once: if the server then cannot listen, the token is not lost.
                    let token = try await plane.store.bootstrapAdminToken()
                    if let token {
                        printNow(
                            """
                            First start: an admin API token was created. It is shown only this once; keep it safe.
                              \(token)
                            Set a console password with: vantage server init-admin --user admin
                            """)
                    }
                    let database =
                        finalConfiguration.databaseURL == nil
                        ? "SQLite \(finalConfiguration.dataDirectory.path)/vantage.sqlite" : "PostgreSQL"
                    let app = plane.application(logger: serverLogger) { port in
                        let url = "http://\(finalConfiguration.host):\(port)"
                        printNow("vantage server: \(url)/ (API /api/v1, /openapi.json; \(database))")
                        if let token { printNow("Sign in with: vantage login --server \(url) --token \(token)") }
                    }
                    var services: [any Service] = [app]
                    if finalConfiguration.devicePort != nil {
                        services.append(
                            try plane.deviceApplication(logger: serverLogger) { port in
                                printNow(
                                    "device endpoint: https://\(finalConfiguration.deviceHost):\(port)/ (CA \(plane.store.authority.fingerprint))"
                                )
                            })
                    }
                    let group = ServiceGroup(
                        configuration: .init(
                            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: serverLogger))
                    try await group.run()
                }
            } catch let error as ServerError {
                throw serverFailure(error)
            } catch let error as DatabaseError {
                throw serverFailure(error)
            }
        }
    }

    /// `vantage server init-admin`: a console login with the admin role.
    struct InitAdmin: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "init-admin",
            abstract: "Create a console user with the admin role, or set a new password for one.",
            discussion: "The password is read from standard input (one line), or typed at the prompt.")

        @OptionGroup var options: Options

        @Option(help: "The user name.")
        var user = "admin"

        @Option(help: ArgumentHelp("The role: viewer, operator or admin.", valueName: "ROLE"))
        var role = "admin"

        func run() async throws {
            guard let role = Role(rawValue: role) else {
                throw ValidationError("--role must be viewer, operator or admin")
            }
            let password: String
            if isatty(0) != 0 {
                guard let typed = getpass("Password for \(user): ") else { throw ValidationError("no password given") }
                password = String(cString: typed)
            } else {
                password = readLine(strippingNewline: true) ?? ""
            }
            let name = user
            do {
                try await ControlPlane.with(options.configuration(), logger: Logger(label: "vantage.server")) { plane in
                    try await plane.store.setUser(name: name, password: password, role: role)
                    try await plane.store.audit(actor: "cli:init-admin", action: "setUser", target: "user:\(name)")
                }
            } catch let error as APIError {
                throw serverFailure(error)
            } catch let error as ServerError {
                throw serverFailure(error)
            } catch let error as DatabaseError {
                throw serverFailure(error)
            }
            print("user \(user) can now sign in to the console as \(role.rawValue)")
        }
    }

    /// `vantage server openapi`: prints the API's OpenAPI document (kept in the repository as docs/openapi.json).
    struct OpenAPI: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "openapi", abstract: "Print the REST API's OpenAPI 3.1 document.")

        func run() { print(ControlPlane.openAPIDocument(), terminator: "") }
    }
}

/// Prints `error` on standard error (the message says what to do) and gives the exit code to throw.
func serverFailure(_ error: any Error) -> ExitCode {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    return ExitCode.failure
}

/// Prints a line and flushes it at once (a supervisor or test reading the output sees it now, not at exit).
func printNow(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}
