import Foundation

/// Which Python runs a Python code node: the host's Python 3, whatever version the descriptor names.
///
/// Panorama descriptors name the interpreter of Panorama's image (`python3.7`, `python3.8`, `/usr/bin/python3.8`).
/// A host seldom has that exact version, and Panorama applications run on later Python 3 versions, so every Python
/// entry runs with the host's `python3` (the first on PATH, else `/usr/bin/python3`), or with the package's virtual
/// environment made from it. When the descriptor names another version, the runtime says so once.
public enum PythonInterpreter {
    /// Whether a descriptor's `entry.path` names a Python interpreter: `python`, `python3`, `python3.8`, with or
    /// without a folder.
    public static func isPython(_ executable: String) -> Bool {
        requestedVersion(executable) != nil
    }

    /// The version an entry names, as numbers: `[3, 8]` for `python3.8` or `/usr/bin/python3.8`, `[3]` for
    /// `python3`, `[]` for `python`; `nil` when the entry is not a Python interpreter.
    public static func requestedVersion(_ executable: String) -> [Int]? {
        let name = URL(fileURLWithPath: executable).lastPathComponent
        guard name.hasPrefix("python") else { return nil }
        let version = name.dropFirst("python".count)
        guard version.allSatisfy({ $0.isNumber || $0 == "." }) else { return nil }
        return version.split(separator: ".").compactMap { Int($0) }
    }

    /// Where to look for the host's Python 3, in order: `python3` in each folder of `path` (a PATH value), then
    /// `/usr/bin/python3`.
    public static func hostCandidates(path: String?) -> [URL] {
        var candidates: [URL] = []
        for folder in (path ?? "").split(separator: ":") where folder.hasPrefix("/") {
            candidates.append(URL(fileURLWithPath: String(folder)).appendingPathComponent("python3"))
        }
        candidates.append(URL(fileURLWithPath: "/usr/bin/python3"))
        var seen = Set<String>()
        return candidates.filter { seen.insert($0.path).inserted }
    }

    /// What to tell the user when the entry names a version the host's Python is not, e.g. `descriptor asks for
    /// python3.8; running Python 3.11 (the host's)`; `nil` when the versions agree (`python3` on any Python 3,
    /// `python3.11` on 3.11.2) or the entry names none (`python`).
    public static func versionNotice(entry executable: String, hostVersion: [Int]) -> String? {
        guard let requested = requestedVersion(executable), !requested.isEmpty else { return nil }
        guard Array(hostVersion.prefix(requested.count)) != requested else { return nil }
        let shown = hostVersion.prefix(2).map(String.init).joined(separator: ".")
        return "descriptor asks for \(executable); running Python \(shown) (the host's)"
    }
}
