import Foundation

/// Whole-file writes that a crash cannot leave half done: a temporary file beside the target, flushed, renamed
/// over it, and the folder flushed.
public enum AtomicFile {
    public static func write(_ data: Data, to url: URL, permissions: Int = 0o644) throws {
        let folder = url.deletingLastPathComponent()
        let temporary = folder.appending(path: ".\(url.lastPathComponent).\(UUID().uuidString).tmp")
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_TRUNC, mode_t(permissions))
        guard fd >= 0 else {
            throw AgentError("cannot write \(url.path): \(String(cString: strerror(errno))); check the folder")
        }
        var failure: Int32 = 0
        data.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                offset += n
            }
        }
        if failure == 0, fsync(fd) != 0 { failure = errno }
        close(fd)
        guard failure == 0, rename(temporary.path, url.path) == 0 else {
            let code = failure != 0 ? failure : errno
            unlink(temporary.path)
            throw AgentError(
                "cannot write \(url.path): \(String(cString: strerror(code)))"
                    + (code == ENOSPC ? "; free disk space" : ""))
        }
        let folderFD = open(folder.path, O_RDONLY)
        if folderFD >= 0 {
            fsync(folderFD)
            close(folderFD)
        }
    }
}
