import Foundation
import VantageAPI
import VantageCore

/// Every REST operation under `/api/v1`, in the order the OpenAPI document lists them. Names follow AWS
/// Panorama's API where it had the operation (ProvisionDevice → createDevice, RemoveApplicationInstance →
/// removeInstance, …).
enum APIRoutes {
    static let base = "/api/v1"

    struct Items<T: Encodable & Sendable>: Encodable, Sendable { let items: [T] }
    struct EventIDs: Encodable, Sendable { let ids: [String] }

    static func all() -> [APIOperation] {
        system + devices + cameras + models + packages + instances + live + events + eventReview + releases + rollouts
            + access + users + fleet
    }

    // MARK: System

    static let system: [APIOperation] = [
        APIOperation(
            method: .get, path: "\(base)/me", id: "whoAmI", tag: "system", summary: "Who the credentials belong to",
            access: .role(.viewer), status: 200, content: .json(.ref("Identity"))
        ) { call in
            .json(Identity(actor: call.caller!.actor, role: call.caller!.role!))
        }
    ]

    // MARK: Devices

    static let devices: [APIOperation] = [
        APIOperation(
            method: .get, path: "\(base)/devices", id: "listDevices", tag: "devices", summary: "List devices",
            access: .role(.viewer), status: 200, content: .json(OpenAPIComponents.list(of: "Device"))
        ) { call in .json(Items(items: try await call.store.listDevices())) },
        APIOperation(
            method: .post, path: "\(base)/devices", id: "createDevice", tag: "devices",
            summary: "Register a device; answers its provisioning token once", access: .role(.operator),
            body: .json("NewDevice", fields: NewDevice.fields), status: 201, content: .json(.ref("DeviceCreated"))
        ) { call in
            var created = try await call.store.createDevice(try await call.decode(NewDevice.self))
            created.deviceEndpoint = call.configuration.deviceEndpoint
            return .json(created, created: created.device.id)
        },
        APIOperation(
            method: .get, path: "\(base)/devices/{id}", id: "getDevice", tag: "devices", summary: "Describe a device",
            access: .role(.viewer), status: 200, content: .json(.ref("Device"))
        ) { call in .json(try await call.store.device(call.parameter("id"))) },
        APIOperation(
            method: .patch, path: "\(base)/devices/{id}", id: "updateDevice", tag: "devices",
            summary: "Rename or describe a device", access: .role(.operator),
            body: .json("DeviceUpdate", fields: DeviceUpdate.fields), status: 200, content: .json(.ref("Device"))
        ) { call in
            .json(try await call.store.updateDevice(call.parameter("id"), try await call.decode(DeviceUpdate.self)))
        },
        APIOperation(
            method: .delete, path: "\(base)/devices/{id}", id: "deleteDevice", tag: "devices",
            summary: "Delete a device that runs no instance", access: .role(.operator), status: 204, content: .none
        ) { call in
            try await call.store.deleteDevice(call.parameter("id"))
            return .empty
        },
        APIOperation(
            method: .post, path: "\(base)/devices/{id}/provisioning-token", id: "createProvisioningToken",
            tag: "devices",
            summary: "A new one-time provisioning token, to enroll the device again (its old token dies)",
            access: .role(.operator), status: 200, content: .json(.ref("DeviceCreated"))
        ) { call in
            var created = try await call.store.newProvisioningToken(device: call.parameter("id"))
            created.deviceEndpoint = call.configuration.deviceEndpoint
            return .json(created)
        },
        APIOperation(
            method: .post, path: "\(base)/devices/{id}/revoke", id: "revokeDevice", tag: "devices",
            summary: "Revoke the device's certificate and token: its next request is refused",
            access: .role(.operator), status: 200, content: .json(.ref("Device"))
        ) { call in .json(try await call.store.revokeDevice(call.parameter("id"))) },
        APIOperation(
            method: .post, path: "\(base)/enroll", id: "enrollDevice", tag: "device-facing",
            summary: "Exchange a provisioning token (once) and a CSR for the device's certificate", access: .anyone,
            body: .json("EnrollmentRequest", fields: EnrollmentRequest.fields), status: 201,
            content: .json(.ref("Enrollment"))
        ) { call in
            let enrollment = try await call.store.enroll(try await call.decode(EnrollmentRequest.self))
            call.store.metrics.enrollments.increment()
            return .json(enrollment, created: enrollment.deviceId)
        },
        APIOperation(
            method: .post, path: "\(base)/devices/{id}/certificate", id: "renewCertificate", tag: "device-facing",
            summary: "A device renews its certificate with a new key's CSR (the old one works one more day)",
            access: .device, body: .json("CertificateRenewal", fields: CertificateRenewal.fields), status: 201,
            content: .json(.ref("Enrollment"))
        ) { call in
            try call.requireDevice(call.parameter("id"))
            return .json(
                try await call.store.renewCertificate(
                    device: call.parameter("id"), try await call.decode(CertificateRenewal.self),
                    expiredAt: call.context.certificateExpiredAt))
        },
        APIOperation(
            method: .get, path: "\(base)/ca", id: "getCertificateAuthority", tag: "device-facing",
            summary: "The CA certificate (PEM) devices pin; compare its SHA-256 with the fingerprint shown at creation",
            access: .anyone, status: 200, content: .binary("application/x-pem-file")
        ) { call in .bytes(Array(call.store.authority.certificatePEM.utf8), contentType: "application/x-pem-file") },
        APIOperation(
            method: .get, path: "\(base)/devices/{id}/metrics", id: "getDeviceMetrics", tag: "devices",
            summary: "A device's health series", access: .role(.viewer),
            query: [
                .init(name: "name", schema: .text, description: "one metric, e.g. cpu.percent"),
                .init(name: "since", schema: .requestTime, description: "from this time (default: 24 hours ago)"),
            ], status: 200, content: .json(OpenAPIComponents.list(of: "MetricPoint"))
        ) { call in
            let since = try call.queryTime("since") ?? Date().addingTimeInterval(-86_400)
            return .json(
                Items(
                    items: try await call.store.metrics(
                        device: call.parameter("id"), name: call.query("name"), since: since)))
        },
        APIOperation(
            method: .get, path: "\(base)/devices/{id}/desired-state", id: "getDesiredState", tag: "device-facing",
            summary: "What the device must run, camera credentials included (304 while unchanged)", access: .device,
            query: [
                .init(
                    name: "wait", schema: .integer(minimum: 0, maximum: 60),
                    description:
                        "long poll: with If-None-Match, hold the answer up to this many seconds (at most 60) until the state changes"
                )
            ],
            status: 200, content: .json(.ref("DeviceDesiredState")), conditional: true
        ) { call in
            let device = call.parameter("id")
            try call.requireDevice(device)
            let wait = try call.queryInt("wait", default: 0)
            guard (0...60).contains(wait) else { throw APIError.invalid("wait must be 0 to 60 seconds, not \(wait)") }
            let sent = call.request.headers[.ifNoneMatch]
            let deadline = ContinuousClock.now + .seconds(wait)
            while true {
                let generation = call.store.changes.generation
                var state = try await call.store.desiredState(device: device)
                let watched = call.store.live.watched(among: state.instances.map(\.id))
                if !watched.isEmpty {
                    state.live = LiveRequest(instances: watched, framesPerSecond: call.store.live.framesPerSecond)
                }
                let signals = call.store.live.pendingSignals(device: device)
                if !signals.isEmpty { state.signals = signals }
                let remaining = deadline - ContinuousClock.now
                guard let sent, remaining > .zero,
                    sent.contains(APIOperation.etag(try APIJSON.encoder().encode(state)))
                else { return .conditional(state) }
                await call.store.changes.wait(after: generation, timeout: remaining)
            }
        },
        APIOperation(
            method: .get, path: "\(base)/devices/{id}/artifacts/{digest}", id: "downloadDeviceArtifact",
            tag: "device-facing", summary: "A package archive the device's instances use, resumable with Range",
            access: .device, status: 200, content: .binary("application/octet-stream"), resumable: true
        ) { call in
            try call.requireDevice(call.parameter("id"))
            let file = try await call.store.deviceArtifact(
                device: call.parameter("id"), digest: call.parameter("digest"))
            return .resumableFile(file, contentType: "application/octet-stream")
        },
        APIOperation(
            method: .get, path: "\(base)/devices/{id}/logs", id: "getDeviceLogs", tag: "devices",
            summary: "The device agent's own newest log lines, oldest first", access: .role(.viewer),
            query: logQuery, status: 200, content: .json(OpenAPIComponents.list(of: "LogLine"))
        ) { call in
            let device = try await call.store.device(call.parameter("id"))
            return .json(
                Items(
                    items: try await call.store.logs(
                        device: device.id, instance: nil, since: try call.queryTime("since"),
                        limit: try call.queryInt("limit", default: 200), level: call.query("level"),
                        contains: call.query("contains"))))
        },
        APIOperation(
            method: .post, path: "\(base)/devices/{id}/logs", id: "sendLogs", tag: "device-facing",
            summary: "A device ships its own and its instances' log lines", access: .device,
            body: .json("LogBatch", fields: LogBatch.fields), status: 204, content: .none, audited: false
        ) { call in
            try call.requireDevice(call.parameter("id"))
            try await call.store.appendLogs(
                device: call.parameter("id"), try await call.decode(LogBatch.self, limit: 16 << 20))
            return .empty
        },
        APIOperation(
            method: .post, path: "\(base)/devices/{id}/heartbeat", id: "sendHeartbeat", tag: "device-facing",
            summary: "A device reports it is alive, with its metrics", access: .device,
            body: .json("Heartbeat", fields: Heartbeat.fields), status: 200, content: .json(.ref("Device")),
            audited: false
        ) { call in
            try call.requireDevice(call.parameter("id"))
            let device = try await call.store.heartbeat(
                call.parameter("id"), try await call.decode(Heartbeat.self),
                peer: call.context.channel.remoteAddress?.ipAddress)
            call.store.metrics.heartbeats.increment()
            return .json(device)
        },
    ]

