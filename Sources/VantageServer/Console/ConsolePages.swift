import Foundation
import VantageAPI
import VantageCore

/// One function per console page, each rendering what the ``Store`` holds. Forms do not post here: console.js sends
/// them to the REST API, which validates them, so no rule lives in this file.
struct ConsolePages: Sendable {
    let store: Store
    /// Where agents reach the device endpoint (`https://host:port`), for the enrol command; nil: not served.
    var deviceEndpoint: String? = nil

    // MARK: Overview

    func overview(showRemoved: Bool = false) async throws -> ConsolePage {
        let devices = try await store.listDevices()
        let all = try await store.listInstances()
        let instances = showRemoved ? all : all.filter { $0.desiredState != .removed }
        let events = try await store.eventCount(since: Date().addingTimeInterval(-86_400))
        func count(_ health: HealthStatus) -> Int { instances.filter { $0.healthStatus == health }.count }
        let online = devices.filter { $0.connectionStatus == .online }.count
        let offline = devices.filter { $0.connectionStatus == .offline }.count
        let troubled = instances.filter { $0.healthStatus == .error || $0.status.rawValue.hasSuffix("FAILED") }
        let names = Dictionary(devices.map { ($0.id, $0.name) }, uniquingKeysWith: { first, _ in first })
        let attention: HTML =
            troubled.isEmpty
            ? ""
            : """
            <section class="panel"><h2>Needs attention</h2><ul class="plain">\(troubled.map { instance -> HTML in
                """
                <li><a href="/instances/\(HTML.path(instance.id))">\(instance.name)</a> on \
                \(names[instance.deviceId] ?? instance.deviceId): \(HTML.badge(instance.status.rawValue)) \
                \(HTML.badge(instance.healthStatus.rawValue)) <span class="muted">\(instance.statusDescription)</span></li>
                """
            })</ul></section>
            """
        return ConsolePage(
            title: "Overview", section: .overview,
            body: """
                <h1>Overview</h1>
                <div id="overview-now" data-refresh="10">
                <div class="tiles">
                <a class="tile" href="/devices"><h2>Devices</h2><dl>
                <dt>\(HTML.badge("ONLINE"))</dt><dd id="devices-online">\(online)</dd>
                <dt>\(HTML.badge("OFFLINE"))</dt><dd id="devices-offline">\(offline)</dd>
                <dt>\(HTML.badge("NOT_AVAILABLE"))</dt><dd id="devices-never">\(devices.count - online - offline)</dd>
                </dl><p class="muted">NOT_AVAILABLE: never sent a heartbeat</p></a>
                <a class="tile" href="/instances"><h2>Application instances</h2><dl>
                \(HealthStatus.allCases.map { health -> HTML in
                    "<dt>\(HTML.badge(health.rawValue))</dt><dd id=\"instances-\(health.rawValue.lowercased())\">\(count(health))</dd>"
                })
                </dl><p class="muted">by health\
                \(HTML.when(!showRemoved && all.count > instances.count, ", \(all.count - instances.count) removed not counted"))</p></a>
                <a class="tile" href="/events"><h2>Events</h2><dl>
                <dt>last 24 hours</dt><dd id="events-24h">\(events)</dd>
                </dl></a>
                </div>
                \(attention)
                </div>
                """)
    }

    // MARK: Devices

