import Common

/// A point on the monotonic clock in nanoseconds from an arbitrary origin: CLOCK_MONOTONIC in the
/// shell, zero-based in tests. The supervisor never reads a clock; every event comes with one.
struct Instant: Comparable, Hashable, Sendable, CustomStringConvertible {
    var nanoseconds: UInt64

    init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    static func seconds(_ s: Double) -> Instant { Instant(nanoseconds: UInt64(s * 1e9)) }
    static let zero = Instant(nanoseconds: 0)

    /// What systemd's `MONOTONIC_USEC=` wants (sd_notify(3): CLOCK_MONOTONIC in microseconds).
    var microseconds: UInt64 { nanoseconds / 1_000 }

    static func < (a: Instant, b: Instant) -> Bool { a.nanoseconds < b.nanoseconds }
    static func + (a: Instant, d: Duration) -> Instant { Instant(nanoseconds: a.nanoseconds &+ d.nanoseconds) }
    static func - (a: Instant, b: Instant) -> Duration {
        a >= b ? .nanoseconds(Int64(a.nanoseconds - b.nanoseconds)) : .zero
    }

    var description: String { "t=\(Double(nanoseconds) / 1e9)s" }
}

extension Duration {
    var nanoseconds: UInt64 {
        let (s, atto) = components
        return s < 0 ? 0 : UInt64(s) * 1_000_000_000 + UInt64(atto / 1_000_000_000)
    }
    var milliseconds: UInt64 { nanoseconds / 1_000_000 }
}

/// One worker process instance as the supervisor knows it (independent of the pid, which the
/// shell maps). A replacement on the same slot is a new `WorkerID`.
struct WorkerID: Hashable, Comparable, Sendable, CustomStringConvertible {
    let raw: Int
    static func < (a: WorkerID, b: WorkerID) -> Bool { a.raw < b.raw }
    var description: String { "worker#\(raw)" }
}

/// One listening socket the master owns (the shell maps it to a descriptor).
struct ListenerID: Hashable, Comparable, Sendable, CustomStringConvertible {
    let raw: Int
    static func < (a: ListenerID, b: ListenerID) -> Bool { a.raw < b.raw }
    var description: String { "listener#\(raw)" }
}

/// An operator's `fluxgate reload` waiting for the outcome (one connection on the control socket).
struct ReloadRequestID: Hashable, Sendable {
    let raw: Int
}

/// Timeouts and limits of supervision; the defaults are those docs/architecture.md "The supervisor
/// is a state machine" and "Crashes, hangs, shutdown" promise.
struct SupervisorPolicy: Sendable, Equatable {
    /// A spawned worker has this long to report ready (first start and new generations).
    var startTimeout: Duration = .seconds(15)
    /// Every worker has this long to acknowledge an `applyConfig`.
    var configAckTimeout: Duration = .seconds(10)
    /// A ready worker silent this long is killed and replaced (it heartbeats every second).
    var heartbeatTimeout: Duration = .seconds(10)
    /// Shutdown on SIGTERM/SIGINT, and the old generation after a graceful restart.
    var drainTimeout: Duration = .seconds(30)
    /// SIGQUIT: long-lived streams get this long.
    var longDrainTimeout: Duration = .seconds(600)
    /// After a drain deadline the worker gets this long to exit on its own before SIGKILL.
    var killGrace: Duration = .seconds(1)
    /// A second stop signal (or a failed start): SIGTERM now, SIGKILL after this.
    var fastStopTimeout: Duration = .seconds(5)
    /// Respawn delays after the first immediate one: base, 2·base, 4·base … capped.
    var respawnBackoffBase: Duration = .seconds(1)
    var respawnBackoffCap: Duration = .seconds(30)
    /// A worker that ran this long resets its slot's failure streak.
    var stableAfter: Duration = .seconds(10)
    /// `WATCHDOG_USEC` when systemd set it; `WATCHDOG=1` is sent every half interval.
    var watchdogInterval: Duration?

    init() {}
}

/// How a worker process ended (decoded wait status).
enum WorkerExit: Equatable, Sendable, CustomStringConvertible {
    case exited(Int32)
    case signalled(Int32)

    init(_ status: ExitStatus) {
        if let code = status.exitCode { self = .exited(code) } else { self = .signalled(status.signal ?? 0) }
    }

    /// Exit status 78 is the worker saying "this configuration cannot run": never respawned.
    var isConfigRejection: Bool { self == .exited(FluxgateExit.configRejected.rawValue) }

    var description: String {
        switch self {
        case .exited(let code): return "exit status \(code)"
        case .signalled(let signal): return "killed by \(Signals.name(signal))"
        }
    }
}

/// The signals the supervisor acts on (SIGCHLD is the shell's business: it becomes `workerExited`).
enum SupervisorSignal: Sendable, Equatable {
    case hangup, terminate, interrupt, quit

    var name: String {
        switch self {
        case .hangup: return "SIGHUP"
        case .terminate: return "SIGTERM"
        case .interrupt: return "SIGINT"
        case .quit: return "SIGQUIT"
        }
    }
}

/// What started a reload.
enum ReloadTrigger: Sendable, Equatable {
    case signal
    case fileChanged
    case operatorRequest(ReloadRequestID)

    var label: String {
        switch self {
        case .signal: return "SIGHUP"
        case .fileChanged: return "file change"
        case .operatorRequest: return "fluxgate reload"
        }
    }
}

/// The answer a waiting `fluxgate reload` gets.
enum ReloadOutcome: Sendable, Equatable, CustomStringConvertible {
    case applied(generation: UInt64)
    case unchanged(generation: UInt64)
    /// Every validation problem, one line each.
    case rejected([String])
    /// Valid, but the new generation did not come up: the old one keeps serving.
    case failed(String)
    /// The master is shutting down.
    case aborted(String)

    var succeeded: Bool {
        switch self {
        case .applied, .unchanged: return true
        case .rejected, .failed, .aborted: return false
        }
    }

    var description: String {
        switch self {
        case .applied(let g): return "configuration applied (generation \(g))"
        case .unchanged(let g): return "configuration unchanged (generation \(g))"
        case .rejected(let problems): return (["configuration rejected; keeping previous settings:"] + problems).joined(separator: "\n")
        case .failed(let why): return "reload failed; keeping previous generation: \(why)"
        case .aborted(let why): return "reload aborted: \(why)"
        }
    }
}

/// A log line the shell writes: message and metadata in order. `quoted` values are always quoted
/// (Fluxgate's `status="applied"`).
struct LogEntry: Sendable, Equatable {
    enum Level: Sendable, Equatable { case debug, info, warning, error }
    enum Value: Sendable, Equatable {
        case plain(String)
        case quoted(String)
    }

    var level: Level
    var message: String
    var metadata: [(String, Value)]

    init(_ level: Level, _ message: String, _ metadata: [(String, Value)] = []) {
        self.level = level
        self.message = message
        self.metadata = metadata
    }

    static func == (a: LogEntry, b: LogEntry) -> Bool {
        a.level == b.level && a.message == b.message
            && a.metadata.map(\.0) == b.metadata.map(\.0) && a.metadata.map(\.1) == b.metadata.map(\.1)
    }
}
