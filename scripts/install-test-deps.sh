#!/usr/bin/env bash
# Installs the outside tools the tests use, if missing: kubernetes-validate (PyPI) and Lua 5.4
# (Debian). kubectl 1.32 is expected on PATH. Idempotent; needs root for apt-get.
set -euo pipefail

# kubernetes-validate: manifest schemas; helm-python-sdk: the Helm engine (lint, render);
# cel-python: parses the admission policy's CEL; PyYAML: reads rendered manifests.
if ! command -v kubernetes-validate >/dev/null 2>&1 || ! python3 -c "import helm_python, celpy, yaml" 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    kubernetes-validate helm-python-sdk cel-python PyYAML
fi

if ! command -v lua5.4 >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lua5.4 >/dev/null
  else
    echo "note: lua5.4 missing and cannot be installed here (tests of the Argo CD health script will skip)" >&2
  fi
fi

if ! command -v kubectl >/dev/null 2>&1; then
  echo "note: kubectl is not on PATH; the kubectl-driven tests skip (and fail under CI=true)" >&2
fi
