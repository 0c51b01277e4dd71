import Foundation
import VantageAPI
import VantageApp
import VantageCore
import ZIPFoundation

/// A request body received into a temporary file, with its digest computed on the way in.
public struct Upload: Sendable {
    public let file: URL
    /// `sha256:<hex>`.
    public let digest: String
    public let size: Int64

    public init(file: URL, digest: String, size: Int64) {
        self.file = file
        self.digest = digest
        self.size = size
    }
}

extension Store {
    // MARK: Models

    public func listModels() async throws -> [Model] {
        let rows = try await database.query("SELECT id, name, description, created_at FROM models ORDER BY name")
        var models: [Model] = []
        for row in rows { models.append(try await model(from: row)) }
        return models
    }

    func model(from row: SQLRow) async throws -> Model {
        let id = try row.text("id")
        let versions = try await database.query(
            "SELECT version, digest, size, filename, descriptor, created_at FROM model_versions WHERE model_id = \(id) ORDER BY version"
        ).map { row in
            ModelVersion(
                version: Int(try row.integer("version")), digest: try row.text("digest"), size: try row.integer("size"),
                filename: try row.text("filename"),
                descriptor: try row.optionalText("descriptor").map { try Self.decodeJSON(JSONValue.self, $0) },
                createdAt: Millis.date(try row.integer("created_at")))
        }
        return Model(
            id: id, name: try row.text("name"), description: try row.text("description"),
            latestVersion: versions.last?.version, versions: versions,
            createdAt: Millis.date(try row.integer("created_at")))
    }

    public func model(_ id: String) async throws -> Model {
        guard Identifiers.isValid(id, prefix: "mdl"),
            let row = try await database.query("SELECT id, name, description, created_at FROM models WHERE id = \(id)")
                .first
        else { throw APIError.notFound("model", id) }
        return try await model(from: row)
    }

    public func createModel(_ new: NewModel) async throws -> Model {
        try Self.checkName(new.name, of: "model")
        let description = try Self.checkDescription(new.description)
        let id = Identifiers.make("mdl")
        try await Self.unique("a model named \"\(new.name)\"") {
            try await database.query(
                "INSERT INTO models (id, name, description, created_at) VALUES (\(id), \(new.name), \(description), \(Millis.now()))"
            )
        }
        return try await model(id)
    }

    public func deleteModel(_ id: String) async throws {
        _ = try await model(id)
        try await refuseDeletingModelInUse(id)
        try await database.query("DELETE FROM models WHERE id = \(id)")
    }

    /// The model file formats a version may be: the runtime loads the first three as they are; a ZIP holds one model
    /// with the files beside it (an OpenVINO IR's `.xml` and `.bin`: ``ModelArchive``).
    static let modelExtensions = [".onnx", ".pb", ".tflite", ".zip"]

    /// What to do with a file a version cannot be, by its ending (checked before the general rule).
    static let modelFileHints: [(ending: String, hint: String)] = [
        (
            ".xml",
            "an OpenVINO IR needs its .bin beside it: upload both in one ZIP (vantage models upload NAME.xml makes it)"
        ),
        (
            ".bin",
            "an OpenVINO IR's weights need their .xml: upload both in one ZIP (vantage models upload NAME.xml makes it)"
        ),
        (
            ".tar.gz",
            "a .tar.gz is the SageMaker Neo input Panorama compiled, which runs nowhere else: unpack it and upload the "
                + "model itself (.onnx, .pb, .tflite) or a ZIP of an OpenVINO IR"
        ),
    ]

