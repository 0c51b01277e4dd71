import Foundation

// A panorama-cli code package's Dockerfile, read for what Vantage can honour without building an image.
//
// Panorama built the image, exported its filesystem and ran `/panorama/…` from it. Vantage runs the package's
// `src/` folder in place (it is what `COPY src /panorama` put at /panorama), so of a Dockerfile only two things
// matter: that `src/` is the code, and which Python packages the `RUN pip install …` lines added. Everything else
// is reported with its line number, so that nothing is dropped silently.

/// A Dockerfile instruction that Vantage does not carry out, and why.
public struct DockerfileLine: Sendable, Equatable, CustomStringConvertible {
    /// The 1-based line the instruction starts on.
    public var line: Int
    /// The instruction as written, continuation lines joined with single spaces.
    public var text: String
    /// Why it is not carried out, briefly: `not a pip install`, `Panorama ignored it too`, ….
    public var reason: String
    /// What the user can do about it; empty when nothing is needed.
    public var hint: String
    /// Whether the code may miss something the instruction gave it on Panorama (a system package, a copied file),
    /// so the user should act; `false` for instructions that had no effect on the running code there either.
    public var needsAction: Bool

    /// Makes a line.
    public init(line: Int, text: String, reason: String = "", hint: String = "", needsAction: Bool = false) {
        self.line = line
        self.text = text
        self.reason = reason
        self.hint = hint
        self.needsAction = needsAction
    }

    /// `ignored (<reason>): <text> — <hint>`.
    public var description: String { "ignored (\(reason)): \(text)" + (hint.isEmpty ? "" : " — \(hint)") }
}

/// One `pip install` of a Dockerfile, as the runtime runs it.
public struct PipInstall: Sendable, Equatable, CustomStringConvertible {
    /// The 1-based line of the `RUN` instruction.
    public var line: Int
    /// The arguments after `install`. Paths under `/panorama` are absolute paths under the package's `src/`;
    /// options that only make sense inside an image (`--user`, `--target`, `--prefix`, `--root`, `--no-cache-dir`,
    /// `--cache-dir`, `--break-system-packages`) are dropped.
    public var arguments: [String]

    /// Makes a pip install.
    public init(line: Int, arguments: [String]) {
        self.line = line
        self.arguments = arguments
    }

    /// `pip install <arguments>`, quoted for a shell where needed.
    public var description: String { (["pip", "install"] + arguments.map(shellQuoted)).joined(separator: " ") }
}

/// What Vantage reads from a code package's Dockerfile: its pip installs, and every other instruction with the
/// reason it is not carried out.
///
/// - `FROM` (any image) and `COPY src /panorama` (or `ADD`, `./src`, `/panorama/`) are understood: they are what
///   Vantage does anyway, running `src/` in place with the host's Python.
/// - `RUN` lines that are only pip installs (`pip`, `pip3`, `python3 -m pip`, … `install`, possibly chained with
///   `&&` to other pip installs) become `pipInstalls`. Shell form and exec form (`RUN ["pip", "install", "x"]`) are
///   read; quotes are honoured; `\` continuations are joined.
/// - Everything else is in `ignored`, with its first line number: other `RUN` lines whole (a pip install chained to
///   `apt-get` is not done either), other `COPY`/`ADD`, `ENV`, `WORKDIR`, `CMD`, `ENTRYPOINT`, ….
public struct Dockerfile: Sendable, Equatable {
    /// The pip installs, in file order.
    public var pipInstalls: [PipInstall]
    /// The instructions Vantage does not carry out, in file order.
    public var ignored: [DockerfileLine]

    /// Reads a Dockerfile's text. `sourceDirectory` is the package's `src/` folder, which `/panorama` paths are
    /// mapped to. Never fails: an instruction that cannot be read is reported in `ignored`.
    public init(text: String, sourceDirectory: URL) {
        var reader = DockerfileReader(sourceDirectory: sourceDirectory.standardizedFileURL.path)
        for instruction in DockerfileReader.instructions(in: text) { reader.read(instruction) }
        pipInstalls = reader.pipInstalls
        ignored = reader.ignored
    }
}

// MARK: - Where /panorama came from

