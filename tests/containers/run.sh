#!/bin/bash
# Containers test: the Dockerfile, compose.yaml and k8s/ as the deployment
# guide uses them, with podman, where no registry is reachable:
#   - base images: debian:bookworm(-slim) from `debootstrap --variant=minbase`
#     + `podman import` (kept in podman's storage and reused by later runs);
#   - redis:7 and rabbitmq:3-management built locally from Debian's packages
#     (tests/containers/*.Containerfile) under compose.yaml's names;
#   - the Bloodbank image built from a clean copy of the tree (--format docker,
#     so that HEALTHCHECK is kept); the image's user, HEALTHCHECK, CMD and
#     its spool VOLUME;
#   - the compose stack (podman-compose): health by `podman healthcheck run`
#     (podman's timers need systemd; podman-compose 1.0.3 ignores depends_on
#     conditions, so the test waits for health itself), then the guide's
#     checklist through the port published on 127.0.0.1: healthz, publish
#     the sample prompt, its debug lookup, and a 401 without the token; the
#     spool on compose.yaml's named volume, owned by the image's user;
#   - the k8s manifests with `podman kube play` on the compose network (the
#     Secret's token carried by the ConfigMap: podman 4.3 cannot play a
#     Secret), the Deployment's pod healthy and not root.
# podman's settings are the test's own (containers.conf beside this file).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=${BB_CONTAINERS_DIR:-/tmp/bloodbank-containers}
PORT=${BB_CONTAINERS_PORT:-18785}
UI_PORT=${BB_CONTAINERS_UI_PORT:-18786}
export CONTAINERS_CONF="$repo/tests/containers/containers.conf"
export API_TOKEN=containers-test-token
PROJECT=bbcontainers
compose=(podman-compose -p "$PROJECT" -f "$repo/compose.yaml")
export BB_PUBLISH="127.0.0.1:$PORT" BB_RABBITMQ_UI_PUBLISH=$UI_PORT

say() { printf -- '--- %s\n' "$*"; }
fail() { echo "containers test FAILED: $*" >&2; exit 1; }

cleanup() {
    set +e
    podman kube play --down "$work/kube.yaml" >/dev/null 2>&1
    (cd "$work/src" 2>/dev/null && "${compose[@]}" down -t 5 >/dev/null 2>&1)
    rm -rf "$work/rootfs"
}
trap cleanup EXIT

for tool in podman podman-compose debootstrap runc; do
    command -v "$tool" >/dev/null || fail "$tool is missing (scripts/deps.sh installs it)"
done
mkdir -p "$work"
t0=$SECONDS

say "base images debian:bookworm and debian:bookworm-slim"
bash "$repo/tests/containers/base-image.sh" "$work" || fail "the base image (debootstrap)"

say "redis:7 and rabbitmq:3-management from Debian's packages"
podman build -q --format docker -t docker.io/library/redis:7 \
    -f "$repo/tests/containers/redis.Containerfile" "$repo/tests/containers" >/dev/null
podman build -q --format docker -t docker.io/library/rabbitmq:3-management \
    -f "$repo/tests/containers/rabbitmq.Containerfile" "$repo/tests/containers" >/dev/null

say "the Bloodbank image from a clean copy of the tree"
rm -rf "$work/src"
mkdir -p "$work/src"
git -C "$repo" ls-files -z | (cd "$repo" && xargs -0 tar -cf -) | tar -C "$work/src" -xf -
t1=$SECONDS
podman build --format docker -t localhost/bloodbank:latest "$work/src" >"$work/build.log" 2>&1 ||
    { tail -n 40 "$work/build.log"; fail "podman build"; }
echo "built in $((SECONDS - t1)) s"
inspect() { podman image inspect localhost/bloodbank:latest --format "$1"; }
[ "$(inspect '{{.Config.User}}')" = 999:999 ] || fail "the image does not run as 999:999"
grep -q healthz <<<"$(inspect '{{json .Config.Healthcheck}}')" || fail "no HEALTHCHECK on /healthz"
grep -qF '"/var/spool/bloodbank":' <<<"$(inspect '{{json .Config.Volumes}}')" ||
    fail "the image does not declare its spool, /var/spool/bloodbank, a VOLUME"
grep -E '^(PASS|FAIL):' "$work/build.log" || true

say "compose: redis, rabbitmq and bloodbank"
(cd "$work/src" && "${compose[@]}" down -t 5 >/dev/null 2>&1 || true)
# a network made before the DNS plugin was installed never gains DNS: the
# containers could not find redis and rabbitmq by name
if podman network exists "${PROJECT}_default" &&
    [ "$(podman network inspect "${PROJECT}_default" --format '{{.DNSEnabled}}')" != true ]; then
    echo "recreating ${PROJECT}_default: it was made without DNS"
    podman network rm -f "${PROJECT}_default" >/dev/null
fi
(cd "$work/src" && "${compose[@]}" up -d >"$work/compose-up.log" 2>&1) ||
    { cat "$work/compose-up.log"; fail "podman-compose up"; }
