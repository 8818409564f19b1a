import Common
import NIOCore

/// What happened on the worker's control channel or in its data plane, as `WorkerControlState`
/// sees it. The shell (`ControlChannelHandler`) turns bytes, timers and future completions into
/// these.
enum WorkerControlEvent: Equatable, Sendable {
    /// One complete message from the master.
    case messageReceived(ControlMessage)
    /// The control channel closed (EOF or error): the master is gone.
    case channelClosed
    /// The channel's bytes are not a valid control frame.
    case protocolError(String)
    /// The shell's periodic wake-up (heartbeats).
    case tick
    /// The data plane began accepting after `startAccepting` (it adopted the listening sockets).
    case listenerAdopted
    /// The data plane could not begin accepting after `startAccepting`.
    case listenerAdoptionFailed(String)
    /// After a drain began: every listener is closed, another worker may accept on the sockets.
    case listenersClosed
    /// After a drain began: every connection finished or the drain deadline passed.
    case drainFinished
    /// The data plane applied generation `generation` (after `.apply`): new requests use it.
    case configurationApplied(generation: UInt64)
    /// The data plane could not apply generation `generation` and kept the previous one (the
    /// master logs `reason`).
    case configurationFailed(generation: UInt64, reason: String)
    /// The data plane could not accept on the lent socket `listener` (after `.adoptListener`).
    case borrowedListenerFailed(listener: Int, reason: String)
    /// The data plane closed the lent socket `listener` (after `.releaseListener`).
    case borrowedListenerReleased(listener: Int)
}

/// What the shell does for `WorkerControlState`, in the order given.
enum WorkerControlAction: Equatable, Sendable {
    /// Swap the data plane's configuration snapshot (in-flight requests keep theirs); report
    /// back with `configurationApplied` or `configurationFailed`.
    case apply(Configuration, generation: UInt64)
    /// Write a message to the master (dropped if the channel is already closed).
    case send(ControlMessage)
    /// Start the data plane's servers on the inherited listening sockets.
    case startAccepting
    /// Close the listeners (lent ones too) and let in-flight requests finish for at most
    /// `deadlineMs`; report back with `listenersClosed` and `drainFinished`.
    case drain(deadlineMs: UInt64)
    /// Take the lent socket `listener` from the hand-over channel and accept on it; report back
    /// only a failure (`borrowedListenerFailed`).
    case adoptListener(Int)
    /// Take the lent socket `listener` from the hand-over channel and close it unused.
    case discardListener(Int)
    /// Stop accepting on the lent socket `listener` (its connections go on); report back with
    /// `borrowedListenerReleased`.
    case releaseListener(Int)
    case closeChannel
    case log(WorkerControlLog)
    case exit(FluxgateExit)
}

/// Log lines the state machine asks for; the shell chooses level and wording.
enum WorkerControlLog: Equatable, Sendable {
    case unexpectedMessage(ControlMessage.Kind)
    case masterGone
    case protocolError(String)
    case startAcceptingFailed(String)
    case borrowedListenerFailed(String)
}

/// The worker's side of the master–worker control protocol
/// (docs/architecture.md "The control protocol") as a pure value, like the supervisor
/// (docs/architecture.md "The supervisor is a state machine"): `handle(event, now:)` returns the
/// actions `ControlChannelHandler` performs. No I/O and no clock reads; heartbeat timing is
/// computed from the `now` passed in.
///
/// Contract with the master (docs/architecture.md "The control protocol"): `applyConfig` is
/// answered once the data plane has applied it (`configApplied`) or failed to (`configRejected`
/// with the reason, the previous configuration staying in force); a heartbeat every second while
/// the channel is open, draining included; `drain` is answered with `stoppedAccepting` then
/// `drained`, then exit 0; a lent socket (`adoptListener`) is accepted on until `releaseListener`,
/// answered `listenerReleased` once closed (at once when the worker does not hold it; a draining
/// worker closes it unused); EOF means the master is gone: drain with `orphanDrainMs` and exit 0
/// without a word.
struct WorkerControlState {
    enum Listening: Equatable {
        /// Started with `--standby`: the previous acceptor of the sockets is still draining.
        case standby
        case starting
        case accepting
        /// A drain closed (or is closing) the listeners; they never reopen.
        case closed
    }

    enum Phase: Equatable {
        case serving
        /// `toldByMaster` is false when the master vanished: then nothing is reported.
        case draining(toldByMaster: Bool)
        case exited(FluxgateExit)
    }

    static let heartbeatInterval: TimeAmount = .seconds(1)
    /// Drain deadline when the master vanishes without saying anything.
    static let orphanDrainMs: UInt64 = 30_000

