/// Descriptor numbers a worker inherits from the master (a contract between the two executables).
public enum WorkerDescriptors {
    /// The slot's listening socket (SO_REUSEPORT, already bound and listening).
    public static let listener: CInt = 3
    /// The worker's end of its control socketpair.
    public static let control: CInt = 4
    /// The shared in-flight counter segment (`InFlightSegment`), when the master created one.
    public static let inFlight: CInt = 5
    /// Further listening sockets of the slot (after the worker count shrank), from here upwards;
    /// the worker is told how many with `--listeners N` (N counts fd 3 too).
    public static let firstExtraListener: CInt = 6
}

/// One message on a master–worker control channel (docs/architecture.md "The control protocol"):
/// `{"v":1,"type":…,"seq":…,"gen":…,"body":…}`. Requests carry `seq`; replies carry `ack`
/// with the `seq` they answer.
public struct ControlMessage: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable {
        // master -> worker
        case applyConfig, drain, stop, reopenLogs
        /// A worker started with `--standby` begins accepting (the previous acceptor of its
        /// sockets has stopped: two processes never accept on one socket at once).
        case startAccepting
        // worker -> master
        case hello, ready, configApplied, configRejected, heartbeat, drained
        /// After `drain`: the worker closed its listeners; another worker may take them over.
        case stoppedAccepting
    }

    public struct Body: Sendable, Codable, Equatable {
        public var config: Configuration?
        public var pid: Int32?
        public var slot: Int?
        public var error: String?
        public var inflight: Int?
        public var connections: Int?
        /// Milliseconds the worker has to finish in-flight work after `drain`.
        public var deadlineMs: UInt64?

        public init(config: Configuration? = nil, pid: Int32? = nil, slot: Int? = nil, error: String? = nil,
                    inflight: Int? = nil, connections: Int? = nil, deadlineMs: UInt64? = nil) {
            self.config = config
            self.pid = pid
            self.slot = slot
            self.error = error
            self.inflight = inflight
            self.connections = connections
            self.deadlineMs = deadlineMs
        }
    }

    public var v: Int
    public var type: Kind
    public var seq: UInt64
    public var ack: UInt64?
    public var gen: UInt64
    public var body: Body

    public init(type: Kind, seq: UInt64, ack: UInt64? = nil, gen: UInt64, body: Body = Body()) {
        self.v = 1
        self.type = type
        self.seq = seq
        self.ack = ack
        self.gen = gen
        self.body = body
    }
}
