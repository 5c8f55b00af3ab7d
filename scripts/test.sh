#!/bin/bash
# Build Bloodbank and run all its tests: CUnit unit tests (make check), the
# official JSON-Schema-Test-Suite and a differential test against
# python3-jsonschema over the schema validator (schemas), the
# integration suite against a private stack, the fault suite (broker, Redis and
# worker failures under load) against another, and the integration suite again
# against a build with AddressSanitizer + UndefinedBehaviorSanitizer. Beyond
# one machine: amqps (tls), failover on a three-node RabbitMQ cluster
# (cluster) and on Redis with Sentinels (sentinel), each with its own nodes.
#
# usage: scripts/test.sh [STEP...]        (default: all steps, in order)
# steps: deps build unit schemas alerts fuzz integration cloudevents faults tls
#        cluster sentinel asan_build asan_integration asan_tls asan_sentinel
#        packaging containers
#
#
# The private stack uses ports below 32768 that differ from the dev stack's:
# HTTP 18682, AMQP 15680 (dist 15681), Redis 16380, RabbitMQ node bbtest@localhost
# (BB_HTTP_PORT, BB_AMQP_PORT, BB_AMQP_DIST_PORT, BB_REDIS_PORT, BB_NODE to change),
# state under $BB_TEST_DIR (default /tmp/bloodbank-test; a fixed place, so that
# processes left by an interrupted run are found and stopped by the next one).
set -eu

STEPS="deps build unit schemas alerts fuzz integration cloudevents faults tls cluster sentinel asan_build asan_integration asan_tls asan_sentinel packaging containers fresh"

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

PY=/usr/bin/python3
TEST_DIR=${BB_TEST_DIR:-/tmp/bloodbank-test}
STACK="$repo/scripts/stack.sh"
ASAN_BUILD="$repo/build-asan"
SUMMARY=$(mktemp /tmp/bloodbank-test-summary.XXXXXX)

export BB_HTTP_PORT=${BB_HTTP_PORT:-18682}
export BB_HTTP_HOST=127.0.0.1
export BB_AMQP_PORT=${BB_AMQP_PORT:-15680}
export BB_AMQP_DIST_PORT=${BB_AMQP_DIST_PORT:-15681}
export BB_REDIS_PORT=${BB_REDIS_PORT:-16380}
export BB_NODE=${BB_NODE:-bbtest@localhost}
export BB_EXCHANGE=events
export BB_WORKERS=${BB_WORKERS:-4}
export MAX_BODY_BYTES=65536
# settings of the caller's shell that would change the service under test
unset API_TOKEN RABBIT_CONFIRM_TIMEOUT_MS RABBIT_CONNECT_TIMEOUT_MS \
      RABBIT_HEARTBEAT_SECONDS CORRELATION_MAX_CHILDREN CORRELATION_TRACKING DEBUG_ENDPOINTS \
      REDIS_TIMEOUT_MS REDIS_TTL_DAYS REDIS_DB RABBIT_EXCHANGE_TYPE LOG_LEVEL \
      METRICS_PATH LOG_TARGET ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS \
      RABBIT_TLS_CA RABBIT_TLS_CERT RABBIT_TLS_KEY RABBIT_TLS_VERIFY REDIS_SENTINELS \
      REDIS_SENTINEL_MASTER REDIS_SENTINEL_PASSWORD BB_RABBIT_URL BB_RABBIT_CONF \
      ENVELOPE_FORMAT SCHEMA_DIR ARCHIVE_STREAM ARCHIVE_MAX_AGE ARCHIVE_MAX_BYTES \
      SPOOL_DIR SPOOL_MAX_BYTES

export BB_URL="http://127.0.0.1:$BB_HTTP_PORT"
export BB_AMQP_URL="amqp://guest:guest@127.0.0.1:$BB_AMQP_PORT/"
export BB_STACK="$STACK"

say() { printf '\n=== %s\n' "$*"; }

# ---------------------------------------------------------------- the stack

current_stack=""

stack_up() {  # DIR BIN
    current_stack=$1
    BB_BIN=$2 BB_STATE_DIR=$1 bash "$STACK" start "$1"
}

stack_down() {
    if [ -n "$current_stack" ]; then
        bash "$STACK" stop "$current_stack" || true
        current_stack=""
    fi
}

# RabbitMQ starts epmd when none runs; stop it again at the end if this run
# started it (`epmd -kill` refuses while any Erlang node is still registered)
epmd_was_running=0
pgrep -x epmd >/dev/null 2>&1 && epmd_was_running=1

