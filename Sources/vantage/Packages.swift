import ArgumentParser
import Foundation
import VantageAPI
import VantageClient

/// `vantage packages`: application projects, uploaded as versions.
struct Packages: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, describe, create, push and delete application packages on a Vantage server.",
        discussion: """
            A package holds versions of an application project (graphs/ and packages/, what `vantage run` runs). \
            Pushing a project folder zips it and registers it as a version; the server checks its manifest and \
            answers the camera nodes a deployment must bind and the parameters it may set.

              vantage packages push examples/people-counter --package people-counter \\
                  --version 1.0
              vantage packages list
              vantage packages show pkg_…
            """,
        subcommands: [List.self, Show.self, Create.self, Push.self, Delete.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List packages with their latest version.",
            discussion: """
                  vantage packages list
                  vantage packages list --json
                """)

        @OptionGroup var options: ClientOptions

        func run() async throws {
            try await options.withClient { client in
                let packages = try await client.listPackages()
                options.printList(
                    packages,
                    empty: "no packages (push a project with vantage packages push DIR --package NAME --version V)"
                ) {
                    ResourceViews.packages(packages)
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Describe a package: its versions, and the camera nodes and parameters of the latest.",
            discussion: """
                  vantage packages show pkg_…
                  vantage packages show people-counter
                """)

        @OptionGroup var options: ClientOptions

        @Argument(help: "The package's id (pkg_…) or name.")
        var id: String

        func run() async throws {
            try await options.withClient { client in
                guard let package = try await client.findPackage(id) else {
                    throw ClientError(.notFound, status: 404, message: "no package \(id)")
                }
                options.printItem(package) { ResourceViews.package(package) }
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an empty package (push creates one too, when its name is new).",
            discussion: """
                  vantage packages create people-counter --description "Counts people"
                """)

        @OptionGroup var options: ClientOptions

        @Argument(help: "The package's name: letters, digits, '-', '_', '.' or spaces.")
        var name: String

        @Option(help: "What the application does.")
        var description: String?

        func run() async throws {
            try await options.withClient { client in
                let package = try await client.createPackage(NewPackage(name: name, description: description))
                if options.json {
                    printJSON(package)
                    return
                }
                print(
                    "created package \(package.id) (\(package.name)); push a version with: "
                        + "vantage packages push DIR --package \(package.id) --version 1.0")
            }
        }
    }

    struct Push: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Upload an application project folder as a version of a package.",
            discussion: """
                Zips DIR (leaving out .git, .build and the like; symbolic links are archived as what they point \
                to) and registers it as --version of the package --package names, creating the package when no \
                package has that name. Prints the version's camera nodes and parameters: what \
                `vantage instances create` binds with --camera and may set with --param.

                  vantage packages push examples/people-counter --package people-counter \\
                      --version 1.0
                  vantage packages push . --package pkg_… --version 1.1 --json
                """)

        @OptionGroup var options: ClientOptions

        @Argument(help: "The application project folder (it holds graphs/ and packages/).", completion: .directory)
        var directory: String

        @Option(help: ArgumentHelp("The package's id (pkg_…) or name; a new name creates it.", valueName: "NAME-OR-ID"))
        var package: String

        @Option(help: ArgumentHelp("The version to register, e.g. 1.0.", valueName: "V"))
        var version: String

        func run() async throws {
            try await options.withClient { client in
                let pushed = try await client.pushPackage(
                    folder: URL(filePath: directory, directoryHint: .isDirectory), package: package,
                    version: version)
                if options.json {
                    printJSON(pushed.version)
                    return
                }
                if pushed.created { print("created package \(pushed.package.id) (\(pushed.package.name))") }
                print(
                    "registered \(pushed.package.name) \(pushed.version.version) (\(pushed.package.id)): application "
                        + "\(pushed.version.application), \(ResourceViews.byteCount(pushed.version.size)), "
                        + "\(pushed.version.status.rawValue)")
                print("")
                print(ResourceViews.inputs(of: pushed.version))
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a package no application instance uses, with its versions.",
            discussion: """
                  vantage packages delete pkg_…
                """)

        @OptionGroup var options: ClientOptions

        @Argument(help: "The package's id (pkg_…) or name.")
        var id: String

        func run() async throws {
            try await options.withClient { client in
                try await client.deletePackage(id)
                if options.json { printJSON(["deleted": id]) } else { print("deleted package \(id)") }
            }
        }
    }
}
