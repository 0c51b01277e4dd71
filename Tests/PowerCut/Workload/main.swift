// The power-cut harness's workload and checker (scripts/power-cut drives them; docs/reliability.md).
//
//     power-cut-workload run DIR --archive A.zip --archive B.zip --artifact FILE --seed N [--focus STEP] [--naive]
//     power-cut-workload check DIR --acks FILE --archive A.zip --archive B.zip --reference A_DIR --reference B_DIR
//                        --artifact FILE
//
// `run` does, in a random mix and forever, what the agent writes to its data folder — through the agent's own code:
// events into an instance's outbox (`SinkOutbox`), a deployment's unpack and switch of `current`
// (`InstanceFolder`), an artifact download into the content-addressed cache (`ArtifactCache`), a certificate
// renewal (`DeviceIdentity.replace`) and a state file (`AtomicFile`, as journal.json and state.json are written).
// Before each step it prints `<kind>-try <value>`, and once the step has returned (what the agent then relies on,
// e.g. an event acknowledged to the application) `<kind>-ack <value>`, each line written straight to standard
// output, which the harness keeps outside the file system that loses power.
//
// `check` runs after the cut, on what survived, and checks against those lines: every acknowledged event is in
// the outbox and nothing is there that was never tried; `current` names one whole version (byte for byte the
// archive's files); every cached artifact matches its digest and a new fetch completes; the identity loads, its key
// matches its certificate, and it is the last one acknowledged (or one tried after it); the state file holds the
// last value acknowledged (or one tried after it). It prints one JSON line and exits 1 when an invariant fails.
//
// `--naive` adds a step that writes a state file the way much code does: a temporary file renamed over the old one,
// never fsync'd (Foundation's `.atomic` write does fsync). The harness's self-test expects `check` to catch it.
import Crypto
import Foundation
import Logging
import VantageApp
import VantageCore
import VantageOutputs
import X509

@testable import VantageAgent

struct Arguments {
    var command = ""
    var folder = URL(filePath: "/nonexistent")
    var archives: [URL] = []
    var references: [URL] = []
    var artifact = URL(filePath: "/nonexistent")
    var acks = URL(filePath: "/nonexistent")
    var seed: UInt64 = 1
    var naive = false
    /// The step most runs should be cut in: `run` picks it for about 7 steps in 10.
    var focus: String?

    init(_ list: [String]) {
        var rest = list.dropFirst()
        command = rest.popFirst() ?? ""
        folder = URL(filePath: rest.popFirst() ?? "/nonexistent")
        while let flag = rest.popFirst() {
            switch flag {
            case "--naive": naive = true
            default:
                guard let value = rest.popFirst() else { Self.usage("\(flag) needs a value") }
                switch flag {
                case "--archive": archives.append(URL(filePath: value))
                case "--reference": references.append(URL(filePath: value))
                case "--artifact": artifact = URL(filePath: value)
                case "--acks": acks = URL(filePath: value)
                case "--seed": seed = UInt64(value) ?? 1
                case "--focus": focus = value
                default: Self.usage("unknown option \(flag)")
                }
            }
        }
        guard ["run", "check"].contains(command), archives.count == 2 else { Self.usage("") }
    }

    static func usage(_ problem: String) -> Never {
        FileHandle.standardError.write(
            Data(
                "\(problem)\nusage: power-cut-workload run|check DIR --archive A --archive B --artifact F [--seed N] [--naive] [--acks FILE --reference DIR --reference DIR]\n"
                    .utf8))
        exit(2)
    }
}

/// The places in the data folder, laid out as the agent lays them out.
struct Layout {
    let root: URL
    var outbox: String { root.appending(path: "instances/inst-1/outbox.sqlite").path }
    var instance: InstanceFolder { InstanceFolder(root: root.appending(path: "deployments/instances/inst-1")) }
    var cache: ArtifactCache { ArtifactCache(folder: root.appending(path: "deployments/artifacts/sha256")) }
    var identity: URL { root.appending(path: "identity") }
    var state: URL { root.appending(path: "software/state.json") }
    var naiveState: URL { root.appending(path: "naive/state.json") }
}

/// An artifact served from a local file, in chunks, as the server's artifact route serves it.
struct FileSource: ArtifactSource {
    let file: URL
    func download(digest: String, offset: Int64, into handle: FileHandle) async throws {
        let source = try FileHandle(forReadingFrom: file)
        defer { try? source.close() }
        try source.seek(toOffset: UInt64(offset))
        while let chunk = try source.read(upToCount: 64 << 10), !chunk.isEmpty {
            try handle.write(contentsOf: chunk)
        }
    }
}

