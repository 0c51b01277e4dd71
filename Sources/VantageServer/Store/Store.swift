import Crypto
import Foundation
import VantageAPI
import VantageCore

/// The control plane's data: every read and change of a resource, on whichever ``Database`` the server runs,
/// with artifacts (model files, package archives, snapshots) in an ``ArtifactStore``. The REST API and the
/// console both go through here, so both see and enforce the same rules.
public struct Store: Sendable {
    public let database: any Database
    public let artifacts: any ArtifactStore
    let secrets: SecretBox
    /// Signs devices' certificates and the device endpoint's.
    public let authority: CertificateAuthority
    /// How long a provisioning token can be used, in milliseconds.
    let provisioningTokenLifetime: Int64
    /// How long a device certificate is valid.
    let deviceCertificateLifetime: TimeInterval
    /// How long after its end an expired device certificate may still renew itself, in milliseconds.
    let expiredRenewalMillis: Int64
    /// Wakes devices waiting for their desired state to change.
    public let changes = ChangeSignal()
    /// Instances' live views, relayed from their devices while someone watches.
    public let live = LiveRelay()
    /// Recently authenticated device certificates.
    let callers = CallerCache()
    /// Prometheus metrics (`/metrics`).
    public let metrics: ServerMetrics
    /// Failed console sign-ins, per user name and client address.
    let logins = LoginThrottle()
    /// How many password hashes run at once.
    let hashing = HashingLimit()

    /// A device is ONLINE while its last heartbeat is at most this old.
    static let onlineWindowMillis: Int64 = 90_000

    public init(
        database: any Database, artifacts: any ArtifactStore, secrets: SecretBox, authority: CertificateAuthority,
        provisioningTokenLifetime: Duration = .seconds(3600), metrics: ServerMetrics = ServerMetrics(),
        deviceCertificateLifetime: Duration = .seconds(365 * 86400),
        expiredRenewalWindow: Duration = .seconds(30 * 86400)
    ) {
        self.deviceCertificateLifetime = TimeInterval(deviceCertificateLifetime.components.seconds)
        self.expiredRenewalMillis = expiredRenewalWindow.components.seconds * 1000
        self.metrics = metrics
        self.database = database
        self.artifacts = artifacts
        self.secrets = secrets
        self.authority = authority
        self.provisioningTokenLifetime = provisioningTokenLifetime.components.seconds * 1000
    }
}

/// An error the API answers with its status and message (4xx: the caller's mistake, said so they can fix it).
public struct APIError: Error, CustomStringConvertible, Sendable {
    public let status: Int
    public let message: String

    public init(_ status: Int, _ message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { message }

    static func notFound(_ what: String, _ id: String) -> APIError {
        APIError(404, "no \(what) \(id)")
    }
    static func invalid(_ message: String) -> APIError { APIError(400, message) }
    static func unprocessable(_ message: String) -> APIError { APIError(422, message) }
    static func conflict(_ message: String) -> APIError { APIError(409, message) }
}

/// Milliseconds since 1970: how the database stores times.
enum Millis {
    static func now() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }
    static func from(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }
    static func date(_ millis: Int64) -> Date { Date(timeIntervalSince1970: Double(millis) / 1000) }
    static func date(_ millis: Int64?) -> Date? { millis.map { date($0) } }
}

/// Resource ids: a type prefix and 80 random bits in lowercase base32 (`dev_k3v9…`), and secrets.
enum Identifiers {
    private static let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567")

    static func make(_ prefix: String) -> String { prefix + "_" + random(count: 16) }

    /// A secret with `bytes` of randomness, e.g. an API token `vt_…`.
    static func secret(_ prefix: String, bytes: Int = 32) -> String { prefix + "_" + random(count: bytes * 8 / 5) }

    private static func random(count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return String((0..<count).map { _ in alphabet[Int(generator.next() % 32)] })
    }

    /// Whether `id` looks like one of ours with `prefix` (checked before any query, so junk gets a clear 404).
    static func isValid(_ id: String, prefix: String) -> Bool {
        id.count == prefix.count + 17 && id.hasPrefix(prefix + "_")
            && id.dropFirst(prefix.count + 1).allSatisfy { alphabet.contains($0) }
    }

    /// SHA-256 of a secret, as stored (secrets themselves are never stored).
    static func hash(_ secret: String) -> String {
        SHA256.hash(data: Data(secret.utf8)).hexString
    }
}

extension Sequence<UInt8> {
    /// Lowercase hexadecimal, two digits a byte: how digests are written (`sha256:<hex>`, token hashes, ETags).
    var hexString: String { map { String(format: "%02x", $0) }.joined() }
}

extension Store {
    /// Checks a resource name: 1–128 characters of letters, digits, `-`, `_`, `.` and spaces.
    static func checkName(_ name: String, of what: String) throws {
        let trimmed = name.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, trimmed == name, name.count <= 128,
            name.unicodeScalars.allSatisfy({
                CharacterSet.alphanumerics.contains($0) || "-_. ".unicodeScalars.contains($0)
            })
        else {
            throw APIError.invalid(
                "\(what) name \"\(name.prefix(140))\" must be 1-128 letters, digits, '-', '_', '.' or spaces, without leading or trailing spaces"
            )
        }
    }

    static func checkDescription(_ text: String?) throws -> String {
        let text = text ?? ""
        guard text.count <= 1024 else { throw APIError.invalid("description is longer than 1024 characters") }
        return text
    }

    /// Runs `body`, turning a unique-constraint failure into a 409 that names what already exists.
    @discardableResult
    static func unique<T>(_ what: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as DatabaseError where error.code == .uniqueViolation {
            throw APIError.conflict("\(what) already exists: choose another name")
        }
    }

    /// JSON text for a column.
    static func json(_ value: some Encodable) -> String { APIJSON.string(value) }

    static func decodeJSON<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        try APIJSON.decoder().decode(T.self, from: Data(text.utf8))
    }
}
