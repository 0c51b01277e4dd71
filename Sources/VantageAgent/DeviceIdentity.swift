import CVantageShims
import Crypto
import Foundation
import NIOSSL
import SwiftASN1
import X509

/// What the device is to the server: its private key (made here, never sent anywhere), the certificate the
/// server's CA signed for it, the CA it pins, and where the server's device endpoint is. Kept in the agent's
/// `identity/` folder: `device.key` (mode 0600), `device.crt`, `ca.crt`, `device.json`.
public struct DeviceIdentity: Sendable {
    public var deviceID: String
    /// The device endpoint, `https://HOST:PORT`.
    public var server: URL
    public var keyPEM: String
    public var certificatePEM: String
    public var caPEM: String

    public init(deviceID: String, server: URL, keyPEM: String, certificatePEM: String, caPEM: String) {
        self.deviceID = deviceID
        self.server = server
        self.keyPEM = keyPEM
        self.certificatePEM = certificatePEM
        self.caPEM = caPEM
    }

    /// A new P-256 private key, PEM.
    public static func makeKeyPEM() -> String { P256.Signing.PrivateKey().pemRepresentation }

    /// A certificate signing request for `keyPEM` (the server replaces the subject with the device's id).
    public static func csrPEM(keyPEM: String, name: String = "vantage-agent") throws -> String {
        let key = try P256.Signing.PrivateKey(pemRepresentation: keyPEM)
        let csr = try CertificateSigningRequest(
            version: .v1, subject: try DistinguishedName { CommonName(name) }, privateKey: .init(key),
            attributes: .init(), signatureAlgorithm: .ecdsaWithSHA256)
        return try csr.serializeAsPEM().pemString
    }

    /// `sha256:<hex>` of a PEM certificate's DER: what `--ca-hash` compares.
    public static func fingerprint(pem: String) throws -> String {
        let document = try PEMDocument(pemString: pem)
        return "sha256:" + SHA256.hash(data: document.derBytes).map { String(format: "%02x", $0) }.joined()
    }

    /// When the certificate ends.
    public var certificateExpiresAt: Date? { (try? Certificate(pemEncoded: certificatePEM))?.notValidAfter }

    /// TLS for talking to the device endpoint: present the device's certificate, trust the pinned CA only.
    public func tlsConfiguration() throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        tls.certificateVerification = .fullVerification
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8)))
        tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(certificatePEM.utf8)).map { .certificate($0) }
        tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem))
        return tls
    }

    /// Whether the certificate ends within `margin` (so it is time to renew it).
    public func certificateEnds(within margin: TimeInterval, now: Date = Date()) -> Bool {
        guard let end = certificateExpiresAt else { return true }
        return end.timeIntervalSince(now) < margin
    }

    // MARK: On disk

    struct Descriptor: Codable {
        var deviceId: String
        var server: String
    }

    /// Replaces the identity in `folder` as a whole: written complete beside it, then the two folders exchanged
    /// in one step (renameat2 RENAME_EXCHANGE), so a crash leaves the old identity or the new one, never a key of one
    /// with the certificate of the other.
    public func replace(in folder: URL) throws {
        let staged = folder.deletingLastPathComponent().appending(path: folder.lastPathComponent + ".new")
        try? FileManager.default.removeItem(at: staged)
        try save(to: staged)
        guard vantage_exchange_paths(staged.path, folder.path) == 0 else {
            throw AgentError(
                "cannot swap in the renewed identity (\(String(cString: strerror(errno)))): it is in \(staged.path)")
        }
        try? FileManager.default.removeItem(at: staged)  // the old identity, now under the staged name
    }

    /// The identity kept in `folder`, or nil when the device has not enrolled yet.
    public static func load(from folder: URL) throws -> DeviceIdentity? {
        let manager = FileManager.default
        let descriptorFile = folder.appending(path: "device.json")
        guard manager.fileExists(atPath: descriptorFile.path) else { return nil }
        func read(_ name: String) throws -> String {
            guard let data = manager.contents(atPath: folder.appending(path: name).path) else {
                throw AgentError(
                    "\(folder.appending(path: name).path) is missing: the identity folder is damaged; enroll again with a new token (vantage devices token DEVICE)"
                )
            }
            return String(decoding: data, as: UTF8.self)
        }
        let descriptor: Descriptor
        do {
            descriptor = try JSONDecoder().decode(Descriptor.self, from: Data(try read("device.json").utf8))
        } catch let error as AgentError {
            throw error
        } catch {
            throw AgentError("\(descriptorFile.path) is not valid JSON: enroll again with a new token")
        }
        guard let server = URL(string: descriptor.server) else {
            throw AgentError("\(descriptorFile.path) names no valid server URL: enroll again with a new token")
        }
        return DeviceIdentity(
            deviceID: descriptor.deviceId, server: server, keyPEM: try read("device.key"),
            certificatePEM: try read("device.crt"), caPEM: try read("ca.crt"))
    }

    /// Writes the identity into `folder`; `device.json` last, so a half-written identity is never taken for one.
    public func save(to folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try AtomicFile.write(Data(keyPEM.utf8), to: folder.appending(path: "device.key"), permissions: 0o600)
        try AtomicFile.write(Data(certificatePEM.utf8), to: folder.appending(path: "device.crt"))
        try AtomicFile.write(Data(caPEM.utf8), to: folder.appending(path: "ca.crt"))
        let descriptor = try JSONEncoder().encode(Descriptor(deviceId: deviceID, server: server.absoluteString))
        try AtomicFile.write(descriptor, to: folder.appending(path: "device.json"))
    }
}

/// A failure of the agent that a person must act on; the message says what and how.
public struct AgentError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
