import Foundation
import Testing
import VantageFuzz

/// The fuzz targets' bounded pass in `make test`: every file of the committed corpus (Tests/FuzzCorpus/<target>/:
/// seeds, and every input a fuzzer ever crashed or broke a promise with), then a few thousand seeded mutations of
/// it, through the same target bodies `make fuzz` runs under libFuzzer. Guards the app protocol decoder, the
/// manifest, overrides and outputs parsers against coming back to a crash, a hang or an unbounded error once fixed.
@Suite("Fuzz corpus")
struct FuzzCorpusTests {
    static let corpusRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("FuzzCorpus", isDirectory: true)

    @Test("corpus and seeded mutations keep every promise", arguments: FuzzTargets.names)
    func corpusAndMutations(target name: String) throws {
        let target = try #require(try FuzzTargets.make(name))
        let folder = Self.corpusRoot.appendingPathComponent(name, isDirectory: true)
        let corpus = try FuzzPass.corpus(in: folder)
        #expect(corpus.count >= 3, "Tests/FuzzCorpus/\(name) holds \(corpus.count) files")
        #expect(corpus.allSatisfy { $0.count <= 64 * 1024 }, "corpus files stay small")
        // Fixed seed: the same mutations on every run, so a failure reproduces.
        let summary = FuzzPass.run(target, corpus: corpus, mutations: 3000, seconds: 4, seed: 14)
        for found in summary.findings.prefix(5) {
            let hex = found.input.prefix(256).map { String(format: "%02x", $0) }.joined()
            Issue.record("\(name): \(found.finding) — input (\(found.input.count) bytes) begins \(hex)")
        }
        #expect(summary.findings.isEmpty)
        #expect(summary.mutations >= 500, "only \(summary.mutations) mutations ran in the time allowed")
    }
}
