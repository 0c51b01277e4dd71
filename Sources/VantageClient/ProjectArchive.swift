import Foundation
import ZIPFoundation

/// The ZIP archive `vantage packages push` uploads: an application project folder's contents at the archive's root.
///
/// Build outputs and version-control folders are left out. Symbolic links are archived as what they point to (the
/// server refuses links in an archive), so a project may link a large model file from elsewhere.
enum ProjectArchive {
    /// Names never archived: they are not part of the application and can be large.
    static let skipped: Set<String> = [".git", ".build", ".swiftpm", "__pycache__", ".DS_Store", "node_modules"]

    /// Writes the archive of `folder` to `archive`; throws a local `ClientError` saying what is wrong.
    static func make(of folder: URL, at archive: URL) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory), isDirectory.boolValue
        else {
            throw ClientError.local("\(folder.path) is not a folder: give the application project's folder")
        }
        let graphs = folder.appending(path: "graphs")
        guard FileManager.default.fileExists(atPath: graphs.path) else {
            throw ClientError.local(
                "\(folder.path) holds no application project: it needs graphs/<app>/graph.json (and packages/)")
        }
        let zip: Archive
        do {
            zip = try Archive(url: archive, accessMode: .create)
        } catch {
            throw ClientError.local("cannot create \(archive.path): \(error.localizedDescription)")
        }
        var visited: Set<String> = [folder.resolvingSymlinksInPath().path]
        try add(folder: folder, prefix: "", to: zip, visited: &visited)
    }

    private static func add(folder: URL, prefix: String, to zip: Archive, visited: inout Set<String>) throws {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        } catch {
            throw ClientError.local("cannot read \(folder.path): \(error.localizedDescription)")
        }
        for name in names where !skipped.contains(name) {
            let item = folder.appending(path: name)
            let path = prefix + name
            let target = item.resolvingSymlinksInPath()
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: target.path, isDirectory: &isDirectory) else {
                throw ClientError.local("\(item.path) is a symbolic link to nothing: fix or remove it")
            }
            do {
                if isDirectory.boolValue {
                    // A link back up the tree would never end.
                    guard visited.insert(target.path).inserted else { continue }
                    try zip.addEntry(with: path + "/", fileURL: target)
                    try add(folder: target, prefix: path + "/", to: zip, visited: &visited)
                } else {
                    try zip.addEntry(with: path, fileURL: target, compressionMethod: .deflate)
                }
            } catch let error as ClientError {
                throw error
            } catch {
                throw ClientError.local("cannot archive \(item.path): \(error.localizedDescription)")
            }
        }
    }
}
