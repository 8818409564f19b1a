#if canImport(Glibc)
import Glibc
#endif
import Common
import Logging

/// One worker process as the shell sees it: pid, control and hand-over channels, frame decoder,
/// counter cell.
final class WorkerHandle {
    let id: WorkerID
    let pid: pid_t
    let control: FileDescriptor
    /// Our end of the SOCK_SEQPACKET pair whose other end is the worker's fd 6: lent listening
    /// sockets travel here (SCM_RIGHTS), each announced by `adoptListener` on `control`.
    let handover: FileDescriptor
    let cell: Int?
    var decoder = ControlFrameDecoder()
    /// False after EOF or a protocol error: the channel is closed and no longer polled.
    var open = true

    init(id: WorkerID, pid: pid_t, control: FileDescriptor, handover: FileDescriptor, cell: Int?) {
        self.id = id
        self.pid = pid
        self.control = control
        self.handover = handover
        self.cell = cell
    }
}

/// The shell's side of every worker: spawning with the descriptor contract, framing control
/// messages, reaping.
struct WorkerTable {
    private var handles: [WorkerID: WorkerHandle] = [:]
    private var byPID: [pid_t: WorkerID] = [:]
    private var freeCells = Array((0..<InFlightSegment.cellCount).reversed())

    subscript(id: WorkerID) -> WorkerHandle? { handles[id] }

    /// posix_spawn with the slot's first socket at fd 3, the control channel at fd 4, the shared
    /// in-flight segment at fd 5, the hand-over channel at fd 6, the metrics segment at fd 7 and
    /// further sockets from fd 8 (WorkerDescriptors), then the configuration as the first control
    /// message. A worker's cell names both its in-flight cell and its metrics region.
    mutating func spawn(
        _ launch: WorkerLaunch, sockets: [FileDescriptor], segment: InFlightSegment?, metrics: MetricsSegment?,
        rateLimits: RateLimitSegment?, health: TargetHealthSegment? = nil,
        settings: Master.Settings
    ) throws -> WorkerHandle {
        let (ours, theirs) = try Sockets.socketPair()
        defer { theirs.close() }
        let (handover, theirHandover): (FileDescriptor, FileDescriptor)
        do {
            (handover, theirHandover) = try Sockets.socketPair(messages: true)
        } catch {
            ours.close()
            throw error
        }
        defer { theirHandover.close() }
        var inherited = [
            Spawn.Inherited(sockets[0], as: WorkerDescriptors.listener),
            Spawn.Inherited(theirs, as: WorkerDescriptors.control),
            Spawn.Inherited(theirHandover, as: WorkerDescriptors.handover),
        ]
        var arguments = ["--slot", String(launch.slot), "--generation", String(launch.generation)]
        var cell: Int?
        if segment != nil || metrics != nil, let free = freeCells.popLast() {
            cell = free
            if let segment {
                segment.reset(cell: free)
                inherited.append(Spawn.Inherited(segment.descriptor, as: WorkerDescriptors.inFlight))
                arguments += ["--inflight-cell", String(free)]
            }
            if let metrics {
                inherited.append(Spawn.Inherited(metrics.descriptor, as: WorkerDescriptors.metrics))
                arguments += ["--metrics-cell", String(free)]
            }
            if let rateLimits {
                // After the last extra listener: their count varies with the slot.
                let target = WorkerDescriptors.firstExtraListener + CInt(sockets.count - 1)
                rateLimits.reset(cell: free)
                inherited.append(Spawn.Inherited(rateLimits.descriptor, as: target))
                arguments += ["--rate-limits-fd", String(target)]
            }
        }
        for (index, socket) in sockets.dropFirst().enumerated() {
            inherited.append(Spawn.Inherited(socket, as: WorkerDescriptors.firstExtraListener + CInt(index)))
        }
        if sockets.count > 1 { arguments += ["--listeners", String(sockets.count)] }
        if let health {
            // After the extra listeners, whose numbers grow with the slot's socket count (and
            // after the rate-limit segment, when it was passed there).
            let number = WorkerDescriptors.firstExtraListener + CInt(sockets.count - 1) + (arguments.contains("--rate-limits-fd") ? 1 : 0)
            inherited.append(Spawn.Inherited(health.descriptor, as: number))
            arguments += ["--target-health-fd", String(number)]
        }
        if launch.standby { arguments.append("--standby") }
        let pid: pid_t
        do {
            pid = try Spawn.spawn(
                executable: settings.workerExecutable, arguments: arguments,
                environment: settings.environment, inherited: inherited)
        } catch {
            ours.close()
            handover.close()
            if let cell { freeCells.append(cell) }
            throw error
        }
        let handle = WorkerHandle(id: launch.worker, pid: pid, control: ours, handover: handover, cell: cell)
        handles[launch.worker] = handle
        byPID[pid] = launch.worker
        send(.applyConfig(generation: launch.generation, launch.configuration), to: launch.worker)
        return handle
    }

