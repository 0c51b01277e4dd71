import Foundation
import Logging
import Testing

@testable import VantageMedia

@Suite("Frame costs", .enabled(if: haveSample, "needs .deps/media/vtest.mp4 from scripts/setup"))
struct FrameCostsTests {
    @Test("a camera reports the CPU time its frames cost by stage: decode, scale for a model, BGR conversion")
    func costsByStage() throws {
        let memory = TestStorage()
        let camera = CameraStream(
            source: StreamSource(name: "cam", url: sampleVideo.path), storage: memory.storage,
            logger: Logger(label: "test"))
        let signal = FrameSignal()
        camera.addObserver(signal)
        camera.start()
        defer { camera.stop() }
        let scaler = FrameScaler()
        var input = [UInt8](repeating: 0, count: 300 * 300 * 3)
        var last: UInt64 = 0
        var before: FrameCosts?
        while !(camera.isFinished && camera.snapshot.decoded == last) {
            guard let frame = camera.acquireLatest(after: last) else {
                signal.wait(timeoutMillis: 100)
                continue
            }
            if frame.sequence == 50 { before = camera.snapshot.costs }
            if frame.sequence > 50 && frame.sequence <= 150 {
                #expect(
                    input.withUnsafeMutableBytes {
                        scaler.scale(
                            camera, slot: frame.slot, width: 300, height: 300, order: .rgb, into: $0.baseAddress!)
                    })
            }
            if frame.sequence > 150 && frame.sequence <= 200 { #expect(camera.ensureBGR(slot: frame.slot)) }
            last = frame.sequence
            camera.release(slot: frame.slot)
        }
        let early = try #require(before, "costs are reported while the camera runs")
        #expect(early.decodeSeconds > 0, "50 decoded frames cost CPU time")
        #expect(early.scaleSeconds == 0 && early.colourSeconds == 0, "nothing was scaled or converted yet")
        let costs = try #require(camera.snapshot.costs, "the final counters carry the costs")
        #expect(costs.decodeSeconds > early.decodeSeconds, "the rest of the file was decoded")
        #expect(costs.scaleSeconds > 0, "100 frames were scaled for a model")
        #expect(costs.colourSeconds > 0, "50 frames were converted to BGR")
    }
}
