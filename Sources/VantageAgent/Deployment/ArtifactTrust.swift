import Crypto
import Foundation
import VantageAPI

/// The control plane's artifact key as this device pinned it, and the check of every package archive, model file and
/// software release against it before it is unpacked or used (docs/security.md, "Signed artifacts").
///
/// The key is pinned the first time a desired state names it (over the enrolled mutual-TLS link, so from the server
/// the device enrolled with) into `DATA/deployments/artifact-key`. From then on an artifact needs a signature that
/// verifies; a desired state naming another key is refused whole. A device that never saw a key (a server older than
/// signed artifacts) takes unsigned artifacts, as before.
struct ArtifactTrust: Sendable {
    let file: URL

    /// The pinned key (raw Ed25519 public key, base64), or nil.
    func pinned() -> String? {
        FileManager.default.contents(atPath: file.path).map {
            String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Pins `key` when no key is pinned yet. Throws when another key is pinned: the server's artifact key changed
    /// (its secret key was replaced), or this is not the control plane the device trusted.
    func learn(_ key: String?) throws {
        guard let key else { return }
        if let pinned = pinned() {
            guard pinned == key else {
                throw DeploymentFailure(
                    "the server signs artifacts with another key than the one this device pinned (\(file.path)): "
                        + "nothing it sends is installed. If the server's secret key was replaced on purpose, delete "
                        + "that file on the device to trust the new key")
            }
            return
        }
        guard let raw = Data(base64Encoded: key), (try? Curve25519.Signing.PublicKey(rawRepresentation: raw)) != nil
        else {
            throw DeploymentFailure("the server's artifact key \"\(key.prefix(60))\" is not an Ed25519 public key")
        }
        try AtomicFile.write(Data((key + "\n").utf8), to: file)
    }

    /// Checks `signature` of the artifact `digest` (whose bytes already matched it) as a `kind`: passes without a
    /// pinned key, throws a `DeploymentFailure` naming the artifact otherwise.
    func verify(_ kind: ArtifactSignature.Kind, digest: String, signature: String?, name: String) throws {
        guard let pinned = pinned() else { return }
        guard let signature, !signature.isEmpty else {
            throw DeploymentFailure(
                "\(name) (\(digest)) comes without the control plane's signature: refused, and not tried again until it changes; if it is genuine, upload it again through the server (vantage packages push, vantage models upload, vantage releases upload), which signs it (docs/security.md, \"Signed artifacts\")"
            )
        }
        guard let raw = Data(base64Encoded: pinned),
            let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw),
            let bytes = Data(base64Encoded: signature),
            key.isValidSignature(bytes, for: ArtifactSignature.message(kind: kind, digest: digest))
        else {
            throw DeploymentFailure(
                "\(name) (\(digest)) does not carry a valid signature by the control plane's artifact key: refused, and not tried again until it changes; if it is genuine, upload it again through the server (vantage packages push, vantage models upload, vantage releases upload), which signs it (docs/security.md, \"Signed artifacts\")"
            )
        }
    }
}
