import Foundation
import Logging
import VantageAPI

/// Deployment reports on their way to the server. `report` returns at once (the reconciler must not wait on the
/// network); the newest report per instance is kept and sent, again and again until the server took it, so a
/// report made while the server is down arrives when it is back. Reports are state, not history: a newer one
/// replaces an unsent older one.
actor ReportQueue: DeploymentReporter {
    private let link: DeviceLink
    private let logger: Logger
    /// Instance id → the report to send, in the order they were first queued.
    private var pending: [(instanceId: String, report: InstanceReport)] = []
    private var wakeUp: CheckedContinuation<Void, Never>?

    init(link: DeviceLink, logger: Logger) {
        self.link = link
        self.logger = logger
    }

    func report(instanceId: String, _ report: InstanceReport) async {
        if let index = pending.firstIndex(where: { $0.instanceId == instanceId }) {
            pending[index].report = report
        } else {
            pending.append((instanceId, report))
        }
        // Not logged here: the reconciler logs each report once ("Instance report"), and a worker's crash and recovery
        // have their own lines; a second line per state change only doubled the log.
        wakeUp?.resume()
        wakeUp = nil
    }

    /// Sends queued reports until cancelled.
    func run() async {
        var backoff = Backoff(max: .seconds(30))
        while !Task.isCancelledOrShuttingDown {
            guard let (instanceId, report) = pending.first else {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { wakeUp = $0 }
                } onCancel: {
                    Task { await self.cancelWait() }
                }
                continue
            }
            do {
                try await link.report(instanceId: instanceId, report)
                // Sent: drop it unless a newer report for the instance came meanwhile.
                if let index = pending.firstIndex(where: { $0.instanceId == instanceId }),
                    pending[index].report == report
                {
                    pending.remove(at: index)
                }
                backoff.reset()
            } catch LinkError.rejected(let status, let message) {
                // The instance is gone from the server (deleted) or the report is invalid: resending won't help.
                logger.warning("report refused (\(status)): \(message)", metadata: ["instance.id": "\(instanceId)"])
                pending.removeAll { $0.instanceId == instanceId && $0.report == report }
            } catch {
                try? await Task.sleep(for: backoff.next())
            }
        }
    }

    private func cancelWait() {
        wakeUp?.resume()
        wakeUp = nil
    }
}
