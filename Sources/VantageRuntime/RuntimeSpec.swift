import Foundation
import VantageApp
import VantageCore

/// Everything a runtime runs, as one typed value: the application resolved with its cameras (URLs and credentials),
/// parameters and model files, the runtime's settings, and the outputs (sinks, rules, analytics) merged from the
/// manifest, an overrides document, `--outputs FILE` and the desired instance, with `${NAME}` already resolved.
///
/// `vantage run` builds it from its flags and the manifest; the agent builds it from the desired instance; a runtime
/// worker receives it from the agent over its pipe, encoded once, and runs it as it is (it resolves nothing). What
/// belongs to the process that runs it — where events are recorded, the camera hub — is given beside it
/// (``Runtime/make(spec:recorder:cameraHub:logger:)``), never inside.
public struct RuntimeSpec: Sendable, Codable {
    public var application: ResolvedApplication
    public var configuration: RuntimeConfiguration
    public var outputs: OutputsConfiguration

    /// The spec of `application` run with `configuration`: its outputs are read and checked now (a mistake in them
    /// is reported before anything loads).
    public init(application: ResolvedApplication, configuration: RuntimeConfiguration) throws {
        self.application = application
        self.configuration = configuration
        outputs = try Runtime.loadOutputs(application: application, configuration: configuration)
    }
}
