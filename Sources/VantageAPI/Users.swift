import Foundation

/// A console user as the API answers it (never the password or its hash).
public struct User: Codable, Sendable, Equatable {
    public var name: String
    public var role: Role
    public var createdAt: Date
    /// When the user last signed in, while that session is still kept (sessions go when they end or expire).
    public var lastSignInAt: Date?

    public init(name: String, role: Role, createdAt: Date, lastSignInAt: Date? = nil) {
        self.name = name
        self.role = role
        self.createdAt = createdAt
        self.lastSignInAt = lastSignInAt
    }
}

/// A new console user (admins only).
public struct NewUser: RequestBody {
    public static let fields = ["name", "role", "password"]
    public var name: String
    public var role: Role
    /// At least 8 characters, as `vantage server init-admin` asks.
    public var password: String

    public init(name: String, role: Role, password: String) {
        self.name = name
        self.role = role
        self.password = password
    }
}

/// A change to a console user: a new role, a new password, or both. Either ends the user's sessions.
public struct UserChange: RequestBody {
    public static let fields = ["role", "password"]
    public var role: Role?
    public var password: String?

    public init(role: Role? = nil, password: String? = nil) {
        self.role = role
        self.password = password
    }
}
