#!/bin/bash
# Redis Sentinel failover under load (scripts/test.sh sentinel): a private
# Redis master, one replica and three Sentinels (quorum 2, a master is down
# after 1 s), and a private Bloodbank stack (scripts/stack.sh) whose workers
# find the master through the Sentinels. run.py kills the master with SIGKILL
# while clients publish and checks that every publish answers 200, that
# tracking resumes on the promoted replica (and how soon), that the debug
# endpoints answer from it and that the old master is not used again, even
# once it is back. Everything started here is stopped on exit.
#
# usage: tests/sentinel/run.sh [DIR]      (default /tmp/bb-sentinel-test)
#
# BB_SENTINEL_PORT (19390) is the master's port; +1 the replica's, +2 stays
# free (a Sentinel listed first that does not answer), +3..+5 the Sentinels',
# +6 a stale Sentinel listed second (stale_sentinel.py: it names the replica
# as the master), so that a worker must move on past it.
# The stack takes the BB_* settings of scripts/stack.sh (BB_HTTP_PORT ...).
set -eu

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
dir=${1:-/tmp/bb-sentinel-test}
case $dir in /*) ;; *) dir=$(pwd)/$dir ;; esac
base=${BB_SENTINEL_PORT:-19390}
master=$base
replica=$((base + 1))
absent=$((base + 2))
sentinels="$((base + 3)) $((base + 4)) $((base + 5))"
stale=$((base + 6))
stack="$repo/scripts/stack.sh"

log() { echo "sentinel: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# the Redis servers and Sentinels of DIR (by their pid files), and its stack
stop_all() {
    local pf pid
    if [ -f "$dir/stack/stack.env" ]; then
        bash "$stack" stop "$dir/stack" || true
    fi
    for pf in "$dir"/redis/*.pid; do
        [ -s "$pf" ] || continue
        pid=$(cat "$pf")
        if tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q redis-server; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$pf"
    done
    if [ -s "$dir/stale.pid" ]; then
        kill "$(cat "$dir/stale.pid")" 2>/dev/null || true
        rm -f "$dir/stale.pid"
    fi
}

stop_all    # left by an interrupted run
trap stop_all EXIT
trap 'exit 130' INT TERM

for p in $master $replica $absent $sentinels $stale; do
    if ss -Hltn "sport = :$p" | grep -q .; then
        die "port $p is in use (BB_SENTINEL_PORT=$base)"
    fi
done
rm -rf "$dir"
mkdir -p "$dir/redis" "$dir/stack"
chmod 700 "$dir/redis"     # the Sentinels' configuration holds their password
password="sp-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"

# conf PORT: the lines every instance shares
conf() {
    mkdir -p "$dir/redis/$1"
    printf '%s\n' "port $1" "bind 127.0.0.1" "daemonize yes" \
        "pidfile $dir/redis/$1.pid" "logfile $dir/redis/$1.log" "dir $dir/redis/$1"
}

{ conf "$master"; echo 'save ""'; } > "$dir/redis/redis-$master.conf"
{ conf "$replica"; echo 'save ""'; echo "replicaof 127.0.0.1 $master"; } \
    > "$dir/redis/redis-$replica.conf"
for p in $sentinels; do
    { conf "$p"; printf '%s\n' "requirepass $password" "sentinel sentinel-pass $password" \
        "sentinel monitor mymaster 127.0.0.1 $master 2" \
        "sentinel down-after-milliseconds mymaster 1000" \
        "sentinel failover-timeout mymaster 5000"; } > "$dir/redis/sentinel-$p.conf"
done

redis-server "$dir/redis/redis-$master.conf"
redis-server "$dir/redis/redis-$replica.conf"
for p in $sentinels; do
    redis-server "$dir/redis/sentinel-$p.conf" --sentinel
done

# sentinel_cli PORT ARGS...
sentinel_cli() {
    local p=$1
    shift
    REDISCLI_AUTH=$password redis-cli -h 127.0.0.1 -p "$p" "$@"
}

# ready before the stack starts: the replica in sync, every Sentinel sees
# the replica and the two other Sentinels
ready() {
    local p
    redis-cli -h 127.0.0.1 -p "$replica" info replication 2>/dev/null |
        grep -q 'master_link_status:up' || return 1
    for p in $sentinels; do
        sentinel_cli "$p" sentinel master mymaster 2>/dev/null |
            tr '\n' ' ' | grep -q 'num-slaves 1 .*num-other-sentinels 2 ' || return 1
    done
}
deadline=$((SECONDS + 60))
until ready; do
    if [ $SECONDS -ge $deadline ]; then
        tail -n 20 "$dir"/redis/*.log >&2
        die "the replica and the Sentinels were not ready within 60 s"
    fi
    sleep 0.5
done
log "master 127.0.0.1:$master, replica :$replica, Sentinels :${sentinels// /, :} ready"

/usr/bin/python3 "$here/stale_sentinel.py" "$stale" 127.0.0.1 "$replica" &
echo $! > "$dir/stale.pid"
list="127.0.0.1:$absent,127.0.0.1:$stale"
for p in $sentinels; do
    list="$list,127.0.0.1:$p"
done
# tracking within 1 s on a shared machine: an event left untracked by a slow
# answer would look like a failover that never finished
REDIS_SENTINELS=$list REDIS_SENTINEL_MASTER=mymaster REDIS_SENTINEL_PASSWORD=$password \
REDIS_TIMEOUT_MS=1000 BB_STATE_DIR="$dir/stack" BB_BIN=${BB_BIN:-$repo/src/bloodbank} \
    bash "$stack" start "$dir/stack"

BB_URL=${BB_URL:-http://127.0.0.1:${BB_HTTP_PORT:-8682}} \
BB_SENTINEL_DIR=$dir BB_SENTINEL_MASTER_PORT=$master BB_SENTINEL_REPLICA_PORT=$replica \
BB_SENTINEL_ABSENT_PORT=$absent BB_SENTINEL_STALE_PORT=$stale BB_SENTINEL_PORTS=$sentinels \
BB_SENTINEL_PASSWORD=$password BB_WORKER_LOG="$dir/stack/lighttpd.out" \
    /usr/bin/python3 "$here/run.py"
