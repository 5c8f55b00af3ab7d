#!/bin/sh
# SCHEMA_DIR (CONTRACT §10): `bloodbank --check-config` loads the event
# schemas and says how many; a bad file makes it exit non-zero naming the
# file, the JSON pointer inside it and the reason, and a worker started with
# it refuses to start with the same message. README and *.json.example files
# are ignored; a SCHEMA_DIR that does not exist holds no schemas; one that
# cannot be read is an error.
bin=${BLOODBANK_BIN:-src/bloodbank}
case $bin in /*) ;; *) bin=$(pwd)/$bin ;; esac
status=0
export BLOODBANK_CONFIG=/dev/null BLOODBANK_ENV_FILE=/dev/null
unset SCHEMA_DIR

top=$(mktemp -d /tmp/bb-cli-schemas.XXXXXX)
chmod 755 "$top"    # the unreadable-directory case runs as another user
trap 'chmod -R u+rwx "$top" 2>/dev/null; rm -rf "$top"' EXIT

ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; status=1; }

GOOD='{"title":"Order placed","type":"object","required":["order_id"],
"properties":{"order_id":{"type":"string","pattern":"^ORD-[0-9]+$"},
"items":{"type":"array","minItems":1,"items":{"$ref":"#/definitions/line"}}},
"definitions":{"line":{"type":"object","properties":{"qty":{"type":"integer","minimum":1}}}}}'

# a fresh directory holding the good schema and NAME with TEXT
dir_with() {  # NAME TEXT
    d=$(mktemp -d "$top/d.XXXXXX")
    chmod 755 "$d"
    printf '%s\n' "$GOOD" > "$d/order.placed.json"
    if [ -n "$1" ]; then
        printf '%s\n' "$2" > "$d/$1"
    fi
    echo "$d"
}

# check_config DIR: runs --check-config with SCHEMA_DIR=DIR; sets rc, out, err
check_config() {
    SCHEMA_DIR=$1 "$bin" --check-config > "$top/out" 2> "$top/err"
    rc=$?
    out=$(cat "$top/out")
    err=$(cat "$top/err")
}

# refused WHAT NAME TEXT EXPECTED: a directory with the good schema and the
# file NAME (TEXT) is refused with exactly the line
# "bloodbank: event schemas: DIR/NAME: EXPECTED" on stderr
refused() {
    what=$1
    d=$(dir_with "$2" "$3")
    check_config "$d"
    line="bloodbank: event schemas: $d/$2: $4"
    if [ "$rc" -ne 0 ] && printf '%s\n' "$err" | grep -qxF -- "$line"; then
        ok "$what: refused (exit $rc) with: $line"
    else
        fail "$what: exit $rc, expected the line '$line' on stderr; stderr: $err"
    fi
    if printf '%s\n' "$out" | grep -q "^# event schemas:"; then
        fail "$what: a refused SCHEMA_DIR still reports schemas loaded: $out"
    fi
}

# ---------------------------------------------------------------- good ones

d=$(dir_with "user.signup.json" '{"type":"object","required":["user_id"]}')
check_config "$d"
if [ "$rc" -eq 0 ] && printf '%s\n' "$out" | grep -qxF "# event schemas: 2 loaded from $d" &&
    printf '%s\n' "$out" | grep -qxF "SCHEMA_DIR=$d"; then
    ok "a good SCHEMA_DIR: exit 0, 2 loaded"
else
    fail "a good SCHEMA_DIR: exit $rc: $out $err"
fi

d=$(dir_with "" "")
printf 'Schemas go here.\n' > "$d/README"
printf '{"not": "a schema", "minLenght": \n' > "$d/invoice.paid.json.example"
printf 'garbage\n' > "$d/notes.txt"
mkdir "$d/archive"
printf 'garbage\n' > "$d/archive/old.type.json"
check_config "$d"
if [ "$rc" -eq 0 ] && printf '%s\n' "$out" | grep -qxF "# event schemas: 1 loaded from $d"; then
    ok "README, *.json.example, other files and subdirectories are ignored"
else
    fail "ignored files: exit $rc: $out $err"
fi

check_config "$top/no-such-dir"
if [ "$rc" -eq 0 ] && printf '%s\n' "$out" | grep -qxF "# event schemas: 0 loaded from $top/no-such-dir"; then
    ok "a SCHEMA_DIR that does not exist holds no schemas (exit 0)"
else
    fail "missing SCHEMA_DIR: exit $rc: $out $err"
fi

check_config ""
if [ "$rc" -eq 0 ] && printf '%s\n' "$out" | grep -q "^# event schemas: 0 loaded"; then
    ok "an empty SCHEMA_DIR holds no schemas (exit 0)"
else
    fail "empty SCHEMA_DIR: exit $rc: $out $err"
fi

# ---------------------------------------------------------------- bad files

refused "an unknown keyword (a typo)" user.signup.json \
    '{"type":"object","properties":{"name":{"type":"string","minLenght":3}}}' \
    "/properties/name/minLenght: unknown keyword"
refused "an unknown keyword under definitions" user.signup.json \
    '{"definitions":{"a":{"type":"integer","minimun":1}}}' \
    "/definitions/a/minimun: unknown keyword"
refused "a member name escaped in the pointer (RFC 6901)" user.signup.json \
    '{"properties":{"a/b~c":{"maxLenght":1}}}' \
    "/properties/a~1b~0c/maxLenght: unknown keyword"
refused "a remote \$ref" user.signup.json \
    '{"properties":{"x":{"$ref":"http://example.com/s.json#/definitions/x"}}}' \
    '/properties/x/$ref: "http://example.com/s.json#/definitions/x" is not in this document: only references within the file are allowed'
refused "a \$ref to another file" user.signup.json \
    '{"properties":{"x":{"$ref":"common.json#/definitions/x"}}}' \
    '/properties/x/$ref: "common.json#/definitions/x" is not in this document: only references within the file are allowed'
refused "a \$ref that names nothing" user.signup.json \
    '{"properties":{"x":{"$ref":"#/definitions/nope"}}}' \
    '/properties/x/$ref: "#/definitions/nope" names nothing in this document'
refused "a \$ref cycle" user.signup.json \
    '{"definitions":{"a":{"$ref":"#/definitions/b"},"b":{"$ref":"#/definitions/a"}},"properties":{"x":{"$ref":"#/definitions/a"}}}' \
    '/definitions/a: a $ref cycle that never reaches a deeper value'
refused "a pattern that does not compile" user.signup.json \
    '{"properties":{"x":{"type":"string","pattern":"^(unclosed$"}}}' \
    "/properties/x/pattern: the pattern does not compile: missing closing parenthesis at offset 11"
refused "invalid JSON" user.signup.json '{"type":"object",' \
    ": not a JSON document (malformed JSON)"
refused "an empty file" user.signup.json '' \
    ": not a JSON document (empty document)"
refused "a document that is not a schema" user.signup.json '[]' \
    ": a schema must be an object or a boolean"
refused "a subschema that is not a schema" user.signup.json '{"properties":{"x":5}}' \
    "/properties/x: a schema must be an object or a boolean"
refused "a bad keyword value" user.signup.json '{"minLength":-1}' \
    "/minLength: must be a non-negative integer"
refused "a file for a typed type" llm.prompt.json '{"type":"object"}' \
    "llm.prompt has a typed endpoint and its built-in schema; a file cannot replace it"
refused "a file for a typed artifact type" artifact.deleted.json '{"type":"object"}' \
    "artifact.deleted has a typed endpoint and its built-in schema; a file cannot replace it"
accented=$(printf 'ord\303\251r.placed.json')
for name in Order.Placed.json "order placed.json" "a..b.json" "order.placed..json" \
            "$accented"; do
    refused "a *.json file whose name is not an event type ($name)" "$name" '{}' \
        "the file name is not <event_type>.json (1-255 bytes of [a-z0-9_-] segments joined by single dots)"
done

# the pointer of a patternProperties pattern is the member it is the key of
refused "a patternProperties pattern that does not compile" user.signup.json \
    '{"patternProperties":{"^ok$":{},"^(bad":{}}}' \
    "/patternProperties/^(bad: the pattern does not compile: missing closing parenthesis at offset 5"

# ---------------------------------------------------------------- unreadable

f=$top/file-not-dir
printf 'x\n' > "$f"
check_config "$f"
if [ "$rc" -ne 0 ] && printf '%s\n' "$err" | grep -qxF "bloodbank: event schemas: $f: Not a directory"; then
    ok "a SCHEMA_DIR that is a file is refused"
else
    fail "SCHEMA_DIR a file: exit $rc: $out $err"
fi

# chmod 000 does not stop root: the unreadable cases run as nobody then
as_other=""
if [ "$(id -u)" = 0 ]; then
    if command -v setpriv >/dev/null 2>&1 && id nobody >/dev/null 2>&1; then
        as_other="setpriv --reuid=nobody --regid=$(id -g nobody) --clear-groups"
    fi
fi
if [ "$(id -u)" = 0 ] && [ -z "$as_other" ]; then
    echo "SKIP: unreadable SCHEMA_DIR and schema file: running as root without setpriv and a nobody user"
else
    d=$(dir_with "" "")
    chmod 000 "$d"
    rc=0
    err=$(SCHEMA_DIR=$d $as_other "$bin" --check-config 2>&1 >/dev/null) || rc=$?
    chmod 755 "$d"
    if [ "$rc" -ne 0 ] && printf '%s\n' "$err" | grep -qxF "bloodbank: event schemas: $d: Permission denied"; then
        ok "an unreadable SCHEMA_DIR is refused"
    else
        fail "unreadable SCHEMA_DIR: exit $rc: $err"
    fi

    d=$(dir_with "" "")
    chmod 000 "$d/order.placed.json"
    rc=0
    err=$(SCHEMA_DIR=$d $as_other "$bin" --check-config 2>&1 >/dev/null) || rc=$?
    if [ "$rc" -ne 0 ] && printf '%s\n' "$err" | grep -qxF "bloodbank: event schemas: $d/order.placed.json: Permission denied"; then
        ok "an unreadable schema file is refused"
    else
        fail "unreadable schema file: exit $rc: $err"
    fi
fi

# ---------------------------------------------------------------- a worker

# worker SCHEMA_DIR: a worker (no options: FastCGI on the socket of fd 0)
# started with SCHEMA_DIR; prints "exit N" if it exited within 5 s, else
# "running" (and stops it), then its stderr
worker() {
    SCHEMA_DIR=$1 RABBIT_URL=amqp://guest:guest@127.0.0.1:1/ REDIS_HOST=127.0.0.1 REDIS_PORT=1 \
    METRICS_PATH= LOG_TARGET=stderr /usr/bin/python3 - "$bin" "$top/worker.sock" <<'EOF'
import os, signal, socket, subprocess, sys
bin, path = sys.argv[1], sys.argv[2]
if os.path.exists(path):
    os.unlink(path)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(8)
p = subprocess.Popen([bin], stdin=s.fileno(), stdout=subprocess.DEVNULL,
                     stderr=subprocess.PIPE)
s.close()
try:
    _, err = p.communicate(timeout=5)
    print("exit %d" % p.returncode)
except subprocess.TimeoutExpired:
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=20)
    print("running")
sys.stdout.write(err.decode("utf-8", "replace"))
EOF
}

d=$(dir_with user.signup.json '{"properties":{"name":{"type":"string","minLenght":3}}}')
res=$(worker "$d")
first=$(printf '%s\n' "$res" | head -n 1)
msg="error: event schemas: $d/user.signup.json: /properties/name/minLenght: unknown keyword"
case $first in
    "exit 0"|running) code_ok=no ;;
    "exit "*) code_ok=yes ;;
    *) code_ok=no ;;
esac
if [ "$code_ok" = yes ] && printf '%s\n' "$res" | grep -qF -- "$msg" &&
    ! printf '%s\n' "$res" | grep -q "worker ready"; then
    ok "a worker with a bad schema file refuses to start ($first)"
else
    fail "a worker with a bad schema file: $res"
fi

d=$(dir_with "" "")
res=$(worker "$d")
if [ "$(printf '%s\n' "$res" | head -n 1)" = running ] &&
    printf '%s\n' "$res" | grep -q "worker ready"; then
    ok "the same worker with a good SCHEMA_DIR starts"
else
    fail "a worker with a good SCHEMA_DIR: $res"
fi

exit $status
