import Foundation

/// A parameter's `constraintRegex`, compiled for a matcher whose time is linear in the value's length.
///
/// Swift's `Regex` backtracks: `^((a+)+|model_node)$` against 32 `a`s and a `!` runs for minutes, and on the control
/// plane that froze every request. This matcher simulates all paths at once (a Pike VM: a set of threads over a
/// compiled program, each visited at most once per character), so a check costs at most
/// ``maxValueLength`` × ``maxProgramSize`` steps whatever the pattern — no timeout is needed, and nothing keeps
/// running after an answer.
///
/// The syntax is the common core of the regular expressions Panorama's tools and browsers accept: literals and
/// escapes (`\.`, `\n`, `\t`, `\xHH`, `\uHHHH`, `\u{H…}`), `.`, classes `[a-z0-9_]` and `[^…]`, `\d \w \s` (ASCII
/// digits and word characters; Unicode spaces) and their negations, anchors `^ $ \A \z \Z \b \B`, groups `(…)`,
/// `(?:…)`, `(?<name>…)`, alternation `|`, and the quantifiers `* + ? {n} {n,} {n,m}` (greedy or lazy: only
/// whether the whole value matches counts). Backreferences, lookaround, atomic groups, possessive quantifiers,
/// inline options and `\p{…}` are refused with a message saying so. Matching is by Unicode scalar, and the whole
/// value must match (as `wholeMatch`, which the checks used before).
///
/// ```swift
/// let pattern = try ConstraintPattern("^(0(\\.[0-9]+)?|1(\\.0+)?)$")
/// pattern.matches("0.5")  // true
/// ```
public struct ConstraintPattern: Sendable {
    /// The longest pattern accepted, in characters.
    public static let maxPatternLength = 1024
    /// The longest value checked against a pattern, in Unicode scalars; a longer one is refused unchecked.
    public static let maxValueLength = 2048
    /// The most instructions a pattern may compile to (counted repeats are written out: `a{1000}` is 1000).
    public static let maxProgramSize = 4096

    /// The pattern as written.
    public let source: String
    private let tree: PatternNode
    private let program: [Instruction]
    private let sets: [CharacterSet]

    /// Compiles `pattern`; throws a ``ConstraintPatternError`` that says what is not supported or not valid.
    public init(_ pattern: String) throws(ConstraintPatternError) {
        guard pattern.count <= Self.maxPatternLength else {
            throw ConstraintPatternError(
                "it is \(pattern.count) characters long, more than the \(Self.maxPatternLength) a constraint may have")
        }
        var parser = PatternParser(pattern)
        let tree = try parser.parse()
        var compiler = PatternCompiler()
        try compiler.emit(tree)
        compiler.program.append(.match)
        source = pattern
        self.tree = tree
        program = compiler.program
        sets = compiler.sets
    }

    /// Compiles `pattern` and also refuses what would be slow in a backtracking engine — the console's form
    /// checks a value with the browser's `pattern` attribute, and other tools may run the same manifest: a repeat
    /// holding another unbounded repeat (`(a+)+`, `(a*)*b`, `(.*a){20}`), a repeat of an alternation whose
    /// branches can start alike (`(a|a)*`, `(a|ab)+`), or one whose body can match nothing (`(a?)*`).
    /// Applied when a manifest is loaded (`vantage run` and package uploads).
    public static func checked(_ pattern: String) throws(ConstraintPatternError) -> ConstraintPattern {
        let compiled = try ConstraintPattern(pattern)
        if let hazard = compiled.tree.backtrackingHazard(insideRepeat: nil) { throw ConstraintPatternError(hazard) }
        return compiled
    }

    /// Whether the whole of `text` matches. Callers check ``maxValueLength`` first (``NodeDecorator`` does).
    public func matches(_ text: String) -> Bool {
        let input = Array(text.unicodeScalars)
        var current = ThreadList(capacity: program.count)
        var next = ThreadList(capacity: program.count)
        var generation = 1
        var visited = [Int](repeating: 0, count: program.count)
        var stack: [Int] = []
        add(0, at: 0, input: input, to: &current, visited: &visited, generation: generation, stack: &stack)
        for (position, scalar) in input.enumerated() {
            if current.isEmpty { return false }
            generation += 1
            next.removeAll()
            for pc in current.items {
                let advances: Bool =
                    switch program[pc] {
                    case .scalar(let expected): scalar == expected
                    case .set(let index): sets[index].contains(scalar)
                    case .any: !Self.isLineBreak(scalar)
                    default: false
                    }
                if advances {
                    add(
                        pc + 1, at: position + 1, input: input, to: &next, visited: &visited, generation: generation,
                        stack: &stack)
                }
            }
            swap(&current, &next)
        }
        return current.items.contains { if case .match = program[$0] { true } else { false } }
    }

