import Crypto
import Foundation
import SwiftASN1
import X509

/// The server's own certificate authority: it signs each device's certificate (from the device's CSR, so the
/// device's key never leaves it) and the certificate the device endpoint serves, which agents verify against this
/// CA alone (they pin it at enrollment).
///
/// The CA is made once, at the first start, and kept in the database with its key sealed by the server's
/// ``SecretBox``: every replica sharing the database (and the key file) uses the same CA.
public struct CertificateAuthority: Sendable {
    public let certificate: Certificate
    // P256.Signing.PrivateKey is not Sendable; its raw bytes are, and the key is cheap to rebuild per signature.
    private let keyBytes: [UInt8]
    private var key: P256.Signing.PrivateKey { try! P256.Signing.PrivateKey(rawRepresentation: keyBytes) }

    /// How long a device certificate is valid; agents renew before it ends.
    static let deviceCertificateLifetime: TimeInterval = 365 * 86400
    static let caLifetime: TimeInterval = 20 * 365 * 86400
    static let serverCertificateLifetime: TimeInterval = 90 * 86400

    init(certificate: Certificate, key: P256.Signing.PrivateKey) {
        self.certificate = certificate
        self.keyBytes = Array(key.rawRepresentation)
    }

    /// A fresh CA named after `organization`.
    static func make(now: Date = Date()) throws -> CertificateAuthority {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName {
            OrganizationName("Vantage")
            CommonName("Vantage device CA \(Identifiers.make("ca").suffix(8))")
        }
        let publicKey = Certificate.PublicKey(key.publicKey)
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: publicKey,
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(caLifetime),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: publicKey)
            },
            issuerPrivateKey: .init(key))
        return CertificateAuthority(certificate: certificate, key: key)
    }

    /// The CA certificate, PEM.
    public var certificatePEM: String { (try? certificate.serializeAsPEM().pemString) ?? "" }

    /// `sha256:<hex>` of the CA certificate's DER: what `vantage agent --ca-hash` checks before trusting a server.
    public var fingerprint: String { Self.fingerprint(of: certificate) }

    static func fingerprint(of certificate: Certificate) -> String {
        "sha256:" + SHA256.hash(data: (try? derBytes(certificate)) ?? []).hexString
    }

    var keyPEM: String { key.pemRepresentation }

    /// Signs a device's certificate for the key in `csr`, after checking the CSR's own signature (proof that the
    /// caller holds the key). The subject is the device's id whatever the CSR asked for.
    func issueDeviceCertificate(
        csrPEM: String, deviceID: String, lifetime: TimeInterval = deviceCertificateLifetime, now: Date = Date()
    ) throws -> Certificate {
        let csr: CertificateSigningRequest
        do {
            csr = try CertificateSigningRequest(pemEncoded: csrPEM)
        } catch {
            throw APIError.unprocessable(
                "csr is not a PEM certificate signing request (-----BEGIN CERTIFICATE REQUEST-----): vantage agent makes one"
            )
        }
        guard csr.publicKey.isValidSignature(csr.signature, for: csr) else {
            throw APIError.unprocessable(
                "the CSR's signature does not match its key: make a new CSR with the device's key")
        }
        let subject = try DistinguishedName {
            OrganizationName("Vantage device")
            CommonName(deviceID)
        }
        return try Certificate(
            version: .v3, serialNumber: .init(), publicKey: csr.publicKey,
            notValidBefore: now.addingTimeInterval(-300),
            notValidAfter: now.addingTimeInterval(lifetime),
            issuer: certificate.subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.clientAuth])
                SubjectKeyIdentifier(hash: csr.publicKey)
            },
            issuerPrivateKey: .init(key))
    }

    /// A certificate (and its new key) for the device endpoint, valid for `hostnames` (names and IP addresses).
    func issueServerCertificate(hostnames: [String], now: Date = Date()) throws -> (
        certificate: Certificate, key: P256.Signing.PrivateKey
    ) {
        let serverKey = P256.Signing.PrivateKey()
        let publicKey = Certificate.PublicKey(serverKey.publicKey)
        let names = hostnames.map { host -> GeneralName in
            if let address = IPAddressBytes(host) { return .ipAddress(ASN1OctetString(contentBytes: address[...])) }
            return .dnsName(host)
        }
        let subject = try DistinguishedName {
            OrganizationName("Vantage")
            CommonName(hostnames.first ?? "vantage-server")
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: publicKey, notValidBefore: now.addingTimeInterval(-300),
            notValidAfter: now.addingTimeInterval(Self.serverCertificateLifetime), issuer: self.certificate.subject,
            subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(names)
            },
            issuerPrivateKey: .init(key))
        return (certificate, serverKey)
    }

    /// Whether a client certificate was issued by this CA (its signature checks out with the CA's key) and has
    /// begun. Its end is not checked here: an expired certificate still reaches the server, which lets it renew
    /// within the grace window and refuses it anything else with an answer that says why (a failed handshake would
    /// say nothing). Whether it is revoked, replaced or expired is the database's to say, per request.
    func issued(_ der: [UInt8], now: Date = Date()) -> Bool {
        guard let leaf = try? Certificate(derEncoded: der) else { return false }
        return leaf.issuer == certificate.subject
            && certificate.publicKey.isValidSignature(leaf.signature, for: leaf)
            && leaf.notValidBefore <= now.addingTimeInterval(300)
    }

    /// A certificate serial number as lower-case hex, the key device certificates are stored under.
    static func serialHex(_ serial: Certificate.SerialNumber) -> String {
        serial.bytes.hexString
    }
}

/// The bytes of an IPv4 or IPv6 address written as text, or nil when `text` is not one.
private func IPAddressBytes(_ text: String) -> [UInt8]? {
    var v4 = in_addr()
    if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
    var v6 = in6_addr()
    if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
    return nil
}
