import Crypto
import Foundation
import Hummingbird
import NIOCore
import VantageAPI
import VantageCore

/// One operation of the REST API: its route, who may call it, what it takes and answers, and its handler. The
/// table of these (``APIRoutes``) is the single source of both the router and the OpenAPI document, so the
/// document cannot drift from what the server does; the tests walk the document and call every route.
struct APIOperation: Sendable {
    enum Access: Sendable, Equatable {
        /// No credentials needed.
        case anyone
        /// An operator token or console session with at least this role.
        case role(Role)
        /// A device, by its client certificate (the device in the path).
        case device
    }

    enum Body: Sendable {
        /// A JSON object of this component schema; unknown fields are refused.
        case json(String, fields: [String])
        /// Raw bytes (a file upload), streamed to disk.
        case binary(String)
    }

    enum Content: Sendable {
        case json(OpenAPISchema)
        case binary(String)
        case none
    }

    struct Query: Sendable {
        let name: String
        let schema: OpenAPISchema
        let description: String
        var required = false
        /// The value is JSON text (the document says so with a `content` of `application/json`).
        var json = false
    }

    let method: HTTPRequest.Method
    /// OpenAPI form: `/api/v1/devices/{id}`.
    let path: String
    let id: String
    let tag: String
    let summary: String
    let access: Access
    var query: [Query] = []
    var body: Body? = nil
    let status: Int
    let content: Content
    /// Mutations are audited, except device telemetry (heartbeats, events), which would drown the log.
    var audited = true
    /// Answers 304 to a matching If-None-Match (the handler replies `.conditional`).
    var conditional = false
    /// Answers 206 to a Range request (the handler replies `.resumableFile`).
    var resumable = false
    let handle: @Sendable (APICall) async throws -> APIReply

    var isMutation: Bool { method != .get && method != .head }

    /// Hummingbird's form of the path: `/api/v1/devices/:id`.
    var routerPath: String {
        path.split(separator: "/", omittingEmptySubsequences: false).map { part in
            part.hasPrefix("{") ? ":" + part.dropFirst().dropLast() : String(part)
        }.joined(separator: "/")
    }
}

/// What a handler answers; the status comes from its operation.
enum APIReply: Sendable {
    case json(any Encodable & Sendable, created: String? = nil)
    /// JSON with an ETag (a digest of the body); a request whose If-None-Match holds it gets 304 and no body.
    case conditional(any Encodable & Sendable)
    case file(URL, contentType: String, filename: String? = nil)
    /// A file that may be fetched in parts (`Range: bytes=N-` or `bytes=N-M` → 206), so a download can resume.
    case resumableFile(URL, contentType: String)
    /// A small document that is not JSON (the CA certificate).
    case bytes([UInt8], contentType: String)
    /// A body written while it is sent (the live view's multipart stream).
    case stream(ResponseBody, contentType: String)
    case empty
}

/// One call of an operation, with helpers to read it.
struct APICall: Sendable {
    let request: Request
    let context: ServerContext
    let store: Store
    let configuration: ServerConfiguration
    let operation: APIOperation

    var caller: Caller? { context.caller }
    /// Names given where an id is taken, as ids (``APIOperation/resolveNames(_:_:store:)``).
    var resolved = ResolvedNames()

    /// A path parameter (`{id}`).
    func parameter(_ name: String) -> String { resolved.path[name] ?? context.parameters.get(name) ?? "" }

    func query(_ name: String) -> String? { resolved.query[name] ?? request.uri.queryParameters.get(name) }

    func queryInt(_ name: String, default value: Int) throws -> Int {
        guard let text = query(name) else { return value }
        guard let number = Int(text) else {
            throw APIError.invalid("\(name) must be a whole number, not \"\(text.prefix(40))\"")
        }
        return number
    }

    func queryTime(_ name: String) throws -> Date? {
        guard let text = query(name) else { return nil }
        guard let date = APIJSON.parseTime(text) else {
            throw APIError.invalid(
                "\(name) must be an ISO 8601 time like 2026-05-31T12:00:00Z, not \"\(text.prefix(40))\"")
        }
        return date
    }

