import Foundation

extension OutputsConfiguration {
    /// Reads an `outputs` object from JSON text (a file given with `--outputs`, or the `outputs` member of a manifest).
    /// `${NAME}` in a sink's settings is replaced by the environment variable NAME (so secrets stay out of files);
    /// a missing variable is an error naming it. With `environment` nil (the control plane checking an instance's
    /// outputs for a device), `${NAME}` is kept as written, and a secret setting must be one.
    public init(
        json: Data, path: String = "outputs", environment: [String: String]? = ProcessInfo.processInfo.environment
    )
        throws(OutputsConfigurationError)
    {
        let object: JSONValue
        do {
            object = try JSONDecoder().decode(JSONValue.self, from: json)
        } catch {
            throw OutputsConfigurationError(path, "is not valid JSON (\(excerpt("\(error)", limit: 200)))")
        }
        try self.init(object: object, path: path, environment: environment)
    }

    /// Reads an `outputs` object already parsed.
    public init(
        object: JSONValue, path: String = "outputs",
        environment: [String: String]? = ProcessInfo.processInfo.environment
    )
        throws(OutputsConfigurationError)
    {
        self.init()
        let root = try Node(object, path).object(
            allowed: ["events", "analytics", "detection", "sinks", "rules", "description"])
        if let events = root["events"] { self.events = try Self.localEvents(events) }
        if let detection = root["detection"] {
            for (model, settings) in try detection.members() {
                let o = try settings.object(allowed: ["detectFps", "motion"])
                var d = Detection()
                if let v = o["detectFps"], !v.isNull { d.detectFps = try v.number(in: 0.1...120) }
                if let v = o["motion"] { d.motion = try Self.motionSettings(v) }
                self.detection[model] = d
            }
        }
        if let analytics = root["analytics"] {
            self.analytics = try analytics.array().map { node throws(OutputsConfigurationError) in
                try Self.analyticsNode(node)
            }
            try Self.unique(self.analytics.map(\.name), at: analytics.path, what: "analytics node")
        }
        if let sinks = root["sinks"] {
            let members = try sinks.members()
            self.sinks = try members.map { name, node throws(OutputsConfigurationError) in
                try Self.sink(name: name, node, environment: environment)
            }
        }
        if let rules = root["rules"] {
            self.rules = try rules.array().enumerated().map { index, node throws(OutputsConfigurationError) in
                try Self.rule(node, index: index)
            }
        }
    }

    /// Checks what only the merged configuration can tell: every sink a rule names exists.
    public func validated() throws(OutputsConfigurationError) -> OutputsConfiguration {
        for rule in rules {
            for name in rule.send where sink(named: name) == nil {
                let known = excerpt(sinks.map(\.name).joined(separator: ", "), limit: 200)
                throw OutputsConfigurationError(
                    "outputs.rules.\(rule.name).send",
                    "names the sink \(quoted(name)), which no outputs document defines (sinks: "
                        + "\(known.isEmpty ? "none" : known)); define it under \"sinks\", e.g. in a file given with "
                        + "--outputs FILE")
            }
        }
        return self
    }

    /// Combines two configurations: `other` (an overrides document or `--outputs`) replaces this one's sinks, rules,
    /// analytics nodes and model nodes' `detection` of the same name, adds new ones, and replaces `events` when it
    /// sets it.
    public func merged(with other: OutputsConfiguration) -> OutputsConfiguration {
        var result = self
        if other.events != LocalEvents() { result.events = other.events }
        result.detection.merge(other.detection) { _, later in later }
        for node in other.analytics {
            if let i = result.analytics.firstIndex(where: { $0.name == node.name }) {
                result.analytics[i] = node
            } else {
                result.analytics.append(node)
            }
        }
        for sink in other.sinks {
            if let i = result.sinks.firstIndex(where: { $0.name == sink.name }) {
                result.sinks[i] = sink
            } else {
                result.sinks.append(sink)
            }
        }
        for rule in other.rules {
            if let i = result.rules.firstIndex(where: { $0.name == rule.name }) {
                result.rules[i] = rule
            } else {
                result.rules.append(rule)
            }
        }
        return result
    }

    // MARK: - Sections

