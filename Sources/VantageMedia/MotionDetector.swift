internal import CFFmpeg
import Foundation
import VantageCore

/// Finds motion in a camera's decoded frames cheaply enough to run on every frame of many cameras: it reads only
/// the decoded luma (brightness) plane — no colour conversion — at a low resolution, a grid of cells about
/// `cellPixels` wide, each cell the mean of a 4×4 sample of its pixels (1/16 … 1/400 of the pixels are read).
///
/// A cell moved when its brightness differs from a running background by more than the threshold; moved cells that
/// touch make one motion box. One detector per camera consumer; not shared between threads. Nothing is allocated per
/// frame once the grid is sized (at the first frame, and again only when the camera's resolution changes).
public final class MotionDetector {
    public let settings: MotionSettings
    /// What the last frame showed.
    public private(set) var hasMotion = false
    /// The moved areas of the last frame, in fractions of the frame (at most `maxBoxes`, largest first).
    public private(set) var boxes: [Rect] = []
    /// The part of the frame (0–1, outside the masks) whose cells moved in the last frame.
    public private(set) var movedArea = 0.0
    /// Frames seen whose pixel format has no 8-bit luma plane: motion is unknown, reported as motion.
    public private(set) var unsupportedFrames: UInt64 = 0

    /// Cells across the frame's width.
    public static let columns = 96
    static let samples = 4
    static let maxBoxes = 16

    private var rows = 0
    private var frameWidth = 0
    private var frameHeight = 0
    private var background: [Float] = []
    private var current: [Float] = []
    private var masked: [Bool] = []
    private var moved: [Bool] = []
    private var label: [Int32] = []
    private var stack: [Int32] = []
    private var unmaskedCells = 0
    private var lastTime: Double?

    public init(settings: MotionSettings) {
        self.settings = settings
        boxes.reserveCapacity(Self.maxBoxes + 1)
    }

    /// Looks at the decoded frame of `slot` (the caller holds it), taken at `time` seconds. Answers whether it has
    /// motion. A first frame, or a frame after a lighting change, only (re)sets the background: no motion.
    @discardableResult
    public func update(camera: CameraStream, slot: Int, time: Double) -> Bool {
        let frame = camera.pool.frames[slot]
        guard let luma = Self.lumaPlane(frame) else {
            unsupportedFrames += 1
            hasMotion = true
            boxes.removeAll(keepingCapacity: true)
            return true
        }
        return update(
            luma: luma.pointer, stride: luma.stride, width: Int(frame.pointee.width), height: Int(frame.pointee.height),
            time: time)
    }

    /// The same on a plain 8-bit brightness image (`width`×`height`, rows `stride` bytes apart).
    @discardableResult
    public func update(luma: UnsafePointer<UInt8>, stride: Int, width: Int, height: Int, time: Double) -> Bool {
        hasMotion = false
        movedArea = 0
        boxes.removeAll(keepingCapacity: true)
        guard width >= Self.columns, height >= 8 else { return false }
        let resized = width != frameWidth || height != frameHeight
        if resized { resize(width: width, height: height) }
        sample(luma, stride: stride)
        let dt = lastTime.map { max(0, time - $0) } ?? 0
        lastTime = time
        if resized {
            background.withUnsafeMutableBufferPointer { b in current.withUnsafeBufferPointer { c in b.update(from: c) }
            }
            return false
        }

        // Cells that moved, outside the masks.
        let threshold = Float(settings.threshold)
        var movedCells = 0
        for i in 0..<current.count {
            let m = !masked[i] && abs(current[i] - background[i]) > threshold
            moved[i] = m
            if m { movedCells += 1 }
        }
        let area = Double(movedCells) / Double(max(1, unmaskedCells))
        // The background follows the picture at `backgroundRate` per second (the frame rate does not matter).
        let alpha = Float(1 - pow(1 - min(0.999, settings.backgroundRate), max(dt, 0.001)))
        if area > settings.lightingChange {
            background.withUnsafeMutableBufferPointer { b in current.withUnsafeBufferPointer { c in b.update(from: c) }
            }
            return false
        }
        for i in 0..<current.count { background[i] += (current[i] - background[i]) * alpha }
        movedArea = area
        hasMotion = movedCells > 0 && area >= settings.minArea
        if hasMotion { findBoxes() }
        return hasMotion
    }

