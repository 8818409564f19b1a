import NIOCore
import Testing
@testable import FluxgateWorker

// docs/rate-limits.md "Across hosts": the checks of one tick as one EVALSHA. Its RESP, written by
// hand, is byte for byte what hiredis's formatter makes of the same arguments; its keys are
// named once however many checks name them; each check's answer is read from its own integer.

@Suite struct RedisCheckBatchTests {
    static let sha = Array(String(repeating: "a", count: 40).utf8)
    static let teamA = Array("fluxgate:admissions:k:team-a".utf8)
    static let teamB = Array("fluxgate:admissions:k:team-b".utf8)
    static let openai = Array("fluxgate:admissions:u:openai".utf8)

    func written(_ batch: RedisCheckBatch, sha: [UInt8]?) -> [UInt8] {
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        batch.write(sha: sha, to: &buffer)
        return Array(buffer.readableBytesView)
    }

    func formatted(_ arguments: [String]) -> [UInt8] {
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        RedisWire.write(arguments.map { Array($0.utf8) }, to: &buffer)
        return Array(buffer.readableBytesView)
    }

    @Test func oneCheckIsWhatHiredisFormats() {
        var batch = RedisCheckBatch()
        do {
            let added = batch.add(RedisCheckCommand(first: Self.teamA, firstLimit: 100))
            #expect(added)
        }
        #expect(
            written(batch, sha: Self.sha)
                == formatted([
                    "EVALSHA", String(repeating: "a", count: 40), "1", "fluxgate:admissions:k:team-a", "60000000", "61000", "100", "1",
                ]))
    }

    @Test func aBatchOfOneWrittenAgainFromTheLastOneIsStillWhatHiredisFormats() {
        var last: RedisCheckBatch.Written?
        func written(_ check: RedisCheckCommand, sha: [UInt8]?) -> [UInt8] {
            var batch = RedisCheckBatch()
            let added = batch.add(check)
            #expect(added)
            var buffer = ByteBufferAllocator().buffer(capacity: 64)
            batch.write(sha: sha, to: &buffer, reusing: &last)
            return Array(buffer.readableBytesView)
        }
        let sha = String(repeating: "a", count: 40)
        func command(_ keys: [String], _ limits: [String], _ code: Int) -> [UInt8] {
            formatted(["EVALSHA", sha, String(keys.count)] + keys + ["60000000", "61000"] + limits + [String(code)])
        }
        let teamA = RedisCheckCommand(first: Self.teamA, firstLimit: 100)
        let both = RedisCheckCommand(first: Self.teamA, firstLimit: 100, second: Self.openai, secondLimit: 7)
        let a = "fluxgate:admissions:k:team-a"
        let u = "fluxgate:admissions:u:openai"
        #expect(written(teamA, sha: Self.sha) == command([a], ["100"], 1))
        #expect(written(teamA, sha: Self.sha) == command([a], ["100"], 1))
        #expect(written(RedisCheckCommand(first: Self.teamA, firstLimit: 5), sha: Self.sha) == command([a], ["5"], 1))
        #expect(
            written(RedisCheckCommand(first: Self.teamB, firstLimit: 5), sha: Self.sha)
                == command(["fluxgate:admissions:k:team-b"], ["5"], 1))
        #expect(written(both, sha: Self.sha) == command([a, u], ["100", "7"], 1 + 2 * 256))
        #expect(written(both, sha: Self.sha) == command([a, u], ["100", "7"], 1 + 2 * 256))
        #expect(
            written(RedisCheckCommand(first: Self.teamA, firstLimit: 100, second: Self.openai, secondLimit: 8), sha: Self.sha)
                == command([a, u], ["100", "8"], 1 + 2 * 256))
        let other = String(repeating: "b", count: 40)
        #expect(
            written(teamA, sha: Array(other.utf8)) == formatted(["EVALSHA", other, "1", a, "60000000", "61000", "100", "1"]))
        // EVAL (after NOSCRIPT) is written in full, and not kept.
        #expect(written(teamA, sha: nil) == formatted(["EVAL", RedisScript.source, "1", a, "60000000", "61000", "100", "1"]))
    }

    @Test func checksOfOneTickNameEachKeyOnceAndTheEvalFallbackIsWhatHiredisFormats() {
        var batch = RedisCheckBatch()
        do {
            let added = batch.add(RedisCheckCommand(first: Self.teamA, firstLimit: 5))
            #expect(added)
        }
        do {
            let added = batch.add(RedisCheckCommand(first: Self.teamA, firstLimit: 5, second: Self.openai, secondLimit: 1_000_000))
            #expect(added)
        }
        do {
            let added = batch.add(RedisCheckCommand(first: Self.teamB, firstLimit: 7, second: Self.openai, secondLimit: 1_000_000))
            #expect(added)
        }
        do {
            let added = batch.add(RedisCheckCommand(first: Self.openai, firstLimit: 1_000_000))
            #expect(added)
        }
        #expect(batch.count == 4)
        #expect(
            written(batch, sha: nil)
                == formatted([
                    "EVAL", RedisScript.source, "3", "fluxgate:admissions:k:team-a", "fluxgate:admissions:u:openai",
                    "fluxgate:admissions:k:team-b", "60000000", "61000", "5", "1000000", "7",
                    "1", String(1 + 2 * 256), String(3 + 2 * 256), "2",
                ]))
    }

    @Test func aKeyWithAnotherLimitOrAFullBatchWaitsForTheNextCommand() {
        var batch = RedisCheckBatch()
        do {
            let added = batch.add(RedisCheckCommand(first: Self.teamA, firstLimit: 5))
            #expect(added)
        }
        // A reload changed team-a's limit in the middle of a tick: not in this script run.
        do {
            let added = batch.add(RedisCheckCommand(first: Self.teamA, firstLimit: 6))
            #expect(!added)
        }
        do {
            let added = batch.add(RedisCheckCommand(first: Self.teamB, firstLimit: 1, second: Self.teamA, secondLimit: 9))
            #expect(!added)
        }
        #expect(batch.keys == [Self.teamA], "a check that does not fit leaves nothing behind")
        for _ in 1..<RedisCheckBatch.maxChecks {
            let added = batch.add(RedisCheckCommand(first: Self.teamA, firstLimit: 5))
            #expect(added)
        }
        do {
            let added = batch.add(RedisCheckCommand(first: Self.teamA, firstLimit: 5))
            #expect(!added)
        }
        batch.removeAll()
        #expect(batch.isEmpty && batch.keys.isEmpty)
        do {
            let added = batch.add(RedisCheckCommand(first: Self.teamA, firstLimit: 6))
            #expect(added)
        }
    }

    @Test func eachAnswerSaysAdmittedOrWhichLimitRefusedAndForHowLong() {
        #expect(RedisCheckBatch.outcome(0) == .admitted)
        #expect(RedisCheckBatch.outcome(2 * 12_345) == .refused(index: 0, waitMicroseconds: 12_345))
        #expect(RedisCheckBatch.outcome(2 * 60_000_000 + 1) == .refused(index: 1, waitMicroseconds: 60_000_000))
    }

    @Test func integerRepliesAreReadWithoutHiredisOnlyWhileHiredisHoldsNothing() {
        let reader = RedisReader()
        var integers: [Int64] = []
        var others: [RedisReply] = []
        func feed(_ text: String) -> Bool {
            var buffer = ByteBufferAllocator().buffer(capacity: 64)
            buffer.writeString(text)
            return reader.feed(buffer, integer: { integers.append($0) }, each: { others.append(RedisReply($0)) })
        }
        #expect(feed(":0\r\n:-5\r\n+OK\r\n:7\r\n:12"))
        #expect(integers == [0, -5])
        #expect(others == [.status("OK"), .integer(7)])
        // hiredis holds the start of `:123`: the rest is its too, and so is what follows it.
        #expect(feed("3\r\n:8\r\n"))
        #expect(others == [.status("OK"), .integer(7), .integer(123), .integer(8)])
        // Nothing held any more: integers are read here again.
        #expect(feed(":120000000\r\n"))
        #expect(integers == [0, -5, 120_000_000])
        #expect(!feed("?"), "not RESP")
    }
}
