#!/bin/bash
# Builds the libFuzzer harnesses with ASan and UBSan and runs them for a
# bounded time from their seed corpora: fuzz_request (request parsing,
# validation, envelope building) and fuzz_schema (schema files and the values
# checked against them). The first argument is the step's time in seconds
# (default 60), split between the two (each gets all of it below 20 s).
# Exits non-zero on any finding; the crashing input is left in the work
# directory.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
seconds=${1:-60}
work=${BB_FUZZ_DIR:-/tmp/bloodbank-fuzz}
if [ "$seconds" -ge 20 ]; then
    schema_seconds=$((seconds / 2))
    request_seconds=$((seconds - schema_seconds))
else
    schema_seconds=$seconds
    request_seconds=$seconds
fi
CFLAGS=(-g -O1 -std=gnu11 -Wall -Wextra
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
    -I"$repo/src")

rm -rf "$work"
mkdir -p "$work/corpus" "$work/corpus-schema"
cp "$repo"/tests/fuzz/corpus/* "$work/corpus/"
cp "$repo"/tests/fuzz/corpus-schema/* "$work/corpus-schema/"
clang "${CFLAGS[@]}" \
    "$repo/tests/fuzz/fuzz_request.c" \
    "$repo"/src/{buf,catalog,cloudevent,envelope,event,format,http,json,jsonschema,proxy,random,regex,signature,uuid,validate}.c \
    $(pkg-config --cflags --libs uuid libcrypto libpcre2-8) -lm -o "$work/fuzz_request"
clang "${CFLAGS[@]}" \
    "$repo/tests/fuzz/fuzz_schema.c" \
    "$repo"/src/{buf,format,json,jsonschema,random,regex,uuid}.c \
    $(pkg-config --cflags --libs uuid libcrypto libpcre2-8) -lm -o "$work/fuzz_schema"
cd "$work"
echo "--- fuzz_request, $request_seconds s"
./fuzz_request -max_total_time="$request_seconds" -max_len=4096 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$work/" corpus 2>&1 | tail -n 15
echo "--- fuzz_schema, $schema_seconds s"
./fuzz_schema -max_total_time="$schema_seconds" -max_len=4096 -timeout=10 \
    -dict="$repo/tests/fuzz/schema.dict" \
    -print_final_stats=1 -artifact_prefix="$work/schema-" corpus-schema 2>&1 |
    tail -n 15
