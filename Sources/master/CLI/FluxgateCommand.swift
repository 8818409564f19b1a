import ArgumentParser
import Common
import ConfigLoading
import Logging

/// `fluxgate [--config PATH] [-t] [--version]`, `fluxgate reload | status` (docs/operations.md
/// "Command line").
struct FluxgateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fluxgate",
        abstract: "An LLM API proxy: authenticates clients, routes by path prefix and streams to providers.",
        discussion: """
            The master process loads and validates the configuration, owns the listening sockets and \
            runs one worker process per slot. Logging is controlled by FLUXGATE_LOG (trace, debug, info, \
            warn, error), FLUXGATE_LOG_STYLE=always (colour) and FLUXGATE_LOG_FORMAT=json.
            """,
        version: FluxgateVersion.string
    )

    @Option(name: .long, help: ArgumentHelp("Configuration file.", valueName: "path"))
    var config: String = "fluxgate.yaml"

    @Flag(
        name: [.customShort("t"), .customLong("check-config")],
        help: "Load and validate the configuration, print every problem, and exit (0 valid, 78 invalid). Binds nothing.")
    var checkConfig = false

    @Argument(
        help: ArgumentHelp(
            "Talk to the running master instead of starting one: 'reload' (waits for the outcome; non-zero exit when the configuration is rejected) or 'status'.",
            valueName: "command"))
    var action: OperatorAction?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The master's control socket (default: $RUNTIME_DIRECTORY/control.sock, /run/fluxgate/control.sock for root, else $XDG_RUNTIME_DIR/fluxgate-UID.sock).",
            valueName: "path"))
    var controlSocket: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Path of the fluxgate-worker executable (default: beside this one, or ../libexec/fluxgate/).", visibility: .hidden))
    var workerPath: String?

    /// Returns the process exit status.
    func execute(environment: [String: String]) -> Int32 {
        if checkConfig { return ConfigCheck(path: config).run() }
        let socketPath = controlSocket ?? OperatorChannel.defaultPath(environment: environment)
        if let action { return OperatorCommand(action: action, socketPath: socketPath).run() }
        let logger = FluxgateLogHandler.bootstrap(label: "fluxgate.master", environment: environment)
        // Fluxgate's start-up lines, with its quoting: a path is printed as Display, bare
        // (docs/logging.md "System messages").
        logger.info("Starting fluxgate proxy with configuration path", metadata: ["path": "\(config)"])
        let result = ConfigLoader.load(path: config)
        for warning in result.warnings { logger.warning("\(warning)") }
        guard let configuration = result.configuration else {
            for error in result.errors { logger.error("\(error)") }
            logger.error("Configuration rejected; not starting", metadata: ["path": "\(config)", "errors": "\(result.errors.count)"])
            return FluxgateExit.configRejected.rawValue
        }
        logger.info("Loaded configuration", metadata: ["path": "\(config)", "status": .quoted("applied")])
        guard let worker = WorkerExecutable.locate(override: workerPath) else {
            logger.error("fluxgate-worker executable not found beside fluxgate or in ../libexec/fluxgate/")
            return FluxgateExit.failure.rawValue
        }
        logger.info("Fluxgate proxy initialized", metadata: ["path": "\(config)"])
        let settings = Master.Settings(
            configPath: config, workerExecutable: worker, environment: environment,
            controlSocketPath: socketPath)
        return Master(settings: settings, configuration: configuration, logger: logger).run()
    }
}

/// `fluxgate -t`: every diagnostic on stderr, as `nginx -t` does, then one verdict line.
struct ConfigCheck {
    let path: String

    func run() -> Int32 {
        let result = ConfigLoader.load(path: path)
        for diagnostic in result.diagnostics { Console.error("\(diagnostic)") }
        if result.configuration != nil {
            let note = result.warnings.isEmpty ? "" : " (\(result.warnings.count) warning\(result.warnings.count == 1 ? "" : "s"))"
            Console.error("fluxgate: the configuration file \(path) is valid\(note)")
            return FluxgateExit.success.rawValue
        }
        let n = result.errors.count
        Console.error("fluxgate: the configuration file \(path) is invalid: \(n) error\(n == 1 ? "" : "s")")
        return FluxgateExit.configRejected.rawValue
    }
}

enum OperatorAction: String, ExpressibleByArgument, CaseIterable {
    case reload, status
}

/// `fluxgate reload` / `fluxgate status`: one request on the master's control socket. `reload`
/// waits for the outcome and exits 1 with the reasons on stderr when it was not applied, so
/// `ExecReload=` makes `systemctl reload` tell the truth.
struct OperatorCommand {
    let action: OperatorAction
    let socketPath: String

    func run() -> Int32 {
        let request: OperatorChannel.Request = action == .reload ? .reload : .status
        guard let answer = OperatorChannel.send(request, path: socketPath) else {
            Console.error("fluxgate: no running master answers on \(socketPath)")
            return FluxgateExit.failure.rawValue
        }
        if answer.ok {
            Console.out(answer.text)
            return FluxgateExit.success.rawValue
        }
        Console.error(answer.text)
        return FluxgateExit.failure.rawValue
    }
}
