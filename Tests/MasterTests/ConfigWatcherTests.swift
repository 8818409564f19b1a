import Testing
@testable import FluxgateMaster

/// The file watcher's decision, without files: only a content change reloads, and an unreadable
/// file warns once per episode.
@Suite struct ConfigWatcherTests {
    @Test func sameContentIsNoChangeAndNewContentIs() {
        var last: UInt64? = 1
        var unreadable = false
        #expect(ConfigWatcher.decide(observation: .content(1), lastContent: &last, unreadable: &unreadable) == .none)
        #expect(ConfigWatcher.decide(observation: .content(2), lastContent: &last, unreadable: &unreadable) == .changed)
        #expect(ConfigWatcher.decide(observation: .content(2), lastContent: &last, unreadable: &unreadable) == .none)
    }

    @Test func aDeletedFileWarnsOncePerEpisodeAndARestoreWithNewContentReloads() {
        var last: UInt64? = 1
        var unreadable = false
        #expect(
            ConfigWatcher.decide(observation: .unreadable(errno: 2), lastContent: &last, unreadable: &unreadable)
                == .becameUnreadable(errno: 2))
        #expect(ConfigWatcher.decide(observation: .unreadable(errno: 2), lastContent: &last, unreadable: &unreadable) == .none)
        #expect(
            ConfigWatcher.decide(observation: .content(1), lastContent: &last, unreadable: &unreadable) == .none,
            "restored unchanged: nothing to do")
        #expect(
            ConfigWatcher.decide(observation: .unreadable(errno: 13), lastContent: &last, unreadable: &unreadable)
                == .becameUnreadable(errno: 13),
            "a new episode warns again")
        #expect(ConfigWatcher.decide(observation: .content(3), lastContent: &last, unreadable: &unreadable) == .changed)
    }
}
