import Foundation

/// Who holds a TCP port on this machine, for "port 8080 is taken" messages: the listening socket is found in
/// `/proc/net/tcp{,6}` and its owner among `/proc/<pid>/fd`. Processes of other users may be hidden from a
/// non-root runtime; then only the port is named.
public enum PortHolder {
    /// "python3 (pid 4242): python3 app.py" for the process listening on `port`, or nil if none can be seen.
    public static func describe(port: Int) -> String? {
        var inodes = Set<String>()
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let text = try? String(contentsOfFile: table, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                // local_address rem_address st ... inode (field 9); st 0A = LISTEN.
                guard fields.count > 9, fields[3] == "0A",
                    let portHex = fields[1].split(separator: ":").last, Int(portHex, radix: 16) == port
                else { continue }
                inodes.insert("socket:[\(fields[9])]")
            }
        }
        guard !inodes.isEmpty else { return nil }
        let fm = FileManager.default
        for pid in (try? fm.contentsOfDirectory(atPath: "/proc")) ?? [] where Int32(pid) != nil {
            let fdDirectory = "/proc/\(pid)/fd"
            for fd in (try? fm.contentsOfDirectory(atPath: fdDirectory)) ?? [] {
                guard let target = try? fm.destinationOfSymbolicLink(atPath: "\(fdDirectory)/\(fd)"),
                    inodes.contains(target)
                else { continue }
                let name =
                    (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?
                    .trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
                let command = ((try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data())
                    .split(separator: 0).prefix(4).map { String(decoding: $0, as: UTF8.self) }
                    .joined(separator: " ")
                return "\(name) (pid \(pid))" + (command.isEmpty ? "" : ": \(command.prefix(160))")
            }
        }
        return "a process this user cannot see"
    }
}
