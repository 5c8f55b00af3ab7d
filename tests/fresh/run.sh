#!/bin/bash
# A newcomer's first run: on a clean Debian 12 root file system -- the
# containers step's debootstrap image, nothing installed on it -- the tree
# as git holds it, scripts/deps.sh, then the steps that need no services:
# build, unit (make check), schemas and alerts. A package that deps.sh
# forgets, or a step that leans on something only this machine has, fails
# here before a user meets it. usage: tests/fresh/run.sh
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=${BB_FRESH_DIR:-/tmp/bloodbank-fresh}
export CONTAINERS_CONF="$repo/tests/containers/containers.conf"
NAME=bb-fresh

fail() { echo "fresh test FAILED: $*" >&2; exit 1; }
trap 'podman rm -f "$NAME" >/dev/null 2>&1 || true' EXIT

for tool in podman debootstrap; do
    command -v "$tool" >/dev/null || fail "$tool is missing (scripts/deps.sh installs it)"
done
mkdir -p "$work"
bash "$repo/tests/containers/base-image.sh" "$work" || fail "the base image (debootstrap)"
git -C "$repo" ls-files -z | (cd "$repo" && xargs -0 tar -cf -) > "$work/tree.tar"
podman rm -f "$NAME" >/dev/null 2>&1 || true
t0=$SECONDS
podman run --rm -i --name "$NAME" docker.io/library/debian:bookworm bash -euc '
    mkdir /src && tar -C /src -xf - && cd /src
    bash scripts/deps.sh
    bash scripts/test.sh build unit schemas alerts' \
    < "$work/tree.tar" > "$work/run.log" 2>&1 ||
    { tail -n 60 "$work/run.log"; fail "deps.sh and the first steps on a clean Debian 12"; }
grep -E "^deps: installing|^step |all steps passed" "$work/run.log" | cut -c1-200
echo "fresh test passed in $((SECONDS - t0)) s"
