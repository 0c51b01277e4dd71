import Crypto
import Foundation
import VantageAPI
import _CryptoExtras

/// Who is calling: an operator (API token or console session) with a role, or a device with its certificate.
public struct Caller: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case token(id: String)
        case session(id: String, csrfToken: String)
        case device(id: String)
    }

    public let kind: Kind
    /// The name written in the audit log: `token:NAME`, `user:NAME` or `device:ID`.
    public let actor: String
    /// Operators' role; devices have none.
    public let role: Role?
}

/// How a console sign-in went.
public enum LoginOutcome: Sendable {
    /// The session secret (the cookie) and the caller.
    case signedIn(secret: String, caller: Caller)
    /// Wrong user name or password.
    case refused
    /// Too many recent failures for this user name or address: try again after this many seconds.
    case throttled(retryAfter: Int)
    /// Too many sign-ins being checked at once: try again shortly.
    case busy
}

extension Store {
    // MARK: Callers

    /// The operator an API token (`vt_…`) belongs to. Devices do not use bearer tokens: they present their
    /// certificate (``caller(certificateSerial:fingerprint:)``).
    public func caller(bearer secret: String) async throws -> Caller? {
        guard secret.hasPrefix("vt_"),
            let row = try await database.query(
                "SELECT id, name, role, last_used_at FROM api_tokens WHERE secret_hash = \(Identifiers.hash(secret))"
            ).first,
            let role = Role(rawValue: try row.text("role"))
        else { return nil }
        let id = try row.text("id")
        // Last use is kept to the minute: one write per token per minute, not one per request.
        let now = Millis.now()
        if now - (try row.optionalInteger("last_used_at") ?? 0) > 60_000 {
            try await database.query("UPDATE api_tokens SET last_used_at = \(now) WHERE id = \(id)")
        }
        return Caller(kind: .token(id: id), actor: "token:\(try row.text("name"))", role: role)
    }

    /// The caller a console session cookie belongs to, while the session lasts.
    public func caller(session secret: String) async throws -> Caller? {
        guard
            let row = try await database.query(
                """
                SELECT s.id, s.csrf_token, s.expires_at, u.name, u.role FROM sessions s JOIN users u ON u.id = s.user_id
                WHERE s.secret_hash = \(Identifiers.hash(secret))
                """
            ).first,
            try row.integer("expires_at") > Millis.now(), let role = Role(rawValue: try row.text("role"))
        else { return nil }
        return Caller(
            kind: .session(id: try row.text("id"), csrfToken: try row.text("csrf_token")),
            actor: "user:\(try row.text("name"))",
            role: role)
    }

    // MARK: Users and sessions

    static let passwordRounds = 210_000

    /// A hash no password matches (its salt and digest are zeros), checked when the user does not exist.
    static let unknownUserHash =
        "pbkdf2-sha256$\(passwordRounds)$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

    static func hashPassword(_ password: String) throws -> String {
        var salt = [UInt8](repeating: 0, count: 16)
        var generator = SystemRandomNumberGenerator()
        for i in salt.indices { salt[i] = UInt8.random(in: 0...255, using: &generator) }
        let key = try KDF.Insecure.PBKDF2.deriveKey(
            from: Array(password.utf8), salt: salt, using: .sha256, outputByteCount: 32, rounds: passwordRounds)
        let hash = key.withUnsafeBytes { Data($0).base64EncodedString() }
        return "pbkdf2-sha256$\(passwordRounds)$\(Data(salt).base64EncodedString())$\(hash)"
    }

    static func verifyPassword(_ password: String, against stored: String) -> Bool {
        let parts = stored.split(separator: "$")
        guard parts.count == 4, parts[0] == "pbkdf2-sha256", let rounds = Int(parts[1]),
            let salt = Data(base64Encoded: String(parts[2])), let expected = Data(base64Encoded: String(parts[3])),
            let key = try? KDF.Insecure.PBKDF2.deriveKey(
                from: Array(password.utf8), salt: salt, using: .sha256, outputByteCount: expected.count, rounds: rounds)
        else { return false }
        let actual = key.withUnsafeBytes { Data($0) }
        // Constant-time comparison.
        return zip(actual, expected).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0 && actual.count == expected.count
    }

