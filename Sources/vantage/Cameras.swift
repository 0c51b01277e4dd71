import ArgumentParser
import Foundation
import VantageAPI
import VantageClient

/// `vantage cameras`: the IP cameras devices read.
struct Cameras: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, describe, register and delete cameras on a Vantage server.",
        discussion: """
            A camera's credentials are stored encrypted and never shown again, by the server or by these commands.

              vantage cameras list
              vantage cameras create lobby --url rtsp://10.0.0.20/stream1 --username viewer
              vantage cameras create gate --url rtsp://10.0.0.21/stream1 --detect-url rtsp://10.0.0.21/stream2
              vantage cameras show cam_… --json
              echo "$NEW_PASSWORD" | vantage cameras update cam_… --password-stdin
            """,
        subcommands: [List.self, Show.self, Create.self, Update.self, Delete.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List cameras.",
            discussion: """
                CREDENTIALS says whether a username and password are stored; they are never shown. SUB-STREAM \
                is the low-resolution stream devices decode for detection ("-": they decode URL).

                  vantage cameras list
                  vantage cameras list --json
                """)

        @OptionGroup var options: ClientOptions

        func run() async throws {
            try await options.withClient { client in
                let cameras = try await client.listCameras()
                options.printList(cameras, empty: "no cameras (create one with vantage cameras create NAME --url URL)")
                {
                    ResourceViews.cameras(cameras)
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Describe a camera.",
            discussion: """
                  vantage cameras show cam_…
                """)

        @OptionGroup var options: ClientOptions

        @Argument(help: "The camera's id (cam_…) or name.")
        var id: String

        func run() async throws {
            try await options.withClient { client in
                let camera = try await client.camera(id)
                options.printItem(camera) { ResourceViews.camera(camera).render() }
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register a camera.",
            discussion: """
                The password is read from standard input with --password-stdin (or typed at a prompt), never \
                from the command line. Credentials written into the URL (rtsp://USER:PASSWORD@HOST/…) are moved \
                out of it by the server and stored like the others.

                --detect-url names the camera's low-resolution sub-stream: devices decode it for detection (apps, \
                models and analytics see its frames) and read --url, the main stream, only for clips. It uses \
                the camera's credentials: any written into it must be the same as --url's.

                  vantage cameras create lobby --url rtsp://10.0.0.20:554/stream1
                  vantage cameras create gate --url rtsp://10.0.0.21:554/stream1 \\
                      --detect-url rtsp://10.0.0.21:554/stream2
                  echo "$PASSWORD" | vantage cameras create dock --url rtsp://10.0.0.21/live \\
                      --username viewer --password-stdin --device dev_…
                """)

        @OptionGroup var options: ClientOptions

        @Argument(help: "The camera's name: letters, digits, '-', '_', '.' or spaces.")
        var name: String

        @Option(help: ArgumentHelp("The stream: rtsp://HOST:PORT/PATH (or http:// for MJPEG).", valueName: "URL"))
        var url: String

        @Option(
            help: ArgumentHelp(
                "The camera's low-resolution sub-stream, decoded for detection (--url is kept for clips).",
                valueName: "URL"))
        var detectUrl: String?

        @Option(help: "The camera's user name.")
        var username: String?

        @Flag(help: "Read the camera's password from standard input (one line).")
        var passwordStdin = false

        @Option(help: ArgumentHelp("The device that reads this camera.", valueName: "ID"))
        var device: String?

        @Option(help: "What the camera sees, or where it is.")
        var description: String?

        func run() async throws {
            try await options.withClient { client in
                var password: String?
                if passwordStdin {
                    guard let secret = readSecret(prompt: "Password for camera \(name): "), !secret.isEmpty else {
                        throw ClientError(.local, message: "--password-stdin: standard input gave no password")
                    }
                    password = secret
                }
                let camera = try await client.createCamera(
                    NewCamera(
                        name: name, description: description, url: url, detectUrl: detectUrl, username: username,
                        password: password, deviceId: device))
                if options.json {
                    printJSON(camera)
                    return
                }
                let credentials = camera.hasCredentials ? "credentials stored encrypted" : "no credentials"
                let sub = camera.detectUrl.map { ", sub-stream \($0)" } ?? ""
                print("created camera \(camera.id) (\(camera.name)): \(camera.url)\(sub), \(credentials)")
            }
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a camera: its name, stream, credentials or device.",
            discussion: """
                Only what is given changes. The password is read from standard input with --password-stdin (or \
                typed at a prompt), never from the command line. A new password or user name alone (a rotated \
                password) reaches the device within seconds, and its running application takes it without a \
                restart: the camera uses it from its next connection (both streams, when it has a sub-stream). \
                A new URL or sub-stream restarts the instances that read the camera.

                  echo "$NEW_PASSWORD" | vantage cameras update cam_… --password-stdin
                  vantage cameras update cam_… --url rtsp://10.0.0.22/live --device dev_…
                  vantage cameras update cam_… --detect-url rtsp://10.0.0.22/sub
                  vantage cameras update cam_… --no-detect-url
                """)

        @OptionGroup var options: ClientOptions

        @Argument(help: "The camera's id (cam_…) or name.")
        var id: String

        @Option(help: "A new name: letters, digits, '-', '_', '.' or spaces.")
        var name: String?

        @Option(help: ArgumentHelp("A new stream: rtsp://HOST:PORT/PATH (or http:// for MJPEG).", valueName: "URL"))
        var url: String?

        @Option(
            help: ArgumentHelp(
                "A new low-resolution sub-stream, decoded for detection (--url is kept for clips).", valueName: "URL"))
        var detectUrl: String?

        @Flag(help: "Remove the camera's sub-stream: devices decode --url again.")
        var noDetectUrl = false

        @Option(help: "A new user name.")
        var username: String?

        @Flag(help: "Read the camera's new password from standard input (one line).")
        var passwordStdin = false

        @Option(help: ArgumentHelp("The device that reads this camera (\"\" for none).", valueName: "ID"))
        var device: String?

        @Option(help: "What the camera sees, or where it is.")
        var description: String?

        func validate() throws {
            if detectUrl != nil && noDetectUrl {
                throw ValidationError("give --detect-url URL or --no-detect-url, not both")
            }
            guard
                name != nil || url != nil || detectUrl != nil || noDetectUrl || username != nil || passwordStdin
                    || device != nil || description != nil
            else {
                throw ValidationError(
                    "nothing to change: give --name, --url, --detect-url, --no-detect-url, --username, --password-stdin, --device or --description"
                )
            }
        }

        func run() async throws {
            try await options.withClient { client in
                var password: String?
                if passwordStdin {
                    guard let secret = readSecret(prompt: "New password for camera \(id): "), !secret.isEmpty else {
                        throw ClientError(.local, message: "--password-stdin: standard input gave no password")
                    }
                    password = secret
                }
                let camera = try await client.updateCamera(
                    id,
                    CameraUpdate(
                        name: name, description: description, url: url, detectUrl: noDetectUrl ? "" : detectUrl,
                        username: username, password: password, deviceId: device))
                if options.json {
                    printJSON(camera)
                    return
                }
                let credentials = camera.hasCredentials ? "credentials stored encrypted" : "no credentials"
                let sub = camera.detectUrl.map { ", sub-stream \($0)" } ?? ""
                print("updated camera \(camera.id) (\(camera.name)): \(camera.url)\(sub), \(credentials)")
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a camera no application instance uses.",
            discussion: """
                  vantage cameras delete cam_…
                """)

        @OptionGroup var options: ClientOptions

        @Argument(help: "The camera's id (cam_…) or name.")
        var id: String

        func run() async throws {
            try await options.withClient { client in
                try await client.deleteCamera(id)
                if options.json { printJSON(["deleted": id]) } else { print("deleted camera \(id)") }
            }
        }
    }
}