    func devices() async throws -> ConsolePage {
        let devices = try await store.listDevices()
        let rows: [HTML] = devices.map { device in
            """
            <tr><td><a href="/devices/\(HTML.path(device.id))">\(device.name)</a></td>\
            <td>\(HTML.badge(device.connectionStatus.rawValue))</td>\
            <td>\(HTML.badge(device.provisioningStatus.rawValue))</td>\
            <td>\(HTML.time(device.lastHeartbeat))</td><td>\(device.softwareVersion ?? "")</td></tr>
            """
        }
        return ConsolePage(
            title: "Devices", section: .devices,
            body: """
                <h1>Devices</h1>
                <table class="list" id="devices">
                <thead><tr><th>Name</th><th>Connection</th><th>Provisioning</th><th>Last heartbeat</th><th>Software</th></tr></thead>
                <tbody>\(rows.isEmpty ? Self.emptyRow(5, "No devices yet: register one below.") : "\(rows)")</tbody>
                </table>
                <section class="panel">
                <h2>Register a device</h2>
                <form id="device-form" class="inline">
                <label>Name <input name="name" required autocomplete="off"></label>
                <label>Description <input name="description" autocomplete="off"></label>
                <button type="submit">Register</button>
                <p class="form-error" role="alert" hidden></p>
                </form>
                <div id="device-created" class="notice" hidden>
                <p>Registered <strong class="device-name"></strong>. Its provisioning token is shown this once, \
                works once, until <span class="device-expiry"></span>:</p>
                <pre class="secret device-token"></pre>
                <p>On the device, enroll the agent with (sudo where the vantage package is installed):</p>
                <pre class="device-command" data-endpoint="\(deviceEndpoint ?? "")"></pre>
                <p><a href="/devices">Show it in the list</a></p>
                </div>
                </section>
                """)
    }

    func device(_ id: String, showRemoved: Bool = false) async throws -> ConsolePage {
        let device = try await store.device(id)
        let cameras = try await store.listCameras().filter { $0.deviceId == device.id }
        let allInstances = try await store.listInstances(device: device.id)
        let instances = showRemoved ? allInstances : allInstances.filter { $0.desiredState != .removed }
        let now = Date()
        let health = try await deviceHealth(device)  // ConsolePages+Health.swift
        return ConsolePage(
            title: device.name, section: .devices,
            body: """
                <p class="crumbs"><a href="/devices">Devices</a> /</p>
                <h1>\(device.name) \(HTML.badge(device.connectionStatus.rawValue))</h1>
                <p class="watch"><a class="button" id="watch-device" href="/live\(HTML.query([("deviceId", device.id)]))">Watch its cameras live</a></p>
                <dl class="facts">
                <dt>Id</dt><dd><code>\(device.id)</code></dd>
                <dt>Description</dt><dd>\(device.description)</dd>
                <dt>Provisioning</dt><dd>\(HTML.badge(device.provisioningStatus.rawValue))</dd>
                <dt>Last heartbeat</dt><dd>\(HTML.time(device.lastHeartbeat))</dd>
                <dt>Software</dt><dd>\(device.softwareVersion ?? "")</dd>
                <dt>Software update</dt><dd id="software-update">\(device.softwareUpdate.map { "\($0.releaseVersion): \($0.state.rawValue)\($0.reason.map { " (\($0))" } ?? "") (rollout \($0.rolloutId))" } ?? "none")</dd>
                <dt>Certificate</dt><dd>\(device.certificateExpiresAt.map { "\($0 > now ? "valid until" : "expired") \(HTML.time($0))" as HTML } ?? "none (not enrolled, or revoked)")</dd>
                \((device.conditions ?? []).map { "<dt>Alert</dt><dd class=\"alert\" id=\"condition-\($0.kind.rawValue)\">\($0.message) (since \(HTML.time($0.since)))</dd>" as HTML })
                <dt>Registered</dt><dd>\(HTML.time(device.createdAt))</dd>
                </dl>
                \(deviceActions(device, instances: allInstances))
                <h2>Health</h2>
                \(health)
                <h2>Cameras</h2>
                \(Self.cameraTable(cameras, devices: [:], health: try await cameraHealth(cameras, devices: [device])))
                <h2>Application instances</h2>
                \(Self.instanceTable(instances, devices: [device.id: device.name]))
                \(Self.removedLink(path: "/devices/\(HTML.path(device.id))", shown: showRemoved, hidden: allInstances.count - instances.count))
                <h2>Agent log</h2>
                \(Self.logView(try await store.logs(device: device.id, instance: nil, since: nil, limit: Self.logViewLimit), api: "/api/v1/devices/\(HTML.path(device.id))/logs"))
                """)
    }

