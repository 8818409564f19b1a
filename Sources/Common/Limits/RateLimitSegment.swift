#if canImport(Glibc)
import Glibc
#endif
import CLinux

/// The host-local state of every rate limit (docs/rate-limits.md "On one host"): a memfd the
/// master creates before it spawns the workers, mapped MAP_SHARED by all of them (inherited at the
/// descriptor `--rate-limits-fd` names), so that counts survive a worker's crash, its
/// replacement and every reload. It is large and sparse: only the pages of limits in use are
/// ever touched.
///
/// Layout (a contract between the two executables, version in the magic):
///
///     0                 header: magic "FLXLIM01", directory entries published (atomic)
///     4 KiB             directory: `maxEntries` entries of 32 bytes:
///                       name offset, name length, region offset (atomic), kind
///     4 KiB + 512 KiB   names and regions, handed out by the master and never reused
///
/// A region is named by the configuration ("k/r/team-a": key team-a's requests), never by a
/// list position. Only the master writes the directory; workers read it when a configuration
/// arrives, which the master sends only after making room for that configuration's limits.
public final class RateLimitSegment: @unchecked Sendable {
    public static let size = 1 << 34  // 16 GiB of address space; a page is memory only once touched
    public static let maxEntries = 16 * 1024
    static let magic: Int64 = 0x3130_4D49_4C58_4C46  // "FLXLIM01" little-endian
    static let directoryOffset = 4096
    static let entryBytes = 32
    static let heapOffset = directoryOffset + maxEntries * entryBytes

    private let memory: SharedMemory
    public var descriptor: FileDescriptor { memory.descriptor }
    var base: UnsafeMutableRawPointer { memory.base }
    /// The master's book of what it handed out (the master alone writes the segment's directory).
    private var assigned: [String: (entry: Int, region: Int, capacity: Int)] = [:]
    private var inFlightRegions: [Int] = []
    private var subjectTables: [Int] = []
    private var nextFree = heapOffset

    private init(_ memory: SharedMemory) { self.memory = memory }

    /// The master's segment (zero-filled). Address space, not a commitment of 16 GiB
    /// (`MAP_NORESERVE`).
    public static func create() throws(SystemError) -> RateLimitSegment {
        RateLimitSegment(try SharedMemory.create(name: "fluxgate-ratelimits", size: size, magic: magic, reservesSwap: false))
    }

    /// A worker's view of the segment it inherited; nil when the descriptor is not one.
    public static func attach(_ fd: FileDescriptor) -> RateLimitSegment? {
        SharedMemory.attach(fd, size: size, magic: magic, reservesSwap: false).map(RateLimitSegment.init)
    }

    func word(_ offset: Int) -> UnsafeMutablePointer<Int64> { memory.word(offset) }

    private func entry(_ index: Int) -> Int { Self.directoryOffset + index * Self.entryBytes }

    // MARK: Worker

    /// Name → directory entry, read once per configuration.
    public func directory() -> [String: Int] {
        let published = Int(fluxgate_atomic_load(word(8)))
        var result: [String: Int] = [:]
        for index in 0..<min(published, Self.maxEntries) {
            let at = entry(index)
            let nameOffset = Int(word(at).pointee)
            let nameLength = Int(word(at + 8).pointee)
            let bytes = UnsafeRawBufferPointer(start: base + nameOffset, count: nameLength)
            result[String(decoding: bytes, as: UTF8.self)] = index
        }
        return result
    }

    /// The requests log of directory entry `index`, as current now (the master may move a log
    /// that had to grow: `RequestLogRegion.lock` follows).
    public func requestLog(entry index: Int) -> RequestLogRegion {
        RequestLogRegion(segment: self, entry: index)
    }

    public func inFlight(entry index: Int) -> InFlightRegion {
        InFlightRegion(base: base + Int(fluxgate_atomic_load(word(entry(index) + 16))))
    }

    func regionOffset(entry index: Int) -> Int { Int(fluxgate_atomic_load(word(entry(index) + 16))) }
    func regionOffsetWord(entry index: Int) -> UnsafeMutablePointer<Int64> { word(entry(index) + 16) }

    // MARK: Master

    /// Makes room for every limit of `configuration` before it is sent: a region for each name
    /// not seen before, a larger one (the old entries copied under its lock) for a requests log
    /// whose limit grew. Returns the names that found no room (the segment is full).
    public func prepare(for configuration: Configuration) -> [String] {
        var unplaced: [String] = []
        for (owner, name, limits) in configuration.limitedOwners {
            if let rpm = limits.requestsPerMinute {
                let region = RateLimitRegionName(owner, name, .requests)
                if !ensureRequestLog(region.description, capacity: Int(rpm)) { unplaced.append(region.description) }
            }
            if limits.maxInFlight != nil {
                let region = RateLimitRegionName(owner, name, .inFlight)
                if !ensureInFlight(region.description) { unplaced.append(region.description) }
            }
            if limits.tokensPerMinute != nil {
                let region = RateLimitRegionName(owner, name, .tokens)
                if !ensureTokenLog(region.description) { unplaced.append(region.description) }
            }
        }
        for key in configuration.apiKeys.jwt {
            guard let limits = key.limits, !limits.isEmpty else { continue }
            unplaced += prepareSubjects(kid: key.id, limits: limits)
        }
        return unplaced
    }