    /// A package version's name.
    static let versionPattern = "^[A-Za-z0-9._-]+$"

    /// A model file's name as the store takes it: a plain ASCII name of at most 255 characters with a model
    /// file's extension (any case), or one the store refuses saying what to upload instead (`.xml`, `.tar.gz`).
    static let modelFilename: OpenAPISchema = {
        let extensions = (Store.modelExtensions + Store.modelFileHints.map(\.ending)).map { ext in
            ext.map { c in c.isLetter ? "[\(c.lowercased())\(c.uppercased())]" : c == "." ? "\\." : String(c) }.joined()
        }
        return .string(
            pattern: "^[A-Za-z0-9_+-][A-Za-z0-9._+-]*(\(extensions.joined(separator: "|")))$", minLength: 1,
            maxLength: 255)
    }()

    /// The query of the log routes.
    static let logQuery: [APIOperation.Query] = [
        .init(
            name: "limit", schema: .integer(minimum: 1, maximum: 5000),
            description: "how many of the newest lines (1-5000, default 200)"),
        .init(name: "since", schema: .requestTime, description: "only lines from this time on"),
        .init(
            name: "level", schema: .string(values: Store.logLevelOrder),
            description: "only lines of this level or above (warning: warning, error and critical)"),
        .init(
            name: "contains", schema: .requestText(maxLength: Store.maxLogSearchLength),
            description: "only lines whose message holds this text, case-insensitive (at most 200 characters)"),
    ]

