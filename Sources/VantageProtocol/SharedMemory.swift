import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A file in shared memory (`/dev/shm`), mapped read-write: how frames and tensors pass between the runtime and an
/// application process without a copy. The creator owns the file and removes it when done.
public final class SharedMemoryRegion: @unchecked Sendable {
    // Unchecked: the mapping lives as long as this object; who writes which bytes is decided by the protocol.
    public let path: String
    public let base: UnsafeMutableRawPointer
    public let size: Int
    private let owner: Bool

    /// Creates (or replaces) a shared-memory file of `size` bytes. Pages cost memory only once touched.
    public init(creating path: String, size: Int) throws(ProtocolError) {
        unlink(path)
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else {
            throw ProtocolError("cannot create shared memory \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        guard ftruncate(fd, off_t(size)) == 0 else {
            unlink(path)
            throw ProtocolError(
                "cannot size shared memory \(path) to \(size) bytes: \(String(cString: strerror(errno)))")
        }
        self.base = try Self.map(fd, size, path)
        self.path = path
        self.size = size
        self.owner = true
    }

    /// Maps an existing shared-memory file made by the other side.
    public init(opening path: String, size: Int) throws(ProtocolError) {
        let fd = open(path, O_RDWR)
        guard fd >= 0 else {
            throw ProtocolError("cannot open shared memory \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        self.base = try Self.map(fd, size, path)
        self.path = path
        self.size = size
        self.owner = false
    }

    private static func map(_ fd: Int32, _ size: Int, _ path: String) throws(ProtocolError) -> UnsafeMutableRawPointer {
        let pointer = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        guard let pointer, pointer != MAP_FAILED else {
            throw ProtocolError("cannot map shared memory \(path): \(String(cString: strerror(errno)))")
        }
        return pointer
    }

    deinit {
        munmap(base, size)
        if owner { unlink(path) }
    }

    /// Removes the file's name now (the mapping stays valid): for the end of a run, since objects alive at
    /// process exit are never deinitialised.
    public func removeFile() {
        if owner { unlink(path) }
    }

    /// Removes files `<directory>/<prefix><pid>-…` left by processes that no longer exist (killed before they
    /// could clean up). Returns how many were removed.
    @discardableResult
    public static func removeStale(in directory: String, prefix: String) -> Int {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return 0 }
        var removed = 0
        for name in names where name.hasPrefix(prefix) {
            let rest = name.dropFirst(prefix.count)
            guard let pid = Int32(rest.prefix { $0.isNumber }), pid > 0 else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH, unlink(directory + "/" + name) == 0 { removed += 1 }
        }
        return removed
    }
}