    /// Adds the thread at `pc` and every thread it reaches without reading (splits, jumps, assertions that hold).
    private func add(
        _ start: Int, at position: Int, input: [Unicode.Scalar], to list: inout ThreadList, visited: inout [Int],
        generation: Int, stack: inout [Int]
    ) {
        stack.append(start)
        while let pc = stack.popLast() {
            guard visited[pc] != generation else { continue }
            visited[pc] = generation
            switch program[pc] {
            case .jump(let target):
                stack.append(target)
            case .split(let first, let second):
                stack.append(second)
                stack.append(first)
            case .assertion(let assertion):
                if assertion.holds(at: position, in: input) { stack.append(pc + 1) }
            default:
                list.items.append(pc)
            }
        }
    }

    static func isLineBreak(_ scalar: Unicode.Scalar) -> Bool {
        [0x0A, 0x0B, 0x0C, 0x0D, 0x85, 0x2028, 0x2029].contains(scalar.value)
    }
}

/// Why a `constraintRegex` cannot be used; `message` says what to write instead.
public struct ConstraintPatternError: Error, Sendable, CustomStringConvertible {
    /// What is wrong, and what to write instead.
    public let message: String
    init(_ message: String) { self.message = message }
    /// The message.
    public var description: String { message }
}

// MARK: - Parsing

/// A parsed pattern.
indirect enum PatternNode: Sendable {
    case empty
    case scalar(Unicode.Scalar)
    case set(CharacterSet)
    case any
    case assertion(PatternAssertion)
    case sequence([PatternNode])
    case alternation([PatternNode])
    case group(PatternNode)
    /// `max` nil: unbounded.
    case repeated(PatternNode, min: Int, max: Int?)

    /// Whether it can match the empty string.
    var matchesEmpty: Bool {
        switch self {
        case .empty, .assertion: true
        case .scalar, .set, .any: false
        case .sequence(let parts): parts.allSatisfy(\.matchesEmpty)
        case .alternation(let branches): branches.contains(where: \.matchesEmpty)
        case .group(let inner): inner.matchesEmpty
        case .repeated(let inner, let min, _): min == 0 || inner.matchesEmpty
        }
    }

    /// Whether it holds a quantifier that repeats more than once.
    var hasRepeat: Bool {
        switch self {
        case .empty, .assertion, .scalar, .set, .any: false
        case .sequence(let parts), .alternation(let parts): parts.contains(where: \.hasRepeat)
        case .group(let inner): inner.hasRepeat
        case .repeated(let inner, _, let max): (max.map { $0 > 1 } ?? true) || inner.hasRepeat
        }
    }

    /// Whether it holds an unbounded quantifier (`*`, `+`, `{n,}`).
    var hasUnboundedRepeat: Bool {
        switch self {
        case .empty, .assertion, .scalar, .set, .any: false
        case .sequence(let parts), .alternation(let parts): parts.contains(where: \.hasUnboundedRepeat)
        case .group(let inner): inner.hasUnboundedRepeat
        case .repeated(let inner, _, let max): max == nil || inner.hasUnboundedRepeat
        }
    }

    /// What its first character can be: a few scalars and sets (nil: anything, as far as this check can tell).
    var firstCharacters: [FirstCharacter]? {
        switch self {
        case .empty, .assertion: return []
        case .scalar(let scalar): return [.scalar(scalar)]
        case .set(let set): return [.set(set)]
        case .any: return nil
        case .group(let inner), .repeated(let inner, _, _): return inner.firstCharacters
        case .alternation(let branches):
            var result: [FirstCharacter] = []
            for branch in branches {
                guard let more = branch.firstCharacters else { return nil }
                result += more
            }
            return result
        case .sequence(let parts):
            var result: [FirstCharacter] = []
            for part in parts {
                guard let more = part.firstCharacters else { return nil }
                result += more
                if !part.matchesEmpty { break }
            }
            return result
        }
    }

    /// Why a backtracking engine could take exponential (or high polynomial) time on this pattern, or nil.
    func backtrackingHazard(insideRepeat outer: String?) -> String? {
        switch self {
        case .empty, .assertion, .scalar, .set, .any:
            return nil
        case .sequence(let parts):
            return parts.lazy.compactMap { $0.backtrackingHazard(insideRepeat: outer) }.first
        case .group(let inner):
            return inner.backtrackingHazard(insideRepeat: outer)
        case .alternation(let branches):
            if let outer {
                let firsts = branches.map(\.firstCharacters)
                for i in branches.indices {
                    for j in branches.indices where j > i {
                        guard let a = firsts[i], let b = firsts[j], FirstCharacter.disjoint(a, b) else {
                            return "a repeated group (\(outer)) holds alternatives that can start with the same "
                                + "character, as in (a|ab)+: make the alternatives start differently, or use a "
                                + "character class such as [ab]+"
                        }
                    }
                }
            }
            return branches.lazy.compactMap { $0.backtrackingHazard(insideRepeat: outer) }.first
        case .repeated(let inner, _, let max):
            let repeats = max.map { $0 > 1 } ?? true
            guard repeats else { return inner.backtrackingHazard(insideRepeat: outer) }
            let quantifier = max == nil ? "* or +" : "{…}"
            if max == nil, inner.hasRepeat {
                return "a repeated group holds another repeat, as in (a+)+ or (a*)*b: repeat one level only, "
                    + "e.g. [a-z,]+ instead of ([a-z]+,)*"
            }
            if max != nil, inner.hasUnboundedRepeat {
                return "a group repeated with {…} holds an unbounded repeat (* or +), as in (.*a){20}: bound the "
                    + "inner repeat, e.g. [^a]{0,50}a, or write it once"
            }
            if inner.matchesEmpty {
                return "a group repeated with \(quantifier) can match an empty value, as in (a?)*: make the "
                    + "group match at least one character"
            }
            return inner.backtrackingHazard(insideRepeat: quantifier)
        }
    }
}