# shellcheck disable=SC2317  # called by the EXIT trap
finish() {
    stack_down
    rm -f "$SUMMARY"
    if [ "$epmd_was_running" = 0 ]; then
        epmd -kill >/dev/null 2>&1 || true
    fi
}
trap finish EXIT
trap 'exit 130' INT TERM

# run the integration suite (or the python driver DRIVER) against a fresh
# stack in DIR running BIN
integration() {  # DIR BIN [DRIVER]
    local dir=$1 bin=$2 driver=${3:-$repo/tests/integration/run.py} rc=0
    # processes of an interrupted earlier run (any pass) hold the same ports
    local d
    for d in "$TEST_DIR"/*/; do
        if [ -f "$d/stack.env" ]; then
            bash "$STACK" stop "${d%/}" >/dev/null 2>&1 || true
        fi
    done
    rm -rf "$dir"
    mkdir -p "$dir"
    # every pass runs with the suite's event schemas (CONTRACT §10,
    # tests/integration/test_schemas.py), in a SCHEMA_DIR of the stack's own
    # that the workers (BB_RUN_USER) can read and the tests may change
    mkdir -m 755 "$dir/schemas"
    cp "$repo"/tests/integration/schemas/* "$dir/schemas/"
    chmod 644 "$dir/schemas"/*
    export SCHEMA_DIR="$dir/schemas"
    stack_up "$dir" "$bin" || { show_logs "$dir"; stack_down; return 1; }
    BB_STATE_DIR=$dir BB_SUMMARY_FILE=$SUMMARY "$PY" "$driver" || rc=$?
    stack_down
    if [ $rc -ne 0 ]; then
        show_logs "$dir"
    fi
    return $rc
}

show_logs() {  # DIR
    local f
    for f in "$1/lighttpd-error.log" "$1/lighttpd.out"; do
        if [ -s "$f" ]; then
            echo "--- last lines of $f"
            tail -n 40 "$f"
        fi
    done
}

# ---------------------------------------------------------------- steps

step_deps() {
    bash "$repo/scripts/deps.sh"
}

step_build() {
    autoreconf -fi
    ./configure
    make -j2
}

step_unit() {
    local rc=0
    make -j2 check || rc=$?
    # the CUnit output (automake's harness keeps it in a log file)
    find tests -name '*.log' -exec sh -c 'echo "--- $1"; cat "$1"' sh {} \;
    if [ $rc -ne 0 ] && [ -f test-suite.log ]; then
        cat test-suite.log
    fi
    return $rc
}

# JSON Schema draft-07 (CONTRACT §10): the official JSON-Schema-Test-Suite
# through jsonschema.c (tests/schema/suite.c, its skip list says why each
# skipped group is skipped), then random schemas and instances against
# python3-jsonschema's Draft7Validator (tests/schema/differential.py)
step_schemas() {
    make -j2 tests/schema/suite
    "$repo/tests/schema/suite" /usr/share/json-schema-test-suite/tests/draft7
    "$PY" "$repo/tests/schema/differential.py" --driver "$repo/tests/schema/suite"
}

# the shipped Prometheus alerting rules: valid, and each one firing and not
# firing on made-up series
step_alerts() {
    promtool check rules "$repo/etc/prometheus/bloodbank-alerts.yml"
    promtool test rules "$repo/tests/prometheus/bloodbank-alerts.test.yml"
}

# libFuzzer over request parsing, validation and envelope building
step_fuzz() {
    bash "$repo/tests/fuzz/run.sh" "${BB_FUZZ_SECONDS:-60}"
}

step_integration() {
    integration "$TEST_DIR/plain" "$repo/src/bloodbank"
}

# CloudEvents (CONTRACT §9.3) judged by a client we did not write: the
# CloudEvents JavaScript SDK (npm package cloudevents, installed once into
# $TEST_DIR/cloudevents-sdk with Debian's node and npm) emits into a stack with
# ENVELOPE_FORMAT=cloudevents in binary, structured and batched mode, and
# parses and validates every message that stack put on the bus
# (tests/cloudevents/run.py)
step_cloudevents() {
    local sdk="$TEST_DIR/cloudevents-sdk"
    if [ ! -f "$sdk/node_modules/cloudevents/package.json" ]; then
        rm -rf "$sdk"
        mkdir -p "$sdk"
        npm install --prefix "$sdk" --no-audit --no-fund --loglevel=error cloudevents@8
    fi
    export ENVELOPE_FORMAT=cloudevents BB_CE_SDK="$sdk/node_modules"
    integration "$TEST_DIR/cloudevents" "$repo/src/bloodbank" "$repo/tests/cloudevents/run.py"
}

# Broker, Redis and worker failures under concurrent load (tests/faults/run.py):
# short broker timeouts so that each fault is over in seconds, and bodies up to
# 4 MiB (lighttpd's server.max-request-size) for the large body sent while the
# broker blocks publishers: 1 MiB still fits in loopback socket buffers
# (tcp_wmem autotunes up to 4 MiB). The checker's own tests run first.
# Then a second pass against a stack whose workers spool (CONTRACT §12): its
# SPOOL_DIR is a directory of its own beside the stack's (which integration
# empties), writable by the workers' user; there the broker's faults must
# answer no 503 broker_unavailable and every 202 must reach the queue, and a
# worker killed holding spooled events and the whole pool restarted while
# events are spooled lose none (tests/faults/run.py, spool mode).
step_faults() {
    local rc=0 spool="$TEST_DIR/faults-spool.segments" user
    "$PY" "$repo/tests/faults/test_faultcheck.py"
    export RABBIT_CONFIRM_TIMEOUT_MS=2000 RABBIT_CONNECT_TIMEOUT_MS=1000 \
        RABBIT_HEARTBEAT_SECONDS=5 MAX_BODY_BYTES=4194304
    integration "$TEST_DIR/faults" "$repo/src/bloodbank" "$repo/tests/faults/run.py" || rc=$?
    say "faults with the spool on"
    rm -rf "$spool"
    mkdir -p "$TEST_DIR"
    if [ "$(id -u)" = 0 ]; then
        user=${BB_RUN_USER:-www-data}
        install -d -m 0770 -o "$user" -g "$(id -gn "$user")" "$spool"
    else
        install -d -m 0770 "$spool"
    fi
    export SPOOL_DIR=$spool
    integration "$TEST_DIR/faults-spool" "$repo/src/bloodbank" "$repo/tests/faults/run.py" \
        || rc=$?
    unset SPOOL_DIR
    return $rc
}

# amqps: a test CA (tests/tls/pki.sh), the stack's node with a TLS listener
# that asks for a client certificate, and workers whose RABBIT_URL is amqps://
# with verification on; the suite's publish cases and the TLS cases run
# against them (tests/tls/run.py). The test clients use the plain listener.
tls_suite() {  # DIR BIN
    local pki="$TEST_DIR/tls-pki"
    export BB_TLS_PKI=$pki BB_AMQPS_PORT=${BB_AMQPS_PORT:-15671}
    bash "$repo/tests/tls/pki.sh" "$pki"
    cat > "$pki/rabbitmq-tls.conf" <<EOF
listeners.ssl.default = 127.0.0.1:$BB_AMQPS_PORT
ssl_options.cacertfile = $pki/ca.pem
ssl_options.certfile = $pki/broker.pem
ssl_options.keyfile = $pki/broker.key
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = true
EOF
    export BB_RABBIT_CONF="$pki/rabbitmq-tls.conf" \
        BB_RABBIT_URL="amqps://guest:guest@localhost:$BB_AMQPS_PORT/" \
        RABBIT_TLS_CA="$pki/ca.pem" RABBIT_TLS_CERT="$pki/client.pem" \
        RABBIT_TLS_KEY="$pki/client.key"
    integration "$1" "$2" "$repo/tests/tls/run.py"
}

step_tls() {
    tls_suite "$TEST_DIR/tls" "$repo/src/bloodbank"
}

# Failover on a three-node RabbitMQ cluster: the node the workers use is
# SIGKILLed under load; and what an unroutable event is answered while the
# unrouted queue is unavailable. Its own nodes and ports (tests/cluster/run.sh).
step_cluster() {
    bash "$repo/tests/cluster/run.sh"
}

# A Redis Sentinel failover under load (tests/sentinel/run.sh): a private
# master, replica and three Sentinels on ports BB_SENTINEL_PORT (19390) to
# +5, and a private stack whose workers find the master through them.
sentinel_suite() {  # DIR BIN
    local d
    for d in "$TEST_DIR"/*/; do   # stacks of an interrupted run hold the ports
        if [ -f "$d/stack.env" ]; then
            bash "$STACK" stop "${d%/}" >/dev/null 2>&1 || true
        fi
    done
    BB_BIN=$2 bash "$repo/tests/sentinel/run.sh" "$1"
}

