import Foundation
import ZIPFoundation

/// A model that is more than one file, as one file: a ZIP archive holding the model (an OpenVINO IR's `NAME.xml` with
/// its weights `NAME.bin`, as `vantage models optimize` writes an INT8 model), and perhaps notes beside it (its report
/// `NAME.int8.json`, a README). It is how such a model becomes a version of a fleet model: the server checks the
/// archive when it is uploaded, the agent unpacks it beside the instance and gives the runtime the model file in it.
///
/// ```swift
/// try ModelArchive.pack(model: int8XML, into: zip)      // NAME.xml + NAME.bin (+ NAME.json)
/// let entry = try ModelArchive.check(zip)                 // "NAME.xml": what the server accepts
/// let file = try ModelArchive.unpack(zip, into: folder)   // folder/NAME.xml: what the runtime loads
/// ```
public enum ModelArchive {
    /// Whether a model version's file name is an archive of a model (`.zip`, any case).
    public static func isArchive(_ filename: String) -> Bool { filename.lowercased().hasSuffix(".zip") }

    /// The model file's path inside the archive (`NAME.xml`, or the one `.onnx`/`.pb`/`.tflite`/`.pdmodel`), after
    /// checking that the archive holds exactly one model, with its weights beside it when it is an OpenVINO IR, and
    /// only paths that stay inside the folder it is unpacked to. Reads the archive's directory only.
    public static func check(_ archiveFile: URL) throws(ApplicationArchiveError) -> String {
        let archive = try ApplicationArchive.openZIP(
            archiveFile,
            notZIP: "the model archive is not a ZIP file: zip the model with its weights (vantage models upload "
                + "NAME.xml does it for an OpenVINO IR)")
        var files: [String] = []
        var count = 0
        for entry in archive {
            count += 1
            guard count <= ApplicationArchive.maxEntries else {
                throw ApplicationArchiveError(
                    .tooManyEntries, "the model archive has more than \(ApplicationArchive.maxEntries) entries")
            }
            guard let path = ApplicationArchive.safeRelativePath(entry.path) else {
                throw ApplicationArchiveError(
                    .unsafePath,
                    "the model archive's entry \"\(entry.path.prefix(200))\" points outside its folder: archives may "
                        + "only hold relative paths without '..'")
            }
            if entry.type == .symlink {
                throw ApplicationArchiveError(
                    .symbolicLink,
                    "the model archive's entry \"\(path.prefix(200))\" is a symbolic link: archive the files themselves"
                )
            }
            if entry.type == .file { files.append(path) }
        }
        return try modelEntry(in: files)
    }

    /// The one model among an archive's file paths (macOS's `__MACOSX/` copies and hidden files left out).
    static func modelEntry(in files: [String]) throws(ApplicationArchiveError) -> String {
        let visible = files.filter { path in
            !path.hasPrefix("__MACOSX/") && !path.split(separator: "/").contains { $0.hasPrefix(".") }
        }
        let models = visible.filter { PanoramaImport.modelExtensions.contains(extensionOf($0)) }
        let kinds = PanoramaImport.modelExtensions.map { ".\($0)" }.joined(separator: ", ")
        guard let model = models.first else {
            throw ApplicationArchiveError(
                .noModel,
                "the model archive holds no model file (\(kinds)): it has "
                    + (visible.isEmpty ? "no files" : visible.prefix(5).joined(separator: ", ")))
        }
        guard models.count == 1 else {
            throw ApplicationArchiveError(
                .severalModels,
                "the model archive holds \(models.count) models (\(models.prefix(5).joined(separator: ", "))): a model "
                    + "version is one model; upload each as a version of its own model")
        }
        if extensionOf(model) == "xml" {
            let weights = String(model.dropLast(3)) + "bin"
            guard visible.contains(weights) else {
                throw ApplicationArchiveError(
                    .missingWeights,
                    "the model archive holds the OpenVINO IR \(model) without its weights \(weights): put the .bin "
                        + "beside the .xml, with the same name")
            }
        }
        return model
    }

    /// Unpacks the archive into `folder` (safely, as an application archive is: see ``ApplicationArchive``) and
    /// returns its model file. Checks it first, so nothing is written for an archive without exactly one model.
    public static func unpack(_ archiveFile: URL, into folder: URL) throws(ApplicationArchiveError) -> URL {
        let model = try check(archiveFile)
        try ApplicationArchive.unpack(archiveFile, into: folder)
        return folder.appending(path: model)
    }

    /// Writes a ZIP archive of `model` at `archiveFile`: the model file, its weights when it is an OpenVINO IR
    /// (`NAME.bin` beside `NAME.xml`), and `extras` (e.g. the INT8 report), each under its own name at the archive's
    /// root. Throws naming a file that is missing.
    public static func pack(model: URL, extras: [URL] = [], into archiveFile: URL) throws {
        var files = [model]
        if model.pathExtension.lowercased() == "xml" {
            files.append(model.deletingPathExtension().appendingPathExtension("bin"))
        }
        files += extras
        for file in files where !FileManager.default.fileExists(atPath: file.path) {
            throw ApplicationArchiveError(
                .missingWeights,
                "\(file.path) does not exist"
                    + (file.pathExtension == "bin" ? ": an OpenVINO IR's weights must be beside its .xml" : ""))
        }
        try? FileManager.default.removeItem(at: archiveFile)
        let archive = try Archive(url: archiveFile, accessMode: .create)
        for file in files {
            try archive.addEntry(
                with: file.lastPathComponent, relativeTo: file.deletingLastPathComponent(), compressionMethod: .deflate)
        }
    }

    private static func extensionOf(_ path: String) -> String {
        (path.split(separator: "/").last.map(String.init) ?? path).split(separator: ".").last.map {
            $0.lowercased()
        } ?? ""
    }
}

extension ApplicationArchiveError.Code {
    /// A model archive holds no model file.
    public static let noModel = Self("noModel")
    /// A model archive holds more than one model file.
    public static let severalModels = Self("severalModels")
    /// An OpenVINO IR without its `.bin` weights.
    public static let missingWeights = Self("missingWeights")
}
