import Foundation
import Testing
import VantageAPI
import VantageAgent
import VantageCore

/// An instance's AWS credentials on the device: a change of them restarts the instance with the new ones, and the
/// runtime gives them to the code nodes as `AWS_*` (and nothing AWS when the instance has none).
@Suite("Deployments: AWS credentials")
struct AWSCredentialsDeploymentTests {
    typealias Fixture = DeploymentFixture

    static let keys = AWSCredentials(
        accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "first-secret", region: "eu-west-1")

    static func instance(_ package: TestPackage, deployment: String, aws: AWSCredentials?) -> DesiredInstance {
        var instance = Fixture.instance(package, deployment: deployment)
        instance.awsCredentials = aws
        return instance
    }

    /// The credentials of the version the instance runs, as its journal records them.
    static func committedCredentials(_ fixture: Fixture) throws -> AWSCredentials? {
        let journal = fixture.directory.appending(path: "instances/ins_a/journal.json")
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: journal)) as? [String: Any]
        let instance = (object?["committed"] as? [String: Any])?["instance"] as? [String: Any]
        guard let aws = instance?["awsCredentials"] else { return nil }
        return try APIJSON.decoder().decode(AWSCredentials.self, from: JSONSerialization.data(withJSONObject: aws))
    }

    @Test("rotated or removed credentials restart the instance with the new ones; the same ones restart nothing")
    func credentialsChangeRedeploys() async throws {
        let fixture = try Fixture()
        let v1 = try fixture.package("1.0")
        let reconciler = fixture.reconciler()
        await fixture.converge(reconciler, to: Fixture.state(Self.instance(v1, deployment: "dep_1", aws: Self.keys)))
        #expect(try Self.committedCredentials(fixture) == Self.keys)

        var rotated = Self.keys
        rotated.secretAccessKey = "second-secret"
        await fixture.converge(reconciler, to: Fixture.state(Self.instance(v1, deployment: "dep_2", aws: rotated)))
        #expect(fixture.runner.events.map(\.description) == ["start ins_a 1.0", "stop ins_a 1.0", "start ins_a 1.0"])
        #expect(try Self.committedCredentials(fixture) == rotated, "the instance runs with the new keys")
        #expect(fixture.reports.statuses().suffix(2) == [.deploymentInProgress, .deploymentSucceeded])

        await fixture.converge(reconciler, to: Fixture.state(Self.instance(v1, deployment: "dep_3", aws: nil)))
        #expect(fixture.runner.events.count == 5, "\(fixture.runner.events)")
        #expect(try Self.committedCredentials(fixture) == nil)
        // The same (no) credentials under a new deployment id restart nothing.
        await fixture.converge(reconciler, to: Fixture.state(Self.instance(v1, deployment: "dep_4", aws: nil)))
        #expect(fixture.runner.events.count == 5, "\(fixture.runner.events)")
        #expect(fixture.source.requests.count == 1, "the archive was downloaded once")
    }

    @Test("the runtime gives code nodes the instance's credentials as AWS_* variables, and none without them")
    func applicationEnvironment() throws {
        let fixture = try Fixture()
        let v1 = try fixture.package("1.0")
        let runner = RuntimeRunner(
            stateRoot: fixture.root.appending(path: "state"),
            artifactsFolder: fixture.root.appending(path: "artifacts"),
            events: InstanceEvents(
                folder: fixture.root.appending(path: "outbox"), limitBytes: 1 << 20, device: "dev_1",
                logger: Fixture.logger, send: { _ in }),
            executableSearchPath: [], logger: Fixture.logger)
        var temporary = Self.keys
        temporary.sessionToken = "session-token"
        let configuration = try runner.runtimeConfiguration(
            for: Self.instance(v1, deployment: "dep_1", aws: temporary))
        #expect(
            configuration.applicationEnvironment == [
                "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": "first-secret",
                "AWS_SESSION_TOKEN": "session-token", "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1",
            ])
        let plain = try runner.runtimeConfiguration(for: Self.instance(v1, deployment: "dep_1", aws: nil))
        #expect(plain.applicationEnvironment.isEmpty)
    }
}