    // MARK: Cameras

    func cameras() async throws -> ConsolePage {
        let cameras = try await store.listCameras()
        let devices = try await store.listDevices()
        let names = Dictionary(devices.map { ($0.id, $0.name) }, uniquingKeysWith: { first, _ in first })
        let options: [HTML] = devices.map { "<option value=\"\($0.id)\">\($0.name)</option>" }
        return ConsolePage(
            title: "Cameras", section: .cameras,
            body: """
                <h1>Cameras</h1>
                \(Self.cameraTable(cameras, devices: names, health: try await cameraHealth(cameras, devices: devices), uses: try await uses(.camera)))
                \(Self.cameraEditForm(devices: devices))
                <section class="panel">
                <h2>Add a camera</h2>
                <form id="camera-form" class="grid-form">
                <label>Name <input name="name" required autocomplete="off"></label>
                <label>Stream URL <input name="url" required placeholder="rtsp://192.0.2.10:554/stream1" autocomplete="off"></label>
                <label>Sub-stream (for detection) <input name="detectUrl" placeholder="rtsp://192.0.2.10:554/stream2 (optional)" autocomplete="off"></label>
                <label>User name <input name="username" autocomplete="off"></label>
                <label>Password <input name="password" type="password" autocomplete="new-password"></label>
                <label>Device <select name="deviceId"><option value="">(none yet)</option>\(options)</select></label>
                <label>Description <input name="description" autocomplete="off"></label>
                <p class="help">The credentials are stored encrypted and never shown again. A sub-stream (the camera's low-resolution stream) is decoded for detection while the stream URL is kept for clips; it uses the same credentials.</p>
                <button type="submit">Add camera</button>
                <p class="form-error" role="alert" hidden></p>
                </form>
                </section>
                """)
    }

    /// Cameras with their latest snapshot; `devices` names the device column (empty: no device column).
    /// `health` (the cameras page's) adds each camera's status and frames per second.
    static func cameraTable(
        _ cameras: [Camera], devices: [String: String], health: [String: CameraHealth]? = nil,
        uses: [String: [InstanceUse]]? = nil
    ) -> HTML {
        let showDevice = !devices.isEmpty
        let rows: [HTML] = cameras.map { camera in
            let snapshot: HTML =
                camera.snapshotAt == nil
                ? "<span class=\"no-snapshot\">no snapshot yet</span>"
                : "<img class=\"thumb\" src=\"/api/v1/cameras/\(HTML.path(camera.id))/snapshot\" alt=\"latest snapshot of \(camera.name)\" loading=\"lazy\">"
            let device: HTML =
                camera.deviceId.map { id in
                    "<a href=\"/devices/\(HTML.path(id))\">\(devices[id] ?? id)</a>"
                } ?? "<span class=\"muted\">none</span>"
            return """
                <tr id="camera-\(camera.id)"><td>\(snapshot)</td><td>\(camera.name)<br><code class="muted">\(camera.id)</code></td>\
                \(health.map { Self.cameraHealthCells(camera, $0[camera.id]) } ?? "")\
                <td><code>\(camera.url)</code>\(HTML.when(camera.hasCredentials, " <span class=\"muted\">(with credentials)</span>"))\(camera.detectUrl.map { "<br><span class=\"muted\">sub-stream</span> <code class=\"detect-url\">\($0)</code>" as HTML } ?? "")</td>\
                \(HTML.when(showDevice, "<td>\(device)</td>"))<td>\(HTML.time(camera.snapshotAt))</td>\
                \(uses.map { Self.cameraActionCells(camera, $0[camera.id]) } ?? "")</tr>
                """
        }
        return """
            <table class="list" id="cameras">
            <thead><tr><th>Snapshot</th><th>Name</th>\(HTML.when(health != nil, "<th>Status</th><th>FPS</th>"))<th>Stream</th>\
            \(HTML.when(showDevice, "<th>Device</th>"))<th>Snapshot taken</th>\(HTML.when(uses != nil, "<th>Used by</th><th></th>"))</tr></thead>
            <tbody>\(rows.isEmpty ? emptyRow((showDevice ? 5 : 4) + (health == nil ? 0 : 2) + (uses == nil ? 0 : 2), "No cameras.") : "\(rows)")</tbody>
            </table>
            """
    }

