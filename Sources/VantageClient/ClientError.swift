import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Why a call to `vantage server` failed, with a message that says what to do next.
///
/// The message is the server's own where it gave one (`no device dev_x`); it never carries the token.
public struct ClientError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What kind of failure: extensible, compared by identity.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// No connection: nothing listens at the URL, the host is unknown, or the connection timed out.
        public static let unreachable = Code("unreachable")
        /// 401: no token, or one the server does not know.
        public static let unauthorized = Code("unauthorized")
        /// 403: the token's role does not allow the operation.
        public static let forbidden = Code("forbidden")
        /// 404: no such resource.
        public static let notFound = Code("notFound")
        /// Any other 4xx: the request was wrong (a bad name, a conflict, an invalid manifest…).
        public static let rejected = Code("rejected")
        /// 5xx: the server failed.
        public static let serverFailure = Code("serverFailure")
        /// The answer was not the API's JSON (the URL is probably not a Vantage server).
        public static let invalidResponse = Code("invalidResponse")
        /// Something on this side: no server configured, an unreadable file, an archive that cannot be made.
        public static let local = Code("local")
    }

    public let code: Code
    /// The HTTP status, when the server answered.
    public let status: Int?
    /// The server's message, or what went wrong on this side.
    public let message: String
    /// The server the call went to, when there was one.
    public let server: String?

    public init(_ code: Code, status: Int? = nil, message: String, server: String? = nil) {
        self.code = code
        self.status = status
        self.message = message
        self.server = server
    }

    public var description: String {
        switch code {
        case .unreachable:
            return
                "cannot reach the Vantage server at \(server ?? "?"): is `vantage server` running there? (\(message))"
        case .unauthorized:
            return "\(message) (401 unauthorized): run vantage login again or pass --token"
        case .forbidden:
            return "\(message) (403 forbidden)"
        case .notFound:
            return message
        case .invalidResponse:
            return "the answer from \(server ?? "the server") is not Vantage's API (\(message)): is --server the "
                + "address `vantage server` printed?"
        case .local:
            return message
        default:
            return status.map { "\(message) (\($0))" } ?? message
        }
    }

    /// A local problem: no server given, a file that cannot be read.
    static func local(_ message: String) -> ClientError { ClientError(.local, message: message) }

    /// The error for an HTTP answer that is not 2xx, from the API's `{"error":{"status":…,"message":…}}` body.
    static func answer(status: Int, body: Data, server: String) -> ClientError {
        let decoded = try? JSONDecoder().decode(ErrorAnswer.self, from: body)
        let message: String
        if let text = decoded?.error.message, !text.isEmpty {
            message = text
        } else {
            let text = String(decoding: body.prefix(200), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            let reason = HTTPURLResponse.localizedString(forStatusCode: status)
            message = text.isEmpty ? reason : "\(reason): \(text)"
            // A 404 without the API's error body: the URL is not a Vantage server (or not its root).
            if decoded == nil, status == 404 {
                return ClientError(.invalidResponse, status: status, message: "404 \(message)", server: server)
            }
        }
        let code: Code =
            switch status {
            case 401: .unauthorized
            case 403: .forbidden
            case 404: .notFound
            case 400..<500: .rejected
            default: .serverFailure
            }
        return ClientError(code, status: status, message: message, server: server)
    }

    /// The error for a request that got no answer.
    static func transport(_ error: any Error, server: String) -> ClientError {
        guard let error = error as? URLError else {
            return ClientError(.unreachable, message: "\(error.localizedDescription)", server: server)
        }
        let reason =
            switch error.code {
            case .cannotConnectToHost: "connection refused"
            case .cannotFindHost, .dnsLookupFailed: "host not found"
            case .timedOut: "timed out"
            case .networkConnectionLost: "the connection was lost"
            case .notConnectedToInternet: "no network"
            case .secureConnectionFailed, .serverCertificateUntrusted, .serverCertificateHasBadDate,
                .serverCertificateNotYetValid, .serverCertificateHasUnknownRoot:
                "TLS failed: \(error.localizedDescription)"
            case .unsupportedURL: "unsupported URL: use http://HOST:PORT or https://HOST"
            default: error.localizedDescription
            }
        return ClientError(.unreachable, message: reason, server: server)
    }

    private struct ErrorAnswer: Decodable, Equatable {
        struct Detail: Decodable, Equatable { let message: String }
        let error: Detail
    }
}
