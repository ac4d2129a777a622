#!/bin/sh
# Builds `errand-sandbox-test:latest`, the image the sandbox and scenario tests run in, from the
# host's static busybox. Needs no registry. Idempotent: a rebuild reuses the engine's cache.
#
#   deploy/sandbox-test-image/build.sh
set -eu

TAG="${ERRAND_SANDBOX_TEST_IMAGE:-errand-sandbox-test:latest}"
HERE="$(cd "$(dirname "$0")" && pwd)"
# The recorded agent event streams the stand-ins print live with the tests that read them.
AGENT_DATA="$HERE/../../tests/data/agents"

BUSYBOX="$(command -v busybox || true)"
if [ -z "$BUSYBOX" ]; then
    echo "build.sh: busybox is not installed; install the static build: apt-get install busybox-static" >&2
    exit 1
fi
# A dynamically linked busybox would not run in a FROM-scratch image.
if command -v file >/dev/null 2>&1 && ! file -L "$BUSYBOX" | grep -q 'statically linked'; then
    echo "build.sh: $BUSYBOX is not statically linked; install the static build: apt-get install busybox-static" >&2
    exit 1
fi
if ! docker version >/dev/null 2>&1; then
    echo "build.sh: the Docker engine is not reachable; start it (or set DOCKER_HOST) and run this again" >&2
    exit 1
fi

CONTEXT="$(mktemp -d)"
trap 'rm -rf "$CONTEXT" || true' EXIT
cp "$HERE/Dockerfile" "$CONTEXT/Dockerfile"
cp -L "$BUSYBOX" "$CONTEXT/busybox"
chmod 0755 "$CONTEXT/busybox"
mkdir "$CONTEXT/standins" "$CONTEXT/agents"
cp "$HERE/standins/codex" "$HERE/standins/claude" "$CONTEXT/standins/"
chmod 0755 "$CONTEXT/standins/codex" "$CONTEXT/standins/claude"
cp "$AGENT_DATA/codex.jsonl" "$AGENT_DATA/claude.stream.jsonl" "$CONTEXT/agents/"
chmod 0644 "$CONTEXT/agents/codex.jsonl" "$CONTEXT/agents/claude.stream.jsonl"

# The classic builder: it works with old engines (20.10) and machines without buildx, and the
# image has nothing that would benefit from BuildKit.
# Its deprecation notice goes to stderr, so stderr is shown only when the build fails.
if ! DOCKER_BUILDKIT=0 docker build --quiet --tag "$TAG" "$CONTEXT" >"$CONTEXT.log" 2>&1; then
    cat "$CONTEXT.log" >&2
    rm -f "$CONTEXT.log"
    echo "build.sh: building $TAG failed (a busybox that is not statically linked fails here: apt-get install busybox-static)" >&2
    exit 1
fi
rm -f "$CONTEXT.log"
echo "built $TAG ($(docker image inspect --format '{{.Id}}' "$TAG"))"