    // MARK: Models

    func models() async throws -> ConsolePage {
        let models = try await store.listModels()
        let modelUses = try await uses(.model)
        let rows: [HTML] = models.map { model in
            let versions: [HTML] = model.versions.reversed().map { version in
                """
                <li>v\(version.version) <code>\(version.filename)</code> \(HTML.bytes(version.size)) \
                \(HTML.digest(version.digest)) \(HTML.time(version.createdAt))</li>
                """
            }
            return """
                <tr><td>\(model.name)</td><td>\(model.description)</td>\
                <td>\(versions.isEmpty ? "<span class=\"muted\">no version yet</span>" as HTML : "<ul class=\"plain\">\(versions)</ul>")</td>\
                \(Self.usedByCell(modelUses[model.id]))<td>\(Self.deleteButton(.model, id: model.id, name: model.name, uses: modelUses[model.id]))</td></tr>
                """
        }
        return ConsolePage(
            title: "Models", section: .models,
            body: """
                <h1>Models</h1>
                <table class="list" id="models">
                <thead><tr><th>Name</th><th>Description</th><th>Versions (newest first)</th><th>Used by</th><th></th></tr></thead>
                <tbody>\(rows.isEmpty ? Self.emptyRow(5, "No models yet.") : "\(rows)")</tbody>
                </table>
                <p class="form-error" role="alert" hidden id="delete-error"></p>
                <section class="panel">
                <h2>Upload a model version</h2>
                <form id="model-form" class="grid-form">
                <label>Model <input name="name" list="model-names" required autocomplete="off" placeholder="an existing or a new name"></label>
                <datalist id="model-names">\(models.map { "<option value=\"\($0.name)\" data-id=\"\($0.id)\"></option>" as HTML })</datalist>
                <label>Description (new models) <input name="description" autocomplete="off"></label>
                <label>File <input name="file" type="file" required></label>
                <button type="submit">Upload</button>
                <p class="status" aria-live="polite"></p>
                <p class="form-error" role="alert" hidden></p>
                </form>
                </section>
                """)
    }

    // MARK: Packages

    func packages() async throws -> ConsolePage {
        let packages = try await store.listPackages()
        let packageUses = try await uses(.package)
        let rows: [HTML] = packages.map { package in
            let versions: [HTML] = package.versions.reversed().map { version in
                "<li><a href=\"/packages/\(HTML.path(package.id))#version-\(version.version)\">\(version.version)</a> \(version.application) \(HTML.badge(version.status.rawValue))</li>"
            }
            return """
                <tr><td><a href="/packages/\(HTML.path(package.id))">\(package.name)</a></td><td>\(package.description)</td>\
                <td>\(versions.isEmpty ? "<span class=\"muted\">no version yet</span>" as HTML : "<ul class=\"plain\">\(versions)</ul>")</td>\
                <td>\(HTML.time(package.createdAt))</td>\(Self.usedByCell(packageUses[package.id]))\
                <td>\(Self.deleteButton(.package, id: package.id, name: package.name, uses: packageUses[package.id]))</td></tr>
                """
        }
        return ConsolePage(
            title: "Packages", section: .packages,
            body: """
                <h1>Packages</h1>
                <table class="list" id="packages">
                <thead><tr><th>Name</th><th>Description</th><th>Versions (newest first)</th><th>Created</th><th>Used by</th><th></th></tr></thead>
                <tbody>\(rows.isEmpty ? Self.emptyRow(6, "No packages yet: upload an application project below.") : "\(rows)")</tbody>
                </table>
                <p class="form-error" role="alert" hidden id="delete-error"></p>
                <section class="panel">
                <h2>Upload a package version</h2>
                <p class="help">A ZIP of an application project folder (the folder with <code>graphs/</code>, or its parent). \
                The server checks its manifest as <code>vantage run</code> would.</p>
                <form id="package-form" class="grid-form">
                <label>Package <input name="name" list="package-names" required autocomplete="off" placeholder="an existing or a new name"></label>
                <datalist id="package-names">\(packages.map { "<option value=\"\($0.name)\" data-id=\"\($0.id)\"></option>" as HTML })</datalist>
                <label>Version <input name="version" required autocomplete="off" placeholder="1.0"></label>
                <label>ZIP archive <input name="file" type="file" accept=".zip,application/zip" required></label>
                <button type="submit">Upload</button>
                <p class="status" aria-live="polite"></p>
                <p class="form-error" role="alert" hidden></p>
                </form>
                </section>
                """)
    }

