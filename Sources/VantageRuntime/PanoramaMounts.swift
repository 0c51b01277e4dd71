// Panorama's fixed paths made real for every process of a code node.
//
// A Panorama application ran in a container where `/panorama` held its code and `/opt/aws/panorama/storage` and
// `/opt/aws/panorama/logs` were writable folders. Python's own file calls are rewritten by the SDK's
// `sitecustomize`, but an entry such as `bash /panorama/setup.sh`, or a native library that opens
// `/panorama/model.bin` itself, sees the real filesystem. So each code node runs in a private mount namespace
// (bubblewrap, `bwrap`: as root directly, otherwise through an unprivileged user namespace) whose root mirrors
// the host's — every top-level folder bound as it is, so the node sees the same files, sockets and devices —
// plus those three paths bound to the node's folders. Nothing is created on the host: the mirror's root is a
// private tmpfs.
import Foundation
import VantageCore

/// Builds the `bwrap` command line that runs a program with Panorama's paths bound, and finds out whether this
/// machine lets the runtime create such a namespace.
struct PanoramaMounts: Sendable {
    /// Target path in the namespace → folder on the host.
    var binds: [(target: String, source: String)]

    /// The `bwrap` program, or `$VANTAGE_BWRAP` (tests point it at a missing file to play a machine without it).
    static var program: String {
        if let path = ProcessInfo.processInfo.environment["VANTAGE_BWRAP"], !path.isEmpty { return path }
        for directory in ["/usr/bin", "/bin", "/usr/local/bin"]
        where FileManager.default.isExecutableFile(
            atPath: directory + "/bwrap")
        {
            return directory + "/bwrap"
        }
        return "/usr/bin/bwrap"
    }

    /// Why this machine cannot give a code node its own mount namespace, or nil if it can. Probed once per process.
    static let unavailable: String? = probe()

    private static func probe() -> String? {
        let program = Self.program
        guard FileManager.default.isExecutableFile(atPath: program) else {
            return "\(program) (bubblewrap) is not installed — install it (Debian: apt-get install bubblewrap)"
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = ["--die-with-parent", "--bind", "/", "/", "--", "/bin/true"]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        let child = ChildProcess(process)
        do { try child.run() } catch { return "\(program) cannot be started (\(error.localizedDescription))" }
        let output = errors.fileHandleForReading.readDataToEndOfFile()
        child.waitUntilExit()
        guard child.terminationStatus == 0 else {
            let detail = String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            return "\(program) cannot create a mount namespace here (\(detail.isEmpty ? "no message" : detail)) — "
                + "run vantage as root, or allow unprivileged user namespaces (sysctl "
                + "kernel.unprivileged_userns_clone=1, or on Ubuntu kernel.apparmor_restrict_unprivileged_userns=0)"
        }
        return nil
    }

    /// `bwrap` arguments that end with `--`: the program and its arguments follow.
    func arguments(workingDirectory: String) -> [String] {
        var arguments = ["--die-with-parent"]
        let targets = binds.map(\.target)
        mirror("/", targets: targets, into: &arguments)
        for bind in binds { arguments += ["--bind", bind.source, bind.target] }
        arguments += ["--chdir", workingDirectory, "--"]
        return arguments
    }

    /// Mirrors the host folder `directory` into the namespace: every entry bound as it is, except those on the way
    /// to a bind target, which become folders of the namespace's own tmpfs and are mirrored one level further.
    private func mirror(_ directory: String, targets: [String], into arguments: inout [String]) {
        let fm = FileManager.default
        let prefix = directory == "/" ? "/" : directory + "/"
        for name in ((try? fm.contentsOfDirectory(atPath: directory)) ?? []).sorted() {
            let path = prefix + name
            if targets.contains(path) { continue }  // bound to the node's folder instead
            let onTheWay = targets.contains { $0.hasPrefix(path + "/") }
            if let destination = try? fm.destinationOfSymbolicLink(atPath: path) {
                if !onTheWay {
                    arguments += ["--symlink", destination, path]
                    continue
                }
            }
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
            if onTheWay && isDirectory.boolValue {
                arguments += ["--dir", path]
                mirror(path, targets: targets, into: &arguments)
            } else if directory == "/" && name == "dev" {
                arguments += ["--dev-bind", path, path]
            } else {
                arguments += ["--bind", path, path]
            }
        }
    }
}
