import Foundation
import Testing
import TestSupport

/// docs/security.md "Revoking a key": once `fluxgate reload` reports a configuration applied, no
/// request is authenticated with the previous generation's keys, whichever worker holds the
/// connection: also the old workers of a graceful restart, which drain their keep-alive clients.
@Suite(.serialized) struct KeyRevocationProcessTests {
    static let keptKey = "client-key-kept-0123456789abcdef"
    static let revokedKey = "client-key-revoked-0123456789abcdef"

    @Test func aKeyRemovedWithAWorkerCountChangeIsRefusedOnEveryOpenConnectionOnceTheReloadIsApplied() throws {
        let master = try MasterFixture(workers: 3, clientKeys: [Self.keptKey, Self.revokedKey])
        #expect(master.waitForWorkers(3).count == 3)
        // Keep-alive connections over all three slots' sockets (the kernel hashes each connection
        // to one of them): with 24, the chance that none reaches a replaced worker is 3^-24.
        let connections = try (0..<24).map { _ in try RawConnection(port: master.port, timeout: 15) }
        for connection in connections {
            #expect(try connection.request("GET", "/openai/v1/models", headers: Self.bearer(Self.revokedKey)).status == 200)
        }
        // 3 -> 2: slot 0 takes over socket 2, so the workers of slots 0 and 2 are replaced and
        // drain; slot 1 keeps its worker (applyConfig).
        try master.rewrite(workers: 2, clientKeys: [Self.keptKey])
        let result = try master.reload()
        #expect(result.status == 0, "\(result.stderr)")
        #expect(
            result.stdout.contains("configuration applied") || result.stdout.contains("configuration unchanged"),
            "\(result.stdout)")

        // Right after the answer: every connection refuses the revoked key (401), or is closed.
        var accepted = 0
        var refused = 0
        for connection in connections {
            guard let response = try? connection.request("GET", "/openai/v1/models", headers: Self.bearer(Self.revokedKey))
            else { continue }
            if response.status == 200 { accepted += 1 } else if response.status == 401 { refused += 1 }
        }
        #expect(accepted == 0, "\(accepted) requests with the revoked key were served after the reload was applied")
        #expect(refused > 0, "the open connections were still answered (\(refused) refusals)")
        #expect(try master.get(headers: Self.bearer(Self.keptKey)).status == 200, "the kept key still works")
    }

    static func bearer(_ key: String) -> [(String, String)] { [("Authorization", "Bearer \(key)")] }
}
