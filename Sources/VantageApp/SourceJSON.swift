import Foundation

// A small JSON reader that keeps what Foundation's decoders drop and good manifest errors need: the line and
// column of every value and key, the order of keys, integers told apart from fractions, and duplicate keys.

/// Where a value or key starts in its file (1-based).
struct SourcePosition: Sendable, Equatable {
    var line: Int
    var column: Int
}

/// A JSON value with the position it starts at.
struct SourceJSON: Sendable {
    enum Kind: Sendable {
        case null
        case bool(Bool)
        /// The number as written, whether it has a fraction or exponent, and its value.
        case number(lexeme: String, isInteger: Bool, value: Double)
        case string(String)
        case array([SourceJSON])
        case object([SourceJSONMember])
    }

    var kind: Kind
    var position: SourcePosition

    /// How the value's type is named in messages: "a string", "a number", ...
    var typeName: String {
        switch kind {
        case .null: "null"
        case .bool: "a boolean"
        case .number(_, let isInteger, _): isInteger ? "a whole number" : "a number"
        case .string: "a string"
        case .array: "a list"
        case .object: "an object"
        }
    }
}

/// One `"key": value` of an object.
struct SourceJSONMember: Sendable {
    var key: String
    var keyPosition: SourcePosition
    var value: SourceJSON
}

/// Why a file is not valid JSON, and where.
struct JSONSyntaxError: Error, Sendable {
    var message: String
    var position: SourcePosition
}

/// Parses RFC 8259 JSON from bytes. Duplicate keys are rejected: a manifest with two values for one key is
/// ambiguous, and Panorama's own tools kept the last one silently.
struct JSONParser {
    private let bytes: [UInt8]
    private var index = 0
    private var line = 1
    private var column = 1

