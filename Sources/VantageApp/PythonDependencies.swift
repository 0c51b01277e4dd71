import Foundation

/// The Python packages a code package needs: its `requirements.txt` and the `pip install` lines of its Dockerfile.
///
/// The runtime installs them into a virtual environment of the package's own, cached by `digest`; `vantage app
/// import-panorama` only reports them. Paths are as the runtime uses them: absolute, with Panorama's `/panorama`
/// mapped to the package's `src/` folder.
public struct PythonDependencies: Sendable, Equatable {
    /// `<package>/src/requirements.txt`, else `<package>/requirements.txt`; `nil` when neither exists, or when a
    /// Dockerfile pip install already names it with `-r` (then it is installed once, in the Dockerfile's order).
    public var requirementsFile: URL?
    /// `<package>/Dockerfile`, when present.
    public var dockerfile: URL?
    /// The Dockerfile's pip installs, in file order.
    public var pipInstalls: [PipInstall]
    /// The Dockerfile's other instructions, with why each is not carried out.
    public var ignoredDockerfileLines: [DockerfileLine]
    /// Problems that do not stop reading but will make pip fail, e.g. a `-r` file that does not exist.
    public var warnings: [String]
    /// Hex SHA-256 over everything that decides what gets installed: the requirements file, every pip install's
    /// arguments (with `src/` written as `/panorama`, so moving the project changes nothing), and the files they
    /// name (requirements files they include, wheels and archives, a local project's `setup.py`,
    /// `setup.cfg` and `pyproject.toml`), and `environmentScheme`. The same on every run while those are unchanged.
    public var digest: String
    /// What the package asks pip for, as written (`opencv-python-headless==4.6.0.66`, `numpy<2`,
    /// `./wheels/x-1.0-py3-none-any.whl`): the requirements and constraints of its requirements files (and of the
    /// files they include) and the targets of the Dockerfile's pip installs, in order. pip's options are left out.
    public var requirements: [String]

    /// The version of the rules by which the runtime makes an environment from these dependencies. It is part of
    /// `digest`, so an environment made by older rules is not reused: 2 resolves the environment with no base
    /// packages visible to pip and, when the package does not name numpy, with `numpy<2`.
    public static let environmentScheme = 2

    /// Whether the package names numpy itself, as a requirement or a constraint: then its version is the package's
    /// choice. Otherwise the runtime installs with `numpy<2`, the numpy of Panorama's image, which the compiled
    /// packages of that time were built for.
    public var namesNumpy: Bool { requirements.contains { Self.projectName(of: $0) == "numpy" } }

    let packageDirectory: URL
    let sourceDirectory: URL

    /// Whether there is nothing to install.
    public var isEmpty: Bool { requirementsFile == nil && pipInstalls.isEmpty }

