import ArgumentParser
import Foundation
import VantageApp

/// `vantage app …`: working with application projects.
struct App: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "app",
        abstract: "Work with application projects.",
        subcommands: [ImportPanorama.self, Build.self])
}

extension App {
    /// `vantage app import-panorama DIR`: a panorama-cli project made runnable by Vantage.
    struct ImportPanorama: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import-panorama",
            abstract: "Turn an AWS Panorama (panorama-cli) project into a Vantage application.",
            discussion: """
                DIR is a panorama-cli project (graphs/<app>/graph.json, packages/, assets/). The import copies \
                code descriptors that panorama-cli kept only in assets/ next to their package, extracts a \
                package's code from its exported container image (assets/<sha>.tar.gz) into src/ when src/ is \
                missing, and, for each --model, copies the model file into the model package and writes the \
                descriptor's "vantage" block. It prints every change, the Python packages vantage run will \
                install, every Dockerfile line Vantage ignores, and what is left to do (camera streams, model \
                files), then the vantage run command to try. Nothing is installed and nothing is run.

                Examples:
                  vantage app import-panorama lobby-app --dry-run
                  vantage app import-panorama lobby-app --model model_node=ssd_mobilenet.onnx
                  vantage app import-panorama lobby-app --output lobby-vantage --model model_node=ssd.xml
                """)

        @Argument(help: "The panorama-cli project folder.", completion: .directory)
        var projectDirectory: String

        @Option(
            help: ArgumentHelp(
                "Write the Vantage application to this new or empty folder (a copy of the project) instead of "
                    + "converting the project in place.",
                valueName: "OUT"))
        var output: String?

        @Option(
            name: .customLong("model"),
            help: ArgumentHelp(
                "The model file for a model node, as ONNX, TensorFlow .pb, TFLite or OpenVINO .xml (with its .bin "
                    + "beside it): NODE=PATH. Copied into the model package. Repeatable.",
                valueName: "NODE=PATH"))
        var models: [String] = []

        @Flag(help: "Print what would change and change nothing.")
        var dryRun = false

        func run() throws {
            let report: ImportReport
            do {
                var files: [PanoramaImport.ModelFile] = []
                for model in models { files.append(try PanoramaImport.ModelFile(argument: model)) }
                report = try PanoramaImport(
                    project: URL(fileURLWithPath: projectDirectory, isDirectory: true),
                    output: output.map { URL(fileURLWithPath: $0, isDirectory: true) }, models: files,
                    dryRun: dryRun
                ).run()
            } catch {
                // The message is the user's guide: what is wrong and what to do.
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                throw ExitCode.failure
            }
            print(report.lines.joined(separator: "\n"))
        }
    }
}

extension App {
    /// `vantage app build DIR`: the application as a device runs it, with its code and models inside.
    struct Build: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make an application project self-contained: what a device runs, ready to push.",
            discussion: """
                Copies the project DIR to OUT (default DIR/.build/app) and puts inside it everything a device needs, \
                so that no device needs a compiler, the source tree or this machine's files:
                  - Swift code nodes are compiled for release with the Swift runtime linked in (needs a Swift \
                toolchain on this machine, and the Vantage Swift SDK's sources: found beside this vantage, or \
                --sdk); each program goes to its package's src/bin/ and the descriptor's entry.path points there
                  - model files outside the project (vantage.file "../../models/x.onnx"), or given with --model, are \
                copied into their model package and vantage.file points at the copy
                  - Python code nodes keep their source; the runtime installs their requirements on the device
                The output is checked with the server's rules for a push, then can be run and pushed as it is. A \
                second build replaces the first and recompiles only what changed.

                Examples:
                  vantage app build examples/people-counter
                  vantage run examples/people-counter/.build/app --camera camera_node=video.mp4
                  vantage packages push examples/people-counter/.build/app --package people-counter --version 1.0
                  vantage app build lobby-app --output /tmp/lobby-build --model model_node=ssd.onnx
                """)

        @Argument(help: "The application project folder (it holds graphs/ and packages/).", completion: .directory)
        var projectDirectory: String

        @Option(help: ArgumentHelp("Where to write the built application (default DIR/.build/app).", valueName: "OUT"))
        var output: String?

        @Option(
            name: .customLong("model"),
            help: ArgumentHelp(
                "The model file of a model node, copied into its package: NODE=PATH. Repeatable.",
                valueName: "NODE=PATH"))
        var models: [String] = []

        @Option(
            help: ArgumentHelp(
                "The swift driver to compile Swift code nodes with (default: swift on PATH).",
                valueName: "PATH"))
        var swift: String?

        @Option(
            help: ArgumentHelp(
                "The Vantage Swift SDK's sources (a folder holding Sources/VantageSDK; default: beside vantage).",
                valueName: "DIR"))
        var sdk: String?

        @Option(
            help: ArgumentHelp(
                "Where Swift code nodes are compiled and kept for the next build (default "
                    + "~/.cache/vantage/app-build).",
                valueName: "DIR"))
        var cache: String?

        func run() throws {
            let project = URL(fileURLWithPath: projectDirectory, isDirectory: true)
            let out =
                output.map { URL(fileURLWithPath: $0, isDirectory: true) }
                ?? project.appendingPathComponent(".build/app", isDirectory: true)
            let home = FileManager.default.homeDirectoryForCurrentUser
            var build = ApplicationBuild(
                project: project, output: out, executableDirectory: Run.executableDirectory,
                cache: cache.map { URL(fileURLWithPath: $0, isDirectory: true) }
                    ?? home.appendingPathComponent(".cache/vantage/app-build", isDirectory: true))
            build.swift = swift.map { URL(fileURLWithPath: $0) }
            build.sdk = sdk.map { URL(fileURLWithPath: $0, isDirectory: true) }
            build.progress = { line in FileHandle.standardError.write(Data("\(line)\n".utf8)) }
            let lines: [String]
            do {
                for model in models { build.models.append(try PanoramaImport.ModelFile(argument: model)) }
                lines = try build.run()
            } catch {
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                throw ExitCode.failure
            }
            for line in lines { print(line) }
            print("")
            print("built \(out.path): self-contained, ready to run or push:")
            print("  vantage run \(out.path) --camera NODE=URL")
            print("  vantage packages push \(out.path) --package NAME --version V")
        }
    }
}
