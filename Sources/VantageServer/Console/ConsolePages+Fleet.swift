import Foundation
import VantageAPI

// Fleet actions: what the device, camera, model and package pages offer operators (rename, revoke, new token,
// delete with what uses it), and the admins' access page (API tokens, users) and audit log. Every button calls
// the REST API (ConsoleAssets+Fleet.swift), so each change is checked and audited there. Buttons that change
// something carry `needs-operator` (or `needs-admin`): the style sheet hides them from whoever may not use them.
extension ConsolePages {
    // MARK: Devices

    /// The device page's panel: rename, new provisioning token (shown once, with the enrol command), revoke, delete.
    func deviceActions(_ device: Device, instances: [ApplicationInstance]) -> HTML {
        let live = instances.filter { $0.desiredState != .removed }
        let removed = instances.count - live.count
        // Revoking leaves the device waiting for a new enrolment, without a certificate; one that has been heard
        // from before was revoked (or its enrolment was replaced).
        let revoked =
            device.certificateExpiresAt == nil && device.provisioningStatus == .awaitingProvisioning
            && device.lastHeartbeat != nil
        let deleteNote: HTML =
            live.isEmpty
            ? """
            <p class="help">Deleting forgets the device\(HTML.when(removed > 0, " and its \(removed) removed application instance\(removed == 1 ? "" : "s") (with their deployment history)")); \
            its events stay. A deleted device cannot call this server again.</p>
            """
            : """
            <p class="help" id="delete-blocked">To delete this device, first remove its application instances: \
            \(live.map { "<a href=\"/instances/\(HTML.path($0.id))\">\($0.name)</a>" as HTML }).</p>
            """
        return """
            <section class="panel needs-operator" id="device-actions" data-device="\(device.id)">
            <h2>Manage this device \(HTML.when(revoked, "<span class=\"badge bad\" id=\"device-revoked\">REVOKED</span>"))</h2>
            <form id="device-edit" class="inline">
            <label>Name <input name="name" value="\(device.name)" required autocomplete="off"></label>
            <label>Description <input name="description" value="\(device.description)" autocomplete="off"></label>
            <button type="submit">Save</button>
            <p class="form-error" role="alert" hidden></p>
            </form>
            <div class="actions">
            <button type="button" data-device-action="token">New provisioning token</button>
            <button type="button" class="danger" data-device-action="revoke" \
            data-confirm="Revoke \(device.name)? Its certificate and token stop working at its next request; it comes back only by enrolling with a new provisioning token.">Revoke</button>
            <button type="button" class="danger" data-device-action="delete"\(HTML.when(!live.isEmpty, " disabled")) \
            data-confirm="Delete \(device.name)? This cannot be undone.">Delete</button>
            <p class="form-error" role="alert" hidden></p>
            </div>
            \(deleteNote)
            <div id="device-token" class="notice" hidden>
            <p>A new provisioning token for <strong>\(device.name)</strong> (the old one no longer works), shown this \
            once, usable once, until <span class="device-expiry"></span>:</p>
            <pre class="secret device-token"></pre>
            <p>On the device, enroll again with:</p>
            <pre class="device-command" data-endpoint="\(deviceEndpoint ?? "")"></pre>
            </div>
            </section>
            """
    }

    // MARK: Cameras, models, packages

    /// Each camera, model or package id with the instances (not removed) that use it.
    func uses(_ kind: NamedResource) async throws -> [String: [InstanceUse]] {
        var uses: [String: [InstanceUse]] = [:]
        for instance in try await store.listInstances() where instance.desiredState != .removed {
            let use = InstanceUse(id: instance.id, name: instance.name, deviceId: instance.deviceId)
            switch kind {
            case .camera: for camera in Set(instance.cameras.values) { uses[camera, default: []].append(use) }
            case .model:
                for model in Set(instance.models.values.map(\.modelId)) { uses[model, default: []].append(use) }
            case .package: uses[instance.packageId, default: []].append(use)
            case .device: uses[instance.deviceId, default: []].append(use)
            case .instance: break
            }
        }
        return uses
    }

