#!/usr/bin/env bash
# Installs what errand's tests and quick start need on a Debian host with a running Docker
# engine and no image registry: git, redis-server, busybox-static; then builds the sandbox
# test image locally. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v git >/dev/null || missing+=(git)
command -v redis-server >/dev/null || missing+=(redis-server)
[ -x /bin/busybox ] || command -v busybox >/dev/null || missing+=(busybox-static)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
  echo "errand needs a running Docker engine: start it (e.g. systemctl start docker) and run this again" >&2
  exit 1
fi
deploy/sandbox-test-image/build.sh
