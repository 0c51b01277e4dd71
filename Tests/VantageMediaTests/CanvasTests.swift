import Testing
import VantageMedia

/// A BGR24 image that owns its pixels, for tests.
final class TestImage {
    let width: Int
    let height: Int
    let stride: Int
    let storage: UnsafeMutableRawPointer

    init(width: Int, height: Int, fill: OverlayColor = .black, padding: Int = 0) {
        self.width = width
        self.height = height
        self.stride = width * 3 + padding
        storage = .allocate(byteCount: max(1, stride * height), alignment: 16)
        for y in 0..<height {
            for x in 0..<width { set(x: x, y: y, fill) }
        }
    }

    deinit { storage.deallocate() }

    /// Lends the image to `body`; the pixels stay allocated until `body` returns.
    func withBuffer<Result>(_ body: (ImageBuffer) throws -> Result) rethrows -> Result {
        try withExtendedLifetime(self) {
            try body(ImageBuffer(base: storage, width: width, height: height, stride: stride))
        }
    }

    subscript(x: Int, y: Int) -> OverlayColor { withBuffer { $0.pixel(x: x, y: y) } }

    func set(x: Int, y: Int, _ color: OverlayColor) {
        let p = storage.advanced(by: y * stride + x * 3).assumingMemoryBound(to: UInt8.self)
        (p[0], p[1], p[2]) = (color.blue, color.green, color.red)
    }

    /// The pixels row by row, without row padding.
    var pixels: [OverlayColor] {
        (0..<height).flatMap { y in (0..<width).map { x in self[x, y] } }
    }

    /// The smallest rectangle holding every pixel whose colour is not `background`, or nil.
    func boundingBox(
        notMatching background: OverlayColor
    ) -> (
        left: Int, top: Int, right: Int, bottom: Int
    )? {
        var box: (left: Int, top: Int, right: Int, bottom: Int)?
        for y in 0..<height {
            for x in 0..<width where self[x, y] != background {
                if let b = box {
                    box = (min(b.left, x), min(b.top, y), max(b.right, x), max(b.bottom, y))
                } else {
                    box = (x, y, x, y)
                }
            }
        }
        return box
    }

    func count(_ color: OverlayColor) -> Int { pixels.filter { $0 == color }.count }
}

@Suite("Drawing overlays")
struct CanvasTests {
    @Test func rectangleOutlinesItsBorderAndLeavesTheRestAlone() {
        let image = TestImage(width: 200, height: 100)
        image.withBuffer {
            ImageCanvas.draw([.rect(x0: 0.25, y0: 0.25, x1: 0.75, y1: 0.75, color: .green)], on: $0)
        }

        // The rectangle covers columns 50…149 and rows 25…74; its 2-pixel outline lies inside.
        for (x, y) in [
            (50, 25), (149, 25), (50, 74), (149, 74), (100, 25), (100, 26), (100, 74), (50, 50), (51, 50),
            (149, 50),
        ] {
            #expect(image[x, y] == .green, "border pixel (\(x), \(y))")
        }
        for (x, y) in [(100, 50), (60, 35), (140, 65), (52, 50), (100, 27)] {
            #expect(image[x, y] == .black, "inside pixel (\(x), \(y))")
        }
        for (x, y) in [
            (10, 10), (190, 90), (49, 50), (150, 50), (100, 24), (100, 75), (0, 0), (199, 99),
        ] {
            #expect(image[x, y] == .black, "outside pixel (\(x), \(y))")
        }
        let box = image.boundingBox(notMatching: .black)
        #expect(box?.left == 50 && box?.top == 25 && box?.right == 149 && box?.bottom == 74)
    }

    @Test func outlineIsThickerOnLargeFrames() {
        #expect(ImageCanvas.lineWidth(width: 768, height: 576) == 2)
        #expect(ImageCanvas.lineWidth(width: 1920, height: 1080) == 3)
        let image = TestImage(width: 1920, height: 1080)
        image.withBuffer {
            ImageCanvas.draw([.rect(x0: 0.5, y0: 0.5, x1: 0.6, y1: 0.6, color: .red)], on: $0)
        }
        #expect(image[960, 560] == .red && image[962, 560] == .red && image[963, 560] == .black)
    }

    @Test func labelDrawsLightTextOnADarkBoxAtItsPosition() {
        let grey = OverlayColor(red: 128, green: 128, blue: 128)
        let image = TestImage(width: 400, height: 200, fill: grey)
        image.withBuffer {
            ImageCanvas.draw([.label(text: "person 0.93", x: 0.1, y: 0.5, color: .white)], on: $0)
        }

        let textPixels = image.count(.white)
        let boxPixels = image.count(.labelBackground)
        #expect(textPixels > 60, "the text has \(textPixels) pixels")
        #expect(boxPixels > textPixels, "the dark box shows around the text")

        // The baseline starts at (40, 100): the box ends a little below it and starts at its left.
        let box = try! #require(image.boundingBox(notMatching: grey))
        #expect((36...40).contains(box.left), "box left \(box.left)")
        #expect((101...104).contains(box.bottom), "box bottom \(box.bottom)")
        #expect((88...95).contains(box.top), "box top \(box.top)")
        #expect(box.right > box.left + 11 * BitmapFont.advance - 2, "the box holds all 11 characters")
        // Everything inside the box is either text or background.
        for y in box.top...box.bottom {
            for x in box.left...box.right {
                #expect(image[x, y] == .white || image[x, y] == .labelBackground)
            }
        }
    }

