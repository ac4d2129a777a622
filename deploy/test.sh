#!/usr/bin/env bash
# The test command: sets up the host (git, Redis, busybox-static, the sandbox test image), starts
# a Redis of its own on loopback, and runs every test against real Redis and real Docker.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/setup-host.sh

if [ -z "${ERRAND_TEST_REDIS_URL:-}" ]; then
  port=${ERRAND_TEST_REDIS_PORT:-6390}
  dir=$(mktemp -d)
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
  stop_redis() {
    local pid
    pid=$(cat "$dir/redis.pid" 2>/dev/null) || true
    if [ -n "$pid" ]; then
      kill "$pid" 2>/dev/null || true
      # Wait until it has exited: it still writes its log while shutting down.
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -rf "$dir" 2>/dev/null || true
  }
  trap stop_redis EXIT
  for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  export ERRAND_TEST_REDIS_URL="redis://127.0.0.1:$port"
fi
echo "== tests (Redis at $ERRAND_TEST_REDIS_URL)"
status=0
cargo test --all-targets "$@" || status=$?
exit "$status"