    /// Adds the uploaded file as the model's next version.
    public func addModelVersion(_ id: String, upload: Upload, filename: String, descriptor: JSONValue?) async throws
        -> ModelVersion
    {
        _ = try await model(id)
        if let refused = Self.modelFileHints.first(where: { filename.lowercased().hasSuffix($0.ending) }) {
            throw APIError.invalid("filename \"\(filename.prefix(260))\": \(refused.hint)")
        }
        guard !filename.isEmpty, filename.count <= 255, !filename.hasPrefix("."),
            filename.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-+".contains($0)) }),
            Self.modelExtensions.contains(where: { filename.lowercased().hasSuffix($0) })
        else {
            throw APIError.invalid(
                "filename \"\(filename.prefix(260))\" must be a plain file name (letters, digits, '.', '_', '-', '+') ending in \(Self.modelExtensions.joined(separator: ", "))"
            )
        }
        guard upload.size > 0 else { throw APIError.invalid("the model file is empty") }
        if ModelArchive.isArchive(filename) {
            // Checked now, not when a device first unpacks it: an archive without exactly one model never becomes
            // a version.
            do {
                _ = try ModelArchive.check(upload.file)
            } catch {
                throw APIError.unprocessable("\(filename.prefix(260)): \(error.message)")
            }
        }
        try await artifacts.put(file: upload.file, digest: upload.digest)
        try await signArtifact(upload.digest, .model)
        let descriptorText = descriptor.map { Self.json($0) }
        let now = Millis.now()
        // Two uploads at once may pick the same next number (READ COMMITTED on PostgreSQL): the loser takes the next.
        var attempt = 0
        while true {
            attempt += 1
            do {
                let version = try await database.transaction { db -> Int in
                    let last =
                        try await db.query("SELECT MAX(version) AS v FROM model_versions WHERE model_id = \(id)").first?
                        .optionalInteger("v") ?? 0
                    let next = Int(last) + 1
                    try await db.query(
                        """
                        INSERT INTO model_versions (model_id, version, digest, size, filename, descriptor, created_at)
                        VALUES (\(id), \(next), \(upload.digest), \(upload.size), \(filename), \(descriptorText), \(now))
                        """)
                    return next
                }
                guard let stored = try await model(id).versions.first(where: { $0.version == version }) else {
                    throw APIError.notFound("model", id)
                }
                return stored
            } catch let error as DatabaseError where error.code == .uniqueViolation && attempt < 20 {
                continue
            } catch let error as DatabaseError where error.code == .foreignKeyViolation {
                throw APIError.notFound("model", id)
            }
        }
    }

    /// The stored file of a model version, with its file name.
    public func modelFile(_ id: String, version: Int) async throws -> (url: URL, filename: String) {
        guard let entry = try await model(id).versions.first(where: { $0.version == version }) else {
            throw APIError.notFound("version", "\(version) of model \(id)")
        }
        guard let url = try await artifacts.file(for: entry.digest) else {
            throw APIError(
                500, "the artifact \(entry.digest) of model \(id) version \(version) is missing from the artifact store"
            )
        }
        return (url, entry.filename)
    }

    // MARK: Packages

    static let packageColumns = "id, name, description, created_at"

    func package(from row: SQLRow) async throws -> Package {
        let id = try row.text("id")
        let versions = try await database.query(
            """
            SELECT version, status, digest, size, application, inputs, created_at FROM package_versions
            WHERE package_id = \(id) ORDER BY created_at
            """
        ).map { row in
            let inputs = try Self.decodeJSON(PackageInputs.self, try row.text("inputs"))
            return PackageVersion(
                version: try row.text("version"),
                status: PackageVersionStatus(rawValue: try row.text("status")) ?? .failed,
                digest: try row.text("digest"),
                size: try row.integer("size"), application: try row.text("application"), cameras: inputs.cameras,
                parameters: inputs.parameters, createdAt: Millis.date(try row.integer("created_at")))
        }
        return Package(
            id: id, name: try row.text("name"), description: try row.text("description"),
            latestVersion: versions.last?.version, versions: versions,
            createdAt: Millis.date(try row.integer("created_at")))
    }

    public func listPackages() async throws -> [Package] {
        var packages: [Package] = []
        for row in try await database.query("SELECT \(raw: Self.packageColumns) FROM packages ORDER BY name") {
            packages.append(try await package(from: row))
        }
        return packages
    }

    public func package(_ id: String) async throws -> Package {
        guard Identifiers.isValid(id, prefix: "pkg"),
            let row = try await database.query("SELECT \(raw: Self.packageColumns) FROM packages WHERE id = \(id)")
                .first
        else { throw APIError.notFound("package", id) }
        return try await package(from: row)
    }

