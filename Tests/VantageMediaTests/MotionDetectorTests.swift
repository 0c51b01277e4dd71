import Foundation
import Testing
import VantageCore

@testable import VantageMedia

/// The motion detector on brightness images made here: a plain scene with per-pixel sensor noise (the ±6 levels a
/// real camera's sensor gives in daylight; the runtime test runs it on the real sample video), a block moving across
/// it, masks, and a lighting change.
@Suite("Motion detector")
struct MotionDetectorTests {
    /// A 640×360 brightness image: a gradient background, noise, and optionally a dark block.
    struct Scene {
        let width = 640
        let height = 360
        var pixels: [UInt8]
        /// xorshift: cheap enough for a debug build to draw 230,000 noisy pixels a frame.
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15

        init() { pixels = Array(repeating: 0, count: 640 * 360) }

        mutating func draw(block: (x: Int, y: Int, w: Int, h: Int)? = nil, brightness: Int = 0, noise: Int = 6) {
            for y in 0..<height {
                for x in 0..<width {
                    state ^= state << 13
                    state ^= state >> 7
                    state ^= state << 17
                    var v = 60 + x / 8 + y / 8 + brightness + Int(state % UInt64(2 * noise + 1)) - noise
                    if let b = block, x >= b.x, x < b.x + b.w, y >= b.y, y < b.y + b.h { v = 20 }
                    pixels[y * width + x] = UInt8(clamping: v)
                }
            }
        }

        func feed(_ detector: MotionDetector, time: Double) -> Bool {
            pixels.withUnsafeBufferPointer {
                detector.update(luma: $0.baseAddress!, stride: width, width: width, height: height, time: time)
            }
        }
    }

    @Test("A still scene with sensor noise has no motion; a person-sized block walking across has, boxed where it is")
    func stillAndMoving() {
        let detector = MotionDetector(settings: MotionSettings())
        var scene = Scene()
        for i in 0..<30 {
            scene.draw()
            #expect(!scene.feed(detector, time: Double(i) / 10), "noise alone is not motion (frame \(i))")
        }
        // A 24×60 px block (a person far away in a 640×360 picture) walking right, 8 px per frame.
        var moving = 0
        for i in 0..<20 {
            let x = 100 + i * 8
            scene.draw(block: (x, 150, 24, 60))
            if scene.feed(detector, time: 3 + Double(i) / 10) {
                moving += 1
                let box = try! #require(detector.boxes.first)
                let centre = (Double(x) + 12) / 640
                #expect(box.xMin <= centre && centre <= box.xMax, "the motion box covers the block")
                #expect(box.yMin <= 180.0 / 360 && 180.0 / 360 <= box.yMax)
                #expect(box.width < 0.3, "the box is around the block, not the frame")
            }
        }
        #expect(moving >= 18, "the block moved in \(moving) of 20 frames")
        // It stops: after the background took it in (backgroundRate 0.5/s: a few seconds), the scene is still again.
        var stillAgain = 0
        for i in 0..<60 {
            scene.draw(block: (260, 150, 24, 60))
            if !scene.feed(detector, time: 5 + Double(i) / 10) { stillAgain += 1 }
        }
        #expect(stillAgain >= 20, "a block that stopped stops being motion")
        #expect(!scene.feed(detector, time: 11.1), "…for good")
    }

    @Test("Movement inside a mask does not count; outside it does")
    func masks() {
        var settings = MotionSettings()
        settings.masks = [[Point(x: 0, y: 0), Point(x: 0.5, y: 0), Point(x: 0.5, y: 1), Point(x: 0, y: 1)]]
        let detector = MotionDetector(settings: settings)
        var scene = Scene()
        for i in 0..<10 {
            scene.draw()
            _ = scene.feed(detector, time: Double(i) / 10)
        }
        var inMask = 0
        for i in 0..<10 {
            scene.draw(block: (40 + i * 8, 150, 24, 60))  // left half: masked
            if scene.feed(detector, time: 1 + Double(i) / 10) { inMask += 1 }
        }
        #expect(inMask == 0, "the masked left half moved in \(inMask) frames")
        var outside = 0
        for i in 0..<10 {
            scene.draw(block: (400 + i * 8, 150, 24, 60))
            if scene.feed(detector, time: 2 + Double(i) / 10) { outside += 1 }
        }
        #expect(outside >= 8)
    }

    @Test("A light switched on (the whole picture brighter at once) is not motion, and the scene after it is still")
    func lightingChange() {
        let detector = MotionDetector(settings: MotionSettings())
        var scene = Scene()
        for i in 0..<10 {
            scene.draw()
            _ = scene.feed(detector, time: Double(i) / 10)
        }
        scene.draw(brightness: 60)
        #expect(!scene.feed(detector, time: 1.0), "the jump in brightness is lighting")
        for i in 1..<10 {
            scene.draw(brightness: 60)
            #expect(!scene.feed(detector, time: 1.0 + Double(i) / 10), "the new background was taken at once")
        }
    }

    @Test("Once warm, a frame allocates nothing (the grid and box list are reused)")
    func reusesItsBuffers() {
        let detector = MotionDetector(settings: MotionSettings())
        var scene = Scene()
        scene.draw()
        _ = scene.feed(detector, time: 0)
        scene.draw(block: (100, 100, 40, 80))
        _ = scene.feed(detector, time: 0.1)
        let capacity = detector.boxes.capacity
        for i in 0..<20 {
            scene.draw(block: (100 + i * 10, 100, 40, 80))
            _ = scene.feed(detector, time: 0.2 + Double(i) / 10)
            #expect(detector.boxes.capacity == capacity)
        }
    }
}
