import Foundation
import NIOCore
import Testing
import TestSupport
@testable import FluxgateWorker

// docs/rate-limits.md "Across hosts": the check script in a real redis-server (Debian's), fed
// the batches `RedisCheckBatch` writes. Every batch is exact: a check is admitted when, and only
// when, its window holds fewer than the limit, whether it came alone, with others in one script
// run, or from another connection; a refused check records nothing.

@Suite(.serialized) struct RedisScriptTests {
    /// One connection to the test's Redis: commands written as the worker writes them, replies
    /// read by the worker's reader.
    enum Failure: Error {
        case scriptLoad
        case closed
    }

    final class Client {
        let connection: RawConnection
        let reader = RedisReader()
        var sha: [UInt8] = []

        init(_ redis: RedisServer) throws {
            connection = try RawConnection(port: redis.port)
            guard case .bulk(let sha?) = try call(["SCRIPT", "LOAD", RedisScript.source]) else {
                throw Failure.scriptLoad
            }
            self.sha = sha
        }

        func call(_ arguments: [String]) throws -> RedisReply {
            var buffer = ByteBufferAllocator().buffer(capacity: 256)
            RedisWire.write(arguments.map { Array($0.utf8) }, to: &buffer)
            return try send(buffer)
        }

        /// The batch's answers, one per check.
        func run(_ checks: [RedisCheckCommand]) throws -> [RedisCheckBatch.Outcome] {
            var batch = RedisCheckBatch()
            for check in checks {
                let added = batch.add(check)
                #expect(added)
            }
            var buffer = ByteBufferAllocator().buffer(capacity: 256)
            batch.write(sha: sha, to: &buffer)
            switch try send(buffer) {
            case .array(let values): return values.map { RedisCheckBatch.outcome($0.integerValue ?? -1) }
            case .integer(let value) where checks.count == 1: return [RedisCheckBatch.outcome(value)]
            default: return []
            }
        }

        /// The checks' answers, in one batch or each in its own (the script's path for a batch
        /// of one: pushed first, taken back when refused).
        func run(_ checks: [RedisCheckCommand], oneByOne: Bool) throws -> [RedisCheckBatch.Outcome] {
            guard oneByOne else { return try run(checks) }
            return try checks.flatMap { try run([$0]) }
        }

