import Foundation
import Hummingbird
import VantageAPI

extension APIRoutes {
    /// Console users, managed by admins: the password is taken, hashed and never answered, logged or audited.
    static let users: [APIOperation] = [
        APIOperation(
            method: .get, path: "\(base)/users", id: "listUsers", tag: "access",
            summary: "List console users, with when each last signed in (while that session is kept)",
            access: .role(.admin), status: 200, content: .json(OpenAPIComponents.list(of: "User"))
        ) { call in .json(Items(items: try await call.store.listUsers())) },
        APIOperation(
            method: .post, path: "\(base)/users", id: "createUser", tag: "access",
            summary: "Create a console user (password at least 8 characters); 409 if the name is taken",
            access: .role(.admin), body: .json("NewUser", fields: NewUser.fields), status: 201,
            content: .json(.ref("User"))
        ) { call in
            let user = try await call.store.createUser(try await call.decode(NewUser.self))
            return .json(user, created: "user:\(user.name)")
        },
        APIOperation(
            method: .patch, path: "\(base)/users/{name}", id: "updateUser", tag: "access",
            summary:
                "Change a console user's role or password ({} changes nothing); either ends that user's sessions. The last admin cannot be demoted (409)",
            access: .role(.admin), body: .json("UserChange", fields: UserChange.fields), status: 200,
            content: .json(.ref("User"))
        ) { call in
            .json(try await call.store.changeUser(call.parameter("name"), try await call.decode(UserChange.self)))
        },
        APIOperation(
            method: .delete, path: "\(base)/users/{name}", id: "deleteUser", tag: "access",
            summary:
                "Delete a console user and end its sessions. Refused (409) for the last admin and for the admin calling",
            access: .role(.admin), status: 204, content: .none
        ) { call in
            try await call.store.deleteUser(call.parameter("name"), actor: call.caller?.actor ?? "")
            return .empty
        },
    ]
}
