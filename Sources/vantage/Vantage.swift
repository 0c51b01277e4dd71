import ArgumentParser

/// `vantage`: self-hosted edge computer vision. One binary; each role is a subcommand.
@main
struct Vantage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vantage",
        abstract: "Self-hosted edge computer vision for the cameras you already have.",
        discussion: """
            Runs AWS Panorama-style applications (graph.json + code) against RTSP cameras, HTTP MJPEG streams or
            video files, with real inference (OpenVINO), an annotated live view in the browser and events.
            """,
        version: "0.1.0",
        subcommands: [
            Run.self, App.self, Server.self, AgentCommandGroup.self, AgentRuntimeCommand.self, Login.self, Logout.self,
            Devices.self, Cameras.self,
            Models.self,
            Packages.self, Instances.self, Events.self, Releases.self, Rollouts.self,
            Users.self,
        ])
}
