import Foundation

// Whether a project carries everything a device needs to run it.
//
// On the machine where an application is written, `vantage run` finds a Swift code node's program beside the
// `vantage` binary (SwiftPM built it there) and a model file wherever `vantage.file` points, `../../.deps/…`
// included. A device has neither: it has the package archive and nothing else. The server refuses such a package at
// push time (see `PackageArchive`), and `vantage app build` makes a project self-contained and checks its own output
// with the same rules.

extension ApplicationProject {
    /// What of this application lives outside its project folder, one error per node (empty when a device can run it
    /// from the project alone). Each names the node, what is outside and what to do.
    ///
    /// - A code node whose program is given by a bare name, not a Python interpreter and not in its package, while the
    ///   package holds Swift sources: the program was built from them on this machine, and a device has no build.
    ///   A bare name without Swift sources is a program of the device's own system (`bash`, `node`) and is left to it,
    ///   as is an absolute path.
    /// - A code node whose program is a relative path (`bin/people-counter`, relative to `src/`) that is not there.
    /// - A model node whose `vantage.file` leaves the project folder or is not in it. A model node without a
    ///   `vantage` block is left alone: its model is bound at instance creation (`--model NODE=MODEL_ID`).
    public func partsOutside() -> [ManifestError] {
        var problems: [ManifestError] = []
        let fm = FileManager.default
        for name in graph.nodes.map(\.name) {
            guard let info = nodeInfos[name] else { continue }
            let descriptor = info.descriptorFile.map { context.shown($0) }
            switch info.role {
            case .code(let runtime):
                guard let source = info.sourceDirectory, !runtime.path.isEmpty,
                    !runtime.path.hasPrefix("/"), !PythonInterpreter.isPython(runtime.path)
                else { continue }
                let program = source.appendingPathComponent(runtime.path)
                if fm.isExecutableFile(atPath: program.path) { continue }
                if runtime.path.contains("/") {
                    problems.append(
                        ManifestError(
                            .notSelfContained, file: descriptor, node: name, key: "entry.path",
                            message: "code node \"\(name)\" runs \(context.shown(program)), which is not in its "
                                + "package (or is not executable)",
                            hint: "build the package with vantage app build \(directory.lastPathComponent), which "
                                + "puts the node's program inside it, or fix entry.path"))
                } else if Self.holdsSwiftSources(source) {
                    problems.append(
                        ManifestError(
                            .notSelfContained, file: descriptor, node: name, key: "entry.path",
                            message: "code node \"\(name)\" runs \"\(runtime.path)\", a program built from its Swift "
                                + "sources that is not in its package: this machine finds it beside vantage, a device "
                                + "would not",
                            hint: "run vantage app build \(directory.lastPathComponent): it compiles the node into the "
                                + "package (a device needs no compiler), then push what it wrote"))
                }
            case .model(_, let spec?, _):
                let file = spec.file
                if ProjectPath.leavesProject(file, from: "") {
                    problems.append(
                        ManifestError(
                            .notSelfContained, file: descriptor, node: name, key: "vantage.file",
                            message: "model node \"\(name)\" loads \(file), which is outside the project",
                            hint: "run vantage app build \(directory.lastPathComponent): it copies the model file "
                                + "into the package; or copy the file into the project and set vantage.file to its "
                                + "path there"))
                } else if !fm.fileExists(atPath: directory.appendingPathComponent(file).path) {
                    problems.append(
                        ManifestError(
                            .notSelfContained, file: descriptor, node: name, key: "vantage.file",
                            message: "model node \"\(name)\" loads \(file), which is not in the project",
                            hint: "put the model file at \(file) in the project, or build with vantage app build "
                                + "\(directory.lastPathComponent) --model \(name)=PATH"))
                }
            default:
                continue
            }
        }
        return problems
    }

    /// Whether a code node's folder holds Swift sources (a `Package.swift`, or `.swift` files at any depth).
    static func holdsSwiftSources(_ folder: URL) -> Bool {
        let fm = FileManager.default
        if fm.fileExists(atPath: folder.appendingPathComponent("Package.swift").path) { return true }
        guard let walk = fm.enumerator(atPath: folder.path) else { return false }
        for case let path as String in walk where path.hasSuffix(".swift") { return true }
        return false
    }

    var context: ProjectContext { ProjectContext(directory: directory) }
}
