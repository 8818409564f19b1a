#if canImport(Glibc)
import Glibc
#endif

/// Human-facing output of the command line (not log lines). Swift 6 forbids the C `stderr`
/// global, so this writes to the descriptors directly.
enum Console {
    static func error(_ text: String) { write(STDERR_FILENO, text + "\n") }
    static func out(_ text: String) { write(STDOUT_FILENO, text + "\n") }

    private static func write(_ fd: CInt, _ text: String) {
        var text = text
        text.withUTF8 { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { return }
            }
        }
    }
}
