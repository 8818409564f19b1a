import CHiredis
import Common
import Logging
import NIOCore
import NIOPosix

/// The worker's client of `rate_limits.redis` (docs/rate-limits.md "Across hosts"): one
/// connection on the worker's event loop, never blocking it. The checks of one event-loop tick
/// go out as one `EVALSHA` of `RedisScript.source` (`RedisCheckBatch`; loaded once per connection
/// with `SCRIPT LOAD`, sent again as `EVAL` after `NOSCRIPT`); replies come in order, so the
/// commands sent and the checks they carry are FIFOs. A check that gets no answer within
/// `timeout_ms` is `unavailable`: the connection is then dropped and made again with backoff. A
/// check made while a connection is being made waits for it (within `timeout_ms`); one made
/// while the client backs off after a failure is `unavailable` at once.
final class RedisRateLimiter {
    enum Outcome {
        case admitted
        /// The check's limit at `index` (0: its first key, 1: its second) is full; a place
        /// frees in `waitMicroseconds`.
        case refused(index: Int, waitMicroseconds: Int64)
        case unavailable(String)
    }

    /// A check not yet answered.
    private struct Check {
        var command: RedisCheckCommand
        /// nil once answered (a late reply after a timeout finds nobody).
        var waiter: RedisCheck.Waiter?
        /// When the check stops waiting (uptime ns).
        var deadline: UInt64
    }

    /// A command sent, waiting for its reply.
    private enum Sent {
        case setup
        case scriptLoad
        /// A batch: the next `count` checks of `inFlight`.
        case checks(count: Int)
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
    /// The connection's handler, which writes the commands (set with `channel`).
    private var handler: RedisChannelHandler?
    private var sent = FIFO<Sent>()
    /// The checks of the batches sent, in order: slots `inFlightHead..<inFlightCount`. Slots are
    /// overwritten once every check was answered, not removed (removing non-trivial elements is a
    /// generic `replaceSubrange`, ~400 instructions per check).
    private var inFlight: [Check] = []
    private var inFlightHead = 0
    private var inFlightCount = 0
    /// Checks not written yet: this tick's, or all those made before the script was loaded.
    private var queued: [Check] = []
    /// The batch being made: its checks are the last ones of `inFlight`; it is written (and its
    /// `.checks` sent) when full or at the flush. Reused (its arrays keep their storage).
    private var batch = RedisCheckBatch()
    /// The last batch of one check written, whose bytes the next one of the same check reuses.
    private var lastLone: RedisCheckBatch.Written?
    /// Bumped when the connection is lost: a loop answering a batch stops if its checks are gone.
    private var generation = 0
    /// Commands of this event-loop tick, written together (docs/rate-limits.md "Across hosts":
    /// pipelined on the connection).
    private var outgoing: ByteBuffer
    private var flushScheduled = false
    /// Made once: `execute` of a stored closure allocates nothing per tick.
    private var flushTask: (() -> Void)?
    /// One timer for every check: the oldest one's deadline (checks are sent in deadline order).
    private var timer: Scheduled<Void>?
    private var retryAt = NIODeadline.uptimeNanoseconds(0)
    private var backoff = RedisRateLimiter.minimumBackoff
    private var lastWarning: NIODeadline?
    private var closed = false
    private var tlsClientContext: TLSContext?
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

