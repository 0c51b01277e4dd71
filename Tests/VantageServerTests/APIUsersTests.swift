import Foundation
import Testing
import VantageAPI
import VantageServer

/// Console users managed through the API by admins: the last admin stays, a changed password or role ends the
/// user's sessions, and passwords are never answered or audited.
@Suite("API users")
struct APIUsersTests {
    static let v1 = "/api/v1"

    /// Signs `name` in as the console does and answers the session credential.
    static func signIn(_ api: APIHarness, _ name: String, _ password: String) async throws -> Credential? {
        guard let login = try await api.store.login(name: name, password: password, lifetime: .seconds(600)),
            case .session(_, let csrf) = login.caller.kind
        else { return nil }
        return .session(login.secret, csrf: csrf, actor: "user:\(name)")
    }

    @Test(
        "the last admin can be neither demoted nor deleted, and an admin cannot delete themself",
        arguments: Engine.allCases)
    func lastAdminStays(engine: Engine) async throws {
        try await APIHarness.run(on: engine) { api in
            let v1 = Self.v1
            let created = try await api.call(
                .post, "\(v1)/users", as: api.admin,
                json: NewUser(name: "ada", role: .admin, password: "ada's password"))
            #expect(created.status == 201, "\(created)")
            let again = try await api.call(
                .post, "\(v1)/users", as: api.admin,
                json: NewUser(name: "ada", role: .viewer, password: "other password"))
            api.document.expectError(again, 409, mentioning: ["ada", "exists"])
            let short = try await api.call(
                .post, "\(v1)/users", as: api.admin, json: NewUser(name: "sam", role: .viewer, password: "short"),
                documented: false)
            api.document.expectError(short, 400, mentioning: ["password"])

            let demote = try await api.call(
                .patch, "\(v1)/users/ada", as: api.admin, json: UserChange(role: .operator))
            api.document.expectError(demote, 409, mentioning: ["last admin"])
            api.document.expectError(
                try await api.call(.delete, "\(v1)/users/ada", as: api.admin), 409, mentioning: ["last admin"])

            let bob = try await api.call(
                .post, "\(v1)/users", as: api.admin,
                json: NewUser(name: "bob", role: .admin, password: "bob's password"))
            #expect(bob.status == 201)
            let bobSession = try #require(try await Self.signIn(api, "bob", "bob's password"))
            let himself = try await api.call(.delete, "\(v1)/users/bob", as: bobSession)
            api.document.expectError(himself, 409, mentioning: ["themself"])
            #expect(try await api.call(.delete, "\(v1)/users/ada", as: bobSession).status == 204)
            api.document.expectError(
                try await api.call(.patch, "\(v1)/users/bob", as: api.admin, json: UserChange(role: .viewer)), 409,
                mentioning: ["last admin"])
            let users = try await api.call(.get, "\(v1)/users", as: api.admin).decode(Page<User>.self).items
            #expect(users.map(\.name) == ["bob"] && users.first?.role == .admin)
            #expect(users.first?.lastSignInAt != nil, "bob signed in: \(users)")
            api.document.expectError(try await api.call(.delete, "\(v1)/users/nobody", as: api.admin), 404)
        }
    }

    @Test("a new password or role ends the user's sessions: the old cookie is refused", arguments: Engine.allCases)
    func changesEndSessions(engine: Engine) async throws {
        try await APIHarness.run(on: engine) { api in
            let v1 = Self.v1
            #expect(
                try await api.call(
                    .post, "\(v1)/users", as: api.admin,
                    json: NewUser(name: "carol", role: .operator, password: "carol's first password")
                ).status == 201)
            let old = try #require(try await Self.signIn(api, "carol", "carol's first password"))
            #expect(try await api.call(.get, "\(v1)/me", as: old).status == 200)

            let changed = try await api.call(
                .patch, "\(v1)/users/carol", as: api.admin, json: UserChange(password: "carol's second password"))
            #expect(changed.status == 200, "\(changed)")
            #expect(!changed.text.contains("second password"))
            api.document.expectError(try await api.call(.get, "\(v1)/me", as: old), 401)
            #expect(try await Self.signIn(api, "carol", "carol's first password") == nil, "the old password works")
            let new = try #require(try await Self.signIn(api, "carol", "carol's second password"))
            #expect(try await api.call(.get, "\(v1)/me", as: new).status == 200)

            let role = try await api.call(.patch, "\(v1)/users/carol", as: api.admin, json: UserChange(role: .viewer))
            #expect(try role.decode(User.self).role == .viewer)
            api.document.expectError(try await api.call(.get, "\(v1)/me", as: new), 401)
            let viewer = try #require(try await Self.signIn(api, "carol", "carol's second password"))
            let me = try await api.call(.get, "\(v1)/me", as: viewer).decode(Identity.self)
            #expect(me == Identity(actor: "user:carol", role: .viewer))
            api.document.expectError(try await api.call(.get, "\(v1)/users", as: viewer), 403, mentioning: ["admin"])

            let unchanged = try await api.call(.patch, "\(v1)/users/carol", as: api.admin, json: UserChange())
            #expect(try unchanged.decode(User.self).role == .viewer)
            #expect(try await api.call(.get, "\(v1)/me", as: viewer).status == 200, "an empty change ended the session")

            let audit = try await api.store.auditLog(limit: 50, cursor: nil).items
            #expect(audit.contains { $0.action == "updateUser" && $0.target == "\(v1)/users/carol" })
            #expect(audit.contains { $0.action == "createUser" && $0.actor == "token:admin" })
            #expect(
                !audit.contains { ($0.detail ?? "").contains("carol's") }, "a password is in the audit log: \(audit)")
        }
    }
}
