import Foundation
import Testing
import TestSupport
@testable import ConfigLoading
import Common

/// `server.tls` and `upstreams.<name>.tls_ca_file`: files read and checked at load, errors with
/// positions, contents carried in the configuration, no key material in any message.
@Suite struct ConfigTLSTests {
    let pki: TestCertificates
    init() throws { pki = try TestCertificates() }

    func serverTLS(_ certificate: String, _ key: String) -> String {
        minimalYAML + "\nserver:\n  tls:\n    certificate_file: \"\(certificate)\"\n    private_key_file: \"\(key)\"\n"
    }

    @Test func aValidServerTLSCarriesTheFileContents() throws {
        let configuration = try #require(expectClean(load(serverTLS(pki.certificate("server"), pki.key("server")))))
        let tls = try #require(configuration.server.tls)
        #expect(tls.certificateChainPEM == (try String(contentsOfFile: pki.certificate("server"), encoding: .utf8)))
        #expect(tls.privateKeyPEM.value == (try String(contentsOfFile: pki.key("server"), encoding: .utf8)))
        #expect("\(tls.privateKeyPEM)" == "<redacted>")
    }

    @Test func aChainFileWithIntermediatesIsAccepted() throws {
        let chain = try pki.directory.write(
            "chain.pem",
            try String(contentsOfFile: pki.certificate("server"), encoding: .utf8)
                + (try String(contentsOfFile: pki.caFile, encoding: .utf8)))
        expectClean(load(serverTLS(chain, pki.key("server"))))
    }

    @Test func aMissingCertificateFileIsReportedAtItsValue() {
        let result = load(serverTLS(pki.path + "/nope.pem", pki.key("server")))
        let found = expectDiagnostic(result, "certificate_file.unreadable", path: "server.tls.certificate_file", at: 9, 23)
        #expect(found?.message.contains("No such file") == true)
    }

    @Test func aFileThatIsNotPEMIsInvalid() throws {
        let junk = try pki.directory.write("junk.pem", "-----BEGIN CERTIFICATE-----\nnot base64!!\n-----END CERTIFICATE-----\n")
        expectDiagnostic(
            load(serverTLS(junk, pki.key("server"))), "certificate_file.invalid",
            path: "server.tls.certificate_file", at: 9, 23)
    }

    @Test func aKeyOfAnotherCertificateIsAMismatchAndNoKeyBytesAreQuoted() throws {
        let result = load(serverTLS(pki.certificate("server"), pki.key("rotated")))
        let found = expectDiagnostic(result, "private_key_file.mismatch", path: "server.tls.private_key_file", at: 10, 23)
        let keyText = try String(contentsOfFile: pki.key("rotated"), encoding: .utf8)
        let body = keyText.split(separator: "\n")[1]
        #expect(found?.message.contains(body) == false)
        #expect(!result.diagnostics.map(\.description).joined().contains("PRIVATE KEY-----"))
    }

    @Test func aCertificateGivenAsTheKeyIsNotAPrivateKey() {
        expectDiagnostic(
            load(serverTLS(pki.certificate("server"), pki.certificate("server"))),
            "private_key_file.invalid", path: "server.tls.private_key_file", at: 10, 23)
    }

    @Test func bothFilesAreRequired() {
        let result = load(minimalYAML + "\nserver:\n  tls:\n    certificate_file: \"\(pki.certificate("server"))\"\n")
        expectDiagnostic(result, "field.missing", path: "server.tls.private_key_file", at: 9, 5)
    }

    @Test func relativeNamesAreRelativeToTheConfigurationFile() throws {
        let yaml = minimalYAML + "\nserver:\n  tls:\n    certificate_file: server.pem\n    private_key_file: server.key\n"
        let result = ConfigLoader.load(bytes: Array(yaml.utf8), file: pki.path + "/fluxgate.yaml")
        #expect(result.configuration?.server.tls?.certificateFile == "server.pem", "\(result.diagnostics)")
    }

    @Test func tlsCAFileIsReadAndChecked() throws {
        let yaml = minimalYAML + "\n    tls_ca_file: \"\(pki.caFile)\"\n"
        let configuration = try #require(expectClean(load(yaml)))
        #expect(configuration.upstreams.entries[0].tlsCA?.pem == (try String(contentsOfFile: pki.caFile, encoding: .utf8)))

        let junk = try pki.directory.write("junk-ca.pem", "hello\n")
        expectDiagnostic(
            load(minimalYAML + "\n    tls_ca_file: \"\(junk)\"\n"), "tls_ca_file.invalid",
            path: "upstreams.openai.tls_ca_file", at: 7, 18)
        expectDiagnostic(
            load(minimalYAML + "\n    tls_ca_file: \"\"\n"), "tls_ca_file.blank",
            path: "upstreams.openai.tls_ca_file", at: 7, 18)
    }

    /// A CA file on an http upstream does nothing: the file loads, with a warning that says so.
    @Test func tlsCAFileOnAnHTTPUpstreamIsAWarning() throws {
        let yaml =
            minimalYAML.replacingOccurrences(of: "https://api.openai.com", with: "http://10.0.0.1:8000")
            + "\n    tls_ca_file: \"\(pki.caFile)\"\n"
        let result = load(yaml)
        expectDiagnostic(result, "tls_ca_file.unused", path: "upstreams.openai.tls_ca_file", at: 7, 18, severity: .warning)
        #expect(result.diagnostics.count == 1)
        #expect(result.configuration?.upstreams.entries.first?.tlsCA != nil)
    }

    @Test func theConfigurationSurvivesJSONForTheWorkers() throws {
        let configuration = try #require(load(serverTLS(pki.certificate("server"), pki.key("server"))).configuration)
        let decoded = try JSONDecoder().decode(Configuration.self, from: JSONEncoder().encode(configuration))
        #expect(decoded == configuration)
    }
}

/// `rate_limits.redis` over TLS: `rediss://` with an optional `tls_ca_file`, which needs it.
@Suite struct ConfigRedisTLSTests {
    let pki: TestCertificates
    init() throws { pki = try TestCertificates() }

    func redis(_ url: String, ca: String?) -> String {
        minimalYAML + "\nrate_limits:\n  redis:\n    url: \(url)\n" + (ca.map { "    tls_ca_file: \"\($0)\"\n" } ?? "")
    }

    @Test func rediss() throws {
        let config = try #require(expectClean(load(redis("rediss://:pw@redis.internal:6380/1", ca: pki.caFile))))
        let settings = try #require(config.rateLimits?.redis)
        #expect(settings.tls && settings.host == "redis.internal" && settings.port == 6380 && settings.database == 1)
        #expect(settings.tlsCA?.pem == (try String(contentsOfFile: pki.caFile, encoding: .utf8)))
        #expect(try #require(expectClean(load(redis("rediss://redis.internal", ca: nil)))).rateLimits?.redis?.tlsCA == nil)
    }

    @Test func aCAFileNeedsRediss() {
        expectDiagnostic(
            load(redis("redis://127.0.0.1", ca: pki.caFile)), "tls_ca_file.without_tls",
            path: "rate_limits.redis.tls_ca_file", at: 10, 18)
    }

    @Test func aCAFileThatIsNoPEMIsAnError() throws {
        let notPEM = try pki.directory.write("not.pem", "hello\n")
        expectDiagnostic(
            load(redis("rediss://127.0.0.1", ca: notPEM)), "tls_ca_file.invalid", path: "rate_limits.redis.tls_ca_file",
            at: 10, 18)
    }
}
