import Foundation
import Testing
import TestSupport

/// `fluxgate -t` as an operator runs it: the real binary, its exit status and what it prints.
@Suite struct CheckConfigProcessTests {
    @Test func exampleConfigurationIsValid() throws {
        let result = try ChildProcess.run(Binaries.fluxgate, ["-t", "--config", Binaries.packageRoot + "/examples/fluxgate.yaml"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("is valid"))
        #expect(!result.stderr.contains("warning"), "the reference config should produce no warnings")
    }

    @Test func everyProblemOfABadFileIsListedAndExitIs78() throws {
        let dir = try TemporaryDirectory()
        let file = try dir.write(
            "bad.yaml",
            """
            version: 2
            server:
              bind_address: localhost:8080
              max_connections: 0
              workers: none
              colour: blue
            upstreams:
              request_timeout_ms: 0
              a:
                request_path: api
                target_url: ftp://example.com
                api_key: sk-provider-secret-one
              b:
                request_path: /x?y
                api_key: sk-provider-secret-two
            api_keys:
              static:
                - id: one
                  key: client-secret-aaaaaaaaaaaaaaaaaaaa
                  upstreams: [nope]
                - id: one
                  key: client-secret-aaaaaaaaaaaaaaaaaaaa
              jwt:
                - id: dev
                  key: too-short-jwt-secret

            """)
        let result = try ChildProcess.run(Binaries.fluxgate, ["--check-config", "--config", file])
        #expect(result.status == 78)
        let expected = [
            "bad.yaml:1:10: error: version",
            "bad.yaml:3:17: error: server.bind_address",
            "bad.yaml:4:20: error: server.max_connections",
            "bad.yaml:5:12: error: server.workers",
            "bad.yaml:6:3: warning: server.colour",
            "bad.yaml:8:23: error: upstreams.request_timeout_ms",
            "bad.yaml:10:19: error: upstreams.a.request_path",
            "bad.yaml:11:17: error: upstreams.a.target_url",
            "bad.yaml:14:5: error: upstreams.b.target_url",
            "bad.yaml:14:19: error: upstreams.b.request_path",
            "bad.yaml:20:19: error: api_keys.static[0].upstreams[0]",
            "bad.yaml:21:11: error: api_keys.static[1].id",
            "bad.yaml:22:12: error: api_keys.static[1].key",
            "bad.yaml:25:12: error: api_keys.jwt[0].key",
        ]
        for line in expected {
            #expect(result.stderr.contains(line), "missing \(line) in:\n\(result.stderr)")
        }
        for secret in ["sk-provider-secret", "client-secret-aaaa", "too-short-jwt-secret"] {
            #expect(!result.stderr.contains(secret) && !result.stdout.contains(secret), "secret leaked")
        }
        #expect(result.stderr.contains("is invalid"))
    }

    @Test func missingFileIsRejectedWithTheReason() throws {
        let result = try ChildProcess.run(Binaries.fluxgate, ["-t", "--config", "/nonexistent/fluxgate.yaml"])
        #expect(result.status == 78)
        #expect(result.stderr.contains("/nonexistent/fluxgate.yaml"))
        #expect(result.stderr.contains("No such file or directory"))
    }

    @Test func unknownOptionIsAUsageErrorWithStatus2() throws {
        let result = try ChildProcess.run(Binaries.fluxgate, ["--frobnicate"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("--frobnicate"))
    }

    @Test func helpAndVersionExitZero() throws {
        let help = try ChildProcess.run(Binaries.fluxgate, ["--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("--config"))
        let version = try ChildProcess.run(Binaries.fluxgate, ["--version"])
        #expect(version.status == 0)
        #expect(version.stdout.contains("0.1."))
    }
}
