// The web console: server-rendered pages over the same Store as the REST API, with one small script
// (console.js) whose forms call the API. Pages read; every change goes through /api/v1, so the API's validation,
// roles, CSRF check and audit log apply to the console too. Files: Console.swift (routes, login and logout),
// ConsolePages.swift (one function per page), HTML.swift (escaping, layout, charts), ConsoleAssets.swift (CSS, JS).
import Foundation
import Hummingbird
import NIOCore
import VantageAPI

/// The console's routes: `/login`, `/logout`, the pages, and their assets.
struct Console: Sendable {
    let store: Store
    let configuration: ServerConfiguration

    func add(to router: Router<ServerContext>) {
        router.get("/console.js") { _, _ in Self.asset(ConsoleAssets.script, "text/javascript; charset=utf-8") }
        router.get("/console.css") { _, _ in Self.asset(ConsoleAssets.style, "text/css; charset=utf-8") }
        router.get("/favicon.svg") { _, _ in Self.asset(ConsoleAssets.icon, "image/svg+xml") }
        router.get("/favicon.ico") { _, _ in Response(status: .noContent) }
        router.get("/login") { request, context in
            if Viewer(context.caller) != nil { return Response.redirect(to: "/", type: .normal) }
            return Self.html(Self.loginPage(next: Self.safeNext(request.uri.queryParameters.get("next"))))
        }
        router.post("/login") { request, context in try await login(request, context) }
        router.post("/logout") { request, context in try await logout(request, context) }

        let pages = ConsolePages(store: store, deviceEndpoint: configuration.deviceEndpoint)
        page("/", on: router) { request, _ in
            try await pages.overview(showRemoved: request.uri.queryParameters.get("removed") == "1")
        }
        page("/devices", on: router) { _, _ in try await pages.devices() }
        page("/devices/:id", on: router) { request, context in
            try await pages.device(
                context.parameters.get("id") ?? "", showRemoved: request.uri.queryParameters.get("removed") == "1")
        }
        page("/cameras", on: router) { _, _ in try await pages.cameras() }
        page("/models", on: router) { _, _ in try await pages.models() }
        page("/packages", on: router) { _, _ in try await pages.packages() }
        page("/packages/:id", on: router) { _, context in
            try await pages.package(context.parameters.get("id") ?? "")
        }
        page("/instances", on: router) { request, _ in
            try await pages.instances(showRemoved: request.uri.queryParameters.get("removed") == "1")
        }
        page("/instances/:id", on: router) { _, context in
            try await pages.instance(context.parameters.get("id") ?? "")
        }
        // Each feature's own pages (Console+<Feature>.swift).
        addLiveRoutes(to: router, pages: pages)
        addDeployRoutes(to: router, pages: pages)
        addEventsRoutes(to: router, pages: pages)
        addHealthRoutes(to: router, pages: pages)
        addFleetRoutes(to: router, pages: pages)
    }

    /// A page that needs a signed-in viewer; anyone else is sent to the login form, which comes back here.
    func page(
        _ path: String, on router: Router<ServerContext>,
        _ render: @escaping @Sendable (Request, ServerContext) async throws -> ConsolePage
    ) {
        router.get(RouterPath(path)) { request, context in
            guard let viewer = Viewer(context.caller) else {
                var target = request.uri.path
                if let query = request.uri.query, !query.isEmpty { target += "?" + query }
                return Response.redirect(
                    to: "/login" + (target == "/" ? "" : HTML.query([("next", target)])), type: .normal)
            }
            let page: ConsolePage
            do {
                page = try await render(request, context)
            } catch let error as APIError {
                page = Self.errorPage(error.status, error.message)
            }
            return Self.html(ConsoleLayout.document(page, viewer: viewer), status: page.status)
        }
    }

    // MARK: Login and logout

    private func login(_ request: Request, _ context: ServerContext) async throws -> Response {
        let fields = try await Self.formFields(request)
        let name = fields["user"] ?? ""
        let next = Self.safeNext(fields["next"])
        let outcome = try await store.signIn(
            name: name, password: fields["password"] ?? "", lifetime: configuration.sessionLifetime,
            client: context.channel.remoteAddress?.ipAddress)
        // The name is shown back in the form (escaped, and bounded like the names the server accepts).
        let shownName = String(name.prefix(128))
        switch outcome {
        case .signedIn(let secret, let caller):
            try await store.audit(actor: caller.actor, action: "login", target: "console")
            var response = Response.redirect(to: next ?? "/", type: .normal)
            response.setCookie(
                Cookie(
                    name: AuthenticationMiddleware.sessionCookie, value: secret,
                    maxAge: Int(configuration.sessionLifetime.components.seconds), path: "/",
                    secure: configuration.secureCookies, httpOnly: true, sameSite: .strict))
            return response
        case .refused:
            // Not the name: people type their password into the wrong field.
            context.logger.info("console login refused")
            return Self.html(
                Self.loginPage(user: shownName, next: next, error: "wrong user name or password"), status: 401)
        case .throttled(let seconds):
            context.logger.notice("console login throttled", metadata: ["login.retry_after_s": "\(seconds)"])
            var response = Self.html(
                Self.loginPage(
                    user: shownName, next: next,
                    error:
                        "too many failed sign-ins for this user or from this address: wait \(seconds) s, then try again"
                ),
                status: 429)
            response.headers[.retryAfter] = "\(seconds)"
            return response
        case .busy:
            var response = Self.html(
                Self.loginPage(
                    user: shownName, next: next,
                    error: "the server is checking many sign-ins at once: try again shortly"),
                status: 503)
            response.headers[.retryAfter] = "2"
            return response
        }
    }

