/// Why a model could not be loaded or run. The description names the model (its node name) and its file, says what
/// is wrong and what to change, and carries OpenVINO's own message where there is one.
public struct ModelError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure; an extensible set (new codes may be added).
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Base: String, Sendable {
            case fileMissing, unsupportedFormat, unreadableModel, invalidDescriptor, unknownInput, missingInput
            case shapeMismatch, elementTypeMismatch, unknownOutput, deviceUnavailable, compileFailed
            case inferenceFailed, requestBusy, cancelled, runtimeUnavailable
        }
        fileprivate let base: Base

        /// The model file (or an OpenVINO IR's `.bin`) does not exist.
        public static let fileMissing = Code(base: .fileMissing)
        /// The file's format is not one OpenVINO reads (see ``ModelFormat``).
        public static let unsupportedFormat = Code(base: .unsupportedFormat)
        /// OpenVINO could not read the file: it is corrupt, truncated or not what its extension says.
        public static let unreadableModel = Code(base: .unreadableModel)
        /// A `vantage` descriptor field has a value that cannot be used (layout, colour order, mean/scale, …).
        public static let invalidDescriptor = Code(base: .invalidDescriptor)
        /// An input name (in the descriptor or a tensor from the application) is not one of the model's inputs.
        public static let unknownInput = Code(base: .unknownInput)
        /// The application did not give a tensor for one of the model's inputs.
        public static let missingInput = Code(base: .missingInput)
        /// Sizes disagree: a dynamic input without width/height, a descriptor size the model cannot take, a tensor
        /// with the wrong shape or byte count.
        public static let shapeMismatch = Code(base: .shapeMismatch)
        /// A tensor from the application has another element type than the model input.
        public static let elementTypeMismatch = Code(base: .elementTypeMismatch)
        /// The decoder names an output the model does not have.
        public static let unknownOutput = Code(base: .unknownOutput)
        /// The descriptor's device is not present on this machine.
        public static let deviceUnavailable = Code(base: .deviceUnavailable)
        /// OpenVINO could not compile the model for the device.
        public static let compileFailed = Code(base: .compileFailed)
        /// An inference failed inside OpenVINO.
        public static let inferenceFailed = Code(base: .inferenceFailed)
        /// An ``InferenceRequest`` was used by two tasks at once.
        public static let requestBusy = Code(base: .requestBusy)
        /// The task running the inference was cancelled.
        public static let cancelled = Code(base: .cancelled)
        /// The OpenVINO runtime itself could not start.
        public static let runtimeUnavailable = Code(base: .runtimeUnavailable)

        /// The code's name, e.g. `fileMissing`.
        public var description: String { base.rawValue }
    }

    /// What kind of failure.
    public var code: Code
    /// The model's name (its node name in the application graph).
    public var model: String
    /// The model file's path.
    public var file: String
    /// What is wrong and what to change.
    public var message: String
    /// OpenVINO's own message, when the failure came from OpenVINO.
    public var openVINOMessage: String?

    /// An error about model `model` in `file`.
    public init(code: Code, model: String, file: String, message: String, openVINOMessage: String? = nil) {
        self.code = code
        self.model = model
        self.file = file
        self.message = message
        self.openVINOMessage = openVINOMessage
    }

    /// `model 'NAME' (FILE): MESSAGE [OpenVINO: …]`.
    public var description: String {
        var text = "model '\(model)' (\(file)): \(message)"
        if let openVINOMessage, !openVINOMessage.isEmpty { text += " [OpenVINO: \(openVINOMessage)]" }
        return text
    }
}

/// Names the model and file once, so that every error raised while loading or running it says which.
struct ModelErrorContext: Sendable {
    var model: String
    var file: String

    func callAsFunction(_ code: ModelError.Code, _ message: String, _ cause: OpenVINOFailure? = nil) -> ModelError {
        ModelError(code: code, model: model, file: file, message: message, openVINOMessage: cause?.summary)
    }
}

/// Lists names for a message: `'a', 'b'` or `none`.
func quotedList(_ names: [String]) -> String {
    names.isEmpty ? "none" : names.map { "'\($0)'" }.joined(separator: ", ")
}
