// A small W3C WebDriver client for the console's browser tests: it starts chromedriver, which drives a headless
// Chromium, and speaks WebDriver's HTTP/JSON protocol to it (over a plain socket: see `ChromeDriverHTTP` below).
//
//     @Test(.enabled(if: WebDriver.isAvailable, Comment(rawValue: WebDriver.skipReason)))
//     func signIn() async throws {
//         let browser = try await WebDriver.start()
//         try await browser.go("http://127.0.0.1:\(port)/")
//         try await browser.find("#name").type("alice")
//         try await browser.find("#role").select("admin")               // <select id=role>: the option value=admin
//         try await browser.find("input[type=file]").type("/abs/path/app.zip")
//         try await browser.find("button[type=submit]").click()
//         try await browser.waitFor(".welcome")
//         #expect(try await browser.find(".welcome").text() == "Hello alice")
//         #expect(try await browser.severeLogs().isEmpty)                 // console.error, uncaught exceptions, 404s
//         await browser.quit()
//     }
//
// `find` waits up to 5 s for the element to appear; its error names the selector and the page's URL.
// A driver that is dropped without `quit()` (a failing test) is killed in deinit with its browser: chromedriver
// runs in its own process group (Foundation's Process puts every child in one), and the whole group gets SIGKILL.
// Browser logs come from chromedriver's `POST /session/{id}/se/log` ({"type": "browser"}, the legacy
// logging endpoint that chromedriver keeps in W3C mode); it hands out each entry once, so the driver keeps them all
// and `browserLogs()` returns every entry since the session started. A page without a favicon logs a SEVERE
// "favicon.ico - Failed to load resource" entry of its own. Needs Debian's chromium and chromium-driver
// (scripts/setup installs them).

import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An error from chromedriver (its W3C error code and message) or from waiting in this client.
struct WebDriverError: Error, CustomStringConvertible {
    /// The W3C error code ("no such element", "stale element reference", ...), or what this client was doing.
    let error: String
    /// The message, without chromedriver's stack trace.
    let message: String

    var description: String { "WebDriver: \(error): \(message)" }
}

/// A headless Chromium session driven through chromedriver.
///
/// `@unchecked Sendable`: the session id and the chromedriver process are set once in `start()`; what changes
/// afterwards (the collected browser logs) is behind a `Mutex`, and chromedriver serialises the commands itself.
final class WebDriver: @unchecked Sendable {
    static let chromedriverPath = "/usr/bin/chromedriver"
    static let chromiumPath = "/usr/bin/chromium"

    /// Whether chromedriver and Chromium are installed, so that `start()` can work.
    static var isAvailable: Bool {
        FileManager.default.isExecutableFile(atPath: chromedriverPath)
            && FileManager.default.isExecutableFile(atPath: chromiumPath)
    }

    /// Why browser tests are skipped when `isAvailable` is false.
    static var skipReason: String {
        "browser tests need \(chromiumPath) and \(chromedriverPath) (Debian's chromium and chromium-driver): "
            + "run scripts/setup, or make test, which installs them"
    }

    /// Keys for `Element.type(_:)`, in WebDriver's private-use code points.
    enum Key {
        static let enter = "\u{E007}"
        static let tab = "\u{E004}"
        static let backspace = "\u{E003}"
        static let escape = "\u{E00C}"
    }

    /// How long `find` waits for an element to appear.
    static let findTimeout: Duration = .seconds(5)

    private let chromedriver: ChromeDriverProcess
    private let sessionID: String
    private let logs = Mutex<[(level: String, message: String)]>([])

    private init(chromedriver: ChromeDriverProcess, sessionID: String) {
        self.chromedriver = chromedriver
        self.sessionID = sessionID
    }

    // MARK: Session

