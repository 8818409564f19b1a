import Common
#if canImport(Glibc)
import Glibc
#endif

/// Reads a configuration file with a size limit that is checked before anything is read, so that a
/// 50 MB file (or /dev/zero) is refused at once instead of being read into memory.
enum ConfigFileReader {
    enum Failure: Error, Equatable {
        /// open/fstat/read failed: the OS reason.
        case unreadable(String)
        case notRegularFile
        case tooLarge(limit: Int)
    }

    static func read(path: String, limit: Int) -> Result<[UInt8], Failure> {
        do throws(SystemError) {
            // O_NONBLOCK: opening a FIFO for reading would otherwise block until a writer appears
            // (open(2), fifo(7)); it has no effect on a regular file, the only kind we then accept.
            let fd = FileDescriptor(try syscall("open") { open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC) })
            defer { fd.close() }
            var info = stat()
            try syscall("fstat") { fstat(fd.rawValue, &info) }
            guard (info.st_mode & S_IFMT) == S_IFREG else { return .failure(.notRegularFile) }
            guard Int(info.st_size) <= limit else { return .failure(.tooLarge(limit: limit)) }

            // Read until end of file but never past limit + 1 bytes: a file that grew after
            // fstat (or a /proc file that reports size 0) is still caught.
            var bytes: [UInt8] = []
            bytes.reserveCapacity(Int(info.st_size))
            var chunk = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let n = try fd.read(into: &chunk)
                if n == 0 { break }
                bytes.append(contentsOf: chunk[0..<n])
                if bytes.count > limit { return .failure(.tooLarge(limit: limit)) }
            }
            return .success(bytes)
        } catch {
            return .failure(.unreadable(reason(error.errno)))
        }
    }

    static func reason(_ code: Int32) -> String {
        String(cString: strerror(code))
    }
}
