#!/bin/bash
# Benchmark: Bloodbank through lighttpd, and through nginx and the pre-fork
# master, against the broker's own ceiling; what it costs in CPU and system
# calls; what correlation tracking costs.
#
# Starts a private stack (scripts/stack.sh) and, in one run against the same
# broker:
#   - wrk POST /events/llm/prompt (the guide's sample) at 16 and 64
#     connections, and POST /events/batch of 100 of them at 4 connections;
#   - bench/ceiling: envelope-sized persistent messages published with
#     librabbitmq from 4 processes, each awaiting its confirm before the
#     next ("confirm-each"), and in batches of 100 awaited together;
#   - CPU microseconds per event of the workers, the web server, Redis and
#     the broker (/proc/PID/stat deltas over each wrk run);
#   - system calls per single publish over all workers (strace -c -f);
#   - the same wrk runs through nginx and the master, nginx opening a FastCGI
#     connection per request and keeping them open (fastcgi_keep_conn);
#   - tracking on against off, and Redis memory per event (bench/memory.py);
#   - counting for /metrics on against off (METRICS_PATH empty).
# Prints figures, not a pass/fail test.
#
# usage: bench/bench.sh [metrics|pool|tls|schemas|cloudevents|cli]   (metrics:
#        only the /metrics comparison; pool: only workers x
#        WORKER_CONCURRENCY; tls: the workers publishing over amqps against
#        amqp, same node; schemas: publishes with their event schema against
#        without; cloudevents: a CloudEvent, structured and binary, against
#        the same payload published natively; cli: replay's rate from the
#        archive and whether tail keeps up, against the ceilings; spool: a
#        spool that is on against off with the broker healthy, what a
#        spooled event costs with the broker away, and how fast BENCH_SPOOL
#        (100000) spooled events drain when it returns)
# BENCH_SECONDS, BB_WORKERS, BENCH_ROUNDS (metrics and tls rounds) and
# BENCH_PORT_BASE (ports BASE..BASE+5: HTTP, AMQP, AMQP dist, nginx, Redis,
# AMQPS) override the defaults.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${BENCH_SECONDS:-10}
export BB_WORKERS=${BB_WORKERS:-4}
base=${BENCH_PORT_BASE:-18782}
export BB_HTTP_PORT=$base BB_AMQP_PORT=$((base + 1)) BB_AMQP_DIST_PORT=$((base + 2))
export BB_REDIS_PORT=$((base + 4)) BB_NODE=bbbench$base@localhost BB_EXCHANGE=bench
export LOG_LEVEL=warning
NGINX_PORT=$((base + 3))
dir=/tmp/bloodbank-bench-$$
url=http://127.0.0.1:$BB_HTTP_PORT
amqp=amqp://guest:guest@127.0.0.1:$BB_AMQP_PORT/
bin=$repo/src/bloodbank

make -C "$repo" -s src/bloodbank bench/ceiling
cleanup() {
    [ -f "$dir/nginx.pid" ] && kill "$(cat "$dir/nginx.pid")" 2>/dev/null
    [ -n "${master:-}" ] && kill "$master" 2>/dev/null && wait "$master" 2>/dev/null
    "$repo/scripts/stack.sh" stop "$dir" >/dev/null 2>&1
    rm -rf "$dir"
}
trap cleanup EXIT
if [ "${1:-}" = tls ]; then  # a TLS listener beside the plain one (as in test.sh tls)
    amqps_port=$((base + 5))
    bash "$repo/tests/tls/pki.sh" "$dir/pki"
    cat > "$dir/pki/rabbitmq-tls.conf" <<EOF
listeners.ssl.default = 127.0.0.1:$amqps_port
ssl_options.cacertfile = $dir/pki/ca.pem
ssl_options.certfile = $dir/pki/broker.pem
ssl_options.keyfile = $dir/pki/broker.key
EOF
    export BB_RABBIT_CONF=$dir/pki/rabbitmq-tls.conf RABBIT_TLS_CA=$dir/pki/ca.pem
fi
"$repo/scripts/stack.sh" start "$dir" >/dev/null