    /// Reads a code package's dependencies. `sourceDirectory` is its `src/` folder (Panorama's `/panorama`).
    ///
    /// A requirements file or Dockerfile that exists but cannot be read is an error naming it; files that pip
    /// installs name and that cannot be read are left to pip to report (see `warnings`).
    public static func read(packageDirectory: URL, sourceDirectory: URL) throws(ManifestError) -> PythonDependencies {
        let package = packageDirectory.standardizedFileURL
        let source = sourceDirectory.standardizedFileURL
        let shown = ShownPaths(packageDirectory: package, sourceDirectory: source)
        var dependencies = PythonDependencies(
            requirementsFile: nil, dockerfile: nil, pipInstalls: [], ignoredDockerfileLines: [], warnings: [],
            digest: "", requirements: [], packageDirectory: package, sourceDirectory: source)
        dependencies.requirementsFile = [
            source.appendingPathComponent("requirements.txt"), package.appendingPathComponent("requirements.txt"),
        ].first(where: isFile)

        let dockerfileURL = package.appendingPathComponent("Dockerfile")
        if isFile(dockerfileURL) {
            let data = try readFile(
                dockerfileURL, shown: shown.forError(dockerfileURL), what: "the Dockerfile",
                remedy: "or delete it if the package installs nothing with pip")
            let dockerfile = Dockerfile(text: String(decoding: data, as: UTF8.self), sourceDirectory: source)
            dependencies.dockerfile = dockerfileURL
            dependencies.pipInstalls = dockerfile.pipInstalls
            dependencies.ignoredDockerfileLines = dockerfile.ignored
        }
        if let requirements = dependencies.requirementsFile,
            dependencies.pipInstalls.contains(where: { $0.requirementFiles.contains(requirements.path) })
        {
            dependencies.requirementsFile = nil
        }

        var hash = SHA256()
        hash.update("vantage python dependencies \(environmentScheme)\n")
        var visited = Set<String>()
        if let requirements = dependencies.requirementsFile {
            let data = try readFile(
                requirements, shown: shown.forError(requirements), what: "the requirements file",
                remedy: "or delete it if the package needs no Python packages")
            hash.update("requirements \(shown.relative(requirements.path))\n")
            hash.update(data)
            hash.update("\n")
            visited.insert(requirements.path)
            hashIncluded(by: data, in: requirements.deletingLastPathComponent(), into: &hash, visited: &visited)
        }
        for install in dependencies.pipInstalls {
            hash.update("pip install\n")
            for argument in install.arguments {
                hash.update(shown.asContainerPath(argument))
                hash.update([0])
            }
            hash.update("\n")
            for path in install.localPaths {
                let url = URL(fileURLWithPath: path)
                if isFile(url) {
                    guard !visited.contains(path) else { continue }
                    visited.insert(path)
                    guard let data = try? Data(contentsOf: url) else { continue }
                    hash.update("file \(shown.asContainerPath(path)) \(data.count)\n")
                    hash.update(data)
                    if install.requirementFiles.contains(path) {
                        hashIncluded(by: data, in: url.deletingLastPathComponent(), into: &hash, visited: &visited)
                    }
                } else if isDirectory(url) {
                    // A local project: what it installs is decided by its packaging files.
                    for name in ["pyproject.toml", "setup.py", "setup.cfg"] {
                        let file = url.appendingPathComponent(name)
                        guard let data = try? Data(contentsOf: file) else { continue }
                        hash.update("file \(shown.asContainerPath(file.path)) \(data.count)\n")
                        hash.update(data)
                    }
                } else {
                    dependencies.warnings.append(
                        "Dockerfile:\(install.line): pip install names \(shown.relative(path)), which does not exist "
                            + "— pip will fail: add the file, or fix the path in the Dockerfile")
                }
            }
        }
        dependencies.digest = hash.finalizeHex()

        var read = Set<String>()
        if let requirements = dependencies.requirementsFile {
            dependencies.requirements += requirementLines(of: requirements, visited: &read)
        }
        for install in dependencies.pipInstalls {
            dependencies.requirements += install.requirements(visited: &read)
        }
        return dependencies
    }

