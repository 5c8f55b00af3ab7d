#!/bin/bash
# Install dependencies, build, and run Bloodbank locally:
#   HTTP  http://127.0.0.1:8682  (lighttpd + 4 bloodbank FastCGI workers; loopback
#                                 only: HTTP_HOST=0.0.0.0 for all interfaces, and
#                                 then set API_TOKEN too)
#   AMQP  127.0.0.1:5672         (private RabbitMQ node bloodbank-dev@localhost, guest/guest)
#   Redis 127.0.0.1:6379
# Started as root, lighttpd and the workers run as www-data (BB_RUN_USER).
# State, logs and sockets: /var/tmp/bloodbank-dev (override with BB_DEV_DIR).
# Ports and the other settings can be changed with the variables documented in
# scripts/stack.sh (BB_HTTP_PORT, BB_AMQP_PORT, BB_REDIS_PORT, BB_WORKERS, ...).
# Running it again rebuilds and restarts the stack.
set -eu

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${BB_DEV_DIR:-/var/tmp/bloodbank-dev}
cd "$repo"

bash scripts/deps.sh
autoreconf -fi
./configure
make -j2

bash scripts/stack.sh start "$dir"

port=${BB_HTTP_PORT:-${HTTP_PORT:-8682}}
cat <<MSG

Bloodbank is running on http://localhost:$port/
  curl http://localhost:$port/healthz
  curl -X POST http://localhost:$port/events/llm/prompt -H 'Content-Type: application/json' \\
       -d '{"prompt":"Test prompt","model":"gpt-4","temperature":0.7}'
Logs:    $dir/lighttpd.out (workers), $dir/lighttpd-error.log (lighttpd), $dir/rabbitmq/log, $dir/redis/redis.log
Restart the workers after a rebuild:  scripts/stack.sh restart-lighttpd $dir
Stop everything:                      scripts/stack.sh stop $dir
MSG