wait_healthy() {  # CONTAINER SECONDS
    local deadline=$((SECONDS + $2))
    until podman healthcheck run "$1" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || { podman logs --tail 30 "$1"; fail "$1 not healthy in $2 s"; }
        sleep 2
    done
    echo "$1 healthy"
}
wait_healthy "${PROJECT}_redis_1" 60
wait_healthy "${PROJECT}_rabbitmq_1" 120
wait_healthy "${PROJECT}_bloodbank_1" 60

say "the guide's checklist through 127.0.0.1:$PORT"
base=http://127.0.0.1:$PORT
json_field() { /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
health=$(curl -sf "$base/healthz") || fail "healthz"
echo "$health"
[ "$(json_field status <<<"$health")" = healthy ] || fail "healthz: $health"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$base/events/llm/prompt" \
    -H 'Content-Type: application/json' -d '{"prompt":"Test prompt"}')
[ "$code" = 401 ] || fail "publish without the token: $code, not 401"
auth=(-H "Authorization: Bearer $API_TOKEN")
event=$(curl -sf "${auth[@]}" -X POST "$base/events/llm/prompt" -H 'Content-Type: application/json' \
    -d '{"prompt":"Test prompt","model":"gpt-4","temperature":0.7}') || fail "publish"
id=$(json_field event_id <<<"$event")
corr=$(curl -sf "${auth[@]}" "$base/debug/correlation/$id") || fail "debug lookup of $id"
[ "$(json_field event_id <<<"$corr")" = "$id" ] || fail "debug lookup: $corr"
echo "published $id; its correlation record answers"
out=$(curl -s -w '\n%{http_code} %{content_type}' -X POST "$base/events/llm/prompt")
[ "$(tail -n 1 <<<"$out")" = "411 application/json" ] || fail "lighttpd's 411 is not JSON: $out"
podman logs "${PROJECT}_bloodbank_1" >"$work/bloodbank.log" 2>&1
grep -q 'bloodbank\[[0-9]*\] info: worker ready' "$work/bloodbank.log" ||
    { podman logs --tail 20 "${PROJECT}_bloodbank_1"; fail "no worker log line in the container's output"; }
[ "$(podman exec "${PROJECT}_bloodbank_1" id -u)" = 999 ] || fail "the container runs as root"
# the spool outlives the container: compose.yaml's named volume, which a new
# volume initialises from the image's directory (999:999, setgid 2770)
mounts=$(podman inspect "${PROJECT}_bloodbank_1" \
    --format '{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}}{{println}}{{end}}')
grep -qx "volume ${PROJECT}_spool /var/spool/bloodbank" <<<"$mounts" ||
    fail "the spool is not on the named volume ${PROJECT}_spool: $mounts"
spool=$(podman exec "${PROJECT}_bloodbank_1" stat -c '%u:%g %a' /var/spool/bloodbank)
[ "$spool" = "999:999 2770" ] || fail "the container's /var/spool/bloodbank is $spool, not 999:999 2770"
echo "spool: volume ${PROJECT}_spool on /var/spool/bloodbank, $spool"

say "k8s: podman kube play the Deployment on the compose network"
network=$(podman inspect "${PROJECT}_bloodbank_1" --format '{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}')
# podman kube play takes the image from local storage. podman 4.3 cannot
# play a Secret (it stores the document as YAML and reads it back as JSON),
# so the played copy carries the token in the ConfigMap instead -- the only
# change besides one replica.
/usr/bin/python3 - "$repo/k8s/bloodbank.yaml" "$work/kube.yaml" "$API_TOKEN" <<'PY'
import sys
src, dst, token = sys.argv[1:]
docs = open(src).read().split("\n---\n")
kept = []
for d in docs:
    if "\nkind: Secret\n" in "\n" + d:
        continue
    d = d.replace("            - secretRef:\n                name: bloodbank\n", "")
    if "\nkind: ConfigMap\n" in "\n" + d:
        d = d.rstrip("\n") + "\n  API_TOKEN: %s\n" % token
    kept.append(d.replace("replicas: 2", "replicas: 1"))
open(dst, "w").write("\n---\n".join(kept))
PY
podman kube play --network "$network" "$work/kube.yaml" >"$work/kube.log" 2>&1 ||
    { cat "$work/kube.log"; fail "podman kube play"; }
pod_ctr=$(podman ps --format '{{.Names}}' | grep -m1 '^bloodbank-pod.*-bloodbank$' || true)
[ -n "$pod_ctr" ] || { podman ps -a; fail "no container of the Deployment"; }
deadline=$((SECONDS + 60))
until health=$(podman exec "$pod_ctr" curl -sf http://127.0.0.1:8682/healthz); do
    [ $SECONDS -lt $deadline ] || { podman logs --tail 30 "$pod_ctr"; fail "the Deployment's pod is not healthy"; }
    sleep 2
done
echo "Deployment pod $pod_ctr: $health"
[ "$(json_field status <<<"$health")" = healthy ] || fail "the pod's healthz: $health"
[ "$(podman exec "$pod_ctr" id -u)" = 999 ] || fail "the pod runs as root"
echo "containers test passed in $((SECONDS - t0)) s"
