#!/bin/sh
# The master's options are refused without --workers: a worker would
# otherwise ignore them and, for --user, go on serving as root.
bin=${BLOODBANK_BIN:-src/bloodbank}
status=0
for args in "--user nobody" "--socket-group www-data" "--socket-mode 0600" \
            "--listen unix:/nonexistent/bb.sock"; do
    # shellcheck disable=SC2086  # each entry is an option and its value
    out=$("$bin" $args 2>&1 </dev/null)
    rc=$?
    opt=${args%% *}
    if [ "$rc" -eq 2 ] && printf '%s\n' "$out" | grep -q -- "$opt is an option of the master: it needs --workers"; then
        echo "ok: bloodbank $args: refused (exit 2)"
    else
        echo "FAIL: bloodbank $args: exit $rc: $out"
        status=1
    fi
done

# --listen HOST:PORT on an address others can reach needs libfcgi's
# allow-list (FCGI_WEB_SERVER_ADDRS): a FastCGI peer sets REMOTE_ADDR.
# master LISTEN [ALLOWED]: runs the master for 2 s; sets rc and out
master() {
    out=$(BLOODBANK_CONFIG=/dev/null BLOODBANK_ENV_FILE=/dev/null LOG_TARGET=stderr \
          METRICS_PATH= RABBIT_URL=amqp://guest:guest@127.0.0.1:1/ REDIS_PORT=1 \
          FCGI_WEB_SERVER_ADDRS=$2 timeout 2 "$bin" --workers 1 --listen "$1" 2>&1 </dev/null)
    rc=$?
}
master 0.0.0.0:0
if [ "$rc" -eq 1 ] && printf '%s\n' "$out" | grep -q -- "--listen 0.0.0.0:0: not a loopback address.*set FCGI_WEB_SERVER_ADDRS"; then
    echo "ok: --listen 0.0.0.0:0 without FCGI_WEB_SERVER_ADDRS: refused (exit 1)"
else
    echo "FAIL: --listen 0.0.0.0:0 without FCGI_WEB_SERVER_ADDRS: exit $rc: $out"
    status=1
fi
for case in "127.0.0.1:0 " "0.0.0.0:0 127.0.0.1"; do
    master ${case% *} "${case#* }"
    # still serving when timeout stopped it (124), and never refused
    if [ "$rc" -eq 124 ] && ! printf '%s\n' "$out" | grep -q "not a loopback"; then
        echo "ok: --listen ${case% *} (FCGI_WEB_SERVER_ADDRS='${case#* }'): serves"
    else
        echo "FAIL: --listen ${case% *} (FCGI_WEB_SERVER_ADDRS='${case#* }'): exit $rc: $out"
        status=1
    fi
done
exit $status
