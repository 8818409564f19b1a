#if canImport(Glibc)
import Glibc
#endif
import CLinux

/// The model names of `fluxgate_tokens_total`'s `model` label (docs/observability.md "Model
/// names"), one table for the whole host: the first 100 distinct names each upstream's responses
/// gave since the master started, then `other`. It lives in the metrics segment after the
/// workers' regions and is never cleared while the master lives, so a slot names one model for
/// every worker, past or present, and the master renders the same name for it from every region.
///
/// Layout (Int64 words; a contract between the two executables):
///
///     group g      1608 words: the upstream's series key (claimed by compare-and-swap, 0 = free),
///                  7 spare words, then 100 slots
///     slot s       16 words: the name's hash (claimed by compare-and-swap, 0 = free), its length
///                  in bytes (published after the bytes; 0 while they are being written), then
///                  up to 112 bytes of the name
///
/// A worker finds a name by open addressing on its hash among the group's 100 slots and claims a
/// free slot with a compare-and-swap, so two workers meeting a new name at once get the same
/// slot, and there are never more than 100 names per upstream: a name finding every slot taken
/// by others counts as `other`. Only the worker whose compare-and-swap won writes the name.
/// Nothing waits: a worker that finds the hash before its name is published counts under the slot.
public struct ModelNameTable: @unchecked Sendable {
    public static let groupCount = 512
    public static let namesPerUpstream = 100
    /// Longer names (and empty ones) count as `other`.
    public static let maxNameBytes = 112
    static let slotWords = 16
    static let groupHeaderWords = 8
    static let groupWords = groupHeaderWords + namesPerUpstream * slotWords
    public static let bytes = groupCount * groupWords * 8
    /// The code of `model="other"`; a name in slot s has code s + 1.
    public static let otherCode: Int64 = 101
    /// The code of `model="none"`: the response and the request named no model.
    public static let noneCode: Int64 = 102

    let base: UnsafeMutablePointer<Int64>

    init(base: UnsafeMutableRawPointer) { self.base = base.assumingMemoryBound(to: Int64.self) }

    /// The code of `name` under `upstream` (a series key), its slot claimed when new.
    public func code(upstream: Int64, name: String) -> Int64 {
        var name = name
        return name.withUTF8 { code(upstream: upstream, name: $0) }
    }

    public func code(upstream: Int64, name: UnsafeBufferPointer<UInt8>) -> Int64 {
        guard (1...Self.maxNameBytes).contains(name.count), let group = group(upstream, claim: true) else { return Self.otherCode }
        let hash = Self.hash(name)
        var index = Int(UInt64(bitPattern: hash) % UInt64(Self.namesPerUpstream))
        var probes = 0
        while probes < Self.namesPerUpstream {
            let slot = group + Self.groupHeaderWords + index * Self.slotWords
            let found = fluxgate_atomic_load(slot)
            if found == 0 {
                if fluxgate_atomic_cas(slot, 0, hash) != 0 {
                    let bytes = UnsafeMutableRawPointer(slot + 2).assumingMemoryBound(to: UInt8.self)
                    bytes.update(from: name.baseAddress!, count: name.count)
                    fluxgate_publish(slot + 1, Int64(name.count))
                    return Int64(index + 1)
                }
                continue  // another worker claimed it just now, perhaps for this name: look again
            }
            // A hash of another name that is published differs only by a collision: look on.
            if found == hash, !Self.differs(slot, name) { return Int64(index + 1) }
            index = (index + 1) % Self.namesPerUpstream
            probes += 1
        }
        return Self.otherCode
    }

    /// The name of `code` under `upstream`; nil for `other`, a code never given out, or a name
    /// whose writer died before publishing it (its counts then show as `other`).
    public func name(upstream: Int64, code: Int64) -> String? {
        guard (1...Int64(Self.namesPerUpstream)).contains(code), let group = group(upstream, claim: false) else { return nil }
        let slot = group + Self.groupHeaderWords + Int(code - 1) * Self.slotWords
        let length = Int(fluxgate_published(slot + 1))
        guard (1...Self.maxNameBytes).contains(length) else { return nil }
        return String(
            decoding: UnsafeBufferPointer(start: UnsafeRawPointer(slot + 2).assumingMemoryBound(to: UInt8.self), count: length),
            as: UTF8.self)
    }

    /// The group of `upstream`, claimed when new (`claim`); nil when every group is another's.
    private func group(_ upstream: Int64, claim: Bool) -> UnsafeMutablePointer<Int64>? {
        var index = Int(UInt64(bitPattern: upstream &* -7_046_029_254_386_353_131) >> 40) % Self.groupCount
        for _ in 0..<Self.groupCount {
            let group = base + index * Self.groupWords
            let found = fluxgate_atomic_load(group)
            if found == upstream { return group }
            if found == 0 {
                guard claim else { return nil }
                if fluxgate_atomic_cas(group, 0, upstream) != 0 || fluxgate_atomic_load(group) == upstream { return group }
            }
            index = (index + 1) % Self.groupCount
        }
        return nil
    }

    /// The slot's published name is not `name` (a name not yet published does not differ).
    private static func differs(_ slot: UnsafeMutablePointer<Int64>, _ name: UnsafeBufferPointer<UInt8>) -> Bool {
        let length = Int(fluxgate_published(slot + 1))
        guard length != 0 else { return false }
        guard length == name.count else { return true }
        return memcmp(slot + 2, name.baseAddress!, length) != 0
    }

    /// FNV-1a (64 bits), never 0 (a free slot).
    static func hash(_ name: UnsafeBufferPointer<UInt8>) -> Int64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in name { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return hash == 0 ? 1 : Int64(bitPattern: hash)
    }
}
