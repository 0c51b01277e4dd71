// Issue 17, faults 3 (scenarios 11 and 13 of the reliability reference): the agent's link to the server flaps, and
// stays down for a long time. A real `vantage server`, a real `vantage agent` running the people counter (real
// inference on the sample video), and scripts/outage-proxy between the two, which cuts every connection while its
// file exists and logs each connection it accepts. What the outbox recorded is compared with what the server stored:
// by the device's event id, once each, in the outbox's order.
import Foundation
import Testing
import VantageAPI
import VantageAgent
import VantageCore
import VantageOutputs

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

@Suite("a flapping link and a long outage between agent and server", .serialized)
struct FlappingLinkEndToEndTests {
    /// The agent's reconnect policy in these tests: `--max-backoff-seconds` (the Fleet's is 2).
    static let maxBackoff = 4.0
    /// The flapping test's heartbeat interval.
    static let heartbeat = 20.0

    @Test(
        "a link toggled every 2-5 s: every event the outbox recorded is stored once, in order per camera; during a long cut the agent retries no faster than its backoff and never gives up"
    )
    func flappingLink() async throws {
        let seed =
            ProcessInfo.processInfo.environment["VANTAGE_SOAK_SEED"].flatMap(UInt64.init)
            ?? UInt64(Date().timeIntervalSince1970 * 1000)
        print("flapping link: seed \(seed) (VANTAGE_SOAK_SEED=\(seed) repeats the toggles)")
        var random = SplitMix64(seed: seed)
        let flapFor = Soak.seconds ?? 40

        let fleet = try await Fleet.start()
        defer { fleet.stop() }
        let link = try await OutageLink.start(in: fleet)
        defer { link.stop() }
        // The reference of what the outbox recorded, and in which order: a webhook sink of the same instance, not
        // behind the proxy. A sink delivers in the outbox's order; a resent delivery is logged again (kept first).
        let hook = try await WebhookLog.start(in: fleet)
        defer { hook.stop() }

        let name = "edge-flap"
        // Heartbeats (a fixed interval, not a retry) are made rare, so that the connections during the long cut
        // are the retries of the loops that back off.
        let (device, agent) = try await fleet.enrollAgent(
            name, extra: link.agentArguments + ["--heartbeat-seconds", "\(Int(Self.heartbeat))"])
        defer { agent.stop() }
        let outputs: JSONValue = .object([
            "sinks": .object([
                "hook": .object(["type": .string("webhook"), "url": .string(hook.url)])
            ])
        ])
        let instance = try await fleet.deployPeopleCounter(on: device, version: "1.0", outputs: outputs)
        try await fleet.waitForDeployment(instance, version: "1.0", agent: agent)
        try await fleet.waitUntil("events reach the server and the webhook", timeout: .seconds(90)) {
            try await fleet.events(device: device).count >= 1 && hook.deliveries().count >= 1
        }

        // Flap: down and up in turn, each for 2-5 s.
        let outboxes = fleet.agentFolder(name).appending(path: "outbox")
        let flapStart = ContinuousClock.now
        var toggles = 0
        var down = false
        while ContinuousClock.now - flapStart < .seconds(flapFor) {
            down.toggle()
            link.set(down: down)
            toggles += 1
            try await Task.sleep(for: .milliseconds(Int.random(in: 2000...5000, using: &random)))
        }
        link.set(down: false)
        let flappedEvents = try InstanceEvents.totals(in: outboxes).recordedEvents

        // A long cut: the agent's connection attempts at the proxy, measured.
        let cut = Soak.isOn ? max(60, Self.maxBackoff * 8) : Self.maxBackoff * 4
        link.set(down: true)
        let cutStart = Date()
        try await Task.sleep(for: .seconds(cut))
        let cutEnd = Date()
        link.set(down: false)
        let attempts = link.connections(from: cutStart, to: cutEnd)

        // Heal, stop the instance's events (removed: its outbox drains, then goes) and compare.
        _ = try await fleet.client.removeInstance(instance)
        let drainStart = ContinuousClock.now
        do {
            try await fleet.waitUntil("the instance is removed and its outbox drained", timeout: .seconds(180)) {
                let removed = try await fleet.client.instance(instance).status == .removalSucceeded
                return try removed && InstanceEvents.totals(in: outboxes).pendingEvents == 0
            }
        } catch {
            throw APITestError("\(error)\nagent:\n\(agent.output.suffix(3000))")
        }
        let drain = ContinuousClock.now - drainStart
        let counters = try InstanceEvents.totals(in: outboxes)
        let stored = try await fleet.events(device: device)
        let recorded = hook.recordedOrder()

        var failures = 0
        func check(_ ok: Bool, _ message: @autoclosure () -> String) {
            if !ok { failures += 1 }
            #expect(ok, "\(message())")
        }
        let storedIDs = stored.compactMap(\.deviceEventId)
        let counts = Dictionary(storedIDs.map { ($0, 1) }, uniquingKeysWith: +)
        check(counters.droppedEvents == 0, "no event dropped: \(counters)")
        check(storedIDs.count == stored.count, "every stored event has the device's id")
        check(
            counts.values.allSatisfy { $0 == 1 },
            "events stored twice: \(counts.filter { $0.value > 1 }.keys.prefix(5))")
        check(
            Int64(counts.count) == counters.recordedEvents,
            "the server has every recorded event: \(counts.count) stored, \(counters.recordedEvents) recorded")
        check(
            Set(counts.keys) == Set(recorded.map(\.id)),
            "the server's events are the webhook's: missing \(Set(recorded.map(\.id)).subtracting(counts.keys).prefix(5)), extra \(Set(counts.keys).subtracting(recorded.map(\.id)).prefix(5))"
        )
        let disorder = OrderCheck.outOfOrder(stored: stored, recorded: recorded)
        check(disorder.isEmpty, "stored out of the outbox's order per camera: \(disorder.prefix(3))")

        // Retry spacing. Each loop that calls the server and backs off (desired state, logs, the control-plane
        // sink, reports) waits at least 0.75 × its doubling pause between tries (1 s, 2 s, … up to
        // --max-backoff-seconds); heartbeats keep their interval. The HTTP client may open a second connection
        // within one try; the bound allows for that, and is still far below what a loop without backoff makes
        // (hundreds).
        let tries =
            RetryPolicy.maxAttempts(during: cut, loops: 4, maxBackoff: Self.maxBackoff) + Int(cut / Self.heartbeat) + 1
        let allowed = tries * RetryPolicy.connectionsPerTry
        // Never giving up: the backoff loops still try in the cut's last stretch. Not only a capped pause long: a try
        // whose connection the cut holds open waits for its request timeout first (gaps of 10.6 s were seen in a
        // 60 s cut), so the stretch is at least 12 s.
        let stretch = max(Self.maxBackoff * 1.25 + 1, 12)
        let lastStretch = attempts.filter { $0 > cutEnd.timeIntervalSince1970 - stretch }
        check(
            attempts.count <= allowed,
            "\(attempts.count) connection attempts during a \(Int(cut)) s cut: faster than the backoff allows (\(allowed))"
        )
        check(
            lastStretch.count >= 1,
            "the agent stopped trying before the cut ended: \(lastStretch.count) attempts in its last \(stretch) s"
        )
        let gaps = zip(attempts.dropFirst(), attempts).map { $0 - $1 }
        print(
            "flapping link: \(toggles) toggles in \(Int(flapFor)) s, \(flappedEvents) events by then, \(counters.recordedEvents) in all; "
                + "cut \(Int(cut)) s: \(attempts.count) connection attempts (bound \(allowed)), longest gap \(String(format: "%.1f", gaps.max() ?? 0)) s; "
                + "drained in \(String(format: "%.1f", drain.seconds)) s after the heal")
        Soak.record(
            fault: "flapping agent-server link", runs: 1, faults: toggles + 1, invariants: 7, failures: failures,
            note:
                "seed \(seed); \(counters.recordedEvents) events stored once, in order; \(attempts.count) connects in a \(Int(cut)) s cut (bound \(allowed)); drained \(String(format: "%.1f", drain.seconds)) s after the heal"
        )
    }

