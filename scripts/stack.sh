#!/bin/bash
# Run a private Bloodbank stack: Redis + a private RabbitMQ node + lighttpd with
# the bloodbank FastCGI workers. Everything (data, logs, pid files, sockets) lives
# under one state directory, so several stacks can run side by side on different
# ports.
#
# usage: stack.sh COMMAND DIR
#   start            start redis, rabbitmq and lighttpd (stops stale ones of this DIR first)
#   stop             stop all three, and epmd when this stack's node started it and no
#                    other node uses it; never fails when something is already down
#   stop-rabbit      stop only the RabbitMQ node     (failure testing)
#   start-rabbit     start only the RabbitMQ node
#   stop-redis       stop only Redis
#   start-redis      start only Redis
#   restart-lighttpd restart lighttpd and its workers (re-reads DIR/bloodbank.env)
#   connections      Bloodbank's AMQP connections: client port, heartbeat (s)
#   deps-up          start only Redis and RabbitMQ (for a Bloodbank run elsewhere)
#   deps-down        stop them
# fault injection (tests/faults); `stop` resumes a paused process before stopping it:
#   kill-rabbit      SIGKILL the RabbitMQ node (start-rabbit brings it back)
#   pause-rabbit     SIGSTOP the node's beam.smp; resume-rabbit: SIGCONT
#   kill-redis       SIGKILL Redis (start-redis brings it back)
#   pause-redis      SIGSTOP Redis; resume-redis: SIGCONT
#   memory-alarm-on  set the node's memory high watermark to 0 (memory alarm);
#   memory-alarm-off   back to 0.4; both wait until the alarm is in that state
#   disk-alarm-on    set the node's disk free limit above the free space (disk alarm);
#   disk-alarm-off     back to 50MB
#   kill-worker      SIGKILL one bloodbank worker of lighttpd (prints its pid)
#
# Settings (environment, read by `start`; saved in DIR/stack.env and reused by the
# other commands, so `stop DIR` needs no environment):
#   BB_HTTP_PORT (HTTP_PORT, else 8682)  BB_HTTP_HOST (HTTP_HOST, else 127.0.0.1)
#   BB_RUN_USER (www-data): started as root, lighttpd and the workers become
#     this user (and its group) once the port is bound; DIR is given to its group
#   BB_AMQP_PORT (5672)
#   BB_AMQP_DIST_PORT (25672)  BB_REDIS_PORT (6379)  BB_WORKERS (4)
#   BB_BIN (<repo>/src/bloodbank)  BB_NODE (bloodbank-dev@localhost)
#   BB_EXCHANGE (events)
#   BB_RABBIT_URL (amqp://guest:guest@127.0.0.1:BB_AMQP_PORT/): the workers' RABBIT_URL
#   BB_RABBIT_CONF: a file of rabbitmq.conf lines added to the node's own (e.g. a TLS listener)
#   BB_RABBIT_EXTERNAL (0): 1 = the broker is someone else's (BB_RABBIT_URL);
#     start, stop, deps-up and deps-down leave out the private RabbitMQ node
# Passed on to the workers when set: API_TOKEN RABBIT_CONFIRM_TIMEOUT_MS
#   RABBIT_CONNECT_TIMEOUT_MS RABBIT_HEARTBEAT_SECONDS CORRELATION_MAX_CHILDREN
#   MAX_BODY_BYTES CORRELATION_TRACKING DEBUG_ENDPOINTS REDIS_TIMEOUT_MS
#   REDIS_TTL_DAYS REDIS_DB RABBIT_EXCHANGE_TYPE LOG_LEVEL LOG_TARGET
#   FIREFLIES_WEBHOOK_SECRET UNROUTED_QUEUE_TYPE UNROUTED_MAX_BYTES
#   IDEMPOTENCY_MAX_STORED_BYTES TRUSTED_PROXIES RABBIT_TLS_CA RABBIT_TLS_CERT
#   RABBIT_TLS_KEY RABBIT_TLS_VERIFY REDIS_SENTINELS REDIS_SENTINEL_MASTER
#   REDIS_SENTINEL_PASSWORD ENVELOPE_FORMAT ARCHIVE_STREAM ARCHIVE_MAX_AGE
#   ARCHIVE_MAX_BYTES SPOOL_DIR SPOOL_MAX_BYTES
#   ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
# METRICS_PATH is DIR/metrics, the file the workers count in (GET /metrics),
#   unless METRICS_PATH is set (empty: counting off).
# SCHEMA_DIR is empty (no event schemas) unless set.
# DIR/bloodbank.env holds the secrets among them: it is written mode 0600.
#
# Keep private ports below 32768: the kernel's ephemeral range starts there and
# a listener may then fail with eaddrinuse.
set -eu

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() {
    sed -n '7,29p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

[ $# -eq 2 ] || usage
cmd=$1
case $2 in
    /*) dir=$2 ;;
    *) dir=$(pwd)/$2 ;;
esac

log() { echo "stack: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

PASSTHROUGH="API_TOKEN RABBIT_CONFIRM_TIMEOUT_MS RABBIT_CONNECT_TIMEOUT_MS
RABBIT_HEARTBEAT_SECONDS CORRELATION_MAX_CHILDREN MAX_BODY_BYTES CORRELATION_TRACKING
DEBUG_ENDPOINTS REDIS_TIMEOUT_MS REDIS_TTL_DAYS REDIS_DB RABBIT_EXCHANGE_TYPE
LOG_TARGET FIREFLIES_WEBHOOK_SECRET UNROUTED_QUEUE_TYPE UNROUTED_MAX_BYTES
IDEMPOTENCY_MAX_STORED_BYTES TRUSTED_PROXIES RABBIT_TLS_CA RABBIT_TLS_CERT
RABBIT_TLS_KEY RABBIT_TLS_VERIFY REDIS_SENTINELS REDIS_SENTINEL_MASTER
REDIS_SENTINEL_PASSWORD ENVELOPE_FORMAT ARCHIVE_STREAM ARCHIVE_MAX_AGE ARCHIVE_MAX_BYTES
SPOOL_DIR SPOOL_MAX_BYTES ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS"

# ---------------------------------------------------------------- settings

load_settings() {
    if [ "$cmd" != start ] && [ -f "$dir/stack.env" ]; then
        # shellcheck disable=SC1091
        . "$dir/stack.env"
    fi
    BB_HTTP_PORT=${BB_HTTP_PORT:-${HTTP_PORT:-8682}}
    BB_HTTP_HOST=${BB_HTTP_HOST:-${HTTP_HOST:-127.0.0.1}}
    # workers never run as root: lighttpd drops to this user (only root can)
    if [ "$(id -u)" = 0 ]; then
        BB_RUN_USER=${BB_RUN_USER:-www-data}
    else
        BB_RUN_USER=""
    fi
    BB_AMQP_PORT=${BB_AMQP_PORT:-5672}
    BB_AMQP_DIST_PORT=${BB_AMQP_DIST_PORT:-25672}
    BB_REDIS_PORT=${BB_REDIS_PORT:-6379}
    BB_WORKERS=${BB_WORKERS:-4}
    BB_BIN=${BB_BIN:-$repo/src/bloodbank}
    BB_NODE=${BB_NODE:-bloodbank-dev@localhost}
    BB_EXCHANGE=${BB_EXCHANGE:-events}
    BB_RABBIT_EXTERNAL=${BB_RABBIT_EXTERNAL:-0}
    case $BB_BIN in /*) ;; *) BB_BIN=$(pwd)/$BB_BIN ;; esac
    for p in BB_HTTP_PORT BB_AMQP_PORT BB_AMQP_DIST_PORT BB_REDIS_PORT BB_WORKERS; do
        v=${!p}
        case $v in ''|*[!0-9]*) die "$p must be a number, got '$v'" ;; esac
    done
}

save_settings() {
    {
        echo "# written by scripts/stack.sh start; read by its other commands"
        for v in BB_HTTP_PORT BB_HTTP_HOST BB_AMQP_PORT BB_AMQP_DIST_PORT BB_REDIS_PORT \
                 BB_WORKERS BB_BIN BB_NODE BB_EXCHANGE BB_RUN_USER BB_RABBIT_EXTERNAL; do
            printf '%s=%q\n' "$v" "${!v}"
        done
    } > "$dir/stack.env"
}

# The worker configuration. lighttpd gets exactly this environment (plus PATH,
# HOME, LANG) and hands all of it to the workers it spawns. It may hold
# API_TOKEN and FIREFLIES_WEBHOOK_SECRET, so only its owner may read it: made
# anew under umask 077 (a redirection into an existing file keeps its mode).
write_bloodbank_env() {
    printf '; bloodbank test/dev stack: all settings come from the environment\n' \
        > "$dir/bloodbank.ini"
    : > "$dir/empty.env"
    # lighttpd takes MAX_BODY_BYTES plus 1 MiB, so that the service itself
    # answers 413 (in JSON) to a body just over its limit
    local max_request_kb=$(( (${MAX_BODY_BYTES:-1048576} + 1048576 + 1023) / 1024 ))
    rm -f "$dir/bloodbank.env"
    (umask 077; {
        echo "# written by scripts/stack.sh start: environment of lighttpd and the workers"
        printf 'export %s=%q\n' \
            BB_STATE_DIR "$dir" \
            BB_HTTP_PORT "$BB_HTTP_PORT" \
            BB_HTTP_HOST "$BB_HTTP_HOST" \
            BB_BIN "$BB_BIN" \
            BB_WORKERS "$BB_WORKERS" \
            BB_MAX_REQUEST_KB "$max_request_kb" \
            BB_RUN_USER "$BB_RUN_USER" \
            BB_ERRORS_DIR "$repo/lighttpd/errors" \
            RABBIT_URL "${BB_RABBIT_URL:-amqp://guest:guest@127.0.0.1:$BB_AMQP_PORT/}" \
            RABBIT_EXCHANGE "$BB_EXCHANGE" \
            REDIS_HOST 127.0.0.1 \
            REDIS_PORT "$BB_REDIS_PORT" \
            BLOODBANK_CONFIG "$dir/bloodbank.ini" \
            BLOODBANK_ENV_FILE "$dir/empty.env" \
            METRICS_PATH "${METRICS_PATH-$dir/metrics}" \
            SCHEMA_DIR "${SCHEMA_DIR-}" \
            LOG_LEVEL "${LOG_LEVEL:-info}"
        for v in $PASSTHROUGH; do
            if [ -n "${!v+set}" ]; then
                printf 'export %s=%q\n' "$v" "${!v}"
            fi
        done
    } > "$dir/bloodbank.env")
}

# ---------------------------------------------------------------- helpers

# pid_alive PIDFILE [NAME]: the pid in PIDFILE is running (and its command
# contains NAME, so that a recycled pid is not mistaken for ours)
pid_alive() {
    local pf=$1 name=${2:-} pid
    [ -s "$pf" ] || return 1
    pid=$(cat "$pf" 2>/dev/null) || return 1
    case $pid in ''|*[!0-9]*) return 1 ;; esac
    kill -0 "$pid" 2>/dev/null || return 1
    if [ -n "$name" ]; then
        tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$name" || return 1
    fi
    return 0
}

# wait_gone PID SECONDS: wait for a process to exit; SIGKILL it after SECONDS
wait_gone() {
    local pid=$1 t=$(( $2 * 10 ))
    while kill -0 "$pid" 2>/dev/null && [ $t -gt 0 ]; do
        sleep 0.1; t=$((t - 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid did not exit, killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
}

port_busy() {
    ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}

# ---------------------------------------------------------------- redis

redis_pidfile() { echo "$dir/redis/redis.pid"; }

start_redis() {
    mkdir -p "$dir/redis"
    if pid_alive "$(redis_pidfile)" redis-server; then
        log "redis already running (pid $(cat "$(redis_pidfile)"))"
        return 0
    fi
    port_busy "$BB_REDIS_PORT" && die "port $BB_REDIS_PORT (BB_REDIS_PORT) is in use by another process"
    rm -f "$(redis_pidfile)"
    redis-server --port "$BB_REDIS_PORT" --bind 127.0.0.1 --dir "$dir/redis" \
        --daemonize yes --pidfile "$(redis_pidfile)" --logfile "$dir/redis/redis.log" \
        --save "" --appendonly no
    local t=100
    until redis-cli -h 127.0.0.1 -p "$BB_REDIS_PORT" ping 2>/dev/null | grep -q PONG; do
        t=$((t - 1))
        if [ $t -le 0 ]; then
            tail -20 "$dir/redis/redis.log" >&2 || true
            die "redis did not answer on port $BB_REDIS_PORT"
        fi
        sleep 0.1
    done
    log "redis up on 127.0.0.1:$BB_REDIS_PORT"
}

stop_redis() {
    local pf pid
    pf=$(redis_pidfile)
    if pid_alive "$pf" redis-server; then
        pid=$(cat "$pf")
        kill -CONT "$pid" 2>/dev/null || true   # a paused one (pause-redis) cannot stop
        redis-cli -h 127.0.0.1 -p "$BB_REDIS_PORT" shutdown nosave >/dev/null 2>&1 \
            || kill "$pid" 2>/dev/null || true
        wait_gone "$pid" 10
        log "redis stopped"
    fi
    rm -f "$pf"
}

# signal_pid PIDFILE NAME SIGNAL WHAT: send SIGNAL to the process of PIDFILE
signal_pid() {
    local pf=$1 name=$2 sig=$3 what=$4 pid
    pid_alive "$pf" "$name" || die "$what is not running (no live pid in $pf)"
    pid=$(cat "$pf")
    kill "-$sig" "$pid"
    log "$what (pid $pid): SIG$sig"
    if [ "$sig" = KILL ]; then
        wait_gone "$pid" 10
        rm -f "$pf"
    fi
}

# ---------------------------------------------------------------- rabbitmq

# Every rabbitmq command runs with the node's environment. The Debian wrappers
# switch to the rabbitmq user with `su` (environment kept). The CLI's own
# distribution ports are moved below 32768 as well.
rabbit_env() {
    local rd=$dir/rabbitmq
    env RABBITMQ_NODENAME="$BB_NODE" \
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
        RABBITMQ_NODE_PORT="$BB_AMQP_PORT" \
        RABBITMQ_DIST_PORT="$BB_AMQP_DIST_PORT" \
        RABBITMQ_CTL_DIST_PORT_MIN=$((BB_AMQP_DIST_PORT + 100)) \
        RABBITMQ_CTL_DIST_PORT_MAX=$((BB_AMQP_DIST_PORT + 110)) \
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

rabbitmqctl_q() {
    (cd /tmp && rabbit_env rabbitmqctl -n "$BB_NODE" -q "$@")
}

rabbit_running() {
    rabbitmqctl_q ping >/dev/null 2>&1
}

start_rabbit() {
    local rd=$dir/rabbitmq
    mkdir -p "$rd/mnesia" "$rd/log"
    # the CLI or the node starts epmd (on 127.0.0.1) when none runs: stop_epmd
    # stops it again
    if ! pgrep -x epmd >/dev/null; then
        touch "$rd/started-epmd"
    fi
    [ -f "$rd/enabled_plugins" ] || echo '[].' > "$rd/enabled_plugins"
    # listener address and port come from RABBITMQ_NODE_IP_ADDRESS/_PORT (rabbit_env)
    cat > "$rd/rabbitmq.conf" <<EOF
# private bloodbank node (written by scripts/stack.sh): no plugins, small disk limit
loopback_users.guest = true
disk_free_limit.absolute = 50MB
EOF
    if [ -n "${BB_RABBIT_CONF:-}" ]; then
        cat "$BB_RABBIT_CONF" >> "$rd/rabbitmq.conf"
    fi
    chown -R rabbitmq:rabbitmq "$rd"
    if rabbit_running && ! pid_alive "$rd/rabbitmq.pid" beam; then
        log "a stale node $BB_NODE (not started on $dir) is running: shutting it down"
        rabbitmqctl_q shutdown >/dev/null 2>&1 || true
    fi
    if rabbit_running; then
        log "rabbitmq node $BB_NODE already running"
    else
        port_busy "$BB_AMQP_PORT" && die "port $BB_AMQP_PORT (BB_AMQP_PORT) is in use by another process"
        port_busy "$BB_AMQP_DIST_PORT" && die "port $BB_AMQP_DIST_PORT (BB_AMQP_DIST_PORT) is in use by another process"
        (cd /tmp && rabbit_env rabbitmq-server -detached) >> "$rd/startup.log" 2>&1 \
            || { cat "$rd/startup.log" >&2; die "rabbitmq-server -detached failed"; }
    fi
    local deadline=$((SECONDS + 90))
    until rabbitmqctl_q await_startup --timeout 5 >/dev/null 2>&1; do
        if [ $SECONDS -ge $deadline ]; then
            tail -30 "$rd/startup.log" "$rd"/log/*.log >&2 2>/dev/null || true
            die "rabbitmq node $BB_NODE did not start within 90 s"
        fi
        sleep 1
    done
    log "rabbitmq node $BB_NODE up on 127.0.0.1:$BB_AMQP_PORT"
}

stop_rabbit() {
    local pf=$dir/rabbitmq/rabbitmq.pid pid=""
    [ -s "$pf" ] && pid=$(cat "$pf" 2>/dev/null || true)
    # a paused node (pause-rabbit) answers nothing: resume it first
    if [ -n "$pid" ] && pid_alive "$pf" beam; then
        kill -CONT "$pid" 2>/dev/null || true
    fi
    if rabbit_running; then
        rabbitmqctl_q shutdown >/dev/null 2>&1 || log "rabbitmqctl shutdown failed"
    fi
    # a node that does not answer the CLI but still runs (stuck in boot or shutdown)
    if [ -n "$pid" ] && pid_alive "$pf" beam; then
        log "rabbitmq node still running (pid $pid), terminating it"
        kill "$pid" 2>/dev/null || true
        wait_gone "$pid" 15
    fi
    rm -f "$pf"
    log "rabbitmq node $BB_NODE stopped"
}

# epmd, when this stack's node started it and no node is registered any more
# (epmd -kill refuses while any is)
stop_epmd() {
    local marker=$dir/rabbitmq/started-epmd
    [ -e "$marker" ] || return 0
    if epmd -names 2>/dev/null | grep -q '^name '; then
        log "epmd left running: other Erlang nodes use it"
    elif pgrep -x epmd >/dev/null; then
        epmd -kill >/dev/null 2>&1 && log "epmd stopped"
    fi
    rm -f "$marker"
}

# rabbit_alarm memory|disk on|off: raise or clear a resource alarm of the node
# and wait (up to 20 s) until the node reports it so
rabbit_alarm() {
    local kind=$1 state=$2 free t=20 alarms
    case $kind-$state in
        memory-on) rabbitmqctl_q set_vm_memory_high_watermark 0 >/dev/null ;;
        memory-off) rabbitmqctl_q set_vm_memory_high_watermark 0.4 >/dev/null ;;
        disk-on)
            free=$(df -B1 --output=avail "$dir/rabbitmq/mnesia" | tail -n 1 | tr -d ' ')
            rabbitmqctl_q set_disk_free_limit $((free + 10 * 1024 * 1024 * 1024)) >/dev/null ;;
        disk-off) rabbitmqctl_q set_disk_free_limit 50MB >/dev/null ;;
    esac
    while :; do
        alarms=$(rabbitmqctl_q eval 'rabbit_alarm:get_alarms().' 2>/dev/null || true)
        if echo "$alarms" | grep -q "resource_limit,$kind"; then
            [ "$state" = on ] && break
        else
            [ "$state" = off ] && break
        fi
        t=$((t - 1))
        [ $t -le 0 ] && die "the $kind alarm of $BB_NODE is not $state after 20 s: $alarms"
        sleep 1
    done
    log "rabbitmq node $BB_NODE: $kind alarm $state"
}

# ---------------------------------------------------------------- lighttpd

start_lighttpd() {
    local pf=$dir/lighttpd.pid
    [ -x "$BB_BIN" ] || die "BB_BIN=$BB_BIN is not an executable file (build first)"
    [ -f "$dir/bloodbank.env" ] || die "$dir/bloodbank.env missing (run start)"
    if pid_alive "$pf" lighttpd; then
        die "lighttpd already running (pid $(cat "$pf"))"
    fi
    port_busy "$BB_HTTP_PORT" && die "port $BB_HTTP_PORT (BB_HTTP_PORT) is in use by another process"
    mkdir -p "$dir/htdocs"
    rm -f "$pf" "$dir"/bloodbank.sock*
    # a clean environment: exactly what bloodbank.env says, nothing from the caller's shell
    # shellcheck disable=SC2016
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME="${HOME:-/root}" LANG=C.UTF-8 \
        bash -c '. "$1/bloodbank.env" && exec lighttpd -D -f "$2/lighttpd/bloodbank.conf"' \
        lighttpd "$dir" "$repo" >> "$dir/lighttpd.out" 2>&1 < /dev/null &
    local pid=$!
    echo "$pid" > "$pf"
    local probe=$BB_HTTP_HOST
    case $probe in 0.0.0.0|::|'[::]') probe=127.0.0.1 ;; *:*) probe="[$probe]" ;; esac
    local url="http://$probe:$BB_HTTP_PORT/healthz" deadline=$((SECONDS + 20)) code
    while :; do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" 2>/dev/null || true)
        if [ -n "$code" ] && [ "$code" != 000 ]; then
            break
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -20 "$dir/lighttpd.out" "$dir/lighttpd-error.log" >&2 2>/dev/null || true
            die "lighttpd exited during startup"
        fi
        if [ $SECONDS -ge $deadline ]; then
            tail -20 "$dir/lighttpd.out" "$dir/lighttpd-error.log" >&2 2>/dev/null || true
            die "no answer from $url within 20 s"
        fi
        sleep 0.2
    done
    log "lighttpd up: http://$BB_HTTP_HOST:$BB_HTTP_PORT/ ($BB_WORKERS workers of $BB_BIN; healthz $code)"
}

stop_lighttpd() {
    local pf=$dir/lighttpd.pid pid
    if pid_alive "$pf" lighttpd; then
        pid=$(cat "$pf")
        kill "$pid" 2>/dev/null || true   # lighttpd stops the workers it spawned
        wait_gone "$pid" 10
        log "lighttpd stopped"
    fi
    rm -f "$pf"
    # workers left behind by a lighttpd that died hard: they run BB_BIN and were
    # started on this DIR's socket
    local w
    # (a worker stuck in a request has SIGTERM blocked: SIGKILL it after 5 s)
    for w in $(our_workers); do
        log "killing stale worker $w"
        kill "$w" 2>/dev/null || true
        wait_gone "$w" 5
    done
    rm -f "$dir"/bloodbank.sock*
}

# pids of the workers running BB_BIN that were started on this DIR
our_workers() {
    local w
    for w in $(pgrep -f -x -- "$BB_BIN" 2>/dev/null || true); do
        if tr '\0' '\n' < "/proc/$w/environ" 2>/dev/null | grep -qx "BB_STATE_DIR=$dir"; then
            echo "$w"
        fi
    done
}

kill_worker() {
    local pf=$dir/lighttpd.pid w
    pid_alive "$pf" lighttpd || die "lighttpd is not running"
    w=$(pgrep -P "$(cat "$pf")" -f -x -- "$BB_BIN" | head -n 1)
    [ -n "$w" ] || die "lighttpd has no worker running $BB_BIN"
    kill -KILL "$w"
    log "worker $w: SIGKILL"
    echo "$w"
}

# the private node, unless the broker is external (BB_RABBIT_EXTERNAL=1)
own_rabbit() {
    [ "$BB_RABBIT_EXTERNAL" != 1 ]
}

# ---------------------------------------------------------------- commands

load_settings
case $cmd in
    start)
        mkdir -p "$dir"
        chmod 755 "$dir"
        # lighttpd, once it is BB_RUN_USER, creates and removes the workers'
        # socket here, and the workers write sanitizer logs here
        if [ -n "$BB_RUN_USER" ]; then
            chgrp "$(id -gn "$BB_RUN_USER")" "$dir"
            chmod 775 "$dir"
        fi
        # stale processes of an earlier run on this DIR, with that run's settings
        if [ -f "$dir/stack.env" ]; then
            bash "${BASH_SOURCE[0]}" stop "$dir" || true
        fi
        [ -x "$BB_BIN" ] || die "BB_BIN=$BB_BIN is not an executable file (build first)"
        save_settings
        write_bloodbank_env
        start_redis
        if own_rabbit; then start_rabbit; fi
        start_lighttpd
        ;;
    stop)
        stop_lighttpd
        if own_rabbit; then stop_rabbit; stop_epmd; fi
        stop_redis
        ;;
    deps-up)
        mkdir -p "$dir"
        chmod 755 "$dir"
        save_settings
        start_redis
        if own_rabbit; then start_rabbit; fi
        ;;
    deps-down)
        if own_rabbit; then stop_rabbit; stop_epmd; fi
        stop_redis
        ;;
    start-rabbit) start_rabbit ;;
    stop-rabbit) stop_rabbit ;;
    start-redis) start_redis ;;
    stop-redis) stop_redis ;;
    restart-lighttpd)
        stop_lighttpd
        start_lighttpd
        ;;
    connections)
        rabbitmqctl_q list_connections --no-table-headers peer_port timeout \
            client_properties | awk -F'\t' '/"connection_name","bloodbank"/ { print $1, $2 }'
        ;;
    kill-rabbit) signal_pid "$dir/rabbitmq/rabbitmq.pid" beam KILL "rabbitmq node $BB_NODE" ;;
    pause-rabbit) signal_pid "$dir/rabbitmq/rabbitmq.pid" beam STOP "rabbitmq node $BB_NODE" ;;
    resume-rabbit) signal_pid "$dir/rabbitmq/rabbitmq.pid" beam CONT "rabbitmq node $BB_NODE" ;;
    kill-redis) signal_pid "$(redis_pidfile)" redis-server KILL redis ;;
    pause-redis) signal_pid "$(redis_pidfile)" redis-server STOP redis ;;
    resume-redis) signal_pid "$(redis_pidfile)" redis-server CONT redis ;;
    memory-alarm-on) rabbit_alarm memory on ;;
    memory-alarm-off) rabbit_alarm memory off ;;
    disk-alarm-on) rabbit_alarm disk on ;;
    disk-alarm-off) rabbit_alarm disk off ;;
    kill-worker) kill_worker ;;
    *) usage ;;
esac
