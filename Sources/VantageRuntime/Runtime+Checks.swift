import Foundation
import Logging
import VantageApp

// What a runtime refuses before anything starts (called from `Runtime.init`).

extension Runtime {
    /// Refuses routing rules that would collide with the live view's own port, before anything starts: a rule must
    /// never forward into Vantage's listener, and an app listening on it would fail or take it over.
    static func checkPorts(application: ResolvedApplication, configuration: RuntimeConfiguration) throws {
        guard let port = configuration.httpPort, port != 0 else { return }
        for rule in application.routingRules {
            let ports = [rule.containerPort] + (rule.hostPort.map { [$0] } ?? [])
            guard ports.contains(port) else { continue }
            let which =
                rule.containerPort == port
                ? "code node \(rule.node) listens on port \(port) (its containerPort)"
                : "networkRoutingRules opens host port \(port) for code node \(rule.node)"
            throw RuntimeError(
                "\(which), which is the live view's port — give the live view another one with --http "
                    + "\(configuration.httpHost):PORT (or turn it off with --no-http)")
        }
    }

    /// Non-Python entries that name Panorama's paths need the mount namespace (Python's own file calls are
    /// rewritten by the SDK either way): without one they fail at start with what to enable.
    static func checkPanoramaPaths(
        application: ResolvedApplication, configuration: RuntimeConfiguration, logger: Logger
    ) throws {
        guard let why = configuration.panoramaMounts ? PanoramaMounts.unavailable : "it is turned off" else { return }
        for node in application.codeNodes {
            let words = [node.entry.executable] + node.entry.arguments
            let namesPanorama = words.contains {
                $0.hasPrefix("/panorama") || $0.hasPrefix("/opt/aws/panorama") || $0.contains(" /panorama/")
            }
            let sourceNamed = words.contains { $0.hasPrefix(node.sourceDirectory.path) }
            if PythonEnvironment.isPython(node.entry.executable) {
                let message =
                    "code node \(node.name): /panorama and /opt/aws/panorama/* exist for Python's own file calls only "
                    + "(no mount namespace: \(why)); a native library or a subprocess opening those paths will not "
                    + "find them"
                logger.notice("\(message)")
            } else if namesPanorama || sourceNamed {
                throw RuntimeError(
                    "code node \(node.name) runs \(words.joined(separator: " ")), which needs /panorama to exist for "
                        + "every process, but the runtime cannot give it a private mount namespace: \(why)")
            }
        }
    }
}