    /// Lends the listening socket `listener` (descriptor `socket`) to a worker: the descriptor
    /// first, on the hand-over channel, then `adoptListener` on the control channel, so the worker
    /// finds the descriptor waiting when it reads the message.
    mutating func lend(_ socket: FileDescriptor, as listener: ListenerID, to id: WorkerID) {
        guard let handle = handles[id], handle.open else { return }
        do {
            try Sockets.sendDescriptor(socket, tag: listener.raw, over: handle.handover)
        } catch {
            return  // the worker is dying: its exit arrives as SIGCHLD, and with it the loan ends
        }
        send(.adoptListener(listener), to: id)
    }

    /// A failed send means the worker is dying; its exit arrives as SIGCHLD.
    mutating func send(_ command: WorkerCommand, to id: WorkerID) {
        guard let handle = handles[id], handle.open else { return }
        let message: ControlMessage
        switch command {
        case .applyConfig(let generation, let configuration):
            message = ControlMessage(type: .applyConfig, gen: generation, body: .init(config: configuration))
        case .startAccepting:
            message = ControlMessage(type: .startAccepting)
        case .drain(let deadline):
            message = ControlMessage(type: .drain, body: .init(deadlineMs: deadline.milliseconds))
        case .adoptListener(let listener):
            message = ControlMessage(type: .adoptListener, body: .init(listener: listener.raw))
        case .releaseListener(let listener):
            message = ControlMessage(type: .releaseListener, body: .init(listener: listener.raw))
        }
        guard let frame = try? ControlFrame.encode(message) else { return }
        try? handle.control.sendAll(frame)
    }

    /// The metrics cells of the workers alive now, by worker.
    var cells: [(id: WorkerID, cell: Int)] {
        handles.values.sorted { $0.id < $1.id }.compactMap { handle in handle.cell.map { (handle.id, $0) } }
    }

    var pollDescriptors: [(id: WorkerID, fd: FileDescriptor)] {
        handles.values.filter(\.open).sorted { $0.id < $1.id }.map { ($0.id, $0.control) }
    }

    /// Reads what a worker sent and turns each message into an event.
    mutating func readable(_ id: WorkerID, logger: Logger) -> [SupervisorEvent] {
        guard let handle = handles[id] else { return [] }
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        let n = (try? handle.control.read(into: &buffer)) ?? 0
        guard n > 0 else {
            // EOF: the worker is exiting; SIGCHLD brings the exit status.
            close(handle)
            return []
        }
        handle.decoder.feed(buffer[0..<n])
        var events: [SupervisorEvent] = []
        do {
            while let message = try handle.decoder.next() {
                if let event = Self.event(for: message, from: id, logger: logger) { events.append(event) }
            }
        } catch {
            logger.error("Control channel protocol error; closing it", metadata: ["pid": "\(handle.pid)", "error": "\(error)"])
            close(handle)
        }
        return events
    }