    /// The normalized project name a requirement names (`numpy` for `NumPy>=1.2`, `numpy @ https://…` or
    /// `/wheels/numpy-1.26.4-cp311-cp311-linux_x86_64.whl`), or `nil` for a local project folder or a URL without
    /// one.
    public static func projectName(of requirement: String) -> String? {
        let text = requirement.trimmingCharacters(in: .whitespaces)
        // A URL or a path, as opposed to `name @ URL`.
        let scheme = text.range(of: "://").map { text[..<$0.lowerBound] }
        let isURL = scheme.map { $0.allSatisfy { $0.isLetter || $0 == "+" } } ?? false
        let isLocation = isURL || text.hasPrefix("/") || text.hasPrefix(".") || text.hasPrefix("~")
        var name: Substring
        if !isLocation, let at = text.firstIndex(of: "@") {
            name = text[..<at]  // `name @ URL`
        } else if let egg = text.range(of: "#egg=") {
            name = text[egg.upperBound...]
        } else if isLocation || text.hasSuffix(".whl") || text.hasSuffix(".tar.gz") || text.hasSuffix(".zip") {
            // A distribution file: `name-version-….whl` or `name-version.tar.gz`.
            let file = text.split(separator: "/").last ?? ""
            guard file.hasSuffix(".whl") || file.hasSuffix(".tar.gz") || file.hasSuffix(".zip") else { return nil }
            guard let dash = file.firstIndex(of: "-") else { return nil }
            name = file[..<dash]
        } else {
            name = text.prefix { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_" }
        }
        name = name.prefix { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_" }
        guard !name.isEmpty else { return nil }
        // PEP 503: case-insensitive, runs of `-`, `_` and `.` are the same.
        var normalized = ""
        for character in name.lowercased() {
            if character == "-" || character == "_" || character == "." {
                if !normalized.hasSuffix("-") { normalized.append("-") }
            } else {
                normalized.append(character)
            }
        }
        return normalized
    }

    /// The requirements and constraints of a requirements file and of the files it includes (`-r`, `-c`), without
    /// pip's options (`--no-index`, `--find-links DIR`, `--hash=…`) and comments.
    static func requirementLines(of file: URL, visited: inout Set<String>) -> [String] {
        let file = file.standardizedFileURL
        guard visited.count < 100, visited.insert(file.path).inserted, let data = try? Data(contentsOf: file) else {
            return []
        }
        var result: [String] = []
        let text = String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\\\n", with: " ")
        for rawLine in text.split(whereSeparator: \.isNewline) {
            var line = Substring(rawLine.trimmingCharacters(in: .whitespaces))
            if let comment = line.range(of: " #") ?? line.range(of: "\t#") { line = line[..<comment.lowerBound] }
            if line.hasPrefix("#") { continue }
            let words = line.split(whereSeparator: \.isWhitespace).map(String.init)
            guard let first = words.first else { continue }
            if first.hasPrefix("-") {
                let (option, attached) = DockerfileReader.splitOption(first)
                let value = attached ?? (words.count > 1 ? words[1] : nil)
                guard let value else { continue }
                if ["-r", "--requirement", "-c", "--constraint"].contains(option), !value.contains("://") {
                    let included =
                        value.hasPrefix("/")
                        ? URL(fileURLWithPath: value) : file.deletingLastPathComponent().appendingPathComponent(value)
                    result += requirementLines(of: included, visited: &visited)
                } else if option == "-e" || option == "--editable" {
                    result.append(value)
                }
                continue
            }
            // A requirement, up to its per-requirement options (`--hash=…`).
            let requirement = line.components(separatedBy: " -").first ?? String(line)
            result.append(requirement.trimmingCharacters(in: .whitespaces))
        }
        return result
    }

    /// Lines for the user: what will be installed, problems, and every ignored Dockerfile line, e.g.
    /// `Dockerfile:5: ignored (not a pip install): RUN apt-get install -y libgl1 — install system packages on the
    /// host yourself`. Paths are relative to the package folder.
    public var report: [String] {
        let shown = ShownPaths(packageDirectory: packageDirectory, sourceDirectory: sourceDirectory)
        var lines: [String] = []
        if let requirementsFile {
            lines.append(
                "\(shown.relative(requirementsFile.path)): pip install -r \(shown.relative(requirementsFile.path))")
        }
        for install in pipInstalls {
            let arguments = install.arguments.map { shellQuoted(shown.relative($0)) }
            lines.append("Dockerfile:\(install.line): pip install " + arguments.joined(separator: " "))
        }
        lines += warnings
        for line in ignoredDockerfileLines { lines.append("Dockerfile:\(line.line): \(line)") }
        if isEmpty {
            lines.insert(
                dockerfile == nil
                    ? "no Python packages to install (no requirements.txt, no Dockerfile)"
                    : "no Python packages to install (no requirements.txt, no pip install in the Dockerfile)",
                at: 0)
        }
        return lines
    }

    // MARK: Helpers

    static func isFile(_ url: URL) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && !isDirectory.boolValue
    }

    static func isDirectory(_ url: URL) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    static func readFile(_ url: URL, shown: String, what: String, remedy: String) throws(ManifestError) -> Data {
        do {
            return try Data(contentsOf: url)
        } catch {
            throw ManifestError(
                .unreadableFile, file: shown, message: "cannot read \(what) \(shown)",
                hint: "make it readable by the user running vantage (chmod a+r \(url.path)), \(remedy)")
        }
    }

    /// Adds the files a requirements file includes (`-r FILE`, `-c FILE`, relative to it) to the hash, recursively.
    static func hashIncluded(by data: Data, in directory: URL, into hash: inout SHA256, visited: inout Set<String>) {
        for rawLine in String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline) {
            let words = rawLine.split(whereSeparator: \.isWhitespace).map(String.init)
            guard let first = words.first else { continue }
            var path: String?
            for option in ["-r", "--requirement", "-c", "--constraint"] {
                if first == option, words.count > 1 { path = words[1] }
                if first.hasPrefix(option + "=") { path = String(first.dropFirst(option.count + 1)) }
                if option.count == 2, first.hasPrefix(option), first.count > 2, !first.hasPrefix("--") {
                    path = String(first.dropFirst(2))
                }
            }
            guard let path, !path.contains("://") else { continue }
            let url = (path.hasPrefix("/") ? URL(fileURLWithPath: path) : directory.appendingPathComponent(path))
                .standardizedFileURL
            guard visited.count < 100, !visited.contains(url.path), let included = try? Data(contentsOf: url) else {
                continue
            }
            visited.insert(url.path)
            hash.update("included \(url.lastPathComponent) \(included.count)\n")
            hash.update(included)
            hashIncluded(by: included, in: url.deletingLastPathComponent(), into: &hash, visited: &visited)
        }
    }
}

