import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The private folder where a runtime's code nodes find their sockets: made by `mkdtemp` (mode 0700, a name nobody
/// can guess), so no other user can connect to a node's socket, put a socket of their own in its place or even see
/// its name. Sockets in it are 0600 as well. The folder goes at the end of the run; one left by a killed run is
/// removed by the next run that looks in the same place.
///
/// It lives in the state folder when the socket paths fit there (a Unix socket's path has at most 107 bytes), else
/// in `$XDG_RUNTIME_DIR` (a per-user 0700 folder), else in `/tmp`.
final class AppSocketDirectory: Sendable {
    /// The folder's path.
    let path: String
    private let removed = Atomic<Bool>(false)

    /// Longest path a Unix socket may have (`sun_path` less its terminating zero).
    static let maxSocketPath = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1

    /// Makes the folder in the first place where `<folder>/<longest node name>.sock` fits.
    init(stateDirectory: URL, longestNodeName: Int) throws {
        let pid = getpid()
        let name = "vantage-\(pid)-XXXXXX"
        let socketName = longestNodeName + ".sock".utf8.count
        let parents = Self.candidates(stateDirectory: stateDirectory)
        let parent =
            parents.first { $0.utf8.count + 1 + name.utf8.count + 1 + socketName <= Self.maxSocketPath }
            ?? parents.last!
        var template = Array((parent + "/" + name).utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw RuntimeError(
                "cannot create a private folder for the code nodes' sockets in \(parent): "
                    + "\(String(cString: strerror(errno))); make it writable, or give vantage another --state folder")
        }
        path = String(cString: made)
    }

    deinit { remove() }

    /// The socket of the code node `node`.
    func socketPath(ofNode node: String) -> String { path + "/" + node + ".sock" }

    /// Removes the folder and the sockets in it (once).
    func remove() {
        if removed.exchange(true, ordering: .relaxed) { return }
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Where the folder may go, in order of preference.
    static func candidates(stateDirectory: URL) -> [String] {
        var parents = [stateDirectory.standardizedFileURL.path]
        if let runtime = ProcessInfo.processInfo.environment["XDG_RUNTIME_DIR"], runtime.hasPrefix("/") {
            parents.append(runtime)
        }
        parents.append("/tmp")
        return parents
    }

    /// Removes socket folders (`vantage-<pid>-XXXXXX`) this user's runs left in `parent` when killed (their process
    /// is gone). Returns how many.
    @discardableResult
    static func removeStale(in parent: String) -> Int {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: parent) else { return 0 }
        var removed = 0
        for name in names where name.hasPrefix("vantage-") {
            let parts = name.split(separator: "-")
            guard parts.count == 3, parts[2].count == 6, let pid = Int32(parts[1]), pid > 0 else { continue }
            guard kill(pid, 0) != 0 && errno == ESRCH else { continue }
            var info = stat()
            let full = parent + "/" + name
            guard lstat(full, &info) == 0, info.st_mode & S_IFMT == S_IFDIR, info.st_uid == getuid() else { continue }
            if (try? FileManager.default.removeItem(atPath: full)) != nil { removed += 1 }
        }
        return removed
    }
}