    @Test(
        "a long outage's backlog (compressed: thousands of events in the outbox) drains completely after the heal, each event stored once and in order; the drain rate is measured"
    )
    func longOutageDrains() async throws {
        let backlog = Soak.isOn ? 10_000 : 600
        let fleet = try await Fleet.start()
        defer { fleet.stop() }
        let link = try await OutageLink.start(in: fleet)
        defer { link.stop() }
        let name = "edge-outage"
        let (device, agent) = try await fleet.enrollAgent(name, extra: link.agentArguments)
        var running = agent
        defer { running.stop() }
        let instance = try await fleet.deployPeopleCounter(on: device, version: "1.0")
        try await fleet.waitForDeployment(instance, version: "1.0", agent: agent)
        let info = try await fleet.client.instance(instance)

        // The link goes down and stays down. The hours of an outage are compressed: with the agent stopped, the
        // backlog such an outage leaves is written into the instance's outbox (through the outbox's own code),
        // events of its camera one after another, as the runtime records them; then the agent starts again, cut off.
        link.set(down: true)
        agent.stop()
        let outboxFile = fleet.agentFolder(name).appending(path: "outbox/\(instance).sqlite")
        let context = EventContext(device: name, instance: info.name, application: "people-counter")
        var written: [String] = []
        do {
            let outbox = try SinkOutbox(path: outboxFile.path)
            let start = Date().addingTimeInterval(-Double(backlog) / 10)
            for i in 0..<backlog {
                let event = OutgoingEvent(
                    type: "backlog", time: start.addingTimeInterval(Double(i) / 10), camera: "camera_node",
                    source: "node:code_node", payload: .object(["n": .number(Double(i))]))
                try outbox.add(
                    message: event.message(context: context), snapshotFile: nil, clipPending: false, objectSinks: [],
                    deliveries: [(sink: "@control-plane", part: .message)])
                written.append(event.id)
            }
        }
        running = try fleet.startAgent(name, extra: ["--max-backoff-seconds", "\(Int(Self.maxBackoff))"])
        try await Task.sleep(for: .seconds(Soak.isOn ? 30 : 8))
        let outboxes = fleet.agentFolder(name).appending(path: "outbox")
        let before = try InstanceEvents.totals(in: outboxes)

        // Heal: the backlog drains, oldest first, while the instance keeps recording.
        link.set(down: false)
        let healed = ContinuousClock.now
        do {
            try await fleet.waitUntil("the backlog drains", timeout: .seconds(Soak.isOn ? 1200 : 300)) {
                try InstanceEvents.totals(in: outboxes).pendingEvents <= 3
            }
        } catch {
            throw APITestError("\(error)\nagent:\n\(running.output.suffix(3000))")
        }
        let drain = ContinuousClock.now - healed
        let rate = Double(before.pendingEvents) / max(drain.seconds, 0.001)

        var failures = 0
        func check(_ ok: Bool, _ message: @autoclosure () -> String) {
            if !ok { failures += 1 }
            #expect(ok, "\(message())")
        }
        let stored = try await fleet.events(device: device)
        let ids = stored.compactMap(\.deviceEventId)
        let counts = Dictionary(ids.map { ($0, 1) }, uniquingKeysWith: +)
        check(
            counts.values.allSatisfy { $0 == 1 },
            "events stored twice: \(counts.filter { $0.value > 1 }.keys.prefix(5))")
        let missing = written.filter { counts[$0] == nil }
        check(missing.isEmpty, "\(missing.count) of the \(backlog) backlog events are not on the server")
        // In order: the backlog's events arrived in the order they were recorded.
        let index = Dictionary(uniqueKeysWithValues: written.enumerated().map { ($1, $0) })
        let arrivals = stored.filter { $0.deviceEventId.map { index[$0] != nil } ?? false }
        let disorder = OrderCheck.outOfOrder(
            stored: arrivals, recorded: written.map { (id: $0, camera: "camera_node") })
        check(disorder.isEmpty, "the backlog was stored out of order: \(disorder.prefix(3))")
        check(
            arrivals.allSatisfy { $0.cameraId == info.cameras["camera_node"] && $0.instanceId == instance },
            "the backlog's events name the instance and its camera")
        check(try InstanceEvents.totals(in: outboxes).droppedEvents == 0, "no event dropped")

        let note =
            "\(before.pendingEvents) events pending at the heal drained in \(String(format: "%.1f", drain.seconds)) s: "
            + "\(String(format: "%.0f", rate)) events/s, up to 100 events per request (one per request drained "
            + "15-16 events/s)"
        print("long outage: \(note)")
        Soak.record(
            fault: "long agent-server outage (backlog)", runs: 1, faults: 1, invariants: 5, failures: failures,
            note: note)
    }
}

