import CBrotli

/// `br` (RFC 7932), through libbrotlidec's streaming `BrotliDecoderDecompressStream`. The window
/// is the format's (at most 16 MiB; the large-window extension stays off).
final class BrotliDecoder {
    private let state: OpaquePointer
    private let buffer = DecodeBuffer()
    private(set) var isFinished = false

    init?() {
        guard let state = BrotliDecoderCreateInstance(nil, nil, nil) else { return nil }
        self.state = state
    }

    deinit { BrotliDecoderDestroyInstance(state) }

    func decode(_ input: UnsafeRawBufferPointer, into output: (UnsafeRawBufferPointer) -> Void) throws(UsageBodyDecoder.Failure) {
        guard !input.isEmpty, !isFinished else { return }  // bytes after the stream's end are not read
        var availableIn = input.count
        var nextIn: UnsafePointer<UInt8>? = input.baseAddress!.assumingMemoryBound(to: UInt8.self)
        while true {
            var availableOut = buffer.capacity
            var nextOut: UnsafeMutablePointer<UInt8>? = buffer.base
            let result = BrotliDecoderDecompressStream(state, &availableIn, &nextIn, &availableOut, &nextOut, nil)
            let produced = buffer.capacity - availableOut
            if produced > 0 { output(buffer.bytes(produced)) }
            switch result {
            case BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT:
                continue
            case BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT:
                return
            case BROTLI_DECODER_RESULT_SUCCESS:
                isFinished = true
                return
            default:
                throw UsageBodyDecoder.Failure()
            }
        }
    }
}