    private static func localEvents(_ node: Node) throws(OutputsConfigurationError) -> LocalEvents {
        let o = try node.object(allowed: ["maxAge", "maxSize", "clips", "snapshotOverlays"])
        var events = LocalEvents()
        if let v = o["maxAge"] { events.maxAge = try v.isNull ? nil : v.duration() }
        if let v = o["maxSize"] { events.maxBytes = try v.isNull ? nil : v.size() }
        if let v = o["snapshotOverlays"] { events.snapshotOverlays = try v.bool() }
        if let clips = o["clips"] {
            let c = try clips.object(allowed: ["preRoll", "postRoll"])
            if let v = c["preRoll"] { events.clipPreRoll = try v.duration(max: 60) }
            if let v = c["postRoll"] { events.clipPostRoll = try v.duration(max: 60) }
        }
        return events
    }

    private static func analyticsNode(_ node: Node) throws(OutputsConfigurationError) -> AnalyticsNode {
        let o = try node.object(
            allowed: [
                "name", "camera", "model", "classes", "minScore", "tracker", "zones", "lines", "objectEvents",
                "detectFps",
                "motion",
            ])
        let name = try o.required("name").identifier()
        var result = AnalyticsNode(
            name: name, camera: try o.required("camera").string(), model: try o.required("model").string())
        if let v = o["classes"] {
            result.classes = try v.array().map { c throws(OutputsConfigurationError) in
                if case .number = c.raw { return String(try c.classID()) }
                return try c.string()
            }
        }
        if let v = o["minScore"] { result.minScore = try v.number(in: 0...1) }
        if let v = o["objectEvents"] { result.objectEvents = try v.bool() }
        if let v = o["detectFps"], !v.isNull { result.detectFps = try v.number(in: 0.1...120) }
        if let v = o["motion"] { result.motion = try motionSettings(v) }
        if let t = o["tracker"] {
            let tc = try t.object(
                allowed: ["highScore", "lowScore", "newTrackScore", "matchIoU", "confirmFrames", "maxLostSeconds"])
            var c = TrackerConfiguration()
            if let v = tc["highScore"] { c.highScore = try v.number(in: 0...1) }
            if let v = tc["lowScore"] { c.lowScore = try v.number(in: 0...1) }
            if let v = tc["newTrackScore"] { c.newTrackScore = try v.number(in: 0...1) }
            if let v = tc["matchIoU"] { c.matchIoU = try v.number(in: 0...1) }
            if let v = tc["confirmFrames"] { c.confirmFrames = Int(try v.number(in: 1...100)) }
            if let v = tc["maxLostSeconds"] { c.maxLostSeconds = try v.duration(max: 600) }
            result.tracker = c
        }
        if let zones = o["zones"] {
            result.zones = try zones.array().map { z throws(OutputsConfigurationError) in
                let zo = try z.object(allowed: ["name", "polygon", "classes", "dwell"])
                let polygon = try zo.required("polygon").array().map { p throws(OutputsConfigurationError) in
                    try p.point()
                }
                guard polygon.count >= 3 else {
                    throw OutputsConfigurationError(
                        memberPath(z.path, "polygon"), "needs at least 3 points, e.g. [[0.1,0.5],[0.5,0.5],[0.5,1]]")
                }
                return Zone(
                    name: try zo.required("name").identifier(), polygon: polygon,
                    classes: try zo["classes"].map { c throws(OutputsConfigurationError) in try c.integers() },
                    dwellSeconds: try zo["dwell"].map { d throws(OutputsConfigurationError) in try d.duration() })
            }
            try unique(result.zones.map(\.name), at: zones.path, what: "zone")
        }
        if let lines = o["lines"] {
            result.lines = try lines.array().map { l throws(OutputsConfigurationError) in
                let lo = try l.object(allowed: ["name", "from", "to", "classes"])
                let from = try lo.required("from").point()
                let to = try lo.required("to").point()
                guard from != to else {
                    throw OutputsConfigurationError(
                        l.path, "\"from\" and \"to\" are the same point: a line needs two")
                }
                return CountingLine(
                    name: try lo.required("name").identifier(), from: from, to: to,
                    classes: try lo["classes"].map { c throws(OutputsConfigurationError) in try c.integers() })
            }
            try unique(result.lines.map(\.name), at: lines.path, what: "line")
        }
        return result
    }

