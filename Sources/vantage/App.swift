import ArgumentParser
import Foundation
import VantageApp

/// `vantage app …`: working with application projects.
struct App: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "app",
        abstract: "Work with application projects.",
        subcommands: [ImportPanorama.self])
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