    /// A "used by" cell: links to the instances.
    static func usedByCell(_ uses: [InstanceUse]?) -> HTML {
        guard let uses, !uses.isEmpty else { return "<td class=\"used-by\"><span class=\"muted\">nothing</span></td>" }
        return
            "<td class=\"used-by\">\(uses.map { "<a href=\"/instances/\(HTML.path($0.id))\">\($0.name)</a>" as HTML })</td>"
    }

    /// The Delete button of a camera, model or package row; the script asks first, naming what uses it.
    static func deleteButton(_ kind: NamedResource, id: String, name: String, uses: [InstanceUse]?) -> HTML {
        let users = (uses ?? []).map(\.name).joined(separator: ", ")
        return """
            <button type="button" class="danger small needs-operator" data-delete="\(kind.table)" data-id="\(id)" \
            data-name="\(name)" data-used-by="\(users)">Delete</button>
            """
    }

    /// The cameras page's last two cells: what uses the camera, and its Edit and Delete buttons (Edit fills the
    /// edit form from the row's data).
    static func cameraActionCells(_ camera: Camera, _ uses: [InstanceUse]?) -> HTML {
        """
        \(usedByCell(uses))<td class="row-actions"><button type="button" class="small needs-operator" \
        data-edit-camera="\(camera.id)" data-name="\(camera.name)" data-url="\(camera.url)" \
        data-detect-url="\(camera.detectUrl ?? "")" data-description="\(camera.description)">Edit</button> \
        \(deleteButton(.camera, id: camera.id, name: camera.name, uses: uses))</td>
        """
    }

    /// The camera page's edit form (filled by a row's Edit button); the password is never shown, and left empty
    /// it stays as it is.
    static func cameraEditForm(devices: [Device]) -> HTML {
        """
        <p class="form-error" role="alert" hidden id="delete-error"></p>
        <section class="panel needs-operator" id="camera-edit-panel" hidden>
        <h2>Edit camera <span class="camera-edit-name"></span></h2>
        <form id="camera-edit" class="grid-form">
        <label>Name <input name="name" required autocomplete="off"></label>
        <label>Stream URL <input name="url" required autocomplete="off"></label>
        <label>Sub-stream (for detection) <input name="detectUrl" autocomplete="off" placeholder="none"></label>
        <label>User name <input name="username" autocomplete="off" placeholder="unchanged"></label>
        <label>Password <input name="password" type="password" autocomplete="new-password" placeholder="unchanged"></label>
        <label>Device <select name="deviceId"><option value="">(unchanged)</option>\(devices.map { "<option value=\"\($0.id)\">\($0.name)</option>" as HTML })</select></label>
        <label>Description <input name="description" autocomplete="off"></label>
        <p class="help">Empty user name or password: the stored ones stay (they are never shown). Empty sub-stream: the camera has none.</p>
        <button type="submit">Save camera</button>
        <p class="form-error" role="alert" hidden></p>
        </form>
        </section>
        """
    }

    // MARK: Access (admins)

    func access(actor: String? = nil) async throws -> ConsolePage {
        let tokens = try await store.listTokens()
        let users = try await usersSection(actor: actor)
        let tokenRows: [HTML] = tokens.map { token in
            """
            <tr id="token-\(token.id)"><td>\(token.name)</td><td>\(HTML.badge(token.role.rawValue.uppercased()))</td>\
            <td>\(HTML.time(token.createdAt))</td><td>\(HTML.time(token.lastUsedAt))</td>\
            <td><button type="button" class="danger small" data-revoke-token="\(token.id)" data-name="\(token.name)">Revoke</button></td></tr>
            """
        }
        return ConsolePage(
            title: "Access", section: .access,
            body: """
                <h1>Access</h1>
                <p><a href="/audit">Audit log</a>: who changed what.</p>
                <h2>API tokens</h2>
                <div class="table-scroll"><table class="list" id="tokens">
                <thead><tr><th>Name</th><th>Role</th><th>Created</th><th>Last used</th><th></th></tr></thead>
                <tbody>\(tokenRows.isEmpty ? Self.emptyRow(5, "No API tokens.") : "\(tokenRows)")</tbody>
                </table></div>
                <p class="form-error" role="alert" hidden id="token-error"></p>
                <section class="panel">
                <h2>Create an API token</h2>
                <form id="token-form" class="inline">
                <label>Name <input name="name" required autocomplete="off" placeholder="ci-deploy"></label>
                <label>Role <select name="role">\(Role.allCases.map { "<option value=\"\($0.rawValue)\"\($0 == .viewer ? " selected" : "")>\($0.rawValue)</option>" as HTML })</select></label>
                <button type="submit">Create token</button>
                <p class="form-error" role="alert" hidden></p>
                </form>
                <div id="token-created" class="notice" hidden>
                <p>Token <strong class="token-name"></strong> created. Its secret is shown this once: keep it now.</p>
                <pre class="secret token-secret"></pre>
                <p>Use it with <code>vantage login --server URL --token SECRET</code> or <code>Authorization: Bearer SECRET</code>.</p>
                </div>
                </section>
                \(users)
                """)
    }

    /// The audit log, newest first, a page at a time, filtered by actor and action.
    func audit(actor: String?, action: String?, cursor: String?) async throws -> ConsolePage {
        var problem: String?
        var page = Page<AuditEntry>(items: [], nextCursor: nil)
        do {
            page = try await store.auditLog(limit: 50, cursor: cursor, actor: actor, action: action)
        } catch let error as APIError {
            problem = error.message
        }
        let rows: [HTML] = page.items.map { entry in
            """
            <tr><td>\(HTML.time(entry.time))</td><td>\(entry.actor)</td><td><code>\(entry.action)</code></td>\
            <td><code class="wrap">\(entry.target)</code></td><td>\(entry.detail ?? "")</td></tr>
            """
        }
        let filters: [(String, String?)] = [("actor", actor), ("action", action)]
        var paging: [HTML] = []
        if cursor != nil { paging.append("<a href=\"/audit\(HTML.query(filters))\">Newest</a>") }
        if let next = page.nextCursor {
            paging.append(
                "<a href=\"/audit\(HTML.query(filters + [("cursor", next)]))\" id=\"older\" rel=\"next\">Older</a>")
        }
        return ConsolePage(
            title: "Audit log", section: .access,
            body: """
                <p class="crumbs"><a href="/access">Access</a> /</p>
                <h1>Audit log</h1>
                <form method="get" action="/audit" class="inline filters" id="audit-filters">
                <label>Actor <input name="actor" value="\(actor ?? "")" placeholder="user:alice" autocomplete="off"></label>
                <label>Action <input name="action" value="\(action ?? "")" placeholder="revokeDevice" autocomplete="off"></label>
                <button type="submit">Filter</button> <a href="/audit">Clear</a>
                </form>
                \(HTML.when(problem != nil, "<p class=\"form-error\" role=\"alert\">\(problem ?? "")</p>"))
                <div class="table-scroll"><table class="list" id="audit">
                <thead><tr><th>Time</th><th>Actor</th><th>Action</th><th>Target</th><th>Detail</th></tr></thead>
                <tbody>\(rows.isEmpty ? Self.emptyRow(5, "No audit lines.") : "\(rows)")</tbody>
                </table></div>
                <p class="paging">\(paging)</p>
                """,
            status: problem == nil ? 200 : 400)
    }
}