    /// Starts chromedriver on a free port and opens a headless Chromium session (window 1280×900).
    static func start() async throws -> WebDriver {
        guard isAvailable else { throw WebDriverError(error: "not installed", message: skipReason) }
        var attempt = 0
        while true {
            attempt += 1
            let chromedriver = try ChromeDriverProcess(port: try freePort())
            do {
                try await chromedriver.waitUntilReady(timeout: .seconds(20))
            } catch is ChromeDriverProcess.ExitedEarly where attempt < 3 {
                continue  // most likely another program took the port between freePort() and chromedriver's bind
            }
            let capabilities: [String: Any] = [
                "browserName": "chrome",
                "goog:chromeOptions": [
                    "binary": chromiumPath,
                    "args": [
                        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--window-size=1280,900", "--user-data-dir=\(chromedriver.directory)/profile",
                    ],
                ] as [String: Any],
                "goog:loggingPrefs": ["browser": "ALL"],
                // A page that never loads fails after 30 s with chromedriver's "timeout" error, within the 60 s
                // that this client waits for any answer.
                "timeouts": ["pageLoad": 30_000, "script": 30_000],
            ]
            let value: Any
            do {
                value = try await chromedriver.send(
                    "POST", "/session", ["capabilities": ["alwaysMatch": capabilities]])
            } catch let error as WebDriverError {
                throw WebDriverError(
                    error: error.error,
                    message: "could not open a Chromium session: \(error.message)\n\(chromedriver.logTail())")
            }
            guard let sessionID = (value as? [String: Any])?["sessionId"] as? String else {
                throw WebDriverError(error: "session not created", message: "chromedriver answered \(value)")
            }
            return WebDriver(chromedriver: chromedriver, sessionID: sessionID)
        }
    }

    /// Closes the browser and stops chromedriver. The driver cannot be used afterwards.
    func quit() async {
        _ = try? await chromedriver.send("DELETE", "/session/\(sessionID)", nil, timeout: 10)
        await chromedriver.stop()
    }

    // MARK: Navigation and page

    /// Loads `url` and waits for the page to load (its `load` event).
    func go(_ url: String) async throws {
        try await command("POST", "/url", ["url": url])
    }

    func currentURL() async throws -> String {
        try await command("GET", "/url") as? String ?? ""
    }

    func title() async throws -> String {
        try await command("GET", "/title") as? String ?? ""
    }

    func pageSource() async throws -> String {
        try await command("GET", "/source") as? String ?? ""
    }

    /// A PNG of the viewport, to attach to a failing test.
    func screenshotPNG() async throws -> Data {
        let base64 = try await command("GET", "/screenshot") as? String ?? ""
        return Data(base64Encoded: base64) ?? Data()
    }

    /// Sets the browser window's size in CSS pixels (the viewport is a little smaller in headful browsers; headless
    /// Chromium's is the window's).
    func setWindowSize(width: Int, height: Int) async throws {
        _ = try await command("POST", "/window/rect", ["width": width, "height": height])
    }

