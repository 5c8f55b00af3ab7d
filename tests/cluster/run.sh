#!/bin/bash
# Cluster test: Bloodbank publishing to a three-node RabbitMQ cluster while the
# node its workers are connected to is SIGKILLed under load (tests/cluster/run.py
# says what is checked and measured).
#
# usage: tests/cluster/run.sh                 set up, run the driver, tear down
#        tests/cluster/run.sh kill-node N     (for the driver) SIGKILL node N's beam
#        tests/cluster/run.sh start-node N    start node N again and wait for it
#        tests/cluster/run.sh ctl N ARGS...   rabbitmqctl -n <node N> -q ARGS
#
# Everything runs on this machine and is stopped on the way out:
#   - three private RabbitMQ nodes bbc1@localhost, bbc2@localhost and
#     bbc3@localhost, clustered (2 and 3 join 1), AMQP ports
#     BB_CLUSTER_AMQP_BASE+1..3 (20671-20673), dist ports BB_CLUSTER_DIST_BASE+1..3
#     (20691-20693), CLI dist ports 207N0-207N9; they share one epmd, and the
#     Erlang cookie of the rabbitmq user (the Debian wrappers run them as it);
#   - Redis and lighttpd with BB_WORKERS workers (scripts/stack.sh with
#     BB_RABBIT_EXTERNAL=1) on HTTP port BB_CLUSTER_HTTP_PORT (20682) and Redis
#     port BB_CLUSTER_REDIS_PORT (20380), RABBIT_URL listing the three nodes;
# all state under BB_CLUSTER_DIR (/tmp/bb-cluster-test; a fixed place, so that
# what an interrupted run left is found and stopped by the next one).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CL_DIR=${BB_CLUSTER_DIR:-/tmp/bb-cluster-test}
AMQP_BASE=${BB_CLUSTER_AMQP_BASE:-20670}
DIST_BASE=${BB_CLUSTER_DIST_BASE:-20690}
STACK="$repo/scripts/stack.sh"
PY=/usr/bin/python3

log() { echo "cluster: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

node_name() { echo "bbc$1@localhost"; }
node_dir() { echo "$CL_DIR/rabbit$1"; }

# node_env N CMD...: CMD with node N's environment (see rabbit_env in stack.sh)
node_env() {
    local n=$1 rd
    shift
    rd=$(node_dir "$n")
    env RABBITMQ_NODENAME="$(node_name "$n")" \
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
        RABBITMQ_NODE_PORT=$((AMQP_BASE + n)) \
        RABBITMQ_DIST_PORT=$((DIST_BASE + n)) \
        RABBITMQ_CTL_DIST_PORT_MIN=$((20700 + 10 * n)) \
        RABBITMQ_CTL_DIST_PORT_MAX=$((20709 + 10 * n)) \
        RABBITMQ_MNESIA_BASE="$rd/mnesia" \
        RABBITMQ_LOG_BASE="$rd/log" \
        RABBITMQ_PID_FILE="$rd/rabbitmq.pid" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$rd/enabled_plugins" \
        RABBITMQ_CONFIG_FILE="$rd/rabbitmq.conf" \
        RABBITMQ_ADVANCED_CONFIG_FILE="$rd/advanced.config" \
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
        ERL_EPMD_ADDRESS=127.0.0.1 \
        "$@"
}

ctl() {  # N ARGS...
    local n=$1
    shift
    (cd /tmp && node_env "$n" rabbitmqctl -n "$(node_name "$n")" -q "$@")
}

# the pid of node N's beam, if it runs
node_pid() {
    local pf pid
    pf=$(node_dir "$1")/rabbitmq.pid
    [ -s "$pf" ] || return 1
    pid=$(cat "$pf")
    case $pid in ''|*[!0-9]*) return 1 ;; esac
    tr '\0' ' ' 2>/dev/null < "/proc/$pid/cmdline" | grep -q beam || return 1
    echo "$pid"
}

launch_node() {  # N: start the node, do not wait
    local n=$1 rd
    rd=$(node_dir "$n")
    mkdir -p "$rd/mnesia" "$rd/log"
    echo '[].' > "$rd/enabled_plugins"
    cat > "$rd/rabbitmq.conf" <<EOF
# cluster test node (written by tests/cluster/run.sh)
loopback_users.guest = true
disk_free_limit.absolute = 50MB
EOF
    chown -R rabbitmq:rabbitmq "$rd"
    (cd /tmp && node_env "$n" rabbitmq-server -detached) >> "$rd/startup.log" 2>&1 \
        || { cat "$rd/startup.log" >&2; die "node $(node_name "$n") did not start"; }
}