# The first publish declares the exchange; then a durable queue takes every
# event so that each publish is routed and written to disk, as in production.
body=$(curl -sf -X POST "$url/events/llm/prompt" \
    -H 'Content-Type: application/json' \
    -d '{"prompt":"Test prompt","model":"gpt-4","temperature":0.7}')
bytes=${#body}
/usr/bin/python3 - "$amqp" <<'PY'
import sys, pika
ch = pika.BlockingConnection(pika.URLParameters(sys.argv[1])).channel()
ch.queue_declare("bench", durable=True)
ch.queue_bind("bench", "bench", routing_key="#")
PY
purge() {
    [ -n "${broker_away:-}" ] && return 0  # the spool's runs stop the broker
    rabbitmqctl -n "$BB_NODE" -q purge_queue bench >/dev/null
}

# utime + stime of PIDS, in clock ticks
ticks() {
    local p t=0
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] || continue
        t=$(( t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }') ))
    done
    echo "$t"
}
hz=$(getconf CLK_TCK)
frontend=lighttpd
front_pids() {
    if [ "$frontend" = lighttpd ]; then cat "$dir/lighttpd.pid"
    else echo "$(cat "$dir/nginx.pid") $(pgrep -P "$(cat "$dir/nginx.pid")" | tr '\n' ' ')"; fi
}
worker_pids() { pgrep -f "^$bin" | tr '\n' ' '; }
redis_pid() { cat "$dir/redis/redis.pid"; }
broker_pid() { cat "$dir/rabbitmq/rabbitmq.pid"; }

# wrk_run CONNECTIONS SCRIPT PATH EVENTS_PER_REQUEST LABEL
wrk_run() {
    local c=$1 script=$2 path=$3 per=$4 label=$5 out w f r b
    purge
    w=$(worker_pids); f=$(front_pids); r=$(redis_pid); b=$(broker_pid)
    local t0w t0f t0r t0b
    t0w=$(ticks $w); t0f=$(ticks $f); t0r=$(ticks $r); t0b=$(ticks $b)
    out=$(wrk -t$(( c < 2 ? c : 2 )) -c"$c" -d"${seconds}s" --latency \
        -s "$repo/bench/$script" "$url$path")
    local dw df dr db
    dw=$(( $(ticks $w) - t0w )); df=$(( $(ticks $f) - t0f ))
    dr=$(( $(ticks $r) - t0r )); db=$(( $(ticks $b) - t0b ))
    awk -v c="$c" -v per="$per" -v label="$label" -v hz="$hz" -v dw="$dw" \
        -v df="$df" -v dr="$dr" -v db="$db" -v fe="$frontend" '
        /requests in/ { n = $1 }
        /Requests\/sec/ { rate = $2 }
        /^ +50%/ { p50 = $2 } /^ +99%/ { p99 = $2 }
        /^non2xx=/ { errs = $0 }
        END { ev = n * per; us = 1e6 / hz / (ev ? ev : 1)
              printf "%s connections=%s rate=%.0f p50=%s p99=%s %s " \
                  "cpu_us_per_event: workers=%.1f %s=%.1f redis=%.1f broker=%.1f\n",
                  label, c, rate * per, p50, p99, errs, dw * us, fe, df * us,
                  dr * us, db * us }' <<<"$out"
}
rate() { sed -n 's/.* rate=\([0-9]*\).*/\1/p' <<<"$1"; }
# a wrk_run line's latency percentile (p50, p99) in milliseconds
latency_ms() { sed -n "s/.* $1=\\([0-9.]*\\)\\(m\\?s\\|us\\).*/\\1 \\2/p" <<<"$2" |
    awk '{ print ($2 == "us") ? $1 / 1000 : ($2 == "s") ? $1 * 1000 : $1 }'; }
field() { sed -n "s/.* $1=\\([0-9.]*\\).*/\\1/p" <<<"$2"; }

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
echo "workers=$BB_WORKERS concurrency=${WORKER_CONCURRENCY:-16} seconds=$seconds envelope_bytes=$bytes"

# System calls per single publish, over all workers (the guide's sample body:
# no key, no parents, tracking on); wrk counts the requests.
syscalls() {  # LABEL
    local tracer n
    purge
    # shellcheck disable=SC2046  # one -p per pid
    strace -c -f $(worker_pids | sed 's/\([0-9]\+\)/-p \1/g') -o "$dir/strace.txt" &
    tracer=$!
    sleep 1
    n=$(wrk -t2 -c16 -d3s -s "$repo/bench/post.lua" "$url/events/llm/prompt" |
        awk '/requests in/ { print $1 }')
    sleep 0.5
    kill -INT "$tracer"; wait "$tracer" 2>/dev/null || true
    awk -v n="$n" -v label="$1" '{ line[NR] = $0 }
         END { printf "%s system calls per publish (strace -c -f, %d publishes):", label, n
               for (i = 1; i <= NR; i++) { split(line[i], f)
                   if (f[4] ~ /^[0-9]+$/ && f[length(f)] != "total") {
                       printf " %s=%.2f", f[length(f)], f[4] / n; t += f[4] } }
               printf " total=%.2f\n", t / n }' "$dir/strace.txt"
}
# Counting for /metrics on (METRICS_PATH set, as shipped) against off (empty),
# alternated over BENCH_ROUNDS rounds so that a change in the host's load
# hits both; medians of the publish throughput at 16 connections.
metrics_mode() {  # on|off
    sed -i '/METRICS_PATH/d' "$dir/bloodbank.env"
    if [ "$1" = on ]; then
        echo "export METRICS_PATH=$dir/metrics" >>"$dir/bloodbank.env"
    else
        echo "export METRICS_PATH=" >>"$dir/bloodbank.env"
    fi
    "$repo/scripts/stack.sh" restart-lighttpd "$dir" >/dev/null 2>&1
}
metrics_cost() {
    local mode round r
    : >"$dir/m-on.txt"; : >"$dir/m-off.txt"
    for round in $(seq 1 "${BENCH_ROUNDS:-5}"); do
        for mode in on off; do
            metrics_mode "$mode"
            r=$(wrk_run 16 post.lua /events/llm/prompt 1 "metrics $mode")
            echo "$r"
            rate "$r" >>"$dir/m-$mode.txt"
        done
    done
    metrics_mode on
    local on off
    on=$(median <"$dir/m-on.txt"); off=$(median <"$dir/m-off.txt")
    echo "metrics on  c16 (median of ${BENCH_ROUNDS:-5}): rate=$on"
    echo "metrics off c16 (median of ${BENCH_ROUNDS:-5}): rate=$off"
    awk -v on="$on" -v off="$off" 'BEGIN { printf "metrics cost at c16: " \
        "throughput %.1f%%\n", (off - on) / off * 100 }'
    curl -sf "$url/metrics" | grep '^bloodbank_events_total{outcome="published"}'
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
if [ "${1:-}" = metrics ]; then
    metrics_cost
    exit 0
fi

# amqps against amqp: the same node, the workers' RABBIT_URL switched between
# its TLS and plain listeners, alternated over BENCH_ROUNDS rounds; medians of
# the throughput and of the workers' CPU per event at 16 connections.
tls_cost() {
    local round mode r
    : >"$dir/t-amqp.txt"; : >"$dir/t-amqps.txt"; : >"$dir/c-amqp.txt"; : >"$dir/c-amqps.txt"
    for round in $(seq 1 "${BENCH_ROUNDS:-3}"); do
        for mode in amqps amqp; do
            sed -i '/RABBIT_URL/d' "$dir/bloodbank.env"
            if [ "$mode" = amqps ]; then
                echo "export RABBIT_URL=amqps://guest:guest@localhost:$amqps_port/"
            else
                echo "export RABBIT_URL=$amqp"
            fi >>"$dir/bloodbank.env"
            "$repo/scripts/stack.sh" restart-lighttpd "$dir" >/dev/null 2>&1
            r=$(wrk_run 16 post.lua /events/llm/prompt 1 "$mode")
            echo "$r"
            if [ "$mode" = amqps ] && ! rabbitmqctl -n "$BB_NODE" -q list_connections \
                    ssl 2>/dev/null | grep -q true; then
                echo "no worker connected over TLS" >&2
                exit 1
            fi
            rate "$r" >>"$dir/t-$mode.txt"
            field workers "$r" >>"$dir/c-$mode.txt"
        done
    done
    for mode in amqp amqps; do
        echo "$mode c16 (median of ${BENCH_ROUNDS:-3}): rate=$(median <"$dir/t-$mode.txt")" \
            "worker_cpu_us_per_event=$(median <"$dir/c-$mode.txt")"
    done
}
if [ "${1:-}" = tls ]; then
    tls_cost
    exit 0
fi

# Event schemas: the same payloads published with their schema in
# SCHEMA_DIR (bench/schemas) and without (SCHEMA_DIR empty), alternated
# over BENCH_ROUNDS rounds; medians of the throughput and of the workers'
# CPU per event at 16 connections. The payloads: the guide's llm.prompt
# sample as bench.prompt, and a 2 KB order under a 30-keyword schema.
schema_mode() {  # on|off
    sed -i '/SCHEMA_DIR/d' "$dir/bloodbank.env"
    if [ "$1" = on ]; then
        echo "export SCHEMA_DIR=$dir/schemas"
    else
        echo "export SCHEMA_DIR="
    fi >>"$dir/bloodbank.env"
    "$repo/scripts/stack.sh" restart-lighttpd "$dir" >/dev/null 2>&1
}
schema_cost() {
    local round mode r type
    mkdir -p "$dir/schemas"
    cp "$repo/bench/schemas/bench.prompt.json" "$repo/bench/schemas/order.placed.json" \
        "$dir/schemas/"
    chmod -R a+rX "$dir/schemas"
    printf '{"prompt":"Test prompt","model":"gpt-4","temperature":0.7}' >"$dir/prompt.json"
    for type in bench.prompt order.placed; do
        : >"$dir/s-on.txt"; : >"$dir/s-off.txt"; : >"$dir/c-on.txt"; : >"$dir/c-off.txt"
        case $type in
            bench.prompt) export BENCH_BODY=$dir/prompt.json ;;
            *) export BENCH_BODY=$repo/bench/schemas/order.sample.json ;;
        esac
        for round in $(seq 1 "${BENCH_ROUNDS:-3}"); do
            for mode in on off; do
                schema_mode "$mode"
                r=$(wrk_run 16 file.lua "/events/$type" 1 "$type schema $mode")
                echo "$r"
                rate "$r" >>"$dir/s-$mode.txt"
                field workers "$r" >>"$dir/c-$mode.txt"
            done
        done
        for mode in on off; do
            echo "$type schema $mode c16 (median of ${BENCH_ROUNDS:-3}):" \
                "rate=$(median <"$dir/s-$mode.txt")" \
                "worker_cpu_us_per_event=$(median <"$dir/c-$mode.txt")"
        done
    done
    schema_mode off
}
if [ "${1:-}" = schemas ]; then
    schema_cost
    exit 0
