// VantageFuzz: the bodies of Vantage's fuzz targets, shared by the libFuzzer driver (`make fuzz`, the
// `vantage-fuzz` executable) and by the regression suite `make test` runs (Tests/FuzzRegressionTests).
//
// A target feeds one input to a parser that reads what an application, an operator or the network wrote, and
// checks what the parser promises: it never traps, never hangs, reports bad input as a thrown error whose text is
// bounded, and (where cheap) what it decodes encodes back to the same thing. Parser errors are expected; only a
// broken promise is a ``FuzzFinding``. A trap is a finding too, but it ends the process: libFuzzer saves the input.
//
// docs/fuzzing.md says how to run the targets and what each covers.

import Foundation

/// A promise a parser broke on one input (not a parse error: those are expected).
public struct FuzzFinding: Error, CustomStringConvertible, Sendable {
    /// What was promised and what happened instead.
    public var message: String

    /// Makes a finding.
    public init(_ message: String) { self.message = message }

    /// The message.
    public var description: String { message }
}

/// One fuzz target: a parser and the promises checked on each input.
///
/// A target is used by one thread at a time (libFuzzer calls it in a loop; each test makes its own).
public protocol FuzzTarget: AnyObject {
    /// Runs one input. Returns normally when the parser accepted or refused it as it promises; throws a
    /// ``FuzzFinding`` when a promise broke.
    func run(_ input: [UInt8]) throws(FuzzFinding)

    /// Byte strings worth inserting while mutating inputs (keys, keywords, magic numbers): libFuzzer's `-dict`, and
    /// the seeded mutator's tokens.
    var dictionary: [[UInt8]] { get }

    /// The longest input worth trying (longer ones are cut by the mutators).
    var maxInputLength: Int { get }
}

/// Every fuzz target, by the name `make fuzz`, `vantage-fuzz` and the corpus folders use.
public enum FuzzTargets {
    /// The targets' names, in the order `make fuzz` runs them.
    public static let names = [
        "protocol", "graph", "package", "descriptor", "overrides", "arguments", "outputs",
    ]

    /// One line per target, for `vantage-fuzz --help` and docs/fuzzing.md.
    public static let summaries: [String: String] = [
        "protocol": "app protocol: framed messages from an application through MessageChannel and AppRequestDecoder",
        "graph": "graph.json of a project, loaded and resolved (ApplicationProject.load, resolve)",
        "package": "a code package's package.json, loaded and resolved",
        "descriptor":
            "a model package's descriptor.json (mlModelDescriptor and the vantage block), loaded and resolved",
        "overrides": "a Panorama overrides document (vantage run --overrides), resolved against a project",
        "arguments": "--camera, --param and --model arguments (RunOverrides, CameraURL), resolved against a project",
        "outputs": "an outputs document (vantage run --outputs, instances' outputs), parsed, validated and merged",
    ]

    /// Makes the target called `name`; nil for an unknown name. Targets that need files make a private scratch
    /// folder, removed when the target is released.
    public static func make(_ name: String) throws -> (any FuzzTarget)? {
        switch name {
        case "protocol": return AppProtocolTarget()
        case "graph": return try ProjectFileTarget(file: .graph)
        case "package": return try ProjectFileTarget(file: .codePackage)
        case "descriptor": return try ProjectFileTarget(file: .modelDescriptor)
        case "overrides": return try OverridesDocumentTarget()
        case "arguments": return try RunArgumentsTarget()
        case "outputs": return OutputsDocumentTarget()
        default: return nil
        }
    }
}

/// The longest error text a parser may produce, in UTF-8 bytes. Errors quote at most a short prefix of what they
/// were given (issue 14: a 10 MB key once came back as a 10 MB error body), so their length does not grow with the
/// input; this bound is generous on purpose, it catches only an error that echoes its input whole.
let maxErrorBytes = 16 << 10

/// Checks a parser's error text against ``maxErrorBytes``.
func checkErrorText(_ text: String, from parser: String) throws(FuzzFinding) {
    let bytes = text.utf8.count
    guard bytes <= maxErrorBytes else {
        throw FuzzFinding(
            "\(parser) threw an error of \(bytes) bytes (at most \(maxErrorBytes) allowed): it echoes its input; "
                + "it begins: \(text.prefix(200))")
    }
}

/// The tokens of JSON documents, for the dictionaries of the JSON targets.
let jsonTokens: [String] = [
    "{", "}", "[", "]", ":", ",", "\"", "\\\"", "\\u0000", "\\ud800", "\\u00e9", "true", "false", "null", "-0",
    "1e309", "-1e309", "1e19", "9223372036854775807", "9223372036854775808", "-9223372036854775809",
    "18446744073709551616", "4294967296", "2147483648", "0.5", "1.5e-320", "NaN", "Infinity", "\"\"",
]

/// Byte strings from Swift strings.
func tokens(_ strings: [String]) -> [[UInt8]] { strings.map { Array($0.utf8) } }
