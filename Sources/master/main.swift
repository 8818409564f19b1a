#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Common

// Signals are blocked before anything can start a thread, so every thread inherits the mask and
// the master reads them synchronously from a signalfd (signalfd(2): the signals must be blocked
// or they are delivered the ordinary way). SIGPIPE is ignored: writing to a worker that just died
// must be an EPIPE, not the master's death.
Signals.blockForSignalFD()
signal(SIGPIPE, SIG_IGN)

let environment = ProcessInfoEnvironment.current()
let status: Int32
do {
    let command = try FluxgateCommand.parse(Array(CommandLine.arguments.dropFirst()))
    status = command.execute(environment: environment)
} catch {
    // ArgumentParser would exit 64 for a usage error; fluxgate (as nginx) exits 2
    // (docs/operations.md "Command line").
    let code = FluxgateCommand.exitCode(for: error)
    if code == .success {
        Console.out(FluxgateCommand.fullMessage(for: error))
        status = 0
    } else {
        Console.error(FluxgateCommand.fullMessage(for: error))
        status = FluxgateExit.usage.rawValue
    }
}
exit(status)
