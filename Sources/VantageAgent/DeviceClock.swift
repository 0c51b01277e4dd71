import Foundation
import X509

// A box whose clock is wrong (a dead RTC battery, no NTP yet) cannot do TLS: the server's certificate looks "not yet
// valid" a year behind, or "expired" years ahead. BoringSSL only says CERTIFICATE_VERIFY_FAILED; this says why.

extension DeviceIdentity {
    /// When the device's clock (`now`) lies outside the validity of the device's certificate or of the server's CA
    /// (both on disk), the sentence that says so and what to do; nil when it lies inside both.
    public func clockOutsideValidity(now: Date = Date()) -> String? {
        for (what, pem) in [("the device's certificate", certificatePEM), ("the server's CA", caPEM)] {
            guard let certificate = try? Certificate(pemEncoded: pem) else { continue }
            let start = certificate.notValidBefore
            let end = certificate.notValidAfter
            guard now < start || now > end else { continue }
            let format = Date.ISO8601FormatStyle()
            return
                "the device clock (\(now.formatted(format))) is outside the certificate's validity (\(start.formatted(format)) to \(end.formatted(format)), \(what)); check NTP (timedatectl status) or set the clock: TLS with the server cannot work until it is right"
        }
        return nil
    }
}