/// Which folder of a code package the Panorama image had at `/panorama`, as its Dockerfile built it.
public struct PanoramaFolder: Sendable, Equatable {
    /// The folder relative to the package: `"src"`, or `""` for the package folder itself.
    public var relativePath: String
    /// Why: the Dockerfile line that copies it (`"Dockerfile line 3: COPY . ."`), or the fallback taken.
    public var reason: String

    /// Makes a folder choice.
    public init(relativePath: String, reason: String) {
        self.relativePath = relativePath
        self.reason = reason
    }
}

extension Dockerfile {
    /// The package folder the build copied to `/panorama`, read from the `WORKDIR`, `COPY` and `ADD` lines of a
    /// Dockerfile's final stage: `COPY src /panorama` → `src`; `WORKDIR /panorama` + `COPY . .` → the package
    /// itself; `COPY app.py /panorama/` (files) → the folder holding those files. `isDirectory` tells whether a
    /// path relative to the package is a folder. `nil` when no line copies into `/panorama`.
    public static func panoramaSource(text: String, isDirectory: (String) -> Bool) -> PanoramaFolder? {
        var workingDirectory = "/"
        var found: PanoramaFolder?
        for instruction in DockerfileReader.instructions(in: text) {
            switch instruction.keyword {
            case "FROM":
                workingDirectory = "/"
                found = nil  // a new stage: only the final stage's files are exported
            case "WORKDIR":
                let directory = instruction.arguments.trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
                if !directory.contains("$") {
                    workingDirectory = DockerfileReader.normalized(directory, from: workingDirectory)
                }
            case "COPY", "ADD":
                guard found == nil, !instruction.hasHeredoc,
                    case .success(let commands) = DockerfileReader.words(instruction.arguments), commands.count == 1
                else { continue }
                var words = commands[0]
                if words.contains(where: { $0.hasPrefix("--from") }) { continue }
                words.removeAll { $0.hasPrefix("--") }
                guard words.count >= 2, let destination = words.last else { continue }
                let target = DockerfileReader.normalized(destination, from: workingDirectory)
                guard target == "/panorama" || target.hasPrefix("/panorama/") else { continue }
                // Sources are relative to the build context: the package folder.
                let sources = words.dropLast().map { source -> String in
                    let path = DockerfileReader.normalized(source, from: "/")
                    return String(path.dropFirst())
                }
                let line = "Dockerfile line \(instruction.line): \(instruction.display)"
                let below = String(target.dropFirst("/panorama".count).drop { $0 == "/" })
                func parent(_ path: String) -> String { (path as NSString).deletingLastPathComponent }
                if below.isEmpty {
                    // `COPY src /panorama`, `COPY . .` in WORKDIR /panorama, or files into /panorama/.
                    // A single source is a folder unless it is a file name (`app.py`); a folder not extracted yet
                    // (`src` of a project whose code is only in the container image) still counts.
                    let looksLikeFile = (sources[0] as NSString).lastPathComponent.contains(".")
                    let isFolder = isDirectory(sources[0]) || !looksLikeFile
                    let folder = sources.count == 1 && isFolder ? sources[0] : parent(sources[0])
                    found = PanoramaFolder(relativePath: folder, reason: line)
                } else if sources.count == 1, sources[0] == below || sources[0].hasSuffix("/" + below) {
                    // `COPY src/app.py /panorama/app.py`, `COPY src/lib /panorama/lib`: /panorama is src/.
                    var folder = String(sources[0].dropLast(below.count))
                    if folder.hasSuffix("/") { folder.removeLast() }
                    found = PanoramaFolder(relativePath: folder, reason: line)
                }
            default:
                continue
            }
        }
        return found
    }
}

// MARK: - Instructions

/// One logical instruction: its continuation lines joined.
struct DockerfileInstruction {
    /// The first line.
    var line: Int
    /// For messages: the physical lines trimmed and joined with single spaces.
    var display: String
    /// For parsing: the lines joined as Docker joins them (escape and line break removed).
    var text: String
    /// Whether it carries a heredoc (`RUN <<EOF`), whose lines have been consumed.
    var hasHeredoc = false

    /// The instruction's keyword, upper-cased.
    var keyword: String { String(text.prefix { !$0.isWhitespace }).uppercased() }
    /// What follows the keyword.
    var arguments: String {
        String(text.drop { !$0.isWhitespace }).trimmingCharacters(in: .whitespaces)
    }
}

