import Foundation
import Testing

@testable import VantageApp

/// A parameter's `constraintRegex` must never stall whoever checks a value (the control plane on the request path,
/// `vantage run` at start): patterns that backtrack exponentially are refused when the manifest is loaded, and the
/// matcher's time is linear in the value whatever the pattern.
@Suite("Constraint patterns")
struct ConstraintPatternTests {
    // Guards: the matcher answers what Swift's Regex (the previous matcher) answered for ordinary patterns, so
    // existing manifests keep accepting and refusing the same values.
    @Test(
        "ordinary patterns match as Swift Regex's wholeMatch does",
        arguments: [
            "^(0(\\.[0-9]+)?|1(\\.0+)?)$", "^[0-9]+$", "^[A-Za-z_][A-Za-z0-9_-]{0,31}$", "^(low|medium|high)$",
            "^(\\d{1,3}\\.){3}\\d{1,3}$", "^https?://[^\\s/]+(/[^\\s]*)?$", "\\w+@\\w+\\.com",
            "^\\s*-?\\d+(\\.\\d*)?\\s*$",
            "^[^,]*$", "colou?r", "^a{2,4}b{0,}c+$", "^(?:ab|cd)e$", "^(?<word>[a-z]+)$", "^\\bword\\b$", "^x\\.y$",
            "^[\\x41-\\x43]+$", "^\\u00e9t\\u{e9}$", "^[a\\-z]+$", "^.{3}$", "^(a|)$", "^$",
        ])
    func matchesLikeSwiftRegex(pattern: String) throws {
        let ours = try ConstraintPattern.checked(pattern)
        let theirs = try Regex(pattern)
        let values = [
            "", "0", "0.5", "1", "1.0", "1.5", "2", "abc", "ABC_12", "_x", "9x", "low", "medium", "hig", "10.0.0.1",
            "256.1.1.1.1", "https://example.com/a", "http://x", "ftp://x", "me@host.com", " -12.5 ", "a,b", "color",
            "colour", "aab", "aaaab", "aabbbccc", "abe", "cde", "ace", "word", "x.y", "xzy", "ABC", "ABD", "été",
            "]a]", "a-z", "b", "abc\n", "a",
        ]
        for value in values {
            let expected = (try? theirs.wholeMatch(in: value)) != nil
            #expect(ours.matches(value) == expected, "\(pattern) against \(value.debugDescription)")
        }
    }

    // Guards: the patterns the issue names (and the exact one that froze the server) are refused when a manifest is
    // read, with a message that says what to write instead — before any value is ever checked.
    @Test(
        "patterns that backtrack exponentially are refused",
        arguments: ["^(a+)+$", "^(a|a)*$", "(a*)*b", "^(.*a){20}$", "^((a+)+|model_node)$", "^([a-z]+,)*$", "(a?)*"])
    func hazardsRefused(pattern: String) {
        #expect(throws: ConstraintPatternError.self) { try ConstraintPattern.checked(pattern) }
    }

    // Guards: what the matcher cannot do (backreferences, lookaround, …) is refused by name, not run differently.
    @Test(
        "unsupported syntax is refused with what to write instead",
        arguments: [
            ("^(a)\\1$", "backreferences"), ("^(?=a)a$", "lookaround"), ("^(?i)a$", "inline options"),
            ("^a++$", "possessive"), ("^\\p{L}+$", "Unicode properties"), ("^(a$", "not closed"),
            ("^[a-z$", "not closed"), ("^a{5,2}$", "counts down"), ("*a", "nothing to repeat"),
            ("^(?>a)$", "atomic"), (String(repeating: "a", count: 2000), "1024"),
            ("^a{1000}b{1000}c{1000}d{1000}e{1000}$", "too large"),
        ])
    func unsupportedSyntax(pattern: String, mention: String) {
        do {
            _ = try ConstraintPattern(pattern)
            Issue.record("\(pattern) was accepted")
        } catch {
            #expect(error.message.contains(mention), "\(error.message)")
        }
    }

    // Guards: even a pattern that slipped in before these checks (a package stored by an older release) is
    // evaluated in linear time: the issue's attack answers at once instead of after minutes.
    @Test("the issue's pattern against its value answers at once")
    func linearTime() throws {
        let pattern = try ConstraintPattern("^((a+)+|model_node)$")
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            #expect(!pattern.matches(String(repeating: "a", count: 32) + "!"))
            #expect(!pattern.matches(String(repeating: "a", count: ConstraintPattern.maxValueLength - 1) + "!"))
            #expect(pattern.matches("model_node"))
            #expect(pattern.matches(String(repeating: "a", count: 500)))
        }
        #expect(elapsed < .seconds(2), "took \(elapsed)")
        let polynomial = try ConstraintPattern(String(repeating: "a*", count: 40) + "b")
        let elapsedPolynomial = clock.measure {
            #expect(!polynomial.matches(String(repeating: "a", count: ConstraintPattern.maxValueLength)))
        }
        #expect(elapsedPolynomial < .seconds(2), "took \(elapsedPolynomial)")
    }

    // Guards: the check behind `vantage run --param` and the control plane names the problem, bounds the value
    // it quotes, and refuses values longer than the matcher takes.
    @Test("constraint violations are short and say why")
    func violations() {
        let decorator = NodeDecorator(constraintText: "a level", constraintRegex: "^(low|high)$")
        #expect(decorator.constraintViolation("low") == nil)
        let long = String(repeating: "x", count: 1000)
        let refused = decorator.constraintViolation(long) ?? ""
        #expect(refused.contains("does not match ^(low|high)$ (a level)"), "\(refused)")
        #expect(refused.count < 200, "\(refused.count) characters")
        let tooLong = decorator.constraintViolation(String(repeating: "l", count: ConstraintPattern.maxValueLength + 1))
        #expect(tooLong?.contains("longer than \(ConstraintPattern.maxValueLength)") == true)
        let broken = NodeDecorator(constraintRegex: "^(a)\\1$").constraintViolation("aa")
        #expect(broken?.contains("backreferences") == true, "\(broken ?? "")")
    }

    // Guards: a manifest holding a hazardous pattern is refused at load (so also at upload), naming the node and
    // the key.
    @Test("a manifest with a hazardous constraintRegex is refused, naming the parameter")
    func manifestRefused() throws {
        var fixture = ProjectFixture.standard
        fixture.replace(
            ProjectFixture.graphPath,
            "{\"name\": \"model_name\", \"interface\": \"string\", \"value\": \"model_node\"}",
            with: """
                {"name": "model_name", "interface": "string", "value": "model_node", "overridable": true,
                 "decorator": {"constraintRegex": "^((a+)+|model_node)$"}}
                """)
        let error = try expectManifestError(
            fixture, code: .invalidValue, file: ProjectFixture.graphPath,
            mentions: ["constraintRegex of node \"model_name\"", "^((a+)+|model_node)$", "repeat"])
        #expect(error?.node == "model_name")
        #expect(error?.key == "constraintRegex")
    }
}