/// A possible first character, for telling alternatives apart.
enum FirstCharacter: Sendable {
    case scalar(Unicode.Scalar)
    case set(CharacterSet)

    /// Whether no character can start both lists (conservative: true only when it is sure).
    static func disjoint(_ a: [FirstCharacter], _ b: [FirstCharacter]) -> Bool {
        for x in a {
            for y in b {
                switch (x, y) {
                case (.scalar(let p), .scalar(let q)): if p == q { return false }
                case (.scalar(let p), .set(let s)), (.set(let s), .scalar(let p)): if s.contains(p) { return false }
                case (.set(let s), .set(let t)): if !s.intersection(t).isEmpty { return false }
                }
            }
        }
        return true
    }
}

/// A zero-width test.
enum PatternAssertion: Sendable {
    case start, end, wordBoundary, notWordBoundary

    func holds(at position: Int, in input: [Unicode.Scalar]) -> Bool {
        switch self {
        case .start: return position == 0
        case .end: return position == input.count
        case .wordBoundary, .notWordBoundary:
            let before = position > 0 && PatternParser.word.contains(input[position - 1])
            let after = position < input.count && PatternParser.word.contains(input[position])
            return (before != after) == (self == .wordBoundary)
        }
    }
}

/// Reads a pattern into a ``PatternNode``, refusing what the matcher does not support.
struct PatternParser {
    private let scalars: [Unicode.Scalar]
    private var index = 0
    private var depth = 0

    static let digit = CharacterSet(charactersIn: "0123456789")
    static let word = CharacterSet(charactersIn: "0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    static let space: CharacterSet = {
        var set = CharacterSet(charactersIn: " \t\n\r\u{0B}\u{0C}\u{85}\u{A0}\u{1680}\u{2028}\u{2029}\u{202F}")
        set.insert(charactersIn: "\u{205F}\u{3000}\u{FEFF}")
        set.insert(charactersIn: Unicode.Scalar(0x2000)!...Unicode.Scalar(0x200A)!)
        return set
    }()

    init(_ pattern: String) { scalars = Array(pattern.unicodeScalars) }

