import Foundation
import Testing
import VantageAPI
import VantageServer

/// The outputs documents libFuzzer crashed the outputs parser with (Tests/FuzzCorpus/outputs), sent as an
/// instance's outputs through the API: the control plane checks them with that parser, so before the fix one
/// request from any operator trapped the whole server. Now each is a 400 naming the field, nothing is stored, and the
/// server goes on answering.
@Suite("Fuzz regressions: instance outputs on the control plane")
struct InstanceOutputsFuzzRegressionTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("FuzzCorpus/outputs", isDirectory: true)

    @Test(
        "libFuzzer's crashing outputs documents are refused with 400, on create and on update",
        arguments: Engine.allCases)
    func crashersRefused(engine: Engine) async throws {
        try await APIHarness.run(on: engine) { api in
            let v1 = InstanceOutputsTests.v1
            let fleet = try await InstanceOutputsTests.fleet(api)
            let good = try InstanceOutputsTests.document(InstanceOutputsTests.siteOutputs)
            let created = try await api.call(
                .post, "\(v1)/instances", as: api.ops, json: fleet.instance("dock-watch", outputs: good))
            #expect(created.status == 201, "\(created)")
            let id = try created.decode(ApplicationInstance.self).id
            for (file, path) in [
                ("crash-class-id-1e70", "outputs.analytics[0].classes[1]"),
                ("crash-size-1e192GB", "outputs.events.maxSize"),
            ] {
                let text = try String(contentsOf: Self.corpus.appendingPathComponent(file), encoding: .utf8)
                let outputs = try InstanceOutputsTests.document(text)
                try await APIValidationTests.expectRefused(
                    api, .post, "\(v1)/instances", as: api.ops, json: fleet.instance("crash", outputs: outputs),
                    status: 400, mentioning: [path])
                try await APIValidationTests.expectRefused(
                    api, .patch, "\(v1)/instances/\(id)", as: api.ops, json: InstanceUpdate(outputs: outputs),
                    status: 400, mentioning: [path])
            }
            // Still serving, with the instance's document unchanged.
            #expect(try await api.store.instance(id).outputs == good)
            #expect(try await api.call(.get, "\(v1)/instances/\(id)", as: api.viewer).status == 200)
        }
    }
}
