#!/usr/bin/env bash
# The fault campaign of issue 17, end to end: the real `restore-operator` binary on the API
# emulator with the Graph simulator (tests/e2e_faults.rs), every fault point on a fresh cluster —
# SIGKILL after each Graph write of a 51-write run and after each of the first status/progress
# writes, 429 and 503 storms, 409 conflicts on the status and on ConfigMaps, watches cut and
# expired (410 Gone), the leader Lease stolen mid-run. Each point must end with every item
# created exactly once and the run Succeeded. Needs kubectl (scripts/install-test-deps.sh).
# Usage: scripts/faults.sh [points]   (default: all; e.g. scripts/faults.sh kill-write:7,storm-429)
# Prints one line per point and a summary; the log is kept in target/faults.log.
set -euo pipefail
cd "$(dirname "$0")/.."
points="${1:-all}"
log=target/faults.log
mkdir -p target
status=0
FAULTS="$points" cargo test --workspace --test e2e_faults -- --nocapture --test-threads=1 >"$log" 2>&1 || status=$?
grep -E '^FAULT ' "$log" || true
if [ "$status" -ne 0 ]; then
  echo "fault campaign failed (exit $status); see $log" >&2
fi
exit "$status"