    init(_ data: Data) {
        bytes = Array(data)
        // A UTF-8 byte-order mark is harmless; editors on Windows write one.
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }
    }

    static func parse(_ data: Data) throws(JSONSyntaxError) -> SourceJSON {
        var parser = JSONParser(data)
        parser.skipWhitespace()
        guard parser.index < parser.bytes.count else {
            throw JSONSyntaxError(message: "the file is empty", position: parser.position)
        }
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        if parser.index < parser.bytes.count {
            throw JSONSyntaxError(
                message: "unexpected text after the end of the JSON document", position: parser.position)
        }
        return value
    }

    private var position: SourcePosition { SourcePosition(line: line, column: column) }

    private mutating func advance() {
        let byte = bytes[index]
        index += 1
        if byte == UInt8(ascii: "\n") {
            line += 1
            column = 1
        } else if byte & 0xC0 != 0x80 {
            // Count characters, not bytes: UTF-8 continuation bytes do not move the column.
            column += 1
        }
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"): advance()
            default: return
            }
        }
    }

    private func describeNext() -> String {
        guard index < bytes.count else { return "the end of the file" }
        let byte = bytes[index]
        if byte >= 0x20 && byte < 0x7F { return "'\(Character(UnicodeScalar(byte)))'" }
        return "byte 0x\(String(byte, radix: 16))"
    }

    private mutating func parseValue(depth: Int) throws(JSONSyntaxError) -> SourceJSON {
        guard depth < 512 else { throw JSONSyntaxError(message: "values are nested too deeply", position: position) }
        guard index < bytes.count else {
            throw JSONSyntaxError(message: "expected a value but found the end of the file", position: position)
        }
        let start = position
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth)
        case UInt8(ascii: "["): return try parseArray(depth: depth)
        case UInt8(ascii: "\""): return SourceJSON(kind: .string(try parseString()), position: start)
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return SourceJSON(kind: .bool(true), position: start)
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return SourceJSON(kind: .bool(false), position: start)
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            return SourceJSON(kind: .null, position: start)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return try parseNumber()
        case UInt8(ascii: "'"):
            throw JSONSyntaxError(message: "strings must use double quotes, not single quotes", position: start)
        default:
            throw JSONSyntaxError(message: "expected a value but found \(describeNext())", position: start)
        }
    }

    private mutating func expectLiteral(_ literal: String) throws(JSONSyntaxError) {
        let start = position
        for expected in literal.utf8 {
            guard index < bytes.count, bytes[index] == expected else {
                throw JSONSyntaxError(message: "expected '\(literal)'", position: start)
            }
            advance()
        }
    }

    private mutating func parseObject(depth: Int) throws(JSONSyntaxError) -> SourceJSON {
        let start = position
        advance()  // {
        var members: [SourceJSONMember] = []
        var seen = Set<String>()
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            advance()
            return SourceJSON(kind: .object(members), position: start)
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                let what =
                    index < bytes.count && bytes[index] == UInt8(ascii: "}")
                    ? "a key after ',' (a trailing comma is not allowed in JSON)"
                    : "a key in double quotes but found \(describeNext())"
                throw JSONSyntaxError(message: "expected \(what)", position: position)
            }
            let keyPosition = position
            let key = try parseString()
            if !seen.insert(key).inserted {
                throw JSONSyntaxError(
                    message: "the key \"\(ManifestError.excerpt(key))\" appears twice in this object",
                    position: keyPosition)
            }
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
                throw JSONSyntaxError(
                    message: "expected ':' after the key \"\(ManifestError.excerpt(key))\" but found \(describeNext())",
                    position: position)
            }
            advance()
            skipWhitespace()
            let value = try parseValue(depth: depth + 1)
            members.append(SourceJSONMember(key: key, keyPosition: keyPosition, value: value))
            skipWhitespace()
            guard index < bytes.count else {
                throw JSONSyntaxError(
                    message: "the object opened at line \(start.line) is never closed", position: position)
            }
            if bytes[index] == UInt8(ascii: ",") {
                advance()
                continue
            }
            if bytes[index] == UInt8(ascii: "}") {
                advance()
                return SourceJSON(kind: .object(members), position: start)
            }
            if bytes[index] == UInt8(ascii: "\"") {
                throw JSONSyntaxError(
                    message:
                        "a comma is missing between the value of \"\(ManifestError.excerpt(key))\" and the next key",
                    position: position)
            }
            throw JSONSyntaxError(
                message:
                    "expected ',' or '}' after the value of \"\(ManifestError.excerpt(key))\" but found \(describeNext())",
                position: position)
        }
    }

    private mutating func parseArray(depth: Int) throws(JSONSyntaxError) -> SourceJSON {
        let start = position
        advance()  // [
        var elements: [SourceJSON] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            advance()
            return SourceJSON(kind: .array(elements), position: start)
        }
        while true {
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                throw JSONSyntaxError(
                    message: "expected a value after ',' (a trailing comma is not allowed in JSON)", position: position)
            }
            elements.append(try parseValue(depth: depth + 1))
            skipWhitespace()
            guard index < bytes.count else {
                throw JSONSyntaxError(
                    message: "the list opened at line \(start.line) is never closed", position: position)
            }
            if bytes[index] == UInt8(ascii: ",") {
                advance()
                continue
            }
            if bytes[index] == UInt8(ascii: "]") {
                advance()
                return SourceJSON(kind: .array(elements), position: start)
            }
            let missingComma = [UInt8(ascii: "{"), UInt8(ascii: "["), UInt8(ascii: "\"")].contains(bytes[index])
            throw JSONSyntaxError(
                message: missingComma
                    ? "a comma is missing between two values of a list"
                    : "expected ',' or ']' in a list but found \(describeNext())",
                position: position)
        }
    }

    private mutating func parseString() throws(JSONSyntaxError) -> String {
        let start = position
        advance()  // "
        var utf8: [UInt8] = []
        while true {
            guard index < bytes.count else {
                throw JSONSyntaxError(message: "the string starting here is never closed", position: start)
            }
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                advance()
                return String(decoding: utf8, as: UTF8.self)
            case UInt8(ascii: "\\"):
                advance()
                guard index < bytes.count else {
                    throw JSONSyntaxError(message: "the string starting here is never closed", position: start)
                }
                let escapePosition = position
                let escape = bytes[index]
                advance()
                switch escape {
                case UInt8(ascii: "\""): utf8.append(UInt8(ascii: "\""))
                case UInt8(ascii: "\\"): utf8.append(UInt8(ascii: "\\"))
                case UInt8(ascii: "/"): utf8.append(UInt8(ascii: "/"))
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0C)
                case UInt8(ascii: "n"): utf8.append(0x0A)
                case UInt8(ascii: "r"): utf8.append(0x0D)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try parseHex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        // A surrogate pair: the low half must follow as another \u escape.
                        guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"),
                            bytes[index + 1] == UInt8(ascii: "u")
                        else {
                            throw JSONSyntaxError(
                                message: "a \\u escape is half of a surrogate pair", position: escapePosition)
                        }
                        advance()
                        advance()
                        let low = try parseHex4()
                        guard (0xDC00..<0xE000).contains(low) else {
                            throw JSONSyntaxError(
                                message: "a \\u escape is half of a surrogate pair", position: escapePosition)
                        }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let unicode = Unicode.Scalar(scalar) else {
                        throw JSONSyntaxError(
                            message: "a \\u escape is not a valid character", position: escapePosition)
                    }
                    utf8.append(contentsOf: Array(String(Character(unicode)).utf8))
                default:
                    throw JSONSyntaxError(
                        message: "'\\\(Character(UnicodeScalar(escape)))' is not a JSON escape",
                        position: escapePosition)
                }
            case 0x00..<0x20:
                throw JSONSyntaxError(
                    message: "a string contains a raw control character (write a line break as \\n)", position: position
                )
            default:
                utf8.append(byte)
                advance()
            }
        }
    }

    private mutating func parseHex4() throws(JSONSyntaxError) -> UInt32 {
        var result: UInt32 = 0
        for _ in 0..<4 {
            guard index < bytes.count, let digit = hexValue(bytes[index]) else {
                throw JSONSyntaxError(message: "a \\u escape needs four hexadecimal digits", position: position)
            }
            result = result * 16 + digit
            advance()
        }
        return result
    }

    private func hexValue(_ byte: UInt8) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    private mutating func parseNumber() throws(JSONSyntaxError) -> SourceJSON {
        let start = position
        let first = index
        var isInteger = true
        func isDigit(_ i: Int) -> Bool {
            i < bytes.count && bytes[i] >= UInt8(ascii: "0") && bytes[i] <= UInt8(ascii: "9")
        }
        if bytes[index] == UInt8(ascii: "-") { advance() }
        guard isDigit(index) else { throw JSONSyntaxError(message: "expected a digit after '-'", position: start) }
        if bytes[index] == UInt8(ascii: "0"), isDigit(index + 1) {
            throw JSONSyntaxError(message: "numbers cannot have leading zeros", position: start)
        }
        while isDigit(index) { advance() }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            isInteger = false
            advance()
            guard isDigit(index) else {
                throw JSONSyntaxError(message: "expected a digit after '.'", position: position)
            }
            while isDigit(index) { advance() }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            isInteger = false
            advance()
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { advance() }
            guard isDigit(index) else {
                throw JSONSyntaxError(message: "expected a digit in the exponent", position: position)
            }
            while isDigit(index) { advance() }
        }
        let lexeme = String(decoding: bytes[first..<index], as: UTF8.self)
        return SourceJSON(
            kind: .number(lexeme: lexeme, isInteger: isInteger, value: Double(lexeme) ?? .nan), position: start)
    }
}