/// scripts/outage-proxy in front of the fleet's device endpoint, logging every connection it accepts.
final class OutageLink: Sendable {
    let proxy: ServerProcess
    let port: Int
    let downFile: URL
    let logFile: URL

    private init(proxy: ServerProcess, port: Int, downFile: URL, logFile: URL) {
        self.proxy = proxy
        self.port = port
        self.downFile = downFile
        self.logFile = logFile
    }

    static func start(in fleet: Fleet) async throws -> OutageLink {
        let port = try closedPort()
        let downFile = fleet.folder.appending(path: "link-down")
        let logFile = fleet.folder.appending(path: "link-connections.log")
        let proxy = try ServerProcess(
            SourceTree.root.appending(path: "scripts/outage-proxy"),
            [
                "--listen", "127.0.0.1:\(port)", "--target", "127.0.0.1:\(fleet.devicePort)", "--down-while",
                downFile.path, "--log", logFile.path,
            ], name: "outage proxy")
        let link = OutageLink(proxy: proxy, port: port, downFile: downFile, logFile: logFile)
        try await fleet.waitUntil("the outage proxy listens", timeout: .seconds(30)) {
            proxy.output.contains("listening on")
        }
        return link
    }

    /// Enrolls the agent with the proxy as its server (the last `--server` counts).
    var agentArguments: [String] {
        [
            "--server", "https://127.0.0.1:\(port)", "--max-backoff-seconds",
            "\(Int(FlappingLinkEndToEndTests.maxBackoff))",
        ]
    }