    /// One atomic check-and-record of the sliding logs of `command`; `RedisCheck.answer` is
    /// called for `waiter` on the event loop, once.
    func check(_ command: RedisCheckCommand, _ waiter: RedisCheck.Waiter) {
        guard inFlightCount - inFlightHead + queued.count < Self.maxPending else {
            return RedisCheck.answer(waiter, .unavailable("too many checks waiting"), client: self)
        }
        if case .idle = state {
            guard NIODeadline.now() >= retryAt else {
                return RedisCheck.answer(waiter, .unavailable("reconnecting"), client: self)
            }
            connectIfDue()
        }
        let deadline = NIODeadline.now().uptimeNanoseconds + UInt64(settings.timeoutMs) * 1_000_000
        let check = Check(command: command, waiter: waiter, deadline: deadline)
        if timer == nil { arm(at: deadline) }
        guard case .ready(let sha) = state, channel != nil else { return queued.append(check) }
        // Into this tick's batch at once (written at the flush): no copy through `queued`.
        batched(check, sha: sha)
        scheduleFlush()
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
        let tls: TLSContext?
        do throws(TLSError) {
            tls = try tlsContext()
        } catch {
            noteUnavailable("TLS setup failed: \(error)", mode: settings.onUnavailable)
            retryAt = .now() + Self.maximumBackoff
            return
        }
        let settings = self.settings
        state = .connecting
        ClientBootstrap(group: eventLoop)
            .connectTimeout(.milliseconds(Int64(max(settings.timeoutMs, 100))))
            .channelInitializer { [weak self, tls] channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let tls {
                        // rediss://: below the RESP handler, which sees plaintext; commands written
                        // before the handshake ends wait in the TLS handler (docs/rate-limits.md).
                        let connection = try TLSConnection(client: tls, host: settings.host, port: UInt16(settings.port))
                        try sync.addHandler(
                            TLSHandler(
                                connection: connection, eventLoop: channel.eventLoop,
                                handshakeTimeout: .milliseconds(Int64(max(settings.timeoutMs, 100)) * 4)))
                    }
                    // No TLS below it: the handler's writes go straight to the socket.
                    try sync.addHandler(
                        RedisChannelHandler(client: self, output: SocketOutput(channel: channel, direct: tls == nil)))
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

    /// rediss://: the client context, built once (it loads a trust store); nil for redis://.
    private func tlsContext() throws(TLSError) -> TLSContext? {
        guard settings.tls else { return nil }
        if let tlsClientContext { return tlsClientContext }
        let context = try TLSContext.client(trusting: settings.tlsCA)
        tlsClientContext = context
        return context
    }

    private func connected(_ channel: Channel) {
        guard !closed, let handler = try? channel.pipeline.syncOperations.handler(type: RedisChannelHandler.self) else {
            return channel.close(promise: nil)
        }
        self.channel = channel
        self.handler = handler
        state = .loading
        if let password = settings.password {
            let user = settings.username.map { [Array($0.utf8)] } ?? []
            send([Array("AUTH".utf8)] + user + [Array(password.value.utf8)], .setup)
        }
        if settings.database != 0 {
            send([Array("SELECT".utf8), Array(String(settings.database).utf8)], .setup)
        }
        send([Array("SCRIPT".utf8), Array("LOAD".utf8), Array(RedisScript.source.utf8)], .scriptLoad)
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
        handler = nil
        state = .idle
        generation += 1
        retryAt = .now() + backoff
        backoff = min(backoff * 2, Self.maximumBackoff)
        let unanswered = Array(inFlight[inFlightHead..<inFlightCount]) + queued
        sent.removeAll()
        inFlight = []
        inFlightHead = 0
        inFlightCount = 0
        queued = []
        batch.removeAll()
        outgoing.clear()
        for check in unanswered {
            if let waiter = check.waiter { RedisCheck.answer(waiter, .unavailable("connection lost"), client: self) }
        }
    }

    /// A command of the connection's own (AUTH, SELECT, SCRIPT LOAD): hiredis formats it.
    private func send(_ command: [[UInt8]], _ kind: Sent) {
        RedisWire.write(command, to: &outgoing)
        sent.append(kind)
        scheduleFlush()
    }

    /// What is in `outgoing` (and the queued checks, once the script is loaded) is written with
    /// the rest of this tick.
    private func scheduleFlush() {
        guard !flushScheduled else { return }
        flushScheduled = true
        if flushTask == nil { flushTask = { [weak self] in self?.flush() } }
        eventLoop.execute(flushTask!)
    }

    private func flush() {
        flushScheduled = false
        guard let handler else { return }
        if case .ready(let sha) = state { writeQueued(sha: sha) }
        guard outgoing.readableBytes > 0 else { return }
        handler.send(outgoing)
        // Reused: once the socket took the bytes (the usual case) the buffer is ours alone again.
        outgoing.clear()
    }

    /// The queued checks as batches (`RedisCheckBatch.maxChecks` each, or fewer when a reload
    /// changed a key's limit in the middle of a tick).
    private func writeQueued(sha: [UInt8]?) {
        if !queued.isEmpty {
            for check in queued where check.waiter != nil { batched(check, sha: sha) }
            queued.removeAll(keepingCapacity: true)
        }
        if !batch.isEmpty { writeBatch(sha: sha) }
    }

    /// `check` joins the batch being made (the one before it is written first when it is full).
    private func batched(_ check: Check, sha: [UInt8]?) {
        if !batch.add(check.command) {
            writeBatch(sha: sha)
            _ = batch.add(check.command)  // an empty batch takes any check
        }
        if inFlightCount < inFlight.count {
            inFlight[inFlightCount] = check
        } else {
            inFlight.append(check)
        }
        inFlightCount += 1
    }

    private func writeBatch(sha: [UInt8]?) {
        batch.write(sha: sha, to: &outgoing, reusing: &lastLone)
        sent.append(.checks(count: batch.count))
        batch.removeAll()
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
        let reason = "no reply within \(settings.timeoutMs) ms"
        var lateSent = false
        var index = inFlightHead
        while index < inFlightCount, inFlight[index].deadline <= now {
            if let waiter = inFlight[index].waiter {
                inFlight[index].waiter = nil
                lateSent = true
                RedisCheck.answer(waiter, .unavailable(reason), client: self)
            }
            index += 1
        }
        var late: [RedisCheck.Waiter] = []
        queued.removeAll { check in
            guard check.deadline <= now || check.waiter == nil else { return false }
            if let waiter = check.waiter { late.append(waiter) }
            return true
        }
        for waiter in late { RedisCheck.answer(waiter, .unavailable(reason), client: self) }
        if lateSent, case .ready = state { channel?.close(promise: nil) }
        rearm()
    }

    private func rearm() {
        guard timer == nil else { return }
        var next = inFlight[inFlightHead..<inFlightCount].first { $0.waiter != nil }?.deadline
        if let first = queued.first(where: { $0.waiter != nil })?.deadline { next = min(next ?? first, first) }
        if let next { arm(at: next) }
    }

    /// One reply, in order: hiredis's reply object, read where it lies (a batch's integers are
    /// not copied into a `RedisReply`).
    fileprivate func received(_ reply: UnsafeMutablePointer<redisReply>) {
        guard let kind = nextSent() else { return }
        switch kind {
        case .setup:
            if reply.pointee.type == REDIS_REPLY_ERROR { channel?.close(promise: nil) }
        case .scriptLoad:
            guard case .bulk(let sha?) = RedisReply(reply) else {
                channel?.close(promise: nil)
                return
            }
            state = .ready(sha: sha)
            backoff = Self.minimumBackoff
            scheduleFlush()
        case .checks(let count):
            checked(count, reply: reply)
        }
    }

    /// An integer reply read without hiredis (`RedisReader.feed`): a batch of one's answer.
    fileprivate func received(integer value: Int64) {
        guard let kind = nextSent() else { return }
        switch kind {
        case .setup: break
        case .scriptLoad: channel?.close(promise: nil)
        case .checks(let count):
            let start = inFlightHead
            let end = min(start + count, inFlightCount)
            inFlightHead = end
            guard end - start == 1 else { return answerAll(start..<end, .unavailable("unexpected reply")) }
            answerOne(at: start, Self.outcome(value))
        }
    }

    /// The command the next reply answers (replies come in order).
    private func nextSent() -> Sent? {
        // When this drains the queue the timer stays armed: a Scheduled task per check cost ~5,000
        // instructions (made and cancelled); firing with nothing late, it arms again for the
        // oldest check only.
        sent.popFirst()
    }

    private func answerOne(at index: Int, _ outcome: Outcome) {
        guard let waiter = inFlight[index].waiter else { return compactInFlight() }
        inFlight[index].waiter = nil
        let generation = self.generation
        RedisCheck.answer(waiter, outcome, client: self)
        if generation == self.generation { compactInFlight() }
    }

    /// Every check of `range` not answered yet gets `outcome`.
    private func answerAll(_ range: Range<Int>, _ outcome: Outcome) {
        let generation = self.generation
        for index in range {
            guard generation == self.generation else { return }
            guard let waiter = inFlight[index].waiter else { continue }
            inFlight[index].waiter = nil
            RedisCheck.answer(waiter, outcome, client: self)
        }
        guard generation == self.generation else { return }
        compactInFlight()
    }

    /// A batch's reply: one integer per check (`RedisCheckBatch.outcome`), or an error for all.
    private func checked(_ count: Int, reply: UnsafeMutablePointer<redisReply>) {
        let start = inFlightHead
        let end = min(start + count, inFlightCount)
        inFlightHead = end
        let value = reply.pointee
        if value.type == REDIS_REPLY_INTEGER, end - start == 1 {
            // A batch of one: its integer alone.
            return answerOne(at: start, Self.outcome(Int64(value.integer)))
        }
        if value.type == REDIS_REPLY_ARRAY, value.elements == end - start {
            let generation = self.generation
            for offset in 0..<(end - start) {
                // An answer can start another request's check, never end this connection's
                // FIFOs, except through `lost` (then every check left was answered there).
                guard generation == self.generation else { return }
                let index = start + offset
                guard let waiter = inFlight[index].waiter else { continue }
                inFlight[index].waiter = nil
                let element = value.element[offset]!.pointee
                let outcome =
                    element.type == REDIS_REPLY_INTEGER
                    ? Self.outcome(Int64(element.integer)) : .unavailable("unexpected reply")
                RedisCheck.answer(waiter, outcome, client: self)
            }
            guard generation == self.generation else { return }
            compactInFlight()
            return
        }
        let message: String
        switch RedisReply(reply) {
        case .error(let text) where text.hasPrefix("NOSCRIPT") && channel != nil:
            // The script cache was flushed: these checks go again as EVAL (which caches it again).
            let again = inFlight[start..<end].filter { $0.waiter != nil }
            compactInFlight()
            // This tick's batch (after the failed one in `inFlight`) goes first, as it is.
            if !batch.isEmpty, case .ready(let sha) = state { writeBatch(sha: sha) }
            let waiting = queued
            queued = again
            writeQueued(sha: nil)
            queued = waiting
            scheduleFlush()
            return
        case .error(let text): message = String(text.prefix(200))
        default: message = "unexpected reply"
        }
        answerAll(start..<end, .unavailable(message))
    }

    private static func outcome(_ value: Int64) -> Outcome {
        switch RedisCheckBatch.outcome(value) {
        case .admitted: return .admitted
        case .refused(let index, let wait): return .refused(index: index, waitMicroseconds: wait)
        }
    }

    /// Answered checks leave the FIFO's front: all at once when none is left (the usual case), or
    /// in one move once they are most of a large array.
    private func compactInFlight() {
        if inFlightHead == inFlightCount {
            inFlightHead = 0
            inFlightCount = 0
        } else if inFlightHead > 1024, inFlightHead * 2 > inFlightCount {
            inFlight.removeFirst(inFlightHead)
            inFlightCount -= inFlightHead
            inFlightHead = 0
        }
    }

    fileprivate func unreadable() {
        channel?.close(promise: nil)
    }
}

/// Bytes from Redis into the client, and the client's commands out (on the worker's loop). The
/// commands go straight to the socket (`SocketOutput`): a `writeAndFlush` through the pipeline
/// cost ~3,200 instructions per batch, at c=1 one per check.
private final class RedisChannelHandler: ChannelInboundHandler, SocketOutputOwner {
    typealias InboundIn = ByteBuffer

    private weak var client: RedisRateLimiter?
    private let reader = RedisReader()
    var output: SocketOutput
    private var context: ChannelHandlerContext?

    init(client: RedisRateLimiter?, output: SocketOutput) {
        self.client = client
        self.output = output
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    /// Writes and flushes `bytes` (once the socket took them, the caller's buffer is its own again).
    func send(_ bytes: ByteBuffer) {
        guard let context else { return }
        writeOutput(bytes, context: context)
        flushOutput(context: context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let readable = reader.feed(
            unwrapInboundIn(data), integer: { client?.received(integer: $0) }, each: { client?.received($0) })
        if !readable { client?.unreadable() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        client?.lost()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
