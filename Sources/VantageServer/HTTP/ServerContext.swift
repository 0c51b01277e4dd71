import Crypto
import Foundation
public import Hummingbird
import Logging
import NIOCore
import NIOSSL
import VantageAPI
import VantageCore

/// The request context of every route: who is calling, once ``AuthenticationMiddleware`` has looked.
public struct ServerContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The caller, or nil for an anonymous request.
    public var caller: Caller?
    /// When the calling device's certificate ended, if it called with an expired one to renew it within the grace
    /// window (the only thing such a certificate may do).
    var certificateExpiredAt: Date?
    /// The connection, for the client certificate a device presented over the device endpoint's TLS.
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    /// JSON bodies are small; uploads stream to disk and have their own limit.
    public var maxUploadSize: Int { 1 << 20 }
}

/// Reads the caller from the client certificate a device presented (device endpoint, mutual TLS), an
/// `Authorization: Bearer vt_…` token or the console's session cookie. Anonymous requests pass through; each route
/// decides what it needs.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = ServerContext
    let store: Store
    static let sessionCookie = "vantage_session"

    func handle(
        _ request: Request, context: ServerContext, next: (Request, ServerContext) async throws -> Response
    ) async throws -> Response {
        // /metrics has its own bearer token (ServerConfiguration.metricsToken), which is not an API token.
        if request.uri.path == "/metrics" { return try await next(request, context) }
        var context = context
        if let certificate = try? await context.channel.nioSSL_peerCertificate().get() {
            // TLS verified it against the CA already; the database says whether it is still the device's.
            let der = try certificate.toDERBytes()
            if let device = try await store.caller(certificate: der) {
                context.caller = device
            } else if let expired = try await store.expiredCertificate(der) {
                // An expired certificate may renew itself within the grace window, and do nothing else.
                guard expired.renewable(), request.method == .post,
                    request.uri.path == "/api/v1/devices/\(expired.deviceID)/certificate"
                else { throw APIError(401, expired.refusal) }
                context.caller = expired.caller
                context.certificateExpiredAt = expired.endedAt
            } else {
                throw APIError(
                    401,
                    "this device certificate is revoked or was replaced: enroll the device again with a new token (vantage devices token DEVICE)"
                )
            }
        } else if let header = request.headers[.authorization] {
            // Another scheme (a proxy's Basic auth, say) is not ours: the request is anonymous, and routes that
            // need a caller answer 401. A Bearer token that is not valid is refused outright.
            let parts = header.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" {
                if parts[1].hasPrefix("vd_") {
                    throw APIError(
                        401,
                        "a provisioning token only enrolls a device (vantage agent --token); the device then uses its certificate"
                    )
                }
                guard let caller = try await store.caller(bearer: String(parts[1])) else {
                    throw APIError(401, "the token is not valid (revoked, mistyped, or from another server)")
                }
                context.caller = caller
            }
        }
        if context.caller == nil, let cookie = request.cookies[Self.sessionCookie] {
            context.caller = try await store.caller(session: cookie.value)
        }
        if let caller = context.caller {
            context.logger[metadataKey: "vantage.actor"] = "\(caller.actor)"
        }
        return try await next(request, context)
    }
}

/// Turns every error into a JSON `{"error": {"status", "message"}}` answer. Database and internal failures are
/// logged in full and answered with a message that holds no internals.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = ServerContext

    func handle(
        _ request: Request, context: ServerContext, next: (Request, ServerContext) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return Self.response(error.status, error.message)
        } catch let error as DatabaseError {
            switch error.code {
            case .diskFull:
                context.logger.error("database: \(error.message)")
                return Self.response(507, "the server's storage is full; nothing was changed. Tell its operator.")
            case .unavailable:
                context.logger.error("database: \(error.message)")
                return Self.response(503, "the database is unavailable; retry shortly")
            case .uniqueViolation:
                return Self.response(409, "that already exists (names and versions are unique): choose another")
            case .foreignKeyViolation:
                return Self.response(409, "that is still used by another resource: change or delete that one first")
            default:
                context.logger.error("database: \(error.message)")
                return Self.response(500, "internal error (logged on the server)")
            }
        } catch let error as HTTPError {
            let message: String
            switch error.status.code {
            case 404: message = "no such route: \(request.method) \(request.uri.path)"
            case 413: message = "the request body is too large"
            case 405: message = "\(request.method) is not allowed on \(request.uri.path)"
            default: message = error.body ?? error.status.reasonPhrase
            }
            return Self.response(error.status.code, message)
        } catch {
            context.logger.error("unhandled: \(String(reflecting: error))")
            return Self.response(500, "internal error (logged on the server)")
        }
    }

    static func response(_ status: Int, _ message: String) -> Response {
        let body = APIJSON.string(ErrorBody(error: .init(status: status, message: message)))
        return Response(
            status: .init(code: status),
            headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}
