import Common
import Foundation
import Testing
import TestSupport

/// docs/architecture.md "The control protocol", against the real worker with the test as its
/// master: `applyConfig` is acknowledged once applied, refused with the reason when it cannot be.
@Suite struct ControlProtocolProcessTests {
    static func configuration(mock: TestSupport.MockUpstream, path: String) -> Configuration {
        Configuration(
            upstreams: .init(entries: [
                .init(
                    name: "mock",
                    targetURL: TargetURL(
                        scheme: .http, host: "127.0.0.1", explicitPort: UInt16(mock.port),
                        basePath: "", query: nil),
                    apiKey: Secret(""), requestPath: path, apiKeyHeader: .authorization)
            ]))
    }

    @Test func aConfigurationIsAcknowledgedOnceNewRequestsUseIt() throws {
        let mock = try TestSupport.MockUpstream()
        let worker = try WorkerProcess(configuration: Self.configuration(mock: mock, path: "/one"))
        #expect(try worker.receive() == ControlMessage(type: .ready, gen: 1))
        #expect(try RawConnection(port: worker.port).request("GET", "/one/x").status == 200)

        try worker.send(ControlMessage(type: .applyConfig, gen: 2, body: .init(config: Self.configuration(mock: mock, path: "/two"))))
        #expect(try worker.receive() == ControlMessage(type: .configApplied, gen: 2))
        // Right after the ack, without waiting: the next request already has the new routes.
        #expect(try RawConnection(port: worker.port).request("GET", "/two/x").status == 200)
        #expect(try RawConnection(port: worker.port).request("GET", "/one/x").status == 404)
    }

    @Test func aConfigurationTheWorkerCannotApplyIsRejectedWithTheReasonAndTheOldOneServes() throws {
        let mock = try TestSupport.MockUpstream()
        let worker = try WorkerProcess(configuration: Self.configuration(mock: mock, path: "/one"))
        #expect(try worker.receive() == ControlMessage(type: .ready, gen: 1))
        // A certificate OpenSSL cannot read (the master's loader would have refused it: this is
        // the worker's own check, for a configuration it did not expect).
        let privateKey = "-----BEGIN PRIVATE KEY-----\nnot-a-key-secret-material\n-----END PRIVATE KEY-----\n"
        var broken = Self.configuration(mock: mock, path: "/two")
        broken.server.tls = .init(
            certificateFile: "cert.pem", certificateChainPEM: "-----BEGIN CERTIFICATE-----\nAAAA\n",
            privateKeyFile: "key.pem", privateKeyPEM: Secret(privateKey))
        try worker.send(ControlMessage(type: .applyConfig, gen: 2, body: .init(config: broken)))

        let rejected = try worker.receive()
        #expect(rejected.type == .configRejected && rejected.gen == 2)
        let reason = try #require(rejected.body.error)
        #expect(reason.hasPrefix("the listener's TLS certificate is unusable: TLS setup failed"), "\(reason)")
        #expect(!reason.contains("not-a-key-secret-material"), "the reason names no key material")
        #expect(try RawConnection(port: worker.port).request("GET", "/one/x").status == 200, "generation 1 still serves")
        #expect(try RawConnection(port: worker.port).request("GET", "/two/x").status == 404)
    }

    /// The master lends a crashed slot's socket to a survivor (docs/operations.md): the worker
    /// serves it until asked to give it back, then closes its copy before it says so.
    @Test func aLentSocketIsServedUntilGivenBackAndThenNoLongerHeld() throws {
        let mock = try TestSupport.MockUpstream()
        let worker = try WorkerProcess(configuration: Self.configuration(mock: mock, path: "/one"))
        #expect(try worker.receive() == ControlMessage(type: .ready, gen: 1))
        let lent = try Sockets.listen(on: BindAddress(parsing: "127.0.0.1:0")!)
        defer { lent.close() }
        let port = Int(try Sockets.localAddress(of: lent).port)

        try worker.lend(lent, as: 42)
        // Queued in the lent socket's backlog until the worker accepts there.
        #expect(try RawConnection(port: port).request("GET", "/one/x").status == 200)
        #expect(worker.holds(lent))

        try worker.send(ControlMessage(type: .releaseListener, body: .init(listener: 42)))
        #expect(try worker.receive() == ControlMessage(type: .listenerReleased, body: .init(listener: 42)))
        #expect(!worker.holds(lent), "given back means closed: another worker may accept there now")
        #expect(try RawConnection(port: worker.port).request("GET", "/one/x").status == 200, "its own socket still serves")
    }

    @Test func aLentSocketWithoutItsDescriptorIsReportedBackAtOnce() throws {
        let mock = try TestSupport.MockUpstream()
        let worker = try WorkerProcess(configuration: Self.configuration(mock: mock, path: "/one"))
        #expect(try worker.receive() == ControlMessage(type: .ready, gen: 1))
        try worker.send(ControlMessage(type: .adoptListener, body: .init(listener: 5)))
        #expect(try worker.receive() == ControlMessage(type: .listenerReleased, body: .init(listener: 5)))
    }
}
