import Foundation
import VantageAPI
import VantageApp
import VantageCore

extension Store {
    static let instanceColumns = """
        i.id, i.name, i.description, i.package_id, p.name AS package_name, i.package_version, i.device_id, i.cameras,
        i.parameters, i.models, i.outputs, i.aws_credentials_summary, i.desired_state, i.status, i.health_status,
        i.status_description, i.created_at, i.updated_at
        """

    func instance(from row: SQLRow) throws -> ApplicationInstance {
        ApplicationInstance(
            id: try row.text("id"), name: try row.text("name"), description: try row.text("description"),
            packageId: try row.text("package_id"), packageName: try row.text("package_name"),
            packageVersion: try row.text("package_version"), deviceId: try row.text("device_id"),
            cameras: try Self.decodeJSON([String: String].self, try row.text("cameras")),
            parameters: try Self.decodeJSON([String: JSONValue].self, try row.text("parameters")),
            models: try Self.decodeJSON([String: ModelBinding].self, try row.text("models")),
            outputs: try row.optionalText("outputs").map { try Self.decodeJSON(JSONValue.self, $0) },
            awsCredentials: try row.optionalText("aws_credentials_summary").map {
                try Self.decodeJSON(AWSCredentialsSummary.self, $0)
            },
            desiredState: DesiredState(rawValue: try row.text("desired_state")) ?? .stopped,
            status: InstanceStatus(rawValue: try row.text("status")) ?? .deploymentError,
            healthStatus: HealthStatus(rawValue: try row.text("health_status")) ?? .notAvailable,
            statusDescription: try row.text("status_description"),
            createdAt: Millis.date(try row.integer("created_at")), updatedAt: Millis.date(try row.integer("updated_at"))
        )
    }

    /// Instances, optionally of one device or in one status.
    public func listInstances(device: String? = nil, status: InstanceStatus? = nil) async throws
        -> [ApplicationInstance]
    {
        var sql: SQL =
            "SELECT \(raw: Self.instanceColumns) FROM instances i JOIN packages p ON p.id = i.package_id WHERE 1 = 1"
        if let device { sql.append(" AND i.device_id = \(device)") }
        if let status { sql.append(" AND i.status = \(status.rawValue)") }
        sql.append(" ORDER BY i.name, i.id")
        return try await database.query(sql).map { try instance(from: $0) }
    }

    public func instance(_ id: String) async throws -> ApplicationInstance {
        guard Identifiers.isValid(id, prefix: "ins"),
            let row = try await database.query(
                "SELECT \(raw: Self.instanceColumns) FROM instances i JOIN packages p ON p.id = i.package_id WHERE i.id = \(id)"
            ).first
        else { throw APIError.notFound("application instance", id) }
        return try instance(from: row)
    }