    @Test func differentTextsGiveDifferentPixels() {
        func render(_ text: String) -> [OverlayColor] {
            let image = TestImage(width: 160, height: 40)
            image.withBuffer {
                ImageCanvas.draw([.label(text: text, x: 0.05, y: 0.7, color: .yellow)], on: $0)
            }
            return image.pixels
        }
        let person93 = render("person 0.93")
        #expect(person93 == render("person 0.93"))
        #expect(person93 != render("person 0.98"))
        #expect(person93 != render("persen 0.93"))
        #expect(render("car 0.93") != render("bus 0.93"))
    }

    @Test func everyPrintableCharacterHasItsOwnGlyph() {
        var seen: [[OverlayColor]: Character] = [:]
        for value in 33...126 {
            let character = Character(Unicode.Scalar(UInt8(value)))
            let image = TestImage(width: 8, height: 10)
            image.withBuffer {
                BitmapFont.draw(String(character), x: 1, y: 1, scale: 1, color: .white, on: $0)
            }
            let pixels = image.pixels
            #expect(pixels.contains(.white), "\(character) draws something")
            #expect(seen[pixels] == nil, "\(character) looks like \(seen[pixels].map(String.init) ?? "")")
            seen[pixels] = character
        }
    }

    @Test func unknownCharactersDrawAsABox() {
        let image = TestImage(width: 8, height: 10)
        image.withBuffer { BitmapFont.draw("é", x: 1, y: 1, scale: 1, color: .white, on: $0) }
        let box = image.boundingBox(notMatching: .black)
        #expect(box?.left == 1 && box?.top == 1 && box?.right == 5 && box?.bottom == 7)
        #expect(image[1, 4] == .white && image[5, 4] == .white && image[3, 4] == .black)
    }

    @Test func textIsScaledToTheFrame() {
        func textHeight(width: Int, height: Int) -> Int {
            let image = TestImage(width: width, height: height)
            image.withBuffer {
                ImageCanvas.draw([.label(text: "Hp", x: 0.5, y: 0.5, color: .white)], on: $0)
            }
            guard let box = image.boundingBox(notMatching: .black) else { return 0 }  // the box itself is dark
            let text = (box.top...box.bottom).filter { y in
                (box.left...box.right).contains { image[$0, y] == .white }
            }
            return text.count
        }
        #expect(textHeight(width: 768, height: 576) == 16)  // 8 rows at scale 2
        #expect(textHeight(width: 1920, height: 1080) == 24)  // 8 rows at scale 3
    }

    @Test func outOfRangeCoordinatesAreClampedNotFatal() {
        let image = TestImage(width: 200, height: 100)
        image.withBuffer {
            ImageCanvas.draw([.rect(x0: -1, y0: -0.5, x1: 2, y1: 7, color: .red)], on: $0)
        }
        #expect(
            image[0, 0] == .red && image[199, 99] == .red && image[0, 50] == .red && image[100, 0] == .red
        )
        #expect(image[100, 50] == .black)

        // Reversed corners draw the same rectangle.
        let forward = TestImage(width: 200, height: 100)
        let reversed = TestImage(width: 200, height: 100)
        forward.withBuffer {
            ImageCanvas.draw([.rect(x0: 0.2, y0: 0.3, x1: 0.6, y1: 0.9, color: .cyan)], on: $0)
        }
        reversed.withBuffer {
            ImageCanvas.draw([.rect(x0: 0.6, y0: 0.9, x1: 0.2, y1: 0.3, color: .cyan)], on: $0)
        }
        #expect(forward.pixels == reversed.pixels)

        // Degenerate and non-finite values draw something small or nothing, and never crash.
        let odd = TestImage(width: 3, height: 2, padding: 5)
        odd.withBuffer { buffer in
            ImageCanvas.draw(
                [
                    .rect(x0: .nan, y0: .infinity, x1: -.infinity, y1: .nan, color: .blue),
                    .rect(x0: 1, y0: 1, x1: 1, y1: 1, color: .blue),
                    .label(text: "far away", x: 5, y: -3, color: .white),
                    .label(text: "nan", x: .nan, y: .nan, color: .white),
                    .label(text: "", x: 0.5, y: 0.5, color: .white),
                ],
                on: buffer
            )
        }
        let empty = TestImage(width: 0, height: 0)
        empty.withBuffer {
            ImageCanvas.draw([.rect(x0: 0, y0: 0, x1: 1, y1: 1), .label(text: "x", x: 0, y: 0)], on: $0)
        }
    }

    @Test func labelsNearTheEdgeStayInsideTheImage() {
        let grey = OverlayColor(red: 90, green: 90, blue: 90)
        let image = TestImage(width: 300, height: 120, fill: grey)
        image.withBuffer {
            ImageCanvas.draw([.label(text: "top right", x: 0.99, y: 0.0, color: .white)], on: $0)
        }
        let box = try! #require(image.boundingBox(notMatching: grey))
        #expect(box.top == 0 && box.right == 299)
        #expect(image.count(.white) > 40, "the whole text is drawn, not cut off")
    }
}
