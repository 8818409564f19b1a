import Common
import Logging
import NIOCore

/// Everything derived from one configuration, built once when the configuration arrives so the
/// data plane only looks things up. A request uses the snapshot current at its head for its
/// whole life (docs/architecture.md "Reload paths": old or new configuration, never a mix).
///
/// A class: every request takes the current snapshot, which is then one retain instead of a copy
/// of the configuration's and the router's fields; and its identity tells a connection whether
/// what it cached (the last authentication) was made under the configuration still current.
final class WorkerSnapshot: Sendable {
    let configuration: Configuration
    let authenticator: Authenticator
    let router: Router
    /// `models:` (docs/routing-and-forwarding.md "Model routing").
    let models: ModelTable
    /// The listener's TLS context when `server.tls` is set: connections accepted while this
    /// snapshot is current use it for their whole life, so a reload with a renewed certificate
    /// reaches new connections only.
    let serverTLS: TLSContext?
    /// The exchange settings every request of this configuration starts from (timeouts made
    /// once, not per request).
    let exchangeSettings: ExchangeState.Settings
    /// The configuration's rate limits and where their state is (docs/rate-limits.md).
    let rateLimits: RateLimitTable
    /// `rateLimits` has any limit: the one test a request pays when none is configured (reading
    /// the table itself would retain its dictionary and array).
    let hasRateLimits: Bool

    /// Throws when `server.tls` cannot be turned into a context (the loader checked the same
    /// bytes with the same OpenSSL, so this means a configuration the loader did not make).
    init(configuration: Configuration, rateLimits: HostRateLimits? = nil) throws(TLSError) {
        self.rateLimits = rateLimits?.table(for: configuration) ?? .none
        self.hasRateLimits = !self.rateLimits.isEmpty
        self.configuration = configuration
        self.authenticator = Authenticator(configuration: configuration)
        self.router = Router(upstreams: configuration.upstreams.entries, requestTimeoutMs: configuration.upstreams.requestTimeoutMs)
        self.models = ModelTable(configuration: configuration, router: router)
        let upstreams = configuration.upstreams
        self.exchangeSettings = ExchangeState.Settings(
            requestTimeout: .milliseconds(Int64(clamping: upstreams.requestTimeoutMs)),
            attemptTimeout: .milliseconds(Int64(clamping: upstreams.requestTimeoutMs)),
            streamIdleTimeout: .milliseconds(Int64(clamping: upstreams.streamIdleTimeoutMs)),
            replayBufferBytes: WorkerLimits.defaultReplayBufferBytes, idempotent: false)
        self.serverTLS = try configuration.server.tls.map { tls throws(TLSError) in try TLSContext.server(tls) }
    }
}