    // MARK: Cameras

    static let cameras: [APIOperation] = [
        APIOperation(
            method: .get, path: "\(base)/cameras", id: "listCameras", tag: "cameras", summary: "List cameras",
            access: .role(.viewer), status: 200, content: .json(OpenAPIComponents.list(of: "Camera"))
        ) { call in .json(Items(items: try await call.store.listCameras())) },
        APIOperation(
            method: .post, path: "\(base)/cameras", id: "createCamera", tag: "cameras",
            summary: "Register a camera; its credentials are stored encrypted and never returned",
            access: .role(.operator), body: .json("NewCamera", fields: NewCamera.fields), status: 201,
            content: .json(.ref("Camera"))
        ) { call in
            let camera = try await call.store.createCamera(try await call.decode(NewCamera.self))
            return .json(camera, created: camera.id)
        },
        APIOperation(
            method: .get, path: "\(base)/cameras/{id}", id: "getCamera", tag: "cameras", summary: "Describe a camera",
            access: .role(.viewer), status: 200, content: .json(.ref("Camera"))
        ) { call in .json(try await call.store.camera(call.parameter("id"))) },
        APIOperation(
            method: .patch, path: "\(base)/cameras/{id}", id: "updateCamera", tag: "cameras",
            summary: "Change a camera's name, URL, credentials or device", access: .role(.operator),
            body: .json("CameraUpdate", fields: CameraUpdate.fields), status: 200, content: .json(.ref("Camera"))
        ) { call in
            .json(try await call.store.updateCamera(call.parameter("id"), try await call.decode(CameraUpdate.self)))
        },
        APIOperation(
            method: .delete, path: "\(base)/cameras/{id}", id: "deleteCamera", tag: "cameras",
            summary: "Delete a camera no instance uses", access: .role(.operator), status: 204, content: .none
        ) { call in
            try await call.store.deleteCamera(call.parameter("id"))
            return .empty
        },
        APIOperation(
            method: .get, path: "\(base)/cameras/{id}/snapshot", id: "getCameraSnapshot", tag: "cameras",
            summary: "The camera's latest snapshot (JPEG)", access: .role(.viewer), status: 200,
            content: .binary("image/jpeg")
        ) { call in
            guard let file = try await call.store.cameraSnapshot(call.parameter("id")) else {
                throw APIError.notFound("snapshot yet for camera", call.parameter("id"))
            }
            return .file(file, contentType: "image/jpeg")
        },
    ]

