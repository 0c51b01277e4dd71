import ArgumentParser
import Foundation

/// What `vantage agent enroll` and `vantage server init` need from the machine they set up: whether the Debian
/// package's unit is installed and they run as root (then the packaged folders are the defaults), whether systemd
/// runs, the `vantage` system user, and the services' `/etc/vantage/*.env` files.
struct ServiceSetup {
    /// `agent` or `server`: the unit is `vantage-ROLE.service`, its settings `/etc/vantage/ROLE.env`.
    let role: String

    /// The unit's name.
    var unit: String { "vantage-\(role)" }

    /// The data folder the packaged unit passes to `vantage` (its `StateDirectory=`).
    var packagedData: String { "/var/lib/vantage/\(role)" }

    /// The packaged unit's `EnvironmentFile=`.
    var packagedConfig: String { "/etc/vantage/\(role).env" }

    /// Run as root on a machine where the package installed the unit: the packaged folders are the defaults.
    var packaged: Bool {
        geteuid() == 0
            && ["/lib/systemd/system", "/usr/lib/systemd/system", "/etc/systemd/system"].contains {
                FileManager.default.fileExists(atPath: "\($0)/\(unit).service")
            }
    }

    /// systemd is the init system of this machine (what `sd_booted()` checks).
    var systemdRuns: Bool { FileManager.default.fileExists(atPath: "/run/systemd/system") }

    /// The `vantage` system user's ids, when run as root and the user exists (the package makes it).
    var serviceUser: (uid: uid_t, gid: gid_t)? {
        guard geteuid() == 0, let entry = getpwnam("vantage") else { return nil }
        return (entry.pointee.pw_uid, entry.pointee.pw_gid)
    }

    /// Whether the packaged unit would run with `data` and `config`: only then is starting it what was asked.
    func unitUses(data: String, config: String?) -> Bool {
        packaged && URL(filePath: data).standardizedFileURL.path == packagedData && config == packagedConfig
    }

    /// Gives `folder` (and, when `recursive`, everything in it) to `uid`:`gid`; links themselves, not their targets.
    static func chown(_ folder: URL, to owner: (uid: uid_t, gid: gid_t), recursive: Bool) throws {
        var paths = [folder.path]
        if recursive, let walker = FileManager.default.enumerator(atPath: folder.path) {
            while let relative = walker.nextObject() as? String { paths.append(folder.appending(path: relative).path) }
        }
        for path in paths where lchown(path, owner.uid, owner.gid) != 0 {
            // A file gone since the listing has nothing to give: SQLite removes its -wal and -shm files when the
            // last connection closes (package-test, 2026-12-07: "vantage.sqlite-wal: No such file or directory").
            if errno == ENOENT { continue }
            throw SetupError("cannot give \(path) to the vantage user: \(String(cString: strerror(errno)))")
        }
    }

    /// Runs `systemctl ARGUMENTS`, its output going to ours; throws when it fails.
    static func systemctl(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(filePath: "/usr/bin/env")
        process.arguments = ["systemctl"] + arguments
        do {
            try process.run()
        } catch {
            throw SetupError("cannot run systemctl \(arguments.joined(separator: " ")): \(error.localizedDescription)")
        }
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw SetupError(
                "systemctl \(arguments.joined(separator: " ")) failed (status \(process.terminationStatus)); see its message above"
            )
        }
    }
}

/// A failure of `vantage agent enroll` or `vantage server init` that the user must act on; the message says how.
struct SetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A systemd `EnvironmentFile=` (`NAME=value` lines, `#` comments), edited in place: settings are replaced where
/// they are, comments and other lines stay, and the file keeps its owner and mode (it may hold secrets).
struct EnvironmentFile {
    let path: String
    private(set) var lines: [String]
    /// Whether the file was there when read.
    let existed: Bool