    /// A JWT key's subject table, and its requests table when it has `requests_per_minute`
    /// (grown, its slots copied, when the limit grew).
    private func prepareSubjects(kid: String, limits: Configuration.Limits) -> [String] {
        let tableName = RateLimitRegionName(.key, kid, .subjects).description
        if assigned[tableName] == nil {
            guard let region = allocate(SubjectTable.bytes) else { return [tableName] }
            SubjectTable.initialize(base + region)
            guard publish(tableName, region: region, capacity: 0) else { return [tableName] }
            subjectTables.append(region)
        }
        guard let rpm = limits.requestsPerMinute, let table = assigned[tableName] else { return [] }
        let name = RateLimitRegionName(.key, kid, .subjectRequests).description
        guard let current = assigned[name] else {
            guard let region = allocate(SubjectRequestsTable.bytes(capacity: Int(rpm))) else { return [name] }
            SubjectRequestsTable.initialize(base + region, capacity: Int(rpm))
            return publish(name, region: region, capacity: Int(rpm)) ? [] : [name]
        }
        guard Int(rpm) > current.capacity else { return [] }
        let grown = max(Int(rpm), min(current.capacity * 2, Int(ConfigLimits.maxRequestsPerMinute)))
        guard let region = allocate(SubjectRequestsTable.bytes(capacity: grown)) else { return [name] }
        SubjectRequestsTable.initialize(base + region, capacity: grown)
        SubjectTable(base: base + table.region).withLock {
            SubjectRequestsTable.move(from: base + current.region, to: base + region) {
                fluxgate_atomic_store(word(entry(current.entry) + 16), Int64(region))
            }
        }
        assigned[name] = (current.entry, region, grown)
        return []
    }

    public func subjectTable(entry index: Int) -> SubjectTable {
        SubjectTable(base: base + regionOffset(entry: index))
    }

    public func subjectRequests(entry index: Int) -> SubjectRequestsTable {
        SubjectRequestsTable(segment: self, entry: index)
    }

    /// The master, after reaping the worker that used `cell`: its in-flight requests are over.
    public func reset(cell: Int) {
        for region in inFlightRegions { InFlightRegion(base: base + region).reset(cell: cell) }
        for region in subjectTables {
            let table = SubjectTable(base: base + region)
            table.forEachUsedSlot { table.inFlight(slot: $0).reset(cell: cell) }
        }
    }

    private func allocate(_ bytes: Int) -> Int? {
        let start = (nextFree + 63) & ~63
        guard start + bytes <= Self.size else { return nil }
        nextFree = start + bytes
        return start
    }

    private func publish(_ name: String, region: Int, capacity: Int) -> Bool {
        let index = assigned.count
        guard index < Self.maxEntries, let nameOffset = allocate(name.utf8.count) else { return false }
        _ = UnsafeMutableRawBufferPointer(start: base + nameOffset, count: name.utf8.count).copyBytes(from: name.utf8)
        let at = entry(index)
        word(at).pointee = Int64(nameOffset)
        word(at + 8).pointee = Int64(name.utf8.count)
        fluxgate_atomic_store(word(at + 16), Int64(region))
        assigned[name] = (index, region, capacity)
        fluxgate_atomic_store(word(8), Int64(index + 1))
        return true
    }

    private func ensureInFlight(_ name: String) -> Bool {
        guard assigned[name] == nil else { return true }
        guard let region = allocate(InFlightRegion.bytes), publish(name, region: region, capacity: 0) else { return false }
        inFlightRegions.append(region)
        return true
    }

    private func ensureTokenLog(_ name: String) -> Bool {
        guard assigned[name] == nil else { return true }
        guard let region = allocate(TokenLogRegion.bytes) else { return false }
        TokenLogRegion.initialize(base + region)
        return publish(name, region: region, capacity: TokenLogRegion.capacity)
    }

    public func tokenLog(entry index: Int) -> TokenLogRegion {
        TokenLogRegion(region: base + regionOffset(entry: index))
    }

    private func ensureRequestLog(_ name: String, capacity: Int) -> Bool {
        guard let current = assigned[name] else {
            guard let region = allocate(RequestLogRegion.bytes(capacity: capacity)) else { return false }
            RequestLogRegion.initialize(base + region, capacity: capacity)
            return publish(name, region: region, capacity: capacity)
        }
        guard capacity > current.capacity else { return true }
        // Grown at least twofold, so that raising a limit step by step moves it a few times only.
        let grown = max(capacity, min(current.capacity * 2, Int(ConfigLimits.maxRequestsPerMinute)))
        guard let region = allocate(RequestLogRegion.bytes(capacity: grown)) else { return false }
        RequestLogRegion.initialize(base + region, capacity: grown)
        RequestLogRegion.move(from: base + current.region, to: base + region) {
            fluxgate_atomic_store(word(entry(current.entry) + 16), Int64(region))
        }
        assigned[name] = (current.entry, region, grown)
        return true
    }
}

/// The largest values the loader accepts, where the segment needs them.
public enum ConfigLimits {
    public static let maxRequestsPerMinute: UInt64 = 1_000_000
}
