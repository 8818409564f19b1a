import CSystemd

/// sd_notify(3) through libsystemd. Without `NOTIFY_SOCKET` (not under systemd) it does nothing.
/// Only the master talks to systemd.
public enum SystemdNotifier {
    public static func notify(_ state: String) {
        _ = sd_notify(0, state)
    }
}
