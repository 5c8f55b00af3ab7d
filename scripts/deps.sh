#!/bin/bash
# Install everything Bloodbank needs to build, run and test (Debian 12, as root).
# Idempotent: when every package is already installed it does nothing.
# Services are NOT started by the package scripts (a temporary policy-rc.d
# denies it); scripts/stack.sh runs private instances instead.
set -eu

# golang-github-containernetworking-plugin-dnsname and catatonit: the
# containers step. podman recommends them, but they are not pulled in with
# --no-install-recommends: without the first, containers on a compose
# network cannot resolve each other's names; without the second, `podman
# kube play` has no init for its pod's infra container.
# nodejs and npm: the cloudevents step (the CloudEvents JavaScript SDK). A
# nodejs from elsewhere (NodeSource) bundles npm and conflicts with Debian's
# npm package: then npm is not asked for.
PACKAGES="build-essential autoconf automake pkg-config libfcgi-dev librabbitmq-dev
libhiredis-dev libiniparser-dev libcunit1-dev libjsmn-dev uuid-dev libssl-dev libpcre2-dev zlib1g-dev
json-schema-test-suite python3-jsonschema python3-rfc3987
lighttpd rabbitmq-server redis-server wrk python3 python3-pika python3-requests
curl clang libclang-rt-14-dev spawn-fcgi nginx procps iproute2 git
debhelper dpkg-dev lintian prometheus graphviz rsyslog
podman podman-compose runc debootstrap openssl ca-certificates
golang-github-containernetworking-plugin-dnsname catatonit
nodejs $(command -v npm >/dev/null 2>&1 || echo npm)"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "deps: all packages installed"
    exit 0
fi

echo "deps: installing:$missing"
if [ "$(id -u)" != 0 ]; then
    SUDO=sudo
else
    SUDO=
fi

# keep apt from starting rabbitmq, redis, lighttpd and nginx on their default ports
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    created_policy=1
fi
cleanup() {
    if [ "$created_policy" = 1 ]; then
        $SUDO rm -f "$policy"
    fi
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $PACKAGES
echo "deps: done"