// MARK: - Reading manifests

/// Where a JSON document came from, for error messages.
struct DocumentSource: Sendable {
    /// The file as shown to the user: relative to the project, or as given.
    var file: String
}

/// Reads one JSON object of a manifest, checking its keys against the schema and turning every mistake into a
/// `ManifestError` that names the file, the object (`what`), the key, and the fix.
struct ObjectReader {
    let members: [SourceJSONMember]
    let position: SourcePosition
    let source: DocumentSource
    /// The object as named in messages, for example `node "camera_node"` or `nodeGraph`.
    let what: String
    /// The graph node the object belongs to, if any, for `ManifestError.node`.
    let node: String?

    init(_ value: SourceJSON, source: DocumentSource, what: String, node: String? = nil) throws(ManifestError) {
        guard case .object(let members) = value.kind else {
            throw ManifestError(
                .invalidValue, file: source.file, line: value.position.line, column: value.position.column, node: node,
                message: "\(what) must be a JSON object ({...}), not \(value.typeName)",
                hint: "write \(what) as an object with named keys, as in the Panorama 2021-01-01 schema")
        }
        self.members = members
        self.position = value.position
        self.source = source
        self.what = what
        self.node = node
    }

    subscript(key: String) -> SourceJSON? { members.first { $0.key == key }?.value }

    func has(_ key: String) -> Bool { self[key] != nil }

    func error(
        _ code: ManifestError.Code, at position: SourcePosition? = nil, key: String? = nil, edge: String? = nil,
        _ message: String, hint: String
    ) -> ManifestError {
        let at = position ?? self.position
        return ManifestError(
            code, file: source.file, line: at.line, column: at.column, node: node, edge: edge, key: key,
            message: message, hint: hint)
    }

