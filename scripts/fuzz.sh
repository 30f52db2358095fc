#!/usr/bin/env bash
# Coverage-guided fuzzing of the backup loaders (fuzz/): builds the libFuzzer targets with the
# nightly toolchain's sanitizer-coverage flags (what `cargo fuzz build` passes, without needing
# cargo-fuzz installed) and runs each for SECONDS (default 600) with a memory and time limit per
# input. Usage: scripts/fuzz.sh [target ...]   (targets: load_backup load_intunecd)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET="${SECONDS_PER_TARGET:-600}"
RSS_LIMIT_MB="${RSS_LIMIT_MB:-512}"       # per process; an input past it is a finding
INPUT_TIMEOUT_S="${INPUT_TIMEOUT_S:-10}"  # per input; an input past it is a finding
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(load_backup load_intunecd)
export RUSTC_BOOTSTRAP=1
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
cargo +nightly build --release --manifest-path fuzz/Cargo.toml --target x86_64-unknown-linux-gnu --bins
for target in "${targets[@]}"; do
  corpus="fuzz/corpus/$target"; mkdir -p "$corpus" "fuzz/artifacts/$target"
  seeds="fuzz/seeds/$target"; [ -d "$seeds" ] || seeds=""
  "fuzz/target/x86_64-unknown-linux-gnu/release/$target" "$corpus" $seeds \
    -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb="$RSS_LIMIT_MB" -malloc_limit_mb="$RSS_LIMIT_MB" \
    -timeout="$INPUT_TIMEOUT_S" -artifact_prefix="fuzz/artifacts/$target/" -print_final_stats=1
done
