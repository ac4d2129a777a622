#!/usr/bin/env bash
# The quick start: builds the sandbox image and errand, then runs the whole path once against a
# local GitHub stand-in: a signed webhook in, a PR with test evidence out.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/setup-host.sh
cargo build --quiet --bins --examples
exec target/debug/examples/quickstart
