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
    /// Bytes of the lines in `counts`: at most `maxTrackedBytes` (lines are at most `LogLineSplitter`'s limit, and
    /// 4,096 different ones a second are tracked at most), so a flood of distinct long lines costs little memory.
    private var trackedBytes = 0
    private static let maxTrackedBytes = 4 << 20
    /// Lines held back in this window, in the order first held back.
    private var suppressed: [(line: String, count: Int)] = []

    init(perSecond: Int = 3) { self.perSecond = perSecond }

    /// Whether `line` may be written now (monotonic `now` in nanoseconds). Call `summaries(now:)` first: it closes
    /// the window that ended.
    mutating func admit(_ line: String, now: UInt64) -> Bool {
        if windowStart == 0 { windowStart = now }
        let known = counts[line]
        let count = (known ?? 0) + 1
        if known != nil {
            counts[line] = count
        } else if counts.count < 4096 && trackedBytes + line.utf8.count <= Self.maxTrackedBytes {
            counts[line] = count
            trackedBytes += line.utf8.count
        }
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
        trackedBytes = 0
        suppressed.removeAll(keepingCapacity: true)
        return lines
    }
}

/// Splits an application's output into lines of at most `maxBytes`: a longer line is passed on cut to its first
/// `maxBytes` bytes with a note ("… [line cut at 16384 bytes]"), and the rest of it is dropped up to its newline. One
/// line of megabytes (a dumped array, a binary written by mistake) then neither fills memory nor stops the log.
struct LogLineSplitter {
    /// The longest line passed on whole.
    var maxBytes: Int
    /// Inside a line already cut: bytes are dropped up to the next newline.
    private(set) var skipping = false

    init(maxBytes: Int = 16 * 1024) { self.maxBytes = maxBytes }

    /// Passes each complete line of `bytes` to `line` (without its newline; a cut line with its note), and a partial
    /// last line once it is longer than `maxBytes`. Returns how many bytes were used: the rest, a partial line not
    /// yet too long, should be given again with what follows it.
    mutating func split(_ bytes: UnsafeRawBufferPointer, line: (String) -> Void) -> Int {
        var start = 0
        while start < bytes.count {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[start...])
            guard let newline = rest.firstIndex(of: UInt8(ascii: "\n")) else {
                // A partial line: cut it now if it is too long already, else wait for its end.
                if skipping { return bytes.count }
                guard rest.count > maxBytes else { return start }
                line(cut(rest))
                skipping = true
                return bytes.count
            }
            let text = UnsafeRawBufferPointer(rebasing: rest[rest.startIndex..<newline])
            if skipping {
                skipping = false
            } else {
                line(text.count > maxBytes ? cut(text) : String(decoding: text, as: UTF8.self))
            }
            start += newline + 1  // `rest` counts from 0
        }
        return start
    }

    private func cut(_ text: UnsafeRawBufferPointer) -> String {
        String(
            decoding: UnsafeRawBufferPointer(rebasing: text[text.startIndex..<text.startIndex + maxBytes]),
            as: UTF8.self)
            + " … [line cut at \(maxBytes) bytes]"
    }
}

/// Copies a code node's standard output and error to the runtime's standard error, line by line, through a
/// `RepeatedLineLimiter`; a line longer than `LogLineSplitter`'s limit is cut. Runs on a thread of its own until the
/// pipe closes (the process and its children exited).
final class AppOutputRelay: Sendable {
    // The limiter and the line splitter are the relay thread's own (locals of `relay`).
    private let pipe: Pipe
    /// Where the lines go: the runtime's standard error.
    private let output: Int32

    init(pipe: Pipe, output: Int32 = 2) {
        self.pipe = pipe
        self.output = output
    }

    func start(name: String) {
        let thread = Thread { [self] in relay() }
        thread.name = name
        thread.start()
    }

    private func relay() {
        let fd = pipe.fileHandleForReading.fileDescriptor
        var limiter = RepeatedLineLimiter()
        var splitter = LogLineSplitter()
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
                    // The last line, without its newline.
                    if !pending.isEmpty && !splitter.skipping { pending.append(UInt8(ascii: "\n")) }
                    relayLines(&pending, into: &out, splitter: &splitter, limiter: &limiter)
                    write(out)
                    break
                }
                pending += chunk[0..<n]
                relayLines(&pending, into: &out, splitter: &splitter, limiter: &limiter)
            } else if ready < 0 && errno != EINTR {
                break
            }
            write(out)
        }
        try? pipe.fileHandleForReading.close()
    }

    /// Moves the lines of `pending` that the limiter lets through to `out`; keeps a partial line in `pending`.
    private func relayLines(
        _ pending: inout [UInt8], into out: inout [UInt8], splitter: inout LogLineSplitter,
        limiter: inout RepeatedLineLimiter
    ) {
        let used = pending.withUnsafeBytes { raw in
            splitter.split(raw) { line in
                guard limiter.admit(line, now: monotonicNanos()) else { return }
                out += line.utf8
                out.append(UInt8(ascii: "\n"))
            }
        }
        pending.removeSubrange(..<used)
    }

    private func write(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Foundation.write(output, raw.baseAddress! + offset, raw.count - offset)
                if n <= 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += n
            }
        }
    }
}
