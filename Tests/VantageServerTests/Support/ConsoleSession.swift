import Crypto
import Foundation
import Testing
import VantageAPI
@testable import VantageServer

// What the console's browser tests share: console users made the way an operator makes them, and a browser that
// leaves its page behind when a test fails.

enum ConsoleUsers {
    /// The password every test user gets.
    static let password = "correct horse battery"

    /// A console user made with `vantage server init-admin` on a running server's data folder.
    static func add(_ name: String, role: Role, data: URL) throws {
        let process = Process()
        process.executableURL = try ServerProcess.binary()
        process.arguments = ["server", "init-admin", "--data", data.path, "--user", name, "--role", role.rawValue]
        let input = Pipe()
        process.standardInput = input
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        input.fileHandleForWriting.write(Data((password + "\n").utf8))
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw APITestError("init-admin failed for \(name)") }
    }
}

extension ConsoleTests {
    /// The people counter's project as a ZIP, registered straight in `store` as `version` of a package
    /// "people-counter" (for tests that need a package but no agent to run it).
    static func addPeopleCounter(to store: Store, version: String = "1.0") async throws -> Package {
        let archive = try zipOfPeopleCounter()
        defer { try? FileManager.default.removeItem(at: archive.deletingLastPathComponent()) }
        let bytes = try Data(contentsOf: archive)
        let package = try await store.createPackage(NewPackage(name: "people-counter"))
        _ = try await store.addPackageVersion(
            package.id, version: version,
            upload: Upload(
                file: archive, digest: "sha256:" + SHA256.hash(data: bytes).hexString, size: Int64(bytes.count)))
        return package
    }
}

extension WebDriver {
    /// Starts Chromium, runs `body` with it and quits it. When `body` throws, the page's HTML and a screenshot are
    /// attached to the test (saved with `--attachments-path`).
    static func withBrowser(_ body: (WebDriver) async throws -> Void) async throws {
        let browser = try await WebDriver.start()
        do {
            try await body(browser)
        } catch {
            if let page = try? await browser.pageSource() { Attachment.record(page, named: "page.html") }
            if let png = try? await browser.screenshotPNG() { Attachment.record(png, named: "page.png") }
            await browser.quit()
            throw error
        }
        await browser.quit()
    }

    /// Signs in on the login page the browser shows (after being sent there), as `user`.
    func signIn(_ user: String) async throws {
        try await find("#user").type(user)
        try await find("#password").type(ConsoleUsers.password)
        try await find("button[type=submit]").click()
    }
}
