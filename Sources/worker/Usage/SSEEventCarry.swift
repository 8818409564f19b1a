#if canImport(Glibc)
import Glibc
#endif

/// Keeps the start of an event that a read cut, so that the event is read whole with the next
/// read's bytes (`docs/usage.md`, "Cost"): reads arrive in pieces of any size, and an event cut
/// in two was read byte by byte and its data scanned as JSON, where a whole one is passed by the
/// splitter's fast path (`SSEEventSplitter+Whole`) for a few memcmps.
///
/// At most `capacity` bytes are kept, from an event's first byte. An event that does not fit is
/// read the ordinary way (streamed through the splitter, whose 1 MiB cap for one event applies as
/// before), from its first byte: the result is the same either way, only the cost differs. The
/// buffer is allocated the first time an event is kept and then reused for the reader's life (one
/// per connection), never per read.
struct SSEEventCarry {
    static let capacity = 4096

    private final class Storage {
        let base = UnsafeMutableRawPointer.allocate(byteCount: SSEEventCarry.capacity, alignment: 16)
        deinit { base.deallocate() }
    }

    private var storage: Storage?
    /// Bytes kept: the start of an event, with no blank line in them.
    private(set) var count = 0

    /// For a new stream: what was kept of the last one is dropped (an event the stream ended
    /// inside is not dispatched).
    mutating func reset() {
        count = 0
    }

    /// Splits the stream's next slice: the kept bytes first, completed from `bytes`, then the rest
    /// of `bytes`, keeping the start of an event they end inside when it fits.
    mutating func split<Sink: SSEEventSink>(
        _ bytes: UnsafeRawBufferPointer, with splitter: inout SSEEventSplitter, into sink: inout Sink
    ) {
        guard !bytes.isEmpty else { return }
        var start = 0
        if count > 0 {
            start = resume(bytes, with: &splitter, into: &sink)
            guard start < bytes.count else { return }
        }
        let rest = start == 0 ? bytes : UnsafeRawBufferPointer(rebasing: bytes[start...])
        let stop = splitter.split(rest, into: &sink, holding: Self.capacity)
        if stop < rest.count { keep(UnsafeRawBufferPointer(rebasing: rest[stop...])) }
    }

    /// The kept bytes, completed with `bytes` up to the blank line that ends their event: split;
    /// returns where to go on in `bytes`.
    private mutating func resume<Sink: SSEEventSink>(
        _ bytes: UnsafeRawBufferPointer, with splitter: inout SSEEventSplitter, into sink: inout Sink
    ) -> Int {
        guard let base = storage?.base else { return 0 }
        let kept = count
        // The kept bytes hold no blank line; one may begin at `bytes`' first byte, when the kept
        // bytes end a line there (an LF, or a CR that is not a CRLF's).
        let last = base.load(fromByteOffset: kept &- 1, as: UInt8.self)
        let lineEnded = last == 0x0A || (last == 0x0D && bytes[0] != 0x0A)
        let blank = SSEEventSplitter.blankLine(bytes, from: 0, afterLineEnd: lineEnded)
        let ended = blank < bytes.count
        // To the blank line's end (a CRLF's LF too: the splitter's fast path reads an event whose
        // blank line it holds whole).
        var wanted = bytes.count
        if ended {
            wanted = blank &+ 1
            if bytes[blank] == 0x0D && wanted < bytes.count && bytes[wanted] == 0x0A { wanted &+= 1 }
        }
        let taken = min(wanted, Self.capacity &- kept)
        (base + kept).copyMemory(from: bytes.baseAddress!, byteCount: taken)
        count = kept &+ taken
        let buffer = UnsafeRawBufferPointer(start: base, count: count)
        let stop = splitter.split(buffer, into: &sink, holding: Self.capacity)
        if stop == count {
            count = 0
            return taken
        }
        if stop >= kept {
            // An event begins in the bytes taken from this slice: read on from the slice.
            count = 0
            return stop &- kept
        }
        if taken == bytes.count && !ended {
            // This slice too ends inside the kept event, which still fits.
            if stop > 0 { base.copyMemory(from: base + stop, byteCount: count &- stop) }
            count &-= stop
            return bytes.count
        }
        // The event is larger than the carry: read the ordinary way, from its first byte.
        splitter.split(UnsafeRawBufferPointer(rebasing: buffer[stop...]), into: &sink)
        count = 0
        return taken
    }

    private mutating func keep(_ bytes: UnsafeRawBufferPointer) {
        if storage == nil { storage = Storage() }
        storage!.base.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        count = bytes.count
    }
}
