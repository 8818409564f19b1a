import Common
import Logging
import NIOCore
import NIOPosix

/// The worker's client of `rate_limits.redis` (docs/rate-limits.md "Across hosts"): one
/// connection on the worker's event loop, never blocking it. Each check is one `EVALSHA` of
/// `RedisScript.source` (loaded once per connection with `SCRIPT LOAD`, sent again as `EVAL` after
/// `NOSCRIPT`); replies come in order, so pending checks are a FIFO. A check that gets no answer
/// within `timeout_ms` is `unavailable`: the connection is then dropped and made again with
/// backoff. A check made while a connection is being made waits for it (within `timeout_ms`);
/// one made while the client backs off after a failure is `unavailable` at once.
final class RedisRateLimiter {
    enum Outcome {
        case admitted
        /// The limit at `index` (0-based, in the order of the check's keys) is full; a place
        /// frees in `waitMicroseconds`.
        case refused(index: Int, waitMicroseconds: Int64)
        case unavailable(String)
    }

    private final class Pending {
        enum Kind {
            case check(arguments: [[UInt8]])
            case setup
            case scriptLoad
        }
        let kind: Kind
        var done: ((Outcome) -> Void)?
        var timeout: Scheduled<Void>?
        init(_ kind: Kind, done: ((Outcome) -> Void)? = nil) {
            self.kind = kind
            self.done = done
        }
    }

    private enum State {
        case idle
        case connecting
        case loading
        case ready(sha: [UInt8])
    }

    let settings: Configuration.Redis
    private let eventLoop: EventLoop
    private let logger: Logger
    private var state = State.idle
    private var channel: Channel?
    private var pending: [Pending] = []
    /// Checks made while the connection was being made, sent once the script is loaded.
    private var waiting: [(pending: Pending, arguments: [[UInt8]])] = []
    private var pendingHead = 0
    private var retryAt = NIODeadline.uptimeNanoseconds(0)
    private var backoff = RedisRateLimiter.minimumBackoff
    private var lastWarning: NIODeadline?
    private var closed = false
    /// Checks that found Redis unavailable (`fluxgate_ratelimit_backend_errors_total`).
    private(set) var backendErrors = 0

    static let minimumBackoff = TimeAmount.milliseconds(50)
    static let maximumBackoff = TimeAmount.seconds(2)
    /// Checks waiting for replies at most; more is Redis not keeping up: unavailable.
    static let maxPending = 4096
    static let warningInterval = TimeAmount.seconds(60)

    init(settings: Configuration.Redis, eventLoop: EventLoop, logger: Logger) {
        self.settings = settings
        self.eventLoop = eventLoop
        self.logger = logger
    }

    /// `host:port`, for messages (the password is never shown).
    var endpoint: String { "\(settings.host):\(settings.port)" }

    /// One atomic check-and-record of the sliding logs named `keys` with `limits`; `done` runs on
    /// the event loop, once.
    func check(keys: [[UInt8]], limits: [Int], member: [UInt8], _ done: @escaping (Outcome) -> Void) {
        guard pending.count - pendingHead + waiting.count < Self.maxPending else {
            return done(.unavailable("too many checks waiting"))
        }
        if case .idle = state {
            guard NIODeadline.now() >= retryAt else { return done(.unavailable("reconnecting")) }
            connectIfDue()
        }
        var arguments: [[UInt8]] = [Array(String(keys.count).utf8)] + keys
        arguments.append(Array(String(RateLimitStage.window / 1000).utf8))
        arguments += limits.map { Array(String($0).utf8) }
        arguments.append(member)
        let entry = Pending(.check(arguments: arguments), done: done)
        entry.timeout = eventLoop.scheduleTask(in: .milliseconds(Int64(settings.timeoutMs))) { [weak self] in
            self?.timedOut(entry)
        }
        guard case .ready(let sha) = state, let channel else {
            waiting.append((entry, arguments))
            return
        }
        send([Array("EVALSHA".utf8), sha] + arguments, entry, on: channel)
    }

    func close() {
        closed = true
        channel?.close(promise: nil)
    }

    /// Counts an unavailable check and says so at most once a minute.
    func noteUnavailable(_ reason: String, mode: Configuration.Redis.Unavailable) {
        backendErrors += 1
        let now = NIODeadline.now()
        if let lastWarning, now - lastWarning < Self.warningInterval { return }
        lastWarning = now
        logger.warning(
            "Rate-limit Redis unavailable; applying on_unavailable",
            metadata: ["redis": "\(endpoint)", "error": "\(reason)", "on_unavailable": "\(mode.rawValue)"])
    }

    // MARK: Connection

