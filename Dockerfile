# Bloodbank in a container: lighttpd and its Bloodbank workers.
#   docker build -t bloodbank .      (or podman build --format docker: the OCI
#                                     format has no HEALTHCHECK)
#   docker run -p 127.0.0.1:8682:8682 -v bloodbank-spool:/var/spool/bloodbank \
#       -e RABBIT_URL=amqp://... -e REDIS_HOST=... bloodbank
# Settings are environment variables (README, Configuration); compose.yaml
# and k8s/ show a whole deployment. Event schemas (README, Event schemas):
# mount a directory of <event_type>.json files on SCHEMA_DIR,
#   docker run ... -v "$PWD/schemas:/etc/bloodbank/schemas:ro" bloodbank
# and check it first with the image itself:
#   docker run --rm -v "$PWD/schemas:/etc/bloodbank/schemas:ro" bloodbank bloodbank --check-config

# The .deb, built from this source tree as `dpkg-buildpackage` builds it
# (with the unit tests).
FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential debhelper dpkg-dev autoconf automake pkg-config \
      libcunit1-dev libfcgi-dev libhiredis-dev libiniparser-dev libjsmn-dev \
      libpcre2-dev librabbitmq-dev libssl-dev uuid-dev zlib1g-dev python3 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /build/bloodbank
COPY . .
RUN dpkg-buildpackage -us -uc -b && mkdir /debs && mv ../bloodbank_*.deb /debs/

# The package on a slim system, with lighttpd in front of it.
FROM debian:bookworm-slim
# A fixed uid (in the system range, so that the package's postinst keeps the
# user): Kubernetes' runAsNonRoot checks a numeric USER.
RUN groupadd --system --gid 999 bloodbank \
 && useradd --system --uid 999 --gid bloodbank --home-dir /var/lib/bloodbank \
      --no-create-home --shell /usr/sbin/nologin bloodbank
COPY --from=build /debs/ /tmp/debs/
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      lighttpd curl /tmp/debs/bloodbank_*.deb \
 && rm -rf /var/lib/apt/lists/* /tmp/debs
COPY container/lighttpd.conf /etc/lighttpd/bloodbank-container.conf
# /tmp is writable in the image and an emptyDir in k8s/ (the root file
# system may be read-only): the pool's metrics file lives there.
# SCHEMA_DIR holds the package's README and order.placed.json.example
# (ignored: only <event_type>.json files are schemas); mount your schemas
# over it, readable by uid 999.
# The spool (SPOOL_DIR, README: Configuration): events answered 202 while the
# broker is unavailable wait there until they are forwarded. A container's
# writable layer dies with the container, and a recreate (a new image, a
# changed setting) would drop them, while a 202 promises they survive until
# they are forwarded: so it is a volume. Give it a name (compose.yaml does;
# docker run -v bloodbank-spool:/var/spool/bloodbank ...) so that the next
# container finds it. The package made it bloodbank:bloodbank (999:999), mode
# 2770; a new named volume starts as a copy of it. SPOOL_DIR= turns it off.
ENV BB_HTTP_PORT=8682 \
    BB_WORKERS=4 \
    BLOODBANK_CONFIG=/etc/bloodbank/bloodbank.ini \
    METRICS_PATH=/tmp/bloodbank-metrics \
    SCHEMA_DIR=/etc/bloodbank/schemas \
    SPOOL_DIR=/var/spool/bloodbank \
    LOG_LEVEL=info
VOLUME ["/var/spool/bloodbank"]
USER 999:999
WORKDIR /var/lib/bloodbank
EXPOSE 8682
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD curl -fsS -o /dev/null "http://127.0.0.1:${BB_HTTP_PORT}/healthz" || exit 1
CMD ["lighttpd", "-D", "-f", "/etc/lighttpd/bloodbank-container.conf"]
