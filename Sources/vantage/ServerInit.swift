import ArgumentParser
import Foundation
import Logging
import VantageServer

extension Server {
    /// `vantage server init`: makes the data folder, database, CA and first admin token, writes the service's
    /// settings and starts it.
    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "init",
            abstract: "Set up a server: data folder, database, CA and admin token; write its settings and start it.",
            discussion: """
                Creates the data folder and the database (SQLite in DIR by default; PostgreSQL with --database-url, \
                checked by connecting), the CA that devices check (its fingerprint is printed) and the first admin \
                API token, which is printed here, once, and nowhere else: the service's first start then finds it \
                made and prints nothing to the journal.

                It writes the service's settings (--config FILE): the listen flags as VANTAGE_SERVER_ARGS, the \
                database URL as VANTAGE_DATABASE_URL (never on a command line, and never printed). Run as root, it \
                gives DIR to the `vantage` user the service runs as, and where systemd runs it enables and starts \
                vantage-server; elsewhere, or with --no-start, it prints the command that starts the server.

                Run as root where the Debian package is installed, DIR is /var/lib/vantage/server and FILE \
                /etc/vantage/server.env (the service's own); otherwise DIR is ./vantage-data and no settings file is \
                written unless --config names one. A server that has an admin token or a user already is refused: \
                for another admin token, sign in as an admin (a console password: vantage server init-admin) and \
                make one in the console or with POST /api/v1/tokens.

                  sudo vantage server init
                  sudo vantage server init --listen 0.0.0.0:8090 --device-listen 0.0.0.0:8443 --device-hostname vantage.example.com
                  sudo VANTAGE_DATABASE_URL=postgres://vantage:PASSWORD@db:5432/vantage vantage server init
                  vantage server init --data ./vantage-data --no-start
                """)

        @Option(
            help: ArgumentHelp(
                "Folder for the database, artifacts and key (default /var/lib/vantage/server for the packaged "
                    + "service, else ./vantage-data).", valueName: "DIR"))
        var data: String?

        @Option(
            help: ArgumentHelp(
                "Use PostgreSQL instead of SQLite: postgres://USER:PASSWORD@HOST:PORT/DB (or $VANTAGE_DATABASE_URL, "
                    + "which keeps the password out of the shell's history).", valueName: "URL"))
        var databaseURL: String?

        @Option(
            help: ArgumentHelp(
                "Address and port of the API and console (serve's default: 127.0.0.1:8090).", valueName: "HOST:PORT"))
        var listen: String?

        @Option(
            help: ArgumentHelp(
                "Where devices enroll and call in (serve's default: 127.0.0.1:8443); \"off\" for none.",
                valueName: "HOST:PORT"))
        var deviceListen: String?

        @Option(
            name: .customLong("device-hostname"),
            help: ArgumentHelp(
                "A name or address agents reach the device endpoint by, for its certificate (repeatable).",
                valueName: "NAME"))
        var deviceHostnames: [String] = []

        @Option(
            help: ArgumentHelp(
                "The server's settings file to write (default /etc/vantage/server.env for the packaged service, else "
                    + "none).", valueName: "FILE"))
        var config: String?

        @Flag(help: "Do not enable or start the vantage-server service; print the command that starts it instead.")
        var noStart = false

        /// The flags of `vantage server serve` that init writes to VANTAGE_SERVER_ARGS.
        var serveFlags: [String] {
            var flags: [String] = []
            if let listen { flags += ["--listen", listen] }
            if let deviceListen { flags += ["--device-listen", deviceListen] }
            for name in deviceHostnames { flags += ["--device-hostname", name] }
            return flags
        }

        func validate() throws {
            // Checked as `vantage server serve` will check them when the service starts.
            do {
                _ = try Serve.parse(serveFlags)
            } catch {
                throw ValidationError(Serve.message(for: error))
            }
            if let databaseURL, !databaseURL.hasPrefix("postgres://") && !databaseURL.hasPrefix("postgresql://") {
                throw ValidationError("--database-url must be postgres://USER:PASSWORD@HOST:PORT/DB")
            }
        }

        func run() async throws {
            do {
                try await initialise()
            } catch let error as SetupError {
                throw serverFailure(error)
            } catch let error as ServerError {
                throw serverFailure(error)
            } catch let error as DatabaseError {
                throw serverFailure(error)
            }
        }

        private func initialise() async throws {
            let setup = ServiceSetup(role: "server")
            let dataPath = data ?? (setup.packaged ? setup.packagedData : "vantage-data")
            let configPath = config ?? (setup.packaged ? setup.packagedConfig : nil)
            var settings = try configPath.map { try EnvironmentFile(path: $0) }
            if let settings, !settings.writable {
                throw SetupError(
                    "cannot write \(settings.path): run this as root (sudo), or give another --config FILE")
            }
            let url =
                databaseURL ?? ProcessInfo.processInfo.environment["VANTAGE_DATABASE_URL"]
                ?? settings?.value("VANTAGE_DATABASE_URL").flatMap { $0.isEmpty ? nil : $0 }

            var configuration = ServerConfiguration()
            configuration.dataDirectory = URL(filePath: dataPath)
            configuration.databaseURL = url
            let manager = FileManager.default
            let madeData = !manager.fileExists(atPath: dataPath)
            var logger = Logger(label: "vantage.server.init")
            logger.logLevel = .warning
            let made: (token: String?, fingerprint: String)
            do {
                made = try await ControlPlane.with(configuration, logger: logger) { plane in
                    let token = try await plane.store.bootstrapAdminToken()
                    if token != nil {
                        try await plane.store.audit(actor: "cli:init", action: "createToken", target: "token:admin")
                    }
                    return (token, plane.store.authority.fingerprint)
                }
            } catch {
                if madeData { try? manager.removeItem(atPath: dataPath) }
                throw error
            }
            let database = url == nil ? "SQLite \(configuration.dataDirectory.path)/vantage.sqlite" : "PostgreSQL"
            guard let token = made.token else {
                throw SetupError(
                    "this server is initialised already (\(database) has an admin token or users); nothing was changed. For another admin token, sign in as an admin (a console password: vantage server init-admin --data \(dataPath) --user admin) and make one in the console or with POST /api/v1/tokens"
                )
            }
            // Printed at once: whatever fails next, the token is not lost.
            printNow(
                """
                initialised \(dataPath) (\(database)); devices check the server's CA \(made.fingerprint)
                An admin API token was created. It is shown only this once; keep it safe:
                  \(token)
                """)

            let serve = try Serve.parse(serveFlags)
            let colon = serve.listen.lastIndex(of: ":")!
            var host = String(serve.listen[..<colon])
            if ["0.0.0.0", "::", "[::]", ""].contains(host) { host = "127.0.0.1" }
            printNow("sign in with: vantage login --server http://\(host)\(serve.listen[colon...]) --token \(token)")

            var flags = serveFlags
            if var file = settings {
                let existing = FlagList.split(file.value("VANTAGE_SERVER_ARGS") ?? "")
                // Given listen flags replace those there; a database URL or data folder never goes on a command line.
                var dropped: Set<String> = ["--database-url", "--data"]
                if !serveFlags.isEmpty { dropped.formUnion(["--listen", "--device-listen", "--device-hostname"]) }
                flags = FlagList.removing(dropped, from: existing) + serveFlags
                file.set("VANTAGE_SERVER_ARGS", flags.joined(separator: " "))
                if let url { file.set("VANTAGE_DATABASE_URL", url) }
                try file.write()
                settings = file
                printNow(
                    "settings: \(file.path) (VANTAGE_SERVER_ARGS=\"\(flags.joined(separator: " "))\"\(url == nil ? "" : "; VANTAGE_DATABASE_URL"))"
                )
            }

            if let user = setup.serviceUser {
                try ServiceSetup.chown(configuration.dataDirectory, to: user, recursive: true)
                printNow("\(dataPath) now belongs to the vantage user")
            }

            let initAdmin = "vantage server init-admin --data \(dataPath) --user admin"
            if setup.unitUses(data: dataPath, config: configPath) {
                let asService =
                    url == nil
                    ? "sudo -u vantage \(initAdmin)"
                    : "sudo -u vantage sh -c 'set -a; . \(setup.packagedConfig); exec \(initAdmin)'"
                printNow("a console password: \(asService)")
                if setup.systemdRuns && !noStart {
                    try ServiceSetup.systemctl(["enable", "--now", "--quiet", setup.unit])
                    printNow("\(setup.unit) is enabled and running: journalctl -u \(setup.unit)")
                } else {
                    printNow("start the server with: systemctl enable --now \(setup.unit)")
                }
            } else {
                let environment =
                    url == nil ? "" : "VANTAGE_DATABASE_URL=… (\(configPath.map { "from " + $0 } ?? "the URL given")) "
                printNow("a console password: \(environment)\(initAdmin)")
                let command = (["vantage", "server", "serve", "--data", dataPath] + flags).joined(separator: " ")
                printNow("start the server with: \(environment)\(command)")
            }
        }
    }
}
