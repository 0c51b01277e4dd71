import Foundation
import Synchronization
import Testing
import VantageAPI
import VantageCore

@testable import VantageServer

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Password guessing on the console's sign-in (issue 14, part 5): failures are throttled per user name and per
/// client address with growing delays (429 and Retry-After), audited with the user name (never the password), and
/// the password hashing they cost is bounded.
@Suite("Login throttling", .serialized)
struct LoginThrottleTests {
    static let password = ConsoleUsers.password

    /// Answers redirects as they are (a successful sign-in is a 303), and keeps no cookies.
    final class NoRedirects: NSObject, URLSessionTaskDelegate, Sendable {
        func urlSession(
            _ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
            newRequest request: URLRequest, completionHandler: @escaping @Sendable (URLRequest?) -> Void
        ) {
            completionHandler(nil)
        }
    }

    static let session: URLSession = {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpShouldSetCookies = false
        return URLSession(configuration: configuration, delegate: NoRedirects(), delegateQueue: nil)
    }()

    /// POSTs the sign-in form; answers the status and Retry-After.
    static func signIn(_ server: RunningServer, user: String, password: String) async throws -> (Int, Int?) {
        var request = URLRequest(url: server.base.appending(path: "login"))
        request.httpMethod = "POST"
        request.setValue("application/x-www-form-urlencoded", forHTTPHeaderField: "Content-Type")
        func encoded(_ text: String) -> String {
            text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
        }
        request.httpBody = Data("user=\(encoded(user))&password=\(encoded(password))".utf8)
        let (_, response) = try await session.data(for: request)
        let http = response as? HTTPURLResponse
        return (http?.statusCode ?? 0, (http?.value(forHTTPHeaderField: "Retry-After")).flatMap { Int($0) })
    }

    // Guards: after five wrong passwords for one user the next attempt — even with the right password — is answered
    // 429 with Retry-After, without being checked; after the wait the right password works and clears the count.
    // Every wrong password is in the audit log with the user name and address, and no password is.
    @Test("failures for one user are throttled, audited, and cleared by a success")
    func perUserThrottle() async throws {
        let server = try await RunningServer.start()
        try ConsoleUsers.add("alice", role: .operator, data: server.data)
        for attempt in 1...5 {
            let (status, _) = try await Self.signIn(server, user: "alice", password: "guess-\(attempt)")
            #expect(status == 401, "attempt \(attempt)")
        }
        let (throttled, retryAfter) = try await Self.signIn(server, user: "alice", password: Self.password)
        #expect(throttled == 429, "the sixth attempt in a row was not throttled")
        let wait = try #require(retryAfter, "a 429 without Retry-After")
        #expect((1...300).contains(wait))

        let audit = try await server.send("GET", "api/v1/audit?limit=50")
        let entries = try APIJSON.decoder().decode(Page<AuditEntry>.self, from: audit.body).items
        let failures = entries.filter { $0.action == "loginFailed" }
        #expect(failures.count == 5, "\(entries)")
        #expect(failures.allSatisfy { $0.target == "user:alice" && ($0.detail ?? "").contains("127.0.0.1") })
        #expect(failures.allSatisfy { ($0.detail ?? "").contains("wrong password") })
        #expect(!audit.text.contains("guess-"), "a password reached the audit log")

        try await Task.sleep(for: .seconds(wait))
        let (signedIn, _) = try await Self.signIn(server, user: "alice", password: Self.password)
        #expect(signedIn == 303, "the right password after the wait")
        let (afterSuccess, _) = try await Self.signIn(server, user: "alice", password: "guess-again")
        #expect(afterSuccess == 401, "a success clears the count")
    }

    // Guards: one address guessing across many user names is throttled too (a per-user count alone would let it
    // try every name five times).
    @Test("failures from one address are throttled across user names")
    func perAddressThrottle() async throws {
        let server = try await RunningServer.start()
        var statuses: [Int] = []
        for index in 0..<24 {
            statuses.append(try await Self.signIn(server, user: "nobody-\(index)", password: "guess").0)
        }
        #expect(statuses.prefix(20).allSatisfy { $0 == 401 }, "\(statuses)")
        #expect(statuses.suffix(4).allSatisfy { $0 == 429 }, "\(statuses)")
        let audit = try await server.send("GET", "api/v1/audit?limit=50")
        let failures = try APIJSON.decoder().decode(Page<AuditEntry>.self, from: audit.body).items.filter {
            $0.action == "loginFailed"
        }
        #expect(failures.count == 20)
        #expect(failures.contains { $0.target == "user:nobody-3" && ($0.detail ?? "").contains("no such user") })
    }

    // Guards: password hashing is bounded: at most `concurrent` run at once, `queued` wait, and the rest are turned
    // away at once instead of piling up on every core.
    @Test("password hashing runs a bounded number at once")
    func hashingBounded() async throws {
        final class Running: Sendable {
            let counts = Mutex((now: 0, most: 0))
        }
        let limit = HashingLimit(concurrent: 2, queued: 3)
        let running = Running()
        let results = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<12 {
                group.addTask {
                    await limit.run {
                        running.counts.withLock {
                            $0.now += 1
                            $0.most = max($0.most, $0.now)
                        }
                        // Long enough that all twelve have asked before the first two finish, even on a busy
                        // 2-core machine (at 0.5 s, late arrivals were served too: 6 of 12, once).
                        usleep(2_000_000)
                        running.counts.withLock { $0.now -= 1 }
                    } != nil
                }
            }
            var results: [Bool] = []
            for await result in group { results.append(result) }
            return results
        }
        #expect(running.counts.withLock { $0.most } <= 2, "more than two hashes ran at once")
        let served = results.filter { $0 }.count
        #expect(served >= 2 && served <= 5, "served \(served) of 12")
        #expect(results.contains(false), "none was turned away")
    }
}
