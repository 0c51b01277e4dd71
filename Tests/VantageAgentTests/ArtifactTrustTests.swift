import Crypto
import Foundation
import Testing
import VantageAPI

@testable import VantageAgent

/// The agent's check of the control plane's artifact signatures (docs/security.md, "Signed artifacts").
struct ArtifactTrustTests {
    let folder = FileManager.default.temporaryDirectory.appending(path: "vantage-trust-\(UUID().uuidString)")
    var trust: ArtifactTrust { ArtifactTrust(file: folder.appending(path: "artifact-key")) }
    let key = Curve25519.Signing.PrivateKey()
    var publicKey: String { key.publicKey.rawRepresentation.base64EncodedString() }
    let digest = "sha256:" + String(repeating: "ab", count: 32)

    func sign(_ kind: ArtifactSignature.Kind, _ digest: String, with key: Curve25519.Signing.PrivateKey? = nil) throws
        -> String
    {
        try (key ?? self.key).signature(for: ArtifactSignature.message(kind: kind, digest: digest))
            .base64EncodedString()
    }

    @Test func aSignedArtifactPassesAndEveryAlterationFails() throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try trust.learn(publicKey)
        #expect(trust.pinned() == publicKey)
        try trust.verify(.package, digest: digest, signature: try sign(.package, digest), name: "the archive")
        let other = "sha256:" + String(repeating: "cd", count: 32)
        // Another digest, another kind, another key, no signature, garbage: each refused with the artifact named.
        let refusals: [(ArtifactSignature.Kind, String, String?)] = [
            (.package, other, try sign(.package, digest)),
            (.model, digest, try sign(.package, digest)),
            (.package, digest, try sign(.package, digest, with: Curve25519.Signing.PrivateKey())),
            (.package, digest, nil),
            (.package, digest, "not base64!"),
        ]
        for (kind, digest, signature) in refusals {
            #expect {
                try trust.verify(kind, digest: digest, signature: signature, name: "the archive of 2.0")
            } throws: { error in
                "\(error)".contains("the archive of 2.0 (\(digest))") && "\(error)".contains("refused")
            }
        }
    }

    @Test func theFirstKeyIsPinnedAndAnotherIsRefused() throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        // No key pinned (a server older than signatures): unsigned artifacts pass, as before.
        try trust.verify(.package, digest: digest, signature: nil, name: "the archive")
        try trust.learn(nil)
        #expect(trust.pinned() == nil)
        try trust.learn(publicKey)
        try trust.learn(publicKey)  // the same key again: fine
        let stranger = Curve25519.Signing.PrivateKey().publicKey.rawRepresentation.base64EncodedString()
        #expect {
            try trust.learn(stranger)
        } throws: { "\($0)".contains("another key than the one this device pinned") }
        #expect(trust.pinned() == publicKey)
        #expect(throws: (any Error).self) { try ArtifactTrust(file: folder.appending(path: "k2")).learn("AAAA") }
    }
}
