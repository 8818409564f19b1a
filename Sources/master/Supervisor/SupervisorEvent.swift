import Common
import ConfigLoading

/// Everything that can happen to the master, as the shell reports it to `SupervisorState`.
/// Results of actions (listeners opened, spawn failed, configuration loaded) come back as events.
enum SupervisorEvent: Sendable {
    /// Begin: open the first listener set.
    case start
    /// The periodic wake-up: deadlines, heartbeats, respawn timers, the watchdog.
    case tick

    case signal(SupervisorSignal)
    case reloadRequested(ReloadTrigger)
    /// The answer to `.loadConfiguration` (ConfigLoader: diagnostics + the configuration when valid).
    case configurationLoaded(ConfigLoadResult)

    /// The answer to `.openListeners`: the address actually bound (port 0 resolved).
    case listenersOpened([ListenerID], BindAddress)
    case listenersFailed([ListenerID], String)

    /// The answer to `.spawn`.
    case workerSpawned(WorkerID, pid: Int32)
    case spawnFailed(WorkerID, String)

    // Messages on a worker's control channel.
    case workerReady(WorkerID, generation: UInt64)
    case configApplied(WorkerID, generation: UInt64)
    case configRejected(WorkerID, generation: UInt64, error: String)
    case heartbeat(WorkerID)
    /// The worker closed its listeners (after `drain`): another may now accept on them.
    case stoppedAccepting(WorkerID)
    /// The worker no longer accepts on a socket it was lent (after `releaseListener`, or when it
    /// could not adopt it).
    case listenerReleased(WorkerID, ListenerID)
    case drained(WorkerID)

    /// The shell reaped the process.
    case workerExited(WorkerID, WorkerExit)
}

/// What the shell must do, in order.
enum SupervisorAction: Sendable, Equatable {
    /// Bind and listen on `address` once per id (SO_REUSEPORT). Port 0: the first socket picks the
    /// port and the rest share it. Answered by `listenersOpened` or `listenersFailed`.
    case openListeners([ListenerID], BindAddress)
    case closeListeners([ListenerID])
    /// posix_spawn a worker with its listeners and a control socketpair, then send it
    /// `applyConfig{generation, configuration}` as its first message.
    case spawn(WorkerLaunch)
    case send(WorkerID, WorkerCommand)
    case kill(WorkerID, KillSignal)
    /// Read and validate the configuration file; answered by `configurationLoaded`.
    case loadConfiguration
    /// One sd_notify(3) datagram (newline-separated assignments).
    case notify(String)
    case log(LogEntry)
    case replyToReloadRequest(ReloadRequestID, ReloadOutcome)
    /// The master is done: close what is left and exit with this status.
    case exit(Int32)
}

/// Everything a new worker process needs.
struct WorkerLaunch: Sendable, Equatable {
    var worker: WorkerID
    var slot: Int
    var generation: UInt64
    var configuration: Configuration
    /// The first is the slot's own socket; more when the worker count shrank (docs/architecture.md
    /// "Reload paths": surplus sockets are handed to surviving slots, never closed while
    /// connections may queue).
    var listeners: [ListenerID]
    /// Start without accepting until `startAccepting`: another worker still accepts on one of
    /// these sockets, and two acceptors on one socket must not overlap.
    var standby: Bool
}

enum WorkerCommand: Sendable, Equatable {
    case applyConfig(generation: UInt64, Configuration)
    case startAccepting
    case drain(deadline: Duration)
    /// Accept on this socket too (its slot has no accepting worker): the shell sends the
    /// descriptor over the worker's hand-over channel, then the control message.
    case adoptListener(ListenerID)
    /// Stop accepting on a socket lent with `adoptListener` (its slot's worker is ready).
    case releaseListener(ListenerID)
}

enum KillSignal: Sendable, Equatable {
    case terminate, kill
}
