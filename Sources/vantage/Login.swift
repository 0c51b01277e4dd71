import ArgumentParser
import Foundation
import VantageAPI
import VantageClient

/// `vantage login`: remembers a server and token for the other client commands.
struct Login: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sign in to a Vantage server: check a token and save it for the other commands.",
        discussion: """
            Checks the token against the server, then saves both in ~/.config/vantage/cli.json (or \
            $XDG_CONFIG_HOME/vantage/cli.json, or the file $VANTAGE_CONFIG names), readable only by you. The \
            devices, cameras, models, packages, instances and events commands then need no --server or --token. \
            Without --token the token is read from standard input (or typed at a prompt), which keeps it out of \
            the shell history. `vantage server` prints an admin token at its first start; an admin makes more \
            (POST /api/v1/tokens, or the console).

              vantage login --server http://127.0.0.1:8090 --token vt_…
              echo "$TOKEN" | vantage login --server https://vantage.example.com
            """)

    @Option(help: ArgumentHelp("The server's address, as `vantage server` printed it.", valueName: "URL"))
    var server: String

    @Option(help: ArgumentHelp("The API token, vt_… (default: read from standard input).", valueName: "TOKEN"))
    var token: String?

    func run() async throws {
        try await reportingErrors {
            let url = try ClientSettings.parse(server: server)
            guard let token = token ?? readSecret(prompt: "API token for \(server): "), !token.isEmpty else {
                throw ClientError(.local, message: "no token given: pass --token vt_… or type it on standard input")
            }
            let identity = try await ServerClient(baseURL: url, token: token).whoAmI()
            let file = ClientSettings.file()
            let address = url.absoluteString
            try ClientSettings(server: address, token: token).save(to: file)
            print("signed in to \(address) as \(identity.actor) (\(identity.role.rawValue))")
            print("saved in \(file.path): the other commands use this server and token unless given --server/--token")
        }
    }
}

/// `vantage logout`: forgets the saved server and token.
struct Logout: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Forget the server and token `vantage login` saved.",
        discussion: """
            Deletes the settings file (~/.config/vantage/cli.json, or where $XDG_CONFIG_HOME or $VANTAGE_CONFIG \
            point). The token itself stays valid on the server: an admin revokes it with DELETE /api/v1/tokens/ID.

              vantage logout
            """)

    func run() async throws {
        try await reportingErrors {
            let file = ClientSettings.file()
            if try ClientSettings.remove(at: file) {
                print("signed out: deleted \(file.path)")
            } else {
                print("not signed in (there is no \(file.path))")
            }
        }
    }
}
