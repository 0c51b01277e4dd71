// Issue 17, fault 5: a device whose clock is more than 5 minutes off the server's is flagged CLOCK_SKEW (a device
// condition, like DISK_FULL), with the amount and what to do, in the API, `vantage devices show` and the console.
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing
import VantageAPI
import VantageClient
import VantageCore
import VantageServer

@Suite("Clock skew: the CLOCK_SKEW device condition")
struct ClockSkewConditionTests {
    @Test(
        "a heartbeat an hour ahead or a year behind flags the device with the amount and 'check NTP'; one in step clears it",
        arguments: Engine.allCases)
    func skewIsACondition(engine: Engine) async throws {
        try await APIHarness.run(on: engine) { api in
            let (device, credential) = try await api.makeDevice("edge")
            @Sendable func beat(offset: Double) async throws -> Device {
                let answer = try await api.call(
                    .post, "/api/v1/devices/\(device.id)/heartbeat", as: credential,
                    json: Heartbeat(metrics: ["clock.unix_seconds": Date().timeIntervalSince1970 + offset]))
                #expect(answer.status == 200, "\(answer)")
                return try await api.call(.get, "/api/v1/devices/\(device.id)", as: api.viewer).decode()
            }
            // Within 5 minutes: drift NTP has not caught yet, no flag.
            #expect(try await beat(offset: 120).conditions == nil)

            let ahead = try await beat(offset: 3600)
            let condition = try #require(ahead.conditions?.first { $0.kind == .clockSkew }, "\(ahead)")
            #expect(condition.message.contains("1 h 0 min ahead of the server's"), "\(condition.message)")
            #expect(condition.message.contains("check NTP on the device (timedatectl status)"))
            #expect(abs(condition.since.timeIntervalSinceNow) < 60)

            let behind = try await beat(offset: -365 * 86_400)
            #expect(
                behind.conditions?.first { $0.kind == .clockSkew }?.message.contains("365 days behind the server's")
                    == true, "\(behind)")

            // NTP set it right: the next heartbeat clears the flag.
            #expect(try await beat(offset: 0).conditions == nil)

            // The console shows it with the other conditions.
            _ = try await beat(offset: -7200)
            try await api.store.setUser(name: "alice", password: ConsoleTests.password, role: .viewer)
            let cookie = try await ConsoleTests.signIn(api.client)
            let page = try await api.client.execute(
                uri: "/devices/\(device.id)", method: .get, headers: [.cookie: cookie], body: nil)
            let html = String(buffer: page.body)
            #expect(html.contains("id=\"condition-CLOCK_SKEW\""), "\(html.prefix(3000))")
            #expect(
                html.contains("2 h 0 min behind the server&#39;s") || html.contains("2 h 0 min behind the server's"))
        }
    }

    @Test("devices show says the skew once: the Clock line has the amount, the CLOCK_SKEW alert what to do")
    func showSaysItOnce() throws {
        let now = Date()
        var device = Device(
            id: "dev_aaaaaaaaaaaaaaaa", name: "edge", description: "", provisioningStatus: .succeeded,
            connectionStatus: .online, lastHeartbeat: now, softwareVersion: "1.0", createdAt: now, updatedAt: now)
        device.conditions = [DeviceCondition(kind: .clockSkew, message: ClockSkew.message(3600), since: now)]
        let text = ResourceViews.device(device, clockSkewSeconds: 3600, now: now).render()
        #expect(text.components(separatedBy: "CLOCK_SKEW").count == 2, "once:\n\(text)")
        #expect(text.components(separatedBy: "check NTP").count == 2, "once:\n\(text)")
        #expect(text.contains("Clock:") && text.contains("1 h 0 min ahead of the server (3600 s)"), "\(text)")
        #expect(text.contains("CLOCK_SKEW: the device's clock is 1 h 0 min ahead of the server's"), "\(text)")

        device.conditions = nil
        let inStep = ResourceViews.device(device, clockSkewSeconds: -2, now: now).render()
        #expect(inStep.contains("in step with the server (-2 s)") && !inStep.contains("CLOCK_SKEW"), "\(inStep)")
    }
}
