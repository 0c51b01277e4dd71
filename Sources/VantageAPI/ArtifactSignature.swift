/// What the control plane signs for each artifact a device downloads (a package version's archive, a model file, a
/// software release), and the agent checks before it unpacks or uses it (docs/security.md, "Signed artifacts").
///
/// The signature is Ed25519 over ``message(kind:digest:)`` by the control plane's artifact key — its own key, not
/// the TLS CA's — made when the artifact is uploaded and kept in the database beside it. The agent pins the public
/// key (`DeviceDesiredState.artifactKey`) the first time it sees it and refuses, from then on, an artifact without a
/// signature that verifies; the digest check then proves the bytes are the ones signed.
public enum ArtifactSignature {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case package
        case model
        case release
    }

    /// The bytes signed: a fixed context, the kind and the digest, so that a signature of one kind of artifact never
    /// passes for another.
    public static func message(kind: Kind, digest: String) -> [UInt8] {
        Array("vantage-artifact-v1\n\(kind.rawValue)\n\(digest)".utf8)
    }
}
