import Common

#if canImport(Glibc)
import Glibc
#endif

/// Checks 1–3 of the order of checks: the request-target's size, the version, CONNECT and
/// upgrades, `Host` (`RequestPreflight`). The header count and size limits are the parser's: it
/// answers 431 itself.
enum PreflightStage {
    static func run(_ request: PipelineRequest, head: RequestHead, worker: WorkerContext) -> StageVerdict {
        guard let rejection = RequestPreflight.check(head, limits: worker.limits) else { return .proceed }
        if rejection == .notImplemented {
            // What follows an upgrade or CONNECT request is not HTTP/1.1: the connection cannot
            // carry another request.
            request.closesConnection = true
        }
        return .reject(rejection)
    }
}

/// Check 4: a permit of the whole proxy's `server.max_connections`, held until the request ends;
/// none left is 503 at once, without queueing.
enum CapacityStage {
    static func run(_ request: PipelineRequest, head: RequestHead, worker: WorkerContext) -> StageVerdict {
        guard worker.limiter.tryAcquire() else { return .reject(.overloaded) }
        request.holdsPermit = true
        return .proceed
    }
}

/// A connection's last authentication: the snapshot, the credentials it was made for, and its
/// outcome. A class, so looking at it is one retain, not a copy of two strings and an outcome; the
/// caller is kept field by field, so a reuse copies each field once into the request (a copy of
/// the outcome, its caller's fields and the outcome's destruction cost ~300 instructions).
final class CachedAuthentication {
    let snapshot: WorkerSnapshot
    let authorization: String?
    let xAPIKey: String?
    /// The outcome's caller, nil when it was rejected.
    let permitted: UpstreamSet?
    let keyID: String?
    let keyMetric: Int64
    let staticKey: Int?
    let subject: String?

    init(snapshot: WorkerSnapshot, authorization: String?, xAPIKey: String?, outcome: AuthOutcome) {
        self.snapshot = snapshot
        self.authorization = authorization
        self.xAPIKey = xAPIKey
        switch outcome {
        case .allowed(let caller):
            permitted = caller.permitted
            keyID = caller.keyID
            keyMetric = caller.keyMetric
            staticKey = caller.staticKey
            subject = caller.subject
        case .rejected:
            permitted = nil
            keyID = nil
            keyMetric = MetricsSchema.noneKey
            staticKey = nil
            subject = nil
        }
    }
}

/// Check 5: the client's credentials (docs/authentication.md) → the caller, or 401.
///
/// A keep-alive client sends the same credentials with every request: when the outcome depends
/// on the headers alone (no JWT keys) and this connection authenticated the very same headers
/// under the same configuration, that outcome is reused instead of hashing the key again
/// (SHA-256 through libcrypto: about 5% of the worker's instructions per request). The
/// comparison is with what this client itself sent before, so its timing reveals nothing about
/// the configured keys.
enum AuthenticateStage {
    static func run(_ request: PipelineRequest, head: RequestHead, worker: WorkerContext) -> StageVerdict {
        let facts = head.facts
        let snapshot = request.snapshot
        // X-Api-Key counts only without Authorization.
        let xAPIKeyValue = facts.authorizationValue == nil ? facts.xAPIKeyValue : nil
        if let cached = request.cachedAuthentication, cached.snapshot === snapshot,
            head.bytes(at: facts.authorizationValue, equal: cached.authorization),
            head.bytes(at: xAPIKeyValue, equal: cached.xAPIKey)
        {
            guard let permitted = cached.permitted else { return .reject(.unauthorized) }
            request.permitted = permitted
            request.keyID = cached.keyID
            request.subject = cached.subject
            request.staticKey = cached.staticKey
            request.keyMetric = cached.keyMetric
            return .proceed
        }
        let authorization = head.authorization
        let xAPIKey = facts.authorizationValue == nil ? head.xAPIKey : nil
        let outcome = snapshot.authenticator.authenticate(
            authorizationHeader: authorization, xAPIKeyHeader: xAPIKey, now: Int64(time(nil)))
        request.cachedAuthentication =
            snapshot.authenticator.outcomeDependsOnlyOnHeaders
            ? CachedAuthentication(snapshot: snapshot, authorization: authorization, xAPIKey: xAPIKey, outcome: outcome) : nil
        guard case .allowed(let caller) = outcome else { return .reject(.unauthorized) }
        request.permitted = caller.permitted
        request.keyID = caller.keyID
        request.subject = caller.subject
        request.staticKey = caller.staticKey
        request.keyMetric = caller.keyMetric
        return .proceed
    }
}

/// Checks 7–8: an open proxy without upstreams is 503; then the longest permitted prefix
/// (docs/routing-and-forwarding.md) → the route, or 400; no prefix → model routing
/// (`ModelRouteStage`), or 404.
enum RouteStage {
    /// `bodySource`: see `RequestPipeline.run`.
    static func run(
        _ request: PipelineRequest, head: RequestHead, worker: WorkerContext, bodySource: PipelineBodySource?
    ) -> StageVerdict {
        // The whole stage on a guaranteed reference to the request's snapshot: a local binding of
        // it was retained and released around the model stage (~40 instructions per
        // model-routed request). The request holds the snapshot and the caller's set for its
        // whole life; the model stage reads the set from it.
        Unmanaged.passUnretained(request.snapshot)._withUnsafeGuaranteedRef { snapshot in
            // Again, with the body's first bytes: the checks below passed, routed by model already.
            if let target = request.modelTarget, request.permitted != nil {
                return ModelRouteStage.routeByBody(request, head: head, target: target, table: snapshot.models, bodySource: bodySource)
            }
            if !snapshot.authenticator.required && snapshot.router.isEmpty { return .reject(.noUpstreams) }
            // The authenticate stage ran before: a caller is always there.
            guard let permitted = request.permitted else { return .reject(.unauthorized) }
            switch snapshot.router.route(head, permitted: permitted) {
            case .matched(let match):
                request.match = match
                return .proceed
            case .noRoute(let target, let endpoint):
                return ModelRouteStage.run(
                    request, head: head, table: snapshot.models, target: target, endpoint: endpoint, bodySource: bodySource)
            case .invalidPath: return .reject(.invalidPath)
            }
        }
    }
}