    mutating func parse() throws(ConstraintPatternError) -> PatternNode {
        let node = try alternation()
        if index < scalars.count {
            // Only an unmatched ')' stops the top level early.
            throw ConstraintPatternError("it has a ')' without a matching '(' (character \(index + 1))")
        }
        return node
    }

    private var atEnd: Bool { index >= scalars.count }
    private func peek(_ offset: Int = 0) -> Unicode.Scalar? {
        index + offset < scalars.count ? scalars[index + offset] : nil
    }

    private mutating func alternation() throws(ConstraintPatternError) -> PatternNode {
        var branches = [try sequence()]
        while peek() == "|" {
            index += 1
            branches.append(try sequence())
        }
        return branches.count == 1 ? branches[0] : .alternation(branches)
    }

    private mutating func sequence() throws(ConstraintPatternError) -> PatternNode {
        var parts: [PatternNode] = []
        while let next = peek(), next != "|", next != ")" {
            var atom = try self.atom()
            atom = try quantified(atom)
            parts.append(atom)
        }
        return parts.isEmpty ? .empty : parts.count == 1 ? parts[0] : .sequence(parts)
    }

    private mutating func quantified(_ atom: PatternNode) throws(ConstraintPatternError) -> PatternNode {
        var node = atom
        while let next = peek() {
            let bounds: (Int, Int?)
            switch next {
            case "*": bounds = (0, nil)
            case "+": bounds = (1, nil)
            case "?": bounds = (0, 1)
            case "{":
                guard let counted = try countedBounds() else { return node }
                bounds = counted
            default: return node
            }
            if case .assertion = node {
                throw ConstraintPatternError("a quantifier follows an anchor (character \(index + 1)): remove it")
            }
            if case .repeated = node {
                throw ConstraintPatternError(
                    "two quantifiers in a row (character \(index + 1)): put the first in a group, e.g. (a+)?")
            }
            if next != "{" { index += 1 }
            switch peek() {
            case "?": index += 1  // lazy: the same whole-value answer
            case "+":
                throw ConstraintPatternError(
                    "possessive quantifiers (*+, ++, ?+) are not supported: write the quantifier without the '+'")
            default: break
            }
            node = .repeated(node, min: bounds.0, max: bounds.1)
        }
        return node
    }

    /// `{n}`, `{n,}` or `{n,m}` at the cursor (consumed), or nil when the `{` is a literal brace.
    private mutating func countedBounds() throws(ConstraintPatternError) -> (Int, Int?)? {
        var cursor = index + 1
        func number() -> Int? {
            var digits = ""
            while cursor < scalars.count, PatternParser.digit.contains(scalars[cursor]), digits.count < 6 {
                digits.unicodeScalars.append(scalars[cursor])
                cursor += 1
            }
            return Int(digits)
        }
        guard let low = number() else { return nil }
        var high: Int? = low
        if cursor < scalars.count, scalars[cursor] == "," {
            cursor += 1
            high = number()
        }
        guard cursor < scalars.count, scalars[cursor] == "}" else { return nil }
        index = cursor + 1
        guard low <= 1000, (high ?? 0) <= 1000 else {
            throw ConstraintPatternError("a count in {…} is over 1000: use * or + for an unbounded repeat")
        }
        if let high, high < low {
            throw ConstraintPatternError("{\(low),\(high)} counts down: write the smaller number first")
        }
        return (low, high)
    }

    private mutating func atom() throws(ConstraintPatternError) -> PatternNode {
        let position = index + 1
        let scalar = scalars[index]
        index += 1
        switch scalar {
        case "(": return try group(at: position)
        case "[": return .set(try bracket(at: position))
        case ".": return .any
        case "^": return .assertion(.start)
        case "$": return .assertion(.end)
        case "\\": return try escape(inSet: false).node
        case "*", "+", "?":
            throw ConstraintPatternError(
                "'\(scalar)' at character \(position) has nothing to repeat: escape it (\\\(scalar))")
        default: return .scalar(scalar)
        }
    }

