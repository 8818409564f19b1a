import CSystemd

/// sd_notify(3) through libsystemd. Without `NOTIFY_SOCKET` (not under systemd) it does nothing.
/// Only the master talks to systemd, so only the master links libsystemd: in Common it also
/// mapped libsystemd and its six dependencies (gcrypt, gpg-error, zstd, lzma, lz4, cap) into
/// every worker, 0.7 MiB of an idle worker's RSS for a library it never calls.
enum SystemdNotifier {
    static func notify(_ state: String) {
        _ = sd_notify(0, state)
    }
}
