import Foundation
import VantageAPI

// The access page's users part: a table with a role select and Delete per user, and a form for a new user. All of it
// goes through /api/v1/users (ConsoleAssets+Users.swift), so the API's rules (the last admin stays, an admin
// cannot delete themself) and its messages are the console's.
extension ConsolePages {
    /// The users table and the new-user form; `actor` (`user:NAME`) marks the signed-in user's row.
    func usersSection(actor: String?) async throws -> HTML {
        let users = try await store.listUsers()
        let rows: [HTML] = users.map { user in
            let isCurrent = actor == "user:\(user.name)"
            let options: [HTML] = Role.allCases.map { role in
                "<option value=\"\(role.rawValue)\"\(role == user.role ? " selected" : "")>\(role.rawValue)</option>"
            }
            return """
                <tr data-user="\(user.name)"\(isCurrent ? " class=\"current-user\"" : "")>\
                <td>\(user.name)\(HTML.when(isCurrent, " <span class=\"badge busy you\">you</span>"))</td>\
                <td><select data-user-role="\(user.name)" data-was="\(user.role.rawValue)" aria-label="Role of \(user.name)">\(options)</select></td>\
                <td>\(HTML.time(user.createdAt))</td><td>\(HTML.time(user.lastSignInAt))</td>\
                <td>\(HTML.when(!isCurrent, "<button type=\"button\" class=\"danger small\" data-delete-user=\"\(user.name)\">Delete</button>"))</td></tr>
                """
        }
        let roles: [HTML] = Role.allCases.map { role in
            "<option value=\"\(role.rawValue)\"\(role == .viewer ? " selected" : "")>\(role.rawValue)</option>"
        }
        return """
            <h2>Users</h2>
            <div class="table-scroll"><table class="list" id="users">
            <thead><tr><th>Name</th><th>Role</th><th>Created</th><th>Last sign-in</th><th></th></tr></thead>
            <tbody>\(rows.isEmpty ? Self.emptyRow(5, "No console users.") : "\(rows)")</tbody>
            </table></div>
            <p class="form-error" role="alert" hidden id="user-error"></p>
            <p class="help">A new role or password signs that user out everywhere. The last admin keeps the admin role.</p>
            <section class="panel">
            <h2>Create a user</h2>
            <form id="user-form" class="inline user-form">
            <label>Name <input name="name" required autocomplete="off" placeholder="alice"></label>
            <label>Role <select name="role">\(roles)</select></label>
            <label>Password <input name="password" type="password" required minlength="8" autocomplete="new-password"></label>
            <label>Password again <input name="again" type="password" required minlength="8" autocomplete="new-password"></label>
            <button type="submit">Create user</button>
            <p class="form-error" role="alert" hidden></p>
            </form>
            </section>
            """
    }
}