    /// `"motion": true` (the defaults), `false`/`null` (off), or an object of settings.
    private static func motionSettings(_ node: Node) throws(OutputsConfigurationError) -> MotionSettings? {
        if node.isNull { return nil }
        if case .bool(let on) = node.raw { return on ? MotionSettings() : nil }
        let o = try node.object(allowed: ["threshold", "minArea", "backgroundRate", "lightingChange", "masks", "show"])
        var m = MotionSettings()
        if let v = o["threshold"] { m.threshold = try v.number(in: 1...255) }
        if let v = o["minArea"] { m.minArea = try v.number(in: 0...1) }
        if let v = o["backgroundRate"] { m.backgroundRate = try v.number(in: 0.01...1) }
        if let v = o["lightingChange"] { m.lightingChange = try v.number(in: 0.05...1) }
        if let v = o["show"] { m.show = try v.bool() }
        if let masks = o["masks"] {
            m.masks = try masks.array().map { mask throws(OutputsConfigurationError) in
                let polygon = try mask.array().map { p throws(OutputsConfigurationError) in try p.point() }
                guard polygon.count >= 3 else {
                    throw OutputsConfigurationError(
                        mask.path, "a mask is a polygon of at least 3 points, e.g. [[0,0],[0.3,0],[0.3,0.2]]")
                }
                return polygon
            }
        }
        return m
    }

    /// The settings each kind of sink accepts, and which are required.
    static let sinkSettings: [SinkConfiguration.Kind: (allowed: Set<String>, required: [String])] = [
        .mqtt: (
            [
                "url", "topic", "qos", "retain", "username", "password", "caFile", "certFile", "keyFile", "insecure",
                "clientId", "availabilityTopic", "keepAlive",
            ], ["url"]
        ),
        .s3: (
            [
                "endpoint", "region", "bucket", "prefix", "accessKeyId", "secretAccessKey", "sessionToken", "pathStyle",
                "partSize",
            ], ["bucket", "accessKeyId", "secretAccessKey"]
        ),
        .webhook: (["url", "secret", "timeout", "headers"], ["url"]),
    ]

    private static func sink(name: String, _ node: Node, environment: [String: String]?)
        throws(OutputsConfigurationError) -> SinkConfiguration
    {
        guard name.range(of: #"^[A-Za-z0-9_.-]+$"#, options: .regularExpression) != nil else {
            throw OutputsConfigurationError(node.path, "a sink's name uses letters, digits, '_', '.' and '-' only")
        }
        let o = try node.object(allowed: nil)
        let typeName = try o.required("type").string()
        guard let kind = SinkConfiguration.Kind(rawValue: typeName) else {
            throw OutputsConfigurationError(
                memberPath(node.path, "type"), "\(quoted(typeName)) is not a sink type: use mqtt, s3 or webhook")
        }
        let spec = sinkSettings[kind]!
        var settings: [String: SinkConfiguration.SettingValue] = [:]
        for (key, value) in o.members where key != "type" {
            guard spec.allowed.contains(key) else {
                throw OutputsConfigurationError(
                    memberPath(node.path, key),
                    "is not a setting of \(kind.rawValue) sinks (they take: \(spec.allowed.sorted().joined(separator: ", ")))"
                )
            }
            switch value.raw {
            case .string(let s):
                if environment == nil, SinkConfiguration.secretKeys.contains(key), !isReference(s) {
                    throw OutputsConfigurationError(
                        value.path,
                        "is a secret written out: write \"${NAME}\" and set NAME in the environment of `vantage agent` "
                            + "on the device, so the secret never reaches the control plane")
                }
                settings[key] = .string(try expand(s, at: value.path, environment))
            case .bool(let b):
                settings[key] = .bool(b)
            case .number(let n):
                // Shown in logs as a whole number when it is one (Int64): kept to what that holds exactly.
                guard abs(n) <= 1e15 else {
                    throw OutputsConfigurationError(value.path, "must be a number from -10^15 to 10^15")
                }
                settings[key] = .number(n)
            case .object(let dict):
                // Only webhook headers: "Name: value" strings.
                var lines: [String] = []
                for (k, v) in dict.sorted(by: { $0.key < $1.key }) {
                    guard case .string(let s) = v else {
                        throw OutputsConfigurationError(memberPath(value.path, k), "must be text")
                    }
                    if environment == nil, !isReference(s) {
                        throw OutputsConfigurationError(
                            memberPath(value.path, k),
                            "header values may carry credentials: write \"${NAME}\" and set NAME on the device")
                    }
                    lines.append("\(k): \(try expand(s, at: memberPath(value.path, k), environment))")
                }
                settings[key] = .strings(lines)
            case .array(let items) where key == "headers":
                // Webhook headers as "Name: value" strings.
                var lines: [String] = []
                for (i, item) in items.enumerated() {
                    guard case .string(let line) = item, line.contains(":") else {
                        throw OutputsConfigurationError("\(value.path)[\(i)]", "must be \"Name: value\"")
                    }
                    let header = line[line.index(after: line.firstIndex(of: ":")!)...].trimmingCharacters(
                        in: .whitespaces)
                    if environment == nil, !isReference(header) {
                        throw OutputsConfigurationError(
                            "\(value.path)[\(i)]",
                            "header values may carry credentials: write \"${NAME}\" and set NAME on the device")
                    }
                    lines.append(try expand(line, at: "\(value.path)[\(i)]", environment))
                }
                settings[key] = .strings(lines)
            default:
                throw OutputsConfigurationError(value.path, "must be text, a number or true/false")
            }
        }
        for key in spec.required where settings[key] == nil {
            throw OutputsConfigurationError(node.path, "a \(kind.rawValue) sink needs \"\(key)\"")
        }
        if let qos = settings["qos"] {
            guard case .number(let n) = qos, [0, 1, 2].contains(n) else {
                throw OutputsConfigurationError(memberPath(node.path, "qos"), "must be 0, 1 or 2")
            }
        }
        if let timeout = o["timeout"] { settings["timeout"] = .number(try timeout.duration(max: 300)) }
        return SinkConfiguration(name: name, kind: kind, settings: settings)
    }

