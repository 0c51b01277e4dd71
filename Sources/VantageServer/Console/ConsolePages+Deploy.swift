import Foundation
import VantageAPI
import VantageCore

// The deploy wizard (/instances/new) and the edit of a running instance (/instances/{id}/edit). Both only render:
// console.js (ConsoleAssets+Deploy.swift) walks the steps and sends the result to the REST API, which judges it.
extension ConsolePages {
    /// The wizard's steps after the package, in order: (id, title).
    static let deploySteps: [(String, String)] = [
        ("device", "Device"), ("cameras", "Cameras"), ("models", "Models"), ("parameters", "Parameters"),
        ("outputs", "Outputs"), ("review", "Review"),
    ]

    /// The deploy wizard. Without a package (or version) it starts at the package step, a GET form that comes back
    /// here with both; with them, the remaining steps are one form shown a step at a time.
    func deployWizard(package packageID: String, version: String) async throws -> ConsolePage {
        let packages = try await store.listPackages()
        let chosen = packages.first { $0.id == packageID }
        let packageVersion = chosen?.versions.first { $0.version == version }
        if !packageID.isEmpty, chosen == nil { throw APIError.notFound("package", packageID) }
        if let chosen, !version.isEmpty, packageVersion == nil {
            throw APIError(404, "package \(chosen.name) has no version \"\(version)\": choose one of its versions")
        }
        let packageOptions: [HTML] = packages.filter { !$0.versions.isEmpty }.map { package in
            "<option value=\"\(package.id)\"\(HTML.when(package.id == packageID, " selected"))>\(package.name)</option>"
        }
        let versionOptions: [HTML] = packages.flatMap { package in
            package.versions.reversed().map { entry -> HTML in
                let selected = package.id == packageID && entry.version == version
                return """
                    <option value="\(entry.version)" data-package="\(package.id)"\(HTML.when(selected, " selected"))>\
                    \(entry.version) (\(entry.application))</option>
                    """
            }
        }
        let steps: [HTML] =
            ([("package", "Package")] + Self.deploySteps).enumerated().map { index, step in
                "<li data-step=\"\(step.0)\"><span class=\"step-number\">\(index + 1)</span> \(step.1)</li>"
            }
        let packageStep: HTML = """
            <form id="package-step" method="get" action="/instances/new" class="inline panel step-panel">
            <h2>1. Package</h2>
            <label>Package <select name="package" id="wizard-package" required>\
            <option value="">choose a package</option>\(packageOptions)</select></label>
            <label>Version <select name="version" id="wizard-version" required>\
            <option value="">choose a version</option>\(versionOptions)</select></label>
            <button type="submit">\(packageVersion == nil ? "Next" : "Change")</button>
            \(HTML.when(packageOptions.isEmpty, "<p class=\"help\">No package has a version yet: upload one on the <a href=\"/packages\">packages page</a>.</p>"))
            </form>
            """
        guard let package = chosen, let packageVersion else {
            return ConsolePage(
                title: "Deploy an application", section: .instances,
                body: """
                    <p class="crumbs"><a href="/instances">Application instances</a> /</p>
                    <h1>Deploy an application</h1>
                    <ol class="wizard-steps" id="wizard-steps" data-current="package">\(steps)</ol>
                    \(packageStep)
                    """)
        }
        let devices = try await store.listDevices()
        let cameras = try await store.listCameras()
        let models = try await store.listModels()
        let modelNodes = await modelNodes(package: package.id, version: version)
        let deviceOptions: [HTML] = devices.map { "<option value=\"\($0.id)\">\($0.name)</option>" }
        // Every camera, with its device: console.js offers in each select only the chosen device's cameras (and
        // those of no device yet, which the server then assigns to it).
        let cameraCatalog: [HTML] = cameras.map { camera in
            """
            <option value="\(camera.id)" data-device="\(camera.deviceId ?? "")">\(camera.name)\
            \(HTML.when(camera.deviceId == nil, " (no device yet: it will be assigned to this one)"))</option>
            """
        }
        let cameraFields: [HTML] = packageVersion.cameras.map { input in
            """
            <label>\(input.title ?? input.node) <span class="muted">(\(input.node))</span>\
            <select name="camera-\(input.node)" id="camera-\(input.node)" data-camera-node="\(input.node)" required>\
            <option value="">choose a device first</option></select>\
            \(HTML.when(input.description != nil, "<span class=\"help\">\(input.description ?? "")</span>"))</label>
            """
        }
        let parameters = packageVersion.parameters.filter(\.overridable)
        let fixed = packageVersion.parameters.filter { !$0.overridable }
        let fixedList: HTML = HTML.when(
            !fixed.isEmpty,
            "<p class=\"help\">Set by the package: \(fixed.map { "<code>\($0.node) = \($0.defaultValue.text)</code> " as HTML })</p>"
        )
        let nameStep = """
            <label>Instance name <input name="name" id="instance-name" value="\(packageVersion.application)" \
            required autocomplete="off" maxlength="128"></label>
            <label>Description <input name="description" autocomplete="off"></label>
            <label>Device <select name="deviceId" id="device" required><option value="">choose a device</option>\
            \(deviceOptions)</select></label>
            \(HTML.when(devices.isEmpty, "<p class=\"help\">No device yet: register one on the <a href=\"/devices\">devices page</a>.</p>"))
            """ as HTML
        return ConsolePage(
            title: "Deploy \(package.name) \(version)", section: .instances,
            body: """
                <p class="crumbs"><a href="/instances">Application instances</a> / \
                <a href="/packages/\(HTML.path(package.id))">\(package.name)</a> /</p>
                <h1>Deploy \(package.name) \(version)</h1>
                <ol class="wizard-steps" id="wizard-steps" data-current="device">\(steps)</ol>
                \(packageStep)
                <select id="camera-catalog" hidden disabled>\(cameraCatalog)</select>
                <form id="instance-form" class="panel wizard" data-package="\(package.id)" data-version="\(version)" \
                data-package-name="\(package.name)" novalidate>
                <fieldset class="step grid-form" data-step="device"><legend>2. Name and device</legend>
                \(nameStep)
                </fieldset>
                <fieldset class="step grid-form" data-step="cameras" hidden><legend>3. Cameras</legend>
                <p class="help">Only the chosen device's cameras are offered: a camera's stream and credentials go to its \
                own device only.</p>
                \(cameraFields.isEmpty ? "<p class=\"empty\">This application has no camera node.</p>" as HTML : "\(cameraFields)")
                <p class="help no-cameras" hidden>The device has no camera yet: add one on the <a href="/cameras">cameras \
                page</a> and assign it to this device.</p>
                </fieldset>
                <fieldset class="step grid-form" data-step="models" hidden><legend>4. Models</legend>
                \(Self.modelFields(modelNodes, models: models, current: [:]))
                </fieldset>
                <fieldset class="step grid-form" data-step="parameters" hidden><legend>5. Parameters</legend>
                \(parameters.isEmpty ? "<p class=\"empty\">No parameter of this application can be set.</p>" as HTML : "<p class=\"help\">Leave a field empty for the package's default (shown greyed).</p>\(Self.parameterFields(parameters, current: [:]))")
                \(fixedList)
                </fieldset>
                <fieldset class="step" data-step="outputs" hidden><legend>6. Outputs (optional)</legend>
                \(Self.outputsField(nil))
                </fieldset>
                <fieldset class="step" data-step="review" hidden><legend>7. Review</legend>
                <dl class="facts" id="review"></dl>
                </fieldset>
                <div class="wizard-nav">
                <button type="button" class="secondary" data-wizard="back" hidden>Back</button>
                <button type="button" data-wizard="next">Next</button>
                <button type="submit" data-wizard="deploy" hidden>Deploy</button>
                </div>
                <p class="form-error" role="alert" hidden></p>
                </form>
                """)
    }

