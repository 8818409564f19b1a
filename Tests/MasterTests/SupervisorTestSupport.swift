import Common
import ConfigLoading
@testable import FluxgateMaster

/// Drives a `SupervisorState` with explicit instants (no clock, no sleeping) and keeps every
/// action it returned.
struct SupervisorHarness {
    var state: SupervisorState
    var now: Instant = .zero

    init(workers: Int = 2, address: String = "127.0.0.1:8080", policy: SupervisorPolicy = SupervisorPolicy()) {
        state = SupervisorState(
            configuration: Self.configuration(workers: workers, address: address),
            configPath: "/etc/fluxgate/fluxgate.yaml", policy: policy, onlineCPUs: 2)
    }

    static func configuration(workers: Int = 2, address: String = "127.0.0.1:8080", maxConnections: UInt32 = 1024) -> Configuration {
        Configuration(
            server: .init(
                bindAddress: BindAddress(parsing: address)!, maxConnections: maxConnections,
                workers: .count(workers)))
    }

    @discardableResult
    mutating func handle(_ event: SupervisorEvent, at seconds: Double? = nil) -> [SupervisorAction] {
        if let seconds { now = .seconds(seconds) }
        return state.handle(event, now: now)
    }

    @discardableResult
    mutating func tick(at seconds: Double) -> [SupervisorAction] { handle(.tick, at: seconds) }

    /// Start, open the listeners, spawn and ready every worker: the state right after `READY=1`.
    /// Returns the workers (by slot) and the listeners.
    @discardableResult
    mutating func startRunning() -> (workers: [WorkerID], listeners: [ListenerID]) {
        let opened = handle(.start)
        guard case .openListeners(let ids, _)? = opened.first else { fatalError("start did not open listeners") }
        let spawned = handle(.listenersOpened(ids, state.current.address)).spawns
        for (index, launch) in spawned.enumerated() { handle(.workerSpawned(launch.worker, pid: 1000 + Int32(index))) }
        for launch in spawned { handle(.workerReady(launch.worker, generation: 1)) }
        return (spawned.map(\.worker), ids)
    }

    /// Answers `.loadConfiguration` with a valid configuration.
    @discardableResult
    mutating func load(_ configuration: Configuration) -> [SupervisorAction] {
        handle(.configurationLoaded(ConfigLoadResult(configuration: configuration, diagnostics: [])))
    }

    /// Answers `.loadConfiguration` with `configuration`, whose new bind address needs new sockets,
    /// and answers their opening: returns the candidate workers spawned on them.
    mutating func loadMoved(_ configuration: Configuration, at seconds: Double) -> [WorkerLaunch] {
        let open = handle(.configurationLoaded(ConfigLoadResult(configuration: configuration, diagnostics: [])), at: seconds)
        return handle(.listenersOpened(open.opened, configuration.server.bindAddress)).spawns
    }

    mutating func loadInvalid(_ messages: [String]) -> [SupervisorAction] {
        let diagnostics = messages.enumerated().map { index, message in
            ConfigDiagnostic(
                code: "test.problem", file: "fluxgate.yaml", line: index + 1, column: 1,
                path: "server.max_connections", message: message)
        }
        return handle(.configurationLoaded(ConfigLoadResult(configuration: nil, diagnostics: diagnostics)))
    }
}

extension Array where Element == SupervisorAction {
    var spawns: [WorkerLaunch] {
        compactMap { if case .spawn(let launch) = $0 { return launch } else { return nil } }
    }
    var notifications: [String] {
        compactMap { if case .notify(let text) = $0 { return text } else { return nil } }
    }
    var logs: [LogEntry] {
        compactMap { if case .log(let entry) = $0 { return entry } else { return nil } }
    }
    var messages: [String] { logs.map(\.message) }
    func sent(to id: WorkerID) -> [WorkerCommand] {
        compactMap { if case .send(id, let command) = $0 { return command } else { return nil } }
    }
    var sends: [WorkerID: [WorkerCommand]] {
        var result: [WorkerID: [WorkerCommand]] = [:]
        for case .send(let id, let command) in self { result[id, default: []].append(command) }
        return result
    }
    var kills: [SupervisorAction] { filter { if case .kill = $0 { return true } else { return false } } }
    var replies: [ReloadRequestID: ReloadOutcome] {
        var result: [ReloadRequestID: ReloadOutcome] = [:]
        for case .replyToReloadRequest(let id, let outcome) in self { result[id] = outcome }
        return result
    }
    var drains: [WorkerID] {
        compactMap { if case .send(let id, .drain) = $0 { return id } else { return nil } }
    }
    var exitCode: Int32? {
        compactMap { if case .exit(let code) = $0 { return code } else { return nil } }.first
    }
    var opened: [ListenerID] {
        flatMap { action -> [ListenerID] in if case .openListeners(let ids, _) = action { return ids } else { return [] } }
    }
    var closed: [ListenerID] {
        flatMap { action -> [ListenerID] in if case .closeListeners(let ids) = action { return ids } else { return [] } }
    }
    var loadsConfiguration: Bool { contains(.loadConfiguration) }
}