    private static func rule(_ node: Node, index: Int) throws(OutputsConfigurationError) -> Rule {
        let o = try node.object(allowed: ["name", "when", "send", "snapshot", "clip", "atMostEvery"])
        var rule = Rule(name: try o["name"]?.identifier() ?? "rule\(index + 1)")
        if let when = o["when"] {
            let w = try when.object(allowed: ["type", "camera", "payload"])
            if let t = w["type"] { rule.types = try t.stringOrStrings() }
            if let c = w["camera"] { rule.cameras = try c.stringOrStrings() }
            if let p = w["payload"] { rule.payload = try payloadConditions(p, prefix: []) }
        }
        rule.send = try o.required("send").stringOrStrings()
        if let v = o["snapshot"] { rule.snapshot = try v.bool() }
        if let v = o["clip"] { rule.clip = try v.bool() }
        if let v = o["atMostEvery"] { rule.atMostEvery = try v.duration() }
        return rule
    }

    private static func payloadConditions(_ node: Node, prefix: [String]) throws(OutputsConfigurationError)
        -> [PayloadCondition]
    {
        var result: [PayloadCondition] = []
        for (key, value) in try node.members() {
            let path = prefix + key.split(separator: ".").map(String.init)
            if case .object(let dict) = value.raw {
                let operators = dict.keys.compactMap { PayloadCondition.Operator(rawValue: $0) }
                if operators.count == dict.count {
                    for (op, operand) in dict.sorted(by: { $0.key < $1.key }) {
                        result.append(
                            PayloadCondition(
                                path: path, op: PayloadCondition.Operator(rawValue: op)!, value: operand.jsonText))
                    }
                } else if operators.isEmpty {
                    result += try payloadConditions(value, prefix: path)
                } else {
                    throw OutputsConfigurationError(
                        value.path,
                        "mixes operators and keys: write {\">\": 3} or nested keys, not both (operators: "
                            + PayloadCondition.Operator.allCases.map(\.rawValue).joined(separator: " ") + ")")
                }
            } else {
                result.append(PayloadCondition(path: path, op: .equal, value: value.raw.jsonText))
            }
        }
        return result
    }

    private static func unique(_ names: [String], at path: String, what: String) throws(OutputsConfigurationError) {
        var seen: Set<String> = []
        for name in names where !seen.insert(name).inserted {
            throw OutputsConfigurationError(path, "two \(what)s are named \(quoted(name)): give each its own name")
        }
    }

