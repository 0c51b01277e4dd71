import Foundation
import Testing

@testable import VantageOutputs

/// One case of AWS's SigV4 test suite (.deps/aws4_testsuite, from botocore; installed by scripts/setup).
struct SigV4Vector: CustomTestStringConvertible, Sendable {
    var name: String
    var directory: URL
    var testDescription: String { name }

    static let suite = TestRepository.path(".deps/aws4_testsuite")

    /// Every case directory holding a `.req`, nested ones (normalize-path/…, post-sts-token/…) included.
    static func all() -> [SigV4Vector] {
        guard let walker = FileManager.default.enumerator(at: suite, includingPropertiesForKeys: nil) else { return [] }
        var vectors: [SigV4Vector] = []
        for case let file as URL in walker where file.pathExtension == "req" {
            let directory = file.deletingLastPathComponent()
            let name = String(directory.path.dropFirst(suite.path.count + 1))
            vectors.append(SigV4Vector(name: name, directory: directory))
        }
        return vectors.sorted { $0.name < $1.name }
    }

    func file(_ ext: String) throws -> String {
        let base = directory.lastPathComponent
        return try String(contentsOf: directory.appending(path: "\(base).\(ext)"), encoding: .utf8)
    }
}

/// An HTTP request as the suite's `.req` files write it: request line, headers (continuation lines start with
/// whitespace), blank line, body. The path may hold raw spaces and UTF-8, so the target is everything between the
/// method and the trailing ` HTTP/1.1`.
struct ParsedRequest {
    var method: String
    var path: String
    var query: String
    var headers: [(String, String)]
    var body: [UInt8]

    init(_ text: String) throws {
        let normalized = text.replacingOccurrences(of: "\r\n", with: "\n")
        let head: Substring
        if let blank = normalized.range(of: "\n\n") {
            head = normalized[..<blank.lowerBound]
            body = Array(normalized[blank.upperBound...].utf8)
        } else {
            head = normalized[...]
            body = []
        }
        var lines = head.split(separator: "\n", omittingEmptySubsequences: false)
        let requestLine = lines.removeFirst()
        guard let space = requestLine.firstIndex(of: " "),
            let version = requestLine.range(of: " HTTP/", options: .backwards)
        else { throw TestServerError("bad request line: \(requestLine)") }
        method = String(requestLine[..<space])
        let target = requestLine[requestLine.index(after: space)..<version.lowerBound]
        if let question = target.firstIndex(of: "?") {
            path = String(target[..<question])
            query = String(target[target.index(after: question)...])
        } else {
            path = String(target)
            query = ""
        }
        headers = []
        for line in lines {
            if line.first == " " || line.first == "\t", !headers.isEmpty {
                headers[headers.count - 1].1 += "\n" + line
            } else if let colon = line.firstIndex(of: ":") {
                headers.append((String(line[..<colon]), String(line[line.index(after: colon)...])))
            }
        }
    }
}

@Suite("SigV4 signing")
struct SigV4Tests {
    static let date = Date(timeIntervalSince1970: 1_440_938_160)  // 20150830T123600Z, the suite's time

    static func signer(sessionToken: String?) -> SigV4Signer {
        SigV4Signer(
            accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            sessionToken: sessionToken, region: "us-east-1", service: "service")
    }

    @Test("AWS's test suite is installed")
    func suiteInstalled() {
        // The vectors below are only as good as their presence: fail loudly if scripts/setup did not fetch them.
        #expect(
            SigV4Vector.all().count >= 30,
            "AWS's SigV4 test suite is missing from .deps/aws4_testsuite: run scripts/setup")
    }

    /// The canonical request, string to sign and Authorization header of every case in the suite match AWS's.
    ///
    /// Session tokens: `get-vanilla-with-session-token` signs a token its `.req` does not show (taken from its
    /// `.creq`); `post-sts-header-before` signs the token in its `.req`; `post-sts-header-after` adds the token after
    /// signing, which this signer never does (S3 needs the token signed), so that case is checked signing the
    /// request without a token, which is what its `.authz` is.
    @Test("matches AWS's published vector", arguments: SigV4Vector.all())
    func vector(_ vector: SigV4Vector) throws {
        let request = try ParsedRequest(try vector.file("req"))
        let expectedCanonical = try vector.file("creq")
        var token = request.headers.first { $0.0.lowercased() == "x-amz-security-token" }?.1
        if token == nil,
            let line = expectedCanonical.split(separator: "\n").first(where: {
                $0.hasPrefix("x-amz-security-token:")
            })
        {
            token = String(line.dropFirst("x-amz-security-token:".count))
        }
        let signer = Self.signer(sessionToken: token)
        let payloadHash = SigV4Signer.payloadHash(request.body)

        var signedHeaders = request.headers.filter {
            !["x-amz-date", "x-amz-security-token"].contains($0.0.lowercased())
        }
        signedHeaders.append(("X-Amz-Date", SigV4Signer.amzDate(Self.date)))
        if let token { signedHeaders.append(("X-Amz-Security-Token", token)) }
        let canonical = signer.canonicalRequest(
            method: request.method, path: request.path, query: request.query, headers: signedHeaders,
            payloadHash: payloadHash)
        #expect(canonical.request == expectedCanonical)

        let stringToSign = signer.stringToSign(canonicalRequest: canonical.request, date: Self.date)
        #expect(stringToSign == (try vector.file("sts")))

        let added = signer.sign(
            method: request.method, path: request.path, query: request.query, headers: request.headers,
            payloadHash: payloadHash, date: Self.date)
        #expect(added.first { $0.0 == "Authorization" }?.1 == (try vector.file("authz")))
        #expect(added.first { $0.0 == "X-Amz-Date" }?.1 == "20150830T123600Z")
        #expect(added.first { $0.0 == "X-Amz-Security-Token" }?.1 == token)
    }

    @Test("S3 paths are neither normalised nor encoded twice")
    func s3Path() {
        let s3 = SigV4Signer(accessKeyId: "A", secretAccessKey: "S", region: "us-east-1", service: "s3")
        #expect(s3.pathCanonicalization == .s3)
        // `a//b/./c` is a key of its own in S3; `%20` sent is `%20` signed (not `%2520`).
        #expect(s3.canonicalPath("/bucket/a//b/./c%20d/%E1%88%B4") == "/bucket/a//b/./c%20d/%E1%88%B4")
        // Characters left raw are encoded once, escapes upper-cased.
        #expect(s3.canonicalPath("/bucket/x$y%2fz") == "/bucket/x%24y%2Fz")
        let generic = Self.signer(sessionToken: nil)
        #expect(generic.canonicalPath("/a//b/./c%20d") == "/a/b/c%2520d")
    }

    @Test("the date is formatted in UTC, leap days and year ends included")
    func dates() {
        #expect(SigV4Signer.amzDate(Date(timeIntervalSince1970: 1_709_251_199)) == "20240229T235959Z")
        #expect(SigV4Signer.amzDate(Date(timeIntervalSince1970: 1_735_689_600)) == "20250101T000000Z")
        #expect(SigV4Signer.amzDate(Date(timeIntervalSince1970: 0)) == "19700101T000000Z")
    }

    @Test("the secret key never appears in the signer's description")
    func noSecretInDescription() {
        let signer = Self.signer(sessionToken: "token")
        #expect(!"\(signer)".contains("wJalrXUtnFEMI"))
        #expect(!String(reflecting: signer).contains("wJalrXUtnFEMI"))
    }
}
