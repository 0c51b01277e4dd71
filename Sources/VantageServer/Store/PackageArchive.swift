import Foundation
import VantageApp

/// Unpacks an uploaded application archive into a scratch folder (safely: see `ApplicationArchive`) and loads it
/// with the runtime's parser.
enum PackageArchive {
    /// Returns the loaded project; throws a 422 naming what is wrong with the archive or the manifest, or what of the
    /// application lives outside it (`ApplicationProject.partsOutside()`); 507 when the disk is full.
    static func validate(_ archiveFile: URL, scratch: URL) throws -> ApplicationProject {
        let folder = scratch.appending(path: "unpack-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let root: URL
        do {
            try ApplicationArchive.unpack(archiveFile, into: folder)
            root = try ApplicationArchive.projectRoot(in: folder)
        } catch {
            throw APIError(error.code == .diskFull ? 507 : 422, error.message)
        }
        let project: ApplicationProject
        do {
            project = try ApplicationProject.load(root)
        } catch {
            throw APIError.unprocessable("the application in the archive is not valid: \(error)")
        }
        // A device has the archive and nothing else: code built beside the pusher's vantage, or a model file elsewhere
        // on the pusher's machine, would be missing there.
        let outside = project.partsOutside()
        if !outside.isEmpty {
            throw APIError.unprocessable(
                "the application is not self-contained, so a device could not run it: "
                    + outside.map(\.description).joined(separator: "; "))
        }
        return project
    }
}
