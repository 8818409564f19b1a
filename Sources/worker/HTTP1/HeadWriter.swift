import NIOCore

/// Writes a message head into a `ByteBuffer`'s spare capacity through one raw pointer.
///
/// Every `ByteBuffer.writeString`/`writeStaticString` checks capacity and uniqueness and moves
/// the writer index on its own: 150-250 instructions a call, and a head takes 30-40 calls. Here
/// the capacity is made once for an upper bound of the head's size, then each piece is a bounds
/// check and a `memcpy`.
struct HeadWriter {
    private let base: UnsafeMutableRawPointer
    private let capacity: Int
    private(set) var count = 0

    /// Writes into `bytes` (`ByteBuffer.writeHead` makes them; a `String`'s uninitialised
    /// storage also serves).
    init(_ bytes: UnsafeMutableRawBufferPointer) {
        base = bytes.baseAddress!
        capacity = bytes.count
    }

    @inline(__always)
    mutating func write(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress else { return }
        // A wrong bound is a bug, never a buffer overrun.
        precondition(count + bytes.count <= capacity, "HeadWriter: upper bound too small")
        (base + count).copyMemory(from: source, byteCount: bytes.count)
        count += bytes.count
    }

    /// Takes back what was written after the first `count` bytes.
    mutating func rewind(to count: Int) {
        precondition(count <= self.count)
        self.count = count
    }

    @inline(__always)
    mutating func write(_ string: StaticString) {
        write(UnsafeRawBufferPointer(start: string.utf8Start, count: string.utf8CodeUnitCount))
    }

    /// A `String`'s UTF-8 (named apart from `write(_: StaticString)` so that literals, which
    /// would otherwise pick this overload, are copied without a `String` round trip).
    mutating func write(string: String) {
        if string.utf8.withContiguousStorageIfAvailable({ write(UnsafeRawBufferPointer($0)) }) == nil {
            Array(string.utf8).withUnsafeBytes { write($0) }
        }
    }
}

extension ByteBuffer {
    /// Appends what `body` writes, at most `maxBytes` (a wrong bound traps).
    mutating func writeHead(maxBytes: Int, _ body: (inout HeadWriter) -> Void) {
        writeWithUnsafeMutableBytes(minimumWritableBytes: maxBytes) { bytes in
            var writer = HeadWriter(bytes)
            body(&writer)
            return writer.count
        }
    }
}