    /// The edit of an instance: its version, parameters, models and outputs. console.js shows what changes (old →
    /// new) before it PATCHes the instance.
    func editInstance(_ id: String) async throws -> ConsolePage {
        let instance = try await store.instance(id)
        guard instance.desiredState != .removed else {
            throw APIError.conflict(
                "instance \(instance.name) is removed: deploy the package again from the deploy wizard instead")
        }
        let package = try await store.package(instance.packageId)
        guard let packageVersion = package.versions.first(where: { $0.version == instance.packageVersion }) else {
            throw APIError(404, "package \(package.name) has no version \(instance.packageVersion) any more")
        }
        let models = try await store.listModels()
        let modelNodes = await modelNodes(package: package.id, version: instance.packageVersion)
        let versionOptions: [HTML] = package.versions.reversed().map { entry in
            let selected = entry.version == instance.packageVersion
            return """
                <option value="\(entry.version)"\(HTML.when(selected, " selected"))>\(entry.version) \
                (\(entry.application))\(HTML.when(selected, " — running now"))</option>
                """
        }
        let parameters = packageVersion.parameters.filter(\.overridable)
        let outputs: String? = instance.outputs.map { value in
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        }
        return ConsolePage(
            title: "Edit \(instance.name)", section: .instances,
            body: """
                <p class="crumbs"><a href="/instances">Application instances</a> / \
                <a href="/instances/\(HTML.path(instance.id))">\(instance.name)</a> /</p>
                <h1>Edit \(instance.name)</h1>
                <p class="help">Saving deploys the instance again on its device with what changed; its cameras and \
                device stay.</p>
                <form id="edit-form" class="panel" data-instance="\(instance.id)" novalidate>
                <fieldset class="grid-form"><legend>Version</legend>
                <label>Package \(package.name) version <select name="packageVersion" id="edit-version" \
                data-current="\(instance.packageVersion)">\(versionOptions)</select></label>
                </fieldset>
                <fieldset class="grid-form"><legend>Parameters</legend>
                \(parameters.isEmpty ? "<p class=\"empty\">No parameter of this application can be set.</p>" as HTML : "<p class=\"help\">Empty: the package's default (shown greyed).</p>\(Self.parameterFields(parameters, current: instance.parameters))")
                </fieldset>
                <fieldset class="grid-form"><legend>Models</legend>
                \(Self.modelFields(modelNodes, models: models, current: instance.models))
                </fieldset>
                <fieldset><legend>Outputs</legend>
                \(Self.outputsField(outputs))
                </fieldset>
                <section id="edit-changes" class="changes" hidden><h2>What changes</h2>
                <table class="list"><thead><tr><th>Field</th><th>Now</th><th>After saving</th></tr></thead>
                <tbody></tbody></table></section>
                <div class="wizard-nav">
                <a href="/instances/\(HTML.path(instance.id))">Cancel</a>
                <button type="button" id="edit-review">Review changes</button>
                <button type="submit" id="edit-save" hidden>Save and deploy</button>
                </div>
                <p class="status" aria-live="polite"></p>
                <p class="form-error" role="alert" hidden></p>
                </form>
                """)
    }