    private func logout(_ request: Request, _ context: ServerContext) async throws -> Response {
        guard let caller = context.caller, case .session(let id, let csrfToken) = caller.kind else {
            // No session (expired, or never signed in): nothing to end.
            return Response.redirect(to: "/login", type: .normal)
        }
        let sent = try await Self.formFields(request)["_csrf"] ?? ""
        guard !sent.isEmpty, Array(sent.utf8) == Array(csrfToken.utf8) else {
            let page = Self.errorPage(
                403, "the form's security token is missing or stale: reload the page and try again")
            return Self.html(ConsoleLayout.document(page, viewer: Viewer(caller)), status: 403)
        }
        try await store.logout(session: id)
        try await store.audit(actor: caller.actor, action: "logout", target: "console")
        var response = Response.redirect(to: "/login", type: .normal)
        response.setCookie(
            Cookie(
                name: AuthenticationMiddleware.sessionCookie, value: "", maxAge: 0, path: "/",
                secure: configuration.secureCookies, httpOnly: true, sameSite: .strict))
        return response
    }

    static func loginPage(user: String = "", next: String?, error: String? = nil) -> String {
        let body: HTML = """
            <section class="login panel">
            <h1>Sign in to Vantage</h1>
            \(HTML.when(error != nil, "<p class=\"form-error\" role=\"alert\">\(error ?? "")</p>"))
            <form method="post" action="/login" class="stack">
            <label>User name <input name="user" id="user" value="\(user)" autocomplete="username" required autofocus></label>
            <label>Password <input name="password" id="password" type="password" autocomplete="current-password" required></label>
            \(HTML.when(next != nil, "<input type=\"hidden\" name=\"next\" value=\"\(next ?? "")\">"))
            <button type="submit">Sign in</button>
            </form>
            <p class="muted">An admin creates users on the Access page, or with <code>vantage server init-admin --user NAME</code>.</p>
            </section>
            """
        return ConsoleLayout.document(ConsolePage(title: "Sign in", body: body), viewer: nil)
    }

    /// `next` when it is a path on this server (never another site: `//host` or `/\host` are refused).
    static func safeNext(_ next: String?) -> String? {
        guard let next, next.hasPrefix("/"), !next.hasPrefix("//"), !next.hasPrefix("/\\"), next.count <= 2048,
            next.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f })
        else { return nil }
        return next
    }

    // MARK: Responses

    static func errorPage(_ status: Int, _ message: String) -> ConsolePage {
        let heading =
            switch status {
            case 404: "Not found"
            case 403: "Not allowed"
            case 400, 422: "Cannot show this"
            default: "Something went wrong"
            }
        return ConsolePage(
            title: heading,
            body: """
                <h1>\(heading)</h1>
                <p class="form-error" role="alert">\(message)</p>
                <p><a href="/">Back to the overview</a></p>
                """,
            status: status)
    }

    static let securityHeaders: HTTPFields = [
        .contentSecurityPolicy:
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
            + "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        .xContentTypeOptions: "nosniff",
    ]

    static func html(_ text: String, status: Int = 200) -> Response {
        var headers = securityHeaders
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.cacheControl] = "no-store"
        return Response(
            status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func asset(_ text: String, _ contentType: String) -> Response {
        var headers = securityHeaders
        headers[.contentType] = contentType
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// The fields of an `application/x-www-form-urlencoded` body (a browser form's POST).
    static func formFields(_ request: Request) async throws -> [String: String] {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: 64 << 10)
        } catch {
            throw APIError(413, "the form is larger than 64 KiB")
        }
        var fields: [String: String] = [:]
        for pair in String(buffer: buffer).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String {
                text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            }
            let name = decode(parts[0])
            if fields[name] == nil { fields[name] = parts.count > 1 ? decode(parts[1]) : "" }
        }
        return fields
    }
}
