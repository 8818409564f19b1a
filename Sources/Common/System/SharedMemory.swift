#if canImport(Glibc)
import Glibc
#endif
import CLinux

/// Memory shared by the master and its workers: a memfd the master creates before it spawns
/// them, mapped `MAP_SHARED` by each. Close-on-exec: a spawn passes the descriptor on
/// explicitly, at the number the worker is told. The one mechanism behind the in-flight,
/// metrics, target-health and rate-limit segments (docs/architecture.md); each of them owns its
/// layout and its version magic.
///
/// A memfd is sparse: a page is memory only once it is touched, so a large mapping costs what is
/// used (with `reservesSwap: false`, mmap(2)'s `MAP_NORESERVE`, not even a commitment).
public struct SharedMemory: @unchecked Sendable {
    public let descriptor: FileDescriptor
    public let base: UnsafeMutableRawPointer
    public let size: Int

    /// A new zero-filled mapping of `size` bytes; `name` is what /proc/PID/fd shows
    /// (memfd_create(2)). `magic`, when given, is written to the first word: `attach` checks it.
    public static func create(
        name: String, size: Int, magic: Int64? = nil, reservesSwap: Bool = true
    ) throws(SystemError) -> SharedMemory {
        let fd = FileDescriptor(try syscall("memfd_create") { fluxgate_memfd_create(name, 1 /* MFD_CLOEXEC */) })
        do throws(SystemError) {
            try syscall("ftruncate") { ftruncate(fd.rawValue, off_t(size)) }
            let memory = try map(fd, size: size, reservesSwap: reservesSwap)
            if let magic { fluxgate_atomic_store(memory.word(0), magic) }
            return memory
        } catch {
            fd.close()
            throw error
        }
    }

    /// The mapping of an inherited descriptor; nil when it is not a segment of `size` bytes
    /// (starting with `magic`, when given).
    public static func attach(_ fd: FileDescriptor, size: Int, magic: Int64? = nil, reservesSwap: Bool = true) -> SharedMemory? {
        var status = stat()
        guard fstat(fd.rawValue, &status) == 0, Int(status.st_size) == size,
            let memory = try? map(fd, size: size, reservesSwap: reservesSwap)
        else { return nil }
        if let magic, fluxgate_atomic_load(memory.word(0)) != magic { return nil }
        return memory
    }

    private static func map(_ fd: FileDescriptor, size: Int, reservesSwap: Bool) throws(SystemError) -> SharedMemory {
        let flags = MAP_SHARED | (reservesSwap ? 0 : MAP_NORESERVE)
        let pointer = mmap(nil, size, PROT_READ | PROT_WRITE, flags, fd.rawValue, 0)
        guard let pointer, pointer != MAP_FAILED else { throw SystemError(call: "mmap", errno: errno) }
        return SharedMemory(descriptor: fd, base: pointer, size: size)
    }

    /// The 64-bit word at byte `offset` (8-aligned), for the atomics of `CLinux`.
    @inline(__always)
    public func word(_ offset: Int) -> UnsafeMutablePointer<Int64> {
        (base + offset).assumingMemoryBound(to: Int64.self)
    }
}
