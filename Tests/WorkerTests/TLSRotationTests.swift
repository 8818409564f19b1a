import Common
import Foundation
import Logging
import Testing
import TestSupport
@testable import FluxgateWorker

/// Certificate rotation at the worker: a configuration applied with renewed certificate contents
/// reaches new connections. (The master's SIGHUP reload is not in yet; when it is, the process
/// test sends SIGHUP instead of calling `apply`.)
@Suite(.serialized) struct TLSRotationTests {
    func configuration(_ pki: TestCertificates, _ name: String) throws -> Configuration {
        let yaml = """
            version: 1
            server:
              bind_address: "127.0.0.1:0"
              tls:
                certificate_file: "\(pki.certificate(name))"
                private_key_file: "\(pki.key(name))"
            """
        let result = ConfigLoader.load(bytes: Array(yaml.utf8), file: pki.path + "/fluxgate.yaml")
        return try #require(result.configuration, "\(result.diagnostics)")
    }

    func presentedFingerprint(port: Int) throws -> String {
        try ChildProcess.shell(
            "openssl s_client -connect 127.0.0.1:\(port) -servername localhost </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256"
        ).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func newConnectionsPresentTheRenewedCertificate() async throws {
        let pki = try TestCertificates()
        let server = try await WorkerServer.start(listener: .bind(BindAddress(parsing: "127.0.0.1:0")!),
                                                  configuration: try configuration(pki, "server"),
                                                  logger: Logger(label: "test"))
        let port = try #require(server.localAddress?.port)
        #expect(try presentedFingerprint(port: port) == pki.fingerprint("server"))
        server.apply(try configuration(pki, "rotated"))
        try await Task.sleep(nanoseconds: 50_000_000)
        #expect(try presentedFingerprint(port: port) == pki.fingerprint("rotated"))
        await server.shutdown(gracePeriod: .zero)
    }
}
