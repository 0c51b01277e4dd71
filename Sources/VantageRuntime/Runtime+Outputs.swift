import Foundation
import Logging
import VantageApp
import VantageCore
import VantageOutputs

extension Runtime {
    /// The outputs that apply: graph.json's `nodeGraph.outputs`, then the overrides document's
    /// `nodeGraphOverrides.outputs`, then `--outputs FILE`; each later one replaces sinks, rules and analytics nodes
    /// of the same name.
    public static func loadOutputs(application: ResolvedApplication, configuration: RuntimeConfiguration) throws
        -> OutputsConfiguration
    {
        var result = OutputsConfiguration()
        for (i, document) in application.outputsDocuments.enumerated() {
            guard let data = try? Data(contentsOf: document),
                let json = JSONValue(parsing: String(decoding: data, as: UTF8.self))
            else { continue }
            let key = i == 0 ? "nodeGraph" : "nodeGraphOverrides"
            guard let outputs = json[[key, "outputs"]] else { continue }
            do {
                result = result.merged(
                    with: try OutputsConfiguration(
                        object: outputs, path: "\(document.lastPathComponent): \(key).outputs",
                        environment: configuration.environment))
            } catch {
                throw RuntimeError("\(error)")
            }
        }
        if let file = configuration.outputsFile {
            let data: Data
            do {
                data = try Data(contentsOf: file)
            } catch {
                throw RuntimeError("cannot read the outputs file \(file.path): \(error.localizedDescription)")
            }
            do {
                result = result.merged(
                    with: try OutputsConfiguration(
                        json: data, path: file.lastPathComponent, environment: configuration.environment))
            } catch {
                throw RuntimeError("\(error)")
            }
        }
        if let document = configuration.outputsDocument {
            do {
                result = result.merged(
                    with: try OutputsConfiguration(
                        object: document, path: "outputs", environment: configuration.environment))
            } catch {
                throw RuntimeError("\(error)")
            }
        }
        do {
            result = try result.validated()
        } catch {
            throw RuntimeError("\(error)")
        }
        for node in result.analytics where !application.models.contains(where: { $0.name == node.model }) {
            let known = application.models.map(\.name).joined(separator: ", ")
            throw RuntimeError(
                "outputs.analytics \(node.name): the application has no model node \"\(node.model)\" (model nodes: "
                    + (known.isEmpty ? "none" : known) + ")")
        }
        return result
    }

    /// The runtime's own pipeline (`vantage run`): the outbox `<state>/outputs.sqlite`, every configured sink, and
    /// the built-in `@events` sink that writes the JSON lines.
    static func makePipeline(
        _ outputs: OutputsConfiguration, application: ResolvedApplication, configuration: RuntimeConfiguration,
        logger: Logger
    ) throws -> EventPipeline {
        let context = EventContext(
            device: configuration.deviceName ?? ProcessInfo.processInfo.hostName,
            instance: configuration.instanceName ?? application.name, application: application.name)
        do {
            return try EventPipeline.open(
                configuration: outputs, context: context,
                outboxPath: configuration.stateDirectory.appendingPathComponent("outputs.sqlite").path,
                limitBytes: configuration.outboxLimitBytes,
                builtIn: [EventsFileSink.name: .stored(try EventsFileSink(file: configuration.eventsFile))],
                logger: logger)
        } catch {
            throw RuntimeError("\(error)")
        }
    }

    /// Deletes old snapshots and clips every minute (by `outputs.events.maxAge` and `maxSize`), sparing those the
    /// outbox still has to deliver. A jump of the wall clock (NTP setting right a box that booted a year behind)
    /// moves the files' times with it, so they keep their real ages, and they are swept at once, as the agent does.
    func sweepMedia() async throws {
        // Under the agent, the agent sweeps: it holds the outbox that knows which files are still needed.
        guard let pipeline else { return }
        let retention = MediaRetention(
            directories: [
                configuration.snapshotsDirectory ?? configuration.stateDirectory.appendingPathComponent("snapshots"),
                configuration.stateDirectory.appendingPathComponent("clips"),
            ], maxAge: outputs.events.maxAge, maxBytes: outputs.events.maxBytes)
        let clock = WallClockWatch()
        var pass = 0
        while !Task.isCancelled {
            // Looks at the clock every 5 s (a jump is followed before a sweep can misjudge an age), sweeps every
            // 12th look.
            let jump = retention.followWallClock(clock)
            if let jump {
                logger.warning(
                    "\(jump)",
                    metadata: [
                        "clock.jump_seconds": "\(Int(jump.seconds.rounded()))", "media.files": "\(jump.movedFiles)",
                    ])
            }
            if pass % 12 == 0 || jump != nil {
                let inUse = (try? pipeline.outbox.filesInUse()) ?? []
                let sweep = retention.sweep(inUse: inUse)
                if sweep.deletedFiles > 0 {
                    logger.info(
                        "deleted old snapshots and clips",
                        metadata: ["files": "\(sweep.deletedFiles)", "bytes": "\(sweep.deletedBytes)"])
                }
            }
            pass += 1
            try await Task.sleep(for: .seconds(5))
        }
    }
}
