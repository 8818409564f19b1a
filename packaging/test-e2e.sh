#!/usr/bin/env bash
# End-to-end test of the Debian package under a real systemd 252: builds and lints
# fluxgate_<version>_amd64.deb, boots a Debian 12 container with systemd as PID 1
# (systemd-nspawn, private network), installs the package in it and drives the service the way
# an operator would. Every check prints PASS or FAIL; the last line is `N passed, N failed`.
# Exit status 0 only when nothing failed. The container is always torn down.
#
#   packaging/install-deps && packaging/test-e2e.sh
#
# Needs root. The root file system is cached in .build-e2e/rootfs-bookworm (gitignored; delete it
# to rebuild, which takes 1 to 3 minutes). DEB=path skips the build and tests that package.
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
here=$repo/packaging
. "$here/e2e/container.sh"

if [ "$(id -u)" -ne 0 ]; then echo "test-e2e: needs root (systemd-nspawn, debootstrap)" >&2; exit 2; fi

T0=$(date +%s)
PASSED=0 FAILED=0 FAILURES=()
pass() { PASSED=$((PASSED + 1)); echo "PASS: $1"; }
fail() { FAILED=$((FAILED + 1)); FAILURES+=("$1"); echo "FAIL: $1${2:+ -- $2}"; }
# check NAME CMD...: PASS when CMD (a command or a function) exits 0; otherwise FAIL with the last
# lines of its output. Output of passing checks goes to the log only ($WORK/e2e-checks.log).
check() {
    local name=$1 out rc; shift
    out=$("$@" 2>&1); rc=$?
    printf '### %s (exit %s)\n%s\n' "$name" "$rc" "$out" >> "$CHECKLOG"
    if [ $rc -eq 0 ]; then pass "$name"; else fail "$name" "$(printf '%s' "$out" | tail -n 8 | tr '\n' '|')"; fi
}
step() { echo "=== [$(( $(date +%s) - T0 ))s] $*"; }
summary() {
    echo "=== e2e took $(( $(date +%s) - T0 ))s; details of every check in $CHECKLOG"
    if ((FAILED)); then printf 'failed: %s\n' "${FAILURES[@]}"; fi
    echo "$PASSED passed, $FAILED failed"
}
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

WORK=$repo/.build-e2e
ROOTFS=$WORK/rootfs-bookworm
SHARE=$WORK/share
CHECKLOG=$WORK/e2e-checks.log
mkdir -p "$WORK"; : > "$CHECKLOG"
trap 'e2e_teardown; summary; exit 1' INT TERM
trap 'e2e_teardown' EXIT

