import NIOCore

// Apart from the reader so that its pure core builds without NIO (bench/usage-callgrind.sh).
extension UsageReader {
    /// The readable bytes of `buffer`, which must be payload only (a chunked body's sizes and
    /// CRLFs are not part of it).
    mutating func feed(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { feed($0) }
    }
}
