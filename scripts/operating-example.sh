#!/bin/bash
# Records the README's "Operating Bloodbank" session from a real stack:
# runs each command as an operator types it, with the workers'
# configuration, and writes the commands and what they printed.
#
# usage: scripts/operating-example.sh ENV_FILE OUT
#   e.g. scripts/operating-example.sh /tmp/bloodbank-dev/bloodbank.env \
#        docs/operating-example.txt
# ENV_FILE is the workers' environment (the dev stack's DIR/bloodbank.env,
# or /etc/bloodbank/bloodbank.env); bloodbank is taken from src/. HTTP_PORT
# is the dev stack's port (8682 unless set). The session publishes to an
# exchange of its own, bloodbank-example, archived in the stream
# bloodbank-example.archive, so that the dev stack's exchange gets no
# archive.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
set -a
# shellcheck disable=SC1090
. "$1"
set +a
out=$2
export PATH="$repo/src:$PATH" NO_COLOR=1
export RABBIT_EXCHANGE=bloodbank-example ARCHIVE_STREAM=bloodbank-example.archive
: >"$out"
# run SHOWN COMMAND...: writes "$ SHOWN", what COMMAND prints, and its exit
# status when it failed; the last output is kept in $last
run() {
    local shown=$1
    shift
    printf '$ %s\n' "$shown" >>"$out"
    if last=$("$@" 2>&1); then
        printf '%s\n' "$last" >>"$out"
    else
        printf '%s\n[exit %d]\n' "$last" "$?" >>"$out"
    fi
}
id() { local v=${last#*\"event_id\":\"}; printf '%s\n' "${v%%\"*}"; }
# note NAME VALUE: the operator copies an id into a shell variable
note() { printf '$ %s=%s\n' "$1" "$2" >>"$out"; }

run "bloodbank doctor" bloodbank doctor
# tail, started first, its output written where it was run
tailed=$(mktemp)
timeout 60 bloodbank tail --count 4 'llm.#' 'review.*' >"$tailed" 2>&1 &
tail_pid=$!
sleep 2
run "bloodbank emit llm.prompt '{\"prompt\":\"Summarise the meeting\",\"model\":\"gpt-4\"}'" \
    bloodbank emit llm.prompt '{"prompt":"Summarise the meeting","model":"gpt-4"}'
prompt=$(id); note prompt "$prompt"
run "bloodbank emit --parent \$prompt llm.response '{\"response\":\"First draft\"}'" \
    bloodbank emit --parent "$prompt" llm.response '{"response":"First draft"}'
r1=$(id); note r1 "$r1"
run "bloodbank emit --parent \$prompt llm.response '{\"response\":\"Second draft\"}'" \
    bloodbank emit --parent "$prompt" llm.response '{"response":"Second draft"}'
r2=$(id); note r2 "$r2"
run "echo '{\"verdict\":\"second is better\"}' | bloodbank emit --parent \$r1 --parent \$r2 review.completed" \
    bash -c "echo '{\"verdict\":\"second is better\"}' | bloodbank emit --parent $r1 --parent $r2 review.completed"
review=$(id); note review "$review"
run "bloodbank emit llm.prompt '{\"model\":\"gpt-4\"}'" \
    bloodbank emit llm.prompt '{"model":"gpt-4"}'
wait "$tail_pid" || true
{
    printf '$ # in another terminal, started before the first emit:\n'
    printf '$ bloodbank tail --count 4 '"'"'llm.#'"'"' '"'"'review.*'"'"'\n'
    cat "$tailed"
} >>"$out"
rm -f "$tailed"
key="nightly-$(date -u +%F)"
run "bloodbank emit --key $key summary.published '{\"uri\":\"file:///summary.md\"}'" \
    bloodbank emit --key "$key" summary.published '{"uri":"file:///summary.md"}'
printf '$ # the same command again (a retry): the same event, published once\n' >>"$out"
run "bloodbank emit --key $key summary.published '{\"uri\":\"file:///summary.md\"}'" \
    bloodbank emit --key "$key" summary.published '{"uri":"file:///summary.md"}'
run "bloodbank trace \$review" bloodbank trace "$review"
run "bloodbank trace --descendants \$prompt" bloodbank trace --descendants "$prompt"
run "bloodbank trace --ancestors --json \$r2" bloodbank trace --ancestors --json "$r2"
run "bloodbank trace not-an-id" bloodbank trace not-an-id
run "bloodbank replay --since 10m --type llm.response --dry-run" \
    bloodbank replay --since 10m --type llm.response --dry-run
run "bloodbank replay --since 10m --type llm.response" \
    bloodbank replay --since 10m --type llm.response
echo "wrote $out (prompt $prompt)"
