#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The process's open-file limit (`RLIMIT_NOFILE`): every connection, camera, socket and file takes one.
public enum OpenFileLimit {
    /// Raises the soft limit to the hard one (the most an unprivileged process may), so that a server does not
    /// run out of descriptors at a distribution's default of 1024 while the hard limit allows far more. Answers
    /// the soft limit now in force. `vantage server`, `vantage agent` and `vantage run` call it at start.
    @discardableResult
    public static func raiseToHardLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0 else { return current }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            // macOS refuses more than OPEN_MAX for an unlimited hard limit; keep what there is then.
            _ = setrlimit(resource, &raised)
        }
        return current
    }

    /// The soft limit in force (Int.max when unlimited).
    public static var current: Int {
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0 else { return 1024 }
        return limit.rlim_cur >= rlim_t(Int.max) ? Int.max : Int(limit.rlim_cur)
    }

    /// How many connections a process's listeners may hold together: the soft limit less a reserve for its own
    /// files, database and outgoing connections (an eighth, at least 64), and never below 16.
    public static func connectionBudget(limit: Int = current) -> Int {
        guard limit < Int.max / 2 else { return 1 << 20 }
        return max(16, limit - max(64, limit / 8))
    }

    #if canImport(Glibc)
        private static let resource = Int32(RLIMIT_NOFILE.rawValue)
    #else
        private static let resource = RLIMIT_NOFILE
    #endif
}
