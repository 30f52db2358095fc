#!/usr/bin/env bash
# Mutation testing of the safety-critical code with cargo-mutants (crates.io): the wizard and its
# gate, the digest, the executor (its plan, and its one-by-one assignment writes), the driver and the
# controller's run store. Every surviving mutant must be killed by a test or listed in
# docs/safety.md with why it is equivalent.
#
#   scripts/mutants.sh core         # wizard (and its gate), digest, plan, executor against the core's tests
#   scripts/mutants.sh driver       # the one driver, the leadership fence, the tenant lock
#   scripts/mutants.sh store        # the Kubernetes run store and the record reader (long: ~1.5 h here)
#   scripts/mutants.sh masking      # normalization's masking (rule 8), secret marks, the canonical writer
#   scripts/mutants.sh conflicts    # the fenced 409 retry of status patches and record ConfigMaps
#   scripts/mutants.sh              # core and driver
# It mutates the working tree in place (--in-place, restored after each mutant): run it on a clean
# checkout or a separate git worktree, not while editing.
# Extra arguments go to cargo mutants (e.g. --re 'vouched' to sample). Results: mutants.out/.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p mutants.out
command -v cargo-mutants >/dev/null 2>&1 || cargo install cargo-mutants --locked
what="${1:-all}"
[ $# -gt 0 ] && shift

core() {
  # -C (every cargo call) builds only the listed test binaries, not all of the core's.
  cargo mutants --in-place --no-shuffle --timeout 120 --output mutants.out/core -p restore-core \
    -f crates/core/src/wizard.rs -f crates/core/src/engine/execute.rs -f crates/core/src/engine/preview.rs \
    -f crates/core/src/engine/assignment_writes.rs -f crates/core/src/engine/plan.rs \
    -C=--test=safety_rules -C=--test=trust_boundaries -C=--test=engine_rules -C=--test=engine_trust \
    -C=--test=engine_checks -C=--test=engine_round_trip -C=--test=fidelity_findings -C=--test=retry_after \
    -C=--lib "$@"
}

# The operator's mutants each relink its test binaries: without debug info that is several times faster.
driver() {
  CARGO_PROFILE_DEV_DEBUG=0 cargo mutants --in-place --no-shuffle --timeout 90 --output mutants.out/driver -p restore-operator \
    -f src/driver.rs -f src/controller/fence.rs -f src/controller/tenant_lock.rs \
    -C=--test=controller_reconcile -C=--test=leader_fence -C=--test=preview_cli -C=--test=local_run -C=--lib "$@"
}

# A mutant that makes the run's records untrusted leaves the reconcile tests waiting: 60 s (five
# times the unmutated tests) tells those apart without waiting minutes for each.
store() {
  CARGO_PROFILE_DEV_DEBUG=0 cargo mutants --in-place --no-shuffle --timeout 60 --output mutants.out/store -p restore-operator \
    -f src/controller/restorerun.rs -f src/kube/records.rs \
    -C=--test=controller_reconcile -C=--test=write_conflicts -C=--test=plugin_output -C=--lib "$@"
}

# Masking and secret marks are held to the former whole-copy pipeline by the core's property tests.
masking() {
  cargo mutants --in-place --no-shuffle --timeout 120 --output mutants.out/masking -p restore-core \
    -f crates/core/src/engine/normalize.rs -f crates/core/src/secrets.rs -f crates/core/src/canonical.rs \
    -f crates/core/src/canonical/writer.rs -f crates/core/src/canonical/escape.rs \
    -C=--lib -C=--test=engine_rules "$@"
}

# Writes sent again on 409 Conflict, each attempt behind the leadership fence.
conflicts() {
  CARGO_PROFILE_DEV_DEBUG=0 cargo mutants --in-place --no-shuffle --timeout 60 --output mutants.out/conflicts \
    -p restore-operator -f src/kube/conflicts.rs -C=--test=write_conflicts -C=--lib "$@"
}

case "$what" in
  core) core "$@" ;;
  masking) masking "$@" ;;
  conflicts) conflicts "$@" ;;
  driver) driver "$@" ;;
  store) store "$@" ;;
  all) core "$@"; driver "$@" ;;
  *) echo "usage: $0 [core|driver|store|masking|conflicts|all] [cargo-mutants args]" >&2; exit 2 ;;
esac