    public func createPackage(_ new: NewPackage) async throws -> Package {
        try Self.checkName(new.name, of: "package")
        let description = try Self.checkDescription(new.description)
        let id = Identifiers.make("pkg")
        try await Self.unique("a package named \"\(new.name)\"") {
            try await database.query(
                "INSERT INTO packages (id, name, description, created_at) VALUES (\(id), \(new.name), \(description), \(Millis.now()))"
            )
        }
        return try await package(id)
    }

    public func deletePackage(_ id: String) async throws {
        _ = try await package(id)
        let users = try await database.query("SELECT id FROM instances WHERE package_id = \(id)")
        guard users.isEmpty else {
            throw APIError.conflict(
                "package \(id) is used by application instances \(users.compactMap { try? $0.text("id") }.joined(separator: ", ")): delete them first"
            )
        }
        try await database.query("DELETE FROM packages WHERE id = \(id)")
    }

    /// Registers an uploaded ZIP of an application project as `version` of the package, after unpacking it safely
    /// and loading it with the runtime's manifest parser: a project `vantage run` would refuse is refused here,
    /// with the parser's message.
    public func addPackageVersion(_ id: String, version: String, upload: Upload) async throws -> PackageVersion {
        let existing = try await package(id)
        guard !version.isEmpty, version.count <= 32,
            version.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) })
        else {
            throw APIError.invalid(
                "version \"\(version.prefix(40))\" must be 1-32 letters, digits, '.', '_' or '-' (e.g. 1.0)")
        }
        guard !existing.versions.contains(where: { $0.version == version }) else {
            throw APIError.conflict(
                "version \(version) of package \(existing.name) already exists: give the new one another version")
        }
        let scratch = artifacts.scratchFolder
        let project = try await Blocking.run { try PackageArchive.validate(upload.file, scratch: scratch) }
        let inputs = PackageInputs(project.inputs)
        try await artifacts.put(file: upload.file, digest: upload.digest)
        try await signArtifact(upload.digest, .package)
        try await Self.unique("version \(version) of package \(id)") {
            try await database.query(
                """
                INSERT INTO package_versions (package_id, version, status, digest, size, application, inputs, created_at)
                VALUES (\(id), \(version), \(PackageVersionStatus.registerCompleted.rawValue), \(upload.digest),
                        \(upload.size), \(project.name), \(Self.json(inputs)), \(Millis.now()))
                """)
        }
        guard let stored = try await package(id).versions.first(where: { $0.version == version }) else {
            throw APIError.notFound("package", id)
        }
        return stored
    }

    public func packageArchive(_ id: String, version: String) async throws -> URL {
        guard let entry = try await package(id).versions.first(where: { $0.version == version }) else {
            throw APIError.notFound("version", "\(version) of package \(id)")
        }
        guard let url = try await artifacts.file(for: entry.digest) else {
            throw APIError(500, "the artifact \(entry.digest) of package \(id) version \(version) is missing")
        }
        return url
    }
}

/// A package version's inputs as stored (the API's shape of ``ApplicationInputs``).
struct PackageInputs: Codable {
    var cameras: [CameraInput]
    var parameters: [ParameterInput]

    init(_ inputs: ApplicationInputs) {
        cameras = inputs.cameras.map { CameraInput(node: $0.node, title: $0.title, description: $0.description) }
        parameters = inputs.parameters.map {
            ParameterInput(
                node: $0.node, type: $0.type.rawValue, defaultValue: JSONValue($0.defaultValue),
                overridable: $0.overridable,
                mandatory: $0.mandatory, title: $0.title, description: $0.description,
                constraintText: $0.constraintText,
                constraintRegex: $0.constraintRegex)
        }
    }
}

extension JSONValue {
    init(_ value: ParameterValue) {
        switch value {
        case .string(let v): self = .string(v)
        case .int32(let v): self = .number(Double(v))
        // Via its shortest decimal text: 0.6 as a Float is 0.6000000238418579 as a Double.
        case .float32(let v): self = .number(Double("\(v)") ?? Double(v))
        case .boolean(let v): self = .bool(v)
        }
    }
}
