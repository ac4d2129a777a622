#!/bin/sh
# errand's benchmarks, side by side with their peers: one command, one Markdown table.
#
#   bench/run.sh                  # full run, ~15 min on 2 cores
#   BENCH_QUICK=1 bench/run.sh    # ~3 min
#   BENCH_SECTIONS=queue bench/run.sh   # one section (ingest, queue, rollout; comma-separated)
#
# Installs what it needs (apt: redis-server, wrk, git, busybox-static; a virtualenv in
# bench/.venv with the Python peers), builds errand and the harness in release mode, builds the
# sandbox test image if missing, starts its own Redis on a free loopback port (6480 and up) and
# stops it at the end. The table goes to stdout, progress to stderr. See bench/README.md.
set -eu

BENCH="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
mkdir -p "$BENCH/.work"
log() { echo "[run.sh] $*" >&2; }

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=""
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
command -v redis-benchmark >/dev/null 2>&1 || missing="$missing redis-tools"
command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
command -v git >/dev/null 2>&1 || missing="$missing git"
command -v busybox >/dev/null 2>&1 || missing="$missing busybox-static"
python3 -c 'import venv, ensurepip' 2>/dev/null || missing="$missing python3-venv"
if [ -n "$missing" ]; then
    log "installing:$missing"
    $SUDO apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing >&2
fi
docker version >/dev/null 2>&1 || { log "the Docker engine is not reachable; start it"; exit 1; }

if [ ! -x "$BENCH/.venv/bin/python" ]; then
    log "creating bench/.venv"
    python3 -m venv "$BENCH/.venv"
fi
if ! cmp -s "$BENCH/requirements.txt" "$BENCH/.venv/.requirements.installed"; then
    log "installing the Python peers"
    "$BENCH/.venv/bin/pip" install -q --disable-pip-version-check -r "$BENCH/requirements.txt" >&2
    cp "$BENCH/requirements.txt" "$BENCH/.venv/.requirements.installed"
fi

# errand and the harness, in release mode. Others edit src/ while this runs: if the working tree
# does not build (or BENCH_BUILD=head), the last commit (HEAD) is benchmarked instead, and the
# table says so.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
build() {  # $1: source root
    (cd "$1" && cargo build --release --quiet --bin errand) >&2 &&
        (cd "$1/bench/harness" && cargo build --release --quiet) >&2
}
SOURCE="working tree"
log "building errand and the harness (release)"
if [ "${BENCH_BUILD:-tree}" = head ] || ! build "$ROOT"; then
    log "benchmarking HEAD ($(git -C "$ROOT" rev-parse --short HEAD)) instead"
    SNAP="$BENCH/.work/head"
    rm -rf "$SNAP" && mkdir -p "$SNAP/bench/harness"
    git -C "$ROOT" archive HEAD | tar -x -C "$SNAP"
    cp -r "$BENCH/harness/Cargo.toml" "$BENCH/harness/Cargo.lock" "$BENCH/harness/src" "$SNAP/bench/harness/"
    build "$SNAP"
    SOURCE="HEAD $(git -C "$ROOT" rev-parse --short HEAD)"
fi
export BENCH_ERRAND="$CARGO_TARGET_DIR/release/errand"
export BENCH_HARNESS="$CARGO_TARGET_DIR/release/errand-bench-harness"
export BENCH_SOURCE="$SOURCE"

IMAGE="${BENCH_IMAGE:-errand-sandbox-test:latest}"
if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
    log "building $IMAGE"
    ERRAND_SANDBOX_TEST_IMAGE="$IMAGE" "$ROOT/deploy/sandbox-test-image/build.sh" >&2
fi

exec "$BENCH/.venv/bin/python" "$BENCH/bench.py"