    /// One field per overridable parameter: its title, node and type, the constraint's human text, and
    /// `data-type` (with `pattern` from the constraint's regex) for console.js's checks, which match the server's.
    static func parameterFields(_ parameters: [ParameterInput], current: [String: JSONValue]) -> [HTML] {
        parameters.map { parameter in
            let value = current[parameter.node]?.text ?? ""
            let help = [parameter.description, parameter.constraintText.map { "Constraint: \($0)." }]
                .compactMap { $0 }.joined(separator: " ")
            let control: HTML
            if parameter.type == "boolean" {
                control = """
                    <select name="param-\(parameter.node)" id="param-\(parameter.node)" data-parameter="\(parameter.node)" \
                    data-type="boolean" data-current="\(value)"\(HTML.when(parameter.mandatory, " required"))>\
                    <option value="">default (\(parameter.defaultValue.text))</option>\
                    <option value="true"\(HTML.when(value == "true", " selected"))>true</option>\
                    <option value="false"\(HTML.when(value == "false", " selected"))>false</option></select>
                    """
            } else {
                let numeric = parameter.type == "int32" || parameter.type == "float32"
                control = """
                    <input name="param-\(parameter.node)" id="param-\(parameter.node)" data-parameter="\(parameter.node)" \
                    data-type="\(parameter.type)" value="\(value)" data-current="\(value)" \
                    placeholder="\(parameter.defaultValue.text)" autocomplete="off"\
                    \(HTML.when(numeric, " inputmode=\"decimal\""))\
                    \(HTML.when(parameter.constraintRegex != nil, " pattern=\"\(parameter.constraintRegex ?? "")\""))\
                    \(HTML.when(parameter.mandatory, " required"))>
                    """
            }
            return """
                <label>\(parameter.title ?? parameter.node) <span class="muted">(\(parameter.node), \(parameter.type)\
                \(HTML.when(parameter.mandatory, ", required")))</span>\
                \(control)\(HTML.when(!help.isEmpty, "<span class=\"help\">\(help)</span>"))\
                <span class="field-error" hidden></span></label>
                """
        }
    }

