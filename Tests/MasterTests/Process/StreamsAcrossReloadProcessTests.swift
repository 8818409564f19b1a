import Foundation
import Testing
import TestSupport

/// A running SSE stream and a slow response are never cut by a reload: a hot reload leaves the
/// connection alone; a graceful restart lets the old worker finish it before it exits.
@Suite(.serialized) struct StreamsAcrossReloadProcessTests {
    /// Starts a 40-event stream (50 ms apart) and returns a reader of its whole body.
    static func startStream(port: Int) throws -> RawConnection {
        let connection = try RawConnection(port: port, timeout: 20)
        try connection.send("GET /openai/sse?n=40&interval_ms=50 HTTP/1.1\r\nHost: x\r\n\r\n")
        return connection
    }

    static func expectComplete(_ response: RawConnection.Response) {
        #expect(response.status == 200)
        let indices = response.bodyText.split(separator: "\n").filter { $0.hasPrefix("data: ") }
            .compactMap { $0.firstMatch(of: /"index":(\d+)/).flatMap { Int($0.1) } }
        #expect(indices == Array(0..<40), "every event, in order, exactly once")
    }

    @Test func aStreamSurvivesAHotReload() throws {
        let master = try MasterFixture(workers: 2)
        let stream = try Self.startStream(port: master.port)
        usleep(300_000)
        try master.rewrite(workers: 2, maxConnections: 500)
        #expect(try master.reload().status == 0)
        Self.expectComplete(try stream.readResponse(method: "GET"))
    }

    @Test func aStreamAndASlowResponseSurviveAGracefulRestart() throws {
        let master = try MasterFixture(workers: 2)
        let stream = try Self.startStream(port: master.port)
        let slow = try RawConnection(port: master.port, timeout: 20)
        try slow.send("GET /openai/delay-headers?ms=1500 HTTP/1.1\r\nHost: x\r\n\r\n")
        usleep(300_000)
        let before = Set(master.workerPIDs)
        try master.rewrite(workers: 1)  // shrink: every old worker is replaced or drained
        #expect(try master.reload().status == 0)
        Self.expectComplete(try stream.readResponse(method: "GET"))
        let response = try slow.readResponse(method: "GET")
        #expect(response.status == 200 && response.bodyText == "{\"delayed\":true}")
        let after = master.waitForWorkers(1, excluding: before)
        #expect(after.count == 1 && before.isDisjoint(with: after))
    }
}