    /// Replaces `${NAME}` with the environment variable NAME.
    /// Whether `text` is exactly one `${NAME}` reference.
    private static func isReference(_ text: String) -> Bool {
        text.range(of: #"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$"#, options: .regularExpression) != nil
    }

    private static func expand(_ text: String, at path: String, _ environment: [String: String]?)
        throws(OutputsConfigurationError) -> String
    {
        guard let environment else { return text }
        var result = ""
        var rest = Substring(text)
        while let open = rest.range(of: "${") {
            result += rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].firstIndex(of: "}") else {
                throw OutputsConfigurationError(path, "has \"${\" without a closing \"}\"")
            }
            let name = String(rest[open.upperBound..<close])
            guard let value = environment[name] else {
                throw OutputsConfigurationError(
                    path,
                    "refers to the environment variable \(excerpt(name)), which is not set: set it in the environment of "
                        + "`vantage run` or `vantage agent`")
            }
            result += value
            rest = rest[rest.index(after: close)...]
        }
        result += rest
        return result
    }
}

/// A JSON value with the path it was read from, for error messages.
struct Node {
    let raw: JSONValue
    let path: String

    init(_ raw: JSONValue, _ path: String) {
        self.raw = raw
        self.path = path
    }

    var isNull: Bool { raw == .null }

    /// The members of an object in the order of their keys, checking them against `allowed` (nil: any).
    func object(allowed: Set<String>?) throws(OutputsConfigurationError) -> Members {
        guard case .object(let dict) = raw else { throw OutputsConfigurationError(path, "must be an object {…}") }
        if let allowed {
            for key in dict.keys.sorted() where !allowed.contains(key) {
                throw OutputsConfigurationError(
                    memberPath(path, key), "is not known here (known: \(allowed.sorted().joined(separator: ", ")))")
            }
        }
        return Members(members: dict.keys.sorted().map { ($0, Node(dict[$0]!, memberPath(path, $0))) }, path: path)
    }

    func members() throws(OutputsConfigurationError) -> [(String, Node)] { try object(allowed: nil).members }

    func array() throws(OutputsConfigurationError) -> [Node] {
        guard case .array(let list) = raw else { throw OutputsConfigurationError(path, "must be a list […]") }
        return list.enumerated().map { Node($1, itemPath(path, index: $0)) }
    }

    func string() throws(OutputsConfigurationError) -> String {
        guard case .string(let s) = raw, !s.isEmpty else {
            throw OutputsConfigurationError(path, "must be non-empty text")
        }
        return s
    }

    func identifier() throws(OutputsConfigurationError) -> String {
        let s = try string()
        guard s.range(of: #"^[A-Za-z0-9_.-]+$"#, options: .regularExpression) != nil else {
            throw OutputsConfigurationError(path, "\(quoted(s)) may use letters, digits, '_', '.' and '-' only")
        }
        return s
    }

    func stringOrStrings() throws(OutputsConfigurationError) -> [String] {
        if case .string = raw { return [try string()] }
        return try array().map { n throws(OutputsConfigurationError) in try n.string() }
    }

    func bool() throws(OutputsConfigurationError) -> Bool {
        guard case .bool(let b) = raw else { throw OutputsConfigurationError(path, "must be true or false") }
        return b
    }

    func number(in range: ClosedRange<Double>? = nil) throws(OutputsConfigurationError) -> Double {
        guard case .number(let value) = raw else { throw OutputsConfigurationError(path, "must be a number") }
        if let range, !range.contains(value) {
            throw OutputsConfigurationError(path, "must be from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    func integers() throws(OutputsConfigurationError) -> [Int] {
        try array().map { n throws(OutputsConfigurationError) in try n.classID() }
    }

    /// A class id: a whole number a model's output can hold.
    func classID() throws(OutputsConfigurationError) -> Int {
        let value = try number()
        guard let id = Int32(exactly: value), id >= 0 else {
            throw OutputsConfigurationError(path, "a class id is a whole number from 0 to \(Int32.max)")
        }
        return Int(id)
    }

    /// `[x, y]` in fractions of the frame.
    func point() throws(OutputsConfigurationError) -> Point {
        let xy = try array()
        guard xy.count == 2 else {
            throw OutputsConfigurationError(path, "a point is [x, y] in fractions of the frame, e.g. [0.5, 0.25]")
        }
        return Point(x: try xy[0].number(in: 0...1), y: try xy[1].number(in: 0...1))
    }

    /// Seconds: a number, or text with a unit (`500ms`, `30s`, `5m`, `2h`, `7d`).
    func duration(max: Double? = nil) throws(OutputsConfigurationError) -> Double {
        let seconds: Double
        if case .string(let s) = raw {
            let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)]
            guard
                let (suffix, scale) = units.first(where: { s.hasSuffix($0.0) && Double(s.dropLast($0.0.count)) != nil }
                ),
                let n = Double(s.dropLast(suffix.count))
            else {
                throw OutputsConfigurationError(
                    path, "\(quoted(s)) is not a duration: write seconds, or e.g. \"30s\", \"5m\", \"7d\"")
            }
            seconds = n * scale
        } else {
            seconds = try number()
        }
        // "inf" and "nan" read as numbers, and 1e309 is infinite: none is a time the runtime can wait.
        guard seconds.isFinite else { throw OutputsConfigurationError(path, "must be a finite number of seconds") }
        guard seconds >= 0 else { throw OutputsConfigurationError(path, "must not be negative") }
        if let max, seconds > max { throw OutputsConfigurationError(path, "must be at most \(max) seconds") }
        return seconds
    }

