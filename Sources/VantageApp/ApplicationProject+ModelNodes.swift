extension ApplicationProject {
    /// The graph's model nodes (`ml_model`), in the graph's order: the nodes a deployment may bind to one of the
    /// control plane's models instead of the file the package names.
    public var modelNodes: [String] {
        graph.nodes.map(\.name).filter { name in
            if case .model = nodeInfos[name]?.role { true } else { false }
        }
    }
}