    /// Creates the user, or sets a new password (and role) for an existing one.
    public func setUser(name: String, password: String, role: Role) async throws {
        try Self.checkName(name, of: "user")
        guard password.count >= 8 else { throw APIError.invalid("the password must be at least 8 characters") }
        guard let hashed = await hashing.run({ Result { try Self.hashPassword(password) } }) else {
            throw APIError(503, "too many passwords are being checked at once: try again in a few seconds")
        }
        let hash = try hashed.get()
        try await database.transaction { db in
            if try await db.query("SELECT id FROM users WHERE name = \(name)").isEmpty {
                try await db.query(
                    "INSERT INTO users (id, name, password_hash, role, created_at) VALUES (\(Identifiers.make("usr")), \(name), \(hash), \(role.rawValue), \(Millis.now()))"
                )
            } else {
                try await db.query(
                    "UPDATE users SET password_hash = \(hash), role = \(role.rawValue) WHERE name = \(name)")
                try await db.query("DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE name = \(name))")
            }
        }
    }

    /// Checks a console login; on success returns the session secret (the cookie) and the caller. Goes through
    /// ``signIn(name:password:lifetime:client:)`` without a client address (only the per-user throttle applies).
    public func login(name: String, password: String, lifetime: Duration) async throws -> (
        secret: String, caller: Caller
    )? {
        guard
            case .signedIn(let secret, let caller) = try await signIn(
                name: name, password: password, lifetime: lifetime, client: nil)
        else { return nil }
        return (secret, caller)
    }

    /// Checks a console login from `client` (the peer's address). Throttled per user name and per address
    /// (``LoginThrottle``), with at most a few password hashes at once (``HashingLimit``); every wrong password is
    /// audited (`loginFailed`, with the user name and address, never the password).
    public func signIn(name: String, password: String, lifetime: Duration, client: String?) async throws
        -> LoginOutcome
    {
        // The name as throttled and audited: bounded, whatever was typed.
        let user = String(name.prefix(128))
        if let wait = logins.begin(user: user, address: client) {
            let (seconds, fraction) = wait.components
            return .throttled(retryAfter: max(1, Int(seconds) + (fraction > 0 ? 1 : 0)))
        }
        let row = try await database.query("SELECT id, password_hash FROM users WHERE name = \(name)").first
        // An unknown user costs the same as a wrong password, so timing does not tell which user names exist.
        let stored = try row?.text("password_hash") ?? Self.unknownUserHash
        guard let matches = await hashing.run({ Self.verifyPassword(password, against: stored) }) else {
            return .busy
        }
        guard let row, matches else {
            logins.failed(user: user, address: client)
            try await audit(
                actor: "anonymous", action: "loginFailed", target: "user:\(user)",
                detail: "from \(client ?? "an unknown address"): \(row == nil ? "no such user" : "wrong password")")
            return .refused
        }
        logins.succeeded(user: user, address: client)
        let secret = Identifiers.secret("vs")
        let now = Millis.now()
        try await database.query(
            """
            INSERT INTO sessions (id, secret_hash, user_id, csrf_token, created_at, expires_at)
            VALUES (\(Identifiers.make("ses")), \(Identifiers.hash(secret)), \(try row.text("id")), \(Identifiers.secret("csrf", bytes: 24)),
                    \(now), \(now + Int64(lifetime.components.seconds) * 1000))
            """)
        // Expired sessions go when anyone logs in.
        try await database.query("DELETE FROM sessions WHERE expires_at < \(now)")
        guard let caller = try await caller(session: secret) else { return .refused }
        return .signedIn(secret: secret, caller: caller)
    }

    public func logout(session id: String) async throws {
        try await database.query("DELETE FROM sessions WHERE id = \(id)")
    }

    // MARK: Tokens