    /// One select per model node: the package's own file, or a model of the server (bound to its latest version).
    static func modelFields(_ nodes: [String], models: [Model], current: [String: ModelBinding]) -> HTML {
        guard !nodes.isEmpty else {
            return "<p class=\"empty\">This application has no model node (or its archive could not be read).</p>"
        }
        let fields: [HTML] = nodes.map { node in
            let bound = current[node].map { "\($0.modelId)@\($0.version)" } ?? ""
            let options: [HTML] = models.flatMap { model in
                let newest = model.versions.map(\.version).max()
                return model.versions.sorted { $0.version > $1.version }.map { entry -> HTML in
                    let value = "\(model.id)@\(entry.version)"
                    return """
                        <option value="\(value)"\(HTML.when(value == bound, " selected"))>\(model.name) — version \
                        \(entry.version)\(entry.version == newest ? " (latest)" : ""), \(entry.filename)</option>
                        """
                }
            }
            return """
                <label>\(node) <select name="model-\(node)" id="model-\(node)" data-model-node="\(node)" \
                data-current="\(bound)"><option value="">the package's own file</option>\(options)</select></label>
                """
        }
        return """
            <p class="help">A model of the server (a version of it) replaces the file the package names for that node; \
            upload models and new versions on the <a href="/models">models page</a>.</p>
            \(fields)
            """
    }

    static func outputsField(_ current: String?) -> HTML {
        """
        <label>Outputs document (JSON) <textarea name="outputs" id="outputs" rows="8" spellcheck="false" \
        data-current="\(current ?? "")" placeholder="empty: the events the application raises go to the server only">\
        \(current ?? "")</textarea></label>
        <details class="help"><summary>Example (see docs/outputs.md)</summary>
        <pre class="json">{
          "sinks": {"alerts": {"type": "webhook", "url": "https://hooks.example.com/vantage",
                               "secret": "${HOOK_SECRET}"}},
          "rules": [{"when": {"type": "zone.*"}, "send": "alerts", "atMostEvery": "5m"}]
        }</pre>
        <p>Secrets are <code>${NAME}</code> references, read from <code>vantage agent</code>'s environment on the device.</p>
        </details>
        """
    }

    /// The model nodes of a package version's manifest, read from its archive (the stored version lists only
    /// cameras and parameters); none when the archive cannot be read.
    func modelNodes(package: String, version: String) async -> [String] {
        guard let archive = try? await store.packageArchive(package, version: version) else { return [] }
        let scratch = store.artifacts.scratchFolder
        return (try? await Blocking.run { try PackageArchive.validate(archive, scratch: scratch).modelNodes }) ?? []
    }

    /// Under a list that leaves removed instances out: how many it leaves out, and the link that shows them (or
    /// hides them again).
    static func removedLink(path: String, shown: Bool, hidden: Int) -> HTML {
        if shown {
            return "<p class=\"help\"><a href=\"\(path)\" id=\"hide-removed\">Hide removed instances</a></p>"
        }
        guard hidden > 0 else { return "" }
        return """
            <p class="help">\(hidden) removed \(hidden == 1 ? "instance is" : "instances are") not shown: \
            <a href="\(path)?removed=1" id="show-removed">show removed</a></p>
            """
    }
}
