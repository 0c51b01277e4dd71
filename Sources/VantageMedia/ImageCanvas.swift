/// A borrowed, packed BGR24 image: three bytes per pixel (blue, green, red), rows `stride` bytes
/// apart. It does not own its memory; whoever made it keeps the memory alive and unshared while
/// the image is used.
public struct ImageBuffer {
    /// Bytes per pixel of BGR24.
    public static let bytesPerPixel = 3

    /// The first byte of the top row.
    public var base: UnsafeMutableRawPointer
    /// Width in pixels.
    public var width: Int
    /// Height in pixels.
    public var height: Int
    /// Distance in bytes from the start of one row to the next (at least `width * 3`).
    public var stride: Int

    /// Wraps memory that holds a BGR24 image.
    /// - Precondition: `width` and `height` are not negative and `stride >= width * 3`.
    public init(base: UnsafeMutableRawPointer, width: Int, height: Int, stride: Int) {
        precondition(width >= 0 && height >= 0, "image size \(width)×\(height) is negative")
        precondition(stride >= width * Self.bytesPerPixel, "stride \(stride) is less than width×3 (\(width * 3))")
        self.base = base
        self.width = width
        self.height = height
        self.stride = stride
    }

    /// Wraps memory that holds a BGR24 image with rows packed back to back (`stride == width * 3`).
    public init(base: UnsafeMutableRawPointer, width: Int, height: Int) {
        self.init(base: base, width: width, height: height, stride: width * Self.bytesPerPixel)
    }

    /// The colour of pixel (`x`, `y`), which must lie inside the image.
    public func pixel(x: Int, y: Int) -> OverlayColor {
        precondition(x >= 0 && x < width && y >= 0 && y < height, "pixel (\(x), \(y)) is outside \(width)×\(height)")
        let p = base.advanced(by: y * stride + x * Self.bytesPerPixel).assumingMemoryBound(to: UInt8.self)
        return OverlayColor(red: p[2], green: p[1], blue: p[0])
    }

    /// Fills the pixels in columns `x0..<x1` and rows `y0..<y1`, clipped to the image.
    func fill(x0: Int, y0: Int, x1: Int, y1: Int, color: OverlayColor) {
        let left = max(0, x0)
        let right = min(width, x1)
        let top = max(0, y0)
        let bottom = min(height, y1)
        guard left < right, top < bottom else { return }
        for y in top..<bottom {
            var p = base.advanced(by: y * stride + left * Self.bytesPerPixel).assumingMemoryBound(to: UInt8.self)
            for _ in left..<right {
                p[0] = color.blue
                p[1] = color.green
                p[2] = color.red
                p += Self.bytesPerPixel
            }
        }
    }
}

/// An RGB colour for overlays.
public struct OverlayColor: Sendable, Hashable {
    public var red: UInt8
    public var green: UInt8
    public var blue: UInt8

    public init(red: UInt8, green: UInt8, blue: UInt8) {
        self.red = red
        self.green = green
        self.blue = blue
    }

    public static let green = OverlayColor(red: 0, green: 230, blue: 0)
    public static let red = OverlayColor(red: 240, green: 30, blue: 30)
    public static let blue = OverlayColor(red: 40, green: 110, blue: 255)
    public static let yellow = OverlayColor(red: 255, green: 220, blue: 0)
    public static let orange = OverlayColor(red: 255, green: 140, blue: 0)
    public static let cyan = OverlayColor(red: 0, green: 220, blue: 230)
    public static let magenta = OverlayColor(red: 230, green: 0, blue: 230)
    public static let white = OverlayColor(red: 255, green: 255, blue: 255)
    public static let black = OverlayColor(red: 0, green: 0, blue: 0)
    /// The colour of the box behind a label's text.
    public static let labelBackground = OverlayColor(red: 16, green: 16, blue: 16)
}

/// Something drawn over a frame, in coordinates relative to the frame: 0 is the left or top edge,
/// 1 the right or bottom edge. What Panorama's `media.add_rect(l, t, r, b)` and
/// `media.add_label(text, x, y)` attached for the HDMI output.
public enum Overlay: Sendable, Equatable {
    /// An outlined rectangle from (`x0`, `y0`) (left, top) to (`x1`, `y1`) (right, bottom).
    case rect(x0: Float, y0: Float, x1: Float, y1: Float, color: OverlayColor = .green)
    /// Text on a dark box; (`x`, `y`) is the left end of the text's baseline, as with OpenCV's
    /// `putText`, so a label placed at a rectangle's top-left corner sits just above it.
    case label(text: String, x: Float, y: Float, color: OverlayColor = .white)
    /// A straight line from (`x0`, `y0`) to (`x1`, `y1`): counting lines and zone outlines.
    case line(x0: Float, y0: Float, x1: Float, y1: Float, color: OverlayColor = .green)
}

/// Draws overlays onto BGR24 images, sized for the image so that they read the same on a
/// 768×576 and a 1920×1080 frame.
public enum ImageCanvas {
    /// Outline width of rectangles in pixels for an image: 2 up to about 720 lines, 3 above.
    public static func lineWidth(width: Int, height: Int) -> Int {
        max(2, min(3, (min(width, height) + 150) / 300))
    }