func sha256(_ file: URL) throws -> String { try ArtifactCache.sha256(of: file) }

/// The event message of the n-th event: its number and some padding of a length that depends on it.
func message(_ n: Int) -> JSONValue {
    .object(["n": .number(Double(n)), "pad": .string(String(repeating: "x", count: 50 + (n * 37) % 900))])
}

func makeIdentity(serial: Int) throws -> DeviceIdentity {
    let key = P256.Signing.PrivateKey()
    let name = try DistinguishedName { CommonName("power-cut-\(serial)") }
    let now = Date()
    let certificate = try Certificate(
        version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey), notValidBefore: now,
        notValidAfter: now + 86400, issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
        extensions: Certificate.Extensions(), issuerPrivateKey: .init(key))
    let pem = try certificate.serializeAsPEM().pemString
    return DeviceIdentity(
        deviceID: "dev_powercut", server: URL(string: "https://127.0.0.1:8443")!, keyPEM: key.pemRepresentation,
        certificatePEM: pem, caPEM: pem)
}

func say(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
}

// MARK: run

/// A small seeded generator (SplitMix64), so a failing run can be repeated with its seed.
struct Seeded: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func run(_ arguments: Arguments) async throws {
    let layout = Layout(root: arguments.folder)
    var random = Seeded(state: arguments.seed)
    let outbox = try SinkOutbox(path: layout.outbox)
    // Numbers go on from what a previous run left (the harness passes the acks so far in the same file).
    var n = Int(arguments.seed % 1_000_000) * 1_000_000
    let keys = try arguments.archives.map { try sha256($0) }
    let artifactKey = try sha256(arguments.artifact)
    var serial = Int(arguments.seed % 1_000_000) * 1_000_000
    let logger = Logger(label: "power-cut")
    let focusCase = ["outbox": 0, "deploy": 5, "fetch": 7, "renew": 8, "state": 9][arguments.focus ?? ""]
    while true {
        let pick = Int.random(in: 0..<10, using: &random)
        switch focusCase.map({ pick < 7 ? $0 : pick }) ?? pick {
        case 0..<5:  // a burst of events, some delivered
            for _ in 0..<Int.random(in: 1...20, using: &random) {
                n += 1
                say("outbox-try \(n)")
                let sequence = try outbox.add(
                    message: message(n), snapshotFile: nil, clipPending: false, objectSinks: [],
                    deliveries: [(sink: "control-plane", part: .message)])
                say("outbox-ack \(n) \(sequence)")
                if Bool.random(using: &random), let head = try outbox.head(of: "control-plane") {
                    // Delivered: from here on the event may be gone (its deletion may be durable before the ack).
                    say("outbox-deliver \(head.sequence)")
                    try outbox.complete(head)
                    say("outbox-done \(head.sequence)")
                }
            }
        case 5, 6:  // a deployment: unpack the other version when it is not there, switch, sometimes prune
            let folder = layout.instance
            let next = keys.first { $0 != folder.currentKey() } ?? keys[0]
            let archive = arguments.archives[keys.firstIndex(of: next)!]
            say("deploy-try \(next)")
            try folder.unpack(archive, key: next)
            try folder.switchCurrent(to: next)
            say("deploy-ack \(next)")
            if Bool.random(using: &random) { folder.prune(keeping: [next]) }
        case 7:  // a model download into the cache, then dropped from it so that the next one downloads again
            let cache = layout.cache
            say("fetch-try \(artifactKey)")
            let file = try await cache.fetch(
                key: artifactKey, source: FileSource(file: arguments.artifact), policy: DownloadPolicy(),
                logger: logger)
            say("fetch-ack \(artifactKey)")
            if Bool.random(using: &random) {
                DeploymentIO.delete(file)
                say("fetch-removed \(artifactKey)")
            }
        case 8:  // a certificate renewal (the first identity is saved as enrolling saves it)
            serial += 1
            let identity = try makeIdentity(serial: serial)
            let print = try DeviceIdentity.fingerprint(pem: identity.certificatePEM)
            say("renew-try \(print)")
            if try DeviceIdentity.load(from: layout.identity) == nil {
                try identity.save(to: layout.identity)
            } else {
                try identity.replace(in: layout.identity)
            }
            say("renew-ack \(print)")
        default:  // a state file
            n += 1
            let data = Data(#"{"value":\#(n)}"#.utf8)
            say("state-try \(n)")
            try FileManager.default.createDirectory(
                at: layout.state.deletingLastPathComponent(), withIntermediateDirectories: true)
            try AtomicFile.write(data, to: layout.state)
            say("state-ack \(n)")
            if arguments.naive {
                say("naive-try \(n)")
                try FileManager.default.createDirectory(
                    at: layout.naiveState.deletingLastPathComponent(), withIntermediateDirectories: true)
                // A temporary file renamed over the old one, never fsync'd.
                let temporary = layout.naiveState.appendingPathExtension("tmp")
                FileManager.default.createFile(atPath: temporary.path, contents: nil)
                let handle = try FileHandle(forWritingTo: temporary)
                try handle.write(contentsOf: data)
                try handle.close()
                guard rename(temporary.path, layout.naiveState.path) == 0 else { throw AgentError("rename failed") }
                say("naive-ack \(n)")
            }
        }
    }
}

// MARK: check

/// What the workload said, in order, by kind.
struct Acks {
    /// Each kind's steps in order: (acknowledged, value).
    var steps: [String: [(acked: Bool, value: String)]] = [:]
    var outboxSequence: [Int: Int64] = [:]
    var delivered: Set<Int64> = []

