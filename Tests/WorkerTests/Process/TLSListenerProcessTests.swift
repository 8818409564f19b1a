import Foundation
import Testing
import TestSupport

/// `server.tls`: the listener speaks HTTPS to curl and openssl s_client, refuses what is not
/// TLS without disturbing the worker, and streams large bodies with flat memory.
@Suite(.serialized) struct TLSListenerProcessTests {
    let pki: TestCertificates

    init() throws { pki = try TestCertificates() }

    var serverTLS: String {
        "tls:\n  certificate_file: \"\(pki.certificate("server"))\"\n  private_key_file: \"\(pki.key("server"))\""
    }

    func curl(_ port: Int, _ arguments: String) throws -> (status: Int32, stdout: String, stderr: String) {
        try ChildProcess.shell("curl -sS --cacert '\(pki.caFile)' -H 'Authorization: Bearer \(ProxyFixture.clientKey)' \(arguments)")
    }

    @Test func curlWithTheCAGetsTheUpstreamsAnswer() throws {
        let f = try ProxyFixture(server: serverTLS)
        let result = try curl(f.proxy.port, "-w '\\n%{http_code} %{http_version}' https://localhost:\(f.proxy.port)/openai/v1/models")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.hasSuffix("\n200 1.1"), "\(result.stdout)")
        #expect(f.mock.requests.last?.uri == "/v1/models")
    }

    @Test func opensslSClientSeesTLS13ALPNAndAVerifiedChain() throws {
        let f = try ProxyFixture(server: serverTLS)
        let result = try ChildProcess.shell(
            "openssl s_client -connect 127.0.0.1:\(f.proxy.port) -servername localhost -verify_hostname localhost -CAfile '\(pki.caFile)' -alpn http/1.1 </dev/null 2>&1"
        )
        #expect(result.stdout.contains("Verify return code: 0 (ok)"), "\(result.stdout)")
        #expect(result.stdout.contains("ALPN protocol: http/1.1"))
        #expect(result.stdout.contains("TLSv1.3"))
        // Below the TLS 1.2 floor: refused.
        let old = try ChildProcess.shell("openssl s_client -connect 127.0.0.1:\(f.proxy.port) -tls1_1 </dev/null 2>&1")
        #expect(old.stdout.contains("protocol version") || old.stdout.contains("no protocols available"), "\(old.stdout)")
        #expect(try curl(f.proxy.port, "-o /dev/null -w '%{http_code}' https://localhost:\(f.proxy.port)/openai/x").stdout == "200")
    }

    @Test func plainHTTPAndGarbageAreClosedAndTheWorkerKeepsServing() throws {
        let f = try ProxyFixture(server: serverTLS)
        let worker = f.proxy.workerPIDs
        let plain = try f.connect()
        try plain.send("GET /openai/x HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(plain.isClosedByPeer())
        let garbage = try f.connect()
        try garbage.send(Array(repeating: 0x16, count: 5) + Array((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7) }))
        #expect(garbage.isClosedByPeer())
        let silent = try f.connect()  // says nothing: the handshake timeout (10 s) covers it; not awaited here
        _ = silent
        #expect(try curl(f.proxy.port, "-o /dev/null -w '%{http_code}' https://localhost:\(f.proxy.port)/openai/x").stdout == "200")
        #expect(f.proxy.workerPIDs == worker)
    }

    /// TLS on both sides: curl → fluxgate (server.tls) → Python ssl upstream (tls_ca_file).
    /// 1 GiB each way by default (about 50 s in a debug build); FLUXGATE_TEST_TLS_BODY_MIB changes it.
    @Test func largeBodiesThroughTLSOnBothSidesKeepWorkerMemoryFlat() throws {
        let size = (ProcessInfo.processInfo.environment["FLUXGATE_TEST_TLS_BODY_MIB"].flatMap(Int.init) ?? 1024) * 1024 * 1024
        let upstream = try TLSMockUpstream(certificate: pki.certificate("server"), key: pki.key("server"))
        let f = try ProxyFixture(
            upstreams: [
                .init(
                    name: "openai", path: "/openai", target: upstream.baseURL,
                    extra: "tls_ca_file: \"\(pki.caFile)\"")
            ],
            server: serverTLS)
        let port = f.proxy.port
        let worker = try #require(f.proxy.workerPIDs.first)
        #expect(try curl(port, "-o /dev/null -w '%{http_code}' https://localhost:\(port)/openai/warm").stdout == "200")

        let file = pki.path + "/upload.bin"
        FileManager.default.createFile(atPath: file, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: file))
        var left = size
        while left > 0 {
            let n = min(left, MockPattern.block.count)
            handle.write(Data(MockPattern.block[0..<n]))
            left -= n
        }
        try handle.close()
        defer { try? FileManager.default.removeItem(atPath: file) }
        let expected = MockPattern.sha256(ofCount: size)

        let before = try #require(FluxgateInstance.rssKiB(of: worker))
        let sampler = LargeBodyProcessTests.RSSSampler(pid: worker)
        let upload = try curl(
            port, "-X POST -H 'Content-Type: application/octet-stream' -T '\(file)' https://localhost:\(port)/openai/upload")
        let download = try ChildProcess.shell(
            "curl -sS --cacert '\(pki.caFile)' -H 'Authorization: Bearer \(ProxyFixture.clientKey)' 'https://localhost:\(port)/openai/bytes?n=\(size)' | sha256sum"
        )
        let peak = sampler.stop()
        #expect(upload.stdout == "{\"length\":\(size),\"sha256\":\"\(expected)\"}", "\(upload.stdout) \(upload.stderr)")
        #expect(download.stdout.hasPrefix(expected), "\(download.stdout) \(download.stderr)")
        #expect(peak - before < LargeBodyProcessTests.rssBudgetKiB, "worker RSS grew from \(before) KiB to \(peak) KiB")
        withExtendedLifetime(upstream) {}
    }
}
