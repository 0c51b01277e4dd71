import Foundation
import VantageCore

/// An outputs document (`vantage run --outputs FILE`, the `outputs` of graph.json or of an overrides document, an
/// instance's outputs on the control plane), parsed both as `vantage run` does (secrets from the environment) and as
/// the control plane does (no environment: secrets must stay `${NAME}`), then validated and merged.
///
/// Promises checked: no trap or hang; a refusal is an `OutputsConfigurationError` whose text is bounded; every
/// duration and size it accepts is a finite, non-negative number (the runtime turns them into timers, byte counts
/// and clip lengths); every sink can be described for the log.
final class OutputsDocumentTarget: FuzzTarget {
    /// What `${NAME}` may refer to while fuzzing.
    static let environment = ["MQTT_PASSWORD": "secret", "S3_KEY": "AKIAEXAMPLE", "S3_SECRET": "s3cr3t", "EMPTY": ""]

    let dictionary = tokens(
        jsonTokens + [
            "\"events\"", "\"analytics\"", "\"sinks\"", "\"rules\"", "\"description\"", "\"maxAge\"", "\"maxSize\"",
            "\"clips\"", "\"snapshotOverlays\"", "\"preRoll\"", "\"postRoll\"", "\"name\"", "\"camera\"",
            "\"model\"", "\"classes\"", "\"minScore\"", "\"tracker\"", "\"zones\"", "\"lines\"", "\"objectEvents\"",
            "\"highScore\"", "\"lowScore\"", "\"newTrackScore\"", "\"matchIoU\"", "\"confirmFrames\"",
            "\"maxLostSeconds\"", "\"polygon\"", "\"dwell\"", "\"from\"", "\"to\"", "\"type\"", "\"mqtt\"", "\"s3\"",
            "\"webhook\"", "\"url\"", "\"topic\"", "\"qos\"", "\"retain\"", "\"username\"", "\"password\"",
            "\"caFile\"", "\"insecure\"", "\"clientId\"", "\"availabilityTopic\"", "\"keepAlive\"", "\"endpoint\"",
            "\"region\"", "\"bucket\"", "\"prefix\"", "\"accessKeyId\"", "\"secretAccessKey\"", "\"sessionToken\"",
            "\"pathStyle\"", "\"partSize\"", "\"secret\"", "\"timeout\"", "\"headers\"", "\"when\"", "\"send\"",
            "\"snapshot\"", "\"clip\"", "\"atMostEvery\"", "\"payload\"", "\"==\"", "\"!=\"", "\"<=\"", "\">=\"",
            "\"in\"", "\"exists\"", "\"500ms\"", "\"30s\"", "\"5m\"", "\"2h\"", "\"7d\"", "\"500MB\"", "\"2GB\"",
            "\"1TB\"", "\"infs\"", "\"nanKB\"", "\"1e300TB\"", "\"${MQTT_PASSWORD}\"", "\"${MISSING}\"", "${", "}",
            "\"Authorization: Bearer x\"", "[0.1, 0.5]", "[[0,0],[1,0],[1,1]]",
        ])
    let maxInputLength = 64 * 1024

    func run(_ input: [UInt8]) throws(FuzzFinding) {
        let data = Data(input)
        var parsed: [OutputsConfiguration] = []
        for environment in [Self.environment, nil] {
            let result = Result { () throws(OutputsConfigurationError) -> OutputsConfiguration in
                try OutputsConfiguration(json: data, environment: environment)
            }
            switch result {
            case .success(let configuration):
                try check(configuration)
                parsed.append(configuration)
                let validated = Result { () throws(OutputsConfigurationError) in try configuration.validated() }
                if case .failure(let error) = validated {
                    try checkErrorText(error.description, from: "OutputsConfiguration.validated")
                }
            case .failure(let error):
                try checkErrorText(error.description, from: "OutputsConfiguration")
            }
        }
        for configuration in parsed {
            let merged = OutputsConfiguration().merged(with: configuration).merged(with: configuration)
            guard merged.sinks.count == configuration.sinks.count, merged.rules.count <= configuration.rules.count
            else {
                throw FuzzFinding("merging an outputs document into itself changed its sinks or rules")
            }
        }
    }

    /// What the runtime relies on in a parsed configuration.
    private func check(_ configuration: OutputsConfiguration) throws(FuzzFinding) {
        func seconds(_ value: Double?, _ what: String) throws(FuzzFinding) {
            guard let value else { return }
            guard value.isFinite, value >= 0 else { throw FuzzFinding("\(what) was accepted as \(value) seconds") }
        }
        let events = configuration.events
        try seconds(events.maxAge, "events.maxAge")
        try seconds(events.clipPreRoll, "events.clips.preRoll")
        try seconds(events.clipPostRoll, "events.clips.postRoll")
        if let bytes = events.maxBytes, bytes < 0 {
            throw FuzzFinding("events.maxSize was accepted as \(bytes) bytes")
        }
        for node in configuration.analytics {
            try seconds(node.tracker.maxLostSeconds, "tracker.maxLostSeconds")
            for zone in node.zones { try seconds(zone.dwellSeconds, "a zone's dwell") }
        }
        for rule in configuration.rules { try seconds(rule.atMostEvery, "a rule's atMostEvery") }
        for sink in configuration.sinks {
            // What the log prints for the sink; secrets never.
            let shown = sink.description
            for key in SinkConfiguration.secretKeys {
                if let secret = sink.string(key), shown.contains("\(key)=\(secret)") {
                    throw FuzzFinding("sink \(sink.name.prefix(64))'s description shows its \(key)")
                }
            }
            if case .number(let timeout)? = sink.settings["timeout"] { try seconds(timeout, "a sink's timeout") }
        }
    }
}