struct DockerfileReader {
    let sourceDirectory: String
    var pipInstalls: [PipInstall] = []
    var ignored: [DockerfileLine] = []
    /// The build's working directory, for relative paths in pip arguments.
    var workingDirectory = "/"

    init(sourceDirectory: String) { self.sourceDirectory = sourceDirectory }

    /// Splits a Dockerfile into instructions: parser directives, comments and blank lines dropped, continuation lines
    /// joined, heredoc bodies consumed.
    static func instructions(in text: String) -> [DockerfileInstruction] {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map {
            $0.hasSuffix("\r") ? String($0.dropLast()) : String($0)
        }
        var escape: Character = "\\"
        var index = 0
        // Parser directives (`# escape=\``, `# syntax=…`) come first, before any other line.
        while index < lines.count, let directive = parserDirective(lines[index]) {
            if directive.name == "escape", directive.value == "`" { escape = "`" }
            index += 1
        }
        var result: [DockerfileInstruction] = []
        while index < lines.count {
            let first = lines[index].trimmingCharacters(in: .whitespaces)
            index += 1
            if first.isEmpty || first.hasPrefix("#") { continue }
            var instruction = DockerfileInstruction(line: index, display: "", text: "")
            var pieces: [String] = []
            var current = lines[index - 1]
            while true {
                let trimmed = current.trimmingCharacters(in: .whitespaces)
                guard trimmed.last == escape, index < lines.count else {
                    pieces.append(trimmed)
                    instruction.text += current
                    break
                }
                // Docker removes the escape (and spaces after it) and the line break, joining the lines as they are.
                let body = String(current[..<current.lastIndex(of: escape)!])
                pieces.append(String(trimmed.dropLast()).trimmingCharacters(in: .whitespaces))
                instruction.text += body
                // Comment lines and empty lines inside a continuation are skipped.
                while index < lines.count {
                    let next = lines[index].trimmingCharacters(in: .whitespaces)
                    if next.isEmpty || next.hasPrefix("#") { index += 1 } else { break }
                }
                guard index < lines.count else { break }
                current = lines[index]
                index += 1
            }
            instruction.display = pieces.filter { !$0.isEmpty }.joined(separator: " ")
            instruction.text = instruction.text.trimmingCharacters(in: .whitespaces)
            // A heredoc's body follows the instruction, up to its delimiter.
            for (delimiter, stripsTabs) in heredocDelimiters(instruction.text) {
                instruction.hasHeredoc = true
                while index < lines.count {
                    let line = stripsTabs ? String(lines[index].drop { $0 == "\t" }) : lines[index]
                    index += 1
                    if line == delimiter { break }
                }
            }
            result.append(instruction)
        }
        return result
    }

    /// `# name=value` at the top of the file.
    static func parserDirective(_ line: String) -> (name: String, value: String)? {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        guard trimmed.hasPrefix("#"), let equals = trimmed.firstIndex(of: "=") else { return nil }
        let name = trimmed[trimmed.index(after: trimmed.startIndex)..<equals].trimmingCharacters(in: .whitespaces)
        guard !name.isEmpty, name.unicodeScalars.allSatisfy({ $0.isASCIILetterOrDigit || $0 == "_" }) else {
            return nil
        }
        return (name.lowercased(), trimmed[trimmed.index(after: equals)...].trimmingCharacters(in: .whitespaces))
    }

    /// The delimiters of `<<WORD`, `<<-WORD`, `<<"WORD"` heredocs in an instruction.
    static func heredocDelimiters(_ text: String) -> [(String, Bool)] {
        guard ["RUN", "COPY", "ADD"].contains(text.prefix { !$0.isWhitespace }.uppercased()) else { return [] }
        var result: [(String, Bool)] = []
        var rest = Substring(text)
        while let range = rest.range(of: "<<") {
            rest = rest[range.upperBound...]
            var stripsTabs = false
            if rest.first == "-" {
                stripsTabs = true
                rest = rest.dropFirst()
            }
            if rest.first == "\"" || rest.first == "'" { rest = rest.dropFirst() }
            let word = rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" }
            if !word.isEmpty { result.append((String(word), stripsTabs)) }
        }
        return result
    }