    /// The JSON body as `T`, refusing malformed JSON, unknown fields and wrong types with a message naming the field.
    func decode<T: VantageAPI.RequestBody>(_ type: T.Type, limit: Int = 1 << 20) async throws -> T {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch {
            throw APIError(413, "the request body is larger than \(limit >> 10) KiB")
        }
        let data = Data(buffer.readableBytesView)
        guard !data.isEmpty else { throw APIError.invalid("the request needs a JSON object body") }
        // JSON can only carry a NUL as the escape \u0000; neither engine stores it the same way (SQLite cuts the
        // text, PostgreSQL refuses it), so no text may contain one.
        if data.range(of: Data("\\u0000".utf8)) != nil {
            throw APIError.invalid("text in the request contains a NUL character (\\u0000), which cannot be stored")
        }
        let object: [String: Any]
        let value: JSONValue
        do {
            guard let parsed = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw APIError.invalid("the request body must be a JSON object")
            }
            object = parsed
            value = try APIJSON.decoder().decode(JSONValue.self, from: data)
        } catch let error as APIError {
            throw error
        } catch {
            throw APIError.invalid("the request body is not valid JSON")
        }
        let unknown = Set(object.keys).subtracting(T.fields).sorted()
        guard unknown.isEmpty else {
            throw APIError.invalid(
                "unknown field\(unknown.count == 1 ? "" : "s") \(unknown.joined(separator: ", ")); this request takes \(T.fields.joined(separator: ", "))"
            )
        }
        for (key, fields) in T.elementFields {
            guard let elements = object[key] as? [Any] else { continue }
            for (index, element) in elements.enumerated() {
                guard let element = element as? [String: Any] else {
                    throw APIError.invalid("\(key)[\(index)] must be an object")
                }
                let unknown = Set(element.keys).subtracting(fields).sorted()
                guard unknown.isEmpty else {
                    throw APIError.invalid(
                        "\(key)[\(index)]: unknown field\(unknown.count == 1 ? "" : "s") \(unknown.joined(separator: ", ")); each takes \(fields.joined(separator: ", "))"
                    )
                }
            }
        }
        for (key, fields) in T.objectFields {
            guard let member = object[key] as? [String: Any] else { continue }
            let unknown = Set(member.keys).subtracting(fields).sorted()
            guard unknown.isEmpty else {
                throw APIError.invalid(
                    "\(key): unknown field\(unknown.count == 1 ? "" : "s") \(unknown.joined(separator: ", ")); it takes \(fields.joined(separator: ", "))"
                )
            }
        }
        let decoded: T
        do {
            decoded = try APIJSON.decoder().decode(T.self, from: data)
        } catch let error as DecodingError {
            throw APIError.invalid(Self.describe(error))
        }
        // Every limit the document states for this body (lengths, patterns, enums, counts) holds.
        if case .json(let name, _)? = operation.body, let problem = OpenAPISchema.ref(name).problem(with: value) {
            throw APIError.invalid(problem)
        }
        return decoded
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().drop(while: { $0 == "." })
                .description
        }
        switch error {
        case .keyNotFound(let key, let context):
            let field = path(context.codingPath + [key])
            return "field \(field) is required"
        case .typeMismatch(let type, let context):
            return "field \(path(context.codingPath)) must be \(typeName(type))"
        case .valueNotFound(let type, let context):
            return "field \(path(context.codingPath)) must be \(typeName(type)), not null"
        case .dataCorrupted(let context):
            return "field \(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "the request body does not have the expected fields"
        }
    }

    static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        case is Int.Type, is Int64.Type, is Double.Type: "a number"
        case is [Any].Type: "an array"
        default: "an object"
        }
    }

    /// Streams the body into a file in the artifact store's scratch folder, hashing as it goes; refuses more than
    /// the configured upload limit. The caller moves the file into the store (or it is deleted with the folder's
    /// next clean-up).
    func receiveUpload(limit smaller: Int64? = nil, what: String = "the server's limit") async throws -> Upload {
        let limit = min(configuration.maxUploadBytes, smaller ?? .max)
        let file = store.artifacts.scratchFolder.appending(path: "upload-\(UUID().uuidString)")
        guard FileManager.default.createFile(atPath: file.path, contents: nil) else {
            throw APIError(507, "cannot write the upload to \(store.artifacts.scratchFolder.path): is the disk full?")
        }
        var hasher = SHA256()
        var size: Int64 = 0
        do {
            let handle = try FileHandle(forWritingTo: file)
            defer { try? handle.close() }
            for try await buffer in request.body {
                size += Int64(buffer.readableBytes)
                guard size <= limit else {
                    throw APIError(
                        413,
                        "the upload is larger than \(what) of \(limit >> 20) MiB"
                            + (smaller == nil ? " (--max-upload-mb)" : ""))
                }
                buffer.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
                do {
                    try handle.write(contentsOf: buffer.readableBytesView)
                } catch {
                    throw APIError(507, "cannot write the upload: \(error.localizedDescription) (is the disk full?)")
                }
            }
        } catch {
            try? FileManager.default.removeItem(at: file)
            throw error
        }
        guard size > 0 else {
            try? FileManager.default.removeItem(at: file)
            throw APIError.invalid("the upload is empty: send the file as the request body")
        }
        let digest = "sha256:" + hasher.finalize().hexString
        return Upload(file: file, digest: digest, size: size)
    }

    /// The device in the path must be the calling device.
    func requireDevice(_ id: String) throws {
        guard case .device(let caller)? = caller?.kind, caller == id else {
            throw APIError(403, "a device may only act for itself (this certificate is not device \(id)'s)")
        }
    }
}

