#!/bin/bash
# Builds the libFuzzer harness with ASan and UBSan and runs it for a bounded
# time (first argument, seconds; default 60) from the seed corpus. Exits
# non-zero on any finding; the crashing input is left in the work directory.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
seconds=${1:-60}
work=${BB_FUZZ_DIR:-/tmp/bloodbank-fuzz}

rm -rf "$work"
mkdir -p "$work/corpus"
cp "$repo"/tests/fuzz/corpus/* "$work/corpus/"
clang -g -O1 -std=gnu11 -Wall -Wextra \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I"$repo/src" \
    "$repo/tests/fuzz/fuzz_request.c" \
    "$repo"/src/{buf,envelope,event,http,json,proxy,random,signature,uuid,validate}.c \
    $(pkg-config --cflags --libs uuid libcrypto) -o "$work/fuzz_request"
cd "$work"
./fuzz_request -max_total_time="$seconds" -max_len=4096 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$work/" corpus 2>&1 | tail -n 15
