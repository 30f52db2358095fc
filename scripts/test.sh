#!/usr/bin/env bash
# The test command: installs the outside tools the tests use (if missing), then runs every
# test of the workspace. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
cargo test --workspace "$@"
