#if canImport(Glibc)
import Glibc
#endif
import Common
import ConfigLoading

/// Notices content changes of the configuration file by polling it (the shell calls `check` at
/// least every 250 ms). Polling rather than inotify because it sees every way a file is replaced
/// (editor rename-over, `cp`, delete-then-restore, a symlink swapped by a ConfigMap, NFS) with one
/// code path, and costs one `stat` per check: the file is read and hashed only when the stat
/// identity (inode, size, mtime, ctime) moved. A `touch` changes the stat but not the hash, so it
/// is not a change.
struct ConfigWatcher {
    enum Observation: Equatable {
        case content(UInt64)
        case unreadable(errno: Int32)
    }

    enum Change: Equatable {
        case none
        /// The content differs from the last content seen: reload.
        case changed
        /// The file vanished or became unreadable: keep the configuration, warn once per episode.
        case becameUnreadable(errno: Int32)
    }

    let path: String
    private var lastContent: UInt64?
    private var unreadable = false
    private var lastIdentity: [Int64]?

    init(path: String) {
        self.path = path
        if case .content(let hash) = observe() { lastContent = hash }
    }

    mutating func check() -> Change {
        Self.decide(observation: observe(), lastContent: &lastContent, unreadable: &unreadable)
    }

    /// The decision, without I/O.
    static func decide(observation: Observation, lastContent: inout UInt64?, unreadable: inout Bool) -> Change {
        switch observation {
        case .content(let hash):
            unreadable = false
            guard hash != lastContent else { return .none }
            lastContent = hash
            return .changed
        case .unreadable(let code):
            guard !unreadable else { return .none }
            unreadable = true
            return .becameUnreadable(errno: code)
        }
    }

    private mutating func observe() -> Observation {
        var info = stat()
        guard stat(path, &info) == 0 else { lastIdentity = nil; return .unreadable(errno: errno) }
        let identity: [Int64] = [
            Int64(info.st_dev), Int64(info.st_ino), Int64(info.st_size),
            Int64(info.st_mtim.tv_sec), Int64(info.st_mtim.tv_nsec),
            Int64(info.st_ctim.tv_sec), Int64(info.st_ctim.tv_nsec),
        ]
        if identity == lastIdentity, !unreadable, let lastContent { return .content(lastContent) }
        guard let hash = Self.hashContent(path) else { lastIdentity = nil; return .unreadable(errno: errno) }
        lastIdentity = identity
        return .content(hash)
    }

    /// FNV-1a over the file's bytes (a change detector, not a security boundary).
    private static func hashContent(_ path: String) -> UInt64? {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { _ = close(fd) }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var total = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue } else { return nil } }
            if n == 0 { return hash }
            total += n
            if total > ConfigLoader.Limits.maxFileBytes { return hash }
            for byte in buffer[0..<n] { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        }
    }
}
