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
exit $status
