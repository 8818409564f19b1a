#if canImport(Glibc)
import Glibc
#endif

/// Starting a child process with `posix_spawn`, never `fork` without `exec`: in a process that
/// already has threads (NIO, Dispatch) a forked child can deadlock on a lock another thread held
/// (measured: 20/20 children hung; ../shared/notes/swift-on-these-machines.md).
public enum Spawn {
    /// A descriptor the child gets at a fixed number.
    public struct Inherited: Sendable {
        public let source: FileDescriptor
        public let target: CInt
        public init(_ source: FileDescriptor, as target: CInt) {
            self.source = source
            self.target = target
        }
    }

    /// Spawns `executable` with exactly `inherited` open beyond 0–2 (every other descriptor of
    /// ours is close-on-exec), an empty signal mask and default dispositions.
    public static func spawn(
        executable: String, arguments: [String], environment: [String: String],
        inherited: [Inherited]
    ) throws(SystemError) -> pid_t {
        // A dup2 onto a number that is another action's source would clobber it, and a dup2 of
        // a descriptor onto its own number keeps FD_CLOEXEC set. Moving every source to a fresh
        // number >= 100 first avoids both.
        var temporaries: [CInt] = []
        defer { temporaries.forEach { _ = close($0) } }
        for item in inherited {
            temporaries.append(try syscall("fcntl(F_DUPFD_CLOEXEC)") { fcntl(item.source.rawValue, F_DUPFD_CLOEXEC, 100) })
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (temporary, item) in zip(temporaries, inherited) {
            posix_spawn_file_actions_adddup2(&actions, temporary, item.target)  // dup2 clears FD_CLOEXEC
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The master blocks its signals (to read them from a signalfd); a blocked mask and ignored
        // dispositions survive exec, so reset both or the child would never see SIGTERM.
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGHUP, SIGINT, SIGTERM, SIGQUIT, SIGPIPE, SIGCHLD, SIGUSR1, SIGUSR2] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid = pid_t()
        let rc = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard rc == 0 else { throw SystemError(call: "posix_spawn(\(executable))", errno: rc) }
        return pid
    }
}
