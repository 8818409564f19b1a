#if canImport(Glibc)
import Glibc
#endif

/// Where `fluxgate-worker` lives: beside the master in a build tree, or in
/// `../libexec/fluxgate/` relative to it once installed (`/usr/sbin/fluxgate` →
/// `/usr/libexec/fluxgate/fluxgate-worker`).
enum WorkerExecutable {
    static func locate(override: String?) -> String? {
        if let override { return access(override, X_OK) == 0 ? override : nil }
        guard let own = selfPath() else { return nil }
        let directory = String(own[..<(own.lastIndex(of: "/") ?? own.startIndex)])
        let candidates = [directory + "/fluxgate-worker", directory + "/../libexec/fluxgate/fluxgate-worker"]
        return candidates.first { access($0, X_OK) == 0 }
    }

    private static func selfPath() -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
