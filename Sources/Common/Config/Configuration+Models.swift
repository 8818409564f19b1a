// The `models:` section (docs/routing-and-forwarding.md "Model routing"): the names clients send
// in a request body's `model`, and the upstream that serves each.

extension Configuration {
    /// One entry of `models:`: a name or a pattern (`*` matches any run of characters), the
    /// upstream that serves it, and the name sent upstream when it differs.
    public struct ModelRoute: Sendable, Hashable, Codable {
        /// As written: an exact name, or a pattern when it contains `*`.
        public var name: String
        /// The name of an upstream of `upstreams` (checked by the loader).
        public var upstream: String
        /// `model`: what replaces the client's name in the body sent upstream; nil = unchanged.
        public var upstreamModel: String?

        public init(name: String, upstream: String, upstreamModel: String? = nil) {
            self.name = name
            self.upstream = upstream
            self.upstreamModel = upstreamModel
        }

        public var isPattern: Bool { name.utf8.contains(UInt8(ascii: "*")) }
    }

    /// The longest model name a client may send and have routed, in bytes: a longer one is never
    /// matched (404), so no odd value grows a log line or a lookup. Also the longest name the
    /// file may hold.
    public static let maxModelNameBytes = 256
}