    /// Checks bindings against the package version's manifest: every camera node bound to a registered camera, and
    /// only overridable parameters, each of its type and matching its constraint.
    ///
    /// A camera goes only to its own device: one assigned to another device than `device` (where the instance
    /// runs) is refused with 409, since its credentials would reach that device; an unassigned one is assigned to
    /// `device` when the instance is stored (``assignCameras(_:cameras:device:now:)``). nil `device` (an instance
    /// being removed) skips that check.
    func checkBindings(
        packageId: String, version: String, device: String?, cameras: [String: String], parameters: [String: JSONValue]
    ) async throws -> [String: JSONValue] {
        let package: Package
        do {
            package = try await self.package(packageId)
        } catch let error as APIError where error.status == 404 {
            throw APIError.unprocessable("packageId: \(error.message)")
        }
        guard let packageVersion = package.versions.first(where: { $0.version == version }) else {
            let known = package.versions.map(\.version).joined(separator: ", ")
            throw APIError.unprocessable(
                "package \(package.name) has no version \(version)"
                    + (known.isEmpty ? " (upload one first)" : " (it has \(known))"))
        }
        let cameraNodes = packageVersion.cameras.map(\.node)
        for node in cameras.keys.sorted() where !cameraNodes.contains(node) {
            throw APIError.unprocessable(
                "cameras: the application has no camera node \"\(ManifestError.excerpt(node))\" (its camera nodes: \(cameraNodes.joined(separator: ", ")))"
            )
        }
        for node in cameraNodes {
            guard let cameraId = cameras[node] else {
                throw APIError.unprocessable("cameras: bind camera node \"\(node)\" to a camera id")
            }
            let camera: Camera
            do {
                camera = try await self.camera(cameraId)
            } catch let error as APIError where error.status == 404 {
                throw APIError.unprocessable("cameras.\(node): \(ManifestError.excerpt(error.message, limit: 200))")
            }
            if let device, let assigned = camera.deviceId, assigned != device {
                let assignedName = (try? await self.device(assigned).name).map { "\($0) (\(assigned))" } ?? assigned
                let deviceName = (try? await self.device(device).name).map { "\($0) (\(device))" } ?? device
                throw APIError.conflict(
                    "cameras.\(node): camera \(camera.name) (\(camera.id)) is assigned to device \(assignedName), not to "
                        + "device \(deviceName) where this instance runs, and a camera's credentials go only to its own "
                        + "device: bind a camera of \(deviceName), or assign this one to it first (PATCH "
                        + "/api/v1/cameras/\(camera.id) {\"deviceId\": \"\(device)\"}) once no instance on its device uses it"
                )
            }
        }
        var checked: [String: JSONValue] = [:]
        for (node, value) in parameters.sorted(by: { $0.key < $1.key }) {
            guard let input = packageVersion.parameters.first(where: { $0.node == node }) else {
                let names = packageVersion.parameters.filter(\.overridable).map(\.node)
                throw APIError.unprocessable(
                    "parameters: the application has no parameter node \"\(ManifestError.excerpt(node))\""
                        + (names.isEmpty
                            ? " (none is overridable)" : " (overridable: \(names.joined(separator: ", ")))"))
            }
            let checkedValue = ApplicationInputs.check(
                value.text, node: node, type: PortType(rawValue: input.type) ?? .string, overridable: input.overridable,
                constraint: NodeDecorator(constraintText: input.constraintText, constraintRegex: input.constraintRegex))
            switch checkedValue {
            case .success(let typed): checked[node] = JSONValue(typed)
            case .failure(let failure): throw APIError.unprocessable("parameters: \(failure)")
            }
        }
        for input in packageVersion.parameters where input.mandatory && checked[input.node] == nil {
            throw APIError.unprocessable(
                "parameters: \"\(input.node)\" must be given (the manifest marks it overrideMandatory)")
        }
        return checked
    }

    /// Model node → model id, resolved to each model's latest version, or `"ID@VERSION"` for that version of it.
    /// The runtime on the device checks that the node is a model node of the application (a wrong one fails the
    /// deployment with a message saying so).
    func bindModels(_ models: [String: String]) async throws -> [String: ModelBinding] {
        var bound: [String: ModelBinding] = [:]
        for (node, given) in models.sorted(by: { $0.key < $1.key }) {
            guard !node.isEmpty, node.count <= 128 else {
                throw APIError.invalid("models: a model node name is 1-128 characters")
            }
            var modelId = given
            var pinned: Int?
            if let at = given.lastIndex(of: "@"), let version = Int(given[given.index(after: at)...]) {
                modelId = String(given[..<at])
                pinned = version
            }
            let model: Model
            do {
                model = try await self.model(modelId)
            } catch let error as APIError where error.status == 404 {
                throw APIError.unprocessable("models.\(node): \(error.message)")
            }
            let versions = model.versions.map(\.version)
            guard let latest = versions.max() else {
                throw APIError.unprocessable(
                    "models.\(node): model \(model.name) has no version yet: upload one (vantage models upload \(modelId) FILE)"
                )
            }
            if let pinned, !versions.contains(pinned) {
                throw APIError.unprocessable(
                    "models.\(node): model \(model.name) has no version \(pinned) (it has \(versions.sorted().map(String.init).joined(separator: ", "))): "
                        + "give one of them as \(model.id)@VERSION, or the id alone for the latest")
            }
            bound[node] = ModelBinding(modelId: model.id, version: pinned ?? latest)
        }
        return bound
    }