fi

# CloudEvents: the guide's sample as a structured CloudEvent, as a binary
# one, and natively (POST /events/bench.prompt) without and with an
# Idempotency-Key (a CloudEvent's identity takes the same claim), same
# payload, alternated over BENCH_ROUNDS rounds; medians of the throughput
# and of the workers' CPU per event at 16 connections.
cloudevents_cost() {
    local round mode r
    printf '{"prompt":"Test prompt","model":"gpt-4","temperature":0.7}' >"$dir/prompt.json"
    export BENCH_BODY=$dir/prompt.json
    for mode in native keyed structured binary; do
        : >"$dir/ce-r-$mode.txt"; : >"$dir/ce-c-$mode.txt"
    done
    for round in $(seq 1 "${BENCH_ROUNDS:-3}"); do
        for mode in native keyed structured binary; do
            if [ "$mode" = native ]; then
                r=$(wrk_run 16 file.lua /events/bench.prompt 1 "native")
            elif [ "$mode" = keyed ]; then
                r=$(BENCH_CE_MODE=keyed wrk_run 16 cloudevent.lua \
                    /events/bench.prompt 1 "native keyed")
            else
                r=$(BENCH_CE_MODE=$mode wrk_run 16 cloudevent.lua /events 1 \
                    "cloudevent $mode")
            fi
            echo "$r"
            rate "$r" >>"$dir/ce-r-$mode.txt"
            field workers "$r" >>"$dir/ce-c-$mode.txt"
        done
    done
    for mode in native keyed structured binary; do
        echo "$mode c16 (median of ${BENCH_ROUNDS:-3}): rate=$(median <"$dir/ce-r-$mode.txt")" \
            "worker_cpu_us_per_event=$(median <"$dir/ce-c-$mode.txt")"
    done
}
if [ "${1:-}" = cloudevents ]; then
    cloudevents_cost
    exit 0
