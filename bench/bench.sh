#!/bin/bash
# Benchmark: Bloodbank through lighttpd against the broker's own ceiling,
# and what correlation tracking costs.
#
# Starts a private stack (scripts/stack.sh), drives POST /events/llm/prompt
# with wrk at 16 and 64 connections, then runs bench/ceiling -- persistent,
# envelope-sized messages published with librabbitmq, each waiting for its
# confirm -- from as many processes as there are workers. Then the same wrk
# run with tracking off, and Redis memory per event over 10,000 events
# (bench/memory.py). Prints req/s and p50/p99 for each, and the ratios.
# Figures, not a pass/fail test.
#
# usage: bench/bench.sh   (BENCH_SECONDS, BB_WORKERS override the defaults)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${BENCH_SECONDS:-10}
export BB_WORKERS=${BB_WORKERS:-4}
export BB_HTTP_PORT=18782 BB_AMQP_PORT=15780 BB_AMQP_DIST_PORT=15781
export BB_REDIS_PORT=16480 BB_NODE=bbbench@localhost BB_EXCHANGE=bench
export LOG_LEVEL=warning
dir=/tmp/bloodbank-bench-$$
url=http://127.0.0.1:$BB_HTTP_PORT
amqp=amqp://guest:guest@127.0.0.1:$BB_AMQP_PORT/

make -C "$repo" -s src/bloodbank bench/ceiling
trap '"$repo/scripts/stack.sh" stop "$dir" >/dev/null 2>&1; rm -rf "$dir"' EXIT
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
    rabbitmqctl -n "$BB_NODE" -q purge_queue bench >/dev/null
}

wrk_run() {  # CONNECTIONS
    purge
    wrk -t$(( $1 < 2 ? $1 : 2 )) -c"$1" -d"${seconds}s" --latency -s "$repo/bench/post.lua" \
        "$url/events/llm/prompt" | awk -v c="$1" '
        /Requests\/sec/ { rate = $2 }
        /^ +50%/ { p50 = $2 } /^ +99%/ { p99 = $2 }
        /^non2xx=/ { errs = $0 }
        END { printf "bloodbank connections=%s rate=%.0f p50=%s p99=%s %s\n",
              c, rate, p50, p99, errs }'
}

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
echo "workers=$BB_WORKERS seconds=$seconds envelope_bytes=$bytes"
b16=$(wrk_run 16); echo "$b16"
b64=$(wrk_run 64); echo "$b64"
purge
c=$("$repo/bench/ceiling" "$amqp" bench llm.prompt "$BB_WORKERS" "$seconds" "$bytes")
echo "ceiling $c"
purge
rate() { sed -n 's/.* rate=\([0-9]*\).*/\1/p' <<<"$1"; }
awk -v a="$(rate "$b16")" -v b="$(rate "$b64")" -v c="$(rate "$c")" \
    'BEGIN { printf "ratio bloodbank/ceiling: c16=%.2f c64=%.2f\n", a / c, b / c }'

# What tracking costs: the same load with tracking on and off, alternated
# over three rounds so that a change in the host's load hits both; medians.
tracking() {  # on|off
    sed -i '/CORRELATION_TRACKING/d' "$dir/bloodbank.env"
    [ "$1" = off ] && echo 'export CORRELATION_TRACKING=false' >>"$dir/bloodbank.env"
    "$repo/scripts/stack.sh" restart-lighttpd "$dir" >/dev/null 2>&1
}
p50() { sed -n 's/.* p50=\([0-9.]*\)\(m\?s\|us\).*/\1 \2/p' <<<"$1" |
    awk '{ print ($2 == "us") ? $1 / 1000 : ($2 == "s") ? $1 * 1000 : $1 }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# One connection shows the cost per request; sixteen, the cost when the two
# cores are saturated and Redis competes with the broker for CPU.
for c in 1 16; do
    : >"$dir/on.txt"; : >"$dir/off.txt"
    for round in 1 2 3; do
        for mode in on off; do
            tracking "$mode"
            r=$(seconds=$(( (seconds + 1) / 2 )) wrk_run "$c")
            echo "$(rate "$r") $(p50 "$r")" >>"$dir/$mode.txt"
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
