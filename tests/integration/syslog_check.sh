#!/bin/bash
# LOG_TARGET=syslog end to end: workers spawned by lighttpd (bin-path, as the
# packaged snippet runs them) log to syslog, and rsyslogd writes their lines
# where Debian's rsyslog.conf puts them (the rule of /var/log/syslog, here
# into a private file). Redis is stopped with SIGSTOP, so the workers log
# "Correlation tracking timed out for event <id>"; the check finds that line,
# with ident bloodbank, in rsyslog's file.
#
# glibc's syslog() always writes to /dev/log. So that the system's /dev/log
# is never touched (nor needed: CI runs no syslog daemon), everything runs
# in a private mount namespace where /dev is an overlay: rsyslogd creates
# its socket in the overlay, which disappears with the namespace.
#
# usage: syslog_check.sh DIR HTTP_PORT REDIS_PORT     (as root)
# Needs: the stack's DIR/bloodbank.env (RabbitMQ of the running stack),
# rsyslogd, unshare, redis-server, lighttpd, curl.
set -eu

if [ "${1:-}" != --inside ]; then
    [ $# -eq 3 ] || { echo "usage: $0 DIR HTTP_PORT REDIS_PORT" >&2; exit 2; }
    exec unshare --mount --propagation private bash "$0" --inside "$@"
fi
shift
stack_dir=$1 http_port=$2 redis_port=$3
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dir=$stack_dir/syslog
rm -rf "$dir"
mkdir -p "$dir/up" "$dir/work" "$dir/htdocs" "$dir/spool" "$dir/redis"
mount -t overlay overlay -o "lowerdir=/dev,upperdir=$dir/up,workdir=$dir/work" /dev

pids=""
cleanup() {
    local p
    for p in $pids; do kill -CONT "$p" 2>/dev/null; kill "$p" 2>/dev/null; done
    sleep 0.5
}
trap cleanup EXIT

cat > "$dir/rsyslog.conf" <<CONF
module(load="imuxsock")
\$WorkDirectory $dir/spool
*.*;auth,authpriv.none $dir/syslog
CONF
rsyslogd -n -f "$dir/rsyslog.conf" -i "$dir/rsyslogd.pid" &
pids="$pids $!"
for _ in $(seq 50); do [ -S /dev/log ] && break; sleep 0.1; done
[ -S /dev/log ] || { echo "rsyslogd did not open /dev/log"; exit 1; }

redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$dir/redis" \
    --save "" --appendonly no --daemonize no >"$dir/redis/redis.log" 2>&1 &
redis=$!
pids="$pids $redis"
until redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG; do sleep 0.1; done

# lighttpd as the stack runs it, with one worker of its own
(
    set -a
    # shellcheck disable=SC1091
    . "$stack_dir/bloodbank.env"
    BB_STATE_DIR=$dir BB_HTTP_PORT=$http_port BB_HTTP_HOST=127.0.0.1 BB_WORKERS=1
    REDIS_PORT=$redis_port LOG_TARGET=syslog METRICS_PATH=$dir/metrics
    BB_RUN_USER=    # this check's own directory is root's
    exec lighttpd -D -f "$repo/lighttpd/bloodbank.conf"
) >"$dir/lighttpd.out" 2>&1 &
pids="$pids $!"
url=http://127.0.0.1:$http_port
for _ in $(seq 100); do curl -sf -o /dev/null "$url/healthz" && break; sleep 0.2; done
publish() {
    curl -sf -X POST "$url/events/llm/prompt" -H 'Content-Type: application/json' \
        -d '{"prompt":"syslog check"}'
}
event_id() { sed 's/.*"event_id":"\([^"]*\)".*/\1/'; }
# A record's reply is read by the worker's next tracking call, so the event
# that times out is the one whose reply was awaited when Redis stopped: the
# last one before the stop, or the first one after it.
ids=$(publish | event_id) || { echo "publish failed"; cat "$dir/lighttpd.out"; exit 1; }
kill -STOP "$redis"
for _ in 1 2; do
    ids="$ids $(publish | event_id)" || { echo "publish with Redis stopped failed"; exit 1; }
done
pattern="bloodbank\[[0-9]*\]: warning: Correlation tracking timed out for event \($(tr ' ' '\n' <<<"$ids" | paste -sd'|' | sed 's/|/\\|/g')\)$"
for _ in $(seq 50); do grep -q "$pattern" "$dir/syslog" && break; sleep 0.1; done
kill -CONT "$redis"
if grep "$pattern" "$dir/syslog"; then
    echo "found in rsyslog's file (facility daemon, ident bloodbank)"
    exit 0
fi
echo "no timeout line for any of $ids; rsyslog wrote:"
cat "$dir/syslog"
exit 1