step_sentinel() {
    sentinel_suite "$TEST_DIR/sentinel" "$repo/src/bloodbank"
}

# The sanitizer build is a VPATH build, but automake refuses a VPATH build of a
# source tree that is configured in place (by step_build), so it configures a
# clean copy of the tree.
step_asan_build() {
    rm -rf "$ASAN_BUILD"
    mkdir -p "$ASAN_BUILD/tree" "$ASAN_BUILD/obj"
    tar -C "$repo" --exclude=./build-asan --exclude=./.git -cf - . | tar -C "$ASAN_BUILD/tree" -xf -
    if [ -f "$ASAN_BUILD/tree/Makefile" ]; then
        make -C "$ASAN_BUILD/tree" distclean >/dev/null
    fi
    (
        cd "$ASAN_BUILD/obj"
        ../tree/configure CC=clang \
            CFLAGS="-g -O1 -fsanitize=address,undefined -fno-omit-frame-pointer" \
            LDFLAGS="-fsanitize=address,undefined"
        make -j2
        # the unit tests, under the sanitizers too
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 make -j2 check ||
            { cat tests/unit/unit_tests.log; exit 1; }
    )
}

# with_sanitizers LOGS SUITE DIR: runs SUITE DIR BIN with the sanitizer
# build's workers reporting into LOGS (their stack's directory, which they
# may write), and fails on any report
with_sanitizers() {
    local logs=$1 suite=$2 dir=$3 rc=0 f found=0
    ASAN_OPTIONS="log_path=$logs/asan:detect_leaks=0:abort_on_error=0" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$logs/ubsan" \
        "$suite" "$dir" "$ASAN_BUILD/obj/src/bloodbank" || rc=$?
    for f in "$logs"/asan.* "$logs"/ubsan.*; do
        [ -e "$f" ] || continue
        found=1
        echo "--- sanitizer report $f"
        cat "$f"
    done
    if [ $found -ne 0 ]; then
        echo "sanitizer reports found"
        rc=1
    fi
    return $rc
}

