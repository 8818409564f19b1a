import Foundation
import Testing
import TestSupport

/// On plain TCP the worker sends its bytes itself (`SocketOutput`: `send`/`sendmsg` on the socket
/// it reaches through NIO's channel core, which is not NIO's public API; Package.swift pins NIO
/// for it). Should a NIO change turn that path off, every byte still goes out through the
/// pipeline and every test still passes, only ~16% slower: this suite is the red light.
///
/// What it reads: the kernel's count of write-type system calls of the worker process,
/// `syscw` in /proc/PID/io (proc(5)). `write(2)` and `writev(2)`, which NIO uses for stream
/// sockets, count there (fs/read_write.c calls `inc_syscw`); `send(2)` and `sendmsg(2)` do not
/// (net/socket.c does not). So a worker on the direct path proxies requests without moving
/// `syscw`, and one writing through NIO moves it at least once per request.
@Suite(.serialized) struct DirectWriteProcessTests {
    static let requests = 64

    /// The worker's `syscw` now.
    static func writeCalls(of pid: Int32) throws -> Int {
        let text = try String(contentsOfFile: "/proc/\(pid)/io", encoding: .utf8)
        let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("syscw:") })
        return try #require(Int(line.split(separator: " ", omittingEmptySubsequences: true).last ?? ""))
    }

    /// `syscw` of the one worker across `requests` proxied requests on one keep-alive connection.
    static func writeCallsWhileProxying(
        _ fixture: ProxyFixture, path: String = "/openai/v1/models",
        keep: AnyObject? = nil
    ) throws -> Int {
        let worker = try #require(fixture.proxy.workerPIDs.first)
        let connection = try fixture.connect()
        // Warm up: the upstream connection is opened and pooled, lazily made state exists.
        #expect(try connection.request("GET", path, headers: [fixture.bearer]).status == 200)
        let before = try writeCalls(of: worker)
        for _ in 0..<requests {
            #expect(try connection.request("GET", path, headers: [fixture.bearer]).status == 200)
        }
        return try withExtendedLifetime(keep) { try writeCalls(of: worker) - before }
    }

    /// Request lines off (they are written to stdout with `write(2)`): only proxying is counted.
    static let quiet = ["FLUXGATE_LOG": "info"]

    @Test func aPlainHTTPWorkerSendsOnTheSocketItself() throws {
        let fixture = try ProxyFixture(environment: Self.quiet)
        let writes = try Self.writeCallsWhileProxying(fixture)
        // Through NIO this is at least 2 per request (the upstream's request, the client's
        // response); on the direct path only the heartbeat to the master (one a second) remains.
        #expect(
            writes < Self.requests / 2,
            "\(writes) write(2)/writev(2) calls for \(Self.requests) requests: the direct path (SocketOutput) is off")
    }

    /// The measurement sees the pipeline's writes: with TLS to the upstream, that connection's
    /// bytes go through NIO (`SocketOutput.isDirect` is false below a TLS handler).
    @Test func throughTLSTheWritesAreNIOsAndAreCounted() throws {
        let pki = try TestCertificates()
        let upstream = try TLSMockUpstream(certificate: pki.certificate("server"), key: pki.key("server"))
        let fixture = try ProxyFixture(
            upstreams: [
                .init(
                    name: "openai", path: "/openai", target: upstream.baseURL,
                    extra: "tls_ca_file: \"\(pki.caFile)\"")
            ],
            environment: Self.quiet)
        let writes = try Self.writeCallsWhileProxying(fixture, keep: upstream)
        #expect(writes >= Self.requests, "\(writes) write calls for \(Self.requests) requests over TLS")
    }
}