    // MARK: Reading instructions

    /// What becomes of one instruction.
    enum Outcome {
        /// Understood: Vantage does it anyway.
        case understood
        /// Pip installs to run.
        case install([PipInstall])
        /// Not carried out.
        case ignored(reason: String, hint: String, needsAction: Bool)
    }

    mutating func read(_ instruction: DockerfileInstruction) {
        switch outcome(of: instruction) {
        case .understood: break
        case .install(let installs): pipInstalls += installs
        case .ignored(let reason, let hint, let needsAction):
            ignored.append(
                DockerfileLine(
                    line: instruction.line, text: instruction.display, reason: reason, hint: hint,
                    needsAction: needsAction))
        }
    }

    mutating func outcome(of instruction: DockerfileInstruction) -> Outcome {
        func ignore(_ reason: String, hint: String = "") -> Outcome {
            .ignored(reason: reason, hint: hint, needsAction: false)
        }
        switch instruction.keyword {
        case "FROM":
            // A new stage starts in the image's root.
            workingDirectory = "/"
            return .understood
        case "COPY", "ADD":
            return copy(instruction)
        case "RUN":
            return run(instruction)
        case "WORKDIR":
            let directory = instruction.arguments.trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
            if !directory.contains("$") { workingDirectory = Self.normalized(directory, from: workingDirectory) }
            return ignore(
                "the build's working directory; Panorama did not run the code there either",
                hint: "later pip paths are read relative to it")
        case "ENV":
            return ignore(
                "Panorama ignored ENV too: the image's files were exported, not run",
                hint: "if the code needs the variable, add it to \"environment\" in the descriptor's entry")
        case "ARG":
            return ignore("a build argument; Vantage builds no image")
        case "CMD", "ENTRYPOINT":
            return ignore("Panorama ignored it too: the code descriptor's entry says what runs")
        case "EXPOSE":
            return ignore(
                "ports are opened by the interface's network.inboundPorts",
                hint: "list the port in package.json's \"network\": {\"inboundPorts\": [...]}")
        case "LABEL", "MAINTAINER":
            return ignore("image metadata")
        case "USER", "VOLUME", "SHELL", "HEALTHCHECK", "STOPSIGNAL", "ONBUILD":
            return ignore("it has no meaning outside a container image")
        default:
            return ignore("not a Dockerfile instruction Vantage knows")
        }
    }

    private func copy(_ instruction: DockerfileInstruction) -> Outcome {
        let hint =
            "Vantage runs src/ (Panorama's /panorama) in place and copies nothing: put what the code needs under "
            + "src/, or install it on the host"
        guard !instruction.hasHeredoc, case .success(let commands) = Self.words(instruction.arguments),
            commands.count == 1
        else {
            return .ignored(reason: "copies files into the image", hint: hint, needsAction: true)
        }
        var words = commands[0]
        if words.contains(where: { $0.hasPrefix("--from") }) {
            return .ignored(reason: "copies files from another image or build stage", hint: hint, needsAction: true)
        }
        words.removeAll { $0.hasPrefix("--") }
        // Copies into /panorama are what Vantage runs in place (see `Dockerfile.panoramaSource`).
        if words.count >= 2, let destination = words.last {
            let target = Self.normalized(destination, from: workingDirectory)
            if target == "/panorama" || target.hasPrefix("/panorama/") { return .understood }
        }
        return .ignored(reason: "copies files into the image", hint: hint, needsAction: true)
    }

