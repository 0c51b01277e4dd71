/// AWS credentials an application instance runs with: what Panorama's application role gave each application. They
/// reach the application's code nodes as the standard `AWS_*` environment, so boto3 and the AWS SDKs find them
/// without a change to the code.
///
/// Secret: `description`, `debugDescription` and reflection (`dump`, string interpolation of a value holding one)
/// show only the masked access key id and the region, never the secret access key or the session token.
public struct AWSCredentials: Codable, Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    /// The members a request may give.
    public static let fields = ["accessKeyId", "secretAccessKey", "sessionToken", "region"]

    public var accessKeyId: String
    public var secretAccessKey: String
    /// Present for temporary credentials (an assumed role's, `aws sts get-session-token`'s).
    public var sessionToken: String?
    /// The region the SDKs use when the code names none (`AWS_REGION`, `AWS_DEFAULT_REGION`).
    public var region: String?

    public init(accessKeyId: String, secretAccessKey: String, sessionToken: String? = nil, region: String? = nil) {
        self.accessKeyId = accessKeyId
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.region = region
    }

    /// The variables the application gets: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, and `AWS_SESSION_TOKEN`,
    /// `AWS_REGION` and `AWS_DEFAULT_REGION` when known.
    public var environment: [String: String] {
        var variables = ["AWS_ACCESS_KEY_ID": accessKeyId, "AWS_SECRET_ACCESS_KEY": secretAccessKey]
        if let sessionToken, !sessionToken.isEmpty { variables["AWS_SESSION_TOKEN"] = sessionToken }
        if let region, !region.isEmpty {
            variables["AWS_REGION"] = region
            variables["AWS_DEFAULT_REGION"] = region
        }
        return variables
    }

    /// What may be shown of them: the masked access key id, the region, whether there is a session token.
    public var summary: AWSCredentialsSummary {
        AWSCredentialsSummary(
            accessKeyId: Self.mask(accessKeyId), region: region,
            hasSessionToken: !(sessionToken ?? "").isEmpty)
    }

    /// `AKIA…MPLE`: the first and last four characters of an access key id (it names the key, the secret is what
    /// signs), or `…` alone for one too short to keep anything of.
    public static func mask(_ accessKeyId: String) -> String {
        accessKeyId.count >= 12 ? "\(accessKeyId.prefix(4))…\(accessKeyId.suffix(4))" : "…"
    }

    public var description: String {
        "AWS credentials \(Self.mask(accessKeyId))" + (region.map { " (\($0))" } ?? "")
    }

    public var debugDescription: String { description }

    public var customMirror: Mirror {
        Mirror(self, children: ["accessKeyId": Self.mask(accessKeyId), "region": region as Any])
    }
}

/// An instance's AWS credentials as the API shows them: nothing that signs a request.
public struct AWSCredentialsSummary: Codable, Sendable, Equatable {
    /// The access key id, masked (`AKIA…MPLE`).
    public var accessKeyId: String
    public var region: String?
    public var hasSessionToken: Bool

    public init(accessKeyId: String, region: String?, hasSessionToken: Bool) {
        self.accessKeyId = accessKeyId
        self.region = region
        self.hasSessionToken = hasSessionToken
    }
}

/// `awsCredentials` in an instance update: new credentials, or `{}` to remove the instance's (as `"outputs": {}`
/// removes its outputs document).
public enum AWSCredentialsChange: Codable, Sendable, Equatable {
    case set(AWSCredentials)
    case remove

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: any Decoder) throws {
        if try decoder.container(keyedBy: AnyKey.self).allKeys.isEmpty {
            self = .remove
        } else {
            self = .set(try AWSCredentials(from: decoder))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .set(let credentials): try credentials.encode(to: encoder)
        case .remove: _ = encoder.container(keyedBy: AnyKey.self)
        }
    }
}