/// How a code package's paths are shown and hashed.
struct ShownPaths {
    let packageDirectory: URL
    let sourceDirectory: URL

    /// A path relative to the package folder when inside it (`src/requirements.txt`), else as it is.
    func relative(_ path: String) -> String {
        let root = packageDirectory.path.hasSuffix("/") ? packageDirectory.path : packageDirectory.path + "/"
        if path == packageDirectory.path { return "." }
        return path.hasPrefix(root) ? String(path.dropFirst(root.count)) : path
    }

    /// A path as the container saw it: the source folder written as `/panorama`, so the digest does not depend on
    /// where the project lives.
    func asContainerPath(_ argument: String) -> String {
        let source = sourceDirectory.path
        if argument == source { return "/panorama" }
        if argument.hasPrefix(source + "/") { return "/panorama" + argument.dropFirst(source.count) }
        if let equals = argument.firstIndex(of: "="), argument.hasPrefix("--") {
            return String(argument[...equals]) + asContainerPath(String(argument[argument.index(after: equals)...]))
        }
        return argument
    }

    /// A file for an error message: relative to the project (`packages/<pkg>/Dockerfile`) when the package sits in
    /// a project's `packages/` folder.
    func forError(_ url: URL) -> String {
        let parent = packageDirectory.deletingLastPathComponent()
        guard parent.lastPathComponent == "packages" else { return url.path }
        return "packages/\(packageDirectory.lastPathComponent)/" + relative(url.path)
    }
}

extension PipInstall {
    /// What the install asks for: its targets (requirements, wheels, local projects) and the requirements and
    /// constraints of the files it names with `-r` and `-c`, in order.
    func requirements(visited: inout Set<String>) -> [String] {
        var result: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            let (option, attached) = DockerfileReader.splitOption(argument)
            if DockerfileReader.pathOptions.contains(option) {
                let value = attached ?? (index < arguments.count ? arguments[index] : "")
                if attached == nil { index += 1 }
                if ["-r", "--requirement", "-c", "--constraint"].contains(option), value.hasPrefix("/") {
                    result += PythonDependencies.requirementLines(of: URL(fileURLWithPath: value), visited: &visited)
                } else if option == "-e" || option == "--editable" {
                    result.append(value)
                }
            } else if argument.hasPrefix("-") {
                if DockerfileReader.valueOptions.contains(argument) { index += 1 }
            } else {
                result.append(argument)
            }
        }
        return result
    }

    /// The absolute paths of the files given with `-r`/`--requirement` and `-c`/`--constraint`.
    var requirementFiles: [String] {
        paths(options: ["-r", "--requirement", "-c", "--constraint"], positional: false)
    }

    /// Every local path the install names: requirement files, editable and local projects, archives and wheels.
    var localPaths: [String] {
        paths(options: ["-r", "--requirement", "-c", "--constraint", "-e", "--editable"], positional: true)
    }

    private func paths(options: Set<String>, positional: Bool) -> [String] {
        var result: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            let (option, attached) = DockerfileReader.splitOption(argument)
            if options.contains(option) {
                let value = attached ?? (index < arguments.count ? arguments[index] : "")
                if attached == nil { index += 1 }
                if value.hasPrefix("/") { result.append(value) }
            } else if argument.hasPrefix("-") {
                if DockerfileReader.valueOptions.contains(argument) || DockerfileReader.pathOptions.contains(argument) {
                    index += 1
                }
            } else if positional, argument.hasPrefix("/") {
                result.append(argument)
            }
        }
        return result
    }
}
