# Sourced by packaging/test-e2e.sh: a Debian 12 container with systemd as PID 1, through
# systemd-nspawn, on a host whose PID 1 need not be systemd.
#
#   e2e_rootfs DIR       build (or reuse) a bookworm root file system in DIR
#   e2e_boot DIR BIND    boot it (private network, volatile overlay, BIND mounted ro on /e2e)
#   cx CMD...            run CMD inside the booted container, as root, with a timeout
#   e2e_teardown         power off, kill if needed, tidy up what nspawn leaves on such a host
#
# Why the odd nspawn flags: without systemd (and machined) on the host, nspawn must neither
# register the machine nor ask for a scope unit (--register=no --keep-unit), and it refuses to
# clean its scratch directories under /run/systemd/nspawn unless that is a tmpfs.

# The configured apt mirror, read from apt's own sources (deb822 first, then one-line format),
# so no committed file names it.
e2e_mirror() {
    local f u
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        u=$(awk '
            /^URIs:/   { uris=$2 }
            /^Suites:/ { for (i=2;i<=NF;i++) if ($i=="bookworm") ok=1 }
            /^[ \t]*$/ { if (ok && uris!="") { print uris; exit } ; uris=""; ok=0 }
            END        { if (ok && uris!="") print uris }' "$f" | head -n1)
        if [ -n "$u" ]; then echo "$u"; return 0; fi
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        u=$(awk '$1=="deb" && $0 ~ / bookworm / { for (i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' "$f")
        if [ -n "$u" ]; then echo "$u"; return 0; fi
    done
    echo "no bookworm mirror in the apt sources" >&2
    return 1
}

# What the container needs: systemd as init, python3 for the mock upstream, curl and procps for
# the checks, and the package's runtime dependencies (the container has no network, so
# `apt install ./fluxgate_*.deb` must find them installed).
E2E_INCLUDE=systemd,systemd-sysv,dbus,python3,curl,procps,libyaml-0-2,libssl3,libsystemd0,zlib1g,libbrotli1,libzstd1,libhiredis0.14
E2E_ROOTFS_STAMP="bookworm minbase $E2E_INCLUDE v1"

e2e_nspawn_tmpfs() {
    mkdir -p /run/systemd/nspawn
    if ! mountpoint -q /run/systemd/nspawn; then
        mount -t tmpfs -o mode=0755 fluxgate-e2e /run/systemd/nspawn
        E2E_MOUNTED_TMPFS=1
    fi
}

e2e_rootfs() {
    local root=$1 mirror
    if [ -x "$root/lib/systemd/systemd" ] && [ "$(cat "$root.stamp" 2>/dev/null)" = "$E2E_ROOTFS_STAMP" ]; then
        echo "rootfs: reusing $root"
        return 0
    fi
    mirror=$(e2e_mirror) || return 1
    rm -rf "$root" "$root.tmp" "$root.stamp"
    mkdir -p "$(dirname "$root")"
    echo "rootfs: debootstrap bookworm into $root (1 to 3 minutes)"
    debootstrap --variant=minbase --include="$E2E_INCLUDE" bookworm "$root.tmp" "$mirror" \
        > "$root.debootstrap.log" 2>&1 || { tail -n 20 "$root.debootstrap.log"; return 1; }
    # the same apt sources inside as outside, without the duplicate sources.list
    if ls /etc/apt/sources.list.d/*.sources >/dev/null 2>&1; then
        cp /etc/apt/sources.list.d/*.sources "$root.tmp/etc/apt/sources.list.d/"
        rm -f "$root.tmp/etc/apt/sources.list"
    fi
    echo fluxgate-e2e > "$root.tmp/etc/hostname"
    # Nothing to log in to and no timers: a short, quiet boot.
    local unit
    for unit in console-getty.service getty@.service systemd-timesyncd.service apt-daily.timer \
                apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer dpkg-db-backup.timer; do
        ln -sf /dev/null "$root.tmp/etc/systemd/system/$unit"
    done
    mv "$root.tmp" "$root"
    echo "$E2E_ROOTFS_STAMP" > "$root.stamp"
}

E2E_NSPAWN_PID=
E2E_LEADER=
E2E_LOG=

e2e_boot() {
    local root=$1 bind=$2 state i
    E2E_LOG=$(dirname "$root")/nspawn.log
    e2e_nspawn_tmpfs
    # --volatile=overlay: every write goes to a tmpfs, so the cached rootfs stays pristine and
    # each run starts from a clean system. --private-network: the container has its own lo,
    # so its ports never clash with the host's.
    setsid systemd-nspawn --register=no --keep-unit --quiet \
        -D "$root" -M fluxgate-e2e -b --console=passive \
        --volatile=overlay --private-network \
        --bind-ro="$bind":/e2e \
        > "$E2E_LOG" 2>&1 < /dev/null &
    E2E_NSPAWN_PID=$!
    for i in $(seq 1 300); do
        E2E_LEADER=$(pgrep -P "$E2E_NSPAWN_PID" -x systemd || true)
        [ -n "$E2E_LEADER" ] && break
        kill -0 "$E2E_NSPAWN_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$E2E_LEADER" ]; then
        echo "container did not start:"; cat "$E2E_LOG"; return 1
    fi
    # "offline" until the container's systemd has opened its API socket
    for i in $(seq 1 600); do
        state=$(timeout 60 nsenter -t "$E2E_LEADER" -a -r -w systemctl is-system-running --wait 2>/dev/null || true)
        [ -n "$state" ] && [ "$state" != offline ] && break
        sleep 0.1
    done
    echo "container: systemd $state (leader pid $E2E_LEADER)"
}

# Runs a command in the container. CX_TIMEOUT (default 90 s) bounds it, so that a hung
# command fails its check instead of hanging CI.
cx() {
    timeout "${CX_TIMEOUT:-90}" nsenter -t "$E2E_LEADER" -a -r -w \
        env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb LANG=C.UTF-8 \
        SYSTEMD_PAGER= SYSTEMD_COLORS=0 DEBIAN_FRONTEND=noninteractive "$@"
}

e2e_teardown() {
    local i
    if [ -n "$E2E_NSPAWN_PID" ] && kill -0 "$E2E_NSPAWN_PID" 2>/dev/null; then
        if [ -n "$E2E_LEADER" ] && kill -0 "$E2E_LEADER" 2>/dev/null; then
            timeout 10 nsenter -t "$E2E_LEADER" -a -r -w systemctl poweroff --no-block >/dev/null 2>&1 \
                || kill -TERM "$E2E_NSPAWN_PID" 2>/dev/null
        else
            kill -TERM "$E2E_NSPAWN_PID" 2>/dev/null
        fi
        for i in $(seq 1 300); do kill -0 "$E2E_NSPAWN_PID" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$E2E_NSPAWN_PID" 2>/dev/null; then
            echo "container: did not power off in 30 s; killing it"
            kill -KILL "$E2E_NSPAWN_PID" 2>/dev/null
            sleep 0.5
        fi
        wait "$E2E_NSPAWN_PID" 2>/dev/null || true
        echo "container: down"
    fi
    E2E_NSPAWN_PID=
    # nspawn leaves its empty cgroups behind when the host is not systemd
    local h d
    for h in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified; do
        for d in payload supervisor; do
            [ -d "$h/$d" ] && find "$h/$d" -depth -type d -exec rmdir {} + 2>/dev/null
        done
    done
    if [ "${E2E_MOUNTED_TMPFS:-0}" = 1 ]; then
        umount /run/systemd/nspawn 2>/dev/null || true
        E2E_MOUNTED_TMPFS=0
    fi
    return 0
}
