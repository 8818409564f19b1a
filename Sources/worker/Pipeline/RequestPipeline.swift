import Common
import NIOCore

/// What a stage of the request pipeline decided about a request.
enum StageVerdict {
    /// On to the next stage (after the last one, the request is forwarded).
    case proceed
    /// Answer with this error instead; no later stage runs. Indirect: the error's status, texts
    /// and headers made the verdict 80 bytes, returned through memory and copied at each stage
    /// (~15 instructions per stage called); boxed, the verdict fits two registers, and only a
    /// rejection allocates (docs/performance.md "session 16, gateway").
    indirect case reject(ProxyErrorResponse)
    /// Run this stage again once `PipelineRequest.body` holds the first `bytes` bytes of the body
    /// (or the whole body, when it is shorter). The bytes are kept, not consumed: the upstream
    /// still receives every one of them. `bytes` is capped by `RequestPipeline.maxBodyPeekBytes`.
    case needBody(bytes: Int)
    /// Wait: reads stop, the request's later parts are queued, and the pipeline goes on when the
    /// stage calls `suspension.resume(_:)` (on the worker's event loop) with its verdict.
    case suspend(StageSuspension)
}

/// A stage of the pipeline made apart from the built-in ones (`PipelineStage.custom`): tests, and
/// the checks to come. It reads the request, may fill in what it found, and returns a verdict.
/// Made once per worker; runs on its event loop.
protocol RequestStage: AnyObject {
    /// For tests and diagnostics.
    var name: String { get }
    /// `head` is the request's head.
    func run(_ request: PipelineRequest, head: RequestHead, worker: WorkerContext) -> StageVerdict
}

/// A stage's pending answer. The stage keeps it and calls `resume` once, on the worker's event
/// loop; a connection that has gone away by then ignores it.
final class StageSuspension {
    fileprivate(set) var verdict: StageVerdict?
    /// Set by the connection when the stage returns `.suspend(self)`.
    var onResume: ((StageVerdict) -> Void)?

    init() {}

    func resume(_ verdict: StageVerdict) {
        guard self.verdict == nil else { return }
        if case .suspend = verdict { preconditionFailure("a suspension cannot resume with another suspension") }
        self.verdict = verdict
        let onResume = self.onResume
        self.onResume = nil
        onResume?(verdict)
    }
}

/// Where a stage takes a body that is at hand without waiting for it (the connection, passed to
/// `RequestPipeline.run`: a body that came whole with its head). The model stage reads the body in the pass that routed the request
/// by prefix; a `.needBody` verdict instead ran the pipeline a second time from the route stage
/// (~+250 instructions per model-routed request, docs/performance.md "gateway3").
protocol PipelineBodySource: AnyObject {
    /// Whether `request.body` holds the body's first `bytes` bytes (or the whole body) now, as it
    /// would after `.needBody(bytes:)`; false when they must be waited for (ask with `.needBody`).
    func bodyAtHand(_ request: PipelineRequest, head: RequestHead, bytes: Int) -> Bool
}

/// The request as the stages see it: its snapshot, and what earlier stages found (the head is
/// passed to each stage beside it: a copy kept here cost ~200 instructions per request). One
/// per connection, reset for each request (a value built per request was copied and destroyed
/// on its way through the stages: ~600 instructions per request); it also keeps the
/// connection's last authentication from one request to the next.
final class PipelineRequest {
    /// How the head frames the body.
    private(set) var framing: BodyFraming
    /// The configuration current when the head arrived: the request's for its whole life.
    private(set) var snapshot: WorkerSnapshot
    /// The snapshot has rate limits: without, the limits stage is not even called (read here,
    /// where the snapshot is in hand, rather than through `snapshot` in the stage).
    private(set) var checksRateLimits: Bool
    /// The upstreams the authenticated caller may reach, and its key's `id` (the authenticate
    /// stage). Apart, not as an `AuthenticatedCaller`: each is read on its own per request,
    /// and reading the pair would copy both.
    var permitted: UpstreamSet?
    var keyID: String?
    /// A JWT's `sub`, for its key's limits (docs/rate-limits.md "JWT keys").
    var subject: String?
    /// The static key's position in `api_keys.static` (its `models:` list), nil for a JWT or
    /// an open proxy.
    var staticKey: Int?
    /// Model routing's decision, when the request was routed by its body's `model`.
    var model: ModelDecision?
    /// The model stage asked for the body (`.needBody`; set only then, a body at hand needs no
    /// second pass): when the route stage runs again with it, no prefix matched already and the
    /// endpoint is a model-routed one with this request-target.
    var modelTarget: RequestTarget?
    /// The key's series key for the metrics (`MetricsSchema`; `noneKey` when none was accepted).
    var keyMetric = MetricsSchema.noneKey
    /// The route (the route stage).
    var match: Router.Match?
    /// The request holds a permit of `server.max_connections` (the capacity stage); it is
    /// returned when the request ends.
    var holdsPermit = false
    /// `max_in_flight` places taken (the limits stage); given back when the request ends.
    var rateLimitHold: RateLimitHold?
    /// The limit that refused the request (the limits stage).
    var rateLimited: RateLimitKind?
    /// The connection cannot carry another request after this one.
    var closesConnection = false
    /// The body's first bytes, once a stage asked for them (`.needBody`); nil before.
    var body: ByteBuffer?
    /// `body` is the whole body.
    var bodyComplete = false
    /// The collected body as it arrived (`body` is their copy in one buffer, or the one part):
    /// forwarded as is. Emptied keeping its storage, so collecting allocates no array per request.
    var bodyParts: [ByteBuffer] = []
    /// `body` is the whole body, taken from the parser at once (it came with its head): it goes
    /// upstream as the one part, without a place in `bodyParts` (appending it there and emptying
    /// them again cost ~100 instructions per model-routed request, docs/performance.md).
    var bodyTakenWhole = false
    /// The `Content-Length` sent upstream when a stage changed the body's length
    /// (`replaceCollectedBody`); nil: the client's.
    var forwardedLength: Int?
    /// `stream_usage: inject` asked the upstream for usage the client did not ask for: the
    /// usage-only chunk is kept from the client (docs/usage.md).
    var injectedStreamUsage = false
    /// The connection's last authentication, reused when the same credentials come again
    /// (see `AuthenticateStage`); kept across requests.
    var cachedAuthentication: CachedAuthentication?