    /// Rejects keys the schema does not define (it is `additionalProperties: false` throughout).
    func rejectUnknownKeys(_ allowed: [String], extraHint: String? = nil) throws(ManifestError) {
        for member in members where !allowed.contains(member.key) {
            var hint = "remove it or fix its spelling"
            if let guess = closestMatch(member.key, in: allowed) { hint += " (did you mean \"\(guess)\"?)" }
            hint += "; \(what) takes " + allowed.map { "\"\($0)\"" }.joined(separator: ", ")
            if let extraHint { hint += ". " + extraHint }
            let shown = ManifestError.excerpt(member.key)
            throw error(
                .unknownKey, at: member.keyPosition, key: shown, "unknown key \"\(shown)\" in \(what)", hint: hint)
        }
    }

    func missing(_ key: String, example: String) -> ManifestError {
        error(.missingKey, key: key, "\(what) has no \"\(key)\"", hint: "add \"\(key)\": \(example)")
    }

    func wrongType(_ key: String, _ value: SourceJSON, expected: String, example: String) -> ManifestError {
        error(
            .invalidValue, at: value.position, key: key,
            "\"\(key)\" in \(what) must be \(expected), not \(value.typeName)",
            hint: "write it as \"\(key)\": \(example)")
    }

    func requiredString(_ key: String, example: String) throws(ManifestError) -> String {
        guard let value = self[key] else { throw missing(key, example: example) }
        return try string(key, value, example: example)
    }

    func optionalString(_ key: String, example: String) throws(ManifestError) -> String? {
        guard let value = self[key] else { return nil }
        return try string(key, value, example: example)
    }

    private func string(_ key: String, _ value: SourceJSON, example: String) throws(ManifestError) -> String {
        guard case .string(let string) = value.kind else {
            throw wrongType(key, value, expected: "a string", example: example)
        }
        return string
    }

    func optionalBool(_ key: String) throws(ManifestError) -> Bool? {
        guard let value = self[key] else { return nil }
        guard case .bool(let bool) = value.kind else {
            throw wrongType(key, value, expected: "true or false", example: "true")
        }
        return bool
    }

    func optionalInt(_ key: String, example: String, range: ClosedRange<Int>? = nil) throws(ManifestError) -> Int? {
        guard let value = self[key] else { return nil }
        guard let int = value.integerValue else {
            throw wrongType(key, value, expected: "a whole number", example: example)
        }
        if let range, !range.contains(int) {
            throw error(
                .invalidValue, at: value.position, key: key,
                "\"\(key)\" in \(what) is \(int), outside \(range.lowerBound)–\(range.upperBound)",
                hint: "use a value from \(range.lowerBound) to \(range.upperBound)")
        }
        return int
    }

    func optionalDouble(_ key: String, example: String) throws(ManifestError) -> Double? {
        guard let value = self[key] else { return nil }
        guard case .number(_, _, let double) = value.kind, double.isFinite else {
            throw wrongType(key, value, expected: "a number", example: example)
        }
        return double
    }

    /// The elements of an array, or an empty list when the key is absent.
    func optionalArray(_ key: String, example: String) throws(ManifestError) -> [SourceJSON] {
        guard let value = self[key] else { return [] }
        guard case .array(let elements) = value.kind else {
            throw wrongType(key, value, expected: "a list", example: example)
        }
        return elements
    }

    func requiredArray(_ key: String, example: String) throws(ManifestError) -> [SourceJSON] {
        guard self[key] != nil else { throw missing(key, example: example) }
        return try optionalArray(key, example: example)
    }

    func stringArray(_ key: String, example: String) throws(ManifestError) -> [String]? {
        guard let value = self[key] else { return nil }
        guard case .array(let elements) = value.kind else {
            throw wrongType(key, value, expected: "a list of strings", example: example)
        }
        var strings: [String] = []
        for element in elements {
            guard case .string(let string) = element.kind else {
                throw wrongType(key, element, expected: "a list of strings", example: example)
            }
            strings.append(string)
        }
        return strings
    }

    /// A string that must be one of `allowed`.
    func optionalEnum(_ key: String, _ allowed: [String]) throws(ManifestError) -> String? {
        let example = "\"\(allowed[0])\""
        guard let string = try optionalString(key, example: example) else { return nil }
        guard allowed.contains(string) else {
            var hint = "use one of " + allowed.map { "\"\($0)\"" }.joined(separator: ", ")
            if let guess = closestMatch(string, in: allowed) { hint = "did you mean \"\(guess)\"? " + hint }
            throw error(
                .invalidValue, at: self[key]?.position, key: key,
                "\"\(key)\" in \(what) is \"\(ManifestError.excerpt(string))\", which is not one of its accepted values",
                hint: hint)
        }
        return string
    }

