import ArgumentParser
import Foundation
import VantageAPI
import VantageClient

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
        var runtime = "http://127.0.0.1:7450"

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
                throw ValidationError("--runtime \(runtime) is not a URL; write e.g. http://127.0.0.1:7450")
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

/// The AWS credentials flags of `instances create` and `update`: what the application's code gets as `AWS_*`
/// variables (Panorama's application role). Read here, on the operator's machine, and sent to the server, which keeps
/// them encrypted and gives them only to the instance's device. No secret is ever a command-line argument: it comes
/// from a profile file, the environment, or standard input.
struct AWSCredentialOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Send this AWS profile's credentials (read here from ~/.aws/credentials and ~/.aws/config, or "
                + "AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE).", valueName: "NAME"))
    var awsProfile: String?

    @Flag(
        help: ArgumentHelp(
            "Send the credentials in this shell's AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN and "
                + "AWS_REGION."))
    var awsEnv = false

    @Option(
        help: ArgumentHelp(
            "Send this access key id; its secret access key is read from standard input (or typed at a prompt).",
            valueName: "ID"))
    var awsAccessKeyId: String?

    @Option(
        help: ArgumentHelp("The region the application's AWS SDK uses (with any of the above).", valueName: "REGION"))
    var awsRegion: String?

    /// Whether any credentials are given.
    var given: Bool { awsProfile != nil || awsEnv || awsAccessKeyId != nil }

    func validate() throws {
        let ways = [awsProfile != nil, awsEnv, awsAccessKeyId != nil].filter { $0 }.count
        guard ways <= 1 else {
            throw ValidationError("give one of --aws-profile NAME, --aws-env or --aws-access-key-id ID")
        }
        if awsRegion != nil, ways == 0 {
            throw ValidationError(
                "--aws-region goes with the credentials: give --aws-profile NAME, --aws-env or --aws-access-key-id ID")
        }
    }

    /// The credentials to send, nil when none is given. A profile or the environment is read here; with
    /// --aws-access-key-id the secret access key is read from standard input.
    func credentials() throws -> AWSCredentials? {
        var credentials: AWSCredentials
        if let awsProfile {
            do {
                credentials = try AWSProfiles().credentials(profile: awsProfile)
            } catch let error as AWSProfileError {
                throw ClientError(.local, message: error.message)
            }
        } else if awsEnv {
            let environment = ProcessInfo.processInfo.environment
            guard let keyId = environment["AWS_ACCESS_KEY_ID"], !keyId.isEmpty,
                let secret = environment["AWS_SECRET_ACCESS_KEY"], !secret.isEmpty
            else {
                throw ClientError(
                    .local, message: "--aws-env: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must both be set")
            }
            credentials = AWSCredentials(
                accessKeyId: keyId, secretAccessKey: secret,
                sessionToken: environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 },
                region: (environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"]).flatMap {
                    $0.isEmpty ? nil : $0
                })
        } else if let awsAccessKeyId {
            guard let secret = readSecret(prompt: "AWS secret access key for \(AWSCredentials.mask(awsAccessKeyId)): "),
                !secret.isEmpty
            else {
                throw ClientError(.local, message: "--aws-access-key-id: standard input gave no secret access key")
            }
            credentials = AWSCredentials(accessKeyId: awsAccessKeyId, secretAccessKey: secret)
        } else {
            return nil
        }
        if let awsRegion { credentials.region = awsRegion }
        return credentials
    }
}