    // MARK: Models

    static let models: [APIOperation] = [
        APIOperation(
            method: .get, path: "\(base)/models", id: "listModels", tag: "models", summary: "List models",
            access: .role(.viewer), status: 200, content: .json(OpenAPIComponents.list(of: "Model"))
        ) { call in .json(Items(items: try await call.store.listModels())) },
        APIOperation(
            method: .post, path: "\(base)/models", id: "createModel", tag: "models", summary: "Create a model",
            access: .role(.operator), body: .json("NewModel", fields: NewModel.fields), status: 201,
            content: .json(.ref("Model"))
        ) { call in
            let model = try await call.store.createModel(try await call.decode(NewModel.self))
            return .json(model, created: model.id)
        },
        APIOperation(
            method: .get, path: "\(base)/models/{id}", id: "getModel", tag: "models",
            summary: "Describe a model and its versions", access: .role(.viewer), status: 200,
            content: .json(.ref("Model"))
        ) { call in .json(try await call.store.model(call.parameter("id"))) },
        APIOperation(
            method: .delete, path: "\(base)/models/{id}", id: "deleteModel", tag: "models", summary: "Delete a model",
            access: .role(.operator), status: 204, content: .none
        ) { call in
            try await call.store.deleteModel(call.parameter("id"))
            return .empty
        },
        APIOperation(
            method: .post, path: "\(base)/models/{id}/versions", id: "uploadModelVersion", tag: "models",
            summary: "Upload a model file as the next version (the body is the file)", access: .role(.operator),
            query: [
                .init(
                    name: "filename", schema: modelFilename,
                    description:
                        "the file's name, e.g. model.onnx: letters, digits, '.', '_', '-', '+', not starting with '.', "
                        + "ending in \(Store.modelExtensions.joined(separator: ", ")); a .zip holds one model with "
                        + "the files beside it (an OpenVINO IR's .xml and .bin)",
                    required: true),
                .init(
                    name: "descriptor", schema: .any,
                    description:
                        "Panorama's descriptor JSON (inputs and shapes); when it is not JSON as sent, '+' reads as "
                        + "a space, as in HTML forms",
                    json: true),
            ], body: .binary("application/octet-stream"), status: 201, content: .json(.ref("ModelVersion"))
        ) { call in
            var descriptor: JSONValue?
            if let text = call.query("descriptor") {
                // HTML forms and most HTTP libraries write a space in a query as '+' (and a '+' as %2B): when the
                // text is not JSON as sent, it is read that way.
                func parse(_ text: String?) -> JSONValue? {
                    text.flatMap { try? APIJSON.decoder().decode(JSONValue.self, from: Data($0.utf8)) }
                }
                let formEncoded = call.request.uri.query?.split(separator: "&")
                    .first { $0.hasPrefix("descriptor=") }?.dropFirst("descriptor=".count)
                    .replacingOccurrences(of: "+", with: " ").removingPercentEncoding
                guard let value = parse(text) ?? parse(formEncoded) else {
                    throw APIError.invalid("descriptor is not valid JSON")
                }
                descriptor = value
            }
            let upload = try await call.receiveUpload()
            defer { try? FileManager.default.removeItem(at: upload.file) }
            let version = try await call.store.addModelVersion(
                call.parameter("id"), upload: upload, filename: call.query("filename") ?? "", descriptor: descriptor)
            return .json(version, created: "version \(version.version)")
        },
        APIOperation(
            method: .get, path: "\(base)/models/{id}/versions/{version}/content", id: "downloadModelVersion",
            tag: "models", summary: "Download a model version's file", access: .role(.viewer), status: 200,
            content: .binary("application/octet-stream")
        ) { call in
            guard let version = Int(call.parameter("version")) else {
                throw APIError.notFound("version", "\(call.parameter("version")) of model \(call.parameter("id"))")
            }
            let file = try await call.store.modelFile(call.parameter("id"), version: version)
            return .file(file.url, contentType: "application/octet-stream", filename: file.filename)
        },
    ]

