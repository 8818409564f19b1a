#if canImport(Glibc)
import Glibc
#endif
import CLinux

/// The host's metrics (docs/observability.md "How the counters are shared"): a memfd the master
/// creates before spawning any worker, mapped MAP_SHARED by master and workers (inherited at
/// `WorkerDescriptors.metrics`). One region per worker cell (the cell of `InFlightSegment`, passed
/// as `--metrics-cell`), written only by the worker using that cell, read by the master. When the
/// master reaps a worker it folds the region into totals it keeps and clears the region.
///
/// The memfd is sparse: a page costs memory only once a worker touched it, and clearing a region
/// gives its pages back (MADV_REMOVE).
public final class MetricsSegment: @unchecked Sendable {
    public static let regionCount = InFlightSegment.cellCount
    static let regionsBytes = MetricsRegion.Layout.regionBytes * regionCount
    /// The regions, then the host's one `ModelNameTable`.
    public static let size = regionsBytes + ModelNameTable.bytes

    private let memory: SharedMemory
    public var descriptor: FileDescriptor { memory.descriptor }
    private var base: UnsafeMutableRawPointer { memory.base }

    private init(_ memory: SharedMemory) { self.memory = memory }

    /// The master's segment (zero-filled).
    public static func create() throws(SystemError) -> MetricsSegment {
        MetricsSegment(try SharedMemory.create(name: "fluxgate-metrics", size: size))
    }

    /// A worker's view of the segment it inherited; nil when the descriptor is not one.
    public static func attach(_ fd: FileDescriptor) -> MetricsSegment? {
        SharedMemory.attach(fd, size: size).map(MetricsSegment.init)
    }

    /// The region of cell `index` (0..<regionCount).
    public func region(_ index: Int) -> MetricsRegion {
        precondition((0..<Self.regionCount).contains(index), "metrics cell out of range")
        return MetricsRegion(base: base + index * MetricsRegion.Layout.regionBytes, modelNames: modelNames)
    }

    /// The host's model names (`fluxgate_tokens_total`'s `model`), shared by every worker.
    public var modelNames: ModelNameTable { ModelNameTable(base: base + Self.regionsBytes) }

    /// The master, after reaping the worker that used the region (and folding it): zero again.
    public func clear(_ index: Int) {
        let region = base + index * MetricsRegion.Layout.regionBytes
        // MADV_REMOVE frees a shared mapping's pages (they read back as zeros): madvise(2).
        if madvise(region, MetricsRegion.Layout.regionBytes, 9 /* MADV_REMOVE */) != 0 {
            memset(region, 0, MetricsRegion.Layout.regionBytes)
        }
    }
}