        private func send(_ buffer: ByteBuffer) throws -> RedisReply {
            try connection.send(Array(buffer.readableBytesView))
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = read(connection.fd, &chunk, chunk.count)
                guard count > 0 else { throw Failure.closed }
                var bytes = ByteBufferAllocator().buffer(capacity: count)
                bytes.writeBytes(chunk[0..<count])
                if let reply = reader.feed(bytes)?.first { return reply }
            }
        }
    }

    static let key = Array("fluxgate:admissions:k:team-a".utf8)
    static let upstream = Array("fluxgate:admissions:u:openai".utf8)

    static func refusedAfterAMinute(_ outcome: RedisCheckBatch.Outcome, index: Int = 0) -> Bool {
        guard case .refused(let refusing, let wait) = outcome else { return false }
        return refusing == index && wait > 50_000_000 && wait <= 60_000_000
    }

    @Test func aBatchAdmitsExactlyTheLimitAndAnswersEachCheckOnItsOwn() throws {
        let redis = try RedisServer()
        defer { redis.kill() }
        let client = try Client(redis)
        let outcomes = try client.run(Array(repeating: RedisCheckCommand(first: Self.key, firstLimit: 5), count: 8))
        #expect(outcomes.prefix(5).allSatisfy { $0 == .admitted })
        #expect(outcomes.suffix(3).allSatisfy { Self.refusedAfterAMinute($0) }, "\(outcomes)")
        #expect(try redis.cli("LLEN", "fluxgate:admissions:k:team-a") == "5", "a refused check records nothing")
        let again = try client.run([RedisCheckCommand(first: Self.key, firstLimit: 5)])
        #expect(again.count == 1 && Self.refusedAfterAMinute(again[0]))
        let ttl = Int(try redis.cli("PTTL", "fluxgate:admissions:k:team-a")) ?? 0
        #expect(ttl > 60_000 && ttl <= 61_000, "the key expires a little after its newest admission is a minute old")
    }

    @Test(arguments: [false, true]) func aCheckWithTwoLimitsIsAdmittedByBothOrRecordedInNeither(oneByOne: Bool) throws {
        let redis = try RedisServer()
        defer { redis.kill() }
        let client = try Client(redis)
        let both = RedisCheckCommand(first: Self.key, firstLimit: 3, second: Self.upstream, secondLimit: 2)
        let outcomes = try client.run([both, both, both, RedisCheckCommand(first: Self.key, firstLimit: 3), both], oneByOne: oneByOne)
        #expect(outcomes[0] == .admitted && outcomes[1] == .admitted && outcomes[3] == .admitted)
        #expect(Self.refusedAfterAMinute(outcomes[2], index: 1), "the upstream's limit refused: \(outcomes)")
        #expect(Self.refusedAfterAMinute(outcomes[4], index: 0), "then the key's: \(outcomes)")
        #expect(try redis.cli("LLEN", "fluxgate:admissions:k:team-a") == "3")
        #expect(try redis.cli("LLEN", "fluxgate:admissions:u:openai") == "2")
    }

    @Test func batchesFromSeveralConnectionsAdmitExactlyTheLimitTogether() throws {
        let redis = try RedisServer()
        defer { redis.kill() }
        let clients = try (0..<3).map { _ in try Client(redis) }
        let check = RedisCheckCommand(first: Self.key, firstLimit: 100, second: Self.upstream, secondLimit: 1_000)
        var admitted = 0
        var sizes = [1, 7, 30, 2, 64, 5, 13]
        var sent = 0
        var turn = 0
        while sent < 1_000 {
            let size = min(sizes[turn % sizes.count], 1_000 - sent)
            let outcomes = try clients[turn % clients.count].run(Array(repeating: check, count: size))
            #expect(outcomes.count == size)
            admitted += outcomes.filter { $0 == .admitted }.count
            sent += size
            turn += 1
            sizes.swapAt(turn % sizes.count, (turn * 3) % sizes.count)
        }
        #expect(admitted == 100)
        #expect(try redis.cli("LLEN", "fluxgate:admissions:k:team-a") == "100")
        #expect(try redis.cli("LLEN", "fluxgate:admissions:u:openai") == "100")
    }

    @Test(arguments: [false, true]) func expiredAdmissionsNeitherCountNorStay(oneByOne: Bool) throws {
        let redis = try RedisServer()
        defer { redis.kill() }
        let client = try Client(redis)
        // 25 admissions long out of the window (instants of 1970), the oldest last.
        _ = try client.call(["RPUSH", "fluxgate:admissions:k:team-a"] + (0..<25).map { String(1_000_000 - $0) })
        let outcomes = try client.run(
            Array(repeating: RedisCheckCommand(first: Self.key, firstLimit: 10), count: 12), oneByOne: oneByOne)
        #expect(outcomes.prefix(10).allSatisfy { $0 == .admitted }, "\(outcomes)")
        #expect(outcomes.suffix(2).allSatisfy { Self.refusedAfterAMinute($0) }, "\(outcomes)")
        // Past a multiple of the limit (35 entries > 30) the expired ones were cut off at once.
        #expect(try redis.cli("LLEN", "fluxgate:admissions:k:team-a") == "10")
        let stamps = try redis.cli("LRANGE", "fluxgate:admissions:k:team-a", "0", "-1").split(separator: "\n")
        let now = UInt64(Date().timeIntervalSince1970 * 1_000_000)
        #expect(stamps.allSatisfy { UInt64($0).map { $0 + 60_000_000 > now && $0 <= now + 60_000_000 } ?? false }, "\(stamps)")
    }

    @Test func checksOneByOneAdmitExactlyTheLimitAndKeepTheKeyAMinuteAndASecond() throws {
        let redis = try RedisServer()
        defer { redis.kill() }
        let client = try Client(redis)
        var outcomes: [RedisCheckBatch.Outcome] = []
        for _ in 0..<7 { outcomes += try client.run([RedisCheckCommand(first: Self.key, firstLimit: 5)]) }
        #expect(outcomes.prefix(5).allSatisfy { $0 == .admitted }, "\(outcomes)")
        #expect(outcomes.suffix(2).allSatisfy { Self.refusedAfterAMinute($0) }, "\(outcomes)")
        // Each admission's instant, in µs (TIME's seconds and its microseconds padded to six digits).
        let stamps = try redis.cli("LRANGE", "fluxgate:admissions:k:team-a", "0", "-1").split(separator: "\n")
        let now = UInt64(Date().timeIntervalSince1970 * 1_000_000)
        #expect(stamps.count == 5)
        #expect(
            stamps.allSatisfy { $0.count == 16 && UInt64($0).map { $0 + 60_000_000 > now && $0 <= now + 60_000_000 } ?? false }, "\(stamps)"
        )
        let left = Int(try redis.cli("PTTL", "fluxgate:admissions:k:team-a")) ?? 0
        #expect(left > 59_000 && left <= 61_000, "\(left)")
    }

    @Test func aLoweredLimitCountsOnlyTheNewestAdmissions() throws {
        let redis = try RedisServer()
        defer { redis.kill() }
        let client = try Client(redis)
        let raised = try client.run(Array(repeating: RedisCheckCommand(first: Self.key, firstLimit: 20), count: 8))
        #expect(raised.allSatisfy { $0 == .admitted })
        // A reload lowers the limit to 5: the window already holds 8, so nothing more is admitted.
        let lowered = try client.run([RedisCheckCommand(first: Self.key, firstLimit: 5)])
        #expect(lowered.count == 1 && Self.refusedAfterAMinute(lowered[0]))
        // Raised to 10: room for 2.
        let room = try client.run(Array(repeating: RedisCheckCommand(first: Self.key, firstLimit: 10), count: 3))
        #expect(room[0] == .admitted && room[1] == .admitted && Self.refusedAfterAMinute(room[2]), "\(room)")
    }
}