    /// Reads `path`; a file that is not there reads as empty (it is made on `write()`).
    init(path: String) throws {
        self.path = path
        if FileManager.default.fileExists(atPath: path) {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw SetupError("cannot read \(path): run this as root (sudo), or give another --config FILE")
            }
            var text = String(decoding: data, as: UTF8.self)
            if text.hasSuffix("\n") { text.removeLast() }
            lines = text.isEmpty ? [] : text.components(separatedBy: "\n")
            existed = true
        } else {
            lines = []
            existed = false
        }
    }

    /// The value of the last `name=` line, unquoted; nil when none.
    func value(_ name: String) -> String? {
        guard let line = lines.last(where: { $0.hasPrefix("\(name)=") }) else { return nil }
        let raw = line.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces)
        if raw.count >= 2, let quote = raw.first, quote == "\"" || quote == "'", raw.last == quote {
            let inner = String(raw.dropFirst().dropLast())
            guard quote == "\"" else { return inner }
            var unescaped = ""
            var escaping = false
            for character in inner {
                if escaping || character != "\\" {
                    unescaped.append(character)
                    escaping = false
                } else {
                    escaping = true
                }
            }
            return unescaped
        }
        return raw
    }

    /// Sets `name` to `value` (double-quoted): the last `name=` line is replaced, or one is added after `after`
    /// lines (comments that describe it) or at the end.
    mutating func set(_ name: String, _ value: String) {
        let escaped = value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        let line = "\(name)=\"\(escaped)\""
        if let index = lines.lastIndex(where: { $0.hasPrefix("\(name)=") }) {
            lines[index] = line
        } else {
            lines.append(line)
        }
    }

    /// Adds `line` at the end.
    mutating func append(_ line: String) { lines.append(line) }

    /// Replaces the comment lines starting with `prefix` by `comment`, put just before the `before=` setting (or at
    /// the end).
    mutating func setComment(startingWith prefix: String, _ comment: String, before name: String) {
        lines.removeAll { $0.hasPrefix(prefix) }
        let index = lines.lastIndex(where: { $0.hasPrefix("\(name)=") }) ?? lines.endIndex
        lines.insert(comment, at: index)
    }

    /// Whether `write()` can replace the file (its folder must take a new file beside it).
    var writable: Bool {
        let folder = URL(filePath: path).deletingLastPathComponent().path
        return access(folder.isEmpty ? "." : folder, W_OK) == 0
    }

    /// Writes the file atomically (a new file beside it, renamed over it), with the old file's owner and mode (less
    /// any access for others), or 0640 and, as root, root:vantage for a new one (what the package's postinst gives
    /// its `.env` files).
    func write() throws {
        let manager = FileManager.default
        let url = URL(filePath: path)
        var mode: mode_t = 0o640
        var owner: (uid: uid_t, gid: gid_t)? = geteuid() == 0 ? (0, getgrnam("vantage")?.pointee.gr_gid ?? 0) : nil
        var status = stat()
        if existed, stat(path, &status) == 0 {
            // Never readable by others, whatever it was: it may hold a database password now.
            mode = status.st_mode & 0o7770
            owner = (status.st_uid, status.st_gid)
        }
        let staged = url.deletingLastPathComponent().appending(path: ".\(url.lastPathComponent).\(getpid()).new")
        // Made 0600 first: the contents may be a secret before the mode is set.
        guard manager.createFile(atPath: staged.path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
            throw SetupError("cannot write \(path): run this as root (sudo), or give another --config FILE")
        }
        do {
            let handle = try FileHandle(forWritingTo: staged)
            try handle.write(contentsOf: Data((lines.joined(separator: "\n") + "\n").utf8))
            try handle.synchronize()
            try handle.close()
            if let owner, chown(staged.path, owner.uid, owner.gid) != 0 {
                throw SetupError("cannot set the owner of \(path): \(String(cString: strerror(errno)))")
            }
            guard chmod(staged.path, mode) == 0, rename(staged.path, path) == 0 else {
                throw SetupError("cannot write \(path): \(String(cString: strerror(errno)))")
            }
        } catch {
            try? manager.removeItem(at: staged)
            throw error
        }
    }
}

/// Command-line flags kept as one string in an `.env` file (`$VANTAGE_AGENT_ARGS` in a unit's `ExecStart=` is split
/// at white space, so that is how it is read here).
enum FlagList {
    /// The words of `value`.
    static func split(_ value: String) -> [String] {
        value.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
    }

    /// `flags` without the options in `names` and their values (`--name VALUE` or `--name=VALUE`).
    static func removing(_ names: Set<String>, from flags: [String]) -> [String] {
        var kept: [String] = []
        var skipValue = false
        for flag in flags {
            if skipValue {
                skipValue = false
                continue
            }
            if names.contains(flag) {
                skipValue = true
            } else if let equals = flag.firstIndex(of: "="), names.contains(String(flag[..<equals])) {
                continue
            } else {
                kept.append(flag)
            }
        }
        return kept
    }
}