    // MARK: Packages

    static let packages: [APIOperation] = [
        APIOperation(
            method: .get, path: "\(base)/packages", id: "listPackages", tag: "packages", summary: "List packages",
            access: .role(.viewer), status: 200, content: .json(OpenAPIComponents.list(of: "Package"))
        ) { call in .json(Items(items: try await call.store.listPackages())) },
        APIOperation(
            method: .post, path: "\(base)/packages", id: "createPackage", tag: "packages", summary: "Create a package",
            access: .role(.operator), body: .json("NewPackage", fields: NewPackage.fields), status: 201,
            content: .json(.ref("Package"))
        ) { call in
            let package = try await call.store.createPackage(try await call.decode(NewPackage.self))
            return .json(package, created: package.id)
        },
        APIOperation(
            method: .get, path: "\(base)/packages/{id}", id: "getPackage", tag: "packages",
            summary: "Describe a package and its versions", access: .role(.viewer), status: 200,
            content: .json(.ref("Package"))
        ) { call in .json(try await call.store.package(call.parameter("id"))) },
        APIOperation(
            method: .delete, path: "\(base)/packages/{id}", id: "deletePackage", tag: "packages",
            summary: "Delete a package no instance uses", access: .role(.operator), status: 204, content: .none
        ) { call in
            try await call.store.deletePackage(call.parameter("id"))
            return .empty
        },
        APIOperation(
            method: .post, path: "\(base)/packages/{id}/versions", id: "registerPackageVersion", tag: "packages",
            summary: "Upload a ZIP of an application project folder as a version; the manifest is checked",
            access: .role(.operator),
            query: [
                .init(
                    name: "version", schema: .string(pattern: versionPattern, minLength: 1, maxLength: 32),
                    description: "the version, e.g. 1.0: 1-32 letters, digits, '.', '_' or '-'", required: true)
            ],
            body: .binary("application/zip"), status: 201, content: .json(.ref("PackageVersion"))
        ) { call in
            let upload = try await call.receiveUpload()
            defer { try? FileManager.default.removeItem(at: upload.file) }
            let version = try await call.store.addPackageVersion(
                call.parameter("id"), version: call.query("version") ?? "", upload: upload)
            return .json(version, created: "version \(version.version)")
        },
        APIOperation(
            method: .get, path: "\(base)/packages/{id}/versions/{version}/archive", id: "downloadPackageVersion",
            tag: "packages", summary: "Download a package version's archive", access: .role(.viewer), status: 200,
            content: .binary("application/zip")
        ) { call in
            let file = try await call.store.packageArchive(call.parameter("id"), version: call.parameter("version"))
            return .file(file, contentType: "application/zip", filename: "\(call.parameter("version")).zip")
        },
    ]

    // MARK: Application instances