    func package(_ id: String) async throws -> ConsolePage {
        let package = try await store.package(id)
        let versions: [HTML] = package.versions.reversed().map { version in
            let cameras: [HTML] = version.cameras.map {
                "<tr><td><code>\($0.node)</code></td><td>\($0.title ?? "")</td><td>\($0.description ?? "")</td></tr>"
            }
            let parameters: [HTML] = version.parameters.map { parameter in
                let override: HTML =
                    parameter.overridable
                    ? (parameter.mandatory ? "required" : "yes") : "<span class=\"muted\">no</span>"
                return """
                    <tr><td><code>\(parameter.node)</code></td><td>\(parameter.type)</td>\
                    <td><code>\(parameter.defaultValue.text)</code></td><td>\(override)</td>\
                    <td>\(parameter.title ?? "")\(HTML.when(parameter.description != nil, "<br><span class=\"muted\">\(parameter.description ?? "")</span>"))</td>\
                    <td>\(parameter.constraintText ?? "")\(HTML.when(parameter.constraintRegex != nil, " <code>\(parameter.constraintRegex ?? "")</code>"))</td></tr>
                    """
            }
            return """
                <section class="panel version" id="version-\(version.version)">
                <h2>Version \(version.version) <span class="muted">application</span> \(version.application) \
                \(HTML.badge(version.status.rawValue))</h2>
                <p>\(HTML.bytes(version.size)), \(HTML.digest(version.digest)), uploaded \(HTML.time(version.createdAt)) \
                · <a href="/api/v1/packages/\(HTML.path(package.id))/versions/\(HTML.path(version.version))/archive">download</a></p>
                <h3>Camera nodes</h3>
                <table class="list"><thead><tr><th>Node</th><th>Title</th><th>Description</th></tr></thead>
                <tbody>\(cameras.isEmpty ? Self.emptyRow(3, "none") : "\(cameras)")</tbody></table>
                <h3>Parameters</h3>
                <table class="list"><thead><tr><th>Node</th><th>Type</th><th>Default</th><th>Overridable</th><th>Title</th><th>Constraint</th></tr></thead>
                <tbody>\(parameters.isEmpty ? Self.emptyRow(6, "none") : "\(parameters)")</tbody></table>
                <p><a class="button" href="/instances/new\(HTML.query([("package", package.id), ("version", version.version)]))">Deploy version \(version.version)</a></p>
                </section>
                """
        }
        return ConsolePage(
            title: package.name, section: .packages,
            body: """
                <p class="crumbs"><a href="/packages">Packages</a> /</p>
                <h1>\(package.name)</h1>
                <p>\(package.description)</p>
                \(versions.isEmpty ? "<p class=\"empty\">No version yet: upload one on the <a href=\"/packages\">packages page</a>.</p>" as HTML : "\(versions)")
                """)
    }

