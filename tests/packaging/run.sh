#!/bin/bash
# Packaging test: build the .deb from a clean copy of the tree, check it with
# lintian, install it with apt, and use it the way an operator would:
#   event schemas: /etc/bloodbank/schemas holds the README and the example
#       as conffiles; `bloodbank --check-config` passes on the installed
#       package, fails naming the file, pointer and reason with a bad schema
#       file there, and loads the example copied to order.placed.json;
#   `bloodbank doctor` as the service user: red before the web server is
#       set up, naming the lighttpd module to enable, green after;
#   the spool: /var/spool/bloodbank is bloodbank:bloodbank, mode 2770, and
#       the installed bloodbank.ini turns it on ([spool] dir);
#   (a) lighttpd from the system configuration with the shipped snippet
#       enabled (lighty-enable-mod bloodbank): the guide's checklist on :8682;
#       the spool: with the broker stopped an event is answered 202
#       (Bloodbank-Delivery: spooled) into a segment file of the workers
#       (www-data, group bloodbank, 0660), and reaches a queue bound to the
#       exchange once the broker is back; one more spooled while lighttpd
#       stops is forwarded in (b) by the master's workers (user bloodbank);
#   (b) the master started as bloodbank.service + bloodbank.socket would
#       start it (spawn-fcgi stands in for the socket unit: it binds
#       /run/bloodbank/bloodbank.sock with the unit's owner and mode and
#       execs ExecStart as the unit's user), nginx with the shipped site on
#       a free port, and a publish through it;
#   (d) kill -9 of one worker: it is replaced; SIGHUP under load replaces
#       the workers with no request failing, and a SIGHUP with a bad
#       configuration is refused, the workers kept;
#   (c) SIGTERM to the master under load: every request answered;
#   (e) remove, reinstall and purge with the lighttpd module enabled and
#       lighttpd running: remove disables the module and reloads lighttpd
#       (which stops serving Bloodbank and still passes `lighttpd -tt`), a
#       reinstall enables it again, purge leaves no dangling link, and
#       /etc/bloodbank, the spool and the user are gone; an event spooled
#       before the remove stays in the spool and is forwarded after the
#       reinstall.
# The machine's lighttpd is started with its init script and reloaded by the
# package through invoke-rc.d: a policy-rc.d of the test's own allows that
# for lighttpd only while the test runs (a container's denies everything).
# Redis and RabbitMQ are private (scripts/stack.sh deps-up); the installed
# /etc/bloodbank/bloodbank.ini is edited to point at them, as an operator
# would edit it.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=${BB_PKG_DIR:-/tmp/bloodbank-pkg}
export BB_AMQP_PORT=15730 BB_AMQP_DIST_PORT=15731 BB_REDIS_PORT=16430
export BB_NODE=bbpkg@localhost
NGINX_PORT=18783
deps="$work/deps"
master_pid=""
lighttpd_started=0
policy=/usr/sbin/policy-rc.d
enabled_link=/etc/lighttpd/conf-enabled/15-bloodbank.conf

say() { printf -- '--- %s\n' "$*"; }
fail() { echo "packaging test FAILED: $*" >&2; exit 1; }

cleanup() {
    set +e
    [ -n "$master_pid" ] && kill "$master_pid" 2>/dev/null
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null
    [ "$lighttpd_started" = 1 ] && service lighttpd stop >/dev/null 2>&1
    bash "$repo/scripts/stack.sh" deps-down "$deps" >/dev/null 2>&1
    dpkg -s bloodbank >/dev/null 2>&1 && apt-get purge -y -q bloodbank >/dev/null 2>&1
    [ -L "$enabled_link" ] && rm -f "$enabled_link"
    restore_policy
}

# The machine's own policy-rc.d, if any, is kept aside while the test's
# allows lighttpd's actions (and denies every other service's).
allow_lighttpd() {
    if [ -e "$policy" ] && [ ! -e "$work/policy-rc.d.orig" ]; then
        cp -p "$policy" "$work/policy-rc.d.orig"
    fi
    printf '#!/bin/sh\n# bloodbank packaging test (%s)\nfor a; do [ "$a" = lighttpd ] && exit 0; done\nexit 101\n' \
        "$work" >"$policy"
    chmod 755 "$policy"
}
restore_policy() {
    if [ -e "$work/policy-rc.d.orig" ]; then
        mv -f "$work/policy-rc.d.orig" "$policy"
    elif grep -qs "bloodbank packaging test ($work)" "$policy"; then
        rm -f "$policy"
    fi
}
trap cleanup EXIT