    /// Sizes the grid to the frame and marks the masked cells.
    private func resize(width: Int, height: Int) {
        frameWidth = width
        frameHeight = height
        rows = max(1, Int((Double(Self.columns) * Double(height) / Double(width)).rounded()))
        let count = Self.columns * rows
        background = Array(repeating: 0, count: count)
        current = Array(repeating: 0, count: count)
        moved = Array(repeating: false, count: count)
        label = Array(repeating: 0, count: count)
        stack = []
        stack.reserveCapacity(count)
        masked = Array(repeating: false, count: count)
        for r in 0..<rows {
            for c in 0..<Self.columns {
                let centre = Point(x: (Double(c) + 0.5) / Double(Self.columns), y: (Double(r) + 0.5) / Double(rows))
                masked[r * Self.columns + c] = settings.masks.contains { Geometry.contains($0, centre) }
            }
        }
        unmaskedCells = masked.count { !$0 }
        lastTime = nil
    }

    /// Each cell's mean brightness, from a 4×4 sample of its pixels.
    private func sample(_ luma: UnsafePointer<UInt8>, stride: Int) {
        let columns = Self.columns
        let n = Self.samples
        current.withUnsafeMutableBufferPointer { out in
            for r in 0..<rows {
                let y0 = r * frameHeight / rows
                let y1 = (r + 1) * frameHeight / rows
                for c in 0..<columns {
                    let x0 = c * frameWidth / columns
                    let x1 = (c + 1) * frameWidth / columns
                    var sum = 0
                    for sy in 0..<n {
                        let y = y0 + (y1 - y0) * (2 * sy + 1) / (2 * n)
                        let row = luma + y * stride
                        for sx in 0..<n { sum += Int(row[x0 + (x1 - x0) * (2 * sx + 1) / (2 * n)]) }
                    }
                    out[r * columns + c] = Float(sum) / Float(n * n)
                }
            }
        }
    }

    /// Groups moved cells that touch (left, right, up, down) into boxes; keeps the largest `maxBoxes`.
    private func findBoxes() {
        let columns = Self.columns
        for i in 0..<label.count { label[i] = 0 }
        var next: Int32 = 0
        for start in 0..<moved.count where moved[start] && label[start] == 0 {
            next += 1
            label[start] = next
            stack.removeAll(keepingCapacity: true)
            stack.append(Int32(start))
            var (minC, maxC, minR, maxR) = (columns, 0, rows, 0)
            while let top = stack.popLast() {
                let i = Int(top)
                let (r, c) = (i / columns, i % columns)
                minC = min(minC, c)
                maxC = max(maxC, c)
                minR = min(minR, r)
                maxR = max(maxR, r)
                if c > 0 { visit(i - 1, next) }
                if c < columns - 1 { visit(i + 1, next) }
                if r > 0 { visit(i - columns, next) }
                if r < rows - 1 { visit(i + columns, next) }
            }
            let box = Rect(
                xMin: Double(minC) / Double(columns), yMin: Double(minR) / Double(rows),
                xMax: Double(maxC + 1) / Double(columns), yMax: Double(maxR + 1) / Double(rows))
            insertBox(box)
        }
    }

    private func visit(_ j: Int, _ group: Int32) {
        if moved[j] && label[j] == 0 {
            label[j] = group
            stack.append(Int32(j))
        }
    }

    /// Keeps `boxes` sorted largest first, at most `maxBoxes` long (no allocation: capacity is reserved).
    private func insertBox(_ box: Rect) {
        let area = box.width * box.height
        var k = boxes.count
        while k > 0 && boxes[k - 1].width * boxes[k - 1].height < area { k -= 1 }
        guard k < Self.maxBoxes else { return }
        boxes.insert(box, at: k)
        if boxes.count > Self.maxBoxes { boxes.removeLast() }
    }

    /// The 8-bit luma plane of a decoded YUV frame; nil for RGB, paletted, high-bit-depth or hardware frames.
    private static func lumaPlane(_ frame: UnsafeMutablePointer<AVFrame>) -> (
        pointer: UnsafePointer<UInt8>, stride: Int
    )? {
        guard let descriptor = av_pix_fmt_desc_get(AVPixelFormat(rawValue: frame.pointee.format)),
            let data = frame.pointee.data.0, frame.pointee.linesize.0 > 0
        else { return nil }
        let flags = descriptor.pointee.flags
        let rgb = UInt64(1 << 5)  // AV_PIX_FMT_FLAG_RGB
        let palette = UInt64(1 << 1)  // AV_PIX_FMT_FLAG_PAL
        let hardware = UInt64(1 << 3)  // AV_PIX_FMT_FLAG_HWACCEL
        guard flags & (rgb | palette | hardware) == 0, descriptor.pointee.comp.0.depth == 8,
            descriptor.pointee.comp.0.step == 1, descriptor.pointee.comp.0.plane == 0
        else { return nil }
        return (UnsafePointer(data), Int(frame.pointee.linesize.0))
    }
}