    /// At the first start (no user, no token), makes an admin token and returns its secret to be printed once.
    public func bootstrapAdminToken() async throws -> String? {
        try await database.transaction { db -> String? in
            // Replicas starting together on one PostgreSQL database must not both make a token.
            if database.kind == .postgres { try await db.query("SELECT pg_advisory_xact_lock(7461627)") }
            let users = try await db.query("SELECT COUNT(*) AS n FROM users").first?.integer("n") ?? 0
            let tokens = try await db.query("SELECT COUNT(*) AS n FROM api_tokens").first?.integer("n") ?? 0
            guard users == 0, tokens == 0 else { return nil }
            let secret = Identifiers.secret("vt")
            try await db.query(
                """
                INSERT INTO api_tokens (id, name, secret_hash, role, created_at)
                VALUES (\(Identifiers.make("tok")), 'admin', \(Identifiers.hash(secret)), \(Role.admin.rawValue), \(Millis.now()))
                """)
            return secret
        }
    }

    func token(from row: SQLRow) throws -> APIToken {
        APIToken(
            id: try row.text("id"), name: try row.text("name"), role: Role(rawValue: try row.text("role")) ?? .viewer,
            createdAt: Millis.date(try row.integer("created_at")),
            lastUsedAt: Millis.date(try row.optionalInteger("last_used_at")))
    }

    public func listTokens() async throws -> [APIToken] {
        try await database.query(
            "SELECT id, name, role, created_at, last_used_at FROM api_tokens ORDER BY created_at, id"
        ).map {
            try token(from: $0)
        }
    }

    public func createToken(_ new: NewToken) async throws -> APITokenCreated {
        try Self.checkName(new.name, of: "token")
        let id = Identifiers.make("tok")
        let secret = Identifiers.secret("vt")
        try await database.query(
            """
            INSERT INTO api_tokens (id, name, secret_hash, role, created_at)
            VALUES (\(id), \(new.name), \(Identifiers.hash(secret)), \(new.role.rawValue), \(Millis.now()))
            """)
        let row = try await database.query(
            "SELECT id, name, role, created_at, last_used_at FROM api_tokens WHERE id = \(id)")[0]
        return APITokenCreated(token: try token(from: row), secret: secret)
    }

    public func deleteToken(_ id: String) async throws {
        guard Identifiers.isValid(id, prefix: "tok"),
            !(try await database.query("SELECT id FROM api_tokens WHERE id = \(id)").isEmpty)
        else { throw APIError.notFound("token", id) }
        try await database.query("DELETE FROM api_tokens WHERE id = \(id)")
    }

    // MARK: Audit log

    /// Appends one line to the audit log (the table refuses updates and deletes).
    public func audit(actor: String, action: String, target: String, detail: String? = nil) async throws {
        try await database.query(
            """
            INSERT INTO audit_log (id, at, actor, action, target, detail)
            VALUES (\(Identifiers.make("aud")), \(Millis.now()), \(actor), \(action), \(target), \(detail))
            """)
    }

    /// Audit lines, newest first, a page at a time; `actor` and `action`, when given, keep only those lines.
    public func auditLog(limit: Int, cursor: String?, actor: String? = nil, action: String? = nil) async throws
        -> Page<AuditEntry>
    {
        guard (1...500).contains(limit) else { throw APIError.invalid("limit must be 1-500") }
        var sql: SQL = "SELECT id, at, actor, action, target, detail FROM audit_log WHERE 1 = 1"
        if let actor { sql.append(" AND actor = \(actor)") }
        if let action { sql.append(" AND action = \(action)") }
        if let cursor {
            guard let (at, id) = Self.decodeCursor(cursor, prefix: "aud") else {
                throw APIError.invalid(
                    "cursor is not one this server gave: pass nextCursor from the previous page as is")
            }
            sql.append(" AND (at, id) < (\(at), \(id))")
        }
        sql.append(" ORDER BY at DESC, id DESC LIMIT \(limit + 1)")
        let rows = try await database.query(sql)
        let entries = try rows.prefix(limit).map { row in
            AuditEntry(
                id: try row.text("id"), time: Millis.date(try row.integer("at")), actor: try row.text("actor"),
                action: try row.text("action"), target: try row.text("target"), detail: try row.optionalText("detail"))
        }
        let next =
            rows.count > limit ? entries.last.map { Self.encodeCursor(at: Millis.from($0.time), id: $0.id) } : nil
        return Page(items: entries, nextCursor: next)
    }
}
