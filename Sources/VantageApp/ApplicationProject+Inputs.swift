import Foundation

/// What a deployment of an application must or may supply: a camera for each camera node, and values for the
/// parameter nodes the manifest marks overridable. The control plane shows these in its instance form and checks
/// an instance against them; the titles and constraints come from the nodes' `decorator`s.
public struct ApplicationInputs: Sendable, Codable, Equatable {
    /// One camera node.
    public struct Camera: Sendable, Codable, Equatable {
        public var node: String
        public var title: String?
        public var description: String?
    }

    /// One parameter node.
    public struct Parameter: Sendable, Codable, Equatable {
        public var node: String
        public var type: PortType
        /// The manifest's value, used when the deployment gives none.
        public var defaultValue: ParameterValue
        /// Whether a deployment may give a value (Panorama's `overridable`).
        public var overridable: Bool
        /// Whether a deployment must give a value (`overrideMandatory`).
        public var mandatory: Bool
        public var title: String?
        public var description: String?
        /// What the constraint means, for people (`constraintDescription`).
        public var constraintText: String?
        /// A regular expression a value's text must match in full.
        public var constraintRegex: String?

        /// Makes a parameter input.
        public init(
            node: String, type: PortType, defaultValue: ParameterValue, overridable: Bool, mandatory: Bool,
            title: String? = nil, description: String? = nil, constraintText: String? = nil,
            constraintRegex: String? = nil
        ) {
            self.node = node
            self.type = type
            self.defaultValue = defaultValue
            self.overridable = overridable
            self.mandatory = mandatory
            self.title = title
            self.description = description
            self.constraintText = constraintText
            self.constraintRegex = constraintRegex
        }
    }

    public var cameras: [Camera]
    public var parameters: [Parameter]

    /// Checks `text` (as typed in a form or given on the command line) against `parameter`; returns the typed
    /// value, or a message saying what is wrong.
    public static func check(_ text: String, for parameter: Parameter) -> Result<ParameterValue, CheckFailure> {
        check(
            text, node: parameter.node, type: parameter.type, overridable: parameter.overridable,
            constraint: NodeDecorator(
                constraintText: parameter.constraintText, constraintRegex: parameter.constraintRegex))
    }

    /// Checks `text` as a value of parameter node `node`: overridable, of `type`, keeping `constraint`.
    public static func check(
        _ text: String, node: String, type: PortType, overridable: Bool, constraint: NodeDecorator?
    ) -> Result<ParameterValue, CheckFailure> {
        guard overridable else {
            return .failure(CheckFailure("parameter \(node) is not overridable in the manifest"))
        }
        guard let value = ParameterValue(parsing: text, as: type) else {
            return .failure(
                CheckFailure("parameter \(node) takes \(type.withArticle), not \"\(ManifestError.excerpt(text))\""))
        }
        if let violation = constraint?.constraintViolation(text) {
            return .failure(CheckFailure("parameter \(node): \(violation)"))
        }
        return .success(value)
    }

    /// Why a value was refused.
    public struct CheckFailure: Error, Sendable, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }
}

extension ApplicationProject {
    /// The camera and parameter nodes a deployment binds, in manifest order.
    public var inputs: ApplicationInputs {
        let infos = nodeInfos
        var cameras: [ApplicationInputs.Camera] = []
        var parameters: [ApplicationInputs.Parameter] = []
        for node in graph.nodes {
            guard let info = infos[node.name] else { continue }
            if info.isCamera {
                cameras.append(
                    .init(node: node.name, title: node.decorator?.title, description: node.decorator?.description))
            } else if let value = info.parameterValue {
                parameters.append(
                    .init(
                        node: node.name, type: value.type, defaultValue: value, overridable: node.overridable,
                        mandatory: node.overrideMandatory, title: node.decorator?.title,
                        description: node.decorator?.description, constraintText: node.decorator?.constraintText,
                        constraintRegex: node.decorator?.constraintRegex))
            }
        }
        return ApplicationInputs(cameras: cameras, parameters: parameters)
    }
}
