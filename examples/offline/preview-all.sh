#!/usr/bin/env bash
# Previews every example RestoreRun offline: a Graph simulator on 127.0.0.1:18080 holds the
# example tenant, seeded from the sample backup (examples/backup/tenants/contoso, laid out as in a
# Git repository of backups), and each run is previewed with that backup as its source. No tenant, no cluster, no network beyond loopback.
# tests/examples.rs runs the same steps in-process.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -q --bin restore-operator -p restore-operator
cargo build -q -p graph-sim
export OFFLINE_SECRET=offline-example-secret
GRAPH_SIM_CLIENT_SECRET=$OFFLINE_SECRET target/debug/graph-sim --listen 127.0.0.1:18080 \
  --tenant 6f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b --client-id 0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d \
  --seed examples/backup/tenants/contoso &
sim=$!
trap 'kill $sim' EXIT
sleep 1
for run in examples/restorerun-*.yaml deploy/flux/restorerun.yaml; do
  echo "== $run"
  # --backup replaces spec.source; a source `path` (tenants/contoso) still applies inside it.
  backup=examples/backup/tenants/contoso
  if grep -q '^    path: ' "$run"; then backup=examples/backup; fi
  target/debug/restore-operator preview -f "$run" --tenant examples/offline/intunetenant-graph-sim.yaml \
    --client-secret-env OFFLINE_SECRET --backup "$backup" || [ $? -eq 2 ]
done