    init(framing: BodyFraming, snapshot: WorkerSnapshot) {
        self.framing = framing
        self.snapshot = snapshot
        self.checksRateLimits = snapshot.hasRateLimits
    }

    /// The next request on the connection.
    func reset(framing: BodyFraming, snapshot: WorkerSnapshot) {
        self.framing = framing
        self.snapshot = snapshot
        checksRateLimits = snapshot.hasRateLimits
        permitted = nil
        keyID = nil
        if subject != nil { subject = nil }
        staticKey = nil
        if model != nil { model = nil }
        if modelTarget != nil { modelTarget = nil }
        keyMetric = MetricsSchema.noneKey
        match = nil
        holdsPermit = false
        if rateLimitHold != nil { rateLimitHold = nil }
        if rateLimited != nil { rateLimited = nil }
        closesConnection = false
        if body != nil { body = nil }
        bodyComplete = false
        bodyTakenWhole = false
        emptyBodyParts()
        if forwardedLength != nil { forwardedLength = nil }
        injectedStreamUsage = false
    }

    /// The request's `.end` has been taken from the parser (a stage collected the whole body).
    var receivedWhole: Bool { bodyComplete && framing != .none }

    /// Empties `bodyParts` keeping its storage. One part (a body that came whole) is removed as
    /// the last: `removeAll(keepingCapacity:)` goes through the generic `replaceSubrange` (~70).
    func emptyBodyParts() {
        if bodyParts.count == 1 {
            bodyParts.removeLast()
        } else if !bodyParts.isEmpty {
            bodyParts.removeAll(keepingCapacity: true)
        }
    }
}

/// One step of the order of checks (docs/routing-and-forwarding.md, "Order of checks"): nginx's
/// phases, Envoy's filters. A stage reads the request, may fill in what it found (the caller, the
/// route), and returns a verdict. A new check is a new stage, not a new flag on the connection.
///
/// The built-in stages are cases, not objects: running one is a direct call (a list of objects
/// cost a retain and a release of each stage on every request, ~180 instructions).
enum PipelineStage {
    case preflight, capacity, authenticate, route, streamUsage, limits
    case custom(RequestStage)

    var name: String {
        switch self {
        case .preflight: return "preflight"
        case .capacity: return "capacity"
        case .authenticate: return "authenticate"
        case .route: return "route"
        case .streamUsage: return "stream_usage"
        case .limits: return "limits"
        case .custom(let stage): return stage.name
        }
    }
}

/// The stages every request goes through, in order; forwarding follows the last one. Built once
/// per worker (`standard`, or a list with extra stages in tests).
struct RequestPipeline {
    let stages: [PipelineStage]

    /// The most a stage may ask to see of a body before the request is forwarded.
    static let maxBodyPeekBytes = 1024 * 1024

    /// docs/routing-and-forwarding.md's order of checks.
    static func standard() -> RequestPipeline {
        RequestPipeline(stages: [.preflight, .capacity, .authenticate, .route, .streamUsage, .limits])
    }

    /// This pipeline with `stage` inserted right after the stage named `name` (at the end when
    /// no stage has that name).
    func inserting(_ stage: RequestStage, after name: String) -> RequestPipeline {
        var stages = self.stages
        let index = stages.firstIndex { $0.name == name }.map { $0 + 1 } ?? stages.endIndex
        stages.insert(.custom(stage), at: index)
        return RequestPipeline(stages: stages)
    }

    /// Runs stages from `index` until one does not proceed; `index` is then that stage's (or
    /// `stages.count` when every stage proceeded).
    /// `head` is the request's head (see `RequestStage.run`); `bodySource` the connection, for a
    /// body at hand (nil: a stage asks with `.needBody`). Passed, not kept in the request: an
    /// argument the caller holds costs no retain.
    func run(
        _ request: PipelineRequest, head: RequestHead, from index: inout Int, worker: WorkerContext,
        bodySource: PipelineBodySource? = nil
    ) -> StageVerdict {
        while index < stages.count {
            let verdict: StageVerdict
            switch stages[index] {
            case .preflight: verdict = PreflightStage.run(request, head: head, worker: worker)
            case .capacity: verdict = CapacityStage.run(request, head: head, worker: worker)
            case .authenticate: verdict = AuthenticateStage.run(request, head: head, worker: worker)
            case .route: verdict = RouteStage.run(request, head: head, worker: worker, bodySource: bodySource)
            case .streamUsage:
                verdict = request.match?.route.injectsStreamUsage == true ? StreamUsageStage.run(request, head: head) : .proceed
            case .limits: verdict = request.checksRateLimits ? RateLimitStage.run(request, head: head, worker: worker) : .proceed
            case .custom(let stage): verdict = stage.run(request, head: head, worker: worker)
            }
            guard case .proceed = verdict else { return verdict }
            index += 1
        }
        return .proceed
    }
}