    private func run(_ instruction: DockerfileInstruction) -> Outcome {
        if instruction.hasHeredoc {
            return .ignored(
                reason: "a heredoc script", hint: "run what it does on the host yourself if the code needs it",
                needsAction: true)
        }
        var arguments = Substring(instruction.arguments)
        // BuildKit's RUN options (--mount, --network, --security) do not change what is installed.
        while arguments.hasPrefix("--") {
            arguments = arguments.drop { !$0.isWhitespace }.drop { $0.isWhitespace }
        }
        let commands: [[String]]
        switch Self.commands(String(arguments)) {
        case .success(let parsed): commands = parsed
        case .failure(let problem):
            return .ignored(
                reason: "not a plain pip install: it \(problem.reason)",
                hint: problem.hint ?? "run it on the host yourself if the code needs it", needsAction: true)
        }
        var installs: [PipInstall] = []
        for command in commands {
            switch pipInstall(command) {
            case .install(let arguments):
                installs.append(PipInstall(line: instruction.line, arguments: arguments))
            case .unusable(let reason, let hint):
                return .ignored(reason: "not a plain pip install: it \(reason)", hint: hint, needsAction: true)
            case .notPip(let program):
                let isSystem = ["apt-get", "apt", "yum", "dnf", "apk", "dpkg", "microdnf"].contains(program)
                var hint =
                    isSystem
                    ? "install system packages on the host yourself"
                    : "Vantage runs no build steps: do on the host what it does, if the code needs it"
                if commands.contains(where: { pipInstall($0).isInstall }) {
                    hint += "; the pip installs chained to it are not done either: give them a RUN line of their own"
                }
                return .ignored(reason: "not a pip install", hint: hint, needsAction: true)
            }
        }
        return .install(installs)
    }

    // MARK: Pip

    enum PipCommand {
        /// A pip install, with its arguments as the runtime gives them.
        case install([String])
        /// A pip install Vantage cannot reproduce.
        case unusable(reason: String, hint: String)
        /// Another program (its name).
        case notPip(String)

        var isInstall: Bool {
            if case .install = self { return true }
            return false
        }
    }

    /// pip's options that take a value, so that the value is not read as a requirement or a path.
    static let valueOptions: Set<String> = [
        "-i", "--index-url", "--extra-index-url", "--trusted-host", "--platform", "--python-version",
        "--implementation", "--abi", "--progress-bar", "--upgrade-strategy", "--global-option", "--install-option",
        "-C", "--config-settings", "--src", "--log", "--cache-dir", "--proxy", "--timeout", "--retries",
        "--exists-action", "--cert", "--client-cert", "--no-binary", "--only-binary", "--use-feature",
        "--use-deprecated", "--python", "--report", "--root-user-action", "--keyring-provider", "--log-file",
        "--target", "-t", "--prefix", "--root",
    ]
    /// Options whose value is a local file or folder (or, for some, a URL).
    static let pathOptions: Set<String> = [
        "-r", "--requirement", "-c", "--constraint", "-e", "--editable", "-f", "--find-links",
    ]
    /// Options that only make sense inside the image, dropped with their value.
    static let droppedValueOptions: Set<String> = ["-t", "--target", "--prefix", "--root", "--cache-dir", "--log"]
    /// Flags that only make sense inside the image, dropped.
    static let droppedFlags: Set<String> = ["--user", "--no-cache-dir", "--break-system-packages"]

    func pipInstall(_ words: [String]) -> PipCommand {
        guard let first = words.first else { return .notPip("") }
        // `NAME=value pip install …` sets a variable for the command: not a plain pip install.
        if let equals = first.firstIndex(of: "="),
            first[..<equals].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" })
        {
            return .notPip("env")
        }
        let program = first.split(separator: "/").last.map(String.init) ?? first
        var index: Int
        if Self.isVersioned(program, "pip") {
            index = 1
        } else if Self.isVersioned(program, "python") {
            if words.count > 1, words[1] == "-mpip" {
                index = 2
            } else if words.count > 2, words[1] == "-m", words[2] == "pip" {
                index = 3
            } else {
                return .notPip(program)
            }
        } else {
            return .notPip(program)
        }
        // pip's general options may come before the command.
        var general: [String] = []
        while index < words.count, words[index].hasPrefix("-") {
            general.append(words[index])
            if Self.valueOptions.contains(words[index]), index + 1 < words.count {
                index += 1
                general.append(words[index])
            }
            index += 1
        }
        guard index < words.count else { return .unusable(reason: "runs pip without a command", hint: "") }
        guard words[index] == "install" else {
            return .unusable(reason: "runs pip \(words[index]), not pip install", hint: "run it yourself if needed")
        }
        return mapped(general + words[(index + 1)...])
    }

    /// `pip`, `pip3`, `pip3.8`; `python`, `python3`, `python3.8`.
    static func isVersioned(_ program: String, _ name: String) -> Bool {
        guard program.hasPrefix(name) else { return false }
        let version = program.dropFirst(name.count)
        return version.isEmpty || version.allSatisfy { $0.isNumber || $0 == "." } && version.first?.isNumber == true
    }

