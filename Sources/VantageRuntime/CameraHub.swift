import Foundation
import Synchronization
import VantageMedia
import VantageProtocol

/// Cameras shared by the runtimes of one process (`vantage agent` runs one runtime per application instance): a
/// camera that two instances read is opened and decoded once, and both take its frames (a `CameraStream` serves
/// any number of consumers). The stream starts with its first user and stops with its last.
public final class CameraHub: Sendable {
    /// What makes two cameras the same stream.
    struct Key: Hashable, Sendable {
        var url: String
        var username: String?
        var password: String?
        var transport: String
        var realtime: Bool
        var loop: Bool
    }

    final class Shared: @unchecked Sendable {
        // Unchecked: `users` and `started` are only touched under the hub's lock.
        let stream: CameraStream
        let region: SharedMemoryRegion
        let path: String
        var users = 0
        var started = false

        init(stream: CameraStream, region: SharedMemoryRegion, path: String) {
            self.stream = stream
            self.region = region
            self.path = path
        }
    }

    private let streams = Mutex<[Key: Shared]>([:])

    public init() {}

    /// How many camera streams are open (decoding) now.
    public var openStreams: Int { streams.withLock { $0.count } }

    /// The stream for `key`, made by `make` (a stream, its frame memory and that memory's path) when no runtime of
    /// this process reads it yet.
    func acquire(
        _ key: Key, make: () throws -> (CameraStream, SharedMemoryRegion, String)
    ) throws -> (stream: CameraStream, path: String) {
        try streams.withLock { streams in
            if let shared = streams[key] {
                shared.users += 1
                return (shared.stream, shared.path)
            }
            let (stream, region, path) = try make()
            let shared = Shared(stream: stream, region: region, path: path)
            shared.users = 1
            streams[key] = shared
            return (stream, path)
        }
    }

    /// Starts the stream unless another user started it already.
    func start(_ stream: CameraStream) {
        let start = streams.withLock { streams -> Bool in
            guard let shared = streams.values.first(where: { $0.stream === stream }), !shared.started else {
                return false
            }
            shared.started = true
            return true
        }
        if start { stream.start() }
    }

    /// One user is done with the stream; the last one stops it and removes its frame memory.
    func release(_ stream: CameraStream) {
        let last = streams.withLock { streams -> Shared? in
            guard let (key, shared) = streams.first(where: { $0.value.stream === stream }) else { return nil }
            shared.users -= 1
            guard shared.users == 0 else { return nil }
            streams[key] = nil
            return shared
        }
        if let last {
            last.stream.stop()
            last.region.removeFile()
        }
    }
}

/// The frame memory of a main stream that is never decoded (its frames are read from the sub-stream): one tiny slot,
/// since a `CameraStream` always has a pool.
enum MainStreamStorage {
    final class Owner: @unchecked Sendable {
        // Unchecked: the memory is never written (a main stream decodes nothing).
        let base = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 64)
        deinit { base.deallocate() }
    }

    static func make() -> FrameStorage {
        let owner = Owner()
        return FrameStorage(base: owner.base, slotCount: 1, slotCapacity: 64, owner: owner)
    }
}
