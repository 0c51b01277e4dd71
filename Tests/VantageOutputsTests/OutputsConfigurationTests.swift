import Foundation
import Testing
import VantageCore

@testable import VantageOutputs

@Suite("Outputs configuration")
struct OutputsConfigurationTests {
    static let example = """
        {
          "events": {"maxAge": "3d", "maxSize": "500MB", "clips": {"preRoll": 4, "postRoll": "2s"}},
          "analytics": [{"name": "people", "camera": "camera_node", "model": "model_node", "classes": ["person", 3],
                         "zones": [{"name": "dock", "polygon": [[0.1, 0.5], [0.5, 0.5], [0.5, 1]], "dwell": "10s"}],
                         "lines": [{"name": "door", "from": [0, 0.6], "to": [1, 0.6]}]}],
          "sinks": {
            "alerts": {"type": "mqtt", "url": "mqtt://127.0.0.1:1883", "qos": 2, "password": "${MQTT_PASSWORD}"},
            "images": {"type": "s3", "bucket": "defects", "accessKeyId": "AK", "secretAccessKey": "${S3_SECRET}"},
            "hook": {"type": "webhook", "url": "http://127.0.0.1:9/x", "secret": "s3cr3t", "timeout": "5s"}
          },
          "rules": [{"name": "dock", "when": {"type": ["zone.*"], "camera": "camera_node",
                                              "payload": {"zone": "dock", "occupancy": {">=": 2}}},
                     "send": ["alerts", "images"], "clip": true, "atMostEvery": "5m"}]
        }
        """

    @Test("A full document is read: durations, sizes, zones, lines, sinks with ${ENV} secrets, rules")
    func readsEverything() throws {
        let c = try OutputsConfiguration(
            json: Data(Self.example.utf8), environment: ["MQTT_PASSWORD": "pw", "S3_SECRET": "secret"])
        #expect(c.events.maxAge == 259_200, "3 days")
        #expect(c.events.maxBytes == 500 << 20)
        #expect(c.events.clipPreRoll == 4 && c.events.clipPostRoll == 2)
        #expect(c.analytics.first?.classes == ["person", "3"])
        #expect(c.analytics.first?.zones.first?.dwellSeconds == 10)
        #expect(c.analytics.first?.lines.first?.to.y == 0.6)
        #expect(c.sink(named: "alerts")?.string("password") == "pw")
        #expect(c.sink(named: "alerts")?.number("qos") == 2)
        #expect(c.sink(named: "hook")?.number("timeout") == 5)
        let rule = try #require(c.rules.first)
        #expect(rule.types == ["zone.*"] && rule.cameras == ["camera_node"] && rule.clip)
        #expect(rule.atMostEvery == 300)
        #expect(rule.payload.count == 2)
    }

    @Test("Secrets never show in a sink's description")
    func secretsAreRedacted() throws {
        let c = try OutputsConfiguration(
            json: Data(Self.example.utf8), environment: ["MQTT_PASSWORD": "pw-123", "S3_SECRET": "very-secret"])
        let text = c.sinks.map(\.description).joined(separator: " ")
        #expect(!text.contains("pw-123") && !text.contains("very-secret") && !text.contains("s3cr3t"))
        #expect(text.contains("password=<redacted>"))
    }

