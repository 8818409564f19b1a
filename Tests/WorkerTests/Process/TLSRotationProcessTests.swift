import Foundation
import Testing
import TestSupport

/// Certificate rotation as certbot does it: new files renamed over the old ones, then a reload.
/// New connections present the new certificate; nothing restarts.
@Suite struct TLSRotationProcessTests {
    func presentedFingerprint(port: Int) throws -> String {
        try ChildProcess.shell(
            "openssl s_client -connect 127.0.0.1:\(port) -servername localhost </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256"
        ).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Replaces `to` with a copy of `from` the way certbot does: write beside it, rename over it.
    func install(_ from: String, as to: String) throws {
        let staging = to + ".new"
        try? FileManager.default.removeItem(atPath: staging)
        try FileManager.default.copyItem(atPath: from, toPath: staging)
        #expect(rename(staging, to) == 0)
    }

    @Test func renewedFilesAndAReloadMakeNewConnectionsPresentTheNewCertificate() throws {
        let pki = try TestCertificates()
        let live = pki.path + "/live"
        try FileManager.default.createDirectory(atPath: live, withIntermediateDirectories: true)
        try install(pki.certificate("server"), as: live + "/fullchain.pem")
        try install(pki.key("server"), as: live + "/privkey.pem")
        let proxy = try FluxgateInstance(
            yaml: """
                version: 1
                server:
                  bind_address: "127.0.0.1:0"
                  workers: 2
                  tls:
                    certificate_file: "\(live)/fullchain.pem"
                    private_key_file: "\(live)/privkey.pem"

                """)
        let workers = Set(proxy.workerPIDs)
        #expect(try presentedFingerprint(port: proxy.port) == pki.fingerprint("server"))

        try install(pki.certificate("rotated"), as: live + "/fullchain.pem")
        try install(pki.key("rotated"), as: live + "/privkey.pem")
        let reload = try proxy.reload()
        #expect(reload.status == 0, "\(reload.stderr)")
        for _ in 0..<4 {  // several connections, so both workers' listeners are exercised
            #expect(try presentedFingerprint(port: proxy.port) == pki.fingerprint("rotated"))
        }
        #expect(Set(proxy.workerPIDs) == workers, "a certificate change is a hot reload: no worker restarted")
    }
}
