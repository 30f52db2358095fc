#!/usr/bin/env bash
# Installs the outside tools the tests use, if missing: kubernetes-validate, IntuneCD (PyPI), Lua 5.4
# and Chromium (Debian), and Microsoft's Graph beta model packages (npm, PyPI) for the model's drift test.
# kubectl 1.32 is expected on PATH. Idempotent; needs root for apt-get.
set -euo pipefail

# kubernetes-validate: manifest schemas; helm-python-sdk: the Helm engine (lint, render);
# cel-python: parses the admission policy's CEL; PyYAML: reads rendered manifests.
if ! command -v kubernetes-validate >/dev/null 2>&1 || ! python3 -c "import helm_python, celpy, yaml" 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    kubernetes-validate helm-python-sdk cel-python PyYAML
fi

# IntuneCD: the outside Graph client of tests/intunecd.rs (run unchanged against graph-sim).
if ! command -v IntuneCD-startbackup >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore IntuneCD==2.6.0
fi

# Microsoft's published Graph beta model, the input of scripts/gen-graph-model.py (its drift test
# in crates/graph-sim/tests/model.rs regenerates the checked-in model from these files).
GRAPH_MODEL_SOURCES="${GRAPH_MODEL_SOURCES:-$HOME/.cache/restore-operator/graph-model}"
mkdir -p "$GRAPH_MODEL_SOURCES"
if [ ! -f "$GRAPH_MODEL_SOURCES/microsoft-microsoft-graph-types-beta-0.44.0-preview.tgz" ]; then
  if command -v npm >/dev/null 2>&1; then
    (cd "$GRAPH_MODEL_SOURCES" && npm pack --silent @microsoft/microsoft-graph-types-beta@0.44.0-preview >/dev/null)
  else
    echo "note: npm is missing; the Graph model drift test skips (and fails under CI=true)" >&2
  fi
fi
if [ ! -f "$GRAPH_MODEL_SOURCES/msgraph_beta_sdk-1.66.0-py3-none-any.whl" ]; then
  python3 -m pip download --quiet --disable-pip-version-check --no-deps msgraph-beta-sdk==1.66.0 -d "$GRAPH_MODEL_SOURCES"
fi

if ! command -v lua5.4 >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lua5.4 >/dev/null
  else
    echo "note: lua5.4 missing and cannot be installed here (tests of the Argo CD health script will skip)" >&2
  fi
fi

# Chromium (Debian): renders the HTML report headless in tests/plugin_output.rs and takes its screenshot.
if ! command -v chromium >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "note: chromium missing and cannot be installed here (the HTML report's browser test skips; it fails under CI=true)" >&2
  fi
fi

if ! command -v kubectl >/dev/null 2>&1; then
  echo "note: kubectl is not on PATH; the kubectl-driven tests skip (and fail under CI=true)" >&2
fi
