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
    /// `setup.cfg` and `pyproject.toml`). The same on every run while those are unchanged.
    public var digest: String

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
            digest: "", packageDirectory: package, sourceDirectory: source)
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
        hash.update("vantage python dependencies 1\n")
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
        return dependencies
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
