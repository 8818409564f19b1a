#if canImport(Glibc)
import Glibc
#endif
import CLinux

/// The whole-proxy in-flight counter (`server.max_connections`: step 5 of
/// docs/routing-and-forwarding.md "Order of checks", and docs/architecture.md
/// "Whole-proxy `max_connections`"), shared by
/// every worker process: a memfd the master creates, mapped MAP_SHARED by master and workers
/// (inherited at `WorkerDescriptors.inFlight`).
///
/// Layout (a contract between the two executables, version in the magic):
///
///     offset 0     UInt64  magic "FLXINF01"
///     offset 8     Int64   limit (the master writes the configuration's max_connections)
///     offset 16    Int64   total permits held
///     offset 64·(i+1)  Int64  permits held by the worker process using cell i (own cache line)
///
/// `tryAcquire` adds to the total first: with sequentially consistent atomics the last of any
/// k+1 concurrent acquirers sees all k+1 increments, so the total never exceeds the limit. Each
/// worker also counts its permits in its own cell, so that a worker that crashes while holding
/// permits does not leak them: the master takes a dead worker's cell off the total. (Summing the
/// 256 cells on every request instead read 256 cache lines per request.) A crash between the two
/// additions can leave the total off by one permit; nothing else can.
public final class InFlightSegment: @unchecked Sendable {
    public static let cellCount = 256
    public static let size = 64 * (cellCount + 1)
    static let magic: Int64 = 0x3230_464E_4958_4C46  // "FLXINF02" little-endian

    private let memory: SharedMemory
    public var descriptor: FileDescriptor { memory.descriptor }

    private init(_ memory: SharedMemory) { self.memory = memory }

    /// The master's segment (zero-filled).
    public static func create() throws(SystemError) -> InFlightSegment {
        InFlightSegment(try SharedMemory.create(name: "fluxgate-inflight", size: size, magic: magic))
    }

    /// A worker's view of the segment it inherited; nil when the descriptor is not one.
    public static func attach(_ fd: FileDescriptor) -> InFlightSegment? {
        SharedMemory.attach(fd, size: size, magic: magic).map(InFlightSegment.init)
    }

    private func slot(_ index: Int) -> UnsafeMutablePointer<Int64> {
        memory.word(index * 8)
    }

    private func cell(_ index: Int) -> UnsafeMutablePointer<Int64> {
        memory.word(64 * (index + 1))
    }

    public var limit: Int {
        get { Int(fluxgate_atomic_load(slot(1))) }
        set { fluxgate_atomic_store(slot(1), Int64(newValue)) }
    }

    public var total: Int { Int(fluxgate_atomic_load(slot(2))) }

    /// Takes a permit for the worker using `cellIndex`; false when the proxy-wide limit is reached.
    public func tryAcquire(cell cellIndex: Int) -> Bool {
        guard fluxgate_atomic_add(slot(2), 1) <= fluxgate_atomic_load(slot(1)) else {
            fluxgate_atomic_add(slot(2), -1)
            return false
        }
        fluxgate_atomic_add(cell(cellIndex), 1)
        return true
    }

    public func release(cell cellIndex: Int) {
        fluxgate_atomic_add(cell(cellIndex), -1)
        fluxgate_atomic_add(slot(2), -1)
    }

    /// Permits held by the worker using `cellIndex` (`fluxgate status`).
    public func held(cell cellIndex: Int) -> Int { Int(fluxgate_atomic_load(cell(cellIndex))) }

    /// The master, after reaping the worker that used the cell: its permits are free again.
    public func reset(cell cellIndex: Int) {
        // The worker is gone: nobody else writes this cell.
        let held = fluxgate_atomic_load(cell(cellIndex))
        fluxgate_atomic_store(cell(cellIndex), 0)
        fluxgate_atomic_add(slot(2), -held)
    }
}
