import Testing

@testable import FluxgateWorker

/// The worker's model names give the `String` of the bytes, the one made before when the bytes
/// are among the last few names.
@Suite struct UsageModelNamesTests {
    @Test func aNameIsItsBytesAndIsMadeOnce() {
        let names = UsageModelNames()
        let models = ["gpt-4o", "claude-sonnet-4-5-20250929", "", "gpt-4o-mini", "o3", "gpt-4", "x"]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let model = models.randomElement(using: &generator)!
            let name = Array(model.utf8).withUnsafeBytes { names.name($0) }
            #expect(name == model)
        }
        // A name is kept: the same bytes give the same storage (a name of more than 15 bytes).
        let last = Array("claude-sonnet-4-5-20250929".utf8).withUnsafeBytes { names.name($0) }
        let again = Array("claude-sonnet-4-5-20250929".utf8).withUnsafeBytes { names.name($0) }
        #expect(
            last.utf8.withContiguousStorageIfAvailable { $0.baseAddress }
                == again.utf8.withContiguousStorageIfAvailable { $0.baseAddress })
    }

    @Test func aNameLongerThanTheSlotsIsMadeButNotKept() {
        let names = UsageModelNames()
        let long = String(repeating: "m", count: UsageModelNames.capacity + 1)
        #expect(Array(long.utf8).withUnsafeBytes { names.name($0) } == long)
        #expect(Array(long.utf8).withUnsafeBytes { names.name($0) } == long)
        #expect(Array("gpt-4o".utf8).withUnsafeBytes { names.name($0) } == "gpt-4o")
    }
}