fi

# The broker's ceilings (bench/ceiling): c1 confirm-each and c100 in batches
# of 100 awaited together, each from 4 processes.
ceilings() {
    purge
    c1=$("$repo/bench/ceiling" "$amqp" bench llm.prompt 4 "$seconds" "$bytes")
    echo "ceiling confirm-each $c1"
    purge
    c100=$("$repo/bench/ceiling" "$amqp" bench llm.prompt 4 "$seconds" "$bytes" 100)
    echo "ceiling batch100 $c100"
}

# The operator's commands against the broker's ceilings, in one run:
# replay's rate from the archive back to the exchange, with confirms, and
# whether tail keeps up with the publish rate at 16 connections (the depth
# of its private queue, sampled while wrk runs, and the events it printed).
cli_rates() {
    local archive=bench.archive since n t0 t1 tailq depth=0 d printed published
    sed -i '/ARCHIVE_STREAM/d' "$dir/bloodbank.env"
    echo "export ARCHIVE_STREAM=$archive" >>"$dir/bloodbank.env"
    "$repo/scripts/stack.sh" restart-lighttpd "$dir" >/dev/null 2>&1
    until curl -sf "$url/healthz" >/dev/null; do sleep 0.2; done
    ceilings
    purge
    # the workers' environment, for the commands
    set -a
    # shellcheck disable=SC1091
    . "$dir/bloodbank.env"
    set +a
    export HTTP_PORT=$BB_HTTP_PORT
    sleep 1.1
    since=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    sleep 1.1
    "$bin" tail --count 100000000 'llm.#' >"$dir/tail.out" 2>&1 &
    local tail_pid=$!
    sleep 1
    tailq=$(rabbitmqctl -n "$BB_NODE" -q list_queues name exclusive --no-table-headers |
        awk '$2 == "true" { print $1 }' | head -n 1)
    wrk_run 16 post.lua /events/llm/prompt 1 "tail watching, single" >"$dir/wrk.out" &
    local wrk_pid=$!
    while kill -0 "$wrk_pid" 2>/dev/null; do
        d=$(rabbitmqctl -n "$BB_NODE" -q list_queues name messages --no-table-headers |
            awk -v q="$tailq" '$1 == q { print $2 }')
        [ -n "$d" ] && [ "$d" -gt "$depth" ] && depth=$d
        sleep 0.5
    done
    wait "$wrk_pid"
    cat "$dir/wrk.out"
    sleep 1
    kill -INT "$tail_pid"; wait "$tail_pid" || true
    printed=$(wc -l <"$dir/tail.out")
    published=$(curl -sf "$url/metrics" | awk -F' ' '/^bloodbank_events_total\{outcome="published"\}/ { print $2 }')
    echo "tail: printed $printed events (the workers have published $published since the bench began); its queue's deepest sample: $depth messages"
    n=$(rabbitmqctl -n "$BB_NODE" -q list_queues name messages --no-table-headers |
        awk -v q="$archive" '$1 == q { print $2 }')
    purge
    t0=$(date +%s.%N)
    "$bin" replay --since "$since" --type 'llm.#' >"$dir/replay.out" 2>&1
    t1=$(date +%s.%N)
    cat "$dir/replay.out"
    local replayed
    replayed=$(sed -n 's/.*replayed \([0-9]*\).*/\1/p' "$dir/replay.out")
    awk -v n="$replayed" -v t0="$t0" -v t1="$t1" -v c1="$(rate "$c1")" \
        -v c100="$(rate "$c100")" -v archived="$n" 'BEGIN {
        r = n / (t1 - t0)
        printf "replay: %d events from an archive of %d in %.1f s: %.0f events/s " \
            "(%.2fx the confirm-each ceiling, %.2fx the batched ceiling; " \
            "the %.0f s include the 2 s the replay waits to know the archive " \
            "has ended)\n", n, archived, t1 - t0, r, r / c1, r / c100, t1 - t0 }'
}
if [ "${1:-}" = cli ]; then
    cli_rates
    exit 0