    private func connectIfDue() {
        guard !closed, case .idle = state, NIODeadline.now() >= retryAt else { return }
        state = .connecting
        ClientBootstrap(group: eventLoop)
            .connectTimeout(.milliseconds(Int64(max(settings.timeoutMs, 100))))
            .channelInitializer { [weak self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RedisChannelHandler(client: self))
                }
            }
            .connect(host: settings.host, port: settings.port)
            .assumeIsolated()
            .whenComplete { [weak self] result in
                guard let self else { return }
                switch result {
                case .success(let channel): self.connected(channel)
                case .failure: self.lost()
                }
            }
    }

    private func connected(_ channel: Channel) {
        guard !closed else { return channel.close(promise: nil) }
        self.channel = channel
        state = .loading
        if let password = settings.password {
            let user = settings.username.map { [Array($0.utf8)] } ?? []
            send([Array("AUTH".utf8)] + user + [Array(password.value.utf8)], Pending(.setup), on: channel)
        }
        if settings.database != 0 {
            send([Array("SELECT".utf8), Array(String(settings.database).utf8)], Pending(.setup), on: channel)
        }
        send([Array("SCRIPT".utf8), Array("LOAD".utf8), Array(RedisScript.source.utf8)], Pending(.scriptLoad), on: channel)
        // The script must load in time too, or the connection is as good as down.
        let generation = ObjectIdentifier(channel)
        eventLoop.scheduleTask(in: .milliseconds(Int64(max(settings.timeoutMs, 100)) * 4)) { [weak self] in
            guard let self, case .loading = self.state, let current = self.channel, ObjectIdentifier(current) == generation else {
                return
            }
            current.close(promise: nil)
        }
    }

    /// The connection is gone (or never came): every waiting check is unavailable, and the next
    /// attempt waits a little longer each time.
    fileprivate func lost() {
        channel = nil
        state = .idle
        retryAt = .now() + backoff
        backoff = min(backoff * 2, Self.maximumBackoff)
        let unanswered = Array(pending[pendingHead...]) + waiting.map(\.pending)
        pending = []
        pendingHead = 0
        waiting = []
        for entry in unanswered { answer(entry, .unavailable("connection lost")) }
    }

    private func send(_ command: [[UInt8]], _ entry: Pending, on channel: Channel) {
        var buffer = channel.allocator.buffer(capacity: 256)
        RedisWire.write(command, to: &buffer)
        pending.append(entry)
        channel.writeAndFlush(buffer, promise: nil)
    }

    private func timedOut(_ entry: Pending) {
        guard entry.done != nil else { return }
        answer(entry, .unavailable("no reply within \(settings.timeoutMs) ms"))
        // A Redis that does not answer in time is treated as down until a new connection is
        // ready (one still being made has its own deadline, in `connected`).
        if case .ready = state { channel?.close(promise: nil) }
    }

    private func answer(_ entry: Pending, _ outcome: Outcome) {
        entry.timeout?.cancel()
        entry.timeout = nil
        let done = entry.done
        entry.done = nil
        done?(outcome)
    }

    fileprivate func received(_ reply: RedisReply) {
        guard pendingHead < pending.count else { return }
        let entry = pending[pendingHead]
        pendingHead += 1
        if pendingHead == pending.count {
            pending.removeAll(keepingCapacity: true)
            pendingHead = 0
        }
        switch entry.kind {
        case .setup:
            if case .error = reply { channel?.close(promise: nil) }
        case .scriptLoad:
            guard case .bulk(let sha?) = reply else {
                channel?.close(promise: nil)
                return
            }
            state = .ready(sha: sha)
            backoff = Self.minimumBackoff
            let queued = waiting
            waiting = []
            for (entry, arguments) in queued where entry.done != nil {
                guard let channel else { break }
                send([Array("EVALSHA".utf8), sha] + arguments, entry, on: channel)
            }
        case .check(let arguments):
            checked(entry, arguments: arguments, reply: reply)
        }
    }

    private func checked(_ entry: Pending, arguments: [[UInt8]], reply: RedisReply) {
        switch reply {
        case .array(let values) where values.count == 2:
            let index = values[0].integerValue ?? -1
            let wait = values[1].integerValue ?? 0
            answer(entry, index == 0 ? .admitted : .refused(index: Int(index) - 1, waitMicroseconds: wait))
        case .error(let message) where message.hasPrefix("NOSCRIPT"):
            // The script cache was flushed: this check goes as EVAL (which caches it again).
            guard entry.done != nil, let channel else { return }
            send([Array("EVAL".utf8), Array(RedisScript.source.utf8)] + arguments, entry, on: channel)
        case .error(let message):
            answer(entry, .unavailable(String(message.prefix(200))))
        default:
            answer(entry, .unavailable("unexpected reply"))
        }
    }

    fileprivate func unreadable() {
        channel?.close(promise: nil)
    }
}

/// Bytes from Redis into the client (on the worker's loop).
private final class RedisChannelHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private weak var client: RedisRateLimiter?
    private let reader = RedisReader()

    init(client: RedisRateLimiter?) { self.client = client }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let replies = reader.feed(unwrapInboundIn(data)) else {
            client?.unreadable()
            return
        }
        for reply in replies { client?.received(reply) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        client?.lost()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// The check, atomic in Redis (docs/rate-limits.md "Across hosts"): for each key a sorted set of
/// admission instants (microseconds from Redis's own `TIME`, so host clocks do not matter).
/// KEYS: the logs; ARGV: the window (µs), the limits in the order of KEYS, a member unique to
/// this admission. Returns {0, 0} when admitted (recorded in every log), or {i, µs} when log i is
/// full and a place frees in that many microseconds (nothing recorded).
enum RedisScript {
    static let source = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
        local window = tonumber(ARGV[1])
        for i = 1, #KEYS do
          redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
          local count = redis.call('ZCARD', KEYS[i])
          local limit = tonumber(ARGV[i + 1])
          if count >= limit then
            local oldest = redis.call('ZRANGE', KEYS[i], count - limit, count - limit, 'WITHSCORES')
            return {i, math.max(tonumber(oldest[2]) + window - now, 0)}
          end
        end
        local member = now .. ':' .. ARGV[#KEYS + 2]
        for i = 1, #KEYS do
          redis.call('ZADD', KEYS[i], now, member)
          redis.call('PEXPIRE', KEYS[i], math.floor(window / 1000) + 1000)
        end
        return {0, 0}
        """
}
