import ArgumentParser
import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `vantage instances`: what runs where. On a fleet, it talks to `vantage server` (Instances+Server.swift);
/// `signal` talks to a `vantage run` on this machine through its HTTP endpoint.
struct Instances: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Deploy and control application instances.",
        discussion: """
            An application instance is a package version deployed to a device, with its camera nodes bound to \
            cameras and its parameters set. list, show, create, update, logs, stop, start, delete and deployments work on a \
            Vantage server; signal pauses or resumes a camera node of a `vantage run` on this machine.

              vantage instances create --name lobby-count --package people-counter \\
                  --version 1.0 --device dev_… --camera camera_node=cam_… \\
                  --param min_score=0.7
              vantage instances list --device dev_…
              vantage instances stop ins_…
            """,
        subcommands: [
            List.self, Show.self, Create.self, Update.self, Logs.self, Stop.self, Start.self, Delete.self,
            Deployments.self, Signal.self,
        ])

    /// `vantage instances signal NODE pause|resume`: Panorama's SignalApplicationInstanceNodeInstances.
    struct Signal: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Pause or resume a camera node of a running application.",
            discussion: """
                Camera nodes with "launch": "onSignal" start paused; this resumes them. A paused camera closes its
                connection and delivers nothing; resuming connects again (a file starts from its beginning).
                Standalone, the signal goes to the HTTP endpoint of `vantage run` (see its --http):

                  vantage instances signal camera_node resume
                  vantage instances signal --runtime http://127.0.0.1:8081 camera_node pause
                """)

        @Option(help: ArgumentHelp("The HTTP endpoint of the running `vantage run`.", valueName: "URL"))
        var runtime = "http://127.0.0.1:8080"

        @Argument(help: "The camera node (or one of its streams).")
        var node: String

        @Argument(help: "pause or resume.")
        var signal: String

        func validate() throws {
            guard ["pause", "resume"].contains(signal.lowercased()) else {
                throw ValidationError("the signal must be pause or resume, not \(signal)")
            }
        }

        func run() async throws {
            let base = runtime.hasSuffix("/") ? String(runtime.dropLast()) : runtime
            let node = node.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? node
            guard let url = URL(string: "\(base)/nodes/\(node)/\(signal.lowercased())") else {
                throw ValidationError("--runtime \(runtime) is not a URL; write e.g. http://127.0.0.1:8080")
            }
            var request = URLRequest(url: url)
            request.httpMethod = "POST"
            request.timeoutInterval = 10
            let (data, response): (Data, URLResponse)
            do {
                (data, response) = try await URLSession.shared.data(for: request)
            } catch {
                FileHandle.standardError.write(
                    Data(
                        ("error: cannot reach the runtime at \(runtime) (\(error.localizedDescription)) — is "
                            + "`vantage run` running with its HTTP endpoint there? (see its --http; give "
                            + "--runtime URL)\n").utf8))
                throw ExitCode.failure
            }
            let text = String(decoding: data, as: UTF8.self)
            guard (response as? HTTPURLResponse)?.statusCode == 200 else {
                let message =
                    (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["error"] as? String ?? text
                FileHandle.standardError.write(Data("error: \(message)\n".utf8))
                throw ExitCode.failure
            }
            print(text)
        }
    }
}
