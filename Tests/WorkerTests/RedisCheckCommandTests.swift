import NIOCore
import Testing
@testable import FluxgateWorker

// docs/rate-limits.md "Across hosts": a check's EVALSHA, written as RESP by hand, is byte for
// byte what hiredis's formatter makes of the same arguments, and hiredis's reader reads it back.

@Suite struct RedisCheckCommandTests {
    func written(_ command: RedisCheckCommand, sha: [UInt8]?) -> [UInt8] {
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        command.write(sha: sha, to: &buffer)
        return Array(buffer.readableBytesView)
    }

    func formatted(_ arguments: [String]) -> [UInt8] {
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        RedisWire.write(arguments.map { Array($0.utf8) }, to: &buffer)
        return Array(buffer.readableBytesView)
    }

    @Test func oneKeyIsWhatHiredisFormats() {
        let sha = String(repeating: "a", count: 40)
        let command = RedisCheckCommand(
            keys: [Array("fluxgate:requests:k:team-a".utf8)], limits: (100, 0), memberPrefix: Array("77-".utf8),
            sequence: 1_234_567)
        #expect(
            written(command, sha: Array(sha.utf8))
                == formatted(["EVALSHA", sha, "1", "fluxgate:requests:k:team-a", "60000000", "100", "77-1234567"]))
    }

    @Test func twoKeysAndTheEvalFallbackAreWhatHiredisFormats() {
        let command = RedisCheckCommand(
            keys: [Array("p:requests:k:a".utf8), Array("p:requests:u:openai".utf8)], limits: (5, 1_000_000),
            memberPrefix: Array("9-".utf8), sequence: 0)
        #expect(
            written(command, sha: nil)
                == formatted([
                    "EVAL", RedisScript.source, "2", "p:requests:k:a", "p:requests:u:openai", "60000000", "5", "1000000", "9-0",
                ]))
    }
}
