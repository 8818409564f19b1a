import Foundation
import Testing
import TestSupport

/// Bodies stream through with backpressure: byte-identical, and the worker's memory stays flat
/// whatever the size (docs/routing-and-forwarding.md "Bodies"). 1 GiB each way by default;
/// FLUXGATE_TEST_BODY_MIB changes it.
@Suite(.serialized) struct LargeBodyProcessTests {
    static let size = (ProcessInfo.processInfo.environment["FLUXGATE_TEST_BODY_MIB"].flatMap(Int.init) ?? 1024) * 1024 * 1024
    /// Allowed RSS growth of the worker during one transfer.
    static let rssBudgetKiB = 16 * 1024

    /// Samples a process's RSS on a background thread until stopped; reports the peak.
    final class RSSSampler: @unchecked Sendable {
        private let lock = NSLock()
        private var peak = 0
        private var running = true
        init(pid: Int32) {
            Thread.detachNewThread { [self] in
                while lock.withLock({ running }) {
                    if let rss = FluxgateInstance.rssKiB(of: pid) { lock.withLock { peak = max(peak, rss) } }
                    usleep(20_000)
                }
            }
        }
        func stop() -> Int {
            lock.withLock {
                running = false; return peak
            }
        }
    }

    /// Runs `transfer` on a fresh connection through a warmed-up worker and checks that the
    /// worker's peak RSS during it stays within the budget of its RSS before.
    func withFlatWorkerMemory(_ f: ProxyFixture, _ transfer: (RawConnection) throws -> Void) throws {
        let worker = try #require(f.proxy.workerPIDs.first)
        #expect(try f.request("GET", "/openai/warm-up").status == 200)
        let before = try #require(FluxgateInstance.rssKiB(of: worker))
        let sampler = RSSSampler(pid: worker)
        let connection = try f.connect()
        connection.setTimeout(120)
        try transfer(connection)
        let peak = sampler.stop()
        #expect(peak - before < Self.rssBudgetKiB, "worker RSS grew from \(before) KiB to \(peak) KiB")
    }

    @Test func uploadArrivesByteIdenticalWithFlatWorkerMemory() throws {
        let f = try ProxyFixture()
        try withFlatWorkerMemory(f) { connection in
            try connection.send(
                "POST /openai/upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(ProxyFixture.clientKey)\r\nContent-Length: \(Self.size)\r\n\r\n"
            )
            try connection.sendPattern(count: Self.size)
            let response = try connection.readResponse()
            #expect(response.status == 200)
            #expect(response.bodyText == "{\"length\":\(Self.size),\"sha256\":\"\(MockPattern.sha256(ofCount: Self.size))\"}")
        }
        #expect(f.mock.requests.last?.header("content-length") == String(Self.size))
    }

    @Test func downloadArrivesByteIdenticalWithFlatWorkerMemory() throws {
        let f = try ProxyFixture()
        try withFlatWorkerMemory(f) { connection in
            try connection.send(
                "GET /openai/bytes?n=\(Self.size) HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(ProxyFixture.clientKey)\r\n\r\n")
            let head = try connection.readHead()
            #expect(head.status == 200)
            #expect(head.header("content-length") == String(Self.size))
            let body = try connection.readStreamedBody(length: Self.size)
            #expect(body.sha256 == MockPattern.sha256(ofCount: Self.size))
        }
    }
}
