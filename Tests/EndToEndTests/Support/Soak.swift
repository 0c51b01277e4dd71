import Foundation

/// The reliability tests' two forms (issue 17, docs/reliability.md). `make test` runs each fault's fast form;
/// `make soak` (scripts/soak) sets `VANTAGE_SOAK_SECONDS` and runs the long, randomized forms for about that long
/// each, and prints one table from the lines the tests append to `VANTAGE_SOAK_REPORT`.
enum Soak {
    /// How long a soak form should keep injecting faults, or nil in the fast form (`make test`).
    static var seconds: Double? {
        ProcessInfo.processInfo.environment["VANTAGE_SOAK_SECONDS"].flatMap(Double.init)
    }

    /// Whether this is the soak (`make soak`) rather than `make test`.
    static var isOn: Bool { seconds != nil }

    /// One row of the soak table: `runs` rounds, `faults` injected, `invariants` checked, `failures` seen. Printed
    /// always (so a fast run shows its figures too) and appended to `VANTAGE_SOAK_REPORT` as a JSON line when set.
    static func record(
        fault: String, runs: Int, faults: Int, invariants: Int, failures: Int, note: String = ""
    ) {
        let row: [String: Any] = [
            "fault": fault, "runs": runs, "faults": faults, "invariants": invariants, "failures": failures,
            "note": note,
        ]
        guard let data = try? JSONSerialization.data(withJSONObject: row, options: [.sortedKeys]),
            let line = String(data: data, encoding: .utf8)
        else { return }
        print("soak: \(line)")
        guard let path = ProcessInfo.processInfo.environment["VANTAGE_SOAK_REPORT"],
            let handle = FileHandle(forWritingAtPath: path)
                ?? {
                    FileManager.default.createFile(atPath: path, contents: nil)
                    return FileHandle(forWritingAtPath: path)
                }()
        else { return }
        defer { try? handle.close() }
        _ = try? handle.seekToEnd()
        try? handle.write(contentsOf: Data((line + "\n").utf8))
    }
}