    private static func event(for message: ControlMessage, from id: WorkerID, logger: Logger) -> SupervisorEvent? {
        switch message.type {
        case .ready: return .workerReady(id, generation: message.gen)
        case .configApplied: return .configApplied(id, generation: message.gen)
        case .configRejected: return .configRejected(id, generation: message.gen, error: message.body.error ?? "")
        case .heartbeat: return .heartbeat(id)
        case .stoppedAccepting: return .stoppedAccepting(id)
        case .drained: return .drained(id)
        case .listenerReleased:
            guard let listener = message.body.listener else { return nil }
            return .listenerReleased(id, ListenerID(raw: listener))
        case .applyConfig, .drain, .startAccepting, .adoptListener, .releaseListener:
            logger.warning("Unexpected control message from worker", metadata: ["type": "\(message.type.rawValue)"])
            return nil
        }
    }

    private func close(_ handle: WorkerHandle) {
        guard handle.open else { return }
        handle.open = false
        handle.control.close()
        handle.handover.close()
    }

    /// Every exited child: removed from the table, its counter cell zeroed and freed (a crashed
    /// worker's permits would otherwise stay taken), its metrics region folded into `retained`
    /// and cleared (docs/observability.md: counters never go backwards).
    mutating func reap(
        segment: InFlightSegment?, metrics: MetricsSegment?, rateLimits: RateLimitSegment?, retained: inout MetricsTotals
    ) -> [(WorkerID, WorkerExit)] {
        var exits: [(WorkerID, WorkerExit)] = []
        while true {
            var status: CInt = 0
            let pid = waitpid(-1, &status, WNOHANG)
            guard pid > 0 else { break }
            guard let id = byPID.removeValue(forKey: pid), let handle = handles.removeValue(forKey: id) else { continue }
            close(handle)
            if let cell = handle.cell {
                segment?.reset(cell: cell)
                rateLimits?.reset(cell: cell)
                if let metrics {
                    retained.retain(metrics.region(cell))
                    metrics.clear(cell)
                }
                freeCells.append(cell)
            }
            exits.append((id, WorkerExit(ExitStatus(raw: status))))
        }
        return exits
    }
}

/// Operator connections on the control socket: `status` is answered at once, `reload` when the
/// state machine reports the outcome.
struct OperatorConnections {
    var listener: FileDescriptor?
    private var reading: [CInt: (fd: FileDescriptor, buffer: [UInt8])] = [:]
    private var waiting: [ReloadRequestID: FileDescriptor] = [:]
    private var nextRequest = 1

    var pollDescriptors: [FileDescriptor] {
        (listener.map { [$0] } ?? []) + reading.values.map(\.fd).sorted { $0.rawValue < $1.rawValue }
    }

    mutating func readable(_ fd: FileDescriptor, statusText: @autoclosure () -> String) -> [SupervisorEvent] {
        if fd == listener {
            while true {
                // accept4(2) is GNU-only in Swift's Glibc module: set the flags afterwards.
                let client = accept(fd.rawValue, nil, nil)
                guard client >= 0 else { break }
                let connection = FileDescriptor(client)
                try? connection.setCloseOnExec(true)
                try? connection.setNonBlocking(true)
                reading[client] = (connection, [])
            }
            return []
        }
        guard var entry = reading[fd.rawValue] else { return [] }
        let (request, done) = OperatorChannel.readRequest(fd, buffer: &entry.buffer)
        reading[fd.rawValue] = done ? nil : entry
        guard done else { return [] }
        switch request {
        case .reload?:
            let id = ReloadRequestID(raw: nextRequest)
            nextRequest += 1
            waiting[id] = fd
            return [.reloadRequested(.operatorRequest(id))]
        case .status?:
            OperatorChannel.reply(fd, ok: true, statusText())
        case nil:
            OperatorChannel.reply(fd, ok: false, "unknown request (expected reload or status)")
        }
        return []
    }

    mutating func answer(_ id: ReloadRequestID, _ outcome: ReloadOutcome) {
        guard let fd = waiting.removeValue(forKey: id) else { return }
        OperatorChannel.reply(fd, ok: outcome.succeeded, outcome.description)
    }
}
