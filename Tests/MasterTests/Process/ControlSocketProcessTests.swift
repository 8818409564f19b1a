import Foundation
import Testing
import TestSupport

/// The operator socket's directory (docs/operations.md "The control socket"): a master started
/// as root outside systemd has no /run/fluxgate yet, so it makes the socket's directory, mode
/// 0755, when only that last component is missing; a missing parent is reported, not invented.
@Suite(.serialized) struct ControlSocketProcessTests {
    static let yaml = "version: 1\nserver:\n  bind_address: \"127.0.0.1:0\"\n  workers: 1\n"

    static func start(socket: String, in directory: TemporaryDirectory) throws -> ChildProcess {
        let config = try directory.write("fluxgate.yaml", yaml)
        let master = try ChildProcess(
            Binaries.fluxgate, ["--config", config, "--control-socket", socket],
            environment: ["FLUXGATE_LOG": "info"])
        if master.waitForLine(containing: "Fluxgate proxy server listening on", timeout: 60) == nil {
            master.signal(SIGKILL)
            throw FluxgateInstance.Failure.didNotStart(stdout: master.stdout, stderr: master.stderr)
        }
        return master
    }

    @Test func aMissingSocketDirectoryIsCreatedWithMode0755AndReloadWorks() throws {
        let directory = try TemporaryDirectory()
        let runtime = directory.path + "/fluxgate"
        let socket = runtime + "/control.sock"
        let master = try Self.start(socket: socket, in: directory)
        var info = stat()
        #expect(stat(runtime, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR)
        #expect(info.st_mode & 0o7777 == 0o755, "mode \(String(info.st_mode & 0o7777, radix: 8))")
        #expect(!master.stdout.contains("Control socket unavailable"), "\(master.stdout)")
        let reload = try ChildProcess.run(Binaries.fluxgate, ["reload", "--control-socket", socket], timeout: 60)
        #expect(reload.status == 0, "\(reload.stderr)")
    }

    @Test func aMissingParentIsReportedAndTheMasterStartsWithoutTheSocket() throws {
        let directory = try TemporaryDirectory()
        let socket = directory.path + "/absent/fluxgate/control.sock"
        let master = try Self.start(socket: socket, in: directory)
        let warning = master.stdout.split(separator: "\n").first { $0.contains("Control socket unavailable") }
        #expect(warning?.contains("mkdir(\(directory.path)/absent/fluxgate): No such file or directory") == true, "\(master.stdout)")
        #expect(!FileManager.default.fileExists(atPath: directory.path + "/absent"), "no directory tree is made up")
        let status = try ChildProcess.run(Binaries.fluxgate, ["status", "--control-socket", socket], timeout: 30)
        #expect(status.status != 0)
    }
}