    /// Scale of the bitmap font for an image: 1 below 540 lines, 2 up to 900, then 3, 4, ….
    public static func textScale(width: Int, height: Int) -> Int {
        max(1, (min(height, width * 3 / 4) + 180) / 360)
    }

    /// Draws `overlays` in order onto `image`. Coordinates outside 0–1 (or NaN) are clamped;
    /// labels are moved inside the image rather than cut off.
    public static func draw(_ overlays: [Overlay], on image: ImageBuffer) {
        guard image.width > 0, image.height > 0 else { return }
        for overlay in overlays {
            switch overlay {
            case .rect(let x0, let y0, let x1, let y1, let color):
                drawRect(x0: x0, y0: y0, x1: x1, y1: y1, color: color, on: image)
            case .label(let text, let x, let y, let color):
                drawLabel(text, x: x, y: y, color: color, on: image)
            case .line(let x0, let y0, let x1, let y1, let color):
                drawLine(x0: x0, y0: y0, x1: x1, y1: y1, color: color, on: image)
            }
        }
    }

    static func clamp01(_ value: Float) -> Float {
        value.isNaN ? 0 : min(1, max(0, value))
    }

    static func drawRect(x0: Float, y0: Float, x1: Float, y1: Float, color: OverlayColor, on image: ImageBuffer) {
        let w = image.width
        let h = image.height
        let (l, r) = (min(clamp01(x0), clamp01(x1)), max(clamp01(x0), clamp01(x1)))
        let (t, b) = (min(clamp01(y0), clamp01(y1)), max(clamp01(y0), clamp01(y1)))
        // Pixel columns and rows covered by the rectangle, inclusive, inside the image.
        let left = min(w - 1, Int((l * Float(w)).rounded(.down)))
        let right = max(left, min(w - 1, Int((r * Float(w)).rounded(.up)) - 1))
        let top = min(h - 1, Int((t * Float(h)).rounded(.down)))
        let bottom = max(top, min(h - 1, Int((b * Float(h)).rounded(.up)) - 1))
        let line = lineWidth(width: w, height: h)
        // The outline lies inside the rectangle, so that a box at the frame's edge stays visible.
        image.fill(x0: left, y0: top, x1: right + 1, y1: top + line, color: color)
        image.fill(x0: left, y0: bottom + 1 - line, x1: right + 1, y1: bottom + 1, color: color)
        image.fill(x0: left, y0: top, x1: left + line, y1: bottom + 1, color: color)
        image.fill(x0: right + 1 - line, y0: top, x1: right + 1, y1: bottom + 1, color: color)
    }

    /// A line as a run of small squares of the outline's width, one per pixel step along its longer axis.
    static func drawLine(x0: Float, y0: Float, x1: Float, y1: Float, color: OverlayColor, on image: ImageBuffer) {
        let w = image.width
        let h = image.height
        let ax = clamp01(x0) * Float(w - 1)
        let ay = clamp01(y0) * Float(h - 1)
        let bx = clamp01(x1) * Float(w - 1)
        let by = clamp01(y1) * Float(h - 1)
        let steps = max(1, Int(max(abs(bx - ax), abs(by - ay)).rounded(.up)))
        let half = lineWidth(width: w, height: h) / 2
        for i in 0...steps {
            let t = Float(i) / Float(steps)
            let x = Int((ax + (bx - ax) * t).rounded())
            let y = Int((ay + (by - ay) * t).rounded())
            image.fill(
                x0: max(0, x - half), y0: max(0, y - half), x1: min(w, x - half + lineWidth(width: w, height: h)),
                y1: min(h, y - half + lineWidth(width: w, height: h)), color: color)
        }
    }

    static func drawLabel(_ text: String, x: Float, y: Float, color: OverlayColor, on image: ImageBuffer) {
        guard !text.isEmpty else { return }
        let w = image.width
        let h = image.height
        var scale = textScale(width: w, height: h)
        let padding = scale
        // Shrink the text for images too small to hold even one line of it.
        while scale > 1, BitmapFont.glyphHeight * scale + 2 * padding > h { scale -= 1 }
        let ascent = (BitmapFont.glyphHeight - 1) * scale  // rows above the baseline
        let textSize = BitmapFont.size(of: text, scale: scale)
        let boxWidth = min(w, textSize.width + 2 * padding)
        let boxHeight = min(h, textSize.height + 2 * padding)
        // Baseline at (x, y); then the whole box is moved inside the image.
        var boxLeft = Int((clamp01(x) * Float(w)).rounded(.down)) - padding
        var boxTop = Int((clamp01(y) * Float(h)).rounded(.down)) - ascent - padding
        boxLeft = max(0, min(boxLeft, w - boxWidth))
        boxTop = max(0, min(boxTop, h - boxHeight))
        image.fill(
            x0: boxLeft,
            y0: boxTop,
            x1: boxLeft + boxWidth,
            y1: boxTop + boxHeight,
            color: .labelBackground
        )
        // Text that does not fit the image's width is cut at the box's right edge.
        let clipped = ImageBuffer(
            base: image.base.advanced(by: boxTop * image.stride),
            width: boxLeft + boxWidth,
            height: boxHeight,
            stride: image.stride
        )
        BitmapFont.draw(text, x: boxLeft + padding, y: padding, scale: scale, color: color, on: clipped)
    }
}