    /// The arguments after `install`, with image-only options dropped and `/panorama` paths mapped.
    func mapped(_ arguments: [String]) -> PipCommand {
        var result: [String] = []
        // Requirements, paths and -r/-e files: a pip install with none installs nothing.
        var targets = 0
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            let (option, attached) = Self.splitOption(argument)
            if Self.droppedFlags.contains(argument) { continue }
            if Self.droppedValueOptions.contains(option) {
                if attached == nil { index += 1 }
                continue
            }
            if Self.pathOptions.contains(option) {
                var value = attached
                if value == nil, index < arguments.count {
                    value = arguments[index]
                    index += 1
                }
                guard let value else { return .unusable(reason: "gives \(argument) no value", hint: "") }
                if ["-r", "--requirement", "-e", "--editable"].contains(option) { targets += 1 }
                switch mapPath(value) {
                case .success(let path):
                    result += attached != nil && argument.hasPrefix("--") ? ["\(option)=\(path)"] : [option, path]
                case .failure(let problem): return .unusable(reason: problem.reason, hint: problem.hint ?? "")
                }
                continue
            }
            if argument.hasPrefix("-") {
                result.append(argument)
                if Self.valueOptions.contains(argument), index < arguments.count {
                    result.append(arguments[index])
                    index += 1
                }
                continue
            }
            targets += 1
            if Self.looksLikePath(argument) {
                switch mapPath(argument) {
                case .success(let path): result.append(path)
                case .failure(let problem): return .unusable(reason: problem.reason, hint: problem.hint ?? "")
                }
                continue
            }
            result.append(argument)
        }
        guard targets > 0 else { return .unusable(reason: "names nothing to install", hint: "") }
        return .install(result)
    }

    /// `--option=value` → (`--option`, `value`); `-rfile` → (`-r`, `file`) for pip's one-letter path options.
    static func splitOption(_ argument: String) -> (option: String, value: String?) {
        if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
            return (String(argument[..<equals]), String(argument[argument.index(after: equals)...]))
        }
        if argument.count > 2, argument.hasPrefix("-"), !argument.hasPrefix("--") {
            let option = String(argument.prefix(2))
            if pathOptions.contains(option) || droppedValueOptions.contains(option) {
                return (option, String(argument.dropFirst(2)))
            }
        }
        return (argument, nil)
    }

    /// Whether a positional argument is a local path rather than a requirement (`numpy>=1.2`, `pkg[extra]`) or a URL.
    static func looksLikePath(_ argument: String) -> Bool {
        if argument.contains("://") || argument.contains("@") { return false }
        if argument == "." || argument == ".." || argument.hasPrefix("./") || argument.hasPrefix("../") { return true }
        if argument.hasPrefix("/") || argument.contains("/") { return true }
        return [".whl", ".tar.gz", ".zip", ".tgz"].contains { argument.hasSuffix($0) }
    }

    struct Problem: Error {
        var reason: String
        var hint: String?
    }

    /// A path as the build saw it → the same file for the runtime: `/panorama/x` → `<src>/x`. Paths elsewhere in the
    /// image do not exist outside it.
    func mapPath(_ path: String) -> Result<String, Problem> {
        if path.contains("://") || path.hasPrefix("git+") { return .success(path) }
        let absolute = Self.normalized(path, from: workingDirectory)
        if absolute == "/panorama" { return .success(sourceDirectory) }
        if absolute.hasPrefix("/panorama/") {
            return .success(sourceDirectory + "/" + absolute.dropFirst("/panorama/".count))
        }
        let where_ = path.hasPrefix("/") ? "" : " (relative to the build's working directory \(workingDirectory))"
        return .failure(
            Problem(
                reason: "installs from \(absolute)\(where_), a path in the image outside /panorama",
                hint: "put the file under src/ and name it /panorama/… in the Dockerfile, or install it yourself"))
    }

    /// `path` made absolute against `directory`, with `.` and `..` resolved.
    static func normalized(_ path: String, from directory: String) -> String {
        let full = path.hasPrefix("/") ? path : directory + "/" + path
        var parts: [Substring] = []
        for part in full.split(separator: "/") {
            switch part {
            case ".": continue
            case "..": _ = parts.popLast()
            default: parts.append(part)
            }
        }
        return "/" + parts.joined(separator: "/")
    }

    // MARK: Shell words

    /// The commands of a `RUN` line: exec form (`["pip", "install", "x"]`, or `["sh", "-c", "…"]`) or shell form
    /// split into `&&`-chained commands of words.
    static func commands(_ text: String) -> Result<[[String]], Problem> {
        if text.hasPrefix("["), let words = execForm(text) {
            if words.count == 3, ["sh", "bash", "/bin/sh", "/bin/bash"].contains(words[0]), words[1] == "-c" {
                return self.words(words[2])
            }
            return .success([words])
        }
        return words(text)
    }

    /// A JSON array of strings, or nil (then Docker reads the line in shell form).
    static func execForm(_ text: String) -> [String]? {
        guard let value = try? JSONParser.parse(Data(text.utf8)), case .array(let items) = value.kind else {
            return nil
        }
        let strings = items.compactMap(\.stringValue)
        return strings.count == items.count ? strings : nil
    }

    /// Splits shell text into commands separated by `&&`, each a list of words, honouring single and double quotes
    /// and backslashes. Anything that needs a real shell (variables, substitutions, pipes, redirections, `;`, `||`,
    /// background jobs, path wildcards) is refused with the reason.
    static func words(_ text: String) -> Result<[[String]], Problem> {
        var commands: [[String]] = [[]]
        var word = ""
        var inWord = false
        var wordHasWildcard = false
        var characters = Array(text)[...]
        var wildcardWord: String?
        func endWord() {
            if inWord { commands[commands.count - 1].append(word) }
            if wordHasWildcard && word.contains("/") { wildcardWord = word }
            word = ""
            inWord = false
            wordHasWildcard = false
        }
        func fail(_ reason: String, _ hint: String? = nil) -> Result<[[String]], Problem> {
            .failure(Problem(reason: reason, hint: hint))
        }
        while let c = characters.popFirst() {
            switch c {
            case " ", "\t", "\n":
                endWord()
            case "'":
                inWord = true
                guard let end = characters.firstIndex(of: "'") else { return fail("has an unterminated quote") }
                word += String(characters[..<end])
                characters = characters[(end + 1)...]
            case "\"":
                inWord = true
                var closed = false
                while let d = characters.popFirst() {
                    if d == "\"" {
                        closed = true
                        break
                    }
                    if d == "$" || d == "`" { return fail("uses shell variables or command substitution") }
                    if d == "\\", let next = characters.first, "\"\\$`".contains(next) {
                        word.append(next)
                        characters = characters.dropFirst()
                    } else {
                        word.append(d)
                    }
                }
                if !closed { return fail("has an unterminated quote") }
            case "\\":
                inWord = true
                if let next = characters.popFirst() { word.append(next) }
            case "$", "`":
                return fail("uses shell variables or command substitution")
            case "&":
                guard characters.first == "&" else { return fail("runs a command in the background (&)") }
                characters = characters.dropFirst()
                endWord()
                commands.append([])
            case "|":
                return fail("uses a pipe or ||")
            case ";":
                return fail("chains commands with ';'", "use && between pip installs, or give each a RUN line")
            case ">", "<":
                return fail(
                    "redirects input or output (\(c))",
                    "quote version specifiers, e.g. pip install \"numpy>=1.2\": unquoted, > is a redirection")
            case "(", ")":
                return fail("uses a subshell")
            case "#" where !inWord:
                characters = characters.suffix(0)
            case "*", "?":
                inWord = true
                wordHasWildcard = true
                word.append(c)
            default:
                inWord = true
                word.append(c)
            }
        }
        endWord()
        if let wildcardWord { return fail("uses a wildcard (\(wildcardWord))", "name the files one by one") }
        guard commands.allSatisfy({ !$0.isEmpty }) else { return fail("has an empty command around &&") }
        return .success(commands)
    }
}

/// A word quoted for a POSIX shell when it needs it.
func shellQuoted(_ word: String) -> String {
    let plain = word.unicodeScalars.allSatisfy {
        $0.isASCIILetterOrDigit || "-_./=:,+@%".unicodeScalars.contains($0)
    }
    if plain && !word.isEmpty { return word }
    return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
