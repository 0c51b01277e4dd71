import Testing
import VantageApp

/// `vantage run`'s `--camera` and `--param` arguments, as the `arguments` fuzz target feeds them: a malformed one
/// is refused with an error that quotes only the start of it (an argument can be as long as the command line).
@Suite("Fuzz regressions: run arguments")
struct RunArgumentsRegressionTests {
    @Test("A malformed --param or --camera is quoted by its first 64 characters only")
    func longArgumentsAreCut() {
        // Guards: the errors quoted the whole argument (a 100 kB one made a 100 kB error, before the 2,000-character
        // backstop of ManifestError).
        let long = String(repeating: "x", count: 100_000)
        var overrides = RunOverrides()
        #expect {
            try overrides.addParameter(argument: long)
        } throws: { error in
            let text = (error as? ManifestError)?.description ?? ""
            return text.contains("--param \(String(repeating: "x", count: 64))… is not written NAME=VALUE")
                && text.utf8.count < 400
        }
        #expect {
            try overrides.addCamera(argument: "rtsp://admin:secret@cam/" + long)
        } throws: { error in
            let text = (error as? ManifestError)?.description ?? ""
            // Redacted first, then cut: the password never shows, whatever the cut.
            return text.contains("--camera rtsp://***@cam/xxx") && !text.contains("secret") && text.utf8.count < 400
        }
    }
}