    @Test("An analytics node's detection rate and motion gating: defaults, settings, and mistakes named")
    func detectionRateAndMotion() throws {
        func node(_ fields: String) throws -> OutputsConfiguration.AnalyticsNode? {
            try OutputsConfiguration(
                json: Data(#"{"analytics": [{"name": "a", "camera": "c", "model": "m"\#(fields)}]}"#.utf8)
            ).analytics.first
        }
        let plain = try #require(try node(""))
        #expect(plain.detectFps == nil && plain.motion == nil, "every frame, no gating, unless asked")
        let on = try #require(try node(#", "detectFps": 5, "motion": true"#))
        #expect(on.detectFps == 5 && on.motion == MotionSettings())
        let tuned = try #require(
            try node(
                #", "motion": {"threshold": 30, "minArea": 0.01, "show": true, "masks": [[[0,0],[0.2,0],[0.2,0.1]]]}"#))
        #expect(tuned.motion?.threshold == 30 && tuned.motion?.minArea == 0.01 && tuned.motion?.show == true)
        #expect(tuned.motion?.masks.first?.count == 3)
        #expect(try node(#", "motion": false"#)?.motion == nil)
        func error(_ fields: String) -> String {
            do {
                _ = try node(fields)
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        #expect(error(#", "detectFps": 0"#).contains("outputs.analytics[0].detectFps"))
        #expect(error(#", "motion": {"threshold": 300}"#).contains("must be from 1.0 to 255.0"))
        #expect(error(#", "motion": {"masks": [[[0,0],[1,1]]]}"#).contains("at least 3 points"))
        #expect(error(#", "motion": {"sensitivity": 3}"#).contains("is not known here"))
    }

    @Test("Mistakes are named with their path and what to write instead")
    func clearErrors() {
        func error(_ json: String, environment: [String: String] = [:]) -> String {
            do {
                _ = try OutputsConfiguration(json: Data(json.utf8), environment: environment)
                return "no error"
            } catch {
                return error.description
            }
        }
        #expect(error(#"{"sinks": {"a": {"type": "kafka"}}}"#).contains("outputs.sinks.a.type"))
        #expect(error(#"{"sinks": {"a": {"type": "kafka"}}}"#).contains("use mqtt, s3 or webhook"))
        #expect(error(#"{"sinks": {"a": {"type": "mqtt"}}}"#).contains("needs \"url\""))
        #expect(error(#"{"sinks": {"a": {"type": "mqtt", "url": "mqtt://h", "qos": 3}}}"#).contains("0, 1 or 2"))
        #expect(error(#"{"sinks": {"a": {"type": "mqtt", "url": "mqtt://h", "colour": 3}}}"#).contains("not a setting"))
        #expect(
            error(#"{"sinks": {"a": {"type": "mqtt", "url": "mqtt://h", "password": "${NOPE}"}}}"#)
                .contains("environment variable NOPE"))
        #expect(error(#"{"rules": [{"send": ["nowhere"]}]}"#) == "no error")  // another document may define it
        let rules = try? OutputsConfiguration(json: Data(#"{"rules": [{"send": ["nowhere"]}]}"#.utf8))
        #expect(throws: OutputsConfigurationError.self) { try rules?.validated() }
        #expect(error(#"{"events": {"maxAge": "soon"}}"#).contains("is not a duration"))
        #expect(error(#"{"events": {"maxSize": "lots"}}"#).contains("is not a size"))
        #expect(
            error(
                #"{"analytics": [{"name": "a", "camera": "c", "model": "m", "zones": [{"name": "z", "polygon": [[0,0],[1,1]]}]}]}"#
            )
            .contains("at least 3 points"))
        #expect(
            error(
                #"{"analytics": [{"name": "a", "camera": "c", "model": "m", "lines": [{"name": "l", "from": [0,2], "to": [1,1]}]}]}"#
            )
            .contains("outputs.analytics[0].lines[0].from[1]"))
        #expect(error(#"{"unknown": 1}"#).contains("outputs.unknown"))
        #expect(error("{not json").contains("not valid JSON"))
    }

    @Test("Checked for a device (no environment here), secrets must be ${NAME} references, kept as written")
    func checkedForADevice() throws {
        let ok = try OutputsConfiguration(
            json: Data(
                #"{"sinks": {"a": {"type": "mqtt", "url": "mqtt://${BROKER}", "password": "${MQTT_PASSWORD}"}}}"#.utf8),
            environment: nil)
        #expect(ok.sink(named: "a")?.string("password") == "${MQTT_PASSWORD}")
        #expect(ok.sink(named: "a")?.string("url") == "mqtt://${BROKER}")
        #expect(throws: OutputsConfigurationError.self) {
            try OutputsConfiguration(
                json: Data(#"{"sinks": {"a": {"type": "webhook", "url": "http://x", "secret": "plain"}}}"#.utf8),
                environment: nil)
        }
    }

    @Test("A later document replaces sinks, rules and analytics of the same name and adds new ones")
    func merging() throws {
        let base = try OutputsConfiguration(
            json: Data(
                #"{"sinks": {"a": {"type": "webhook", "url": "http://x/1"}, "b": {"type": "webhook", "url": "http://x/2"}}}"#
                    .utf8))
        let over = try OutputsConfiguration(
            json: Data(
                #"{"sinks": {"a": {"type": "webhook", "url": "http://y/1"}, "c": {"type": "webhook", "url": "http://y/3"}}}"#
                    .utf8))
        let merged = base.merged(with: over)
        #expect(merged.sinks.map(\.name) == ["a", "b", "c"])
        #expect(merged.sink(named: "a")?.string("url") == "http://y/1")
    }

    @Test("Payload conditions compare numbers, text, lists and presence")
    func payloadConditions() throws {
        let c = try OutputsConfiguration(
            json: Data(
                #"{"sinks": {"s": {"type": "webhook", "url": "http://x"}}, "rules": [{"when": {"payload": {"box.score": {">": 0.5}, "kind": {"in": ["scratch", "dent"]}, "line": {"exists": true}}}, "send": "s"}]}"#
                    .utf8))
        let conditions = try #require(c.rules.first).payload
        func holds(_ payload: String) -> Bool {
            conditions.allSatisfy { $0.holds(for: JSONValue(parsing: payload)!) }
        }
        #expect(holds(#"{"box": {"score": 0.7}, "kind": "dent", "line": "a"}"#))
        #expect(!holds(#"{"box": {"score": 0.4}, "kind": "dent", "line": "a"}"#))
        #expect(!holds(#"{"box": {"score": 0.7}, "kind": "crack", "line": "a"}"#))
        #expect(!holds(#"{"box": {"score": 0.7}, "kind": "dent"}"#))
    }

    @Test("Topic and key templates fill in the event's fields and keep values from adding topic levels")
    func templates() {
        let event = JSONValue(
            parsing:
                #"{"device": "box/1", "camera": "dock", "type": "zone.enter", "time": "2026-11-26T05:00:00Z", "id": "e1"}"#
        )!
        #expect(SinkFactory.expand("vantage/{device}/{camera}/{type}", event: event) == "vantage/box_1/dock/zone.enter")
        #expect(SinkFactory.expand("{date}/{id}.jpg", event: event) == "2026-11-26/e1.jpg")
    }
}