    init(_ file: URL) throws {
        for line in try String(contentsOf: file, encoding: .utf8).split(separator: "\n") {
            let parts = line.split(separator: " ").map(String.init)
            guard parts.count >= 2, let dash = parts[0].lastIndex(of: "-") else { continue }
            let kind = String(parts[0][..<dash])
            switch parts[0][parts[0].index(after: dash)...] {
            case "try": steps[kind, default: []].append((false, parts[1]))
            case "ack":
                steps[kind, default: []].append((true, parts[1]))
                if kind == "outbox", parts.count == 3, let n = Int(parts[1]), let s = Int64(parts[2]) {
                    outboxSequence[n] = s
                }
            case "deliver", "done": if let s = Int64(parts[1]) { delivered.insert(s) }
            default: break
            }
        }
    }

    func tried(_ kind: String) -> [String] { (steps[kind] ?? []).filter { !$0.acked }.map(\.value) }
    func everAcked(_ kind: String) -> Bool { (steps[kind] ?? []).contains { $0.acked } }

    /// The values a durable step of `kind` may have left: the last acknowledged one, or one tried after it (a cut
    /// between a try and its ack may leave either). Nil when nothing of that kind was acknowledged yet.
    func allowed(_ kind: String) -> Set<String>? {
        let list = steps[kind] ?? []
        guard let last = list.lastIndex(where: { $0.acked }) else { return nil }
        return Set([list[last].value] + list[(last + 1)...].map(\.value))
    }
}

struct Check {
    var invariants = 0
    var failures: [String] = []
    mutating func expect(_ condition: Bool, _ failure: @autoclosure () -> String) {
        invariants += 1
        if !condition { failures.append(failure()) }
    }
}

func sameTree(_ a: URL, _ b: URL) -> String? {
    let manager = FileManager.default
    func files(_ root: URL) -> [String: Data] {
        var result: [String: Data] = [:]
        for case let path as String in manager.enumerator(atPath: root.path) ?? .init() {
            var isFolder: ObjCBool = false
            let full = root.appending(path: path)
            if manager.fileExists(atPath: full.path, isDirectory: &isFolder), !isFolder.boolValue {
                result[path] = manager.contents(atPath: full.path) ?? Data()
            }
        }
        return result
    }
    let left = files(a)
    let right = files(b)
    if Set(left.keys) != Set(right.keys) {
        return "files differ: \(Set(left.keys).symmetricDifference(Set(right.keys)).sorted().prefix(5))"
    }
    for (path, bytes) in left where right[path] != bytes {
        return "\(path) differs (\(bytes.count) bytes, the archive's \(right[path]?.count ?? 0))"
    }
    return nil
}

func check(_ arguments: Arguments) async -> Check {
    var check = Check()
    let layout = Layout(root: arguments.folder)
    let acks: Acks
    do {
        acks = try Acks(arguments.acks)
    } catch {
        check.expect(false, "cannot read the acks file: \(error)")
        return check
    }

    // The outbox opens, holds every acknowledged event not yet delivered, and nothing never tried.
    do {
        let outbox = try SinkOutbox(path: layout.outbox)
        let tried = Set(acks.tried("outbox").compactMap(Int.init))
        var seen: [Int: Int64] = [:]
        let top = (acks.outboxSequence.values.max() ?? 0) + 64
        for sequence in Int64(1)...max(1, top) {
            guard let event = try outbox.event(sequence) else { continue }
            guard case .object(let fields) = event.message, let n = fields["n"]?.numberValue.map({ Int($0) }) else {
                check.expect(false, "outbox event \(sequence) is not one the workload wrote: \(event.message)")
                continue
            }
            check.expect(tried.contains(n), "outbox event \(sequence) (n=\(n)) was never written")
            check.expect(event.message == message(n), "outbox event \(sequence) (n=\(n)) has other contents")
            check.expect(seen[n] == nil, "event n=\(n) is in the outbox twice (\(seen[n] ?? 0), \(sequence))")
            if let acked = acks.outboxSequence[n] {
                check.expect(acked == sequence, "event n=\(n) was acknowledged as \(acked) but is \(sequence)")
            }
            seen[n] = sequence
        }
        for (n, sequence) in acks.outboxSequence where !acks.delivered.contains(sequence) {
            check.expect(seen[n] != nil, "acknowledged event n=\(n) (sequence \(sequence)) is lost")
        }
    } catch {
        check.expect(false, "the outbox does not open: \(error)")
    }

    // `current` names one whole version.
    let folder = layout.instance
    let keys = arguments.archives.compactMap { try? sha256($0) }
    if let key = folder.currentKey() {
        if let allowed = acks.allowed("deploy") {
            check.expect(allowed.contains(key), "current names \(key.prefix(12)) but \(allowed) were possible")
        }
        if let index = keys.firstIndex(of: key), index < arguments.references.count {
            let difference = sameTree(folder.version(key), arguments.references[index])
            check.expect(difference == nil, "current's version \(key.prefix(12)) is not whole: \(difference ?? "")")
        } else {
            check.expect(false, "current names \(key), which is no archive's version")
        }
    } else {
        check.expect(!acks.everAcked("deploy"), "current names no version after a switch was acknowledged")
    }

    // The artifact cache holds only verified files, and a fetch after the cut completes.
    let cache = layout.cache
    let names = (try? FileManager.default.contentsOfDirectory(atPath: cache.folder.path)) ?? []
    for name in names where !name.hasSuffix(".partial") && !name.hasPrefix(".") {
        let actual = (try? sha256(cache.file(name))) ?? "unreadable"
        check.expect(actual == name, "the cached artifact \(name.prefix(12)) holds other bytes (\(actual.prefix(12)))")
    }
    do {
        let key = try sha256(arguments.artifact)
        let file = try await cache.fetch(
            key: key, source: FileSource(file: arguments.artifact), policy: DownloadPolicy(attempts: 1),
            logger: Logger(label: "power-cut-check"))
        check.expect((try? sha256(file)) == key, "a fetch after the cut gave other bytes")
    } catch {
        check.expect(false, "a fetch after the cut failed: \(error)")
    }

    // The identity loads whole: its key matches its certificate, and it is the last renewal (or a later try).
    do {
        if let identity = try DeviceIdentity.load(from: layout.identity) {
            let key = try P256.Signing.PrivateKey(pemRepresentation: identity.keyPEM)
            let certificate = try Certificate(pemEncoded: identity.certificatePEM)
            check.expect(
                certificate.publicKey == Certificate.PublicKey(key.publicKey),
                "the identity's key does not match its certificate")
            if let allowed = acks.allowed("renew") {
                let print = try DeviceIdentity.fingerprint(pem: identity.certificatePEM)
                check.expect(allowed.contains(print), "the identity is \(print.prefix(12)), not the last renewal")
            }
        } else {
            check.expect(!acks.everAcked("renew"), "the identity is gone after a renewal was acknowledged")
        }
    } catch {
        check.expect(false, "the identity does not load: \(error)")
    }

    // The state files hold the last value acknowledged (or a later try).
    for (kind, file) in [("state", layout.state), ("naive", layout.naiveState)] {
        guard let allowed = acks.allowed(kind) else { continue }
        let data = FileManager.default.contents(atPath: file.path) ?? Data()
        let value = (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["value"] as? Int
        check.expect(
            value.map { allowed.contains(String($0)) } ?? false,
            "\(file.lastPathComponent) (\(kind)) holds \(value.map(String.init) ?? "no value (\(data.count) bytes)"), not the last acknowledged value"
        )
    }
    return check
}

let arguments = Arguments(CommandLine.arguments)
if arguments.command == "run" {
    do {
        try await run(arguments)
    } catch {
        FileHandle.standardError.write(Data("power-cut-workload: \(error)\n".utf8))
        exit(1)
    }
} else {
    let result = await check(arguments)
    let line: [String: Any] = ["invariants": result.invariants, "failures": result.failures]
    let data = try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
    exit(result.failures.isEmpty ? 0 : 1)
}
