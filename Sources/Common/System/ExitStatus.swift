#if canImport(Glibc)
import Glibc
#endif

/// A child's wait status, decoded (the W* macros are not importable into Swift).
public struct ExitStatus: Sendable, Equatable, CustomStringConvertible {
    public let raw: CInt
    public init(raw: CInt) { self.raw = raw }

    public var exitCode: CInt? { raw & 0x7F == 0 ? (raw >> 8) & 0xFF : nil }
    public var signal: CInt? { raw & 0x7F != 0 && raw & 0x7F != 0x7F ? raw & 0x7F : nil }

    public var description: String {
        if let code = exitCode { return "exit status \(code)" }
        if let signal { return "killed by \(Signals.name(signal))" }
        return "status \(raw)"
    }
}

/// Milliseconds on the monotonic clock (deadlines never jump with the wall clock).
public enum Monotonic {
    public static func nowMs() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1000 + UInt64(now.tv_nsec) / 1_000_000
    }
}
