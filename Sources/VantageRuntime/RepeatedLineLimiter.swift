import Foundation
import VantageMedia

/// Keeps an application's log from flooding the runtime's: the same line is passed on at most `perSecond` times a
/// second; the rest are counted and summed up once the second is over ("… repeated 1,482 more times").
///
/// Real Panorama apps call `get()` inside `try: … except: pass` loops: when a video file ends, such a loop spins
/// and writes the same line thousands of times a second (108,000 lines, 197 MB in 70 s, before this existed).
struct RepeatedLineLimiter {
    /// Identical lines passed on per second.
    var perSecond = 3
    private var windowStart: UInt64 = 0
    private var counts: [String: Int] = [:]
    /// Lines held back in this window, in the order first held back.
    private var suppressed: [(line: String, count: Int)] = []

    init(perSecond: Int = 3) { self.perSecond = perSecond }

    /// Whether `line` may be written now (monotonic `now` in nanoseconds). Call `summaries(now:)` first: it closes
    /// the window that ended.
    mutating func admit(_ line: String, now: UInt64) -> Bool {
        if windowStart == 0 { windowStart = now }
        let count = (counts[line] ?? 0) + 1
        if counts.count < 4096 || counts[line] != nil { counts[line] = count }
        if count <= perSecond { return true }
        if let index = suppressed.firstIndex(where: { $0.line == line }) {
            suppressed[index].count += 1
        } else {
            suppressed.append((line, 1))
        }
        return false
    }

    /// When a second has passed since the window started: one line per line held back, saying how often it was
    /// repeated; the window starts again.
    mutating func summaries(now: UInt64) -> [String] {
        guard windowStart != 0, now &- windowStart >= 1_000_000_000 else { return [] }
        let seconds = Double(now &- windowStart) / 1e9
        let lines = suppressed.map { item in
            let shown = item.line.count > 120 ? String(item.line.prefix(120)) + "…" : item.line
            return "vantage: the line \"\(shown)\" was repeated \(item.count) more times in the last "
                + String(format: "%.0f", seconds) + " s (not shown)"
        }
        windowStart = now
        counts.removeAll(keepingCapacity: true)
        suppressed.removeAll(keepingCapacity: true)
        return lines
    }
}

/// Copies a code node's standard output and error to the runtime's standard error, line by line, through a
/// `RepeatedLineLimiter`. Runs on a thread of its own until the pipe closes (the process and its children exited).
final class AppOutputRelay: @unchecked Sendable {
    // Unchecked: the limiter and buffer are touched only by the relay's own thread.
    private let pipe: Pipe
    private var limiter = RepeatedLineLimiter()

    init(pipe: Pipe) { self.pipe = pipe }

    func start(name: String) {
        let thread = Thread { [self] in relay() }
        thread.name = name
        thread.start()
    }

    private func relay() {
        let fd = pipe.fileHandleForReading.fileDescriptor
        var pending: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var out: [UInt8] = []
        while true {
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, 500)
            out.removeAll(keepingCapacity: true)
            for summary in limiter.summaries(now: monotonicNanos()) { out += Array((summary + "\n").utf8) }
            if ready > 0 {
                let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && (errno == EINTR || errno == EAGAIN) {
                    write(out)
                    continue
                }
                if n <= 0 {
                    if !pending.isEmpty { out += pending + [UInt8(ascii: "\n")] }
                    write(out)
                    break
                }
                pending += chunk[0..<n]
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = pending[..<newline]
                    if limiter.admit(String(decoding: line, as: UTF8.self), now: monotonicNanos()) {
                        out += line
                        out.append(UInt8(ascii: "\n"))
                    }
                    pending.removeSubrange(...newline)
                }
                // A line without its newline yet (a progress bar) is passed on once it is long.
                if pending.count > 16 * 1024 {
                    out += pending
                    pending.removeAll(keepingCapacity: true)
                }
            } else if ready < 0 && errno != EINTR {
                break
            }
            write(out)
        }
        try? pipe.fileHandleForReading.close()
    }

    private func write(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Foundation.write(2, raw.baseAddress! + offset, raw.count - offset)
                if n <= 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += n
            }
        }
    }
}