    /// Checks the envelope version of a document.
    func envelopeVersion(required: Bool) throws(ManifestError) {
        guard let value = self["envelopeVersion"] else {
            if required { throw missing("envelopeVersion", example: "\"2021-01-01\"") }
            return
        }
        guard case .string(let version) = value.kind, version == "2021-01-01" else {
            let shown: String =
                if case .string(let version) = value.kind { "\"\(ManifestError.excerpt(version))\"" } else {
                    value.typeName
                }
            throw error(
                .unsupportedEnvelopeVersion, at: value.position, key: "envelopeVersion",
                "envelopeVersion \(shown) in \(what) is not supported",
                hint: "set \"envelopeVersion\": \"2021-01-01\", the only version of the Panorama application schema")
        }
    }
}

extension SourceJSON {
    /// The value as an integer, when it is a whole number (JSON Schema counts `5.0` as an integer too).
    var integerValue: Int? {
        guard case .number(let lexeme, let isInteger, let value) = kind else { return nil }
        if isInteger { return Int(lexeme) }
        guard value.isFinite, value.rounded() == value, abs(value) < 9.2e18 else { return nil }
        return Int(value)
    }

    var stringValue: String? {
        if case .string(let string) = kind { return string }
        return nil
    }
}

/// The longest word a suggestion is looked for: the edit distance costs length × length, and nothing longer is a
/// typo of a schema's key.
let maxSuggestedWordLength = 64

/// The closest of `candidates` to a misspelt `word`, if one is close enough to suggest.
func closestMatch(_ word: String, in candidates: [String]) -> String? {
    guard word.utf8.count <= maxSuggestedWordLength * 4, word.count <= maxSuggestedWordLength else { return nil }
    let lower = Array(word.lowercased())
    var best: (String, Int)?
    for candidate in candidates {
        let distance = editDistance(lower, Array(candidate.lowercased()))
        if distance <= max(2, candidate.count / 3), distance < (best?.1 ?? .max) { best = (candidate, distance) }
    }
    return best?.0
}

private func editDistance(_ a: [Character], _ b: [Character]) -> Int {
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}

extension ApplicationProject {
    /// The largest manifest (graph.json, package.json), descriptor or overrides file read, in bytes: a manifest
    /// describes an application, and a bigger one is padded or generated by mistake. Checked before the file is
    /// read, so a huge file costs no memory (and, in an archive, before it is unpacked).
    public static let maxManifestBytes = 4 << 20
}

/// What ``readBoundedFile(_:limit:)`` found.
enum BoundedFile {
    case data(Data)
    /// The file holds more than the limit (only the limit and one byte were read).
    case tooLarge
    case unreadable
}

/// Reads a whole file of at most `limit` bytes, reading no more than `limit + 1` whatever it holds (a device or a
/// huge file included).
func readBoundedFile(_ url: URL, limit: Int) -> BoundedFile {
    guard let handle = try? FileHandle(forReadingFrom: url) else { return .unreadable }
    defer { try? handle.close() }
    let data: Data
    do {
        // nil at the end of the file: an empty file.
        data = try handle.read(upToCount: limit + 1) ?? Data()
    } catch {
        return .unreadable
    }
    return data.count > limit ? .tooLarge : .data(data)
}

/// Reads and parses a JSON file of the project, turning I/O and syntax problems into manifest errors.
func readJSONFile(_ url: URL, shownAs file: String, what: String) throws(ManifestError) -> SourceJSON {
    let data: Data
    switch readBoundedFile(url, limit: ApplicationProject.maxManifestBytes) {
    case .data(let read):
        data = read
    case .tooLarge:
        throw ManifestError(
            .fileTooLarge, file: file,
            message: "\(what) is larger than \(ApplicationProject.maxManifestBytes >> 20) MiB, the most a manifest or "
                + "descriptor may be",
            hint: "a manifest only describes the application: keep data in the package's assets, and check that the "
                + "file was not padded or generated by mistake")
    case .unreadable:
        throw ManifestError(
            .unreadableFile, file: file, message: "cannot read \(what)",
            hint: "check that the file exists and is readable (\(file))")
    }
    do {
        return try JSONParser.parse(data)
    } catch {
        throw ManifestError(
            .invalidJSON, file: file, line: error.position.line, column: error.position.column,
            message: "\(what) is not valid JSON: \(error.message)",
            hint: "fix the JSON at line \(error.position.line), column \(error.position.column)")
    }
}
