import Crypto
import Foundation
import VantageAPI
import VantageCore
import X509

/// Device identity: the CA, enrollment (provisioning token + CSR → certificate), new tokens, revocation, and the
/// caller a presented client certificate belongs to.
extension Store {
    /// The CA kept in the database, made (and stored, key sealed) at the first start. Replicas starting together
    /// race to insert it; the loser reads the winner's.
    static func loadAuthority(database: any Database, secrets: SecretBox) async throws -> CertificateAuthority {
        if let stored = try await storedAuthority(database, secrets) { return stored }
        let made = try CertificateAuthority.make()
        do {
            try await database.query(
                """
                INSERT INTO certificate_authority (id, certificate, sealed_key, created_at)
                VALUES (1, \(made.certificatePEM), \(try secrets.seal(made.keyPEM)), \(Millis.now()))
                """)
            return made
        } catch let error as DatabaseError where error.code == .uniqueViolation {
            guard let stored = try await storedAuthority(database, secrets) else { throw error }
            return stored
        }
    }

    private static func storedAuthority(_ database: any Database, _ secrets: SecretBox) async throws
        -> CertificateAuthority?
    {
        guard
            let row = try await database.query("SELECT certificate, sealed_key FROM certificate_authority WHERE id = 1")
                .first
        else { return nil }
        do {
            let certificate = try Certificate(pemEncoded: try row.text("certificate"))
            let key = try P256.Signing.PrivateKey(pemRepresentation: try secrets.open(try row.text("sealed_key")))
            return CertificateAuthority(certificate: certificate, key: key)
        } catch {
            throw ServerError(
                "the device CA stored in the database cannot be read (\(error)): the server's secret key file is not the one it was sealed with; use the same --secret-key-file on every replica"
            )
        }
    }

    /// Exchanges a provisioning token (once, before it expires) and a CSR for the device's certificate. Any
    /// earlier certificate of the device is revoked: a device has one identity at a time.
    public func enroll(_ request: EnrollmentRequest) async throws -> Enrollment {
        let refused = APIError(
            401,
            "the provisioning token is not valid: it expired, was used already, or is mistyped. Make a new one with `vantage devices token DEVICE` and enroll again"
        )
        guard request.token.hasPrefix("vd_"), request.token.count < 200 else { throw refused }
        guard request.csr.utf8.count <= 16_384 else { throw APIError.invalid("csr is longer than 16 KiB") }
        let hash = Identifiers.hash(request.token)
        let now = Millis.now()
        guard
            let row = try await database.query(
                "SELECT id FROM devices WHERE token_hash = \(hash) AND token_expires_at > \(now)"
            ).first
        else { throw refused }
        let deviceID = try row.text("id")
        let certificate = try authority.issueDeviceCertificate(
            csrPEM: request.csr, deviceID: deviceID, lifetime: deviceCertificateLifetime)
        let serial = CertificateAuthority.serialHex(certificate.serialNumber)
        let fingerprint = CertificateAuthority.fingerprint(of: certificate)
        let notAfter = Millis.from(certificate.notValidAfter)
        let used = "used:" + Identifiers.make("tok")
        // The token is spent in the same transaction that stores the certificate, and only if it is still the
        // device's: of two enrollments racing with one token, one gets nothing back from the UPDATE.
        let spent = try await database.transaction { db -> Bool in
            let updated = try await db.query(
                """
                UPDATE devices SET token_hash = \(used), token_expires_at = NULL,
                    provisioning_status = \(ProvisioningStatus.pending.rawValue), updated_at = \(now),
                    agent_sessions = NULL, clone_detected_at = NULL, clone_detail = NULL
                WHERE id = \(deviceID) AND token_hash = \(hash) AND token_expires_at > \(now) RETURNING id
                """)
            guard !updated.isEmpty else { return false }
            try await db.query(
                "UPDATE device_certificates SET revoked_at = \(now) WHERE device_id = \(deviceID) AND revoked_at IS NULL"
            )
            try await db.query(
                """
                INSERT INTO device_certificates (serial, device_id, fingerprint, not_after, created_at)
                VALUES (\(serial), \(deviceID), \(fingerprint), \(notAfter), \(now))
                """)
            return true
        }
        guard spent else { throw refused }
        callers.forgetAll()
        try await audit(
            actor: "device:\(deviceID)", action: "enrollDevice", target: "/api/v1/enroll", detail: serial)
        return Enrollment(
            deviceId: deviceID, certificate: try certificate.serializeAsPEM().pemString,
            caCertificate: authority.certificatePEM, certificateExpiresAt: certificate.notValidAfter)
    }