extension APIOperation {
    /// Registers every operation on the router behind access, CSRF and audit checks.
    static func register(
        _ operations: [APIOperation], on router: Router<ServerContext>, store: Store, configuration: ServerConfiguration
    ) {
        for operation in operations {
            router.on(RouterPath(operation.routerPath), method: operation.method) { request, context in
                try await operation.run(request, context, store: store, configuration: configuration)
            }
        }
    }

    func run(_ request: Request, _ context: ServerContext, store: Store, configuration: ServerConfiguration)
        async throws
        -> Response
    {
        try authorize(context.caller, request: request)
        let known = Set(query.map(\.name))
        if let unknown = request.uri.queryParameters.map({ String($0.key) }).first(where: { !known.contains($0) }) {
            throw APIError.invalid(
                "unknown query parameter \(unknown)"
                    + (known.isEmpty
                        ? "; this request takes none"
                        : "; this request takes \(known.sorted().joined(separator: ", "))"))
        }
        for parameter in query where parameter.required && request.uri.queryParameters.get(parameter.name) == nil {
            throw APIError.invalid("query parameter \(parameter.name) is required: \(parameter.description)")
        }
        // The limits the document states for each query parameter (a value that is not a number is left to the
        // handler, which says so).
        for parameter in query where !parameter.json {
            guard let text = request.uri.queryParameters.get(parameter.name) else { continue }
            let value: JSONValue
            switch parameter.schema {
            case .integer:
                guard let number = Int(text) else { continue }
                value = .number(Double(number))
            default:
                value = .string(text)
            }
            if let problem = parameter.schema.problem(with: value, at: parameter.name) {
                throw APIError.invalid(problem)
            }
        }
        var call = APICall(
            request: request, context: context, store: store, configuration: configuration, operation: self)
        call.resolved = try await resolveNames(request, context, store: store)
        let reply = try await handle(call)
        // An operator's change may change some device's desired state: waiting devices look again. Devices' own
        // calls (heartbeats, events, reports: a thousand a second in a big fleet) never wake the others.
        if isMutation, case .role = access { store.changes.signal() }
        if isMutation, audited, let caller = context.caller {
            var detail: String?
            if case .json(_, let created?) = reply { detail = created }
            try await store.audit(actor: caller.actor, action: id, target: request.uri.path, detail: detail)
        }
        return try await response(reply, request: request, context: context)
    }

    /// The ETag of a `.conditional` answer's body.
    static func etag(_ body: Data) -> String { "\"" + SHA256.hash(data: body).prefix(16).hexString + "\"" }

    /// `bytes=N-` or `bytes=N-M` within a file of `size` bytes (one range; suffix ranges are not needed to resume).
    static func byteRange(_ header: String, size: Int) -> ClosedRange<Int>? {
        guard header.hasPrefix("bytes="), !header.contains(",") else { return nil }
        let parts = header.dropFirst(6).split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, let start = Int(parts[0]), start >= 0, start < size else { return nil }
        let end = parts[1].isEmpty ? size - 1 : Int(parts[1]) ?? -1
        guard end >= start else { return nil }
        return start...min(end, size - 1)
    }

    func authorize(_ caller: Caller?, request: Request) throws {
        switch access {
        case .anyone:
            return
        case .role(let needed):
            guard let caller else {
                throw APIError(
                    401, "sign in: send Authorization: Bearer <token> (vantage login, or a token from an admin)")
            }
            guard let role = caller.role else { throw APIError(403, "devices cannot call \(id)") }
            guard role >= needed else {
                throw APIError(403, "\(id) needs the \(needed.rawValue) role; \(caller.actor) is \(role.rawValue)")
            }
            if isMutation, case .session(_, let csrf) = caller.kind {
                let sent = request.headers.first { $0.name.canonicalName == "x-csrf-token" }?.value ?? ""
                guard !sent.isEmpty, Array(sent.utf8) == Array(csrf.utf8) else {
                    throw APIError(403, "missing or wrong X-CSRF-Token header (reload the console page)")
                }
            }
        case .device:
            guard let caller else {
                throw APIError(
                    401,
                    "devices call this with their certificate, over the device endpoint (mutual TLS): run vantage agent, which enrolls and does that"
                )
            }
            guard case .device = caller.kind else {
                throw APIError(403, "\(id) is for devices, which call it with their certificate")
            }
        }
    }