    /// Checks an `outputs` document as the device's runtime will read it, with `${NAME}` references kept: every
    /// setting known and well typed, and every secret setting a reference, so no secret is stored here. Rules may
    /// name sinks of the package's own graph.json, so a rule's sinks are checked on the device, not here. An empty
    /// object is no document (nil).
    static func checkOutputs(_ outputs: JSONValue?) throws -> JSONValue? {
        guard let outputs else { return nil }
        guard case .object(let members) = outputs else {
            throw APIError.invalid(
                "outputs: must be an object with events, analytics, sinks and rules (see docs/outputs.md)")
        }
        if members.isEmpty { return nil }
        do {
            _ = try OutputsConfiguration(object: outputs, path: "outputs", environment: nil)
        } catch {
            throw APIError.invalid(error.description)
        }
        return outputs
    }

    /// Checks AWS credentials as given: an access key id and a secret access key, each of one line of printable
    /// characters (the messages never repeat a value: it may be the secret).
    static func checkAWSCredentials(_ credentials: AWSCredentials) throws -> AWSCredentials {
        var checked = credentials
        checked.sessionToken = credentials.sessionToken.flatMap { $0.isEmpty ? nil : $0 }
        checked.region = credentials.region.flatMap { $0.isEmpty ? nil : $0 }
        let fields: [(String, String?, Int)] = [
            ("accessKeyId", checked.accessKeyId, 128), ("secretAccessKey", checked.secretAccessKey, 1024),
            ("sessionToken", checked.sessionToken, 8192), ("region", checked.region, 64),
        ]
        for (name, value, limit) in fields {
            guard let value else { continue }
            guard !value.isEmpty else { throw APIError.invalid("awsCredentials.\(name) must not be empty") }
            guard value.count <= limit else {
                throw APIError.invalid("awsCredentials.\(name) is longer than \(limit) characters")
            }
            guard value.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f }) else {
                throw APIError.invalid(
                    "awsCredentials.\(name) has spaces, line breaks or characters outside ASCII: copy it again")
            }
        }
        if let region = checked.region,
            !region.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") })
        {
            throw APIError.invalid("awsCredentials.region must be a region name like us-east-1, not \(region)")
        }
        return checked
    }

    /// The sealed credentials and the summary answers show, as stored in `aws_credentials` and
    /// `aws_credentials_summary`.
    func sealAWSCredentials(_ credentials: AWSCredentials?) throws -> (sealed: String?, summary: String?) {
        guard let credentials else { return (nil, nil) }
        return (try secrets.seal(Self.json(credentials)), Self.json(credentials.summary))
    }

    /// An instance's decrypted AWS credentials, nil when it has none. Only for its device's desired state.
    func storedAWSCredentials(instance id: String) async throws -> AWSCredentials? {
        guard
            let sealed = try await database.query("SELECT aws_credentials FROM instances WHERE id = \(id)").first?
                .optionalText("aws_credentials")
        else { return nil }
        return try Self.decodeJSON(AWSCredentials.self, try secrets.open(sealed))
    }

    public func createInstance(_ new: NewInstance) async throws -> ApplicationInstance {
        try Self.checkName(new.name, of: "application instance")
        let description = try Self.checkDescription(new.description)
        guard try await checkDeviceReference(new.deviceId) != nil else {
            throw APIError.unprocessable("deviceId: give the device to run on")
        }
        let parameters = try await checkBindings(
            packageId: new.packageId, version: new.packageVersion, device: new.deviceId, cameras: new.cameras,
            parameters: new.parameters ?? [:])
        let models = try await bindModels(new.models ?? [:])
        let outputs = try Self.checkOutputs(new.outputs)
        let aws = try sealAWSCredentials(try new.awsCredentials.map { try Self.checkAWSCredentials($0) })
        let desired = new.desiredState ?? .running
        guard desired != .removed else {
            throw APIError.invalid("desiredState of a new instance is RUNNING or STOPPED")
        }
        let id = Identifiers.make("ins")
        let now = Millis.now()
        try await database.transaction { db in
            try await db.query(
                """
                INSERT INTO instances (id, name, description, package_id, package_version, device_id, cameras, parameters,
                    models, outputs, aws_credentials, aws_credentials_summary, desired_state, status, health_status,
                    status_description, created_at, updated_at)
                VALUES (\(id), \(new.name), \(description), \(new.packageId), \(new.packageVersion), \(new.deviceId),
                    \(Self.json(new.cameras)), \(Self.json(parameters)), \(Self.json(models)),
                    \(outputs.map { Self.json($0) }), \(aws.sealed), \(aws.summary), \(desired.rawValue),
                    \(InstanceStatus.deploymentPending.rawValue), \(HealthStatus.notAvailable.rawValue),
                    'waiting for the device to deploy it', \(now), \(now))
                """)
            try await Self.assignCameras(db, cameras: Array(new.cameras.values), device: new.deviceId, now: now)
            try await Self.recordDeployment(db, instance: id, version: new.packageVersion, desired: desired, now: now)
        }
        return try await instance(id)
    }

    /// Assigns the unassigned ones of `cameras` to `device`, in the transaction that binds them; a camera another
    /// device took meanwhile fails it with 409.
    static func assignCameras(_ db: any SQLExecutor, cameras: [String], device: String, now: Int64) async throws {
        for camera in Set(cameras) {
            try await db.query(
                "UPDATE cameras SET device_id = \(device), updated_at = \(now) WHERE id = \(camera) AND device_id IS NULL"
            )
            let assigned = try await db.query("SELECT device_id FROM cameras WHERE id = \(camera)").first?
                .optionalText("device_id")
            guard assigned == device else {
                throw APIError.conflict(
                    "camera \(camera) was just assigned to device \(assigned ?? "none"), not \(device): bind another camera"
                )
            }
        }
    }

    static func recordDeployment(
        _ db: any SQLExecutor, instance: String, version: String, desired: DesiredState, now: Int64
    ) async throws {
        let status: InstanceStatus = desired == .removed ? .removalPending : .deploymentPending
        // A deployment the device never took up (it was offline) is superseded by this one: the device goes straight
        // to the newest desired state, so the older one would otherwise stay pending for ever.
        let waiting = [InstanceStatus.deploymentPending, .deploymentRequested, .removalPending, .removalRequested]
            .map(\.rawValue)
        let note =
            "superseded by a later deployment (version \(version), \(desired.rawValue)) before the device took it up"
        try await db.query(
            """
            UPDATE deployments SET message = \(note), updated_at = \(now)
            WHERE instance_id = \(instance) AND status IN (\(waiting[0]), \(waiting[1]), \(waiting[2]), \(waiting[3]))
            """)
        try await db.query(
            """
            INSERT INTO deployments (id, instance_id, package_version, desired_state, status, message, created_at, updated_at)
            VALUES (\(Identifiers.make("dep")), \(instance), \(version), \(desired.rawValue), \(status.rawValue), '', \(now), \(now))
            """)
    }

    /// Changes an instance. A new version, cameras, parameters, models, outputs document, AWS credentials or desired
    /// state is a new deployment the device picks up; a name or description change is not.
    public func updateInstance(_ id: String, _ update: InstanceUpdate) async throws -> ApplicationInstance {
        let current = try await instance(id)
        guard current.desiredState != .removed || update.desiredState != nil else {
            throw APIError.conflict("instance \(id) is removed: set desiredState RUNNING to deploy it again")
        }
        let name = update.name ?? current.name
        try Self.checkName(name, of: "application instance")
        let description =
            update.description == nil ? current.description : try Self.checkDescription(update.description)
        let version = update.packageVersion ?? current.packageVersion
        let cameras = update.cameras ?? current.cameras
        let parameters = try await checkBindings(
            packageId: current.packageId, version: version,
            device: update.desiredState == .removed ? nil : current.deviceId, cameras: cameras,
            parameters: update.parameters ?? current.parameters)
        let models = update.models == nil ? current.models : try await bindModels(update.models!)
        let outputs = update.outputs == nil ? current.outputs : try Self.checkOutputs(update.outputs)
        let desired = update.desiredState ?? current.desiredState
        // Sealing twice gives different text (a fresh nonce each time): credentials are compared opened.
        let aws: (sealed: String?, summary: String?)?
        switch update.awsCredentials {
        case .set(let given)?:
            let checked = try Self.checkAWSCredentials(given)
            aws = (try? await storedAWSCredentials(instance: id)) == checked ? nil : try sealAWSCredentials(checked)
        case .remove?:
            aws = current.awsCredentials == nil ? nil : (nil, nil)
        case nil:
            aws = nil
        }
        let awsChanged = aws != nil
        let redeploy =
            version != current.packageVersion || cameras != current.cameras || parameters != current.parameters
            || models != current.models || outputs != current.outputs || desired != current.desiredState
            || awsChanged
        let now = Millis.now()
        try await database.transaction { db in
            if let aws {
                try await db.query(
                    """
                    UPDATE instances SET aws_credentials = \(aws.sealed), aws_credentials_summary = \(aws.summary)
                    WHERE id = \(id)
                    """)
            }
            try await db.query(
                """
                UPDATE instances SET name = \(name), description = \(description), package_version = \(version),
                    cameras = \(Self.json(cameras)), parameters = \(Self.json(parameters)), models = \(Self.json(models)),
                    outputs = \(outputs.map { Self.json($0) }), updated_at = \(now)
                WHERE id = \(id)
                """)
            if desired != .removed {
                try await Self.assignCameras(db, cameras: Array(cameras.values), device: current.deviceId, now: now)
            }
            if redeploy {
                let status: InstanceStatus = desired == .removed ? .removalPending : .deploymentPending
                try await db.query(
                    """
                    UPDATE instances SET desired_state = \(desired.rawValue), status = \(status.rawValue),
                        status_description = 'waiting for the device' WHERE id = \(id)
                    """)
                try await Self.recordDeployment(db, instance: id, version: version, desired: desired, now: now)
            }
        }
        return try await instance(id)
    }

    /// Panorama's RemoveApplicationInstance: the device stops and removes it, then reports REMOVAL_SUCCEEDED.
    public func removeInstance(_ id: String) async throws -> ApplicationInstance {
        try await updateInstance(id, InstanceUpdate(desiredState: .removed))
    }

    /// A device's report on an instance it runs.
    public func reportInstance(_ id: String, device: String, _ report: InstanceReport) async throws
        -> ApplicationInstance
    {
        let current = try await instance(id)
        guard current.deviceId == device else {
            throw APIError(403, "instance \(id) is not deployed to this device")
        }
        let description = report.statusDescription ?? current.statusDescription
        guard description.count <= 1024 else {
            throw APIError.invalid("statusDescription is longer than 1024 characters")
        }
        let status = report.status ?? current.status
        let health = report.healthStatus ?? current.healthStatus
        let now = Millis.now()
        try await database.transaction { db in
            try await db.query(
                """
                UPDATE instances SET status = \(status.rawValue), health_status = \(health.rawValue),
                    status_description = \(description), updated_at = \(now) WHERE id = \(id)
                """)
            if let latest = try await db.query(
                "SELECT id FROM deployments WHERE instance_id = \(id) ORDER BY created_at DESC, id DESC LIMIT 1"
            ).first {
                try await db.query(
                    "UPDATE deployments SET status = \(status.rawValue), message = \(description), updated_at = \(now) WHERE id = \(try latest.text("id"))"
                )
            }
        }
        return try await instance(id)
    }

    public func deployments(instance id: String) async throws -> [Deployment] {
        _ = try await instance(id)
        return try await database.query(
            """
            SELECT id, instance_id, package_version, desired_state, status, message, created_at, updated_at
            FROM deployments WHERE instance_id = \(id) ORDER BY created_at DESC, id DESC
            """
        ).map { row in
            Deployment(
                id: try row.text("id"), instanceId: try row.text("instance_id"),
                packageVersion: try row.text("package_version"),
                desiredState: DesiredState(rawValue: try row.text("desired_state")) ?? .stopped,
                status: InstanceStatus(rawValue: try row.text("status")) ?? .deploymentError,
                message: try row.text("message"),
                createdAt: Millis.date(try row.integer("created_at")),
                updatedAt: Millis.date(try row.integer("updated_at")))
        }
    }
}

