internal import CFFmpeg

/// An error from a camera, a file or a codec, with a message that says what to do next.
///
/// The message names the camera by its stream name, never by a URL that may carry a password.
public struct MediaError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What went wrong, as a value a caller can switch on. Extensible: new codes may be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }
        public static let openFailed = Code(name: "openFailed")
        public static let noVideoStream = Code(name: "noVideoStream")
        public static let unsupportedCodec = Code(name: "unsupportedCodec")
        public static let readFailed = Code(name: "readFailed")
        public static let decodeFailed = Code(name: "decodeFailed")
        public static let stalled = Code(name: "stalled")
        public static let encodeFailed = Code(name: "encodeFailed")
        public static let outOfMemory = Code(name: "outOfMemory")
        public static let invalidSource = Code(name: "invalidSource")
    }

    public var code: Code
    /// What happened, naming the camera.
    public var message: String
    /// What the user can do about it.
    public var hint: String?
    /// FFmpeg's own words, when it said something.
    public var cause: String?

    public init(_ code: Code, _ message: String, hint: String? = nil, cause: String? = nil) {
        self.code = code
        self.message = message
        self.hint = hint
        self.cause = cause
    }

    public var description: String {
        var text = message
        if let cause { text += " (\(cause))" }
        if let hint { text += ": \(hint)" }
        return text
    }
}

/// FFmpeg's text for a status code.
func ffmpegErrorText(_ status: Int32) -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    av_strerror(status, &buffer, buffer.count)
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Turns an FFmpeg status into a `MediaError` at the boundary, once.
@discardableResult
func check(_ status: Int32, _ code: MediaError.Code, _ message: @autoclosure () -> String, hint: String? = nil)
    throws(MediaError) -> Int32
{
    if status < 0 { throw MediaError(code, message(), hint: hint, cause: ffmpegErrorText(status)) }
    return status
}
