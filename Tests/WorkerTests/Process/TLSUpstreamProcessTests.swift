import Foundation
import Testing
import TestSupport

/// https upstreams (issue 5): verified against `tls_ca_file` or the system trust store, by a
/// Python `ssl` server, so that what is tested is OpenSSL's verdict on a foreign TLS stack.
@Suite(.serialized) struct TLSUpstreamProcessTests {
    let pki: TestCertificates

    init() throws { pki = try TestCertificates() }

    /// The proxy and the upstream it forwards to, kept alive together.
    final class Pair {
        let upstream: TLSMockUpstream
        let proxy: ProxyFixture
        init(_ upstream: TLSMockUpstream, _ proxy: ProxyFixture) { self.upstream = upstream; self.proxy = proxy }
        func request(_ method: String, _ target: String) throws -> RawConnection.Response {
            try withExtendedLifetime(upstream) { try proxy.request(method, target) }
        }
        func connect() throws -> RawConnection { try proxy.connect() }
    }

    func proxy(
        certificate: String, useCA: Bool = true, host: String = "localhost",
        environment: [String: String] = [:]
    ) throws -> Pair {
        let upstream = try TLSMockUpstream(certificate: pki.certificate(certificate), key: pki.key(certificate))
        let extra = useCA ? "tls_ca_file: \"\(pki.caFile)\"" : ""
        let f = try ProxyFixture(
            upstreams: [
                .init(
                    name: "openai", path: "/openai",
                    target: "https://\(host):\(upstream.port)", extra: extra)
            ],
            environment: environment)
        return Pair(upstream, f)
    }

    @Test func trustedUpstreamRelaysHeadersAndBodyByteForByte() throws {
        let f = try proxy(certificate: "server")
        let response = try f.request("GET", "/openai/v1/models")
        #expect(response.status == 200)
        #expect(response.bodyText == "{\"ok\":true,\"path\":\"/v1/models\"}\n")
        #expect(response.headers(named: "set-cookie") == ["a=1", "b=2"])
        #expect(response.header("x-upstream") == "python-ssl")
        #expect(response.header("content-length") == String(response.body.count))
    }

    @Test func anIPLiteralTargetIsVerifiedAgainstTheCertificatesIPAddress() throws {
        let f = try proxy(certificate: "server", host: "127.0.0.1")
        #expect(try f.request("GET", "/openai/x").status == 200)
    }

    @Test func sseChunksAreNotBufferedByTLS() throws {
        let f = try proxy(certificate: "server")
        let connection = try f.connect()
        try connection.send("GET /openai/sse HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(ProxyFixture.clientKey)\r\n\r\n")
        var arrivals: [(String, UInt64)] = []
        let response = try connection.readResponse { chunk in
            let text = String(decoding: chunk, as: UTF8.self)
            for word in ["one", "two", "three"] where text.contains("data: \(word)") {
                arrivals.append((word, DispatchTime.now().uptimeNanoseconds))
            }
        }
        #expect(response.status == 200)
        #expect(response.bodyText == "data: one\n\ndata: two\n\ndata: three\n\n")
        #expect(arrivals.map(\.0) == ["one", "two", "three"])
        if arrivals.count == 3 {
            // The mock sends them 300 ms apart: each must arrive on its own.
            #expect(arrivals[1].1 - arrivals[0].1 > 200_000_000)
            #expect(arrivals[2].1 - arrivals[1].1 > 200_000_000)
        }
        withExtendedLifetime(f) {}
    }

    @Test func withoutTheCAtheUpstreamIsUntrusted() throws {
        // The system store (here: an empty bundle, so the test does not depend on the machine's).
        let empty = try pki.directory.write("empty.pem", "")
        let f = try proxy(
            certificate: "server", useCA: false,
            environment: ["SSL_CERT_FILE": empty, "SSL_CERT_DIR": pki.path + "/none"])
        let response = try f.request("GET", "/openai/x")
        #expect(response.status == 502)
        let message = response.openAIError?["message"] as? String ?? ""
        #expect(message.contains("untrusted"), "\(message)")
        #expect(response.openAIError?["code"] as? String == "upstream_tls_error")
    }

    @Test func sslCertFileExtendsTheSystemTrustStore() throws {
        let f = try proxy(certificate: "server", useCA: false, environment: ["SSL_CERT_FILE": pki.caFile])
        #expect(try f.request("GET", "/openai/x").status == 200)
    }

    @Test func anExpiredCertificateIs502Expired() throws {
        let f = try proxy(certificate: "expired")
        let response = try f.request("GET", "/openai/x")
        #expect(response.status == 502)
        let message = response.openAIError?["message"] as? String ?? ""
        #expect(message.contains("expired"), "\(message)")
    }

    @Test func aCertificateForAnotherHostIs502WrongHost() throws {
        for host in ["localhost", "127.0.0.1"] {
            let f = try proxy(certificate: "wronghost", host: host)
            let response = try f.request("GET", "/openai/x")
            #expect(response.status == 502)
            let message = response.openAIError?["message"] as? String ?? ""
            #expect(message.contains("wrong host"), "\(host): \(message)")
        }
    }

    @Test func aCAThatDidNotIssueTheCertificateIsNotTrusted() throws {
        let upstream = try TLSMockUpstream(certificate: pki.certificate("server"), key: pki.key("server"))
        let f = Pair(
            upstream,
            try ProxyFixture(upstreams: [
                .init(
                    name: "openai", path: "/openai", target: upstream.baseURL,
                    extra: "tls_ca_file: \"\(pki.certificate("otherca"))\"")
            ]))
        let response = try f.request("GET", "/openai/x")
        #expect(response.status == 502)
        #expect((response.openAIError?["message"] as? String ?? "").contains("untrusted"))
    }

    @Test func pooledTLSConnectionsAreReused() throws {
        let f = try proxy(certificate: "server")
        for i in 0..<5 {
            // A new client connection each time: reuse is on the upstream side.
            #expect(try f.request("GET", "/openai/r\(i)").status == 200)
        }
        let stats = try f.request("GET", "/openai/stats")
        #expect(stats.bodyText == "{\"handshakes\": 1}", "\(stats.bodyText)")
    }

    @Test func anUpstreamThatTruncatesWithoutCloseNotifyAbortsTheResponse() throws {
        let f = try proxy(certificate: "server")
        let connection = try f.connect()
        try connection.send("GET /openai/truncate HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(ProxyFixture.clientKey)\r\n\r\n")
        var completed = false
        do {
            let response = try connection.readResponse()
            completed = response.status == 200
        } catch {
            completed = false  // the connection was cut before the response ended: what we want
        }
        #expect(!completed, "a truncated upstream body must not be relayed as complete")
        #expect(connection.isClosedByPeer())
        withExtendedLifetime(f) {}
    }
}
