import Foundation
import Testing

@testable import VantageApp

/// A manifest is small: a padded or hostile one must be refused before it costs memory or time, and no error may
/// quote more than a short prefix of what the file holds.
@Suite("Manifest limits")
struct ManifestLimitsTests {
    // Guards: a whitespace-padded graph.json over the limit is refused from its size, without being read (before,
    // the whole file was read and copied: a 1 GiB graph.json took 2.2 GB of memory).
    @Test("a graph.json over the limit is refused unread")
    func paddedGraph() throws {
        var fixture = ProjectFixture.standard
        let graph = fixture.files[ProjectFixture.graphPath]!
        fixture.files[ProjectFixture.graphPath] =
            graph + String(repeating: " ", count: ApplicationProject.maxManifestBytes)
        let project = try TemporaryProject(fixture)
        let clock = ContinuousClock()
        let start = clock.now
        do {
            _ = try project.load()
            Issue.record("a padded graph.json loaded")
        } catch {
            #expect(error.code == .fileTooLarge)
            #expect(error.file == ProjectFixture.graphPath)
            #expect(error.description.contains("larger than 4 MiB"), "\(error)")
        }
        #expect(clock.now - start < .seconds(2))
    }

    // Guards: an unknown key of a megabyte is refused at once (the spelling suggestion took 9 s for 1 MiB and 87 s
    // for 10 MiB), and the error quotes 80 characters of it, not the megabyte.
    @Test("a megabyte-long unknown key is refused at once with a short error")
    func longUnknownKey() throws {
        var fixture = ProjectFixture.standard
        let key = String(repeating: "k", count: 1 << 20)
        fixture.replace(
            ProjectFixture.graphPath, "\"overridable\": true,\n", with: "\"\(key)\": true, \"overridable\": true,\n")
        let project = try TemporaryProject(fixture)
        let clock = ContinuousClock()
        let start = clock.now
        do {
            _ = try project.load()
            Issue.record("an unknown key was accepted")
        } catch {
            #expect(error.code == .unknownKey)
            #expect(error.description.contains("unknown key \"kkkk"), "\(error.description.prefix(300))")
            #expect(error.description.contains("…"))
            #expect(!error.description.contains("did you mean"))
            #expect(error.description.count < 1000, "\(error.description.count) characters")
            #expect((error.key?.count ?? 0) <= ManifestError.excerptLength + 1)
        }
        #expect(clock.now - start < .seconds(2), "took \(clock.now - start)")
    }

    // Guards: a value that is not one of the accepted ones is quoted only in part.
    @Test("a long wrong value is quoted in part")
    func longWrongValue() throws {
        var fixture = ProjectFixture.standard
        fixture.replace(
            ProjectFixture.graphPath,
            "{\"name\": \"code_node\", \"interface\": \"123456789012::code.code_interface\"}",
            with:
                "{\"name\": \"code_node\", \"interface\": \"123456789012::code.code_interface\", \"launch\": \"\(String(repeating: "x", count: 100_000))\"}"
        )
        let project = try TemporaryProject(fixture)
        do {
            _ = try project.load()
            Issue.record("a wrong launch value was accepted")
        } catch {
            #expect(error.code == .invalidValue)
            #expect(error.description.count < 1000, "\(error.description.count) characters")
        }
    }

    // Guards: which archive entries are capped while unpacking: the files the loader reads as manifests and
    // descriptors, not a package's data.
    @Test("manifests and descriptors in an archive are told apart from data")
    func manifestEntries() {
        for path in [
            "app/graphs/app/graph.json", "graphs/app/override.json", "app/packages/x/package.json",
            "app/packages/x/descriptor.json", "app/packages/x/assets/\(String(repeating: "ab", count: 32)).json",
        ] {
            #expect(ApplicationArchive.isManifest(path), "\(path)")
        }
        for path in [
            "app/packages/x/assets/labels.json", "app/packages/x/model.onnx", "app/packages/x/src/graphs/a.json",
        ] {
            #expect(!ApplicationArchive.isManifest(path), "\(path)")
        }
    }
}