    func set(down: Bool) {
        if down {
            FileManager.default.createFile(atPath: downFile.path, contents: Data())
        } else {
            try? FileManager.default.removeItem(at: downFile)
        }
    }

    /// The times (Unix seconds) of the connections accepted within the interval.
    func connections(from start: Date, to end: Date) -> [Double] {
        let text = (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            line.split(separator: " ").first.flatMap { Double($0) }
        }.filter { $0 >= start.timeIntervalSince1970 && $0 <= end.timeIntervalSince1970 }
    }

    func stop() { proxy.stop() }
}

/// scripts/webhook-receiver, logging every delivery (no signature: the order is what counts here).
final class WebhookLog: Sendable {
    let receiver: ServerProcess
    let url: String
    let log: URL

    private init(receiver: ServerProcess, url: String, log: URL) {
        self.receiver = receiver
        self.url = url
        self.log = log
    }

    static func start(in fleet: Fleet) async throws -> WebhookLog {
        let port = try closedPort()
        let log = fleet.folder.appending(path: "webhook-\(port).jsonl")
        let receiver = try ServerProcess(
            SourceTree.root.appending(path: "scripts/webhook-receiver"), ["--port", "\(port)", "--log", log.path],
            name: "webhook receiver")
        try await fleet.waitUntil("the webhook receiver listens", timeout: .seconds(30)) {
            receiver.output.contains("listening on")
        }
        return WebhookLog(receiver: receiver, url: "http://127.0.0.1:\(port)/hook", log: log)
    }

    /// Every delivery's message, in arrival order (a resent one again).
    func deliveries() -> [[String: JSONValue]] {
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            guard case .object(let entry)? = try? APIJSON.decoder().decode(JSONValue.self, from: Data(line.utf8)),
                case .object(let body)? = entry["body"]
            else { return nil }
            return body
        }
    }

    /// The events in the outbox's order, each once, named as the control plane stores them (`deviceEventId`: the
    /// id, with the phase and time for an object event's phase).
    func recordedOrder() -> [(id: String, camera: String)] {
        var seen: Set<String> = []
        var order: [(id: String, camera: String)] = []
        for message in deliveries() {
            guard let id = message["id"]?.stringValue else { continue }
            let key =
                message["phase"]?.stringValue.map { "\(id)/\($0)/\(message["time"]?.stringValue ?? "")" } ?? id
            if seen.insert(key).inserted { order.append((key, message["camera"]?.stringValue ?? "")) }
        }
        return order
    }

    func stop() { receiver.stop() }
}

enum OrderCheck {
    /// Pairs of events of one camera that the server received in the other order than the outbox recorded them (by
    /// `receivedAt`; events received within the same millisecond are not ordered).
    static func outOfOrder(stored: [Event], recorded: [(id: String, camera: String)]) -> [String] {
        let index = Dictionary(recorded.enumerated().map { ($1.id, $0) }) { first, _ in first }
        let camera = Dictionary(recorded.map { ($0.id, $0.camera) }) { first, _ in first }
        var byCamera: [String: [(received: Date, index: Int, id: String)]] = [:]
        for event in stored {
            guard let id = event.deviceEventId, let i = index[id] else { continue }
            byCamera[camera[id] ?? "", default: []].append((event.receivedAt, i, id))
        }
        var problems: [String] = []
        for (cam, events) in byCamera {
            let sorted = events.sorted { $0.received < $1.received }
            var earlierMax = -1
            var start = 0
            while start < sorted.count {
                var end = start
                while end + 1 < sorted.count
                    && abs(sorted[end + 1].received.timeIntervalSince(sorted[start].received)) < 0.001
                {
                    end += 1
                }
                let group = sorted[start...end]
                if let low = group.min(by: { $0.index < $1.index }), low.index < earlierMax {
                    problems.append("\(cam): \(low.id) (recorded #\(low.index)) arrived after #\(earlierMax)")
                }
                earlierMax = max(earlierMax, group.map(\.index).max() ?? -1)
                start = end + 1
            }
        }
        return problems
    }
}

enum RetryPolicy {
    /// Connections the HTTP client may open for one try while the server's end is cut (its connect retries).
    static let connectionsPerTry = 2

    /// The most tries one loop that backs off (doubling from 1 s to `maxBackoff`, each pause at least 0.75 of its
    /// step) can make during `seconds`, summed over `loops`.
    static func maxAttempts(during seconds: Double, loops: Int, maxBackoff: Double) -> Int {
        var tries = 1
        var elapsed = 0.0
        var step = 1.0
        while true {
            elapsed += step * 0.75
            if elapsed > seconds { break }
            tries += 1
            step = min(step * 2, maxBackoff)
        }
        return tries * loops
    }
}

/// A small seeded generator, so a randomized run can be repeated.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
