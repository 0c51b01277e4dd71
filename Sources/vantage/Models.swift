import ArgumentParser
import Foundation
import VantageAPI
import VantageApp
import VantageClient
import VantageCore

/// `vantage models`: model files, versioned.
struct Models: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, describe, create, upload, download, delete models on a server; optimize a model file to INT8.",
        discussion: """
            A model holds versions of a model file (ONNX, TensorFlow .pb, TFLite, OpenVINO), each stored once by \
            its SHA-256 digest.

              vantage models create people-detector
              vantage models upload mdl_… ssdlite.onnx --descriptor descriptor.json
              vantage models show mdl_…
              vantage models optimize model.pb --calibrate camera.mp4 --size 300x300   # INT8, beside the file
            """,
        subcommands: [List.self, Show.self, Create.self, Upload.self, Download.self, Delete.self, Optimize.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List models with their latest version.",
            discussion: """
                  vantage models list
                  vantage models list --json
                """)

        @OptionGroup var options: ClientOptions

        func run() async throws {
            try await options.withClient { client in
                let models = try await client.listModels()
                options.printList(models, empty: "no models (create one with vantage models create NAME)") {
                    ResourceViews.models(models)
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Describe a model and its versions.",
            discussion: """
                  vantage models show mdl_…
                """)

        @OptionGroup var options: ClientOptions

        @Argument(help: "The model's id (mdl_…) or name.")
        var id: String

        func run() async throws {
            try await options.withClient { client in
                let model = try await client.model(id)
                options.printItem(model) { ResourceViews.model(model) }
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a model (without versions: upload one next).",
            discussion: """
                  vantage models create people-detector --description "SSDLite, COCO"
                """)

        @OptionGroup var options: ClientOptions

        @Argument(help: "The model's name: letters, digits, '-', '_', '.' or spaces.")
        var name: String

        @Option(help: "What the model finds.")
        var description: String?

        func run() async throws {
            try await options.withClient { client in
                let model = try await client.createModel(NewModel(name: name, description: description))
                if options.json {
                    printJSON(model)
                    return
                }
                print(
                    "created model \(model.id) (\(model.name)); upload a file with: vantage models upload \(model.id) FILE"
                )
            }
        }
    }

    struct Upload: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Upload a model file as the model's next version.",
            discussion: """
                --descriptor names a JSON file with Panorama's descriptor (the model's inputs and their shapes); \
                it is checked here and stored with the version.

                An OpenVINO IR (NAME.xml) is uploaded with its weights (NAME.bin) and, when there is one, the \
                report beside it (NAME.json, as vantage models optimize writes it), in one ZIP: the version the \
                devices unpack.

                  vantage models upload mdl_… frozen_inference_graph.pb
                  vantage models upload mdl_… model.onnx --descriptor descriptor.json
                  vantage models upload person-detector ssd.int8.xml --descriptor descriptor.json
                """)

        @OptionGroup var options: ClientOptions

        @Argument(help: "The model's id (mdl_…) or name.")
        var id: String

        @Argument(help: "The model file.", completion: .file())
        var file: String

        @Option(help: ArgumentHelp("Panorama's descriptor, a JSON file.", valueName: "JSON-FILE"), completion: .file())
        var descriptor: String?

        func run() async throws {
            try await options.withClient { client in
                var descriptorValue: JSONValue?
                if let descriptor {
                    guard let data = FileManager.default.contents(atPath: descriptor) else {
                        throw ClientError(.local, message: "cannot read --descriptor \(descriptor)")
                    }
                    do {
                        descriptorValue = try APIJSON.decoder().decode(JSONValue.self, from: data)
                    } catch {
                        throw ClientError(.local, message: "--descriptor \(descriptor) is not valid JSON: \(error)")
                    }
                }
                var url = URL(filePath: file)
                var scratch: URL?
                defer { scratch.map { try? FileManager.default.removeItem(at: $0) } }
                if url.pathExtension.lowercased() == "xml" {
                    // An IR is two files (three with its report): one ZIP, named after the model.
                    let folder = FileManager.default.temporaryDirectory.appending(path: "vantage-upload-\(UUID())")
                    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                    scratch = folder
                    let report = url.deletingPathExtension().appendingPathExtension("json")
                    let extras = FileManager.default.fileExists(atPath: report.path) ? [report] : []
                    let archive = folder.appending(path: url.deletingPathExtension().lastPathComponent + ".zip")
                    do {
                        try ModelArchive.pack(model: url, extras: extras, into: archive)
                    } catch let error as ApplicationArchiveError {
                        throw ClientError(.local, message: error.message)
                    }
                    note(
                        "uploading \(url.lastPathComponent) with its weights"
                            + (extras.isEmpty ? "" : " and \(report.lastPathComponent)")
                            + " as \(archive.lastPathComponent)")
                    url = archive
                }
                let version = try await client.uploadModelVersion(id, file: url, descriptor: descriptorValue)
                if options.json {
                    printJSON(version)
                    return
                }
                print(
                    "uploaded \(version.filename) as version \(version.version) of model \(id): "
                        + "\(ResourceViews.byteCount(version.size)), \(version.digest)")
            }
        }
    }

    struct Download: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Download a model version's file.",
            discussion: """
                Without --version, the latest; without --output, the version's file name in this folder.

                  vantage models download mdl_…
                  vantage models download mdl_… --version 2 --output /tmp/model.onnx
                """)

        @OptionGroup var options: ClientOptions

        @Argument(help: "The model's id (mdl_…) or name.")
        var id: String

        @Option(help: "The version number (default: the latest).")
        var version: Int?

        @Option(help: ArgumentHelp("Where to write the file.", valueName: "FILE"), completion: .file())
        var output: String?

        func run() async throws {
            try await options.withClient { client in
                let model = try await client.model(id)
                guard let number = version ?? model.latestVersion,
                    let chosen = model.versions.first(where: { $0.version == number })
                else {
                    throw ClientError(
                        .local,
                        message: version.map { "model \(id) has no version \($0)" }
                            ?? "model \(id) has no versions yet: upload one with vantage models upload \(id) FILE")
                }
                // Only the name's last part: a server's answer never chooses where the file lands.
                let destination = URL(filePath: output ?? URL(filePath: chosen.filename).lastPathComponent)
                try await client.downloadModelVersion(id, version: number, to: destination)
                note("wrote version \(number) of model \(id) to \(destination.path)")
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a model and its versions.",
            discussion: """
                  vantage models delete mdl_…
                """)

        @OptionGroup var options: ClientOptions

        @Argument(help: "The model's id (mdl_…) or name.")
        var id: String

        func run() async throws {
            try await options.withClient { client in
                try await client.deleteModel(id)
                if options.json { printJSON(["deleted": id]) } else { print("deleted model \(id)") }
            }
        }
    }
}