    private mutating func group(at position: Int) throws(ConstraintPatternError) -> PatternNode {
        depth += 1
        defer { depth -= 1 }
        guard depth <= 32 else { throw ConstraintPatternError("groups are nested more than 32 deep") }
        if peek() == "?" {
            switch (peek(1), peek(2)) {
            case (":", _): index += 2
            case ("<", "="), ("<", "!"), ("=", _), ("!", _):
                throw ConstraintPatternError(
                    "lookaround ((?=, (?!, (?<=, (?<!) at character \(position) is not supported: match the text itself"
                )
            case (">", _):
                throw ConstraintPatternError("atomic groups ((?>…)) are not supported: use a plain group")
            case ("<", _), ("P", "<"), ("'", _):
                // A named group: the name is only a label here.
                let close: Unicode.Scalar = peek(1) == "'" ? "'" : ">"
                while let next = peek(), next != close { index += 1 }
                guard !atEnd else {
                    throw ConstraintPatternError("the group name at character \(position) is not closed")
                }
                index += 1
            default:
                throw ConstraintPatternError(
                    "inline options such as (?i) at character \(position) are not supported: write both cases, e.g. [Aa]"
                )
            }
        }
        let inner = try alternation()
        guard peek() == ")" else {
            throw ConstraintPatternError("the group opened at character \(position) is not closed: add ')'")
        }
        index += 1
        return .group(inner)
    }

    /// An escape after `\`: a character, a class, or (outside sets) an anchor.
    private mutating func escape(inSet: Bool) throws(ConstraintPatternError) -> (node: PatternNode, set: CharacterSet?)
    {
        guard let scalar = peek() else {
            throw ConstraintPatternError("it ends with a lone '\\': escape a backslash as \\\\")
        }
        let position = index
        index += 1
        switch scalar {
        case "d": return (.set(Self.digit), Self.digit)
        case "D": return (.set(Self.digit.inverted), Self.digit.inverted)
        case "w": return (.set(Self.word), Self.word)
        case "W": return (.set(Self.word.inverted), Self.word.inverted)
        case "s": return (.set(Self.space), Self.space)
        case "S": return (.set(Self.space.inverted), Self.space.inverted)
        case "n": return (.scalar("\n"), nil)
        case "r": return (.scalar("\r"), nil)
        case "t": return (.scalar("\t"), nil)
        case "f": return (.scalar("\u{0C}"), nil)
        case "v": return (.scalar("\u{0B}"), nil)
        case "0": return (.scalar("\u{0}"), nil)
        case "x": return (.scalar(try hex(digits: 2, at: position)), nil)
        case "u":
            if peek() == "{" {
                index += 1
                var digits = ""
                while let next = peek(), next != "}", digits.count <= 6 {
                    digits.unicodeScalars.append(next)
                    index += 1
                }
                guard peek() == "}", let value = UInt32(digits, radix: 16), let scalar = Unicode.Scalar(value) else {
                    throw ConstraintPatternError("\\u{…} at character \(position) is not a valid character code")
                }
                index += 1
                return (.scalar(scalar), nil)
            }
            return (.scalar(try hex(digits: 4, at: position)), nil)
        case "b" where !inSet: return (.assertion(.wordBoundary), nil)
        case "b": return (.scalar("\u{08}"), nil)
        case "B" where !inSet: return (.assertion(.notWordBoundary), nil)
        case "A" where !inSet: return (.assertion(.start), nil)
        case "z" where !inSet, "Z" where !inSet: return (.assertion(.end), nil)
        case "1"..."9", "k":
            throw ConstraintPatternError(
                "backreferences (\\1, \\k<name>) at character \(position) are not supported: write the text out")
        case "p", "P":
            throw ConstraintPatternError(
                "Unicode properties (\\p{…}) at character \(position) are not supported: list the characters, e.g. [A-Za-z]"
            )
        default:
            guard !(scalar.properties.isAlphabetic || PatternParser.digit.contains(scalar)) else {
                throw ConstraintPatternError("\\\(scalar) at character \(position) is not a supported escape")
            }
            return (.scalar(scalar), nil)
        }
    }

    private mutating func hex(digits count: Int, at position: Int) throws(ConstraintPatternError) -> Unicode.Scalar {
        var digits = ""
        for _ in 0..<count {
            guard let next = peek() else { break }
            digits.unicodeScalars.append(next)
            index += 1
        }
        guard digits.count == count, let value = UInt32(digits, radix: 16), let scalar = Unicode.Scalar(value) else {
            throw ConstraintPatternError("the escape at character \(position) needs \(count) hexadecimal digits")
        }
        return scalar
    }

