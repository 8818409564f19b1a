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

    /// A command waiting for its reply (replies come in order: `pending` is a FIFO).
    private struct Pending {
        enum Kind {
            case check(RedisCheckCommand)
            case setup
            case scriptLoad
        }
        let kind: Kind
        var done: ((Outcome) -> Void)?
        /// When a check stops waiting (uptime ns); 0 for the connection's own commands.
        var deadline: UInt64 = 0
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
    private var pendingHead = 0
    /// Checks made while the connection was being made, sent once the script is loaded.
    private var waiting: [Pending] = []
    /// Commands of this event-loop tick, written together (docs/rate-limits.md "Across hosts":
    /// pipelined on the connection).
    private var outgoing: ByteBuffer
    private var flushScheduled = false
    /// One timer for every check: the oldest one's deadline (checks are sent in deadline order).
    private var timer: Scheduled<Void>?
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
        self.outgoing = ByteBufferAllocator().buffer(capacity: 4096)
    }

    /// `host:port`, for messages (the password is never shown).
    var endpoint: String { "\(settings.host):\(settings.port)" }

    /// One atomic check-and-record of the sliding logs named `keys` with `limits`; `done` runs on
    /// the event loop, once.
    func check(_ command: RedisCheckCommand, _ done: @escaping (Outcome) -> Void) {
        guard pending.count - pendingHead + waiting.count < Self.maxPending else {
            return done(.unavailable("too many checks waiting"))
        }
        if case .idle = state {
            guard NIODeadline.now() >= retryAt else { return done(.unavailable("reconnecting")) }
            connectIfDue()
        }
        let deadline = NIODeadline.now().uptimeNanoseconds + UInt64(settings.timeoutMs) * 1_000_000
        let entry = Pending(kind: .check(command), done: done, deadline: deadline)
        if timer == nil { arm(at: deadline) }
        guard case .ready(let sha) = state, channel != nil else {
            waiting.append(entry)
            return
        }
        command.write(sha: sha, to: &outgoing)
        enqueue(entry)
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
            send([Array("AUTH".utf8)] + user + [Array(password.value.utf8)], Pending(kind: .setup))
        }
        if settings.database != 0 {
            send([Array("SELECT".utf8), Array(String(settings.database).utf8)], Pending(kind: .setup))
        }
        send([Array("SCRIPT".utf8), Array("LOAD".utf8), Array(RedisScript.source.utf8)], Pending(kind: .scriptLoad))
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
        let unanswered = Array(pending[pendingHead...]) + waiting
        pending = []
        pendingHead = 0
        waiting = []
        outgoing.clear()
        for entry in unanswered { entry.done?(.unavailable("connection lost")) }
    }

    /// A command of the connection's own (AUTH, SELECT, SCRIPT LOAD): hiredis formats it.
    private func send(_ command: [[UInt8]], _ entry: Pending) {
        RedisWire.write(command, to: &outgoing)
        enqueue(entry)
    }

    /// `entry`'s command is in `outgoing`: it is written with the others of this tick.
    private func enqueue(_ entry: Pending) {
        pending.append(entry)
        guard !flushScheduled else { return }
        flushScheduled = true
        eventLoop.execute { [weak self] in self?.flush() }
    }

    private func flush() {
        flushScheduled = false
        guard let channel, outgoing.readableBytes > 0 else { return }
        channel.writeAndFlush(outgoing, promise: nil)
        // Reused: once the socket took the bytes (the usual case) the buffer is ours alone again.
        outgoing.clear()
    }

    private func arm(at deadline: UInt64) {
        timer = eventLoop.scheduleTask(deadline: .uptimeNanoseconds(deadline)) { [weak self] in self?.timerFired() }
    }

    /// The oldest check's deadline came: the checks past theirs are unavailable, and a Redis that
    /// did not answer in time is treated as down until a new connection is ready (one still
    /// being made has its own deadline, in `connected`).
    private func timerFired() {
        timer = nil
        let now = NIODeadline.now().uptimeNanoseconds
        var lateSent = false
        for index in pendingHead..<pending.count where pending[index].deadline != 0 && pending[index].done != nil {
            guard pending[index].deadline <= now else { break }
            let done = pending[index].done
            pending[index].done = nil
            done?(.unavailable("no reply within \(settings.timeoutMs) ms"))
            lateSent = true
        }
        while let first = waiting.first, first.deadline <= now {
            waiting.removeFirst()
            first.done?(.unavailable("no reply within \(settings.timeoutMs) ms"))
        }
        if lateSent, case .ready = state { channel?.close(promise: nil) }
        rearm()
    }

    private func rearm() {
        guard timer == nil else { return }
        var next = pending[pendingHead...].first { $0.deadline != 0 && $0.done != nil }?.deadline
        if let first = waiting.first?.deadline { next = min(next ?? first, first) }
        if let next { arm(at: next) }
    }

    fileprivate func received(_ reply: RedisReply) {
        guard pendingHead < pending.count else { return }
        let entry = pending[pendingHead]
        pendingHead += 1
        if pendingHead == pending.count {
            pending.removeAll(keepingCapacity: true)
            pendingHead = 0
            // The timer stays armed: a Scheduled task per check cost ~5,000 instructions (made
            // and cancelled); firing with nothing late, it arms again for the oldest check only.
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
            for entry in queued where entry.done != nil {
                guard case .check(let command) = entry.kind else { continue }
                command.write(sha: sha, to: &outgoing)
                enqueue(entry)
            }
        case .check(let command):
            checked(entry, command: command, reply: reply)
        }
    }

    private func checked(_ entry: Pending, command: RedisCheckCommand, reply: RedisReply) {
        guard let done = entry.done else { return }  // timed out already
        switch reply {
        case .array(let values) where values.count == 2:
            let index = values[0].integerValue ?? -1
            let wait = values[1].integerValue ?? 0
            done(index == 0 ? .admitted : .refused(index: Int(index) - 1, waitMicroseconds: wait))
        case .error(let message) where message.hasPrefix("NOSCRIPT"):
            // The script cache was flushed: this check goes as EVAL (which caches it again).
            guard channel != nil else { return done(.unavailable("connection lost")) }
            command.write(sha: nil, to: &outgoing)
            enqueue(entry)
        case .error(let message):
            done(.unavailable(String(message.prefix(200))))
        default:
            done(.unavailable("unexpected reply"))
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
    static let bytes = Array(source.utf8)
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