    /// Bytes: a number, or text with a unit (`500MB`, `2GB`, `1TB`; powers of 1024).
    func size() throws(OutputsConfigurationError) -> Int64 {
        if case .string(let s) = raw {
            let units: [(String, Double)] = [
                ("KB", 1024), ("MB", 1_048_576), ("GB", 1_073_741_824), ("TB", 1_099_511_627_776), ("B", 1),
            ]
            let upper = s.uppercased()
            guard
                let (suffix, scale) = units.first(where: {
                    upper.hasSuffix($0.0) && Double(upper.dropLast($0.0.count)) != nil
                }),
                let n = Double(upper.dropLast(suffix.count)), n >= 0
            else {
                throw OutputsConfigurationError(
                    path, "\(quoted(s)) is not a size: write bytes, or e.g. \"500MB\", \"2GB\"")
            }
            return try bytes(n * scale)
        }
        let n = try number()
        guard n >= 0 else { throw OutputsConfigurationError(path, "must not be negative") }
        return try bytes(n)
    }

    /// A byte count as Int64; "inf", 1e309 and sizes past 8 EiB are refused rather than trapping in the conversion.
    private func bytes(_ value: Double) throws(OutputsConfigurationError) -> Int64 {
        guard let bytes = Int64(exactly: value.rounded(.down)) else {
            throw OutputsConfigurationError(path, "is too large: write a size under 8 EB, e.g. \"500GB\"")
        }
        return bytes
    }
}

/// An object's members, looked up by key.
struct Members {
    let members: [(String, Node)]
    let path: String
    subscript(key: String) -> Node? { members.first { $0.0 == key }?.1 }
    func required(_ key: String) throws(OutputsConfigurationError) -> Node {
        guard let node = self[key] else { throw OutputsConfigurationError(path, "needs \"\(key)\"") }
        return node
    }
}

// MARK: - Quoting what a document says

/// At most `limit` characters of `text` (and at most 4 bytes a character on average), with "…" when cut: errors
/// quote a document's names and values, never more than a short prefix of them (a 10 MB key must not make a 10 MB
/// error).
func excerpt(_ text: some StringProtocol, limit: Int = 64) -> String {
    var result = ""
    for character in text {
        // Unicode scalars, not characters: one character may carry any number of combining marks.
        guard result.unicodeScalars.count + character.unicodeScalars.count <= limit else { return result + "…" }
        result.append(character)
    }
    return result
}

/// `text` in quotes, cut as ``excerpt(_:limit:)`` cuts it.
func quoted(_ text: some StringProtocol) -> String { "\"\(excerpt(text))\"" }

/// The path of an object member: `outputs.sinks.alerts`. Keys are cut to a short prefix, and a path deeper than
/// a few hundred characters keeps its start and its end.
func memberPath(_ path: String, _ key: some StringProtocol) -> String { bounded(path + "." + excerpt(key)) }

/// The path of a list item: `outputs.rules[2]`.
func itemPath(_ path: String, index: Int) -> String { bounded("\(path)[\(index)]") }

private func bounded(_ path: String) -> String {
    let scalars = path.unicodeScalars
    guard scalars.count > 300 else { return path }
    var result = String(String.UnicodeScalarView(scalars.prefix(120)))
    result += "…"
    result += String(String.UnicodeScalarView(scalars.suffix(160)))
    return result
}
