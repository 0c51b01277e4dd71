import Foundation
import Testing
import VantageCore

/// Inputs the fuzzers found that crashed the outputs document parser, or made it accept a value the runtime
/// cannot use, or echo a whole key in its error. The same parser checks an instance's outputs on the control plane
/// (an operator's API request) and every `vantage run --outputs` and graph.json `outputs`: before the fix, each of
/// these trapped the process that read it (the server, the agent or `vantage run`), or let it through.
@Suite("Fuzz regressions: outputs document")
struct OutputsDocumentRegressionTests {
    /// The parser's answer: the error's text, or nil when it accepted the document.
    func refusal(_ json: String, environment: [String: String]? = [:]) -> String? {
        do {
            let configuration = try OutputsConfiguration(json: Data(json.utf8), environment: environment)
            // What the log prints for each sink (it trapped on a huge whole number).
            _ = configuration.sinks.map(\.description)
            return nil
        } catch {
            return error.description
        }
    }

    /// Tests/FuzzCorpus/outputs, where libFuzzer's crashers are kept.
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("FuzzCorpus/outputs", isDirectory: true)

    @Test(
        "The inputs libFuzzer crashed the parser with are refused, naming the field",
        arguments: [
            ("crash-class-id-1e70", "outputs.analytics[0].classes[1]: a class id is a whole number"),
            ("crash-setting-8e25", "outputs.sinks.imaegs.partSize: must be a number from -10^15 to 10^15"),
            ("crash-size-1e192GB", "outputs.events.maxSize: is too large"),
        ])
    func libFuzzerCrashers(file: String, error expected: String) throws {
        // Guards: each of these trapped the process (Int(_:) on 1.9e70, Int64(_:) in a sink's log description on
        // 8.4e25, Int64(_:) on 1e192 GB): found by `make fuzz` in its first minutes, exact inputs kept.
        let json = try String(contentsOf: Self.corpus.appendingPathComponent(file), encoding: .utf8)
        let error = refusal(json, environment: ["MQTT_PASSWORD": "x", "S3_KEY": "k", "S3_SECRET": "s"])
        #expect(error?.contains(expected) == true, "\(error ?? "accepted")")
    }

    @Test(
        "Sizes past what a byte count holds are refused, not a trap in Int64(_:)",
        arguments: [
            #"{"events": {"maxSize": "1e300TB"}}"#, #"{"events": {"maxSize": "infKB"}}"#,
            #"{"events": {"maxSize": 1e19}}"#, #"{"events": {"maxSize": "9223372036854775807B"}}"#,
            #"{"events": {"maxSize": "8388608TB"}}"#,
        ])
    func hugeSizes(json: String) {
        // Guards: `Int64(n * scale)` trapped for any size of 8 EiB or more, infinity included.
        let error = refusal(json)
        #expect(error?.contains("outputs.events.maxSize: is too large") == true, "\(error ?? "accepted")")
    }

    @Test(
        "Class ids that are not whole numbers an Int32 holds are refused, not a trap in Int(_:)",
        arguments: [
            #"{"analytics": [{"name": "a", "camera": "c", "model": "m", "classes": [1e19]}]}"#,
            #"{"analytics": [{"name": "a", "camera": "c", "model": "m", "classes": [-1]}]}"#,
            #"{"analytics": [{"name": "a", "camera": "c", "model": "m", "classes": [1.5]}]}"#,
            #"{"analytics": [{"name": "a", "camera": "c", "model": "m", "zones": [{"name": "z", "polygon": [[0,0],[1,0],[1,1]], "classes": [1e300]}]}]}"#,
            #"{"analytics": [{"name": "a", "camera": "c", "model": "m", "lines": [{"name": "l", "from": [0,0], "to": [1,1], "classes": [4294967296]}]}]}"#,
        ])
    func classIDs(json: String) {
        // Guards: `String(Int(n))` and `Int(n)` trapped on 1e19; -1 and 1.5 were taken as ids no model has.
        let error = refusal(json)
        #expect(error?.contains("a class id is a whole number from 0 to 2147483647") == true, "\(error ?? "accepted")")
    }

    @Test("Whole-number settings past 10^15 are refused: the sink's description (the log) trapped on them")
    func hugeSettingNumber() {
        // Guards: SinkConfiguration's description prints a whole number through Int64(_:), which trapped on 1e300.
        let json = #"""
            {"sinks": {"images": {"type": "s3", "bucket": "b", "accessKeyId": "k", "secretAccessKey": "s",
                                  "partSize": 1e300}}}
            """#
        let error = refusal(json)
        #expect(error?.contains("outputs.sinks.images.partSize: must be a number from -10^15 to 10^15") == true)
        #expect(refusal(json.replacingOccurrences(of: "1e300", with: "8388608")) == nil, "a real part size")
    }

    @Test(
        "Infinite and not-a-number durations are refused",
        arguments: [
            #"{"events": {"maxAge": "infs"}}"#, #"{"events": {"maxAge": "nand"}}"#,
            #"{"rules": [{"send": "a", "atMostEvery": "infm"}]}"#,
            #"{"analytics": [{"name": "a", "camera": "c", "model": "m", "zones": [{"name": "z", "polygon": [[0,0],[1,0],[1,1]], "dwell": "infh"}]}]}"#,
        ])
    func nonFiniteDurations(json: String) {
        // Guards: Double("inf") read "infs" as an infinite retention, rate limit or dwell time.
        let error = refusal(json)
        #expect(
            error?.contains("must be a finite number of seconds") == true
                || error?.contains("is not a duration") == true,
            "\(error ?? "accepted")")
    }

    @Test("An error quotes a short prefix of a long key, name or value, never the whole of it")
    func errorsStayShort() {
        // Guards: every error quoted keys and values whole (a 1 MB key made a 1 MB error, on the API too).
        let long = String(repeating: "k", count: 1 << 20)
        let cases = [
            #"{"sinks": {"\#(long)": {"type": "mqtt"}}}"#,
            #"{"sinks": {"a": {"type": "\#(long)"}}}"#,
            #"{"events": {"maxAge": "\#(long)"}}"#,
            #"{"events": {"maxSize": "\#(long)"}}"#,
            #"{"\#(long)": 1}"#,
            #"{"analytics": [{"name": "\#(long)!", "camera": "c", "model": "m"}]}"#,
            #"{"sinks": {"a": {"type": "mqtt", "url": "${\#(long)}"}}}"#,
            // One character with a million combining marks is one Character, and still a megabyte.
            #"{"sinks": {"a\#(String(repeating: "\u{301}", count: 1 << 20))": {"type": "mqtt"}}}"#,
        ]
        for json in cases {
            let error = refusal(json)
            #expect(error != nil)
            #expect((error?.utf8.count ?? 0) < 2048, "an error of \(error?.utf8.count ?? 0) bytes")
        }
    }
}