json_field() {  # FIELD: from the JSON on stdin
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

publish() {  # BASE_URL
    curl -sf -X POST "$1/events/llm/prompt" -H 'Content-Type: application/json' \
        -d '{"prompt":"Test prompt","model":"gpt-4","temperature":0.7}'
}

lighttpd_running() {
    service lighttpd status >/dev/null 2>&1
}

answers() {  # URL: anything answers there
    curl -s -o /dev/null --max-time 5 "$1"
}

web_error() {  # STATUS CODE CURL_ARGS...: the web server's own error, in JSON
    local want=$1 code=$2 out
    shift 2
    out=$(curl -s -w '\n%{http_code} %{content_type}' "$@")
    [ "$(tail -n 1 <<<"$out")" = "$want application/json" ] ||
        fail "expected a JSON $want from the web server, got: $out"
    [ "$(head -n 1 <<<"$out" | json_field error)" = "$code" ] ||
        fail "expected error $code, got: $out"
    echo "$want $code: $(head -n 1 <<<"$out")"
}

# The broker, for the spool's checks: a durable queue bound to the exchange
# with # (declared, or emptied when it is there), and the event sought in it
# by id (message_id, or the body's event_id) until a deadline; the broker may
# still be starting.
amqp() {  # declare QUEUE | find QUEUE EVENT_ID SECONDS
    /usr/bin/python3 - "$@" <<'PY'
import json, os, sys, time
import pika
action, queue = sys.argv[1], sys.argv[2]
params = pika.URLParameters("amqp://guest:guest@127.0.0.1:%s/" % os.environ["BB_AMQP_PORT"])
if action == "declare":
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    ch.queue_declare(queue, durable=True)
    ch.queue_bind(queue, "events", routing_key="#")
    ch.queue_purge(queue)
    conn.close()
    sys.exit(0)
want, seconds = sys.argv[3], float(sys.argv[4])
deadline, conn, others = time.monotonic() + seconds, None, 0
while time.monotonic() < deadline:
    try:
        if conn is None:
            conn = pika.BlockingConnection(params)
            ch = conn.channel()
        method, props, body = ch.basic_get(queue, auto_ack=True)
    except pika.exceptions.AMQPError:
        conn = None
        time.sleep(0.5)
        continue
    if method is None:
        time.sleep(0.2)
        continue
    try:
        got = json.loads(body).get("event_id")
    except ValueError:
        got = None
    if want in (props.message_id, got):
        print("event %s is in queue %s (and %d others before it)" % (want, queue, others))
        sys.exit(0)
    others += 1
sys.exit("event %s did not reach queue %s in %g s (%d others did)" % (want, queue, seconds, others))
PY
}

spool_post() {  # URL: POST one event while the broker is down; expects the
    # 202 of the spool, prints its event id. A worker that wrote the event
    # before it saw its connection close answers 504 (never spooled): the
    # next try goes to a worker that knows.
    local code delivery
    for _ in 1 2 3 4 5; do
        rm -f "$work/spool.headers" "$work/spool.body"
        code=$(curl -s -D "$work/spool.headers" -o "$work/spool.body" -w '%{http_code}' \
            --max-time 15 -X POST "$1/events/llm/prompt" -H 'Content-Type: application/json' \
            -d '{"prompt":"spooled while the broker is down"}') || true
        [ "$code" = 504 ] || break
        echo "504 (a worker's connection closed under its publish): again" >&2
    done
    delivery=$(tr -d '\r' <"$work/spool.headers" |
        awk -F': *' 'tolower($1) == "bloodbank-delivery" { print $2 }')
    [ "$code" = 202 ] && [ "$delivery" = spooled ] ||
        fail "with the broker stopped: $code, Bloodbank-Delivery '$delivery': $(cat "$work/spool.body" 2>/dev/null)"
    json_field event_id <"$work/spool.body"
}

wait_http() {  # URL
    for _ in $(seq 1 50); do
        curl -s -o /dev/null "$1" && return 0
        sleep 0.2
    done
    fail "nothing answers at $1"
}

say "build the .deb from a clean copy"
rm -rf "$work"
mkdir -p "$work/src"
git -C "$repo" ls-files -z | (cd "$repo" && xargs -0 tar -cf -) | tar -C "$work/src" -xf -
(cd "$work/src" && dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1) ||
    { tail -n 40 "$work/build.log"; fail "dpkg-buildpackage"; }
deb=$(ls "$work"/bloodbank_0.2.0-1_*.deb)
grep -E '^(PASS|SKIP|FAIL):' "$work/build.log"

say "lintian $(basename "$deb")"
lintian "$deb" 2>&1 | tee "$work/lintian.txt" | grep -v '^running with root'
if grep -q '^E:' "$work/lintian.txt"; then
    fail "lintian reports errors"
fi

say "install with apt"
apt-get install -y -q "$deb" >"$work/install.log" 2>&1 ||
    { cat "$work/install.log"; fail "apt-get install"; }
getent passwd bloodbank >/dev/null || fail "no bloodbank user"
for unit in bloodbank.service bloodbank.socket; do
    if ls /etc/systemd/system/*.wants/"$unit" >/dev/null 2>&1; then
        fail "$unit is enabled on install (it is for nginx users to enable)"
    fi
done
[ "$(stat -c '%U:%G %a' /etc/bloodbank/bloodbank.ini)" = "root:bloodbank 640" ] ||
    fail "bloodbank.ini is not root:bloodbank 0640"
# the spool: shared by lighttpd's workers (www-data, in group bloodbank) and
# the master's (bloodbank); setgid keeps what either creates in the group
spool=/var/spool/bloodbank
[ "$(stat -c '%U:%G %a' "$spool")" = "bloodbank:bloodbank 2770" ] ||
    fail "$spool is $(stat -c '%U:%G %a' "$spool"), not bloodbank:bloodbank 2770"
spool_dir=$(/usr/bin/python3 -c '
import configparser, sys
c = configparser.ConfigParser(interpolation=None)
c.read(sys.argv[1])
print(c.get("spool", "dir", fallback=""))' /etc/bloodbank/bloodbank.ini)
[ "$spool_dir" = "$spool" ] ||
    fail "the installed bloodbank.ini does not set [spool] dir = $spool: '$spool_dir'"
echo "spool: $spool $(stat -c '%U:%G %a' "$spool"), [spool] dir = $spool_dir"
/usr/sbin/bloodbank --version

say "event schemas: /etc/bloodbank/schemas holds the README and the example, as conffiles"
schemas=/etc/bloodbank/schemas
conffiles=$(dpkg-query -W -f='${Conffiles}\n' bloodbank)
for f in "$schemas/README" "$schemas/order.placed.json.example"; do
    [ -f "$f" ] || fail "$f is not installed"
    grep -qF " $f " <<<"$conffiles" || fail "$f is not a conffile"
done
ls -l "$schemas"

say "private Redis and RabbitMQ; point /etc/bloodbank/bloodbank.ini at them"
bash "$repo/scripts/stack.sh" deps-up "$deps"
cat >>/etc/bloodbank/bloodbank.ini <<INI

; set by the packaging test
[rabbitmq]
url = amqp://guest:guest@127.0.0.1:$BB_AMQP_PORT/
[redis]
host = 127.0.0.1
port = $BB_REDIS_PORT
INI
runuser -u bloodbank -- /usr/sbin/bloodbank --check-config >/dev/null ||
    fail "the service user cannot read a valid configuration"

say "event schemas: --check-config reads SCHEMA_DIR, and names a bad file"
out=$(runuser -u bloodbank -- /usr/sbin/bloodbank --check-config) ||
    fail "--check-config with the shipped $schemas"
grep -qxF "# event schemas: 0 loaded from $schemas" <<<"$out" ||
    fail "--check-config does not report $schemas: $(tail -n 1 <<<"$out")"
# a misspelt keyword: refused, naming the file, the JSON pointer and the reason
printf '{"type":"object","properties":{"qty":{"type":"integer","minimun":1}}}\n' \
    >"$schemas/order.placed.json"
status=0
out=$(runuser -u bloodbank -- /usr/sbin/bloodbank --check-config 2>&1 >/dev/null) || status=$?
rm -f "$schemas/order.placed.json"
echo "$out"
[ "$status" -eq 1 ] || fail "--check-config with a bad schema file exited $status"
[[ "$out" == "bloodbank: event schemas: $schemas/order.placed.json: /properties/qty/minimun: "?* ]] ||
    fail "the bad schema file was not named with its JSON pointer and a reason"
# the shipped example, copied to its event type's name, compiles; it stays
# for (a), which reads it through lighttpd's workers
cp "$schemas/order.placed.json.example" "$schemas/order.placed.json"
out=$(runuser -u bloodbank -- /usr/sbin/bloodbank --check-config) ||
    fail "--check-config with the example as $schemas/order.placed.json"
grep -qxF "# event schemas: 1 loaded from $schemas" <<<"$out" ||
    fail "the example was not loaded: $(tail -n 1 <<<"$out")"
echo "$(tail -n 1 <<<"$out") (the example as order.placed.json)"

say "bloodbank doctor before the web server is set up: red, naming the module"
lighttpd_running && fail "the machine's lighttpd is running already"
status=0
out=$(runuser -u bloodbank -- /usr/sbin/bloodbank doctor 2>&1) || status=$?
echo "$out"
[ "$status" -eq 1 ] || fail "doctor exited $status with nothing serving Bloodbank"
grep -qF "[FAIL] web server: nothing answers at 127.0.0.1:8682, and lighttpd's bloodbank module is not enabled: lighty-enable-mod bloodbank" <<<"$out" ||
    fail "doctor does not name the lighttpd module"
grep '^\[FAIL\]' <<<"$out" | grep -qv '^\[FAIL\] web server' &&
    fail "doctor fails something else than the web server"

say "(a) lighttpd with lighty-enable-mod bloodbank, on 127.0.0.1:8682"
lighty-enable-mod bloodbank >/dev/null
lighttpd -tt -f /etc/lighttpd/lighttpd.conf
lighttpd_started=1
service lighttpd start >/dev/null
wait_http http://127.0.0.1:8682/healthz
health=$(curl -s http://127.0.0.1:8682/healthz)
echo "$health"
[ "$(json_field status <<<"$health")" = healthy ] || fail "healthz: $health"
event=$(publish http://127.0.0.1:8682) || fail "publish through lighttpd"
id=$(json_field event_id <<<"$event")
corr=$(curl -sf "http://127.0.0.1:8682/debug/correlation/$id") ||
    fail "debug correlation of $id"
[ "$(json_field event_id <<<"$corr")" = "$id" ] || fail "correlation: $corr"
echo "published $id; its correlation record answers"
out=$(runuser -u bloodbank -- /usr/sbin/bloodbank doctor 2>&1) ||
    { echo "$out"; fail "doctor is not green once lighttpd serves Bloodbank"; }
echo "$out"
grep -qF "[ok]   configuration file: /etc/bloodbank/bloodbank.ini holds url and is not readable by others (mode 0640)" <<<"$out" ||
    fail "doctor does not check the installed configuration file"
ctype=$(curl -sf -o "$work/schema.json" -w '%{content_type}' \
    http://127.0.0.1:8682/schemas/order.placed) || fail "GET /schemas/order.placed"
[ "$ctype" = application/schema+json ] || fail "GET /schemas/order.placed: Content-Type $ctype"
[ "$(json_field title <"$work/schema.json")" = "Order placed" ] ||
    fail "GET /schemas/order.placed: $(head -c 200 "$work/schema.json")"
curl -sf http://127.0.0.1:8682/schemas | /usr/bin/python3 -c '
import json, sys
types = [s["event_type"] for s in json.load(sys.stdin)["schemas"]]
sys.exit(0 if "order.placed" in types and "llm.prompt" in types else "GET /schemas: %s" % types)' ||
    fail "GET /schemas does not list order.placed and llm.prompt"
out=$(curl -s -w '\n%{http_code}' -X POST http://127.0.0.1:8682/events/order.placed \
    -H 'Content-Type: application/json' -d '{"order_id":"ORD-1"}')
[ "$(tail -n 1 <<<"$out")" = 422 ] || fail "a payload breaking order.placed's schema: $out"
head -n 1 <<<"$out" | /usr/bin/python3 -c '
import json, sys
fields = json.load(sys.stdin)["fields"]
sys.exit(0 if any(f["field"] == "order_id" and f["keyword"] == "pattern" for f in fields) else 1)' ||
    fail "the 422 does not name order_id and its pattern: $out"
echo "GET /schemas/order.placed answers the example; a payload breaking it: 422"
rm -f "$schemas/order.placed.json"
web_error 413 payload_too_large -X POST http://127.0.0.1:8682/events/llm/prompt \
    -H 'Content-Type: application/json' -H 'Content-Length: 104857600'
ss -Hltn 'sport = :8682' | awk '{print $4}' | grep -qvx '127.0.0.1:8682' &&
    fail "lighttpd listens on 8682 beyond the loopback interface"

say "(a) the spool: the broker stopped, an event is answered 202 and forwarded once it is back"
queue=bbpkg-spool
amqp declare "$queue"
bash "$repo/scripts/stack.sh" stop-rabbit "$deps"
id=$(spool_post http://127.0.0.1:8682)
echo "202, Bloodbank-Delivery: spooled: $id"
# the workers' segment files: written by www-data, in group bloodbank,
# 0660, so that the master's workers (bloodbank) can adopt them
segments=$(find "$spool" -maxdepth 1 -type f -name 'segment-*' -size +0c -printf '%f %u:%g %m %s bytes\n')
[ -n "$segments" ] || { ls -la "$spool"; fail "no non-empty segment-* file in $spool"; }
echo "$segments"
awk '$2 !~ /:bloodbank$/ || $3 != 660 { bad = 1 } END { exit bad }' <<<"$segments" ||
    fail "a segment file is not group bloodbank and mode 0660: the other user could not adopt it"
curl -s http://127.0.0.1:8682/metrics | grep '^bloodbank_spool_' || true
bash "$repo/scripts/stack.sh" start-rabbit "$deps"
amqp find "$queue" "$id" 15 ||
    fail "the spooled event $id was not forwarded within 15 s of the broker's return"

say "(a) one more spooled, then lighttpd stopped: the master's workers forward it in (b)"
bash "$repo/scripts/stack.sh" stop-rabbit "$deps"
left=$(spool_post http://127.0.0.1:8682)
echo "202, Bloodbank-Delivery: spooled: $left"
service lighttpd stop >/dev/null
lighttpd_started=0
bash "$repo/scripts/stack.sh" start-rabbit "$deps"

say "(b) the master as the systemd units start it, nginx with the shipped site"
exec_start=$(sed -n 's/^ExecStart=//p' /lib/systemd/system/bloodbank.service)
sock=$(sed -n 's/^ListenStream=//p' /lib/systemd/system/bloodbank.socket)
sock_user=$(sed -n 's/^SocketUser=//p' /lib/systemd/system/bloodbank.socket)
sock_group=$(sed -n 's/^SocketGroup=//p' /lib/systemd/system/bloodbank.socket)
sock_mode=$(sed -n 's/^SocketMode=//p' /lib/systemd/system/bloodbank.socket)
unit_user=$(sed -n 's/^User=//p' /lib/systemd/system/bloodbank.service)
mkdir -p "$(dirname "$sock")"
chown "$unit_user:$unit_user" "$(dirname "$sock")"
# shellcheck disable=SC2086  # ExecStart is a command line
BLOODBANK_CONFIG=/etc/bloodbank/bloodbank.ini spawn-fcgi -n -s "$sock" \
    -U "$sock_user" -G "$sock_group" -M "$sock_mode" \
    -u "$unit_user" -g "$unit_user" -- $exec_start >"$work/master.log" 2>&1 &
master_pid=$!
sed "s/listen 127.0.0.1:8682;/listen 127.0.0.1:$NGINX_PORT;/; s|/var/log/nginx/bloodbank.access.log|$work/nginx-access.log|" \
    /etc/nginx/sites-available/bloodbank >"$work/site.conf"
# The shipped files include snippets/ and fastcgi_params relative to the
# configuration's directory, /etc/nginx on a real system.
ln -s /etc/nginx/snippets "$work/snippets"
ln -s /etc/nginx/fastcgi_params "$work/fastcgi_params"
cat >"$work/nginx.conf" <<NGINX
user www-data;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events {}
http {
    client_body_temp_path $work/nginx-body;
    fastcgi_temp_path $work/nginx-fastcgi;
    include /etc/nginx/conf.d/bloodbank.conf;
    include $work/site.conf;
}
NGINX
nginx -c "$work/nginx.conf"
wait_http "http://127.0.0.1:$NGINX_PORT/healthz"
base=http://127.0.0.1:$NGINX_PORT
event=$(publish "$base") || { cat "$work/master.log"; fail "publish through nginx"; }
echo "published $(json_field event_id <<<"$event") through nginx and the master"
# what lighttpd's workers (www-data) left in the spool in (a)
amqp find "$queue" "$left" 15 ||
    { cat "$work/master.log"; fail "the master's workers did not forward $left, spooled by lighttpd's"; }
ss -x -H src "$sock" | grep -q . ||
    fail "nginx does not keep its FastCGI connections to the workers open"
ps -o user= -p "$master_pid" | grep -qx bloodbank || fail "the master does not run as bloodbank"
web_error 413 payload_too_large -X POST "$base/events/llm/prompt" \
    -H 'Content-Type: application/json' -H 'Content-Length: 5000000'

say "(d) kill -9 one worker: it is replaced"
workers() { pgrep -P "$master_pid" | sort; }
before=$(workers)
[ "$(wc -l <<<"$before")" -eq 4 ] || fail "expected 4 workers, got: $before"
victim=$(head -n 1 <<<"$before")
kill -9 "$victim"
for _ in $(seq 1 30); do
    now=$(workers)
    if [ "$(wc -l <<<"$now")" -eq 4 ] && ! grep -qx "$victim" <<<"$now"; then
        break
    fi
    sleep 0.2
done
[ "$(wc -l <<<"$now")" -eq 4 ] && ! grep -qx "$victim" <<<"$now" ||
    fail "worker $victim was not replaced: $now"
echo "worker $victim replaced"
publish "$base" >/dev/null || fail "publish after a worker was replaced"

load() {  # N: sequential publishes, one status code per line (000: no answer)
    for _ in $(seq 1 "$1"); do
        curl -s -o /dev/null -w '%{http_code}\n' --max-time 15 -X POST \
            "$base/events/llm/prompt" -H 'Content-Type: application/json' \
            -d '{"prompt":"under load"}'
    done
}

say "SIGHUP under load: the workers are replaced and no request fails"
before=$(workers)
jobs=""
rm -f "$work/reload.done"
# each client posts until the reload is done, then 20 more
for k in 1 2; do
    (while [ ! -e "$work/reload.done" ]; do load 1; done; load 20) >"$work/reload.$k" &
    jobs="$jobs $!"
done
sleep 0.3
kill -HUP "$master_pid"
# an old worker stops once nginx has closed its kept connections: up to
# keepalive_time (5 s) each, one worker after the other
for _ in $(seq 1 300); do
    grep -q 'reload done' "$work/master.log" && break
    sleep 0.2
done
touch "$work/reload.done"
# shellcheck disable=SC2086
wait $jobs
grep -q 'reload done' "$work/master.log" || fail "the reload did not finish"
cat "$work"/reload.* | sort | uniq -c
! grep -qvx 200 "$work"/reload.* || fail "a request failed during the reload"
grep -q 'killing it' "$work/master.log" && fail "a worker was killed during the reload"
after=$(workers)
[ "$(comm -12 <(echo "$before") <(echo "$after") | wc -l)" -eq 0 ] ||
    fail "workers not replaced: before $before, after $after"

say "SIGHUP with a configuration that does not validate: refused, workers kept"
cp /etc/bloodbank/bloodbank.ini "$work/good.ini"
printf '\n[rabbitmq]\nconfirm_timeout_ms = soon\n' >>/etc/bloodbank/bloodbank.ini
before=$(workers)
kill -HUP "$master_pid"
for _ in $(seq 1 50); do
    grep -q 'reload refused' "$work/master.log" && break
    sleep 0.2
done
grep -q 'reload refused.*confirm_timeout_ms\|reload refused.*RABBIT_CONFIRM_TIMEOUT_MS' \
    "$work/master.log" || fail "the bad configuration was not refused by name"
[ "$(workers)" = "$before" ] || fail "workers changed on a refused reload"
publish "$base" >/dev/null || fail "publish after a refused reload"
cp "$work/good.ini" /etc/bloodbank/bloodbank.ini

say "(c) SIGTERM to the master under load: every request is answered"
jobs=""
rm -f "$work/stop.done"
# each client posts until the master has exited, then 20 more: the stop
# lasts until nginx has closed the workers' kept connections
for k in 1 2 3; do
    (while [ ! -e "$work/stop.done" ]; do load 1; done; load 20) >"$work/codes.$k" &
    jobs="$jobs $!"
done
sleep 1
kill -TERM "$master_pid"
wait "$master_pid" && status=0 || status=$?
touch "$work/stop.done"
master_pid=""
# shellcheck disable=SC2086
wait $jobs
cat "$work"/codes.* | sort | uniq -c
[ "$status" -eq 0 ] || fail "the master exited with $status"
! grep -qvE '^(200|502|503)$' "$work"/codes.* ||
    fail "a request got no answer or a wrong one"
grep -q '^200$' "$work"/codes.* || fail "nothing succeeded before the stop"
grep -qE '^50[23]$' "$work"/codes.* || fail "the load did not outlast the stop"
grep -q 'stopped' "$work/master.log" || fail "the master did not log its stop"
nginx -c "$work/nginx.conf" -s stop

say "(e) remove with the module enabled, lighttpd running and an event spooled"
allow_lighttpd
lighttpd_started=1
service lighttpd start >/dev/null
wait_http http://127.0.0.1:8682/healthz
amqp declare "$queue"
bash "$repo/scripts/stack.sh" stop-rabbit "$deps"
kept=$(spool_post http://127.0.0.1:8682)
echo "202, Bloodbank-Delivery: spooled: $kept"
apt-get remove -y -q bloodbank >"$work/remove.log" 2>&1 || { cat "$work/remove.log"; fail remove; }
[ ! -e "$enabled_link" ] || fail "the module is still enabled after remove"
lighttpd -tt -f /etc/lighttpd/lighttpd.conf || fail "lighttpd -tt after remove"
lighttpd_running || fail "lighttpd is not running after remove"
answers http://127.0.0.1:8682/healthz && fail "lighttpd still serves Bloodbank after remove"
echo "module disabled, lighttpd reloaded: 8682 closed, lighttpd -tt passes"
# remove keeps the spool: $kept was answered 202
find "$spool" -maxdepth 1 -type f -name 'segment-*' -size +0c | grep -q . ||
    { ls -la "$spool" 2>&1; fail "remove left no non-empty segment in $spool"; }
echo "the spool's segments are kept: $(cd "$spool" && ls)"
bash "$repo/scripts/stack.sh" start-rabbit "$deps"

say "reinstall: the module is enabled again, and what was spooled is forwarded"
apt-get install -y -q "$deb" >"$work/reinstall.log" 2>&1 ||
    { cat "$work/reinstall.log"; fail "reinstall"; }
[ -L "$enabled_link" ] || fail "the module was not enabled again"
[ "$(stat -c '%U:%G %a' "$spool")" = "bloodbank:bloodbank 2770" ] ||
    fail "$spool is $(stat -c '%U:%G %a' "$spool") after the reinstall"
wait_http http://127.0.0.1:8682/healthz
amqp find "$queue" "$kept" 15 ||
    fail "the event spooled before the remove ($kept) was not forwarded after the reinstall"
health=$(curl -s http://127.0.0.1:8682/healthz)
[ "$(json_field status <<<"$health")" = healthy ] || fail "healthz after reinstall: $health"
echo "module enabled again, lighttpd reloaded: $health"

say "purge with the module enabled and lighttpd running"
apt-get purge -y -q bloodbank >"$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail purge; }
[ ! -e "$enabled_link" ] && [ ! -L "$enabled_link" ] || fail "$enabled_link left behind"
lighttpd -tt -f /etc/lighttpd/lighttpd.conf || fail "lighttpd -tt after purge"
lighttpd_running || fail "lighttpd is not running after purge"
answers http://127.0.0.1:8682/healthz && fail "lighttpd still serves Bloodbank after purge"
service lighttpd stop >/dev/null
lighttpd_started=0
restore_policy
[ ! -e /etc/bloodbank ] || fail "/etc/bloodbank is still there"
[ ! -e /var/lib/bloodbank ] || fail "/var/lib/bloodbank is still there"
[ ! -e "$spool" ] || fail "$spool is still there"
! getent passwd bloodbank >/dev/null || fail "the bloodbank user is still there"
echo "packaging test passed"
