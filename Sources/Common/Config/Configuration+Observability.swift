extension Configuration {
    /// The `observability:` section (docs/configuration.md, docs/observability.md): the master's
    /// own listener for `/metrics`, `/livez` and `/readyz`, and request-id propagation.
    public struct Observability: Sendable, Hashable, Codable {
        /// Where the master serves the endpoints; nil = no listener.
        public var listen: BindAddress?
        /// Send `x-request-id` upstream and back to the client. Hot.
        public var propagateRequestID: Bool

        public init(listen: BindAddress? = nil, propagateRequestID: Bool = false) {
            self.listen = listen
            self.propagateRequestID = propagateRequestID
        }
    }
}
