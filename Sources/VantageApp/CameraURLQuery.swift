import Foundation

/// Credentials written into a camera URL's query string, as many cameras take them
/// (`http://cam/videostream.cgi?user=admin&pwd=secret`, `rtsp://cam/live?channel=1&token=…`): the control plane
/// stores them encrypted like a `user:password@` and shows `***` in their place; logs show `***` too.
///
/// Only the values of parameters with a credential's name (``credentialNames``, compared without case) are
/// touched; everything else in the URL is kept byte for byte, percent-encoding included.
public enum CameraURLQuery {
    /// Query parameter names that carry a credential: the generic ones and those of common camera vendors (Foscam's
    /// `usr`/`pwd`, `loginuse`/`loginpas` of many OEM cameras, Reolink's and Amcrest's `user`/`password`, signed
    /// and token URLs).
    public static let credentialNames: Set<String> = [
        "user", "username", "usr", "login", "loginuse", "account", "pwd", "pass", "passwd", "password", "psw",
        "loginpas", "token", "access_token", "auth", "authorization", "apikey", "api_key", "key", "secret", "sig",
        "signature",
    ]

    /// What stands in for a credential's value in a stored or shown URL.
    public static let placeholder = "***"

    /// One `name=value` of the query as written (percent-encoded).
    public struct Credential: Sendable, Equatable {
        /// The name, lowercased and percent-decoded: how credentials are matched.
        public let name: String
        /// The value as written in the URL.
        public let value: String
    }

    /// `url` with each credential's value replaced by ``placeholder``, and the credentials that were taken out
    /// (a value that already is the placeholder is left as is and not returned).
    public static func split(_ url: String) -> (url: String, credentials: [Credential]) {
        guard let (head, query, tail) = parts(of: url) else { return (url, []) }
        var credentials: [Credential] = []
        let items = query.split(separator: "&", omittingEmptySubsequences: false).map { item -> Substring in
            guard let equals = item.firstIndex(of: "="), let name = credentialName(item[..<equals]) else {
                return item
            }
            let value = item[item.index(after: equals)...]
            guard !value.isEmpty, value != placeholder else { return item }
            credentials.append(Credential(name: name, value: String(value)))
            return item[...equals] + placeholder
        }
        return (head + "?" + items.joined(separator: "&") + tail, credentials)
    }

    /// The names of credentials whose value in `url` is the ``placeholder`` (lowercased).
    public static func placeholders(in url: String) -> [String] {
        guard let (_, query, _) = parts(of: url) else { return [] }
        return query.split(separator: "&").compactMap { item in
            guard let equals = item.firstIndex(of: "="), item[item.index(after: equals)...] == placeholder else {
                return nil
            }
            return credentialName(item[..<equals])
        }
    }

    /// `url` with each placeholder whose name is in `values` (lowercased name → value as written) filled in.
    public static func fill(_ url: String, with values: [String: String]) -> String {
        guard !values.isEmpty, let (head, query, tail) = parts(of: url) else { return url }
        let items = query.split(separator: "&", omittingEmptySubsequences: false).map { item -> Substring in
            guard let equals = item.firstIndex(of: "="), item[item.index(after: equals)...] == placeholder,
                let name = credentialName(item[..<equals]), let value = values[name]
            else { return item }
            return item[...equals] + value
        }
        return head + "?" + items.joined(separator: "&") + tail
    }

    /// `url` with the values of its query credentials hidden, safe to log.
    public static func redact(_ url: String) -> String { split(url).url }

    /// The lowercased, decoded name when it is a credential's.
    private static func credentialName(_ raw: Substring) -> String? {
        let name = (raw.removingPercentEncoding ?? String(raw)).lowercased()
        return credentialNames.contains(name) ? name : nil
    }

    /// The URL up to its `?`, the query, and the `#fragment` (empty when none); nil without a query.
    private static func parts(of url: String) -> (String, Substring, Substring)? {
        guard let question = url.firstIndex(of: "?") else { return nil }
        let rest = url[url.index(after: question)...]
        let hash = rest.firstIndex(of: "#") ?? rest.endIndex
        return (String(url[..<question]), rest[..<hash], rest[hash...])
    }
}