    /// How long a replaced certificate keeps working after a renewal: the device may not have heard the answer.
    static let renewalOverlapMillis: Int64 = 86_400_000

    /// Signs a new certificate for a device that still holds a valid one (it calls with it): a new key's CSR, no
    /// token. The older certificates keep working for a day, in case the answer is lost on its way. `expiredAt`:
    /// the device called with its current certificate after it ended, within the grace window
    /// (``ExpiredCertificate``); the renewal is audited as one after expiry.
    public func renewCertificate(device deviceID: String, _ request: CertificateRenewal, expiredAt: Date? = nil)
        async throws -> Enrollment
    {
        guard request.csr.utf8.count <= 16_384 else { throw APIError.invalid("csr is longer than 16 KiB") }
        _ = try await device(deviceID)
        let certificate = try authority.issueDeviceCertificate(
            csrPEM: request.csr, deviceID: deviceID, lifetime: deviceCertificateLifetime)
        let serial = CertificateAuthority.serialHex(certificate.serialNumber)
        let now = Millis.now()
        try await database.transaction { db in
            try await db.query(
                """
                UPDATE device_certificates SET not_after = \(now + Self.renewalOverlapMillis)
                WHERE device_id = \(deviceID) AND revoked_at IS NULL AND not_after > \(now + Self.renewalOverlapMillis)
                """)
            try await db.query(
                """
                INSERT INTO device_certificates (serial, device_id, fingerprint, not_after, created_at)
                VALUES (\(serial), \(deviceID), \(CertificateAuthority.fingerprint(of: certificate)),
                        \(Millis.from(certificate.notValidAfter)), \(now))
                """)
        }
        callers.forgetAll()
        if let expiredAt {
            try await audit(
                actor: "device:\(deviceID)", action: "renewCertificateAfterExpiry",
                target: "/api/v1/devices/\(deviceID)/certificate",
                detail:
                    "certificate renewed after expiry: it ended \(APIJSON.formatTime(expiredAt)); new serial \(serial)")
        }
        return Enrollment(
            deviceId: deviceID, certificate: try certificate.serializeAsPEM().pemString,
            caCertificate: authority.certificatePEM, certificateExpiresAt: certificate.notValidAfter)
    }

    /// A new provisioning token for a device (to enroll a replaced or reinstalled box); the old token dies.
    /// The device's current certificate stays valid until the new enrollment replaces it.
    public func newProvisioningToken(device id: String) async throws -> DeviceCreated {
        _ = try await device(id)
        let token = Identifiers.secret("vd")
        let now = Millis.now()
        let expires = now + provisioningTokenLifetime
        try await database.query(
            """
            UPDATE devices SET token_hash = \(Identifiers.hash(token)), token_expires_at = \(expires),
                updated_at = \(now) WHERE id = \(id)
            """)
        return DeviceCreated(
            device: try await device(id), provisioningToken: token, tokenExpiresAt: Millis.date(expires),
            caFingerprint: authority.fingerprint)
    }

    /// Revokes the device's certificates and any unused token: its next request is refused. It can come back
    /// only by enrolling with a new token.
    public func revokeDevice(_ id: String) async throws -> Device {
        _ = try await device(id)
        let now = Millis.now()
        try await database.transaction { db in
            try await db.query(
                "UPDATE device_certificates SET revoked_at = \(now) WHERE device_id = \(id) AND revoked_at IS NULL")
            try await db.query(
                """
                UPDATE devices SET token_hash = \("revoked:" + Identifiers.make("tok")), token_expires_at = NULL,
                    provisioning_status = \(ProvisioningStatus.awaitingProvisioning.rawValue), updated_at = \(now)
                WHERE id = \(id)
                """)
        }
        callers.forgetAll()
        return try await device(id)
    }

