import Crypto
import Foundation

/// Encrypts what must be stored but never shown (camera credentials) with AES-GCM under a 256-bit key kept in
/// the server's data folder (`secret.key`, mode 0600, made at first start). Replicas sharing one database must
/// share the key (the same data folder, or `--secret-key-file`).
public struct SecretBox: Sendable {
    // SymmetricKey is not Sendable; the bytes are, and a key is cheap to rebuild per use.
    private let keyBytes: [UInt8]
    private var key: SymmetricKey { SymmetricKey(data: keyBytes) }

    public init(key: SymmetricKey) { self.keyBytes = key.withUnsafeBytes { Array($0) } }

    /// Reads the key file, creating it with a fresh key when it does not exist.
    public static func loadOrCreate(at url: URL) throws -> SecretBox {
        let manager = FileManager.default
        if manager.fileExists(atPath: url.path) { return try load(url) }
        // Written to a temporary file and linked into place: link() fails if the file appeared meanwhile (a replica
        // sharing the folder made it first), and then that key is the one everyone uses.
        let key = SymmetricKey(size: .bits256)
        let data = key.withUnsafeBytes { Data($0) }
        let temporary = url.deletingLastPathComponent().appending(path: ".secret-\(UUID().uuidString)")
        guard manager.createFile(atPath: temporary.path, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw ServerError("cannot write the key file \(url.path): check that the data folder is writable")
        }
        defer { try? manager.removeItem(at: temporary) }
        if link(temporary.path, url.path) != 0 {
            guard errno == EEXIST else {
                throw ServerError("cannot write the key file \(url.path): \(String(cString: strerror(errno)))")
            }
            return try load(url)
        }
        return SecretBox(key: key)
    }

    /// Reads an existing key file.
    static func load(_ url: URL) throws -> SecretBox {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw ServerError(
                "cannot read the key file \(url.path): check that it is a file this user can read (camera credentials cannot be read without it)"
            )
        }
        guard data.count == 32 else {
            throw ServerError(
                "the key file \(url.path) holds \(data.count) bytes, not 32: restore it from a backup (camera credentials cannot be read without it)"
            )
        }
        return SecretBox(key: SymmetricKey(data: data))
    }

    /// The control plane's artifact signing key (Ed25519; docs/security.md, "Signed artifacts"): derived from the
    /// secret key with HKDF-SHA256 under its own label, so replicas sharing the secret key sign alike and the signing
    /// key is never stored anywhere. Not the TLS CA's key: a leaked CA key signs no artifact, and the other way round.
    var artifactSigningKey: Curve25519.Signing.PrivateKey {
        let seed = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: key, info: Data("vantage artifact signing key v1".utf8), outputByteCount: 32)
        // 32 bytes are always a valid Ed25519 seed.
        return try! Curve25519.Signing.PrivateKey(rawRepresentation: seed.withUnsafeBytes { Data($0) })
    }

    /// `base64(nonce ‖ ciphertext ‖ tag)`.
    func seal(_ plaintext: String) throws -> String {
        try AES.GCM.seal(Data(plaintext.utf8), using: key).combined!.base64EncodedString()
    }

    func open(_ sealed: String) throws -> String {
        guard let data = Data(base64Encoded: sealed) else { throw ServerError("a stored secret is not base64") }
        do {
            let box = try AES.GCM.SealedBox(combined: data)
            return String(decoding: try AES.GCM.open(box, using: key), as: UTF8.self)
        } catch {
            throw ServerError(
                "a stored secret does not open with this server's key: is secret.key the one it was written with?")
        }
    }
}

/// A server start-up or configuration failure, worded for the person running it.
public struct ServerError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