step_asan_integration() {
    with_sanitizers "$TEST_DIR/asan" integration "$TEST_DIR/asan"
}

# the amqps path (TLS reads and writes) and the Sentinel lookups under the
# sanitizers too
step_asan_tls() {
    with_sanitizers "$TEST_DIR/asan-tls" tls_suite "$TEST_DIR/asan-tls"
}

step_asan_sentinel() {
    with_sanitizers "$TEST_DIR/asan-sentinel/stack" sentinel_suite "$TEST_DIR/asan-sentinel"
}

# build, lintian, install, serve through lighttpd and nginx, purge
step_packaging() {
    bash "$repo/tests/packaging/run.sh"
}

# the Dockerfile, compose.yaml and k8s/ with podman (tests/containers/run.sh)
step_containers() {
    bash "$repo/tests/containers/run.sh"
}

# scripts/deps.sh and the first steps on a clean Debian 12 (tests/fresh/run.sh)
step_fresh() {
    bash "$repo/tests/fresh/run.sh"
}

# ---------------------------------------------------------------- runner

[ $# -gt 0 ] && STEPS="$*"

failed=""
for step in $STEPS; do
    say "step $step"
    t0=$SECONDS
    # a subshell with errexit in force (it would be ignored inside an `if`)
    set +e
    (
        set -e
        trap stack_down EXIT
        trap 'exit 130' INT TERM
        "step_$step"
    )
    rc=$?
    set -e
    if [ $rc -eq 0 ]; then
        echo "step $step: ok ($((SECONDS - t0)) s)"
    else
        echo "step $step: FAILED ($((SECONDS - t0)) s)"
        failed="$failed $step"
        case $step in
            deps|build|asan_build) break ;;  # later steps need this one
        esac
    fi
done

if [ -n "$failed" ]; then
    say "FAILED:$failed"
else
    say "all steps passed: $STEPS"
fi
# integration tests of all passes, added up (unit test counts are in the CUnit output above)
if [ -s "$SUMMARY" ]; then
    awk '{p += $1; f += $2; s += $3} END {printf "integration: %d passed, %d failed, %d skipped\n", p, f, s}' "$SUMMARY"
fi
[ -z "$failed" ]
