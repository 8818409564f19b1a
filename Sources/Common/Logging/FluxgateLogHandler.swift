#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Logging

/// The swift-log handler both executables use. Each line goes out in a single `write(2)` on
/// stdout, so lines from the master and several workers sharing one stdout (a pipe to journald,
/// say) never interleave: POSIX makes writes of up to PIPE_BUF (4096) bytes to a pipe atomic, and
/// longer ones are still written by one call each here (no buffering in between).
public struct FluxgateLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    let formatter: LogLineFormatter
    let fd: CInt

    public init(settings: LogSettings, fd: CInt = STDOUT_FILENO) {
        self.logLevel = settings.level
        self.formatter = LogLineFormatter(colour: settings.colour, format: settings.format)
        self.fd = fd
    }

    /// Installs the handler for the whole process (once, at the top of `main`) and returns a
    /// logger to pass down. Warns once about a malformed environment variable.
    public static func bootstrap(label: String, environment: [String: String]) -> Logger {
        let settings = LogSettings(environment: environment)
        LoggingSystem.bootstrap { _ in FluxgateLogHandler(settings: settings) }
        let logger = Logger(label: label)
        for problem in settings.problems { logger.warning("\(problem)") }
        return logger
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        // The workers' loggers carry no metadata of their own: the event's is used as is, without
        // copying it into a new dictionary (once per request line).
        var merged = event.metadata ?? [:]
        if !metadata.isEmpty || metadataProvider != nil {
            merged = metadata
            if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
            if let own = event.metadata { merged.merge(own) { _, new in new } }
        }
        let line = formatter.format(
            timestamp: Self.timestamp(), level: event.level,
            message: event.message.description, metadata: merged)
        Self.writeAll(fd: fd, line)
    }

    /// RFC 3339 UTC with microseconds: `2026-11-22T03:09:25.123456Z`. Digits are written straight
    /// into the string's storage (one allocation, no intermediate strings).
    public static func timestamp() -> String {
        String(unsafeUninitializedCapacity: timestampBytes) { writeTimestamp(into: $0.baseAddress!) }
    }

    /// The length of every `timestamp()`.
    static let timestampBytes = 27

    /// Writes the current `timestamp()` at `out` (room for `timestampBytes`); returns its length.
    /// The date and time to the second come from this thread's cache, formatted once a second.
    static func writeTimestamp(into out: UnsafeMutablePointer<UInt8>) -> Int {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let cache = fluxgate_second_text_cache()!
        let second = withUnsafeMutableBytes(of: &cache.pointee.text) { $0.baseAddress!.assumingMemoryBound(to: UInt8.self) }
        if cache.pointee.seconds != Int64(now.tv_sec) {
            writeSecond(now.tv_sec, into: second)
            cache.pointee.seconds = Int64(now.tv_sec)
        }
        out.update(from: second, count: secondBytes)
        put(Int(now.tv_nsec) / 1000, width: 6, at: out + secondBytes)
        out[timestampBytes - 1] = UInt8(ascii: "Z")
        return timestampBytes
    }

    /// `2026-11-22T03:09:25.`: the part of a timestamp that changes once a second.
    private static let secondBytes = 20

    private static func writeSecond(_ seconds: time_t, into out: UnsafeMutablePointer<UInt8>) {
        var seconds = seconds
        var parts = tm()
        gmtime_r(&seconds, &parts)
        put(Int(parts.tm_year) + 1900, width: 4, at: out); out[4] = UInt8(ascii: "-")
        put(Int(parts.tm_mon) + 1, width: 2, at: out + 5); out[7] = UInt8(ascii: "-")
        put(Int(parts.tm_mday), width: 2, at: out + 8); out[10] = UInt8(ascii: "T")
        put(Int(parts.tm_hour), width: 2, at: out + 11); out[13] = UInt8(ascii: ":")
        put(Int(parts.tm_min), width: 2, at: out + 14); out[16] = UInt8(ascii: ":")
        put(Int(parts.tm_sec), width: 2, at: out + 17); out[19] = UInt8(ascii: ".")
    }

    /// `value` in `width` decimal digits, zero-padded.
    private static func put(_ value: Int, width: Int, at out: UnsafeMutablePointer<UInt8>) {
        var v = value
        var digit = width
        while digit > 0 {
            digit -= 1
            out[digit] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: v % 10)
            v /= 10
        }
    }

    /// One `write(2)` per line; a short write (a full pipe, a signal) continues with the rest.
    /// A failed write is dropped: logging must never take the proxy down.
    static func writeAll(fd: CInt, _ line: String) {
        var line = line
        line.withUTF8 { writeAll(fd: fd, $0) }
    }

    static func writeAll(fd: CInt, _ buffer: UnsafeBufferPointer<UInt8>) {
        var offset = 0
        while offset < buffer.count {
            let n = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
            if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { return }
        }
    }
}
