import Foundation
import Testing
import VantageMedia

struct ToolError: Error, CustomStringConvertible {
    var description: String
}

/// Runs FFmpeg's command-line tools on a JPEG, as a user's browser or player would decode it.
enum FFmpegTool {
    static let available =
        FileManager.default.isExecutableFile(atPath: "/usr/bin/ffmpeg")
        && FileManager.default.isExecutableFile(atPath: "/usr/bin/ffprobe")

    static func run(_ tool: String, _ arguments: [String], input jpeg: [UInt8]) throws -> Data {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent(
            "vantage-jpeg-\(UUID().uuidString).jpg"
        )
        try Data(jpeg).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/\(tool)")
        process.arguments = ["-v", "error", "-i", file.path] + arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ToolError(
                description: "\(tool) could not read the JPEG (exit \(process.terminationStatus))"
            )
        }
        return data
    }

    /// Width and height as ffprobe reports them.
    static func size(of jpeg: [UInt8]) throws -> (width: Int, height: Int) {
        let text = String(
            decoding: try run(
                "ffprobe",
                ["-show_entries", "stream=width,height", "-of", "csv=p=0"],
                input: jpeg
            ),
            as: UTF8.self
        )
        let parts = text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",")
            .compactMap { Int($0) }
        guard parts.count == 2 else { throw ToolError(description: "ffprobe said \(text)") }
        return (parts[0], parts[1])
    }

    /// The decoded image as packed BGR24 bytes.
    static func decode(_ jpeg: [UInt8]) throws -> [UInt8] {
        [UInt8](try run("ffmpeg", ["-f", "rawvideo", "-pix_fmt", "bgr24", "-"], input: jpeg))
    }
}

@Suite("JPEG encoding", .enabled(if: FFmpegTool.available, "needs /usr/bin/ffmpeg and ffprobe"))
struct JPEGEncoderTests {
    static func redBlue(width: Int, height: Int) -> TestImage {
        let image = TestImage(width: width, height: height, padding: 7)
        for y in 0..<height {
            for x in 0..<width {
                image.set(
                    x: x,
                    y: y,
                    x < width / 2
                        ? OverlayColor(red: 220, green: 0, blue: 0) : OverlayColor(red: 0, green: 0, blue: 220)
                )
            }
        }
        return image
    }

    static func isClose(_ bgr: ArraySlice<UInt8>, to color: OverlayColor, tolerance: Int = 24) -> Bool {
        let actual = Array(bgr)
        return abs(Int(actual[0]) - Int(color.blue)) <= tolerance
            && abs(Int(actual[1]) - Int(color.green)) <= tolerance
            && abs(Int(actual[2]) - Int(color.red)) <= tolerance
    }

    @Test func encodesAJPEGThatFFmpegDecodesToTheSameImage() throws {
        let image = Self.redBlue(width: 320, height: 240)
        let jpeg = try image.withBuffer { try JPEGEncoder(quality: 85).encode($0) }

        #expect(jpeg.prefix(2) == [0xFF, 0xD8])
        #expect(jpeg.suffix(2) == [0xFF, 0xD9])
        let size = try FFmpegTool.size(of: jpeg)
        #expect(size.width == 320 && size.height == 240)

        let decoded = try FFmpegTool.decode(jpeg)
        try #require(decoded.count == 320 * 240 * 3)
        func sample(_ x: Int, _ y: Int) -> ArraySlice<UInt8> {
            decoded[(y * 320 + x) * 3..<(y * 320 + x) * 3 + 3]
        }
        for (x, y) in [(20, 20), (80, 120), (140, 230)] {
            #expect(
                Self.isClose(sample(x, y), to: OverlayColor(red: 220, green: 0, blue: 0)),
                "left half red at (\(x), \(y)): \(Array(sample(x, y)))"
            )
        }
        for (x, y) in [(180, 10), (240, 120), (310, 235)] {
            #expect(
                Self.isClose(sample(x, y), to: OverlayColor(red: 0, green: 0, blue: 220)),
                "right half blue at (\(x), \(y)): \(Array(sample(x, y)))"
            )
        }
    }

    @Test func followsSizeChangesBetweenCalls() throws {
        let encoder = JPEGEncoder()
        var output: [UInt8] = []
        for (width, height) in [(320, 240), (640, 360), (321, 241), (320, 240), (16, 16)] {
            try Self.redBlue(width: width, height: height).withBuffer {
                try encoder.encode($0, into: &output)
            }
            let size = try FFmpegTool.size(of: output)
            #expect(size.width == width && size.height == height)
            let decoded = try FFmpegTool.decode(output)
            #expect(decoded.count == width * height * 3)
            #expect(
                Self.isClose(decoded[0..<3], to: OverlayColor(red: 220, green: 0, blue: 0), tolerance: 40)
            )
        }
    }

    @Test func lowerQualityMakesSmallerFiles() throws {
        let image = TestImage(width: 256, height: 256)
        var seed: UInt32 = 12345
        for y in 0..<256 {
            for x in 0..<256 {
                seed = seed &* 1_664_525 &+ 1_013_904_223
                let noise = UInt8(truncatingIfNeeded: seed >> 24)
                image.set(x: x, y: y, OverlayColor(red: UInt8(x), green: noise, blue: UInt8(y)))
            }
        }
        let encoder = JPEGEncoder(quality: 95)
        let best = try image.withBuffer { try encoder.encode($0) }
        encoder.quality = 20
        let small = try image.withBuffer { try encoder.encode($0) }
        #expect(
            small.count * 2 < best.count,
            "quality 20: \(small.count) bytes, quality 95: \(best.count) bytes"
        )
        #expect(try FFmpegTool.size(of: small).width == 256)
    }

    @Test func rejectsAnEmptyImageWithAClearError() {
        let image = TestImage(width: 0, height: 0)
        #expect {
            _ = try image.withBuffer { try JPEGEncoder().encode($0) }
        } throws: { error in
            guard let error = error as? MediaError else { return false }
            return error.code == .encodeFailed && error.description.contains("0×0")
        }
    }
}
