#!/usr/bin/env bash
# Regenerates crds/ from the code (one file per CRD) and the chart's copy (files/crds/, templated by templates/crds.yaml), as tests/crds.rs expects.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run -q -- crd | python3 -c '
import sys
docs = sys.stdin.read().split("---\n")
names = ["crds/restoreruns.tenantatlas.io.yaml", "crds/intunetenants.tenantatlas.io.yaml"]
assert len(docs) == len(names), len(docs)
for name, doc in zip(names, docs):
    open(name, "w").write(doc)
'
cp crds/*.yaml charts/restore-operator/files/crds/
