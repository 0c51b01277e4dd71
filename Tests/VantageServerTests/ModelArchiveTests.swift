import Foundation
import Testing
import VantageAPI
import VantageApp

@testable import VantageServer

/// A model version that is more than one file (an OpenVINO IR: `NAME.xml` and its weights `NAME.bin`, as
/// `vantage models optimize` writes an INT8 model) travels as a ZIP: the server checks it when it is uploaded and
/// refuses what a device could not run, naming what is wrong. The agent's side (unpacking it beside an instance, the
/// runtime running it) is in Tests/VantageServerTests/ModelArchiveDeploymentTests.swift.
@Suite("Model archives")
struct ModelArchiveTests {
    static let xml = Array("<net name=\"m\" version=\"11\"></net>".utf8)
    static let bin: [UInt8] = [1, 2, 3, 4]

    @Test("an IR zipped with its weights names its .xml; macOS's __MACOSX copies and hidden files do not count")
    func acceptedArchives() throws {
        let folder = FileManager.default.temporaryDirectory.appending(path: "vantage-model-archive-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }

        // What `vantage models upload NAME.xml` makes: the IR and the optimizer's report, at the root.
        let xml = folder.appending(path: "ssd.int8.xml")
        try Data(Self.xml).write(to: xml)
        try Data(Self.bin).write(to: folder.appending(path: "ssd.int8.bin"))
        try Data("{}".utf8).write(to: folder.appending(path: "ssd.int8.json"))
        let packed = folder.appending(path: "ssd.int8.zip")
        try ModelArchive.pack(model: xml, extras: [folder.appending(path: "ssd.int8.json")], into: packed)
        #expect(try ModelArchive.check(packed) == "ssd.int8.xml")
        let unpacked = try ModelArchive.unpack(packed, into: folder.appending(path: "out"))
        #expect(try Data(contentsOf: unpacked) == Data(Self.xml))
        #expect(try Data(contentsOf: folder.appending(path: "out/ssd.int8.bin")) == Data(Self.bin))

        // Finder's "Compress" on a folder: the folder as the top entry, with __MACOSX/._ copies of each file.
        let finder = folder.appending(path: "finder.zip")
        try Data(
            try TestArchive.make([
                .directory("model/"), .file("model/ssd.xml", Self.xml), .file("model/ssd.bin", Self.bin),
                .file("__MACOSX/model/._ssd.xml", [0]), .file("model/.DS_Store", [0]),
            ])
        ).write(to: finder)
        #expect(try ModelArchive.check(finder) == "model/ssd.xml")

        // A single-file model may be zipped too.
        let onnx = folder.appending(path: "onnx.zip")
        try Data(try TestArchive.make([.file("detector.onnx", [8, 1]), .file("README.md", [0x23])])).write(to: onnx)
        #expect(try ModelArchive.check(onnx) == "detector.onnx")

        // Packing an IR whose weights are missing says so before writing anything.
        try FileManager.default.removeItem(at: folder.appending(path: "ssd.int8.bin"))
        #expect(throws: ApplicationArchiveError.self) {
            try ModelArchive.pack(model: xml, into: folder.appending(path: "nothing.zip"))
        }
        #expect(!FileManager.default.fileExists(atPath: folder.appending(path: "nothing.zip").path))
    }

    @Test(
        "uploads: an IR without its weights, several models, no model, a path out, a link, a lone .xml or .bin and a SageMaker Neo .tar.gz are refused saying what to do; a zipped IR becomes a version",
        arguments: Engine.allCases)
    func uploads(engine: Engine) async throws {
        try await APIHarness.run(on: engine) { api in
            let model = try await api.store.createModel(NewModel(name: "person-detector"))
            let target = "\(APIValidationTests.v1)/models/\(model.id)/versions"
            let refused: [(String, [TestArchive.Entry], [String])] = [
                ("no weights", [.file("ssd.xml", Self.xml)], ["ssd.xml", "without its weights ssd.bin"]),
                (
                    "weights of another name", [.file("ssd.xml", Self.xml), .file("weights.bin", Self.bin)],
                    ["without its weights ssd.bin"]
                ),
                (
                    "two models", [.file("a.onnx", [1]), .file("b.xml", Self.xml), .file("b.bin", Self.bin)],
                    ["2 models", "a.onnx", "b.xml"]
                ),
                ("no model", [.file("README.md", [0x23])], ["no model file", "README.md"]),
                ("a ../ path", [.file("../evil.onnx", [1])], ["../evil.onnx", "outside"]),
                ("a link", [.symlink("ssd.onnx", target: "/etc/passwd")], ["symbolic link"]),
            ]
            for (what, entries, words) in refused {
                try await APIValidationTests.expectRefused(
                    api, .post, target + "?filename=ssd.zip", as: api.ops, body: try TestArchive.make(entries),
                    status: 422, mentioning: ["ssd.zip"] + words)
                #expect(APIHarness.files(under: api.artifactsFolder).isEmpty, "\(what): the upload left files")
            }
            try await APIValidationTests.expectRefused(
                api, .post, target + "?filename=ssd.zip", as: api.ops, body: Array("not a zip".utf8), status: 422,
                mentioning: ["not a ZIP"])
            for (name, words) in [
                ("ssd.xml", ["its .bin", "ZIP", "vantage models upload NAME.xml"]),
                ("ssd.bin", ["their .xml", "ZIP"]),
                ("model.tar.gz", ["SageMaker Neo", ".onnx"]),
            ] {
                try await APIValidationTests.expectRefused(
                    api, .post, target + "?filename=\(name)", as: api.ops, body: Self.xml, status: 400,
                    mentioning: [name] + words)
            }

            let accepted = try await api.call(
                .post, target + "?filename=ssd.zip", as: api.ops,
                body: try TestArchive.make([.file("ssd.xml", Self.xml), .file("ssd.bin", Self.bin)]))
            #expect(accepted.status == 201, "\(accepted)")
            let versions = try await api.store.model(model.id).versions
            #expect(versions.map(\.filename) == ["ssd.zip"])
        }
    }
}