    // MARK: Application instances

    func instances(showRemoved: Bool = false) async throws -> ConsolePage {
        let all = try await store.listInstances()
        let instances = showRemoved ? all : all.filter { $0.desiredState != .removed }
        let devices = try await store.listDevices()
        let names = Dictionary(devices.map { ($0.id, $0.name) }, uniquingKeysWith: { first, _ in first })
        return ConsolePage(
            title: "Application instances", section: .instances,
            body: """
                <h1>Application instances</h1>
                <p class="actions"><a class="button edit-action" href="/instances/new" id="deploy-new">Deploy an application</a></p>
                \(Self.instanceTable(instances, devices: names))
                \(Self.removedLink(path: "/instances", shown: showRemoved, hidden: all.count - instances.count))
                """)
    }

    static func instanceTable(_ instances: [ApplicationInstance], devices: [String: String]) -> HTML {
        let rows: [HTML] = instances.map { instance in
            """
            <tr id="instance-\(instance.id)"><td><a href="/instances/\(HTML.path(instance.id))">\(instance.name)</a></td>\
            <td><a href="/packages/\(HTML.path(instance.packageId))">\(instance.packageName)</a>@\(instance.packageVersion)</td>\
            <td><a href="/devices/\(HTML.path(instance.deviceId))">\(devices[instance.deviceId] ?? instance.deviceId)</a></td>\
            <td>\(HTML.badge(instance.desiredState.rawValue))</td><td>\(HTML.badge(instance.status.rawValue))</td>\
            <td>\(HTML.badge(instance.healthStatus.rawValue))</td></tr>
            """
        }
        return """
            <table class="list" id="instances">
            <thead><tr><th>Name</th><th>Package</th><th>Device</th><th>Desired</th><th>Status</th><th>Health</th></tr></thead>
            <tbody>\(rows.isEmpty ? emptyRow(6, "No application instances.") : "\(rows)")</tbody>
            </table>
            """
    }