fi

# The spool (SPOOL_DIR): on against off with the broker healthy, alternated
# over BENCH_ROUNDS rounds (medians of the throughput and p99 at 16
# connections); with the broker's application stopped (connections
# refused): single events at 1 and 16 connections and batches of 100, each
# answered 202 after its fdatasync, with the fdatasyncs per spooled event
# counted by strace; then BENCH_SPOOL events spooled in batches, the broker
# started, and the time until the pool's spool is empty.
spool_mode() {  # on|off
    sed -i '/SPOOL_DIR/d' "$dir/bloodbank.env"
    [ "$1" = on ] && echo "export SPOOL_DIR=$dir/spool" >>"$dir/bloodbank.env"
    "$repo/scripts/stack.sh" restart-lighttpd "$dir" >/dev/null 2>&1
    until curl -sf "$url/healthz" >/dev/null; do sleep 0.2; done
}
metric() { curl -sf "$url/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
spool_cost() {
    local round mode r want=${BENCH_SPOOL:-100000} tracer n syncs t0 t1 left
    mkdir -p "$dir/spool"
    chmod 777 "$dir/spool"
    : >"$dir/s-on.txt"; : >"$dir/s-off.txt"; : >"$dir/p-on.txt"; : >"$dir/p-off.txt"
    for round in $(seq 1 "${BENCH_ROUNDS:-4}"); do
        # on first in odd rounds, off first in even ones
        for mode in $( ((round % 2)) && echo on off || echo off on); do
            spool_mode "$mode"
            r=$(wrk_run 16 post.lua /events/llm/prompt 1 "broker up, spool $mode")
            echo "$r"
            rate "$r" >>"$dir/s-$mode.txt"
            latency_ms p99 "$r" >>"$dir/p-$mode.txt"
        done
    done
    echo "broker up, spool on  c16 (median of ${BENCH_ROUNDS:-4}): rate=$(median <"$dir/s-on.txt") p99=$(median <"$dir/p-on.txt")ms"
    echo "broker up, spool off c16 (median of ${BENCH_ROUNDS:-4}): rate=$(median <"$dir/s-off.txt") p99=$(median <"$dir/p-off.txt")ms"
    spool_mode off
    syscalls "broker up, spool off"
    spool_mode on
    syscalls "broker up, spool on"
    echo "spool files touched with the broker up: $(find "$dir/spool" -type f | wc -l)"

    purge
    rabbitmqctl -n "$BB_NODE" -q stop_app
    broker_away=1
    for c in 1 16; do
        # shellcheck disable=SC2046  # one -p per pid
        strace -qq -c -f -e trace=fdatasync $(worker_pids | sed 's/\([0-9]\+\)/-p \1/g') \
            -o "$dir/strace.txt" &
        tracer=$!
        sleep 1
        r=$(wrk_run "$c" post.lua /events/llm/prompt 1 "broker away, spooled single")
        kill -INT "$tracer"; wait "$tracer" 2>/dev/null || true
        n=$(metric 'bloodbank_events_total{outcome="spooled"}')
        syncs=$(awk '$NF == "fdatasync" { print $4 }' "$dir/strace.txt")
        echo "$r fdatasync_calls=${syncs:-0} spooled_so_far=$n"
    done
    r=$(seconds=3 wrk_run 4 batch.lua /events/batch 100 "broker away, spooled batch100 (3 s)")
    echo "$r"
    echo "spool: $(metric bloodbank_spool_events) events, $(metric bloodbank_spool_bytes) bytes"
    # emptied (not timed), so that the drain below is of BENCH_SPOOL exactly
    rabbitmqctl -n "$BB_NODE" -q start_app
    broker_away=
    until [ "$(metric bloodbank_spool_events)" = 0 ]; do sleep 0.5; done
    purge
    rabbitmqctl -n "$BB_NODE" -q stop_app
    broker_away=1

    # BENCH_SPOOL events spooled in batches of 100, then the drain timed
    /usr/bin/python3 - "$url" "$want" <<'PY'
import json, sys, threading, urllib.request
url, want = sys.argv[1], int(sys.argv[2])
body = json.dumps([{"event_type": "llm.prompt", "payload": {"prompt": "Test prompt",
                   "model": "gpt-4", "temperature": 0.7}}] * 100).encode()
def client(n):
    for _ in range(n):
        req = urllib.request.Request(url + "/events/batch", body,
                                     {"Content-Type": "application/json"})
        urllib.request.urlopen(req).read()
need = want // 100
ts = [threading.Thread(target=client, args=(need // 4 + (k < need % 4),)) for k in range(4)]
[t.start() for t in ts]
[t.join() for t in ts]
PY
    n=$(metric bloodbank_spool_events)
    echo "spool before the broker returns: $n events, $(metric bloodbank_spool_bytes) bytes"
    t0=$(date +%s.%N)
    rabbitmqctl -n "$BB_NODE" -q start_app
    t1=$(date +%s.%N)
    broker_away=
    local first=""
    while :; do
        left=$(metric bloodbank_spool_events)
        if [ -z "$first" ] && [ "${left%.*}" -lt "${n%.*}" ]; then first=$(date +%s.%N); fi
        [ "${left%.*}" = 0 ] && break
        sleep 0.2
    done
    local t2 queued
    t2=$(date +%s.%N)
    queued=$(rabbitmqctl -n "$BB_NODE" -q list_queues name messages --no-table-headers |
        awk '$1 == "bench" { print $2 }')
    awk -v n="$n" -v t0="$t0" -v t1="$t1" -v f="${first:-$t1}" -v t2="$t2" -v q="$queued" 'BEGIN {
        printf "drain: %d spooled events forwarded in %.1f s from the first forward " \
            "(%.0f events/s); the broker took %.1f s to start, the workers %.1f s " \
            "more to reconnect; the bench queue holds %d\n", n, t2 - f, n / (t2 - f),
            t1 - t0, f - t1, q }'
    ceilings
    echo "forwarded in all: $(metric 'bloodbank_events_total{outcome="forwarded"}')"
}
if [ "${1:-}" = spool ]; then
    spool_cost
    exit 0
fi

# The pool's shape: workers (BB_WORKERS) by requests each answers at once
# (WORKER_CONCURRENCY), single events at 16 and 64 connections; what the
# shipped defaults are chosen from.
pool_shapes() {
    local w c
    for w in 2 4 8; do
        for c in 1 4 16; do
            sed -i '/BB_WORKERS\|WORKER_CONCURRENCY/d' "$dir/bloodbank.env"
            printf 'export BB_WORKERS=%s\nexport WORKER_CONCURRENCY=%s\n' "$w" "$c" \
                >>"$dir/bloodbank.env"
            "$repo/scripts/stack.sh" restart-lighttpd "$dir" >/dev/null 2>&1
            wrk_run 16 post.lua /events/llm/prompt 1 "workers=$w concurrency=$c"
            wrk_run 64 post.lua /events/llm/prompt 1 "workers=$w concurrency=$c"
        done
    done
}
if [ "${1:-}" = pool ]; then
    pool_shapes
    exit 0
fi

b16=$(wrk_run 16 post.lua /events/llm/prompt 1 "lighttpd single"); echo "$b16"
b64=$(wrk_run 64 post.lua /events/llm/prompt 1 "lighttpd single"); echo "$b64"
bb4=$(wrk_run 4 batch.lua /events/batch 100 "lighttpd batch100"); echo "$bb4"
ceilings
awk -v a="$(rate "$b16")" -v b="$(rate "$b64")" -v c="$(rate "$c1")" \
    -v d="$(rate "$bb4")" -v e="$(rate "$c100")" \
    -v wcpu="$(field workers "$b16")" -v ccpu="$(field cpu_us_per_msg "$c1")" \
    'BEGIN { printf "ratios: c16/ceiling=%.2f c64/ceiling=%.2f " \
        "batch100/ceiling_batch100=%.2f batch100/c64=%.1f " \
        "worker_cpu/ceiling_cpu=%.2f\n", a / c, b / c, d / e, d / b, wcpu / ccpu }'

syscalls lighttpd

# Tracking on against off, alternated over three rounds so that a change in
# the host's load hits both; medians.
tracking() {  # on|off
    sed -i '/CORRELATION_TRACKING/d' "$dir/bloodbank.env"
    [ "$1" = off ] && echo 'export CORRELATION_TRACKING=false' >>"$dir/bloodbank.env"
    "$repo/scripts/stack.sh" restart-lighttpd "$dir" >/dev/null 2>&1
}

for c in 1 16; do
    : >"$dir/on.txt"; : >"$dir/off.txt"
    for round in 1 2 3; do
        for mode in on off; do
            tracking "$mode"
            r=$(seconds=$(( (seconds + 1) / 2 )) wrk_run "$c" post.lua \
                /events/llm/prompt 1 tracking)
            echo "$(rate "$r") $(latency_ms p50 "$r")" >>"$dir/$mode.txt"
        done
    done
    on_rate=$(cut -d' ' -f1 "$dir/on.txt" | median)
    on_p50=$(cut -d' ' -f2 "$dir/on.txt" | median)
    off_rate=$(cut -d' ' -f1 "$dir/off.txt" | median)
    off_p50=$(cut -d' ' -f2 "$dir/off.txt" | median)
    echo "tracking on  c$c (median of 3): rate=$on_rate p50=${on_p50}ms"
    echo "tracking off c$c (median of 3): rate=$off_rate p50=${off_p50}ms"
    awk -v c="$c" -v on="$on_rate" -v off="$off_rate" -v pon="$on_p50" \
        -v poff="$off_p50" 'BEGIN { printf "tracking cost at c%s: throughput " \
        "%.1f%%, p50 %+.3f ms\n", c, (off - on) / off * 100, pon - poff }'
done
tracking on
/usr/bin/python3 "$repo/bench/memory.py" "$url" "$BB_REDIS_PORT" 10000
metrics_cost

# nginx and the pre-fork master, in place of lighttpd, on the same broker.
kill "$(cat "$dir/lighttpd.pid")"
while pgrep -f "^$bin" >/dev/null; do sleep 0.1; done
(
    set -a
    # shellcheck disable=SC1091
    . "$dir/bloodbank.env"
    exec "$bin" --workers "$BB_WORKERS" --listen "unix:$dir/master.sock" \
        --socket-mode 0666
) >"$dir/master.log" 2>&1 &
master=$!
mkdir -p "$dir/nginx-body" "$dir/nginx-fastcgi"
# nginx_start on|off: nginx in front of the master, keeping its FastCGI
# connections open between requests (fastcgi_keep_conn, as the shipped site
# does) or opening one per request
nginx_start() {
    local keep=""
    if [ -f "$dir/nginx.pid" ]; then
        kill "$(cat "$dir/nginx.pid")"
        while [ -f "$dir/nginx.pid" ]; do sleep 0.1; done
    fi
    [ "$1" = on ] && keep="keepalive 32; keepalive_timeout 4s; keepalive_time 5s;"
    cat >"$dir/nginx.conf" <<NGINX
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $dir/nginx-body;
    fastcgi_temp_path $dir/nginx-fastcgi;
    upstream bloodbank { server unix:$dir/master.sock; $keep }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            fastcgi_pass bloodbank;
            fastcgi_keep_conn $1;
            include /etc/nginx/fastcgi_params;
            client_max_body_size 2m;
        }
    }
}
NGINX
    nginx -c "$dir/nginx.conf"
    until curl -sf "$url/healthz" >/dev/null; do sleep 0.2; done
}
until [ -S "$dir/master.sock" ]; do sleep 0.1; done
frontend=nginx
url=http://127.0.0.1:$NGINX_PORT
for keep in off on; do
    nginx_start "$keep"
    wrk_run 16 post.lua /events/llm/prompt 1 "nginx+master keepalive=$keep single"
    wrk_run 64 post.lua /events/llm/prompt 1 "nginx+master keepalive=$keep single"
    wrk_run 4 batch.lua /events/batch 100 "nginx+master keepalive=$keep batch100"
    syscalls "nginx+master keepalive=$keep"
done