    /// For docs/console.md: when `VANTAGE_CONSOLE_SCREENSHOTS` names a folder (`make console-screenshots` sets it to
    /// docs/console), saves the current page as `<name>-1440.png` and `<name>-375.png` there (a phone's width),
    /// then puts the window back to its size. Without the variable it does nothing, so `make test` leaves the
    /// working tree alone.
    func saveScreenshots(_ name: String) async throws {
        guard let folder = ProcessInfo.processInfo.environment["VANTAGE_CONSOLE_SCREENSHOTS"], !folder.isEmpty
        else { return }
        let directory = URL(fileURLWithPath: folder, isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for (width, height) in [(1440, 1000), (375, 812)] {
            try await setWindowSize(width: width, height: height)
            try await Task.sleep(for: .milliseconds(300))  // a layout pass, and images that follow the width
            // The whole page, not only the first screen (up to 4000 px tall).
            let sizes =
                try await executeScript(
                    "return [document.documentElement.scrollHeight, window.innerHeight]") as? [Int] ?? []
            if sizes.count == 2, sizes[0] > sizes[1] {
                // The window is taller than the page's viewport by the browser's own frame: add the difference.
                try await setWindowSize(width: width, height: min(sizes[0] + (height - sizes[1]) + 8, 4000))
                try await Task.sleep(for: .milliseconds(200))
            }
            _ = try await executeScript("window.scrollTo(0, 0)")
            try await screenshotPNG().write(to: directory.appending(path: "\(name)-\(width).png"))
        }
        try await setWindowSize(width: 1280, height: 900)
    }

    // MARK: Elements

    /// The first element matching the CSS selector, waiting up to `findTimeout` for one to appear.
    func find(_ css: String) async throws -> Element {
        try await waitFor(css, timeout: Self.findTimeout)
    }

    /// Every element matching the CSS selector now (no waiting; empty when none does).
    func findAll(_ css: String) async throws -> [Element] {
        elements(try await command("POST", "/elements", ["using": "css selector", "value": css]))
    }

    /// Waits until an element matches the CSS selector, and returns the first one.
    @discardableResult
    func waitFor(_ css: String, timeout: Duration) async throws -> Element {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let first = try await findAll(css).first { return first }
            if ContinuousClock.now >= deadline {
                let url = (try? await currentURL()) ?? "?"
                throw WebDriverError(
                    error: "no such element", message: "nothing matches \"\(css)\" on \(url) after \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Polls `condition` every 100 ms until it returns true; throws when `timeout` passes first.
    func waitUntil(
        timeout: Duration = .seconds(5), _ what: String = "the condition", _ condition: () async throws -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        while true {
            if try await condition() { return }
            if ContinuousClock.now >= deadline {
                let url = (try? await currentURL()) ?? "?"
                throw WebDriverError(error: "timeout", message: "\(what) did not hold within \(timeout) on \(url)")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    // MARK: Scripts and logs

    /// Runs `script` as the body of a synchronous function (`return ...` gives the result; `arguments[0]` is
    /// the first of `args`). Arguments and results are JSON values (NSNull for null); an `Element` passes as the
    /// DOM element, and DOM elements come back as `Element`s. Numbers come back as `NSNumber` (cast with `as? Int`,
    /// `as? Double`), JavaScript null and undefined as nil.
    @discardableResult
    func executeScript(_ script: String, _ args: [Any] = []) async throws -> Any? {
        let value = try await command(
            "POST", "/execute/sync", ["script": script, "args": args.map(Self.encodeArgument)])
        return decodeResult(value)
    }

    /// Every browser console entry (console.*, uncaught exceptions, failed loads) since the session started.
    func browserLogs() async throws -> [(level: String, message: String)] {
        let value: Any
        do {
            value = try await command("POST", "/se/log", ["type": "browser"])
        } catch let error as WebDriverError where error.error == "unknown command" {
            value = try await command("POST", "/log", ["type": "browser"])  // older chromedriver spelling
        }
        let fresh = (value as? [[String: Any]] ?? []).map {
            (level: $0["level"] as? String ?? "", message: $0["message"] as? String ?? "")
        }
        return logs.withLock {
            $0.append(contentsOf: fresh)
            return $0
        }
    }

    /// The browser log entries of level SEVERE: console.error, uncaught exceptions, failed requests.
    func severeLogs() async throws -> [String] {
        try await browserLogs().filter { $0.level == "SEVERE" }.map(\.message)
    }

    // MARK: Element

    /// An element of the current page. It goes stale ("stale element reference") when the page replaces it.
    struct Element: Sendable {
        let driver: WebDriver
        /// The WebDriver element id.
        let id: String

        func click() async throws {
            try await command("POST", "/click")
        }

        /// Sends keystrokes; for `<input type=file>`, an absolute path selects that file.
        func type(_ text: String) async throws {
            try await command("POST", "/value", ["text": text])
        }

        func clear() async throws {
            try await command("POST", "/clear")
        }

        /// The rendered text (what a user sees; empty for hidden elements).
        func text() async throws -> String {
            try await command("GET", "/text") as? String ?? ""
        }

        /// The HTML attribute, or nil when the element has none.
        func attribute(_ name: String) async throws -> String? {
            try await command("GET", "/attribute/\(WebDriver.pathComponent(name))") as? String
        }

        /// The DOM property (`value`, `checked`, ...): a JSON value, nil for null.
        func property(_ name: String) async throws -> Any? {
            let value = try await command("GET", "/property/\(WebDriver.pathComponent(name))")
            return value is NSNull ? nil : value
        }

        func isDisplayed() async throws -> Bool {
            try await command("GET", "/displayed") as? Bool ?? false
        }

        func isEnabled() async throws -> Bool {
            try await command("GET", "/enabled") as? Bool ?? false
        }

        /// For a `<select>`: chooses the `<option>` whose value attribute is `value` (clicking it, like a user).
        func select(_ value: String) async throws {
            let escaped = value.replacingOccurrences(of: "\\", with: "\\\\")
                .replacingOccurrences(of: "\"", with: "\\\"")
            guard let option = try await findAll("option[value=\"\(escaped)\"]").first else {
                var values: [String] = []
                for option in try await findAll("option") { values.append(try await option.attribute("value") ?? "") }
                throw WebDriverError(
                    error: "no such element",
                    message: "the select has no option with value \"\(value)\" (has \(values))")
            }
            try await option.click()
        }

        /// The first descendant matching the CSS selector, waiting up to `WebDriver.findTimeout`.
        func find(_ css: String) async throws -> Element {
            let deadline = ContinuousClock.now + WebDriver.findTimeout
            while true {
                if let first = try await findAll(css).first { return first }
                if ContinuousClock.now >= deadline {
                    let url = (try? await driver.currentURL()) ?? "?"
                    throw WebDriverError(
                        error: "no such element",
                        message:
                            "nothing inside the element matches \"\(css)\" on \(url) after \(WebDriver.findTimeout)")
                }
                try await Task.sleep(for: .milliseconds(100))
            }
        }

        /// Every descendant matching the CSS selector now.
        func findAll(_ css: String) async throws -> [Element] {
            driver.elements(try await command("POST", "/elements", ["using": "css selector", "value": css]))
        }

        @discardableResult
        private func command(_ method: String, _ path: String, _ body: [String: Any]? = nil) async throws -> Any {
            try await driver.command(method, "/element/\(id)\(path)", body)
        }
    }

    // MARK: Protocol

    private static let elementKey = "element-6066-11e4-a52e-4f735466cecf"

    /// Sends a command of this session; returns the response's `value` (NSNull for null).
    @discardableResult
    private func command(_ method: String, _ path: String, _ body: [String: Any]? = nil) async throws -> Any {
        try await chromedriver.send(method, "/session/\(sessionID)\(path)", body)
    }

    private func elements(_ value: Any) -> [Element] {
        (value as? [[String: Any]] ?? []).compactMap {
            ($0[Self.elementKey] as? String).map { Element(driver: self, id: $0) }
        }
    }

    private static func encodeArgument(_ argument: Any) -> Any {
        switch argument {
        case let element as Element: return [elementKey: element.id]
        case let array as [Any]: return array.map(encodeArgument)
        case let dictionary as [String: Any]: return dictionary.mapValues(encodeArgument)
        default: return argument
        }
    }

    private func decodeResult(_ value: Any) -> Any? {
        switch value {
        case is NSNull: return nil
        case let dictionary as [String: Any]:
            if dictionary.count == 1, let id = dictionary[Self.elementKey] as? String {
                return Element(driver: self, id: id)
            }
            return dictionary.mapValues { decodeResult($0) ?? NSNull() }
        case let array as [Any]: return array.map { decodeResult($0) ?? NSNull() }
        default: return value
        }
    }

    fileprivate static func pathComponent(_ name: String) -> String {
        name.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-_.")))
            ?? name
    }

    /// A TCP port on 127.0.0.1 that nothing listens on right now (bound to port 0, read back, closed).
    private static func freePort() throws -> Int {
        #if canImport(Glibc)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
            let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw WebDriverError(error: "no free port", message: "socket() failed: errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard bound else { throw WebDriverError(error: "no free port", message: "bind() failed: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// The chromedriver process, its HTTP endpoint, and a temporary folder for its log and Chromium's profile.
/// Killing it (deinit, or `stop()`) kills its process group: chromedriver and the browser it started.
///
/// `@unchecked Sendable`: the Process is launched in init and only signalled and polled afterwards.
private final class ChromeDriverProcess: @unchecked Sendable {
    /// chromedriver exited while starting up (the log tail is in the message).
    struct ExitedEarly: Error, CustomStringConvertible {
        let description: String
    }

    let port: Int
    let directory: String
    private let process = Process()
    private let base: String

    init(port: Int) throws {
        self.port = port
        base = "http://127.0.0.1:\(port)"
        directory =
            FileManager.default.temporaryDirectory
            .appendingPathComponent("vantage-webdriver-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let logPath = directory + "/chromedriver.log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        defer { try? log.close() }
        process.executableURL = URL(fileURLWithPath: WebDriver.chromedriverPath)
        process.arguments = ["--port=\(port)"]
        // Chromium's singleton socket and chromedriver's scoped folders go under TMPDIR: keep them in ours.
        try FileManager.default.createDirectory(atPath: directory + "/tmp", withIntermediateDirectories: true)
        process.environment = ProcessInfo.processInfo.environment.merging(["TMPDIR": directory + "/tmp"]) { $1 }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = log
        process.standardError = log
        do {
            try process.run()
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw WebDriverError(
                error: "chromedriver did not start", message: "\(WebDriver.chromedriverPath): \(error)")
        }
    }

    deinit {
        killGroup()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Polls `GET /status` until chromedriver says it is ready.
    func waitUntilReady(timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let status = try? await send("GET", "/status", nil, timeout: 2),
                (status as? [String: Any])?["ready"] as? Bool == true
            {
                return
            }
            if !process.isRunning {
                throw ExitedEarly(description: "chromedriver exited on port \(port) while starting:\n\(logTail())")
            }
            if ContinuousClock.now >= deadline {
                throw WebDriverError(
                    error: "chromedriver not ready",
                    message: "GET \(base)/status did not say ready within \(timeout)\n\(logTail())")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Kills chromedriver and its browser, and waits (up to 5 s) for chromedriver to be gone.
    func stop() async {
        killGroup()
        let deadline = ContinuousClock.now + .seconds(5)
        while process.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func killGroup() {
        guard process.isRunning else { return }
        let pid = process.processIdentifier
        // Foundation starts each child as the leader of its own process group; the browser inherits it. SIGKILL
        // rather than SIGTERM: children started from a test's thread inherit its blocked signals, SIGTERM among them.
        if getpgid(pid) == pid { kill(-pid, SIGKILL) } else { kill(pid, SIGKILL) }
    }

    func logTail() -> String {
        let text = (try? String(contentsOfFile: directory + "/chromedriver.log", encoding: .utf8)) ?? ""
        return "--- chromedriver log (tail) ---\n" + text.split(separator: "\n").suffix(15).joined(separator: "\n")
    }

    /// One WebDriver command: returns the response's `value`, or throws the WebDriver error it carries.
    func send(_ method: String, _ path: String, _ body: [String: Any]?, timeout: Int = 60) async throws -> Any {
        // WebDriver wants a JSON object with every POST, `{}` when the command takes no parameters.
        let payload = method == "POST" ? try JSONSerialization.data(withJSONObject: body ?? [:]) : nil
        let port = port
        let (status, data) = try await Self.onThread {
            try ChromeDriverHTTP.exchange(port: port, method: method, path: path, body: payload, timeout: timeout)
        }
        let json = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        let value = (json as? [String: Any])?["value"] ?? NSNull()
        if status >= 400 {
            let object = value as? [String: Any]
            let error = object?["error"] as? String ?? "HTTP \(status)"
            let message = object?["message"] as? String ?? String(decoding: data.prefix(500), as: UTF8.self)
            throw WebDriverError(error: error, message: "\(method) \(path): \(message)")
        }
        return value
    }

    /// Runs blocking socket I/O on a thread of its own, so that a slow command (a page load) never holds one of
    /// Swift concurrency's few cooperative threads, which the server under test may need to answer the browser.
    private static func onThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try work() }) }.start()
        }
    }
}

/// A minimal blocking HTTP/1.1 client for chromedriver on 127.0.0.1: one connection per request, the body read by
/// Content-Length. (FoundationNetworking's URLSession cannot be used: it fails every chromedriver response with
/// "Failed writing header", as chromedriver writes its headers without a space after the colon, `Content-Length:250`.)
private enum ChromeDriverHTTP {
    private static func failure(_ description: String) -> WebDriverError {
        WebDriverError(error: "chromedriver connection", message: description)
    }

    static func exchange(port: Int, method: String, path: String, body: Data?, timeout: Int) throws -> (Int, Data) {
        #if canImport(Glibc)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            let sendFlags = Int32(MSG_NOSIGNAL)
        #else
            let fd = socket(AF_INET, SOCK_STREAM, 0)
            let sendFlags: Int32 = 0
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
        #endif
        guard fd >= 0 else { throw failure("socket() failed: errno \(errno)") }
        defer { close(fd) }
        var limit = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        guard connected else { throw failure("cannot connect to 127.0.0.1:\(port): errno \(errno)") }

        var request = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        if let body {
            request += "Content-Type: application/json; charset=utf-8\r\nContent-Length: \(body.count)\r\n"
        }
        let bytes = [UInt8]((request + "\r\n").utf8) + [UInt8](body ?? Data())
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, sendFlags) }
            guard n > 0 else { throw failure("\(method) \(path): send failed: errno \(errno)") }
            sent += n
        }

        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        var headerEnd: Int?
        var contentLength: Int?
        var status = 0
        while true {
            if let headerEnd, let contentLength, received.count >= headerEnd + contentLength { break }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { break }
            guard n > 0 else {
                let why = errno == EAGAIN || errno == EWOULDBLOCK ? "no answer within \(timeout) s" : "errno \(errno)"
                throw failure("\(method) \(path) on chromedriver port \(port): \(why)")
            }
            received += chunk[0..<n]
            if headerEnd == nil, let end = find([13, 10, 13, 10], in: received) {
                headerEnd = end + 4
                let lines = String(decoding: received[0..<end], as: UTF8.self).components(separatedBy: "\r\n")
                let statusLine = lines.first?.split(separator: " ") ?? []
                status = statusLine.count > 1 ? Int(statusLine[1]) ?? 0 : 0
                for line in lines.dropFirst() {
                    guard let colon = line.firstIndex(of: ":") else { continue }
                    if line[..<colon].trimmingCharacters(in: .whitespaces).lowercased() == "content-length" {
                        contentLength = Int(line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
                    }
                }
            }
        }
        guard let headerEnd, status > 0 else {
            throw failure("\(method) \(path): chromedriver's answer is not HTTP (\(received.count) bytes)")
        }
        let end = contentLength.map { min(received.count, headerEnd + $0) } ?? received.count
        return (status, Data(received[headerEnd..<end]))
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i..<(i + needle.count)].elementsEqual(needle) {
            return i
        }
        return nil
    }
}