extension Store {
    /// What `device` must run: its instances with their archives, cameras (with credentials), parameters, models,
    /// outputs documents and AWS credentials.
    public func desiredState(device: String) async throws -> DeviceDesiredState {
        let deviceName = try await self.device(device).name
        var instances: [DesiredInstance] = []
        for instance in try await listInstances(device: device)
        where !(instance.desiredState == .removed && instance.status == .removalSucceeded) {
            guard
                let archive = try await database.query(
                    "SELECT digest FROM package_versions WHERE package_id = \(instance.packageId) AND version = \(instance.packageVersion)"
                ).first?.text("digest")
            else { continue }
            let deployment = try await database.query(
                "SELECT id FROM deployments WHERE instance_id = \(instance.id) ORDER BY created_at DESC, id DESC LIMIT 1"
            ).first?.text("id")
            var cameras: [String: DesiredCamera] = [:]
            for (node, cameraId) in instance.cameras {
                let urls = try await cameraStreamURLs(cameraId, for: device)
                cameras[node] = DesiredCamera(cameraId: cameraId, url: urls.url, detectUrl: urls.detectUrl)
            }
            let aws = try await storedAWSCredentials(instance: instance.id)
            var models: [String: DesiredModel] = [:]
            for (node, binding) in instance.models {
                guard
                    let row = try await database.query(
                        "SELECT digest, filename FROM model_versions WHERE model_id = \(binding.modelId) AND version = \(binding.version)"
                    ).first
                else { continue }
                let digest = try row.text("digest")
                models[node] = DesiredModel(
                    modelId: binding.modelId, version: binding.version, digest: digest,
                    filename: try row.text("filename"), signature: try await artifactSignature(digest, .model))
            }
            var desired = DesiredInstance(
                id: instance.id, name: instance.name, packageId: instance.packageId,
                packageName: instance.packageName, packageVersion: instance.packageVersion, archiveDigest: archive,
                desiredState: instance.desiredState, deploymentId: deployment, cameras: cameras,
                parameters: instance.parameters, models: models, outputs: instance.outputs, deviceName: deviceName,
                awsCredentials: aws)
            desired.archiveSignature = try await artifactSignature(archive, .package)
            instances.append(desired)
        }
        return DeviceDesiredState(
            deviceId: device, instances: instances, software: try await desiredSoftware(device: device),
            artifactKey: artifactPublicKey)
    }
}

extension Store {
    /// A file a device may download: the archive of a package version, or a model file, one of its instances
    /// uses. Anything else is "not found" for it, whether or not it exists.
    public func deviceArtifact(device: String, digest: String) async throws -> URL {
        _ = try await self.device(device)
        // The release a rollout sends it, too.
        var allowed = try await desiredSoftware(device: device)?.digest == digest
        if !allowed {
            allowed = try await !database.query(
                """
                SELECT 1 AS found FROM instances i JOIN package_versions v
                    ON v.package_id = i.package_id AND v.version = i.package_version
                WHERE i.device_id = \(device) AND v.digest = \(digest) LIMIT 1
                """
            ).isEmpty
        }
        if !allowed {
            allowed = try await desiredState(device: device).instances.contains {
                $0.models.values.contains { $0.digest == digest }
            }
        }
        guard allowed, let file = try await artifacts.file(for: digest) else {
            throw APIError.notFound("artifact for this device:", digest)
        }
        return file
    }
}