await_node() {  # N
    local n=$1 deadline=$((SECONDS + 90))
    until ctl "$n" await_startup --timeout 5 >/dev/null 2>&1; do
        if [ $SECONDS -ge $deadline ]; then
            tail -n 30 "$(node_dir "$n")"/log/*.log >&2 2>/dev/null || true
            die "node $(node_name "$n") did not start within 90 s"
        fi
        sleep 1
    done
}

kill_node() {  # N
    local pid
    pid=$(node_pid "$1") || die "node $(node_name "$1") is not running"
    kill -KILL "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    log "node $(node_name "$1") (pid $pid): SIGKILL"
}

# stops what this test (or an interrupted earlier run) started
teardown() {
    local n pid
    if [ -f "$CL_DIR/stack/stack.env" ]; then
        bash "$STACK" stop "$CL_DIR/stack" >/dev/null 2>&1 || true
    fi
    for n in 1 2 3; do
        if pid=$(node_pid "$n"); then
            kill -KILL "$pid" 2>/dev/null || true
            while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
        fi
    done
    # epmd, when this run started it and no node uses it any more
    if [ -e "$CL_DIR/started-epmd" ] && ! epmd -names 2>/dev/null | grep -q '^name '; then
        epmd -kill >/dev/null 2>&1 || true
    fi
}

case ${1:-} in
    kill-node) kill_node "$2"; exit 0 ;;
    start-node) launch_node "$2"; await_node "$2"; log "node $(node_name "$2") up"; exit 0 ;;
    ctl) shift; ctl "$@"; exit ;;
    '') ;;
    *) sed -n '5,8p' "${BASH_SOURCE[0]}" >&2; exit 2 ;;
esac

[ -x "$repo/src/bloodbank" ] || die "build first: $repo/src/bloodbank is missing"
teardown
rm -rf "$CL_DIR"
mkdir -p "$CL_DIR"
chmod 755 "$CL_DIR"
pgrep -x epmd >/dev/null || touch "$CL_DIR/started-epmd"
trap teardown EXIT
trap 'exit 130' INT TERM

t0=$SECONDS
for n in 1 2 3; do
    launch_node "$n" &
done
wait
for n in 1 2 3; do
    await_node "$n"
done
for n in 2 3; do
    ctl "$n" stop_app
    ctl "$n" join_cluster "$(node_name 1)"
    ctl "$n" start_app
    await_node "$n"
done
log "cluster of $(node_name 1), $(node_name 2), $(node_name 3) up in $((SECONDS - t0)) s"
ctl 1 cluster_status | grep -A4 -i 'running nodes' >&2 || true

urls="amqp://guest:guest@127.0.0.1:$((AMQP_BASE + 1))/"
urls="$urls,amqp://guest:guest@127.0.0.1:$((AMQP_BASE + 2))/"
urls="$urls,amqp://guest:guest@127.0.0.1:$((AMQP_BASE + 3))/"
# A classic unrouted queue (declared by the first worker, on node 1) is the
# case where a dead node used to make every reconnect fail.
export BB_RABBIT_EXTERNAL=1 BB_RABBIT_URL=$urls \
    BB_HTTP_PORT=${BB_CLUSTER_HTTP_PORT:-20682} BB_HTTP_HOST=127.0.0.1 \
    BB_REDIS_PORT=${BB_CLUSTER_REDIS_PORT:-20380} BB_EXCHANGE=events \
    BB_WORKERS=${BB_WORKERS:-4} BB_BIN="$repo/src/bloodbank" \
    RABBIT_CONFIRM_TIMEOUT_MS=2000 RABBIT_CONNECT_TIMEOUT_MS=1000 \
    RABBIT_HEARTBEAT_SECONDS=5 UNROUTED_QUEUE_TYPE=classic
BB_STATE_DIR=$CL_DIR/stack bash "$STACK" start "$CL_DIR/stack"

export BB_URL="http://127.0.0.1:$BB_HTTP_PORT" BB_STATE_DIR=$CL_DIR/stack \
    BB_STACK=$STACK BB_CLUSTER_RUN="${BASH_SOURCE[0]}" BB_CLUSTER_AMQP_BASE=$AMQP_BASE
rc=0
"$PY" "$repo/tests/cluster/run.py" || rc=$?
if [ $rc -ne 0 ]; then
    log "workers' log (last lines):"
    tail -n 40 "$CL_DIR/stack/lighttpd.out" >&2 || true
fi
exit $rc
