#if canImport(Glibc)
import Glibc
#endif
import CLinux

/// The health of every upstream target on the host (docs/routing-and-forwarding.md "Target
/// health"), shared by all worker processes: a memfd the master creates before it spawns any
/// worker, mapped MAP_SHARED by each (inherited at the descriptor named by `--target-health-fd`).
/// It lives as long as the master, so health survives reloads and a worker's crash.
///
/// Layout (a contract between the two executables, version in the magic):
///
///     offset 0        UInt64  magic "FLXHLT01"
///     offset 64·(i+1) UInt64  cell i's key: a hash of upstream name + target origin, 0 = free
///                     UInt64  cell i's health word (the worker's `TargetHealth`), own cache line
///
/// Cells are named by the configuration, never by list position: a worker finds a target's
/// cell by its key (open addressing, linear probing) and claims a free one with a
/// compare-and-swap, so two workers asking for one new target at once get the same cell and a
/// reload that reorders or keeps targets keeps their health. Cells are never freed; a host that
/// has seen more than `cellCount` distinct targets since its master started keeps the health of
/// the newest ones in each worker only (`cell(forKey:)` returns nil).
public final class TargetHealthSegment: @unchecked Sendable {
    public static let cellCount = 1024
    public static let size = 64 * (cellCount + 1)
    static let magic: Int64 = 0x3130_544C_4858_4C46  // "FLXHLT01" little-endian

    private let memory: SharedMemory
    public var descriptor: FileDescriptor { memory.descriptor }

    private init(_ memory: SharedMemory) { self.memory = memory }

    /// A new zero-filled segment: the master's, or a worker's own when it was started without one.
    public static func create() throws(SystemError) -> TargetHealthSegment {
        TargetHealthSegment(try SharedMemory.create(name: "fluxgate-health", size: size, magic: magic))
    }

    /// A worker's view of the segment it inherited; nil when the descriptor is not one.
    public static func attach(_ fd: FileDescriptor) -> TargetHealthSegment? {
        SharedMemory.attach(fd, size: size, magic: magic).map(TargetHealthSegment.init)
    }

    private func word(_ offset: Int) -> UnsafeMutablePointer<Int64> { memory.word(offset) }

    private func keyWord(_ cell: Int) -> UnsafeMutablePointer<Int64> { word(64 * (cell + 1)) }
    /// The cell's health word where it lies (a worker's `TargetGroup` keeps it, to read it with one
    /// load per choice).
    public func stateWord(_ cell: Int) -> UnsafeMutablePointer<Int64> { word(64 * (cell + 1) + 8) }

    /// The key of a target: FNV-1a of the upstream's name, a NUL and the target's origin
    /// (never 0, which marks a free cell).
    public static func key(upstream: String, origin: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in upstream.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        hash = (hash ^ 0) &* 0x100_0000_01b3
        for byte in origin.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return hash == 0 ? 1 : hash
    }

    /// The cell holding `key`'s health, claimed when no cell has it yet; nil when every cell is
    /// taken by other keys.
    public func cell(forKey key: UInt64) -> Int? {
        let wanted = Int64(bitPattern: key)
        var cell = Int(key % UInt64(Self.cellCount))
        for _ in 0..<Self.cellCount {
            let current = fluxgate_atomic_load(keyWord(cell))
            if current == wanted { return cell }
            if current == 0 {
                if fluxgate_atomic_cas(keyWord(cell), 0, wanted) != 0 { return cell }
                // Another worker claimed it just now, perhaps for the same key: look again.
                if fluxgate_atomic_load(keyWord(cell)) == wanted { return cell }
            }
            cell = (cell + 1) % Self.cellCount
        }
        return nil
    }

    /// The health word's "out of service" bit (`TargetHealth`'s layout, a contract with the master,
    /// which reads it for `fluxgate_upstream_target_up`).
    public static let outOfServiceBit: UInt64 = 1 << 13

    /// The target is out of service now (cooling down or in a half-open trial); false for a
    /// target no worker has judged yet. Looks only: never claims a cell.
    public func isOutOfService(upstream: String, origin: String) -> Bool {
        let wanted = Int64(bitPattern: Self.key(upstream: upstream, origin: origin))
        var cell = Int(UInt64(bitPattern: wanted) % UInt64(Self.cellCount))
        for _ in 0..<Self.cellCount {
            let current = fluxgate_atomic_load(keyWord(cell))
            if current == wanted { return load(cell: cell) & Self.outOfServiceBit != 0 }
            if current == 0 { return false }
            cell = (cell + 1) % Self.cellCount
        }
        return false
    }

    public func load(cell: Int) -> UInt64 { UInt64(bitPattern: fluxgate_atomic_load(stateWord(cell))) }

    /// Replaces the cell's word when it is still `expected`; false when another worker changed it.
    public func compareExchange(cell: Int, expected: UInt64, desired: UInt64) -> Bool {
        fluxgate_atomic_cas(stateWord(cell), Int64(bitPattern: expected), Int64(bitPattern: desired)) != 0
    }
}
