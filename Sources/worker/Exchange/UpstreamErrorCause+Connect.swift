import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

extension UpstreamErrorCause {
    /// What a failed connect says, in the system's words: DNS, refused, unreachable, timed out,
    /// or the TLS handshake's reason.
    init(connectError error: Error) {
        switch error {
        case let tls as TLSError:
            self.init(layer: .tls, reason: tls.summary)
        case let connection as NIOConnectionError:
            if let dns = connection.dnsAError ?? connection.dnsAAAAError, connection.connectionErrors.isEmpty {
                self.init(layer: .dns, reason: "\(dns)")
            } else if let first = connection.connectionErrors.first {
                self.init(connectError: first.error)
            } else {
                self.init(layer: .dns, reason: "no address for \(connection.host)")
            }
        case let io as IOError:
            self.init(layer: .connect, reason: Self.systemReason(io.errnoCode))
        case ChannelError.connectTimeout:
            self.init(layer: .connect, reason: "timed out")
        default:
            self.init(layer: .connect, reason: "\(error)")
        }
    }

    /// `strerror`'s text, lower-cased as Rust's and Go's errors print it ("connection refused").
    static func systemReason(_ code: CInt) -> String {
        guard let text = strerror(code) else { return "errno \(code)" }
        return String(cString: text).lowercased()
    }
}
