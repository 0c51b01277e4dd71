import Crypto
import Foundation
import VantageAPI

/// Signed artifacts (docs/security.md, "Signed artifacts"): every package archive, model file and software release is
/// signed with the control plane's artifact key when it is uploaded; desired states carry the signatures and the key,
/// and the agent refuses what does not verify. A signature is made only here, at upload (or once for what was
/// uploaded before signing existed), never when a desired state is built: a digest changed in the database afterwards
/// points at an artifact the server never signed, and devices refuse it.
extension Store {
    /// The artifact key's public half, as desired states carry it (raw 32 bytes, base64).
    public var artifactPublicKey: String {
        secrets.artifactSigningKey.publicKey.rawRepresentation.base64EncodedString()
    }

    /// Signs `digest` as an artifact of `kind` (once: signing it again keeps the first signature).
    func signArtifact(_ digest: String, _ kind: ArtifactSignature.Kind) async throws {
        let signature = try secrets.artifactSigningKey.signature(
            for: ArtifactSignature.message(kind: kind, digest: digest)
        ).base64EncodedString()
        try await database.query(
            """
            INSERT INTO artifact_signatures (digest, kind, signature, created_at)
            VALUES (\(digest), \(kind.rawValue), \(signature), \(Millis.now())) ON CONFLICT DO NOTHING
            """)
    }

    /// The signature of `digest` as a `kind`, or nil when the server never signed it.
    func artifactSignature(_ digest: String, _ kind: ArtifactSignature.Kind) async throws -> String? {
        try await database.query(
            "SELECT signature FROM artifact_signatures WHERE digest = \(digest) AND kind = \(kind.rawValue)"
        ).first?.text("signature")
    }

    /// Signs the artifacts uploaded before signatures existed. Called once, by the server start that created the
    /// signatures table (so a digest written into the database later is never signed by a restart). Answers how many.
    public func signExistingArtifacts() async throws -> Int {
        var count = 0
        let sources: [(SQL, ArtifactSignature.Kind)] = [
            ("SELECT DISTINCT digest FROM package_versions", .package),
            ("SELECT DISTINCT digest FROM model_versions", .model),
            ("SELECT DISTINCT digest FROM releases", .release),
        ]
        for (query, kind) in sources {
            for row in try await database.query(query) {
                try await signArtifact(try row.text("digest"), kind)
                count += 1
            }
        }
        return count
    }
}
