/// Descriptor numbers a worker inherits from the master (a contract between the two executables).
public enum WorkerDescriptors {
    /// The slot's listening socket (SO_REUSEPORT, already bound and listening).
    public static let listener: CInt = 3
    /// The worker's end of its control socketpair.
    public static let control: CInt = 4
    /// The shared in-flight counter segment (`InFlightSegment`), when the master created one.
    public static let inFlight: CInt = 5
    /// The worker's end of its hand-over socketpair: listening sockets lent to the worker while
    /// another slot has none (`adoptListener`) arrive here as SCM_RIGHTS messages.
    public static let handover: CInt = 6
    /// The shared metrics segment (`MetricsSegment`), when the master created one; the worker's
    /// region is `--metrics-cell C`.
    public static let metrics: CInt = 7
    /// Further listening sockets of the slot (after the worker count shrank), from here upwards;
    /// the worker is told how many with `--listeners N` (N counts fd 3 too).
    public static let firstExtraListener: CInt = 8
}

/// One message on a master–worker control channel (docs/architecture.md "The control protocol"):
/// `{"v":1,"type":…,"gen":…,"body":…}`. Every kind is sent by one side and read by the other;
/// the channel is ordered, so replies need no sequence numbers.
public struct ControlMessage: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable {
        // master -> worker
        /// The configuration of generation `gen` (always the first message).
        case applyConfig
        /// A worker started with `--standby` begins accepting (the previous acceptor of its
        /// sockets has stopped: two processes never accept on one socket at once).
        case startAccepting
        /// Stop accepting, finish in-flight requests within `deadlineMs`, exit.
        case drain
        /// Accept on the listening socket `listener` too, whose descriptor comes on the hand-over
        /// channel (fd 6) just before this message: its slot has no worker right now.
        case adoptListener
        /// Stop accepting on the borrowed socket `listener` (its slot's worker is ready).
        case releaseListener
        // worker -> master
        /// The first configuration is applied and the worker serves (or waits in standby).
        case ready
        /// Generation `gen` is applied: every request whose head arrives from now on uses it.
        case configApplied
        /// Generation `gen` could not be applied (`error` says why); the previous one stays.
        case configRejected
        /// Every second: the worker's event loop is alive.
        case heartbeat
        /// After `drain`: the worker closed its listeners; another worker may take them over.
        case stoppedAccepting
        /// After `drain`: every connection finished or the deadline passed; the worker exits.
        case drained
        /// After `releaseListener` (or a failed `adoptListener`): the worker no longer accepts on
        /// the borrowed socket `listener`.
        case listenerReleased
    }

    public struct Body: Sendable, Codable, Equatable {
        public var config: Configuration?
        public var error: String?
        /// Milliseconds the worker has to finish in-flight work after `drain`.
        public var deadlineMs: UInt64?
        /// The master's number for a listening socket (`adoptListener`, `releaseListener`,
        /// `listenerReleased`).
        public var listener: Int?

        public init(config: Configuration? = nil, error: String? = nil, deadlineMs: UInt64? = nil, listener: Int? = nil) {
            self.config = config
            self.error = error
            self.deadlineMs = deadlineMs
            self.listener = listener
        }
    }

    public var v: Int
    public var type: Kind
    /// The configuration generation the message is about (0 when it is about none).
    public var gen: UInt64
    public var body: Body

    public init(type: Kind, gen: UInt64 = 0, body: Body = Body()) {
        self.v = 1
        self.type = type
        self.gen = gen
        self.body = body
    }
}