CLIENT_KEY=client-key-a-0123456789abcdef
# GET /mock/v1/echo through fluxgate with a client key; prints the upstream's JSON echo.
ask() { cx curl -sS -m 5 -H "Authorization: Bearer ${1:-$CLIENT_KEY}" http://127.0.0.1:8080/mock/v1/echo; }
provider_key_seen() { ask | grep -q "\"authorization\": \"Bearer $1\""; }
# The provider key the upstream received for a request with the client key (empty on failure).
served_key() { ask 2>/dev/null | sed -n 's/.*"authorization": "Bearer \([^"]*\)".*/\1/p'; }
show() { cx systemctl show -P "$1" fluxgate; }

# ---------------------------------------------------------------------------------------------
step "build the package"
if [ -n "${DEB:-}" ]; then
    deb=$DEB
    if [ -f "$deb" ]; then pass "package given: $deb"; else fail "package given: $deb" "no such file"; summary; exit 1; fi
else
    rm -f "$WORK"/deb/fluxgate_*.deb
    if OUTDIR=$WORK/deb LINTIAN=0 "$here/build-deb" > "$WORK/build-deb.log" 2>&1; then
        deb=$(ls "$WORK"/deb/fluxgate_*_amd64.deb)
        pass "packaging/build-deb builds $(basename "$deb")"
    else
        fail "packaging/build-deb builds the package" "$(tail -n 15 "$WORK/build-deb.log" | tr '\n' '|')"
        summary; exit 1
    fi
fi
debname=$(basename "$deb")

check "lintian --fail-on warning,error is clean" \
    lintian --fail-on warning,error "$deb"
t_depends() {
    local d; d=$(dpkg-deb -f "$deb" Depends); echo "$d"
    for p in libyaml-0-2 libssl3 libsystemd0 libc6; do echo "$d" | grep -q "$p" || return 1; done
}
check "Depends (from shlibs) names libyaml-0-2, libssl3, libsystemd0, libc6" t_depends
t_static() {
    local t b rc=0; t=$(mktemp -d); dpkg-deb -x "$deb" "$t"
    for b in "$t/usr/sbin/fluxgate" "$t/usr/libexec/fluxgate/fluxgate-worker"; do
        [ -x "$b" ] || { echo "missing $b"; rc=1; continue; }
        readelf -d "$b" | grep -E 'NEEDED.*swift|RUNPATH|RPATH' && rc=1
    done
    rm -rf "$t"; return $rc
}
check "binaries: Swift runtime linked statically, no RUNPATH" t_static
check "/etc/fluxgate/fluxgate.yaml is a conffile" sh -c "dpkg-deb -I '$deb' conffiles | grep -x /etc/fluxgate/fluxgate.yaml"

# ---------------------------------------------------------------------------------------------
step "root file system"
if ! e2e_rootfs "$ROOTFS"; then fail "Debian 12 root file system"; summary; exit 1; fi
rm -rf "$SHARE"; mkdir -p "$SHARE"
cp "$deb" "$here/e2e/mock-upstream.py" "$SHARE/"

step "boot the container"
if e2e_boot "$ROOTFS" "$SHARE"; then pass "container boots with systemd as PID 1"
else fail "container boots with systemd as PID 1"; summary; exit 1; fi
check "systemd in the container is 252" eval 'cx systemctl --version | head -n1 | grep "systemd 252"'

# ---------------------------------------------------------------------------------------------
step "install"
check "apt install ./$debname" cx sh -c "cd /e2e && apt-get install -y -q --no-install-recommends ./$debname"
t_active() { cx systemctl is-enabled fluxgate && cx systemctl is-active fluxgate; }
check "fluxgate.service is enabled and active after install" t_active
t_user() {
    local u; u=$(cx getent passwd fluxgate) || return 1; echo "$u"
    [ "$(echo "$u" | cut -d: -f3)" -lt 1000 ]
}
check "the fluxgate system user exists (sysusers.d)" t_user
t_mode() { cx stat -c '%a %U:%G' /etc/fluxgate/fluxgate.yaml | tee /dev/stderr | grep -qx '640 root:fluxgate'; }
check "/etc/fluxgate/fluxgate.yaml is 0640 root:fluxgate" t_mode
t_verify() { local out; out=$(cx systemd-analyze verify --man=no fluxgate.service 2>&1); echo "$out"; [ -z "$out" ]; }
check "systemd-analyze verify fluxgate.service prints nothing" t_verify
t_procs() {
    local pid n; pid=$(show MainPID); echo "MainPID $pid"
    [ "$(cx ps -o user= -p "$pid")" = fluxgate ] || return 1
    n=$(cx ps -o args= -u fluxgate | grep -c '[f]luxgate-worker'); echo "workers: $n"; [ "$n" -ge 1 ]
}
check "the master runs as fluxgate, its workers beside it" t_procs
t_status() {
    cx systemctl status --no-pager fluxgate | tee /dev/stderr \
        | grep -E 'Status: "serving generation [0-9]+ with [0-9]+ workers? on 127.0.0.1:8080'
}
check "systemctl status shows the STATUS= line" t_status
check "net.ipv4.tcp_migrate_req = 1 (sysctl.d drop-in applied)" eval 'cx sysctl -n net.ipv4.tcp_migrate_req | grep -x 1'
t_security() {
    local line score
    line=$(cx systemd-analyze security --no-pager fluxgate | tail -n 1); echo "$line"
    score=$(echo "$line" | grep -oE '[0-9]+\.[0-9]+' | head -n 1)
    [ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }'
}
check "systemd-analyze security fluxgate: exposure at most 2.0" t_security
check "fluxgate -t accepts the installed configuration" cx fluxgate -t --config /etc/fluxgate/fluxgate.yaml

# ---------------------------------------------------------------------------------------------
step "proxying to a mock upstream"
CONFIG="version: 1
server:
  bind_address: 127.0.0.1:8080
  workers: 2
upstreams:
  mock:
    target_url: http://127.0.0.1:9090
    api_key: provider-key-one
    request_path: /mock
api_keys:
  static:
    - id: client-a
      key: $CLIENT_KEY
"
t_mock() {
    cx systemd-run -q --unit e2e-mock-upstream python3 /e2e/mock-upstream.py 9090 || return 1
    for _ in $(seq 50); do cx curl -fsS -o /dev/null http://127.0.0.1:9090/ && return 0; sleep 0.1; done
    return 1
}
check "the mock upstream runs in the container" t_mock
# Applied with a restart, so that the proxying checks do not depend on reload (tested below).
t_config() {
    printf '%s' "$CONFIG" | cx sh -c 'cat > /etc/fluxgate/fluxgate.yaml' &&
        cx systemctl restart fluxgate && cx systemctl is-active fluxgate
}
check "a configuration with the mock upstream, applied by restart" t_config
t_forward() { local out; out=$(ask); echo "$out"; echo "$out" | grep -q '"authorization": "Bearer provider-key-one"' && echo "$out" | grep -q '"path": "/v1/echo"'; }
check "a request with a client key reaches the upstream with the provider key" t_forward
t_refused() { local code; code=$(cx curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer wrong' http://127.0.0.1:8080/mock/v1/echo); echo "$code"; [ "$code" = 401 ]; }
check "a request with a wrong client key is refused (401)" t_refused
t_port443() {
    local rc=0
    cx sed -i 's/bind_address: 127.0.0.1:8080/bind_address: 127.0.0.1:443/' /etc/fluxgate/fluxgate.yaml
    cx systemctl restart fluxgate || rc=1
    cx curl -sS -m 5 -H "Authorization: Bearer $CLIENT_KEY" http://127.0.0.1:443/mock/v1/echo | grep -q Bearer || rc=1
    cx ps -o user= -p "$(show MainPID)" | grep -qx fluxgate || rc=1
    cx sed -i 's/bind_address: 127.0.0.1:443/bind_address: 127.0.0.1:8080/' /etc/fluxgate/fluxgate.yaml
    cx systemctl restart fluxgate || rc=1
    return $rc
}
check "the unprivileged service can listen on port 443 (CAP_NET_BIND_SERVICE)" t_port443
check "journalctl -u fluxgate shows the request lines" eval \
    "cx journalctl -u fluxgate --no-pager -o cat | grep -E 'Request processed.*api_key=client-a.*status=200'"

# ---------------------------------------------------------------------------------------------
step "reload"
# Edit the conffile as an administrator would (sed -i writes a new file and renames it over it).
t_edit() {
    local t0 ms
    t0=$(date +%s%N)
    cx sed -i 's/provider-key-one/provider-key-two/' /etc/fluxgate/fluxgate.yaml || return 1
    while [ "$(ms_since "$t0")" -lt 3000 ]; do
        if provider_key_seen provider-key-two 2>/dev/null; then
            ms=$(ms_since "$t0"); echo "applied after $ms ms"; [ "$ms" -le 1000 ]; return
        fi
        sleep 0.05
    done
    echo "not applied after 3 s"; return 1
}
check "an edit of the conffile applies within a second" t_edit
check "the edited conffile is still 0640 root:fluxgate" t_mode
t_reload_ok() {
    local pid t0; pid=$(show MainPID); t0=$(date +%s%N)
    CX_TIMEOUT=60 cx systemctl reload fluxgate || return 1
    echo "reload took $(ms_since "$t0") ms"
    [ "$(show MainPID)" = "$pid" ] && cx systemctl is-active fluxgate
}
check "systemctl reload of a valid configuration succeeds (same MainPID)" t_reload_ok
check "fluxgate status answers on the control socket" eval "cx fluxgate status | tee /dev/stderr | grep generation"

# A broken file: `systemctl reload` must fail, with the reasons, and the old settings keep serving.
SERVING_BEFORE=$(served_key)
cx cp /etc/fluxgate/fluxgate.yaml /root/good.yaml
cx sed -i 's|target_url: http://127.0.0.1:9090|target_url: not-a-url|' /etc/fluxgate/fluxgate.yaml
t_reload_bad() {
    if CX_TIMEOUT=60 cx systemctl reload fluxgate; then echo "systemctl reload exited 0"; return 1; fi
    echo "systemctl reload failed, as it should"
}
check "systemctl reload of a broken configuration fails" t_reload_bad
t_reload_reason() {
    local log; log=$(cx journalctl -u fluxgate --no-pager -o cat -n 30); echo "$log"
    grep -qi 'rejected' <<< "$log" && grep -q 'target_url.invalid' <<< "$log"
}
check "the journal explains the rejected reload (with the reason)" t_reload_reason
check "the service is still active after the rejected reload" cx systemctl is-active fluxgate
t_still_serves() { local now; now=$(served_key); echo "provider key before: ${SERVING_BEFORE:-none}, after: ${now:-none}"; [ -n "$now" ] && [ "$now" = "$SERVING_BEFORE" ]; }
check "the previous configuration still serves after the rejected reload" t_still_serves
check "STATUS= reports the rejected reload" eval "cx systemctl show -P StatusText fluxgate | tee /dev/stderr | grep -i rejected"
cx cp /root/good.yaml /etc/fluxgate/fluxgate.yaml
t_reload_fixed() { CX_TIMEOUT=60 cx systemctl reload fluxgate && [ -n "$(served_key)" ]; }
check "systemctl reload succeeds again once the file is fixed" t_reload_fixed

# ---------------------------------------------------------------------------------------------
step "crash recovery and watchdog"
workers() { cx pgrep -u fluxgate -f fluxgate-worker | sort -n | tr '\n' ' '; }
t_kill_worker() {
    local main before victim now i
    main=$(show MainPID); before=$(workers); echo "workers before: $before"
    victim=${before%% *}; [ -n "$victim" ] || return 1
    cx kill -9 "$victim"
    for i in $(seq 100); do
        now=$(workers)
        if [[ " $now" != *" $victim "* ]] && [ "$(wc -w <<< "$now")" -eq "$(wc -w <<< "$before")" ]; then
            echo "workers after: $now (replaced within $((i * 100)) ms)"
            [ "$(show MainPID)" = "$main" ] || { echo "the master changed: the service restarted"; return 1; }
            [ -n "$(served_key)" ]; return
        fi
        sleep 0.1
    done
    echo "not replaced within 10 s: $now"; return 1
}
check "kill -9 of a worker: the master replaces it, the service stays up" t_kill_worker
check "the unit sets a watchdog (WatchdogUSec=30s)" eval "cx systemctl show -P WatchdogUSec fluxgate | tee /dev/stderr | grep -x 30s"
# A 2 s watchdog for this check only (a runtime drop-in, removed afterwards): unless the master
# sends WATCHDOG=1 every second, systemd kills and restarts it.
t_watchdog() {
    local pid pid2 t1 t2 n rc=0
    cx mkdir -p /run/systemd/system/fluxgate.service.d
    printf '[Service]\nWatchdogSec=2\n' | cx sh -c 'cat > /run/systemd/system/fluxgate.service.d/e2e-watchdog.conf'
    cx systemctl daemon-reload && cx systemctl restart fluxgate || rc=1
    pid=$(show MainPID); t1=$(show WatchdogTimestampMonotonic)
    sleep 6
    pid2=$(show MainPID); t2=$(show WatchdogTimestampMonotonic); n=$(show NRestarts)
    echo "MainPID $pid -> $pid2, last ping (monotonic us) $t1 -> $t2, NRestarts $n"
    cx journalctl -u fluxgate --no-pager -o cat -n 20 | grep -i watchdog
    [ "$pid" = "$pid2" ] && [ "${t2:-0}" -gt "${t1:-0}" ] && [ "$n" = 0 ] || rc=1
    cx rm -f /run/systemd/system/fluxgate.service.d/e2e-watchdog.conf
    cx systemctl daemon-reload; cx systemctl reset-failed fluxgate 2>/dev/null; cx systemctl restart fluxgate
    return $rc
}
check "the master pings the watchdog (a 2 s watchdog survives 6 s)" t_watchdog

# ---------------------------------------------------------------------------------------------
step "stop"
t_stop() {
    local t0 r s left
    cx systemctl is-active fluxgate >/dev/null || cx systemctl start fluxgate
    t0=$(date +%s%N); CX_TIMEOUT=60 cx systemctl stop fluxgate || return 1
    echo "stopped in $(ms_since "$t0") ms"
    r=$(show Result); s=$(show ExecMainStatus); echo "Result=$r ExecMainStatus=$s"
    left=$(cx pgrep -u fluxgate); [ -z "$left" ] || { echo "left running: $left"; return 1; }
    [ "$r" = success ] && [ "$s" = 0 ]
}
check "systemctl stop: clean exit, nothing left running" t_stop
t_startpre() {
    local rc=0
    cx sed -i 's|target_url: http://127.0.0.1:9090|target_url: not-a-url|' /etc/fluxgate/fluxgate.yaml
    if cx systemctl start fluxgate; then echo "started anyway"; rc=1; fi
    cx systemctl stop fluxgate; cx systemctl reset-failed fluxgate
    cx journalctl -u fluxgate --no-pager -o cat -n 20 | grep 'is invalid' || rc=1
    cx cp /root/good.yaml /etc/fluxgate/fluxgate.yaml
    cx systemctl start fluxgate || rc=1
    return $rc
}
check "a broken configuration keeps the service from starting (ExecStartPre= fluxgate -t)" t_startpre

# ---------------------------------------------------------------------------------------------
step "purge"
check "apt purge fluxgate" cx apt-get purge -y -q fluxgate
t_gone() {
    local f rc=0
    cx pgrep -u fluxgate && { echo "a fluxgate process is left"; rc=1; }
    cx pgrep -x fluxgate && { echo "a fluxgate process is left"; rc=1; }
    cx systemctl cat fluxgate.service >/dev/null 2>&1 && { echo "the unit is still known"; rc=1; }
    for f in /lib/systemd/system/fluxgate.service /etc/systemd/system/multi-user.target.wants/fluxgate.service \
             /usr/sbin/fluxgate /usr/libexec/fluxgate /etc/fluxgate /run/fluxgate \
             /usr/lib/sysusers.d/fluxgate.conf /usr/lib/sysctl.d/60-fluxgate.conf /usr/share/doc/fluxgate \
             /usr/share/man/man8/fluxgate.8.gz; do
        cx test -e "$f" && { echo "left behind: $f"; rc=1; }
    done
    cx getent passwd fluxgate && { echo "the user is left"; rc=1; }
    cx getent group fluxgate && { echo "the group is left"; rc=1; }
    cx dpkg -s fluxgate >/dev/null 2>&1 && { echo "dpkg still knows the package"; rc=1; }
    return $rc
}
check "after purge: unit, files, user and group are gone" t_gone

step "teardown"
e2e_teardown
trap - EXIT
summary
[ "$FAILED" -eq 0 ]