    func instance(_ id: String) async throws -> ConsolePage {
        let instance = try await store.instance(id)
        let deployments = try await store.deployments(instance: instance.id)
        let device = try? await store.device(instance.deviceId)
        let cameras = try await store.listCameras()
        let cameraNames = Dictionary(cameras.map { ($0.id, $0.name) }, uniquingKeysWith: { first, _ in first })
        let bindings: [HTML] = instance.cameras.sorted { $0.key < $1.key }.map { node, camera in
            "<tr><td><code>\(node)</code></td><td>\(cameraNames[camera] ?? camera)</td></tr>"
        }
        let parameters: [HTML] = instance.parameters.sorted { $0.key < $1.key }.map { node, value in
            "<tr><td><code>\(node)</code></td><td><code>\(value.text)</code></td></tr>"
        }
        let modelNames = Dictionary(
            try await store.listModels().map { ($0.id, $0.name) }, uniquingKeysWith: { first, _ in first })
        let models: [HTML] = instance.models.sorted { $0.key < $1.key }.map { node, binding in
            """
            <tr><td><code>\(node)</code></td><td><a href="/models">\(modelNames[binding.modelId] ?? binding.modelId)</a> \
            version \(String(binding.version))</td></tr>
            """
        }
        let logs = Self.logView(
            try await store.logs(
                device: instance.deviceId, instance: instance.id, since: nil, limit: Self.logViewLimit),
            api: "/api/v1/instances/\(HTML.path(instance.id))/logs")
        let history: [HTML] = deployments.map { deployment in
            """
            <tr><td>\(HTML.time(deployment.createdAt))</td><td>\(deployment.packageVersion)</td>\
            <td>\(HTML.badge(deployment.desiredState.rawValue))</td><td>\(HTML.badge(deployment.status.rawValue))</td>\
            <td>\(deployment.message)</td><td>\(HTML.time(deployment.updatedAt))</td></tr>
            """
        }
        var actions: [HTML] = []
        if instance.desiredState == .running {
            actions.append("<button type=\"button\" data-instance-action=\"stop\">Stop</button>")
        } else {
            actions.append("<button type=\"button\" data-instance-action=\"start\">Start</button>")
        }
        if instance.desiredState != .removed {
            let edit = "/instances/\(HTML.path(instance.id))/edit"
            actions.append("<a class=\"button edit-action\" id=\"edit-instance\" href=\"\(edit)\">Edit</a>")
            actions.append("<button type=\"button\" class=\"danger\" data-instance-action=\"remove\">Remove</button>")
        }
        return ConsolePage(
            title: instance.name, section: .instances,
            body: """
                <p class="crumbs"><a href="/instances">Application instances</a> /</p>
                <h1>\(instance.name) \(HTML.badge(instance.healthStatus.rawValue))</h1>
                \(HTML.when(instance.desiredState == .running, "<p class=\"watch\"><a class=\"button\" id=\"watch-live\" href=\"/instances/\(HTML.path(instance.id))/live\">Watch live</a></p>"))
                <div class="actions" id="instance-actions" data-instance="\(instance.id)">\(actions)
                <p class="form-error" role="alert" hidden></p></div>
                <div id="instance-now" data-refresh="5">
                <dl class="facts">
                <dt>Id</dt><dd><code>\(instance.id)</code></dd>
                <dt>Description</dt><dd>\(instance.description)</dd>
                <dt>Package</dt><dd><a href="/packages/\(HTML.path(instance.packageId))">\(instance.packageName)</a> \(instance.packageVersion)</dd>
                <dt>Device</dt><dd><a href="/devices/\(HTML.path(instance.deviceId))">\(device?.name ?? instance.deviceId)</a></dd>
                <dt>Desired state</dt><dd>\(HTML.badge(instance.desiredState.rawValue))</dd>
                <dt>Status</dt><dd>\(HTML.badge(instance.status.rawValue)) \(instance.statusDescription)</dd>
                \(HTML.when(instance.awsCredentials != nil, "<dt>AWS credentials</dt><dd><code>\(instance.awsCredentials?.accessKeyId ?? "")</code> \(instance.awsCredentials?.region ?? "")</dd>"))
                <dt>Updated</dt><dd>\(HTML.time(instance.updatedAt))</dd>
                </dl>
                </div>
                <h2>Cameras</h2>
                <table class="list"><thead><tr><th>Node</th><th>Camera</th></tr></thead>
                <tbody>\(bindings.isEmpty ? Self.emptyRow(2, "none") : "\(bindings)")</tbody></table>
                <h2>Parameters</h2>
                <table class="list" id="parameters"><thead><tr><th>Node</th><th>Value</th></tr></thead>
                <tbody>\(parameters.isEmpty ? Self.emptyRow(2, "all at the package's defaults") : "\(parameters)")</tbody></table>
                <h2>Models</h2>
                <table class="list" id="models"><thead><tr><th>Node</th><th>Model</th></tr></thead>
                <tbody>\(models.isEmpty ? Self.emptyRow(2, "the package's own files") : "\(models)")</tbody></table>
                <h2>Deployments</h2>
                <div id="deployments-now" data-refresh="5">
                <table class="list" id="deployments"><thead><tr><th>Requested</th><th>Version</th><th>Desired</th><th>Status</th><th>Message</th><th>Updated</th></tr></thead>
                <tbody>\(history.isEmpty ? Self.emptyRow(6, "none") : "\(history)")</tbody></table>
                </div>
                <h2>Logs</h2>
                \(logs)
                """)
    }

    // MARK: Shared

    static func emptyRow(_ columns: Int, _ text: String) -> HTML {
        "<tr><td colspan=\"\(columns)\" class=\"empty\">\(text)</td></tr>"
    }
}
