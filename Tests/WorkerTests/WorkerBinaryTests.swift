import Foundation
import Testing
import TestSupport

/// What the worker executable links. It receives its configuration as JSON from the master and
/// never reads YAML, so libyaml (ConfigLoading's) must not be among its libraries.
@Suite struct WorkerBinaryTests {
    /// The sonames an ELF file names in its dynamic section are plain strings in its `.dynstr`:
    /// a library the worker links appears there, one it does not link does not.
    @Test func theWorkerDoesNotLinkLibyamlButTheMasterDoes() throws {
        let worker = try Data(contentsOf: URL(fileURLWithPath: Binaries.worker))
        let master = try Data(contentsOf: URL(fileURLWithPath: Binaries.fluxgate))
        let soname = Data("libyaml-0.so".utf8)
        #expect(worker.range(of: soname) == nil)
        #expect(master.range(of: soname) != nil, "the check sees a linked library")
        #expect(worker.range(of: Data("libssl.so".utf8)) != nil, "the check sees the worker's own libraries")
    }
}
