import ArgumentParser
import Foundation
import VantageAPI
import VantageClient
import VantageCore

/// `vantage users`: console users, managed by an admin through the API.
struct Users: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, create, change and delete console users (admins only).",
        discussion: """
            Passwords are read from standard input (one line), or typed at the prompt; they are never printed. A new \
            role or password signs the user out of the console everywhere. The last admin can be neither demoted \
            nor deleted, and an admin cannot delete themself.

              vantage users list
              vantage users create alice --role operator
              vantage users set-role alice viewer
              echo "$NEW_PASSWORD" | vantage users set-password alice
              vantage users delete alice
            """,
        subcommands: [List.self, Create.self, SetRole.self, SetPassword.self, Delete.self])

    /// The password, from the terminal (typed twice) or one line of standard input.
    static func readPassword(for name: String) throws -> String {
        if isatty(0) != 0 {
            guard let typed = getpass("Password for \(name): ") else { throw ValidationError("no password given") }
            let first = String(cString: typed)
            guard let again = getpass("The same password again: "), String(cString: again) == first else {
                throw ValidationError("the two passwords differ: type the same password twice")
            }
            return first
        }
        return readLine(strippingNewline: true) ?? ""
    }

    static func role(_ text: String) throws -> Role {
        guard let role = Role(rawValue: text) else {
            throw ValidationError("the role must be viewer, operator or admin")
        }
        return role
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List console users: name, role, created, last sign-in.",
            discussion: """
                  vantage users list
                  vantage users list --json
                """)

        @OptionGroup var options: ClientOptions

        func run() async throws {
            try await options.withClient { client in
                let users = try await client.listUsers()
                let now = Date()
                options.printList(users, empty: "no console users (create one with vantage users create NAME)") {
                    TextTable(
                        columns: ["NAME", "ROLE", "CREATED", "LAST SIGN-IN"],
                        rows: users.map { user in
                            [
                                user.name, user.role.rawValue, RelativeTime.describe(user.createdAt, now: now),
                                user.lastSignInAt.map { RelativeTime.describe($0, now: now) } ?? "-",
                            ]
                        })
                }
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a console user; the password (at least 8 characters) is read from standard input.",
            discussion: """
                  vantage users create alice --role operator
                """)

        @OptionGroup var options: ClientOptions

        @Argument(help: "The user name: letters, digits, '-', '_', '.' or spaces.")
        var name: String

        @Option(help: ArgumentHelp("The role: viewer, operator or admin.", valueName: "ROLE"))
        var role = "viewer"

        func run() async throws {
            let role = try Users.role(role)
            let password = try Users.readPassword(for: name)
            try await options.withClient { client in
                let user = try await client.createUser(NewUser(name: name, role: role, password: password))
                if options.json { printJSON(user) } else { print("created user \(user.name) (\(user.role.rawValue))") }
            }
        }
    }

    struct SetRole: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-role",
            abstract: "Give a console user another role (signs them out everywhere).",
            discussion: """
                  vantage users set-role alice admin
                """)

        @OptionGroup var options: ClientOptions

        @Argument(help: "The user name.")
        var name: String

        @Argument(help: ArgumentHelp("The role: viewer, operator or admin.", valueName: "ROLE"))
        var role: String

        func run() async throws {
            let role = try Users.role(role)
            try await options.withClient { client in
                let user = try await client.updateUser(name, UserChange(role: role))
                if options.json {
                    printJSON(user)
                } else {
                    print("user \(user.name) is now \(user.role.rawValue); their console sessions ended")
                }
            }
        }
    }

    struct SetPassword: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-password",
            abstract: "Set a console user's password from standard input (signs them out everywhere).",
            discussion: """
                  echo "$NEW_PASSWORD" | vantage users set-password alice
                """)

        @OptionGroup var options: ClientOptions

        @Argument(help: "The user name.")
        var name: String

        func run() async throws {
            let password = try Users.readPassword(for: name)
            try await options.withClient { client in
                let user = try await client.updateUser(name, UserChange(password: password))
                if options.json {
                    printJSON(user)
                } else {
                    print("user \(user.name) has a new password; their console sessions ended")
                }
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a console user (signs them out).",
            discussion: """
                  vantage users delete alice
                """)

        @OptionGroup var options: ClientOptions

        @Argument(help: "The user name.")
        var name: String

        func run() async throws {
            try await options.withClient { client in
                try await client.deleteUser(name)
                if options.json { printJSON(["deleted": name]) } else { print("deleted user \(name)") }
            }
        }
    }
}
