#!/usr/bin/env bash
# A thousand RestoreRuns on one operator (the real binary, the Kubernetes emulator, the Graph
# simulator with 20 tenants): prints operator RSS, CPU, API-server and Graph requests per minute in
# steady state. Usage: scripts/bench-runs.sh [RUNS...]   (default: 1000; e.g. `10 100 1000` for the
# growth table in docs/performance.md, "A thousand runs per operator"). BENCH_TENANTS (20) and BENCH_STEADY_SECONDS (330: one
# drift interval and a half minute) tune it. 1,000 runs took 25 min to come to rest (dev build, a
# loaded 2-core machine) plus the 5.5 min window; BENCH_SETUP_SECONDS (3600) bounds the wait.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(1000)
# The dev profile: the binary the tests use (a release build takes long on a small machine; RSS
# and request counts do not depend on it, CPU does).
cargo bench --workspace --profile "${BENCH_PROFILE:-dev}" --bench runs_1000 --no-run
for runs in "${sizes[@]}"; do
  BENCH_RUNS="$runs" cargo bench --workspace --profile "${BENCH_PROFILE:-dev}" --bench runs_1000 2>&1 \
    | grep -v '^\s*\(Compiling\|Finished\|Running\)'
done
