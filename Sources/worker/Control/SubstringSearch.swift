// Temporary: Routing/RequestTarget.swift calls `Substring.range(of:)`, a Foundation method the
// worker saw only because Common imported Foundation. Common no longer does (the control channel
// has its own JSON coder), so this stands in until that call becomes the standard library's
// `firstRange(of:)`; then delete this file.
extension Substring {
    func range(of needle: String) -> Range<Index>? {
        firstRange(of: needle)
    }
}
