#if canImport(Glibc)
import Glibc
#endif
import CLinux

/// The signals the master handles, read from a signalfd in its event loop.
public enum Signals {
    public static let handled: [CInt] = [SIGHUP, SIGINT, SIGTERM, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2]

    public static var handledSet: sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in handled { sigaddset(&set, signal) }
        return set
    }

    /// Blocks the handled signals in the calling thread (call at the top of `main`, before any
    /// thread exists, so every later thread inherits the mask).
    public static func blockForSignalFD() {
        var set = handledSet
        sigprocmask(SIG_BLOCK, &set, nil)
    }

    /// A non-blocking, close-on-exec signalfd for the handled signals.
    public static func makeSignalFD() throws(SystemError) -> FileDescriptor {
        var set = handledSet
        return FileDescriptor(try syscall("signalfd") { signalfd(-1, &set, Int32(SFD_NONBLOCK | SFD_CLOEXEC)) })
    }

    /// Every pending signal number on the signalfd.
    public static func drain(_ fd: FileDescriptor) -> [CInt] {
        var received: [CInt] = []
        var info = signalfd_siginfo()
        while read(fd.rawValue, &info, MemoryLayout<signalfd_siginfo>.size) == MemoryLayout<signalfd_siginfo>.size {
            received.append(CInt(info.ssi_signo))
        }
        return received
    }

    public static func name(_ signal: CInt) -> String {
        switch signal {
        case SIGHUP: return "SIGHUP"
        case SIGINT: return "SIGINT"
        case SIGTERM: return "SIGTERM"
        case SIGQUIT: return "SIGQUIT"
        case SIGCHLD: return "SIGCHLD"
        case SIGKILL: return "SIGKILL"
        case SIGSEGV: return "SIGSEGV"
        case SIGABRT: return "SIGABRT"
        case SIGILL: return "SIGILL"
        case SIGTRAP: return "SIGTRAP"
        case SIGBUS: return "SIGBUS"
        default: return "signal \(signal)"
        }
    }
}

/// The process environment as a dictionary, read once at start.
public enum ProcessInfoEnvironment {
    public static func current() -> [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let eq = text.firstIndex(of: "=") {
                result[String(text[..<eq])] = String(text[text.index(after: eq)...])
            }
            pointer += 1
        }
        return result
    }
}
