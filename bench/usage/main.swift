// bench/usage-callgrind.sh's driver: feeds one response body to a fresh UsageReader N times, in
// slices of SLICE bytes (as the upstream's reads would), so that callgrind can count the
// instructions of the reader alone. Usage: usage-bench FILE CONTENT-TYPE N [SLICE]
import Foundation

let args = CommandLine.arguments
let body = try! Data(contentsOf: URL(fileURLWithPath: args[1]))
let contentType = args[2]
let n = Int(args[3])!
let slice = args.count > 4 ? Int(args[4])! : body.count
var sink = 0
// As the tap does (UsageObserver): one reader, restarted in place for each response, the header
// value read as bytes.
var reader = UsageReader()
let contentTypeBytes = Array(contentType.utf8)
@inline(never) func once(_ bytes: UnsafeRawBufferPointer) -> Int {
    contentTypeBytes.withUnsafeBytes {
        reader.restart(status: 200, contentType: .init(headerValue: $0), contentEncoding: .init(headerValue: nil))
    }
    var i = 0
    while i < bytes.count {
        let end = min(i + slice, bytes.count)
        reader.feed(UnsafeRawBufferPointer(rebasing: bytes[i..<end]))
        i = end
    }
    let r = reader.end(complete: true)
    return (r.inputTokens ?? 0) &+ (r.outputTokens ?? 0)
}
body.withUnsafeBytes { bytes in
    for _ in 0..<n { sink &+= once(bytes) }
}
let r: UsageResult = body.withUnsafeBytes { bytes in
    var reader = UsageReader(status: 200, contentType: contentType, contentEncoding: nil)
    reader.feed(bytes)
    return reader.end(complete: true)
}
print("result: \(r) sink \(sink)")
