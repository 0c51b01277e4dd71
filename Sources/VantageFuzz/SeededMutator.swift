import Foundation

/// A small deterministic mutator: the same seed gives the same inputs on every machine. `make test` runs a few
/// thousand of its mutations of the seed corpus through each target (a bounded pass; libFuzzer, guided by coverage,
/// is what `make fuzz` runs), and `vantage-fuzz` uses it where the toolchain has no libFuzzer.
public struct SeededMutator: Sendable {
    private var state: UInt64

    /// Makes a mutator; `seed` picks the sequence of mutations.
    public init(seed: UInt64) { state = seed }

    /// The next pseudo-random number (SplitMix64).
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in `0..<bound` (`bound` > 0).
    public mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }

    /// An input made from `corpus`: one of its files changed in 1 to 4 places (bytes flipped, set, inserted,
    /// removed or repeated, a dictionary token inserted or written over, an edge integer written, part of another
    /// file spliced in), cut to `maxLength`.
    public mutating func mutate(_ corpus: [[UInt8]], dictionary: [[UInt8]], maxLength: Int) -> [UInt8] {
        var input = corpus.isEmpty ? [] : corpus[below(corpus.count)]
        for _ in 0...below(4) {
            mutateOnce(&input, corpus: corpus, dictionary: dictionary)
        }
        if input.count > maxLength { input.removeLast(input.count - maxLength) }
        return input
    }

    private mutating func mutateOnce(_ input: inout [UInt8], corpus: [[UInt8]], dictionary: [[UInt8]]) {
        let position = below(input.count + 1)
        switch below(9) {
        case 0 where !input.isEmpty:
            input[below(input.count)] ^= 1 << UInt8(below(8))
        case 1 where !input.isEmpty:
            input[below(input.count)] = UInt8(truncatingIfNeeded: next())
        case 2:
            input.insert(contentsOf: (0...below(8)).map { _ in UInt8(truncatingIfNeeded: next()) }, at: position)
        case 3 where !input.isEmpty:
            let start = below(input.count)
            input.removeSubrange(start..<min(input.count, start + 1 + below(16)))
        case 4 where !input.isEmpty:
            // Repeat a stretch (deep nesting, long names, many items).
            let start = below(input.count)
            let chunk = Array(input[start..<min(input.count, start + 1 + below(32))])
            let times = 1 + below(64)
            input.insert(contentsOf: (0..<times).flatMap { _ in chunk }, at: start)
        case 5 where !dictionary.isEmpty:
            input.insert(contentsOf: dictionary[below(dictionary.count)], at: position)
        case 6 where !dictionary.isEmpty:
            let token = dictionary[below(dictionary.count)]
            let end = min(input.count, position + token.count)
            input.replaceSubrange(position..<end, with: token)
        case 7:
            // An integer at an edge, little-endian, over what was there.
            let edges: [UInt64] = [
                0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x7FFF_FFFF_FFFF_FFFF,
                0x8000_0000_0000_0000, 0xFFFF_FFFF_FFFF_FFFF,
            ]
            let value = edges[below(edges.count)]
            let width = [1, 2, 4, 8][below(4)]
            let bytes = withUnsafeBytes(of: value.littleEndian) { Array($0.prefix(width)) }
            let end = min(input.count, position + width)
            input.replaceSubrange(position..<end, with: bytes)
        case 8 where !corpus.isEmpty:
            let other = corpus[below(corpus.count)]
            guard !other.isEmpty else { return }
            let start = below(other.count)
            input.insert(contentsOf: other[start..<min(other.count, start + 1 + below(256))], at: position)
        default:
            input.append(UInt8(truncatingIfNeeded: next()))
        }
    }
}

/// Runs a target over a corpus and mutations of it, for a bounded number of inputs or time: `make test`'s pass and
/// `vantage-fuzz`'s fallback without libFuzzer.
public struct FuzzPass {
    /// Inputs run, findings made.
    public struct Summary: Sendable {
        public var corpusInputs = 0
        public var mutations = 0
        public var seconds = 0.0
        /// Each finding with the input that made it.
        public var findings: [(input: [UInt8], finding: FuzzFinding)] = []
    }

    /// Reads every file of `directory` (not recursive, hidden files skipped), sorted by name.
    public static func corpus(in directory: URL) throws -> [[UInt8]] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { !$0.hasPrefix(".") }
        return try names.sorted().map { [UInt8](try Data(contentsOf: directory.appendingPathComponent($0))) }
    }

    /// Runs every corpus input, then mutations until `mutations` were run or `seconds` passed.
    public static func run(
        _ target: any FuzzTarget, corpus: [[UInt8]], mutations: Int, seconds: Double, seed: UInt64
    ) -> Summary {
        var summary = Summary()
        let start = Date()
        func attempt(_ input: [UInt8]) {
            do {
                try target.run(input)
            } catch {
                summary.findings.append((input, error))
            }
        }
        for input in corpus {
            attempt(input)
            summary.corpusInputs += 1
        }
        var mutator = SeededMutator(seed: seed)
        while summary.mutations < mutations, Date().timeIntervalSince(start) < seconds {
            attempt(mutator.mutate(corpus, dictionary: target.dictionary, maxLength: target.maxInputLength))
            summary.mutations += 1
        }
        summary.seconds = Date().timeIntervalSince(start)
        return summary
    }
}