    static let instances: [APIOperation] = [
        APIOperation(
            method: .get, path: "\(base)/instances", id: "listInstances", tag: "instances",
            summary: "List application instances", access: .role(.viewer),
            query: [
                .init(name: "deviceId", schema: .text, description: "only this device's (its id or name)"),
                .init(name: "status", schema: .values(InstanceStatus.self), description: "only in this status"),
            ], status: 200, content: .json(OpenAPIComponents.list(of: "ApplicationInstance"))
        ) { call in
            var status: InstanceStatus?
            if let text = call.query("status") {
                guard let value = InstanceStatus(rawValue: text) else {
                    throw APIError.invalid(
                        "status must be one of \(InstanceStatus.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                status = value
            }
            return .json(
                Items(items: try await call.store.listInstances(device: call.query("deviceId"), status: status)))
        },
        APIOperation(
            method: .post, path: "\(base)/instances", id: "createInstance", tag: "instances",
            summary: "Deploy a package version to a device with camera bindings and parameter values",
            access: .role(.operator), body: .json("NewInstance", fields: NewInstance.fields), status: 201,
            content: .json(.ref("ApplicationInstance"))
        ) { call in
            let instance = try await call.store.createInstance(try await call.decode(NewInstance.self))
            return .json(instance, created: instance.id)
        },
        APIOperation(
            method: .get, path: "\(base)/instances/{id}", id: "getInstance", tag: "instances",
            summary: "Describe an application instance", access: .role(.viewer), status: 200,
            content: .json(.ref("ApplicationInstance"))
        ) { call in .json(try await call.store.instance(call.parameter("id"))) },
        APIOperation(
            method: .patch, path: "\(base)/instances/{id}", id: "updateInstance", tag: "instances",
            summary: "Change an instance's version, bindings, parameters or desired state (a new deployment)",
            access: .role(.operator), body: .json("InstanceUpdate", fields: InstanceUpdate.fields), status: 200,
            content: .json(.ref("ApplicationInstance"))
        ) { call in
            .json(try await call.store.updateInstance(call.parameter("id"), try await call.decode(InstanceUpdate.self)))
        },
        APIOperation(
            method: .delete, path: "\(base)/instances/{id}", id: "removeInstance", tag: "instances",
            summary: "Remove an instance from its device (desired state REMOVED)", access: .role(.operator),
            status: 202, content: .json(.ref("ApplicationInstance"))
        ) { call in .json(try await call.store.removeInstance(call.parameter("id"))) },
        APIOperation(
            method: .get, path: "\(base)/instances/{id}/deployments", id: "listDeployments", tag: "instances",
            summary: "An instance's deployments, newest first", access: .role(.viewer), status: 200,
            content: .json(OpenAPIComponents.list(of: "Deployment"))
        ) { call in .json(Items(items: try await call.store.deployments(instance: call.parameter("id")))) },
        APIOperation(
            method: .get, path: "\(base)/instances/{id}/logs", id: "getInstanceLogs", tag: "instances",
            summary: "An instance's newest log lines, oldest first (shipped by its device)", access: .role(.viewer),
            query: logQuery, status: 200, content: .json(OpenAPIComponents.list(of: "LogLine"))
        ) { call in
            let instance = try await call.store.instance(call.parameter("id"))
            return .json(
                Items(
                    items: try await call.store.logs(
                        device: instance.deviceId, instance: instance.id, since: try call.queryTime("since"),
                        limit: try call.queryInt("limit", default: 200), level: call.query("level"),
                        contains: call.query("contains"))))
        },
        APIOperation(
            method: .post, path: "\(base)/instances/{id}/report", id: "reportInstanceStatus", tag: "device-facing",
            summary: "A device reports an instance's status and health", access: .device,
            body: .json("InstanceReport", fields: InstanceReport.fields), status: 200,
            content: .json(.ref("ApplicationInstance"))
        ) { call in
            guard case .device(let device)? = call.caller?.kind else { throw APIError(403, "devices only") }
            return .json(
                try await call.store.reportInstance(
                    call.parameter("id"), device: device, try await call.decode(InstanceReport.self)))
        },
    ]

    // MARK: Events

    static let events: [APIOperation] = [
        APIOperation(
            method: .get, path: "\(base)/events", id: "listEvents", tag: "events",
            summary: "Events, newest first, filtered and paged by cursor", access: .role(.viewer),
            query: [
                .init(name: "deviceId", schema: .text, description: "only this device's (its id or name)"),
                .init(name: "cameraId", schema: .text, description: "only this camera's (its id or name)"),
                .init(name: "instanceId", schema: .text, description: "only this instance's (its id or name)"),
                .init(name: "type", schema: .text, description: "only this type"),
                .init(name: "since", schema: .requestTime, description: "at or after this time"),
                .init(name: "until", schema: .requestTime, description: "before this time"),
                .init(
                    name: "limit", schema: .integer(minimum: 1, maximum: 500),
                    description: "page size, 1-500 (default 50)"),
                .init(name: "cursor", schema: .text, description: "nextCursor of the previous page"),
                .init(
                    name: "order", schema: .values(EventQuery.Order.self),
                    description:
                        "time (default), or sequence: one instance's events in the order it made them, whatever its clock did (needs instanceId)"
                ),
            ], status: 200, content: .json(.ref("EventPage"))
        ) { call in
            var query = EventQuery()
            query.device = call.query("deviceId")
            query.camera = call.query("cameraId")
            query.instance = call.query("instanceId")
            query.type = call.query("type")
            query.since = try call.queryTime("since")
            query.until = try call.queryTime("until")
            query.limit = try call.queryInt("limit", default: 50)
            query.cursor = call.query("cursor")
            if let order = call.query("order") {
                guard let value = EventQuery.Order(rawValue: order) else {
                    throw APIError.invalid("order must be time or sequence")
                }
                query.order = value
            }
            return .json(try await call.store.events(query))
        },
        APIOperation(
            method: .get, path: "\(base)/events/{id}", id: "getEvent", tag: "events", summary: "Describe an event",
            access: .role(.viewer), status: 200, content: .json(.ref("Event"))
        ) { call in .json(try await call.store.event(call.parameter("id"))) },
        APIOperation(
            method: .get, path: "\(base)/events/{id}/snapshot", id: "getEventSnapshot", tag: "events",
            summary: "An event's snapshot (JPEG)", access: .role(.viewer), status: 200, content: .binary("image/jpeg")
        ) { call in .file(try await call.store.eventSnapshot(call.parameter("id")), contentType: "image/jpeg") },
        APIOperation(
            method: .post, path: "\(base)/devices/{id}/events", id: "sendEvents", tag: "device-facing",
            summary: "A device sends events (with snapshots)", access: .device,
            body: .json("EventBatch", fields: EventBatch.fields), status: 201, content: .json(.ref("EventIds")),
            audited: false
        ) { call in
            try call.requireDevice(call.parameter("id"))
            let batch = try await call.decode(EventBatch.self, limit: 64 << 20)
            let ids = try await call.store.ingestEvents(device: call.parameter("id"), batch)
            call.store.metrics.events.increment(by: Int64(ids.count))
            return .json(EventIDs(ids: ids))
        },
    ]

    // MARK: Software releases and rollouts

    static let releaseVersion = OpenAPISchema.string(pattern: Store.releaseVersionPattern, minLength: 1, maxLength: 64)

    static let releases: [APIOperation] = [
        APIOperation(
            method: .get, path: "\(base)/releases", id: "listReleases", tag: "releases",
            summary: "List the software releases devices can be updated to", access: .role(.viewer), status: 200,
            content: .json(OpenAPIComponents.list(of: "Release"))
        ) { call in .json(Items(items: try await call.store.listReleases())) },
        APIOperation(
            method: .post, path: "\(base)/releases", id: "uploadRelease", tag: "releases",
            summary:
                "Upload a release tarball (make package's vantage_VERSION_ARCH.tar.gz; the body is the file); it must hold bin/vantage",
            access: .role(.operator),
            query: [
                .init(
                    name: "version", schema: releaseVersion,
                    description:
                        "the release's version, when the tarball names none in share/vantage/version (else it must agree)"
                )
            ], body: .binary("application/gzip"), status: 201, content: .json(.ref("Release"))
        ) { call in
            let upload = try await call.receiveUpload()
            defer { try? FileManager.default.removeItem(at: upload.file) }
            let release = try await call.store.addRelease(upload: upload, version: call.query("version"))
            return .json(release, created: release.version)
        },
        APIOperation(
            method: .get, path: "\(base)/releases/{version}", id: "getRelease", tag: "releases",
            summary: "Describe a release", access: .role(.viewer), status: 200, content: .json(.ref("Release"))
        ) { call in .json(try await call.store.release(releasePathVersion(call))) },
        APIOperation(
            method: .delete, path: "\(base)/releases/{version}", id: "deleteRelease", tag: "releases",
            summary: "Delete a release no device runs and no rollout in progress sends", access: .role(.operator),
            status: 204, content: .none
        ) { call in
            try await call.store.deleteRelease(releasePathVersion(call))
            return .empty
        },
    ]

    /// The release version in the path, percent-decoded: debug builds' versions end in `+debug`, which clients
    /// write as `%2B`.
    static func releasePathVersion(_ call: APICall) -> String {
        let raw = call.parameter("version")
        return raw.removingPercentEncoding ?? raw
    }

    static let rollouts: [APIOperation] = [
        APIOperation(
            method: .get, path: "\(base)/rollouts", id: "listRollouts", tag: "releases",
            summary: "List rollouts, newest first, with each device's state", access: .role(.viewer), status: 200,
            content: .json(OpenAPIComponents.list(of: "Rollout"))
        ) { call in .json(Items(items: try await call.store.listRollouts())) },
        APIOperation(
            method: .post, path: "\(base)/rollouts", id: "createRollout", tag: "releases",
            summary: "Roll a release out to devices: the first alone (the canary), the rest once it is healthy",
            access: .role(.operator), body: .json("NewRollout", fields: NewRollout.fields), status: 201,
            content: .json(.ref("Rollout"))
        ) { call in
            let rollout = try await call.store.createRollout(try await call.decode(NewRollout.self))
            return .json(rollout, created: rollout.id)
        },
        APIOperation(
            method: .get, path: "\(base)/rollouts/{id}", id: "getRollout", tag: "releases",
            summary: "Describe a rollout and each device's state", access: .role(.viewer), status: 200,
            content: .json(.ref("Rollout"))
        ) { call in .json(try await call.store.rollout(call.parameter("id"))) },
    ]

    // MARK: Tokens and audit

    static let access: [APIOperation] = [
        APIOperation(
            method: .get, path: "\(base)/tokens", id: "listTokens", tag: "access", summary: "List API tokens",
            access: .role(.admin), status: 200, content: .json(OpenAPIComponents.list(of: "APIToken"))
        ) { call in .json(Items(items: try await call.store.listTokens())) },
        APIOperation(
            method: .post, path: "\(base)/tokens", id: "createToken", tag: "access",
            summary: "Create an API token; its secret is answered once", access: .role(.admin),
            body: .json("NewToken", fields: NewToken.fields), status: 201, content: .json(.ref("APITokenCreated"))
        ) { call in
            let created = try await call.store.createToken(try await call.decode(NewToken.self))
            return .json(created, created: created.token.id)
        },
        APIOperation(
            method: .delete, path: "\(base)/tokens/{id}", id: "deleteToken", tag: "access", summary: "Revoke a token",
            access: .role(.admin), status: 204, content: .none
        ) { call in
            try await call.store.deleteToken(call.parameter("id"))
            return .empty
        },
        APIOperation(
            method: .get, path: "\(base)/audit", id: "listAudit", tag: "access",
            summary: "The audit log, newest first", access: .role(.admin),
            query: [
                .init(
                    name: "limit", schema: .integer(minimum: 1, maximum: 500),
                    description: "page size, 1-500 (default 100)"),
                .init(name: "cursor", schema: .text, description: "nextCursor of the previous page"),
                .init(name: "actor", schema: .text, description: "only this actor's lines, e.g. user:alice"),
                .init(
                    name: "action", schema: .text, description: "only this action (an operation id), e.g. revokeDevice"),
            ], status: 200, content: .json(.ref("AuditPage"))
        ) { call in
            .json(
                try await call.store.auditLog(
                    limit: try call.queryInt("limit", default: 100), cursor: call.query("cursor"),
                    actor: call.query("actor"), action: call.query("action")))
        },
    ]
}
