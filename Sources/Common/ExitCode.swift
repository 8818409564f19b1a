/// Process exit codes: a contract between the master, its workers and systemd (docs/operations.md
/// "Command line", docs/architecture.md "Processes and descriptors").
public enum FluxgateExit: Int32, Sendable {
    /// Finished as asked.
    case success = 0
    /// Generic failure (start-up failed for a reason other than the configuration).
    case failure = 1
    /// Command-line usage error.
    case usage = 2
    /// EX_CONFIG: the configuration was rejected. The master does not respawn a worker that exits with it.
    case configRejected = 78
}
