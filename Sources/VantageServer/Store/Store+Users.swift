import Foundation
import VantageAPI

extension Store {
    // MARK: Console users (managed through the API)

    /// The console's users by name, each with the time of its newest session still kept.
    public func listUsers() async throws -> [User] {
        try await database.query(
            """
            SELECT u.name, u.role, u.created_at, (SELECT MAX(s.created_at) FROM sessions s WHERE s.user_id = u.id) AS last_sign_in
            FROM users u ORDER BY u.name
            """
        ).map { row in
            User(
                name: try row.text("name"), role: Role(rawValue: try row.text("role")) ?? .viewer,
                createdAt: Millis.date(try row.integer("created_at")),
                lastSignInAt: Millis.date(try row.optionalInteger("last_sign_in")))
        }
    }

    func user(named name: String, in db: any SQLExecutor) async throws -> User {
        guard let row = try await db.query("SELECT name, role, created_at FROM users WHERE name = \(name)").first
        else { throw APIError.notFound("user", name) }
        return User(
            name: try row.text("name"), role: Role(rawValue: try row.text("role")) ?? .viewer,
            createdAt: Millis.date(try row.integer("created_at")))
    }

    /// The password as stored: hashed, with the rules of `vantage server init-admin` (at least 8 characters).
    func hashedNewPassword(_ password: String) async throws -> String {
        guard password.count >= 8 else {
            throw APIError.invalid("the password must be at least 8 characters: choose a longer one")
        }
        guard let hashed = await hashing.run({ Result { try Self.hashPassword(password) } }) else {
            throw APIError(503, "too many passwords are being checked at once: try again in a few seconds")
        }
        return try hashed.get()
    }

    /// Serialises changes that count admins, so two at once cannot remove the last two.
    func lockUsers(_ db: any SQLExecutor) async throws {
        if database.kind == .postgres { try await db.query("SELECT pg_advisory_xact_lock(7461628)") }
    }

    func otherAdmins(than name: String, in db: any SQLExecutor) async throws -> Int64 {
        try await db.query(
            "SELECT COUNT(*) AS n FROM users WHERE role = \(Role.admin.rawValue) AND name <> \(name)"
        ).first?.integer("n") ?? 0
    }

    /// A new console user; 409 if the name is taken.
    public func createUser(_ new: NewUser) async throws -> User {
        try Self.checkName(new.name, of: "user")
        let hash = try await hashedNewPassword(new.password)
        return try await database.transaction { db in
            try await lockUsers(db)
            guard try await db.query("SELECT id FROM users WHERE name = \(new.name)").isEmpty else {
                throw APIError.conflict(
                    "user \(new.name) exists already: choose another name, or change its role or password")
            }
            try await db.query(
                """
                INSERT INTO users (id, name, password_hash, role, created_at)
                VALUES (\(Identifiers.make("usr")), \(new.name), \(hash), \(new.role.rawValue), \(Millis.now()))
                """)
            return try await user(named: new.name, in: db)
        }
    }

    /// A new role or password for a user; either ends the user's sessions (an empty change changes nothing). The
    /// last admin keeps the admin role.
    public func changeUser(_ name: String, _ change: UserChange) async throws -> User {
        guard change.role != nil || change.password != nil else {
            return try await user(named: name, in: database)
        }
        let hash: String? = if let password = change.password { try await hashedNewPassword(password) } else { nil }
        return try await database.transaction { db in
            try await lockUsers(db)
            let current = try await user(named: name, in: db)
            if let role = change.role, role != .admin, current.role == .admin,
                try await otherAdmins(than: name, in: db) == 0
            {
                throw APIError.conflict(
                    "user \(name) is the last admin: make another user an admin first, then change this one's role")
            }
            if let role = change.role {
                try await db.query("UPDATE users SET role = \(role.rawValue) WHERE name = \(name)")
            }
            if let hash {
                try await db.query("UPDATE users SET password_hash = \(hash) WHERE name = \(name)")
            }
            try await db.query("DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE name = \(name))")
            return try await user(named: name, in: db)
        }
    }

    /// Deletes a user and ends its sessions. Refused for the last admin, and for the admin asking (`actor`).
    public func deleteUser(_ name: String, actor: String) async throws {
        guard actor != "user:\(name)" else {
            throw APIError.conflict(
                "you are signed in as \(name): an admin cannot delete themself; ask another admin to do it")
        }
        try await database.transaction { db in
            try await lockUsers(db)
            let current = try await user(named: name, in: db)
            if current.role == .admin, try await otherAdmins(than: name, in: db) == 0 {
                throw APIError.conflict(
                    "user \(name) is the last admin: make another user an admin first, then delete this one")
            }
            try await db.query("DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE name = \(name))")
            try await db.query("DELETE FROM users WHERE name = \(name)")
        }
    }
}
