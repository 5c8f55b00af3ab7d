#!/bin/bash
# Draws the README's lineage example from a real stack: publishes a prompt,
# two responses to it, a review that names both responses as parents and an
# artifact made from the review, then asks for the prompt's descendants as
# Graphviz (format=dot) and renders them with dot.
#
# usage: scripts/lineage-example.sh URL OUT_DIR
#   e.g. scripts/lineage-example.sh http://127.0.0.1:8682 docs
# Writes OUT_DIR/lineage-example.dot and OUT_DIR/lineage-example.svg.
set -euo pipefail

url=$1 out=$2
post() {  # PATH BODY [PARENTS]
    curl -sf -X POST "$url$1" -H 'Content-Type: application/json' \
        ${3:+-H "X-Correlation-Ids: $3"} -d "$2" |
        sed 's/.*"event_id":"\([^"]*\)".*/\1/'
}
prompt=$(post /events/llm/prompt '{"prompt":"Summarise the meeting","model":"gpt-4"}')
r1=$(post /events/llm/response "{\"response\":\"First draft\",\"prompt_id\":\"$prompt\"}")
r2=$(post /events/llm/response "{\"response\":\"Second draft\",\"prompt_id\":\"$prompt\"}")
review=$(post /events/review.completed '{"verdict":"second is better"}' "$r1,$r2")
post /events/artifact '{"action":"created","kind":"summary","uri":"file:///summary.md"}' \
    "$review" >/dev/null
curl -sf "$url/debug/correlation/$prompt/chain?direction=descendants&format=dot" \
    >"$out/lineage-example.dot"
dot -Tsvg "$out/lineage-example.dot" >"$out/lineage-example.svg"
echo "wrote $out/lineage-example.dot and $out/lineage-example.svg (start: $prompt)"