    /// The device a client certificate (DER, already verified against the CA by TLS) belongs to, while it is
    /// neither revoked nor expired. Answers are remembered for a few seconds (``CallerCache``): a device's requests
    /// cost no query for it, and a revocation made through this server forgets them at once (through another
    /// replica, within the cache's lifetime — well inside the 60 s promise).
    func caller(certificate der: [UInt8]) async throws -> Caller? {
        let fingerprint = "sha256:" + SHA256.hash(data: der).hexString
        if let known = callers.caller(fingerprint) { return known }
        let certificate = try Certificate(derEncoded: der)
        let serial = CertificateAuthority.serialHex(certificate.serialNumber)
        let found = try await caller(certificateSerial: serial, fingerprint: fingerprint)
        if let found { callers.remember(found, for: fingerprint, until: certificate.notValidAfter) }
        return found
    }

    /// Forgets the remembered certificate answers: after certificates were changed other than through the store
    /// (by hand in the database, or by a test).
    public func forgetAuthenticatedCertificates() { callers.forgetAll() }

    func caller(certificateSerial serial: String, fingerprint: String) async throws -> Caller? {
        guard
            let row = try await database.query(
                """
                SELECT device_id FROM device_certificates
                WHERE serial = \(serial) AND fingerprint = \(fingerprint) AND revoked_at IS NULL
                    AND not_after > \(Millis.now())
                """
            ).first
        else { return nil }
        let id = try row.text("device_id")
        return Caller(kind: .device(id: id), actor: "device:\(id)", role: nil)
    }

    /// What the server makes of a client certificate it issued that is not (or no longer) a device's valid one:
    /// nil when it is revoked, replaced by a newer one, or unknown; otherwise when it ended and until when it may
    /// still renew itself.
    func expiredCertificate(_ der: [UInt8]) async throws -> ExpiredCertificate? {
        let fingerprint = "sha256:" + SHA256.hash(data: der).hexString
        let serial = CertificateAuthority.serialHex(try Certificate(derEncoded: der).serialNumber)
        // Only the device's newest certificate: one that a renewal replaced has a newer one beside it.
        guard
            let row = try await database.query(
                """
                SELECT c.device_id, c.not_after FROM device_certificates c
                WHERE c.serial = \(serial) AND c.fingerprint = \(fingerprint) AND c.revoked_at IS NULL
                    AND NOT EXISTS (SELECT 1 FROM device_certificates n WHERE n.device_id = c.device_id
                        AND n.created_at > c.created_at)
                """
            ).first
        else { return nil }
        let id = try row.text("device_id")
        let ended = try row.integer("not_after")
        guard ended <= Millis.now() else { return nil }
        return ExpiredCertificate(
            caller: Caller(kind: .device(id: id), actor: "device:\(id)", role: nil), endedAt: Millis.date(ended),
            renewableUntil: Millis.date(ended + expiredRenewalMillis))
    }
}

/// A device's current certificate that has ended: it may renew itself until `renewableUntil` (the grace window,
/// `vantage server --expired-renewal-days`), and do nothing else.
struct ExpiredCertificate: Sendable {
    let caller: Caller
    let endedAt: Date
    let renewableUntil: Date

    var deviceID: String {
        if case .device(let id) = caller.kind { return id }
        return ""
    }

    func renewable(now: Date = Date()) -> Bool { now < renewableUntil }

    /// Why a request other than renewal is refused (or renewal, past the window), and what to do.
    var refusal: String {
        guard renewable() else { return Self.pastWindow(deviceID, endedAt) }
        return
            "this device certificate expired on \(APIJSON.formatTime(endedAt)): renew it (POST /api/v1/devices/\(deviceID)/certificate, which vantage agent does by itself) before \(APIJSON.formatTime(renewableUntil))"
    }

    /// What to do once the grace window is over: enroll again.
    static func pastWindow(_ deviceID: String, _ endedAt: Date) -> String {
        "this device certificate expired on \(APIJSON.formatTime(endedAt)), past the renewal window: run `vantage devices token \(deviceID)` on the server and `vantage agent enroll --force …` with the new token on the box"
    }
}