    // Read by the shell and the tests, changed only by `handle`.
    private(set) var phase: Phase = .serving
    private(set) var listening: Listening
    /// `nil` once the channel is closed: nobody is listening for heartbeats any more.
    private(set) var nextHeartbeat: NIODeadline?
    /// Lent sockets the data plane accepts on (or is adopting), by the master's number.
    private(set) var borrowed: Set<Int> = []
    private var output: [WorkerControlAction] = []

    /// `main` has sent `ready` for the initial `applyConfig`.
    init(standby: Bool, startedAt: NIODeadline) {
        self.listening = standby ? .standby : .accepting
        self.nextHeartbeat = startedAt + Self.heartbeatInterval
    }

    mutating func handle(_ event: WorkerControlEvent, now: NIODeadline) -> [WorkerControlAction] {
        output = []
        if case .exited = phase { return [] }
        switch event {
        case .messageReceived(let message): received(message)
        case .channelClosed: channelClosed()
        case .protocolError(let description):
            output += [.log(.protocolError(description)), .closeChannel]
        case .tick: tick(now: now)
        case .listenerAdopted:
            if listening == .starting { listening = .accepting }
        case .listenerAdoptionFailed(let description):
            output.append(.log(.startAcceptingFailed(description)))
            exit(.failure)
        case .listenersClosed:
            if case .draining(toldByMaster: true) = phase { send(.stoppedAccepting) }
        case .drainFinished: drainFinished()
        case .configurationApplied(let applied):
            send(.configApplied, gen: applied)
        case .configurationFailed(let failed, let reason):
            send(.configRejected, gen: failed, body: .init(error: reason))
        case .borrowedListenerFailed(let listener, let reason):
            guard borrowed.remove(listener) != nil else { break }
            output.append(.log(.borrowedListenerFailed(reason)))
            send(.listenerReleased, body: .init(listener: listener))
        case .borrowedListenerReleased(let listener):
            if case .serving = phase { send(.listenerReleased, body: .init(listener: listener)) }
        }
        return output
    }

    private mutating func received(_ message: ControlMessage) {
        switch message.type {
        case .applyConfig:
            guard let configuration = message.body.config else {
                send(.configRejected, gen: message.gen, body: .init(error: "applyConfig without a configuration"))
                return
            }
            output.append(.apply(configuration, generation: message.gen))
        case .startAccepting:
            // Accepting, starting or drained: the master's word changes nothing.
            guard listening == .standby else { return }
            listening = .starting
            output.append(.startAccepting)
        case .drain:
            drain(deadlineMs: message.body.deadlineMs ?? Self.orphanDrainMs, toldByMaster: true)
        case .adoptListener:
            guard let listener = message.body.listener else { return }
            guard case .serving = phase else {
                // Its listeners are closed for good: the socket goes back unused.
                output.append(.discardListener(listener))
                send(.listenerReleased, body: .init(listener: listener))
                return
            }
            borrowed.insert(listener)
            output.append(.adoptListener(listener))
        case .releaseListener:
            guard let listener = message.body.listener, case .serving = phase else { return }  // a drain closes it
            if borrowed.remove(listener) != nil {
                output.append(.releaseListener(listener))
            } else {
                send(.listenerReleased, body: .init(listener: listener))
            }
        case .ready, .configApplied, .configRejected, .heartbeat, .drained, .stoppedAccepting, .listenerReleased:
            output.append(.log(.unexpectedMessage(message.type)))
        }
    }

    private mutating func channelClosed() {
        nextHeartbeat = nil
        switch phase {
        case .serving:
            output.append(.log(.masterGone))
            drain(deadlineMs: Self.orphanDrainMs, toldByMaster: false)
        case .draining, .exited:
            break
        }
    }

    /// Fixed delay, as NIO's repeated task: the next heartbeat is due a full interval after this one.
    private mutating func tick(now: NIODeadline) {
        guard let due = nextHeartbeat, now >= due else { return }
        nextHeartbeat = now + Self.heartbeatInterval
        send(.heartbeat)
    }

    /// Only the first drain counts, whoever asked: a second `drain` is not answered.
    private mutating func drain(deadlineMs: UInt64, toldByMaster: Bool) {
        guard case .serving = phase else { return }
        phase = .draining(toldByMaster: toldByMaster)
        listening = .closed
        borrowed = []
        output.append(.drain(deadlineMs: deadlineMs))
    }

    private mutating func drainFinished() {
        guard case .draining(let toldByMaster) = phase else { return }
        if toldByMaster { send(.drained) }
        exit(.success)
    }

    private mutating func exit(_ code: FluxgateExit) {
        phase = .exited(code)
        nextHeartbeat = nil
        output.append(.exit(code))
    }

    private mutating func send(_ kind: ControlMessage.Kind, gen: UInt64 = 0, body: ControlMessage.Body = .init()) {
        output.append(.send(ControlMessage(type: kind, gen: gen, body: body)))
    }
}