    /// A bracket expression after `[`.
    private mutating func bracket(at position: Int) throws(ConstraintPatternError) -> CharacterSet {
        var set = CharacterSet()
        var negated = false
        if peek() == "^" {
            negated = true
            index += 1
        }
        var first = true
        while true {
            guard let scalar = peek() else {
                throw ConstraintPatternError(
                    "the character class opened at character \(position) is not closed: add ']'")
            }
            if scalar == "]" && !first { break }
            first = false
            index += 1
            var low: Unicode.Scalar
            switch scalar {
            case "\\":
                let escaped = try escape(inSet: true)
                if let classSet = escaped.set {
                    set.formUnion(classSet)
                    continue
                }
                guard case .scalar(let value) = escaped.node else { continue }
                low = value
            case "[" where peek() == ":":
                throw ConstraintPatternError(
                    "POSIX classes such as [[:alpha:]] are not supported: list the characters, e.g. [A-Za-z]")
            default:
                low = scalar
            }
            if peek() == "-", let after = peek(1), after != "]" {
                index += 1
                var high = after
                index += 1
                if after == "\\" {
                    let escaped = try escape(inSet: true)
                    guard escaped.set == nil, case .scalar(let value) = escaped.node else {
                        throw ConstraintPatternError("a range in [...] at character \(position) ends with a class")
                    }
                    high = value
                }
                guard low.value <= high.value else {
                    throw ConstraintPatternError(
                        "the range \(low)-\(high) in [...] at character \(position) counts down: write the smaller first"
                    )
                }
                set.insert(charactersIn: low...high)
            } else {
                set.insert(low)
            }
        }
        index += 1  // ]
        return negated ? set.inverted : set
    }
}

// MARK: - Compiling

enum Instruction: Sendable {
    case scalar(Unicode.Scalar)
    case set(Int)
    case any
    case assertion(PatternAssertion)
    case split(Int, Int)
    case jump(Int)
    case match
}

struct PatternCompiler {
    var program: [Instruction] = []
    var sets: [CharacterSet] = []

    private mutating func append(_ instruction: Instruction) throws(ConstraintPatternError) {
        guard program.count < ConstraintPattern.maxProgramSize else {
            throw ConstraintPatternError(
                "it is too large once its counted repeats are written out (more than "
                    + "\(ConstraintPattern.maxProgramSize) steps): use smaller counts in {…}")
        }
        program.append(instruction)
    }

    mutating func emit(_ node: PatternNode) throws(ConstraintPatternError) {
        switch node {
        case .empty: break
        case .scalar(let scalar): try append(.scalar(scalar))
        case .any: try append(.any)
        case .assertion(let assertion): try append(.assertion(assertion))
        case .set(let set):
            sets.append(set)
            try append(.set(sets.count - 1))
        case .group(let inner): try emit(inner)
        case .sequence(let parts):
            for part in parts { try emit(part) }
        case .alternation(let branches):
            var jumps: [Int] = []
            for (i, branch) in branches.enumerated() {
                if i < branches.count - 1 {
                    let split = program.count
                    try append(.split(split + 1, 0))
                    try emit(branch)
                    jumps.append(program.count)
                    try append(.jump(0))
                    program[split] = .split(split + 1, program.count)
                } else {
                    try emit(branch)
                }
            }
            for jump in jumps { program[jump] = .jump(program.count) }
        case .repeated(let inner, let min, let max):
            for _ in 0..<min { try emit(inner) }
            if let max {
                // Each optional copy may be skipped to the end.
                var splits: [Int] = []
                for _ in min..<max {
                    splits.append(program.count)
                    try append(.split(program.count + 1, 0))
                    try emit(inner)
                }
                for split in splits {
                    if case .split(let first, _) = program[split] { program[split] = .split(first, program.count) }
                }
            } else {
                let loop = program.count
                try append(.split(loop + 1, 0))
                try emit(inner)
                try append(.jump(loop))
                program[loop] = .split(loop + 1, program.count)
            }
        }
    }
}

/// The threads alive at one position, in priority order.
private struct ThreadList {
    var items: [Int] = []
    init(capacity: Int) { items.reserveCapacity(capacity) }
    var isEmpty: Bool { items.isEmpty }
    mutating func removeAll() { items.removeAll(keepingCapacity: true) }
}
