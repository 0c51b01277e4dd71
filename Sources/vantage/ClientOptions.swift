import ArgumentParser
import Foundation
import VantageAPI
import VantageClient

/// The flags every `vantage devices|cameras|models|packages|instances|events` command takes: which server, which
/// token, and tables or JSON.
struct ClientOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "The Vantage server (default: $VANTAGE_SERVER, then the server `vantage login` saved).",
            valueName: "URL"))
    var server: String?

    @Option(
        help: ArgumentHelp(
            "An API token, vt_… (default: $VANTAGE_TOKEN, then the token `vantage login` saved).",
            valueName: "TOKEN"))
    var token: String?

    @Flag(help: "Print the API's JSON (pretty, sorted keys) instead of a table: for scripts.")
    var json = false

    /// Runs `body` with a client for the resolved server; a `ClientError` becomes its message on standard error and
    /// exit status 1.
    func withClient(_ body: (ServerClient) async throws -> Void) async throws {
        try await reportingErrors {
            let resolved = try ClientSettings.resolve(server: server, token: token)
            try await body(ServerClient(baseURL: resolved.url, token: resolved.token))
        }
    }

    /// A list: the items as JSON, the table, or `empty` when there are none.
    func printList<Item: Encodable>(_ items: [Item], empty: String, table: () -> TextTable) {
        if json {
            printJSON(items)
        } else if items.isEmpty {
            print(empty)
        } else {
            print(table().render())
        }
    }

    /// One resource: as JSON, or as `text` shows it.
    func printItem<Item: Encodable>(_ item: Item, text: () -> String) {
        if json { printJSON(item) } else { print(text()) }
    }
}

/// Prints `value` as the API's JSON, indented.
func printJSON(_ value: some Encodable) {
    print(ResourceViews.prettyJSON(value))
}

/// Runs `body`; a `ClientError` is printed as `error: …` on standard error and ends the command with status 1.
func reportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as ClientError {
        FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
        throw ExitCode.failure
    }
}

/// Writes a line on standard error (progress and notes that must not mix with the output a script reads).
func note(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Reads a secret: one line from standard input, or typed at a prompt without echo when it is a terminal.
func readSecret(prompt: String) -> String? {
    if isatty(0) != 0 {
        guard let typed = getpass(prompt) else { return nil }
        return String(cString: typed)
    }
    return readLine(strippingNewline: true)
}
