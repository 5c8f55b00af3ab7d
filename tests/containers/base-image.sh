#!/bin/bash
# The base images debian:bookworm and debian:bookworm-slim, where no
# registry is reachable: `debootstrap --variant=minbase` + `podman import`,
# kept in podman's storage and reused by later runs. Used by the containers
# and fresh steps. usage: base-image.sh WORKDIR
set -euo pipefail
work=$1
if podman image exists docker.io/library/debian:bookworm; then
    echo "reused from podman's storage"
else
    t0=$SECONDS
    rm -rf "$work/rootfs"
    mkdir -p "$work"
    debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian \
        >"$work/debootstrap.log" 2>&1 || { tail -n 20 "$work/debootstrap.log"; exit 1; }
    rm -rf "$work/rootfs/var/lib/apt/lists"/* "$work/rootfs/var/cache/apt"/*.bin
    tar -C "$work/rootfs" -c . |
        podman import --change 'CMD ["/bin/bash"]' - docker.io/library/debian:bookworm >/dev/null
    rm -rf "$work/rootfs"
    echo "built with debootstrap in $((SECONDS - t0)) s"
fi
podman tag docker.io/library/debian:bookworm docker.io/library/debian:bookworm-slim
