# Sourced by callgrind.sh and profile.sh (after BENCH and RUN are set): free loopback ports for
# the mock upstream, the proxy, its observability listener and a Redis (for the templates that
# name them: conf/fluxgate-gateway.yaml.tmpl), and the template renderer for one single-worker target.
read -r MOCK_PORT PORT METRICS_PORT REDIS_PORT < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(4)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
render() { sed -e "s#{RUNDIR}#$RUN#g" -e "s#{MOCKDIR}#$BENCH/mock/www#g" -e "s#{MOCK_PORT}#$MOCK_PORT#g" \
  -e "s#{PACED_PORT}#$MOCK_PORT#g" -e "s#{BULK_PORT}#$MOCK_PORT#g" -e "s#{CLIENT_KEY}#sk-client-key#g" -e "s#{UPSTREAM_KEY}#upstream-key#g" \
  -e "s#{PORT}#$PORT#g" -e "s#{METRICS_PORT}#$METRICS_PORT#g" -e "s#{WORKERS}#1#g" -e "s#{USAGE}#${USAGE:-auto}#g" "$1" > "$2"; }