    func response(_ reply: APIReply, request: Request, context: ServerContext) async throws -> Response {
        switch reply {
        case .conditional(let value):
            let data = try APIJSON.encoder().encode(value)
            let etag = Self.etag(data)
            let sent = request.headers[.ifNoneMatch]?.split(separator: ",").map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            if sent?.contains(etag) == true {
                return Response(status: .notModified, headers: [.eTag: etag, .cacheControl: "no-cache"])
            }
            return Response(
                status: .init(code: status),
                headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-cache", .eTag: etag],
                body: .init(byteBuffer: ByteBuffer(bytes: data)))
        case .json(let value, _):
            let data = try APIJSON.encoder().encode(value)
            return Response(
                status: .init(code: status),
                headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(bytes: data)))
        case .file(let url, let contentType, let filename):
            let body = try await FileIO().loadFile(path: url.path, context: context)
            // Snapshots are "the latest" and change under one URL: browsers must revalidate.
            var headers: HTTPFields = [.contentType: contentType, .cacheControl: "private, no-cache"]
            if let filename { headers[.contentDisposition] = "attachment; filename=\"\(filename)\"" }
            return Response(status: .init(code: status), headers: headers, body: body)
        case .resumableFile(let url, let contentType):
            let size = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
            var headers: HTTPFields = [.contentType: contentType, .acceptRanges: "bytes", .cacheControl: "private"]
            guard let header = request.headers[.range] else {
                return Response(
                    status: .init(code: status), headers: headers,
                    body: try await FileIO().loadFile(path: url.path, context: context))
            }
            guard let range = Self.byteRange(header, size: size) else {
                headers[.contentRange] = "bytes */\(size)"
                return Response(status: .rangeNotSatisfiable, headers: headers)
            }
            headers[.contentRange] = "bytes \(range.lowerBound)-\(range.upperBound)/\(size)"
            return Response(
                status: .partialContent, headers: headers,
                body: try await FileIO().loadFile(path: url.path, range: range, context: context))
        case .bytes(let bytes, let contentType):
            return Response(
                status: .init(code: status), headers: [.contentType: contentType],
                body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        case .stream(let body, let contentType):
            return Response(
                status: .init(code: status), headers: [.contentType: contentType, .cacheControl: "no-store"],
                body: body)
        case .empty:
            return Response(status: .init(code: status))
        }
    }
}

/// Answers a request whose path is an operation's but whose method none of that path's operations take with 405 and
/// an `Allow` header naming the methods it does take (the router alone would answer 404, as for an unknown path).
struct MethodNotAllowedMiddleware: RouterMiddleware {
    typealias Context = ServerContext

    /// Each operation path as segments (nil for a `{parameter}`), with its methods.
    let paths: [(segments: [Substring?], methods: [HTTPRequest.Method])]

    init(_ operations: [APIOperation]) {
        var paths: [(segments: [Substring?], methods: [HTTPRequest.Method])] = []
        for operation in operations {
            let segments = operation.path.split(separator: "/").map { $0.hasPrefix("{") ? nil : $0 }
            if let index = paths.firstIndex(where: { $0.segments == segments }) {
                paths[index].methods.append(operation.method)
            } else {
                paths.append((segments, [operation.method]))
            }
        }
        self.paths = paths
    }

    /// The methods `path` takes, or nil when it is no operation's path.
    func methods(for path: String) -> [HTTPRequest.Method]? {
        let parts = path.split(separator: "/")
        let matching = paths.filter { candidate in
            candidate.segments.count == parts.count
                && zip(candidate.segments, parts).allSatisfy { segment, part in segment == nil || segment == part }
        }
        guard !matching.isEmpty else { return nil }
        // A literal segment beats a parameter (`/devices/{id}` does not take the methods of `/devices/ca`).
        let best = matching.max { a, b in
            a.segments.filter { $0 != nil }.count < b.segments.filter { $0 != nil }.count
        }!
        return best.methods
    }

    func handle(
        _ request: Request, context: ServerContext, next: (Request, ServerContext) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            guard let methods = methods(for: request.uri.path), !methods.contains(request.method) else { throw error }
            let allow = methods.map(\.rawValue).joined(separator: ", ")
            var response = ErrorMiddleware.response(
                405, "\(request.method) is not allowed on \(request.uri.path.prefix(200)); it takes \(allow)")
            response.headers[.allow] = allow
            return response
        }
    }
}
